// IPAM allocation throughput, next to the raw datastore write rate it is built on and to Debian's
// host-local plugin, on the embedded store and on a real etcd.
//
//   node dist/bench/ipam-alloc.js [--write]      (--write updates docs/benchmarks.md)
//
// Library rows: the IPAM client in-process (one node: a sequential loop; ten nodes: ten worker
// processes, one per node name, all at once). Plugin rows: bin/tortie-ipam exec'd per ADD/DEL
// as a runtime would, 10 in flight, beside /usr/lib/cni/host-local driven the same way.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../libcalico-go/lib/backend/api.js';
import { resourceKey } from '../libcalico-go/lib/backend/keys.js';
import { openEmbedded } from '../libcalico-go/lib/backend/embedded/embedded.js';
import { openEtcdV3 } from '../libcalico-go/lib/backend/etcdv3/etcdv3.js';
import { IPAM } from '../libcalico-go/lib/ipam/ipam.js';
import { startEtcd } from '../testing/etcd.js';
import { IPAM_BIN, pool, runCni } from '../testing/ipam-plugin-fixture.js';
import { updateBenchmarkSection } from './report.js';

type StoreSpec = { kind: 'embedded'; path: string } | { kind: 'etcdv3'; endpoints: string[] };

function open(spec: StoreSpec): Backend {
  return spec.kind === 'embedded' ? openEmbedded(spec.path) : openEtcdV3({ endpoints: spec.endpoints });
}

const N_ONE = 400;
const N_PER_NODE = 100;
const NODES = 10;
const N_PLUGIN = 200;

async function rawWrites(s: Backend, n: number): Promise<number> {
  let kv = await s.apply('/bench/counter', '0');
  const t0 = performance.now();
  for (let i = 0; i < n; i++) kv = await s.update(kv.key, String(i), kv.revision);
  return n / ((performance.now() - t0) / 1000);
}

async function allocLoop(s: Backend, node: string, n: number): Promise<{ alloc: number; release: number }> {
  const ipam = new IPAM(s, { selects: () => true });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    await ipam.autoAssign({ handleId: `bench.${node}.${i}`, attrs: { node }, hostname: node, num4: 1, num6: 0 });
  }
  const t1 = performance.now();
  for (let i = 0; i < n; i++) await ipam.releaseByHandle(`bench.${node}.${i}`);
  const t2 = performance.now();
  return { alloc: n / ((t1 - t0) / 1000), release: n / ((t2 - t1) / 1000) };
}

/** Worker mode: one node's allocations, started together with the others. */
async function worker(spec: StoreSpec, node: string): Promise<void> {
  const s = open(spec);
  process.send!({ ready: true });
  await new Promise<void>((r) => process.once('message', () => r()));
  const t0 = performance.now();
  const ipam = new IPAM(s, { selects: () => true });
  for (let i = 0; i < N_PER_NODE; i++) {
    await ipam.autoAssign({ handleId: `bench.${node}.${i}`, attrs: { node }, hostname: node, num4: 1, num6: 0 });
  }
  const t1 = performance.now();
  for (let i = 0; i < N_PER_NODE; i++) await ipam.releaseByHandle(`bench.${node}.${i}`);
  const t2 = performance.now();
  await s.close();
  process.send!({ t0, t1, t2 });
}

async function tenNodes(spec: StoreSpec): Promise<{ alloc: number; release: number }> {
  const self = new URL(import.meta.url).pathname;
  const kids = Array.from({ length: NODES }, (_, i) => fork(self, ['--worker', JSON.stringify(spec), `bench-node-${i}`]));
  await Promise.all(kids.map((k) => new Promise((r) => k.once('message', r))));
  const results = kids.map((k) => new Promise<{ t0: number; t1: number; t2: number }>((r) => k.once('message', r as never)));
  for (const k of kids) k.send('go');
  const done = await Promise.all(results);
  // Worker clocks are their own: use the slowest worker's phase durations against the total count.
  const allocWall = Math.max(...done.map((d) => d.t1 - d.t0));
  const releaseWall = Math.max(...done.map((d) => d.t2 - d.t1));
  return { alloc: (NODES * N_PER_NODE) / (allocWall / 1000), release: (NODES * N_PER_NODE) / (releaseWall / 1000) };
}

