// tortie-ipam behind Debian's ptp plugin, with real namespaces and packets. Everything lives in
// namespaces this test creates; the root namespace is never touched.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { resourceKey } from '../../libcalico-go/lib/backend/keys.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';
import { ROOT, type StoreFixture, makeStore } from '../../testing/ipam-plugin-fixture.js';

const PTP = '/usr/lib/cni/ptp';
const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync(PTP) ? `${PTP} is not installed (apt-get install containernetworking-plugins)` : false;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8' });
}

function ptp(hostNs: string, command: string, containerId: string, netns: string, config: string) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn('ip', ['netns', 'exec', hostNs, PTP], {
      env: {
        CNI_COMMAND: command,
        CNI_CONTAINERID: containerId,
        CNI_NETNS: netns,
        CNI_IFNAME: 'eth0',
        CNI_PATH: `${join(ROOT, 'bin')}:/usr/lib/cni`,
        CNI_ARGS: '',
        PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
      },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(config);
  });
}

describe('tortie-ipam behind ptp', { skip }, () => {
  const tag = randomBytes(3).toString('hex');
  const host = `tortie-t${tag}-host`;
  const pods = [`tortie-t${tag}-p1`, `tortie-t${tag}-p2`];
  let fx: StoreFixture;
  let store: Backend;
  before(async () => {
    for (const ns of [host, ...pods]) ip('netns', 'add', ns);
    ip('-n', host, 'link', 'set', 'lo', 'up');
    fx = await makeStore('embedded');
    store = await fx.open();
    await store.apply(
      resourceKey('IPPool', 'ptp-pool'),
      JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'ptp-pool' }, spec: { cidr: '10.98.0.0/24', blockSize: 24 } }),
    );
  });
  after(async () => {
    for (const ns of [host, ...pods]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
    await store?.close();
    await fx?.stop();
  });

  it('wires two pods that reach each other, and DEL (twice) removes every trace', async () => {
    const config = JSON.stringify({
      cniVersion: '1.0.0',
      name: 'ptpnet',
      type: 'ptp',
      nodename: 'n1',
      ...fx.confFields,
      ipam: { type: 'tortie-ipam' },
    });
    const addrs: string[] = [];
    for (const [i, ns] of pods.entries()) {
      const r = await ptp(host, 'ADD', `ctr${i}`, `/run/netns/${ns}`, config);
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const res = JSON.parse(r.stdout);
      addrs.push(res.ips[0].address.split('/')[0]);
    }
    assert.notEqual(addrs[0], addrs[1]);
    for (const a of addrs) assert.match(a, /^10\.98\.0\.\d+$/);
    // ptp routes the pod's block through the link-local next hop tortie-ipam hands out.
    assert.match(ip('-n', pods[0], 'route', 'show'), /10\.98\.0\.0\/24 via 169\.254\.1\.1 dev eth0/);
    execFileSync('ip', ['netns', 'exec', pods[0], 'ping', '-c', '2', '-W', '2', addrs[1]]);
    execFileSync('ip', ['netns', 'exec', host, 'ping', '-c', '1', '-W', '2', addrs[0]]);
    for (const round of [1, 2]) {
      for (const [i, ns] of pods.entries()) {
        const r = await ptp(host, 'DEL', `ctr${i}`, `/run/netns/${ns}`, config);
        assert.equal(r.code, 0, `DEL round ${round}: ${r.stdout}${r.stderr}`);
      }
    }
    const ipam = new IPAM(store, { selects: () => true });
    const used = (await ipam.blocks(4)).reduce((s, b) => s + b.allocations.filter((a) => a !== null).length, 0);
    assert.equal(used, 0, 'addresses released');
    assert.doesNotMatch(ip('-n', host, '-o', 'link'), /veth/, 'host-side veths gone');
  });
});
