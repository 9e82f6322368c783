// IPAM on the three datastores side by side, and what one CNI ADD/DEL costs the Kubernetes API.
//
//   node dist/bench/kdd-ipam.js [--write]      (--write updates docs/benchmarks.md)
//
// 1. Allocations per second, the same allocator (libcalico-go/lib/ipam) and the same process
//    counts on embedded, etcdv3 (a real etcd) and kubernetes (a real kube-apiserver + its etcd,
//    manifests/crds.yaml applied with kubectl): one node sequentially in-process; 5 worker
//    processes (one node name each) at once; bin/tortie-ipam exec'd per ADD/DEL, 10 in flight.
// 2. API requests per CNI ADD and DEL in steady state, counted by the API server itself: its
//    /metrics `apiserver_request_total` by verb and resource, diffed around N sequential ADDs on
//    one node whose affine block already exists (and then around their DELs).
import { fork } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../libcalico-go/lib/backend/api.js';
import { resourceKey } from '../libcalico-go/lib/backend/keys.js';
import type { DatastoreConfig } from '../libcalico-go/lib/config/datastore-config.js';
import { openBackend } from '../libcalico-go/lib/config/open-backend.js';
import { IPAM } from '../libcalico-go/lib/ipam/ipam.js';
import { startEtcd } from '../testing/etcd.js';
import { startKubeApiserver, type TestKubeApiserver } from '../testing/kube-apiserver.js';
import { IPAM_BIN, pool, runCni } from '../testing/ipam-plugin-fixture.js';
import { updateBenchmarkSection } from './report.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const N_ONE = Number(process.env.N_ONE ?? 200);
const WORKERS = 5;
const N_PER_WORKER = Number(process.env.N_PER_WORKER ?? 40);
const N_PLUGIN = Number(process.env.N_PLUGIN ?? 100);
const N_METRICS = Number(process.env.N_METRICS ?? 50);
const NODE_NAMES = ['bench-single', ...Array.from({ length: WORKERS }, (_, i) => `bench-node-${i}`), ...Array.from({ length: 5 }, (_, i) => `bench-plugin-${i}`), 'bench-metrics'];

interface Store {
  kind: 'embedded' | 'etcdv3' | 'kubernetes';
  cfg: DatastoreConfig;
  conf: Record<string, unknown>;
}

const base = { datastorePath: '', etcdEndpoints: [] as string[] };

async function allocLoop(s: Backend, node: string, n: number): Promise<{ alloc: number; release: number }> {
  const ipam = new IPAM(s, { selects: () => true });
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await ipam.autoAssign({ handleId: `bench.${node}.${i}`, attrs: { node }, hostname: node, num4: 1, num6: 0 });
  const t1 = performance.now();
  for (let i = 0; i < n; i++) await ipam.releaseByHandle(`bench.${node}.${i}`);
  const t2 = performance.now();
  return { alloc: n / ((t1 - t0) / 1000), release: n / ((t2 - t1) / 1000) };
}

async function worker(cfg: DatastoreConfig, node: string): Promise<void> {
  const s = await openBackend(cfg);
  const ipam = new IPAM(s, { selects: () => true });
  process.send!({ ready: true });
  await new Promise<void>((r) => process.once('message', () => r()));
  const t0 = performance.now();
  for (let i = 0; i < N_PER_WORKER; i++) await ipam.autoAssign({ handleId: `bench.${node}.${i}`, attrs: { node }, hostname: node, num4: 1, num6: 0 });
  const t1 = performance.now();
  for (let i = 0; i < N_PER_WORKER; i++) await ipam.releaseByHandle(`bench.${node}.${i}`);
  const t2 = performance.now();
  await s.close();
  process.send!({ t0, t1, t2 });
}

async function workers(cfg: DatastoreConfig): Promise<{ alloc: number; release: number }> {
  const self = new URL(import.meta.url).pathname;
  const kids = Array.from({ length: WORKERS }, (_, i) => fork(self, ['--worker', JSON.stringify(cfg), `bench-node-${i}`]));
  await Promise.all(kids.map((k) => new Promise((r) => k.once('message', r))));
  const results = kids.map((k) => new Promise<{ t0: number; t1: number; t2: number }>((r) => k.once('message', r as never)));
  for (const k of kids) k.send('go');
  const done = await Promise.all(results);
  const allocWall = Math.max(...done.map((d) => d.t1 - d.t0));
  const releaseWall = Math.max(...done.map((d) => d.t2 - d.t1));
  return { alloc: (WORKERS * N_PER_WORKER) / (allocWall / 1000), release: (WORKERS * N_PER_WORKER) / (releaseWall / 1000) };
}

