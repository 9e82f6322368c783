// scripts/check-imports.mjs (run first by `npm test`) on trees planted in a temporary
// directory: every kind of forbidden import is reported with its file, line and rule, and the run
// fails; allowed imports, and text that only looks like an import (comments, strings, templates,
// regular expressions), pass. Then the repository itself and its dist/ pass.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

const ROOT = new URL('../../', import.meta.url).pathname;
const CHECK = join(ROOT, 'scripts/check-imports.mjs');
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-check-imports-'));
  dirs.push(dir);
  for (const [p, body] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, p)), { recursive: true });
    writeFileSync(join(dir, p), body);
  }
  return dir;
}

function check(root: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [CHECK, '--root', root, ...args], { encoding: 'utf8' });
  const problems = r.stderr
    .split('\n')
    .filter((l) => /^\S+:\d+: /.test(l))
    .map((l) => {
      const m = /^(\S+:\d+): (.*) — imports (.*)$/.exec(l);
      assert.ok(m, `unexpected line ${l}`);
      return { at: m[1]!, rule: m[2]!, spec: m[3]! };
    });
  return { code: r.status, problems, stdout: r.stdout, stderr: r.stderr };
}

// Imports every rule allows.
const ALLOWED: Record<string, string> = {
  'libcalico-go/lib/net/ip.ts': `export const ip = 1;\n`,
  'felix/index.ts': `export { c } from './calc/c.js';\n`,
  'felix/calc/c.ts': `import { ip } from '../../libcalico-go/lib/net/ip.js';\nexport const c = ip;\n`,
  'felix/calc/c.test.ts': `import { h } from '../../testing/h.js';\nimport { x } from '../../bench/x.js';\nimport { c } from './c.js';\nimport { n } from '../../node/pkg/n.js';\n`,
  'felix/calc/testdata/driver.ts': `import { c } from '../c.js';\nimport { h } from '../../../testing/h.js';\n`,
  'node/pkg/n.ts': [
    `import { c } from '../../felix/index.js';`,
    `import type { T } from '../../libcalico-go/lib/net/ip.js';`,
    `import '../../libcalico-go/lib/net/ip.js';`,
    `import { readFileSync } from 'node:fs';`,
    `// import { h } from '../../testing/h.js';`,
    `/* export * from '../../bench/x.js'; */`,
    `const s = "import { h } from '../../testing/h.js'";`,
    `const t = \`\${s} import('../../bench/x.js') \${\`import '../../lab/pkg/l.js'\`}\`;`,
    `const r = /import '..\\/..\\/testing\\/h.js'/;`,
    `const q = s.length / 2 / 1; // from '../../testing/h.js'`,
    `const o = { import: 1 }; o.import;`,
    `export const n = [c, t, r, q, import.meta.url];`,
    ``,
  ].join('\n'),
  'lab/pkg/l.ts': `import { c } from '../../felix/index.js';\nimport { ip } from '../../libcalico-go/lib/net/ip.js';\nconst m = await import('./l2.js');\n`,
  'lab/pkg/l2.ts': `export const l2 = 1;\n`,
  'testing/h.ts': `import { c } from '../felix/calc/c.js';\nimport { l2 } from '../lab/pkg/l2.js';\nexport const h = 1;\n`,
  'bench/x.ts': `import { h } from '../testing/h.js';\nimport { c } from '../felix/calc/c.js';\nexport const x = 1;\n`,
};

