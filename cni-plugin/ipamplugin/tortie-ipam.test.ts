// bin/tortie-ipam driven as a runtime drives it, against the embedded store and a real etcd.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { resourceKey } from '../../libcalico-go/lib/backend/keys.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';
import { cidrContainsIP, parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';
import { IPAM_BIN, type StoreFixture, makeStore, pool, runCni, runCtl } from '../../testing/ipam-plugin-fixture.js';

const NODES = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e'];
const IN_FLIGHT = 100;

function conf(store: StoreFixture, node: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'tortie-ipam',
    nodename: node,
    ...store.confFields,
    ipam: { type: 'tortie-ipam' },
    ...extra,
  });
}

async function putPool(s: Backend, name: string, cidr: string, blockSize: number): Promise<void> {
  await s.apply(
    resourceKey('IPPool', name),
    JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr, blockSize, nodeSelector: 'all()' } }),
  );
}

for (const kind of ['embedded', 'etcdv3'] as const) {
  describe(`tortie-ipam on ${kind}`, () => {
    let fx: StoreFixture;
    let store: Backend;
    before(async () => {
      fx = await makeStore(kind);
      store = await fx.open();
      await putPool(store, 'default-pool', '10.233.64.0/18', 24);
    });
    after(async () => {
      await store?.close();
      await fx?.stop();
    });

    it('1,000 concurrent ADDs from 5 nodes: distinct addresses in each node’s blocks; DEL frees all, twice', async () => {
      const ids = Array.from({ length: 1000 }, (_, i) => ({ id: `burst${i}`, node: NODES[i % 5] }));
      const adds = await pool(ids, IN_FLIGHT, ({ id, node }) =>
        runCni(IPAM_BIN, {
          command: 'ADD',
          containerId: id,
          netns: '/var/run/netns/none',
          ifname: 'eth0',
          args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=burst;K8S_POD_NAME=${id}`,
          config: conf(fx, node),
        }),
      );
      for (const [i, r] of adds.entries()) assert.equal(r.code, 0, `ADD ${i}: ${r.stdout} ${r.stderr}`);
      const ips = adds.map((r) => (r.json.ips[0].address as string).split('/')[0]);
      assert.equal(new Set(ips).size, 1000, 'every address distinct');
      const ipam = new IPAM(store, { selects: () => true });
      const blocks = await ipam.blocks(4);
      for (const [i, ip] of ips.entries()) {
        const b = blocks.find((x) => cidrContainsIP(parseCIDR(x.cidr)!, parseIP(ip)!));
        assert.equal(b?.affinity, `host:${ids[i].node}`, `${ip} is in a block of ${ids[i].node}`);
      }
      const inUse = blocks.reduce((s, b) => s + b.allocations.filter((a) => a !== null).length, 0);
      assert.equal(inUse, 1000);
      assert.equal(blocks.length, 5, 'one /24 per node holds its 200 pods');

      const show = await runCtl(['ipam', 'show', '--show-blocks'], fx.ctlEnv);
      assert.equal(show.code, 0, show.stderr);
      assert.match(show.stdout, /\| IP Pool +\| 10\.233\.64\.0\/18 +\| +16384 \| 1000 \(6%\) +\| 15384 \(94%\) +\|/);
      assert.equal((show.stdout.match(/\| Block +\| 10\.233\.\d+\.0\/24 +\| +256 \| 200 \(78%\) +\| 56 \(22%\) +\|/g) ?? []).length, 5);

      for (const round of [1, 2]) {
        const dels = await pool(ids, IN_FLIGHT, ({ id, node }) =>
          runCni(IPAM_BIN, { command: 'DEL', containerId: id, ifname: 'eth0', config: conf(fx, node) }),
        );
        for (const r of dels) assert.equal(r.code, 0, `DEL round ${round}: ${r.stdout} ${r.stderr}`);
        const left = (await ipam.blocks(4)).reduce((s, b) => s + b.allocations.filter((a) => a !== null).length, 0);
        assert.equal(left, 0, `nothing allocated after DEL round ${round}`);
      }
      assert.equal((await store.list('/calico/ipam/v2/handle/')).items.length, 0, 'no handle left');
    });

    it('kill -9 in mid-burst leaves no duplicate; ipam check finds the leaks and ipam release clears them', async () => {
      const ids = Array.from({ length: 240 }, (_, i) => ({ id: `kill${i}`, node: NODES[i % 5] }));
      const adds = await pool(ids, 60, ({ id, node }, i) =>
        runCni(IPAM_BIN, {
          command: 'ADD',
          containerId: id,
          netns: '/var/run/netns/none',
          ifname: 'eth0',
          args: `K8S_POD_NAMESPACE=kill;K8S_POD_NAME=${id}`,
          config: conf(fx, node),
          onSpawn: (child) => {
            // A third of them die at a random point of their run.
            if (i % 3 === 0) setTimeout(() => child.kill('SIGKILL'), 30 + Math.random() * 150);
          },
        }),
      );
      const ok = adds.map((r, i) => ({ r, ...ids[i] })).filter((x) => x.r.code === 0);
      assert.ok(ok.length >= 150, `most ADDs succeed (${ok.length})`);
      const ips = ok.map((x) => (x.r.json.ips[0].address as string).split('/')[0]);
      assert.equal(new Set(ips).size, ips.length, 'no address handed out twice');
      const ipam = new IPAM(store, { selects: () => true });
      for (const [i, ip] of ips.entries()) {
        assert.equal((await ipam.assignment(ip))?.handleId, `k8s-pod-network.${ok[i].id}`);
      }
      // The pods that exist have workload endpoints; anything else allocated has leaked.
      for (const [i, x] of ok.entries()) {
        await store.apply(
          resourceKey('WorkloadEndpoint', `${x.node}-k8s-${x.id}-eth0`, 'kill'),
          JSON.stringify({
            apiVersion: 'projectcalico.org/v3',
            kind: 'WorkloadEndpoint',
            metadata: { name: `${x.node}-k8s-${x.id}-eth0`, namespace: 'kill' },
            spec: { node: x.node, orchestrator: 'k8s', pod: x.id, endpoint: 'eth0', interfaceName: 'cali0', ipNetworks: [`${ips[i]}/32`] },
          }),
        );
      }
      const allocated = (await ipam.blocks(4)).reduce((s, b) => s + b.allocations.filter((a) => a !== null).length, 0);
      const leaked = allocated - ok.length;
      const dir = mkdtempSync(join(tmpdir(), 'tortie-report-'));
      try {
        const report = join(dir, 'report.json');
        const check = await runCtl(['ipam', 'check', '--show-problem-ips', '-o', report], fx.ctlEnv);
        assert.equal(check.code, 0, check.stderr);
        assert.match(check.stdout, new RegExp(`Found ${leaked} IPs that are allocated in IPAM but not actually in use\\.`));
        assert.equal(JSON.parse(readFileSync(report, 'utf8')).leakedHandles !== undefined, true);
        const rel = await runCtl(['ipam', 'release', `--from-report=${report}`, '--force'], fx.ctlEnv);
        assert.equal(rel.code, 0, rel.stdout + rel.stderr);
        const again = await runCtl(['ipam', 'check'], fx.ctlEnv);
        assert.match(again.stdout, /Found 0 IPs that are allocated in IPAM but not actually in use\./);
        assert.match(again.stdout, /Check complete; found 0 problems\./);
        const after = (await ipam.blocks(4)).reduce((s, b) => s + b.allocations.filter((a) => a !== null).length, 0);
        assert.equal(after, ok.length, 'only the leaked addresses were released');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      await pool(ok, IN_FLIGHT, (x) => runCni(IPAM_BIN, { command: 'DEL', containerId: x.id, ifname: 'eth0', config: conf(fx, x.node) }));
    });
  });
}