const conf = (st: Store, node: string) =>
  JSON.stringify({ cniVersion: '1.0.0', name: 'bench', type: 'tortie-ipam', nodename: node, ...st.conf, ipam: { type: 'tortie-ipam' } });

async function cni(st: Store, command: 'ADD' | 'DEL', id: string, node: string): Promise<void> {
  const r = await runCni(IPAM_BIN, {
    command,
    containerId: id,
    netns: command === 'ADD' ? '/var/run/netns/none' : undefined,
    ifname: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${id}`,
    config: conf(st, node),
  });
  if (r.code !== 0) throw new Error(`tortie-ipam ${command} ${id} on ${st.kind}: ${r.stdout}${r.stderr}`);
}

async function plugin(st: Store): Promise<{ add: number; del: number }> {
  const ids = Array.from({ length: N_PLUGIN }, (_, i) => i);
  const t0 = performance.now();
  await pool(ids, 10, (i) => cni(st, 'ADD', `bench${i}`, `bench-plugin-${i % 5}`));
  const t1 = performance.now();
  await pool(ids, 10, (i) => cni(st, 'DEL', `bench${i}`, `bench-plugin-${i % 5}`));
  const t2 = performance.now();
  return { add: N_PLUGIN / ((t1 - t0) / 1000), del: N_PLUGIN / ((t2 - t1) / 1000) };
}

// ---- the API server's own request counts ----------------------------------------------------

function scrape(api: TestKubeApiserver): Promise<Map<string, number>> {
  const tls = { ca: readFileSync(api.pki.caFile), cert: readFileSync(api.pki.adminCertFile), key: readFileSync(api.pki.adminKeyFile) };
  return new Promise((resolve, reject) => {
    const req = request(`${api.url}/metrics`, { ...tls }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => {
        const m = new Map<string, number>();
        for (const line of text.split('\n')) {
          if (!line.startsWith('apiserver_request_total{')) continue;
          const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
          if (!labels.resource) continue; // /metrics, /readyz, …
          const k = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}${labels.code && !labels.code.startsWith('2') ? ` (${labels.code})` : ''}`;
          m.set(k, (m.get(k) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
        }
        resolve(m);
      });
    });
    req.on('error', reject);
    req.end();
  });
}

function diff(a: Map<string, number>, b: Map<string, number>, n: number): { key: string; perOp: number }[] {
  const out: { key: string; perOp: number }[] = [];
  for (const [k, v] of b) {
    const d = v - (a.get(k) ?? 0);
    if (d > 0 && !/leases|events|endpointslices|serviceaccounts\/token/.test(k)) out.push({ key: k, perOp: d / n });
  }
  return out.sort((x, y) => y.perOp - x.perOp || x.key.localeCompare(y.key));
}

async function requestsPerOp(api: TestKubeApiserver, st: Store): Promise<{ add: { key: string; perOp: number }[]; del: { key: string; perOp: number }[] }> {
  const node = 'bench-metrics';
  // Warm-up: the node's affine block exists (the first ADD on a node claims it: not steady state).
  for (let i = 0; i < 3; i++) await cni(st, 'ADD', `warm${i}`, node);
  const a0 = await scrape(api);
  for (let i = 0; i < N_METRICS; i++) await cni(st, 'ADD', `metrics${i}`, node);
  const a1 = await scrape(api);
  for (let i = 0; i < N_METRICS; i++) await cni(st, 'DEL', `metrics${i}`, node);
  const a2 = await scrape(api);
  for (let i = 0; i < 3; i++) await cni(st, 'DEL', `warm${i}`, node);
  return { add: diff(a0, a1, N_METRICS), del: diff(a1, a2, N_METRICS) };
}

async function seed(s: Backend): Promise<void> {
  await s.apply(
    resourceKey('IPPool', 'bench'),
    JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'bench' }, spec: { cidr: '10.200.0.0/16', blockSize: 26, nodeSelector: 'all()' } }),
  );
}

