// Route convergence of a newly claimed IPAM block, in BGP (BIRD mesh) and VXLAN mode, at 5, 10 and
// 20 nodes, with tortie-node's and BIRD's memory per node.
//
//   node dist/bench/convergence.js [--write] [--sizes 5,10,20] [--rounds 4]   (as root)
//
// Each lab (tortie-lab, network namespaces only) is brought up and settled (BGP: every BIRD has
// all its mesh sessions Established; VXLAN: every node has a route to every other node's VTEP
// block). A second IP pool, 10.240.0.0/16 with /26 blocks and the mode's encapsulation, is then
// created, so that every CNI ADD on a node without a block in it claims a new block (in VXLAN
// mode a node's first block of the lab's pool is already claimed at start-up for its VTEP
// address). One ADD warms up; then each round ADDs a pod (the real CNI path: the lab's conflist
// with ipv4_pools set to the new pool) on a node with no block yet and polls every other node's
// main routing table every 10 ms (/proc/<agent pid>/net/route: the node namespace's table, read
// without spawning `ip` 19 times per 10 ms on a 2-core machine) until the route to the new block
// is on all of them; `ip -n <node> route show <block>` confirms it on each afterwards.
import { loadavg } from 'node:os';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runConflistAdd } from '../testing/cni-harness.js';
import { BIN, ROOT, conflist } from '../lab/pkg/lab.js';
import type { LabState } from '../lab/pkg/state.js';
import { IP, ipBatch, run } from '../lab/pkg/sys.js';
import type { Mode, NodePlan } from '../lab/pkg/topology.js';
import { median, rssMB, sleep, withLab } from './lab-util.js';
import { updateBenchmarkSection } from './report.js';

const POLL_MS = 10;
const TIMEOUT_MS = 15_000;
const SETTLE_TIMEOUT_MS = 60_000;
const BENCH_POOL = { cidr: '10.240.0.0/16', base: ip4('10.240.0.0'), bits: 16, blockSize: 26 };

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const SIZES = (arg('sizes') ?? '5,10,20').split(',').map(Number);
const ROUNDS = Number(arg('rounds') ?? '4');
const MODES: Mode[] = ((arg('modes') ?? 'bgp,vxlan').split(',') as Mode[]);

function ip4(s: string): number {
  return s.split('.').reduce((a, o) => a * 256 + Number(o), 0) >>> 0;
}
function ip4s(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}
function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}
/** /proc/net/route holds addresses as host-order (little-endian here) hex of the network bytes. */
function procHex(h: string): number {
  const v = parseInt(h, 16);
  return (((v & 255) << 24) | (((v >>> 8) & 255) << 16) | (((v >>> 16) & 255) << 8) | (v >>> 24)) >>> 0;
}