async function pluginRun(bin: string, config: (i: number) => string): Promise<{ add: number; del: number }> {
  const ids = Array.from({ length: N_PLUGIN }, (_, i) => i);
  const t0 = performance.now();
  const adds = await pool(ids, 10, (i) =>
    runCni(bin, { command: 'ADD', containerId: `bench${i}`, netns: '/var/run/netns/none', ifname: 'eth0', config: config(i) }),
  );
  const t1 = performance.now();
  const dels = await pool(ids, 10, (i) => runCni(bin, { command: 'DEL', containerId: `bench${i}`, ifname: 'eth0', config: config(i) }));
  const t2 = performance.now();
  const bad = [...adds, ...dels].find((r) => r.code !== 0);
  if (bad) throw new Error(`${bin} failed: ${bad.stdout}${bad.stderr}`);
  return { add: N_PLUGIN / ((t1 - t0) / 1000), del: N_PLUGIN / ((t2 - t1) / 1000) };
}

async function seedPool(s: Backend): Promise<void> {
  await s.apply(
    resourceKey('IPPool', 'bench'),
    JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'bench' }, spec: { cidr: '10.200.0.0/16', blockSize: 26 } }),
  );
}

const f0 = (n: number) => n.toFixed(0);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-'));
  const etcd = await startEtcd();
  const rows: string[] = [];
  try {
    const specs: StoreSpec[] = [
      { kind: 'embedded', path: join(dir, 'bench.db') },
      { kind: 'etcdv3', endpoints: etcd.endpoints },
    ];
    for (const spec of specs) {
      const s = open(spec);
      await seedPool(s);
      const raw = await rawWrites(s, 500);
      const one = await allocLoop(s, 'bench-single', N_ONE);
      await s.close();
      const ten = await tenNodes(spec);
      const fields = spec.kind === 'embedded' ? { datastore_path: spec.path } : { datastore_type: 'etcdv3', etcd_endpoints: spec.endpoints.join(',') };
      const plugin = await pluginRun(IPAM_BIN, (i) =>
        JSON.stringify({ cniVersion: '1.0.0', name: 'bench', type: 'tortie-ipam', nodename: `bench-plugin-${i % 5}`, ...fields, ipam: { type: 'tortie-ipam' } }),
      );
      rows.push(
        `| ${spec.kind} | ${f0(raw)} | ${f0(one.alloc)} (${(raw / one.alloc).toFixed(1)} writes' time) | ${f0(one.release)} | ${f0(ten.alloc)} | ${f0(ten.release)} | ${f0(plugin.add)} | ${f0(plugin.del)} |`,
      );
    }
    const hl = await pluginRun('/usr/lib/cni/host-local', () =>
      JSON.stringify({ cniVersion: '1.0.0', name: 'bench', type: 'host-local', ipam: { type: 'host-local', dataDir: join(dir, 'host-local'), ranges: [[{ subnet: '10.201.0.0/16' }]] } }),
    );
    rows.push(`| host-local (reference) | – | – | – | – | – | ${f0(hl.add)} | ${f0(hl.del)} |`);
  } finally {
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const table = [
    '| store | raw CAS writes/s | 1 node: allocs/s | 1 node: releases/s | 10 nodes at once: allocs/s | 10 nodes: releases/s | plugin ADD/s (10 in flight) | plugin DEL/s |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  console.log(table);
  if (process.argv.includes('--write')) {
    updateBenchmarkSection(
      'ipam-alloc',
      `## IPAM allocation throughput\n\nReproduce: \`npm run build && node dist/bench/ipam-alloc.js --write\`\n\n` +
        `Library: ${N_ONE} sequential allocations then releases on one node; ${NODES} worker processes × ${N_PER_NODE} ` +
        `allocations each, started together (one node name each). "writes' time" = how many raw CAS writes fit in one allocation ` +
        `(an allocation is a handle write plus a block write, after a handful of reads). Plugin: ${N_PLUGIN} ADDs then DELs of ` +
        `\`bin/tortie-ipam\` exec'd per call with 10 in flight, beside Debian's host-local driven identically.\n\n${table}\n`,
    );
  }
}

if (process.argv[2] === '--worker') {
  await worker(JSON.parse(process.argv[3]) as StoreSpec, process.argv[4]);
} else {
  await main();
}