// One forbidden import per file (line 2 unless said), with the rule it breaks.
const FORBIDDEN: Record<string, [string, RegExp]> = {
  'libcalico-go/lib/bad-lab.ts': [`import { l2 } from '../../lab/pkg/l2.js';`, /^product imports lab\/ \(only lab\/ itself may\)$/],
  'libcalico-go/lib/bad-up.ts': [`import type { C } from '../../felix/index.js';`, /^layering: libcalico-go \(layer 0\) may not import felix \(layer 1\).*\(type-only imports count\)$/],
  'felix/calc/bad-testing.ts': [`export * from '../../testing/h.js';`, /^product imports test helpers \(testing\/\)$/],
  'felix/calc/bad-testdata.ts': [`export type { D } from './testdata/driver.js';`, /^product imports test helpers \(testdata\/\) \(type-only imports count\)$/],
  'felix/calc/bad-bench.ts': [`const m = await import(\n  '../../bench/x.js'\n);`, /^product imports bench\/$/],
  'felix/calc/bad-test.ts': [`import {\n  a,\n} from './c.test.js';`, /^product code imports a test file$/],
  'confd/pkg/bad-sibling.ts': [`import { c } from '../../felix/index.js';`, /^layering: confd \(layer 1\) may not import felix \(layer 1\)/],
  'node/pkg/bad-internal.ts': [`import { c } from '../../felix/calc/c.js';`, /^felix is imported through its entry point \(felix\/index\.ts\), not felix\/calc\/c\.ts$/],
  'calicoctl/commands/bad-node.ts': [`import { n } from '../../node/pkg/n.js';`, /^layering: calicoctl \(layer 2\) may not import node \(layer 2\)/],
  'node/pkg/bad-nodetest.ts': [`import { it } from 'node:test';`, /^product imports node:test/],
  'node/pkg/bad-computed.ts': [`const p = './n.js';\nawait import(p);`, /^product has a dynamic import whose specifier is not a string literal/],
  // A division is not a regular expression: the import after it is seen.
  'felix/calc/bad-after-division.ts': [`const size = 4, half = size / 2, m = import('../../bench/x.js'), third = half / 3;`, /^product imports bench\/$/],
  'node/pkg/bad-require.ts': [`import x = require('../../bench/x.js');`, /^product imports bench\/$/],
  'testing/bad-bench.ts': [`import { x } from '../bench/x.js';`, /^testing\/ imports bench\/$/],
  'bench/bad-test.ts': [`import '../felix/calc/c.test.js';`, /^bench code imports a test file$/],
};

describe('scripts/check-imports.mjs', () => {
  it('passes a tree whose imports all follow the rules (and ignores look-alike text)', () => {
    const r = check(tree(ALLOWED));
    assert.deepEqual(r.problems, [], r.stderr);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no forbidden import/);
  });

  it('fails on each planted violation, naming file:line and the rule', () => {
    const files = { ...ALLOWED };
    for (const [p, [body]] of Object.entries(FORBIDDEN)) files[p] = `// a planted violation\n${body}\n`;
    const r = check(tree(files));
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.problems.length, Object.keys(FORBIDDEN).length, r.stderr);
    for (const [p, [, rule]] of Object.entries(FORBIDDEN)) {
      const found = r.problems.filter((x) => x.at.startsWith(`${p}:`));
      assert.equal(found.length, 1, `${p}: ${JSON.stringify(found)}\n${r.stderr}`);
      const line = p === 'node/pkg/bad-computed.ts' ? 3 : 2;
      assert.equal(found[0]!.at, `${p}:${line}`);
      assert.match(found[0]!.rule, rule);
    }
    assert.match(r.stderr, new RegExp(`import check: ${Object.keys(FORBIDDEN).length} forbidden imports`));
  });

  it('checks compiled files under dist/ the same way (--dist)', () => {
    const good = tree({ 'dist/felix/calc/c.js': `import { h } from '../../libcalico-go/lib/net/ip.js';\n`, 'dist/felix/calc/c.test.js': `import '../../testing/h.js';\n` });
    assert.equal(check(good, '--dist').code, 0);
    const bad = tree({ 'dist/felix/calc/c.js': `import { ip } from '../../libcalico-go/lib/net/ip.js';\nimport { h } from '../../testing/h.js';\n` });
    const r = check(bad, '--dist');
    assert.equal(r.code, 1);
    assert.deepEqual(
      r.problems.map((p) => `${p.at} ${p.rule}`),
      ['dist/felix/calc/c.js:2 product imports test helpers (testing/)'],
    );
  });

  it('the repository and its dist/ pass', () => {
    const src = check(ROOT);
    assert.equal(src.code, 0, src.stderr);
    const dist = check(ROOT, '--dist');
    assert.equal(dist.code, 0, dist.stderr);
  });
});
