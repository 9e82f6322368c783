// @kubernetes/client-node and the Kubernetes backend are loaded only when a kubernetes datastore is
// opened: a process on another datastore (the exec'd tortie-ipam on every CNI call) must not pay for
// them. Checked two ways: no static (non-type) import of them outside the backend's own folder, the
// tests, kube-controllers/ (tortie-kube-controllers always talks to the Kubernetes API: it watches
// Pods and Nodes whatever the datastore, so it loads the client at start and no CNI call pays for it)
// and cni-plugin/cmd/install.ts (install-cni, run once per node start as an init container, asks the
// API for the CNI token); and a real process that opens the embedded store through openBackend, with a
// module resolve hook recording every module it loads.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';

const root = new URL('../../../../..', import.meta.url).pathname;
const dist = new URL('../../../..', import.meta.url).pathname;

function sources(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    if (['node_modules', 'dist', '.git'].includes(e)) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts') && !p.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

describe('the Kubernetes client is loaded lazily', () => {
  it('no static value import of @kubernetes/client-node or the kubernetes backend outside it', () => {
    const offenders: string[] = [];
    for (const f of sources(root)) {
      const rel = relative(root, f);
      if (['libcalico-go/lib/backend/kubernetes/', 'kube-controllers/', 'cni-plugin/cmd/install.ts', 'testing/', 'bench/'].some((d) => rel.startsWith(d))) continue;
      for (const line of readFileSync(f, 'utf8').split('\n')) {
        if (!/^import\s/.test(line) || /^import\s+type\s/.test(line)) continue;
        if (/@kubernetes\/client-node|backend\/kubernetes\/(kubernetes|client)\.js/.test(line)) offenders.push(`${rel}: ${line}`);
      }
    }
    assert.deepEqual(offenders, []);
  });

  it('a process opening the embedded store through openBackend loads neither', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tortie-lazy-'));
    try {
      const hooks = join(dir, 'hooks.mjs');
      const log = join(dir, 'loaded.txt');
      writeFileSync(hooks, `import { appendFileSync } from 'node:fs';
export async function resolve(spec, ctx, next) { const r = await next(spec, ctx); appendFileSync(${JSON.stringify(log)}, r.url + '\\n'); return r; }\n`);
      const reg = join(dir, 'register.mjs');
      writeFileSync(reg, `import { register } from 'node:module'; register(${JSON.stringify('file://' + hooks)});\n`);
      const main = join(dir, 'main.mjs');
      writeFileSync(main, `const { openBackend } = await import(${JSON.stringify(`file://${dist}libcalico-go/lib/config/open-backend.js`)});
const b = await openBackend({ datastoreType: 'embedded', datastorePath: ${JSON.stringify(join(dir, 'store.db'))}, etcdEndpoints: [] });
await b.get('/calico/ipam/v2/config'); await b.close(); console.log('ok');\n`);
      const r = spawnSync(process.execPath, ['--import', 'file://' + reg, main], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const loaded = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      assert.ok(loaded.some((u) => u.includes('backend/embedded/embedded.js')), 'the hook saw the embedded backend load');
      assert.deepEqual(loaded.filter((u) => /@kubernetes|backend\/kubernetes\//.test(u)), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
