// scripts/run-tests.mjs (what `npm test` and CI run) on test files made here: skips are listed with
// their reasons, and with live tests required a skip fails the run unless its reason starts with
// "kernel lacks"; the last line is "N passed, N failed".
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RUNNER = new URL('../../scripts/run-tests.mjs', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'tortie-runner-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `import { describe, it, test } from 'node:test';\n${body}\n`);
  return p;
}

function runner(files: string[], requireLive: '0' | '1' | undefined) {
  const env: Record<string, string | undefined> = { ...process.env, TORTIE_REQUIRE_LIVE: requireLive };
  if (requireLive === undefined) delete env.TORTIE_REQUIRE_LIVE;
  // This test runs under node --test itself: the runner must not take over its reporting channel.
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, [RUNNER, ...files], { encoding: 'utf8', env: env as NodeJS.ProcessEnv });
  const lines = r.stdout.trimEnd().split('\n');
  return { code: r.status, out: r.stdout, last: lines.at(-1) };
}

const forced = file(
  'forced-skip.test.mjs',
  `describe('live suite', { skip: 'needs root (network namespaces)' }, () => { it('never runs', () => { throw new Error('ran'); }); });
it('plain', () => {});`,
);
const kernel = file('kernel-skip.test.mjs', `it('ipip tunnel', { skip: 'kernel lacks ipip' }, () => {});\nit('plain', () => {});`);
const reasonless = file('reasonless-skip.test.mjs', `test('bare', { skip: true }, () => {});\nit('skips itself', (t) => { t.skip('binary missing'); });\nit('plain', () => {});`);
const failing = file('failing.test.mjs', `it('fails', () => { throw new Error('boom'); });\nit('plain', () => {});\nit('later', { todo: 'not yet' }, () => {});`);

describe('scripts/run-tests.mjs', () => {
  it('TORTIE_REQUIRE_LIVE=1: a suite skipped for "needs root" fails the run, named with its reason', () => {
    const r = runner([forced], '1');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /^ {2}✖ \S*forced-skip\.test\.mjs: suite "live suite" — needs root \(network namespaces\)$/m);
    assert.match(r.out, /1 skipped for a reason other than "kernel lacks …"/);
    assert.equal(r.last, '1 passed, 1 failed');
  });

  it('TORTIE_REQUIRE_LIVE=0: the same skip is listed and the run passes', () => {
    const r = runner([forced], '0');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /^ {2}﹣ \S*forced-skip\.test\.mjs: suite "live suite" — needs root \(network namespaces\)$/m);
    assert.equal(r.last, '1 passed, 0 failed');
  });

  it('a "kernel lacks …" skip is allowed with live tests required', () => {
    const r = runner([kernel], '1');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /kernel-skip\.test\.mjs: "ipip tunnel" — kernel lacks ipip$/m);
    assert.equal(r.last, '1 passed, 0 failed');
  });

  it('reasonless and run-time skips (t.skip) are refused too', () => {
    const r = runner([reasonless], '1');
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /"bare" — \(no reason given\)$/m);
    assert.match(r.out, /"skips itself" — binary missing$/m);
    assert.equal(r.last, '1 passed, 2 failed');
  });

  it('unset: required when running as root', { skip: process.getuid?.() === 0 ? false : 'needs root (the default under root is what is tested)' }, () => {
    assert.equal(runner([forced], undefined).code, 1);
  });

  it('a failing test fails the run; todo tests do not count either way', () => {
    const r = runner([failing, kernel], '1');
    assert.equal(r.code, 1, r.out);
    assert.equal(r.last, '2 passed, 1 failed');
  });
});