const f0 = (n: number) => n.toFixed(0);

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-kdd-'));
  const etcd = await startEtcd();
  const api = await startKubeApiserver({ extraArgs: ['--feature-gates=APIServerIdentity=false'] });
  const rows: string[] = [];
  const rates: Record<string, { one: number; many: number; add: number }> = {};
  let perOp: Awaited<ReturnType<typeof requestsPerOp>> | undefined;
  try {
    await api.kubectl(['apply', '-f', join(ROOT, 'manifests/crds.yaml')]);
    await api.kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
    // The k8s Nodes exist first, as kubelet registers them (IPAM reads the host's Node).
    await api.kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: NODE_NAMES.map((name) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } })) }));
    const path = join(dir, 'bench.db');
    const stores: Store[] = [
      { kind: 'embedded', cfg: { ...base, datastoreType: 'embedded', datastorePath: path }, conf: { datastore_type: 'embedded', datastore_path: path } },
      { kind: 'etcdv3', cfg: { ...base, datastoreType: 'etcdv3', etcdEndpoints: etcd.endpoints }, conf: { datastore_type: 'etcdv3', etcd_endpoints: etcd.endpoints.join(',') } },
      { kind: 'kubernetes', cfg: { ...base, datastoreType: 'kubernetes', kubeconfig: api.kubeconfig }, conf: { datastore_type: 'kubernetes', kubernetes: { kubeconfig: api.kubeconfig } } },
    ];
    for (const st of stores) {
      const s = await openBackend(st.cfg);
      await seed(s);
      const one = await allocLoop(s, 'bench-single', N_ONE);
      await s.close();
      const many = await workers(st.cfg);
      const pl = await plugin(st);
      rates[st.kind] = { one: one.alloc, many: many.alloc, add: pl.add };
      rows.push(`| ${st.kind} | ${f0(one.alloc)} | ${f0(one.release)} | ${f0(many.alloc)} | ${f0(many.release)} | ${f0(pl.add)} | ${f0(pl.del)} |`);
      console.log(rows.at(-1));
      if (st.kind === 'kubernetes') perOp = await requestsPerOp(api, st);
    }
  } finally {
    await api.stop();
    await etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const r = (a: string, b: string, f: 'one' | 'many' | 'add') => (rates[a]![f] / rates[b]![f]).toFixed(2);
  const table = [
    `| store | 1 node: allocs/s | 1 node: releases/s | ${WORKERS} processes at once: allocs/s | releases/s | tortie-ipam ADD/s (10 in flight) | DEL/s |`,
    '|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
  const ratios =
    `Ratios (kubernetes ÷ etcdv3, kubernetes ÷ embedded): 1 node ${r('kubernetes', 'etcdv3', 'one')}, ${r('kubernetes', 'embedded', 'one')}; ` +
    `${WORKERS} processes ${r('kubernetes', 'etcdv3', 'many')}, ${r('kubernetes', 'embedded', 'many')}; ` +
    `exec'd ADDs ${r('kubernetes', 'etcdv3', 'add')}, ${r('kubernetes', 'embedded', 'add')}.`;
  const reqTable = (xs: { key: string; perOp: number }[]) =>
    ['| request (verb resource) | per call |', '|---|---|', ...xs.map((x) => `| ${x.key} | ${x.perOp.toFixed(2)} |`), `| **total** | **${xs.reduce((s, x) => s + x.perOp, 0).toFixed(2)}** |`].join('\n');
  const add = reqTable(perOp!.add);
  const del = reqTable(perOp!.del);
  console.log(`${table}\n\n${ratios}\n\nper ADD:\n${add}\n\nper DEL:\n${del}`);
  if (process.argv.includes('--write')) {
    updateBenchmarkSection(
      'kdd-ipam',
      `## IPAM on kubernetes vs etcd vs embedded, and API requests per CNI call\n\nReproduce: \`npm run build && node dist/bench/kdd-ipam.js --write\`\n\n` +
        `One run, three datastores: embedded (SQLite file), etcdv3 (etcd v3.6 on loopback), kubernetes (kube-apiserver v1.34 + its own etcd, ` +
        `manifests/crds.yaml, admin client certificate over TLS on loopback). Same allocator, same process counts: ${N_ONE} sequential ` +
        `allocations then releases in one process on one node; ${WORKERS} worker processes × ${N_PER_WORKER} each, one node name each, started ` +
        `together; ${N_PLUGIN} \`bin/tortie-ipam\` ADDs then DELs exec'd per call, 10 in flight, over 5 node names. IPPool /16, blockSize 26.\n\n` +
        `${table}\n\n${ratios}\n\n` +
        `### API requests per CNI ADD and DEL (kubernetes)\n\nCounted by the API server: \`apiserver_request_total\` from its \`/metrics\`, ` +
        `by verb and resource, diffed around ${N_METRICS} sequential \`tortie-ipam\` ADDs on one node whose affine block already exists ` +
        `(steady state), then around their ${N_METRICS} DELs; divided by ${N_METRICS}. Leases/events (the API server's own) are left out. ` +
        `GET of a collection is a list (the verb label says LIST).\n\nPer ADD:\n\n${add}\n\nPer DEL:\n\n${del}\n`,
    );
  }
}

if (process.argv[2] === '--worker') {
  await worker(JSON.parse(process.argv[3]!) as DatastoreConfig, process.argv[4]!);
} else {
  await main();
}