/** Routes (dest/len) of one namespace's main table inside the bench pool. */
function benchRoutes(pid: number): string[] {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/net/route`, 'utf8');
  } catch {
    return [];
  }
  const out: string[] = [];
  const poolMask = maskOf(BENCH_POOL.bits);
  for (const line of text.split('\n').slice(1)) {
    const f = line.split('\t');
    if (f.length < 8) continue;
    const dst = procHex(f[1]!);
    const mask = procHex(f[7]!);
    const flags = parseInt(f[3]!, 16);
    if ((flags & 0x0200) !== 0) continue; // RTF_REJECT (blackhole/unreachable): not a route to the block
    if ((dst & poolMask) >>> 0 !== BENCH_POOL.base) continue;
    let len = 0;
    for (let m = mask; m !== 0; m = (m << 1) >>> 0) len++;
    out.push(`${ip4s(dst)}/${len}`);
  }
  return out;
}

function agentPid(s: LabState, node: NodePlan): number {
  const rec = s.processes.find((p) => p.role === `agent:${node.name}`);
  if (!rec) throw new Error(`no agent recorded for ${node.name}`);
  return rec.pid;
}

function runDir(s: LabState, node: NodePlan): string {
  return join(s.dir, 'nodes', node.name, 'run');
}

function birdPid(s: LabState, node: NodePlan): number | undefined {
  try {
    return Number(readFileSync(join(runDir(s, node), 'bird.pid'), 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

async function ctl(s: LabState, args: string[], input?: string): Promise<string> {
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', DATASTORE_TYPE: 'embedded', DATASTORE_PATH: s.datastore.path! };
  const r = await run([BIN('tortiectl'), '--config', join(s.dir, 'tortiectl.cfg'), ...args], { env, input });
  if (r.code !== 0) throw new Error(`tortiectl ${args.join(' ')}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** Waits until the lab's routing has settled; returns how long that took. */
async function settle(s: LabState, mode: Mode): Promise<number> {
  const t0 = Date.now();
  const k = s.plan.nodes.length;
  const deadline = t0 + SETTLE_TIMEOUT_MS;
  for (;;) {
    const ok = await Promise.all(
      s.plan.nodes.map(async (n) => {
        if (mode === 'bgp') {
          const r = await run(['/usr/sbin/birdc', '-s', join(runDir(s, n), 'bird.ctl'), 'show', 'protocols'], { timeoutMs: 5000 });
          return r.code === 0 && (r.stdout.match(/Established/g) ?? []).length >= k - 1;
        }
        const r = await run([IP, '-n', n.ns, 'route', 'show', 'dev', 'vxlan.calico']);
        return r.code === 0 && r.stdout.split('\n').filter((l) => / via /.test(l)).length >= k - 1;
      }),
    );
    if (ok.every(Boolean)) return Date.now() - t0;
    if (Date.now() > deadline) throw new Error(`lab ${s.name} did not settle within ${SETTLE_TIMEOUT_MS / 1000}s (${ok.filter(Boolean).length}/${k} nodes ready)`);
    await sleep(100);
  }
}

interface Round {
  node: string;
  block: string;
  addMs: number;
  /** from the start of the ADD to the route being on the last other node */
  fromStart: number;
  /** from the ADD's return to the same moment (negative: converged before the runtime got the result) */
  fromReturn: number;
}

let podSeq = 0;

/** One CNI ADD into the bench pool on `node`, timing the new block's route on every other node. */
async function round(s: LabState, node: NodePlan, made: string[]): Promise<Round> {
  const others = s.plan.nodes.filter((n) => n !== node).map((n) => ({ n, pid: agentPid(s, n) }));
  const seen = others.map(() => new Map<string, number>());
  const baseline = others.map((o) => new Set(benchRoutes(o.pid)));
  const podName = `conv${podSeq++}`;
  const netns = `${s.plan.prefix}pod-bench.${podName}`;
  made.push(netns);
  await ipBatch(null, [`netns add ${netns}`]);
  await ipBatch(netns, ['link set lo up']);
  const cl = conflist(s, node);
  const main = cl.plugins[0] as unknown as { ipam: { ipv4_pools: string[] } };
  main.ipam.ipv4_pools = [BENCH_POOL.cidr];
  let polling = true;
  const poll = (async () => {
    while (polling) {
      const now = performance.now();
      others.forEach((o, i) => {
        for (const r of benchRoutes(o.pid)) if (!baseline[i]!.has(r) && !seen[i]!.has(r)) seen[i]!.set(r, now);
      });
      await sleep(POLL_MS);
    }
  })();
  try {
    const t0 = performance.now();
    const add = await runConflistAdd(cl, {
      containerId: `bench-${s.name}-${podName}`,
      netns: `/run/netns/${netns}`,
      ifname: 'eth0',
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${podName}`,
      cacheDir: join(s.dir, 'cni-cache'),
      cniPath: [join(ROOT, 'bin'), '/usr/lib/cni'],
      wrapper: [IP, 'netns', 'exec', node.ns],
      timeoutMs: 30_000,
    });
    const tRet = performance.now();
    if (!add.ok) throw new Error(`CNI ADD on ${node.name} failed: ${JSON.stringify(add.error)}`);
    const ip = ((add.result as { ips?: { address: string }[] }).ips?.[0]?.address ?? '').split('/')[0]!;
    const bm = maskOf(BENCH_POOL.blockSize);
    const block = `${ip4s((ip4(ip) & bm) >>> 0)}/${BENCH_POOL.blockSize}`;
    if (((ip4(ip) & maskOf(BENCH_POOL.bits)) >>> 0) !== BENCH_POOL.base) throw new Error(`pod got ${ip}, not from ${BENCH_POOL.cidr}`);
    if (baseline.some((b) => b.has(block))) throw new Error(`block ${block} was already routed before the ADD on ${node.name} (not a new block)`);
    const deadline = t0 + TIMEOUT_MS;
    while (!seen.every((m) => m.has(block))) {
      if (performance.now() > deadline) {
        const missing = others.filter((_, i) => !seen[i]!.has(block)).map((o) => o.n.name);
        throw new Error(`route to ${block} (${node.name}) missing after ${TIMEOUT_MS / 1000}s on ${missing.join(', ')}`);
      }
      await sleep(POLL_MS);
    }
    const last = Math.max(...seen.map((m) => m.get(block)!));
    // Confirm with ip on each node.
    const check = await Promise.all(others.map((o) => run([IP, '-n', o.n.ns, 'route', 'show', block])));
    const bad = others.filter((_, i) => !check[i]!.stdout.includes(block.split('/')[0]!)).map((o) => o.n.name);
    if (bad.length > 0) throw new Error(`ip route show ${block} is empty on ${bad.join(', ')}`);
    return { node: node.name, block, addMs: tRet - t0, fromStart: last - t0, fromReturn: last - tRet };
  } finally {
    polling = false;
    await poll;
  }
}

interface SizeResult {
  mode: Mode;
  nodes: number;
  upMs: number;
  settleMs: number;
  rounds: Round[];
  agentRss: number[];
  birdRss: number[];
}

async function measureLab(mode: Mode, k: number): Promise<SizeResult> {
  const name = `cv${mode === 'bgp' ? 'b' : 'x'}${k}`;
  const made: string[] = [];
  const t0 = Date.now();
  return withLab({ name, nodes: k, mode }, async (s) => {
    try {
      const upMs = Date.now() - t0;
      const settleMs = await settle(s, mode);
      await ctl(s, ['apply', '-f', '-'], JSON.stringify({
        apiVersion: 'projectcalico.org/v3',
        kind: 'IPPool',
        metadata: { name: 'bench-convergence' },
        spec: { cidr: BENCH_POOL.cidr, blockSize: BENCH_POOL.blockSize, ipipMode: 'Never', vxlanMode: mode === 'vxlan' ? 'Always' : 'Never', natOutgoing: false, nodeSelector: 'all()' },
      }));
      await sleep(1000); // let every agent see the new pool (BIRD reconfigured for it)
      const nodes = s.plan.nodes;
      await round(s, nodes[0]!, made); // warm-up, not counted
      const rounds: Round[] = [];
      for (let i = 1; i <= ROUNDS && i < nodes.length; i++) {
        const r = await round(s, nodes[i]!, made);
        rounds.push(r);
        console.error(`  ${mode} ${k} nodes: ${r.node} ${r.block}: ADD ${r.addMs.toFixed(0)} ms, on all ${k - 1} others ${r.fromStart.toFixed(0)} ms after the ADD started (${r.fromReturn.toFixed(0)} ms after it returned)`);
      }
      const agentRss = nodes.map((n) => rssMB(agentPid(s, n)));
      const birdRss = mode === 'bgp' ? nodes.map((n) => rssMB(birdPid(s, n))) : [];
      return { mode, nodes: k, upMs, settleMs, rounds, agentRss, birdRss };
    } finally {
      for (const ns of made) await run([IP, 'netns', 'del', ns]);
    }
  });
}

function table(results: SizeResult[]): string {
  const f = (x: number) => (Number.isFinite(x) ? (x / 1000).toFixed(2) : '–');
  const mb = (xs: number[]) => (xs.length === 0 ? '– (no BIRD)' : `${median(xs).toFixed(1)} / ${Math.max(...xs).toFixed(1)}`);
  const rows = results.map((r) => {
    const st = r.rounds.map((x) => x.fromStart);
    const rt = r.rounds.map((x) => x.fromReturn);
    const add = r.rounds.map((x) => x.addMs);
    return `| ${r.mode === 'bgp' ? 'BGP (BIRD mesh)' : 'VXLAN'} | ${r.nodes} | ${r.rounds.length} | ${f(median(st))} | ${f(Math.max(...st))} | ${f(median(rt))} | ${f(Math.max(...rt))} | ${f(median(add))} | ${(r.settleMs / 1000).toFixed(1)} | ${mb(r.agentRss)} | ${mb(r.birdRss)} |`;
  });
  return [
    '| mode | nodes | new blocks | route on all other nodes, s after ADD start: p50 | max | s after ADD returned: p50 | max | CNI ADD, s (p50) | settle after up, s | tortie-node RSS MB per node: median / max | BIRD RSS MB per node: median / max |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
  ].join('\n');
}

async function main(): Promise<void> {
  if (!process.env.TORTIE_LAB_DIR) process.env.TORTIE_LAB_DIR = '/tmp/tortie-bench-labs';
  mkdirSync(process.env.TORTIE_LAB_DIR, { recursive: true });
  const load0 = loadavg()[0]!;
  const results: SizeResult[] = [];
  for (const mode of MODES) {
    for (const k of SIZES) {
      console.error(`lab: ${mode}, ${k} nodes`);
      results.push(await measureLab(mode, k));
    }
  }
  const t = table(results);
  const worst = Math.max(...results.filter((r) => r.nodes === Math.max(...SIZES)).flatMap((r) => r.rounds.map((x) => x.fromStart)));
  const verdict = `Target (issue): ≤ 2 s at 20 nodes. Worst case here at ${Math.max(...SIZES)} nodes: ${(worst / 1000).toFixed(2)} s from the start of the ADD — ${worst <= 2000 ? 'met' : 'NOT met'}.`;
  const load = `Machine load (1-min load average, 2 cores) at start / end: ${load0.toFixed(1)} / ${loadavg()[0]!.toFixed(1)}.`;
  console.log(`${t}\n\n${verdict}\n\n${load}`);
  if (process.argv.includes('--write')) {
    updateBenchmarkSection(
      'convergence',
      `## Route convergence of a new block, and memory per node\n\nReproduce (as root): \`npm run build && node dist/bench/convergence.js --write\`\n\n` +
        `One tortie-lab per row (network namespaces; embedded datastore; BGP: BIRD node-to-node mesh; VXLAN: \`vxlan.calico\`). ` +
        `After the lab settles (BGP: all mesh sessions Established on every BIRD; VXLAN: every node routes every other node's VTEP block), ` +
        `a second pool (${BENCH_POOL.cidr}, /${BENCH_POOL.blockSize} blocks, the mode's encapsulation) is created so that each measured ` +
        `CNI ADD claims a new block (in VXLAN mode each node's first block in the lab's pool is claimed at start-up for its VTEP). ` +
        `One warm-up ADD, then one ADD per round on a node with no block yet (node2, node3, …); every other node's main table is polled ` +
        `every ${POLL_MS} ms (\`/proc/<agent pid>/net/route\`, the node namespace's table; confirmed with \`ip -n <node> route show <block>\`) ` +
        `until the route to the new block is on all of them. "After ADD start" includes the CNI ADD itself (block claim, veth, agent); ` +
        `"after ADD returned" is what remains once the runtime has the pod's IP. Few rounds per row: max ≈ the worst of ${ROUNDS}. ` +
        `RSS from /proc/<pid>/status (VmRSS) of each node's recorded tortie-node PID and of BIRD (\`<runDir>/bird.pid\`), at the end of the row.\n\n` +
        `${t}\n\n${verdict}\n\n${load}\n`,
    );
  }
}

await main();
