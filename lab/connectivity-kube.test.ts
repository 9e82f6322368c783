// `tortiectl connectivity test` on a real Kubernetes cluster (root only): `tortie-lab up
// --kubernetes --nodes 2 --cni tortie` (kubelet, containerd, kube-proxy, Tortie as the CNI), then
// the test through the API (probe Pods, pod proxy, Service, NetworkPolicy): every check passes,
// exit 0, and its namespace is gone afterwards. `down` in after. (The faults' diagnostics are
// tested on the lab's own pods, lab/connectivity.test.ts: a second run here would pass 3 min.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingForKube } from './pkg/kube/cluster.js';
import { netnsList } from './pkg/sys.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const missing = process.getuid?.() === 0 ? missingForKube('tortie') : [];
const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync(LAB) ? 'bin/tortie-lab not built (npm run build)' : missing.length > 0 ? `${missing.join(', ')} not built` : false;

function run(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout: 240_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('tortiectl connectivity test on Kubernetes', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-connk-test-'));
  const env = { ...process.env, TORTIE_LAB_DIR: dir };
  const name = `k${randomBytes(3).toString('hex')}`;
  const lab = (...args: string[]) => run(env, args);
  const ok = async (...args: string[]) => {
    const r = await lab(...args);
    assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const namespaceGone = async () => {
    const r = await lab('kubectl', name, '--', 'get', 'namespace', 'tortie-connectivity', '--ignore-not-found', '-o', 'name');
    assert.equal(r.stdout.trim(), '', 'the probe namespace is gone');
  };

  before(async () => {
    await ok('up', '--name', name, '--kubernetes', '--nodes', '2', '--cni', 'tortie');
  });

  after(async () => {
    if (existsSync(join(dir, name, 'state.json'))) await lab('down', name);
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), [], 'no namespace left');
  });

  it('a healthy cluster: every check passes (pod→Service included), nothing left', async () => {
    const out = await ok('ctl', name, '--', 'connectivity', 'test');
    const lines = out.split('\n');
    assert.deepEqual(lines.filter((l) => l.startsWith('✖')), []);
    assert.equal(lines.filter((l) => l.startsWith('✔')).length, 19, out);
    for (const g of ['pod→pod on node1', 'pod→pod across nodes', 'host→pod', 'pod→host', 'pod→Service', 'full-size packet', 'policy default deny', 'policy allow from role=client', 'policy allow is narrow']) {
      assert.ok(lines.some((l) => l.startsWith('✔') && l.includes(g)), `a passing "${g}" check\n${out}`);
    }
    assert.match(out, /19\/19 checks passed/);
    await namespaceGone();
  });
});
