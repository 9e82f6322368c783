// Pod ADD/DEL latency through the whole CNI path, next to Debian's ptp + host-local driven by the
// same harness in the same run, and tortie-node's memory idle and with 100 pods.
//
//   node dist/bench/cni-latency.js [--write]      (as root; --write updates docs/benchmarks.md)
//
// Every call is exec'd as libcni does, inside a node's host network namespace
// (`ip netns exec <host> <plugin>`, the same wrapper for both). Pod namespaces are made before
// the clock starts.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Conflist, runConflistAdd, runConflistDel } from '../testing/cni-harness.js';
import { BIN, TestNode } from '../testing/node-fixture.js';
import { updateBenchmarkSection } from './report.js';

const SEQUENTIAL = 40;
const CONCURRENT = 30;
const PODS_FOR_RSS = 100;

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

interface Runs {
  seqAdd: number[];
  seqDel: number[];
  conAdd: number[];
  conDel: number[];
  conAddWall: number;
  conDelWall: number;
}

async function measure(node: TestNode, conflist: Conflist, dir: string, tag: string): Promise<Runs> {
  const rt = (i: number, ns: string) => ({
    containerId: `${tag}-${i}`,
    netns: `/run/netns/${ns}`,
    ifname: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=${tag}-${i}`,
    cacheDir: join(dir, 'cache'),
    cniPath: [join(BIN('tortie'), '..'), '/usr/lib/cni'],
    wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs],
  });
  const timed = async (f: () => Promise<{ ok: boolean; error?: unknown }>) => {
    const t0 = performance.now();
    const r = await f();
    if (!r.ok) throw new Error(`${tag}: ${JSON.stringify(r.error)}`);
    return performance.now() - t0;
  };
  const seqNs = Array.from({ length: SEQUENTIAL }, (_, i) => node.makePodNs(`${tag}s${i}`));
  const seqAdd: number[] = [];
  const seqDel: number[] = [];
  for (const [i, ns] of seqNs.entries()) seqAdd.push(await timed(() => runConflistAdd(conflist, rt(i, ns))));
  for (const [i, ns] of seqNs.entries()) seqDel.push(await timed(() => runConflistDel(conflist, rt(i, ns))));
  const conNs = Array.from({ length: CONCURRENT }, (_, i) => node.makePodNs(`${tag}c${i}`));
  let t0 = performance.now();
  const conAdd = await Promise.all(conNs.map((ns, i) => timed(() => runConflistAdd(conflist, rt(1000 + i, ns)))));
  const conAddWall = performance.now() - t0;
  t0 = performance.now();
  const conDel = await Promise.all(conNs.map((ns, i) => timed(() => runConflistDel(conflist, rt(1000 + i, ns)))));
  const conDelWall = performance.now() - t0;
  for (const ns of [...seqNs, ...conNs]) node.deletePodNs(ns);
  return { seqAdd, seqDel, conAdd, conDel, conAddWall, conDelWall };
}

function rssMB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-cni-'));
  const node = new TestNode({ nodeName: 'bench-node', datastoreEnv: { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: join(dir, 'ds.db') } });
  try {
    node.setUp();
    await node.startAgent();
    const tortie: Conflist = {
      name: 'k8s-pod-network',
      cniVersion: '1.0.0',
      plugins: [{ type: 'tortie', agent_socket: node.socket, nodename_file: join(node.stateDir, 'nodename'), ipam: { type: 'tortie-ipam' } }],
    };
    const ptp: Conflist = {
      name: 'ptpnet',
      cniVersion: '1.0.0',
      plugins: [{ type: 'ptp', ipam: { type: 'host-local', dataDir: join(dir, 'host-local'), ranges: [[{ subnet: '10.99.0.0/16' }]], routes: [{ dst: '0.0.0.0/0' }] } }],
    };
    // Warm-up: the first ADD builds the agent's handler and claims the node's block.
    await measureOnce(node, tortie, dir);
    const idle = rssMB(node.agentPid!);
    const t = await measure(node, tortie, dir, 'tt');
    const p = await measure(node, ptp, dir, 'pp');
    const loaded = await rssWithPods(node, tortie, dir);
    const row = (name: string, r: Runs) =>
      `| ${name} | ${pct(r.seqAdd, 50).toFixed(1)} | ${pct(r.seqAdd, 99).toFixed(1)} | ${pct(r.seqDel, 50).toFixed(1)} | ${pct(r.seqDel, 99).toFixed(1)} | ${pct(r.conAdd, 50).toFixed(0)} | ${pct(r.conAdd, 99).toFixed(0)} | ${r.conAddWall.toFixed(0)} | ${r.conDelWall.toFixed(0)} |`;
    const ratio = (a: number[], b: number[]) => (pct(a, 50) / pct(b, 50)).toFixed(2);
    const table = [
      `| plugin | ADD p50 ms (1 at a time) | ADD p99 | DEL p50 | DEL p99 | ADD p50 (${CONCURRENT} at once) | ADD p99 (${CONCURRENT} at once) | ${CONCURRENT} ADDs all done, ms | ${CONCURRENT} DELs all done, ms |`,
      '|---|---|---|---|---|---|---|---|---|',
      row('tortie → tortie-node (tortie-ipam in the agent)', t),
      row('Debian ptp + host-local (reference)', p),
      `| ratio tortie / reference (p50) | ${ratio(t.seqAdd, p.seqAdd)} | | ${ratio(t.seqDel, p.seqDel)} | | ${ratio(t.conAdd, p.conAdd)} | | ${(t.conAddWall / p.conAddWall).toFixed(2)} | ${(t.conDelWall / p.conDelWall).toFixed(2)} |`,
    ].join('\n');
    const mem = `tortie-node RSS: ${idle.toFixed(1)} MB idle (after its first pod), ${loaded.toFixed(1)} MB with ${PODS_FOR_RSS} pods.`;
    console.log(`${table}\n\n${mem}`);
    if (process.argv.includes('--write')) {
      updateBenchmarkSection(
        'cni-latency',
        `## Pod ADD/DEL latency and agent memory\n\nReproduce (as root): \`npm run build && node dist/bench/cni-latency.js --write\`\n\n` +
          `Each call goes through the libcni-like harness exactly as a runtime would exec it, inside the node's host namespace ` +
          `(\`ip netns exec\`, the same for both rows). ${SEQUENTIAL} pods one at a time, then ${CONCURRENT} at once. ` +
          `A tortie ADD returns once the agent's policy pass covers the new pod (its policy is in the kernel). ` +
          `Targets (issue 3): ADD p50 ≤ 100 ms one at a time, ${CONCURRENT} concurrent ADDs all done within 2 s, RSS ≤ 100 MB with 100 pods.\n\n` +
          `${table}\n\n${mem}\n`,
      );
    }
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureOnce(node: TestNode, conflist: Conflist, dir: string): Promise<void> {
  const ns = node.makePodNs('warm');
  const rt = { containerId: 'warm', netns: `/run/netns/${ns}`, ifname: 'eth0', cacheDir: join(dir, 'cache'), cniPath: [join(BIN('tortie'), '..'), '/usr/lib/cni'], wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs] };
  const a = await runConflistAdd(conflist, rt);
  if (!a.ok) throw new Error(`warm-up ADD failed: ${JSON.stringify(a.error)}\n${node.agentLog}`);
  await runConflistDel(conflist, rt);
  node.deletePodNs(ns);
}

async function rssWithPods(node: TestNode, conflist: Conflist, dir: string): Promise<number> {
  const nss = Array.from({ length: PODS_FOR_RSS }, (_, i) => node.makePodNs(`m${i}`));
  const rt = (i: number) => ({ containerId: `mem-${i}`, netns: `/run/netns/${nss[i]}`, ifname: 'eth0', cacheDir: join(dir, 'cache'), cniPath: [join(BIN('tortie'), '..'), '/usr/lib/cni'], wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs] });
  for (let i = 0; i < PODS_FOR_RSS; i += 10) {
    const batch = await Promise.all(Array.from({ length: 10 }, (_, j) => runConflistAdd(conflist, rt(i + j))));
    for (const b of batch) if (!b.ok) throw new Error(`ADD for the memory figure failed: ${JSON.stringify(b.error)}`);
  }
  const rss = rssMB(node.agentPid!);
  for (let i = 0; i < PODS_FOR_RSS; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => runConflistDel(conflist, rt(i + j))));
  for (const ns of nss) node.deletePodNs(ns);
  return rss;
}

await main();
