// Cross-node pod-to-pod TCP throughput and latency through Tortie, in BGP (no encapsulation) and
// VXLAN mode, next to two references measured in the same lab and run: node-to-node over the same
// underlay, and the same pod-to-pod path wired by hand with `ip` only (no agent).
//
//   node dist/bench/throughput.js [--write] [--runs 3] [--seconds 5]   (as root)
//
// A two-node tortie-lab (network namespaces only) with a pod on each node. The hand-wired path
// adds one namespace per node, exactly shaped like a Calico pod: a veth pair with the pod's MTU,
// a /32 on the pod side, 169.254.1.1 as its gateway answered by proxy ARP on the host side, a /32
// route to it on the node; between the nodes a static route via the other node's underlay
// address (BGP mode), or via a hand-made VXLAN device (same dstport 4789, MTU 1450, nolearning,
// udpcsum, a static neighbour and FDB entry; VNI 4097, because the kernel refuses a second device
// with the agent's VNI 4096 on the same port in one namespace). Each run measures the three paths
// one after the other (iperf3 -t N -J to an `iperf3 -s -1` started and ended by PID; then
// `ping -c 50 -i 0.01`); the tables give the median of the runs.
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { mkdirSync } from 'node:fs';
import { podAdd } from '../lab/pkg/lab.js';
import type { LabState } from '../lab/pkg/state.js';
import { IP, ipBatch, killPid, pidAlive, procStartTime, run } from '../lab/pkg/sys.js';
import type { Mode } from '../lab/pkg/topology.js';
import { median, sleep, withLab } from './lab-util.js';
import { updateBenchmarkSection } from './report.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const RUNS = Number(arg('runs') ?? '3');
const SECONDS = Number(arg('seconds') ?? '5');
const PINGS = 50;
const PORT = 5201;
const VNI = 4097;
const SYSCTL = '/usr/sbin/sysctl';

interface Path {
  label: string;
  srcNs: string;
  dstNs: string;
  dstIp: string;
}

interface Sample {
  gbps: number;
  rttAvg: number;
  rttP50: number;
  rttP90: number;
}

async function must(argv: string[]): Promise<string> {
  const r = await run(argv);
  if (r.code !== 0) throw new Error(`${argv.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

async function listening(ns: string, port: number): Promise<boolean> {
  const r = await run([IP, 'netns', 'exec', ns, '/usr/bin/ss', '-Hltn', `sport = :${port}`]);
  return r.code === 0 && r.stdout.trim() !== '';
}

/** One iperf3 run: a one-shot server in dstNs (ended by its PID whatever happens), the client in srcNs. */
async function iperf(p: Path): Promise<number> {
  const server = spawn(IP, ['netns', 'exec', p.dstNs, '/usr/bin/iperf3', '-s', '-1', '-p', String(PORT)], { stdio: 'ignore' });
  const pid = server.pid;
  if (pid === undefined) throw new Error(`could not start iperf3 -s in ${p.dstNs}`);
  const start = procStartTime(pid);
  try {
    const deadline = Date.now() + 5000;
    while (!(await listening(p.dstNs, PORT))) {
      if (!pidAlive(pid, start)) throw new Error(`iperf3 -s in ${p.dstNs} exited`);
      if (Date.now() > deadline) throw new Error(`iperf3 -s in ${p.dstNs} not listening`);
      await sleep(20);
    }
    const r = await run([IP, 'netns', 'exec', p.srcNs, '/usr/bin/iperf3', '-c', p.dstIp, '-p', String(PORT), '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 20) * 1000 });
    const j = JSON.parse(r.stdout || '{}') as { error?: string; end?: { sum_received?: { bits_per_second?: number } } };
    const bps = j.end?.sum_received?.bits_per_second;
    if (j.error || r.code !== 0 || !bps) throw new Error(`iperf3 ${p.label} failed: ${j.error ?? r.stderr.trim()}`);
    return bps / 1e9;
  } finally {
    await killPid(pid, start, 1000);
  }
}

async function ping(p: Path): Promise<{ avg: number; p50: number; p90: number }> {
  const r = await run([IP, 'netns', 'exec', p.srcNs, '/usr/bin/ping', '-n', '-c', String(PINGS), '-i', '0.01', '-W', '1', p.dstIp], { timeoutMs: 30_000 });
  const t = [...r.stdout.matchAll(/time=([\d.]+) ms/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
  if (t.length < PINGS * 0.9) throw new Error(`ping ${p.label}: ${t.length}/${PINGS} answered\n${r.stdout}${r.stderr}`);
  const q = (x: number) => t[Math.min(t.length - 1, Math.ceil(x * t.length) - 1)]!;
  return { avg: t.reduce((a, b) => a + b, 0) / t.length, p50: q(0.5), p90: q(0.9) };
}

async function waitReachable(p: Path): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const r = await run([IP, 'netns', 'exec', p.srcNs, '/usr/bin/ping', '-n', '-c', '1', '-W', '1', p.dstIp]);
    if (r.code === 0) return;
    if (Date.now() > deadline) throw new Error(`${p.label}: ${p.dstIp} not reachable from ${p.srcNs}`);
    await sleep(200);
  }
}

async function mtuOf(ns: string, dev: string): Promise<number> {
  const j = JSON.parse(await must([IP, '-n', ns, '-j', 'link', 'show', dev])) as { mtu: number }[];
  return j[0]!.mtu;
}

interface Side {
  node: string;
  nodeAddr: string;
  podNs: string;
  hostIf: string;
  podIp: string;
  podNet: string;
  vtepIp: string;
  vtepMac: string;
}

/** The hand-wired pod path between the lab's two nodes. Returns the namespaces it created. */
async function handWire(s: LabState, mode: Mode, mtu: number, made: string[]): Promise<Side[]> {
  const [n1, n2] = s.plan.nodes;
  const sides: Side[] = [
    { node: n1!.ns, nodeAddr: n1!.address, podNs: `${s.plan.prefix}hw-a`, hostIf: 'hwa', podIp: '10.250.1.10', podNet: '10.250.1.0/24', vtepIp: '10.251.0.1', vtepMac: '02:00:0a:fb:00:01' },
    { node: n2!.ns, nodeAddr: n2!.address, podNs: `${s.plan.prefix}hw-b`, hostIf: 'hwb', podIp: '10.250.2.10', podNet: '10.250.2.0/24', vtepIp: '10.251.0.2', vtepMac: '02:00:0a:fb:00:02' },
  ];
  for (const [i, me] of sides.entries()) {
    const peer = sides[1 - i]!;
    made.push(me.podNs);
    await ipBatch(null, [`netns add ${me.podNs}`]);
    await ipBatch(me.node, [`link add ${me.hostIf} mtu ${mtu} type veth peer name eth0 mtu ${mtu} netns ${me.podNs}`, `link set ${me.hostIf} up`]);
    await ipBatch(me.podNs, [
      'link set lo up',
      'link set eth0 up',
      `addr add ${me.podIp}/32 dev eth0`,
      'route add 169.254.1.1 dev eth0 scope link',
      'route add default via 169.254.1.1 dev eth0',
    ]);
    await must([IP, 'netns', 'exec', me.node, SYSCTL, '-qw', `net.ipv4.conf.${me.hostIf}.proxy_arp=1`, 'net.ipv4.ip_forward=1']);
    const lines = [`route add ${me.podIp}/32 dev ${me.hostIf} scope link`];
    if (mode === 'vxlan') {
      lines.push(
        `link add hwvx address ${me.vtepMac} mtu 1450 type vxlan id ${VNI} local ${me.nodeAddr} dev eth0 dstport 4789 nolearning udpcsum`,
        `addr add ${me.vtepIp}/32 dev hwvx`,
        'link set hwvx up',
        `neigh add ${peer.vtepIp} lladdr ${peer.vtepMac} dev hwvx nud permanent`,
        `route add ${peer.podNet} via ${peer.vtepIp} dev hwvx onlink`,
      );
    } else {
      lines.push(`route add ${peer.podNet} via ${peer.nodeAddr} dev eth0`);
    }
    await ipBatch(me.node, lines);
    if (mode === 'vxlan') await must(['/usr/sbin/bridge', '-n', me.node, 'fdb', 'append', peer.vtepMac, 'dev', 'hwvx', 'dst', peer.nodeAddr, 'self', 'permanent']);
  }
  return sides;
}

interface ModeResult {
  mode: Mode;
  mtu: number;
  paths: { label: string; samples: Sample[] }[];
}

async function measureMode(mode: Mode): Promise<ModeResult> {
  const name = `tp${mode === 'bgp' ? 'b' : 'x'}`;
  const made: string[] = [];
  return withLab({ name, nodes: 2, mode }, async (s) => {
    try {
      const quiet = () => undefined;
      const a = await podAdd(name, 'node1', 'bench/a', {}, quiet);
      const b = await podAdd(name, 'node2', 'bench/b', {}, quiet);
      const mtu = await mtuOf(a.netns, 'eth0');
      const sides = await handWire(s, mode, mtu, made);
      const paths: Path[] = [
        { label: 'Tortie pod → pod', srcNs: a.netns, dstNs: b.netns, dstIp: b.ip! },
        { label: 'hand-wired pod → pod', srcNs: sides[0]!.podNs, dstNs: sides[1]!.podNs, dstIp: sides[1]!.podIp },
        { label: 'node → node (underlay)', srcNs: s.plan.nodes[0]!.ns, dstNs: s.plan.nodes[1]!.ns, dstIp: s.plan.nodes[1]!.address },
      ];
      for (const p of paths) await waitReachable(p);
      const out = paths.map((p) => ({ label: p.label, samples: [] as Sample[] }));
      for (let r = 0; r < RUNS; r++) {
        // Rotate the order each run so that no path always goes first (load drifts on a shared machine).
        for (let k = 0; k < paths.length; k++) {
          const i = (k + r) % paths.length;
          const p = paths[i]!;
          const gbps = await iperf(p);
          const rtt = await ping(p);
          out[i]!.samples.push({ gbps, rttAvg: rtt.avg, rttP50: rtt.p50, rttP90: rtt.p90 });
          console.error(`  ${mode} run ${r + 1}: ${p.label}: ${gbps.toFixed(2)} Gbit/s, rtt avg ${rtt.avg.toFixed(3)} ms p50 ${rtt.p50.toFixed(3)} p90 ${rtt.p90.toFixed(3)}`);
        }
      }
      return { mode, mtu, paths: out };
    } finally {
      for (const ns of made) await run([IP, 'netns', 'del', ns]);
    }
  });
}

function table(r: ModeResult): string {
  const med = (ss: Sample[], k: keyof Sample) => median(ss.map((x) => x[k]));
  const [t, h, n] = r.paths;
  const rows = r.paths.map((p) => {
    const runs = p.samples.map((x) => x.gbps.toFixed(2)).join(', ');
    return `| ${p.label} | ${med(p.samples, 'gbps').toFixed(2)} | ${runs} | ${med(p.samples, 'rttAvg').toFixed(3)} | ${med(p.samples, 'rttP50').toFixed(3)} | ${med(p.samples, 'rttP90').toFixed(3)} |`;
  });
  const pc = (x: number) => `${(x * 100).toFixed(0)} %`;
  const ratio = (x: ModeResult['paths'][number], y: ModeResult['paths'][number]) =>
    `${pc(med(x.samples, 'gbps') / med(y.samples, 'gbps'))} | | ${(med(x.samples, 'rttAvg') / med(y.samples, 'rttAvg')).toFixed(2)}× | ${(med(x.samples, 'rttP50') / med(y.samples, 'rttP50')).toFixed(2)}× | ${(med(x.samples, 'rttP90') / med(y.samples, 'rttP90')).toFixed(2)}×`;
  return [
    `**${r.mode === 'bgp' ? 'BGP mode (no encapsulation)' : 'VXLAN mode'}** (pod MTU ${r.mtu})\n`,
    `| path | TCP Gbit/s (median of ${RUNS}) | runs | RTT avg ms (median) | RTT p50 ms | RTT p90 ms |`,
    '|---|---|---|---|---|---|',
    ...rows,
    `| **Tortie / hand-wired** | ${ratio(t!, h!)} |`,
    `| Tortie / node-to-node | ${ratio(t!, n!)} |`,
  ].join('\n');
}

async function main(): Promise<void> {
  if (!process.env.TORTIE_LAB_DIR) process.env.TORTIE_LAB_DIR = '/tmp/tortie-bench-labs';
  mkdirSync(process.env.TORTIE_LAB_DIR, { recursive: true });
  const load0 = loadavg()[0]!;
  const results: ModeResult[] = [];
  for (const mode of ['bgp', 'vxlan'] as Mode[]) {
    console.error(`lab: ${mode}, 2 nodes`);
    results.push(await measureMode(mode));
  }
  const text = results.map(table).join('\n\n');
  const tput = (r: ModeResult) => median(r.paths[0]!.samples.map((x) => x.gbps)) / median(r.paths[1]!.samples.map((x) => x.gbps));
  const verdict = `Target (issue): Tortie pod-to-pod ≥ 95 % of the hand-wired path. BGP: ${(tput(results[0]!) * 100).toFixed(0)} % (${tput(results[0]!) >= 0.95 ? 'met' : 'NOT met'}); VXLAN: ${(tput(results[1]!) * 100).toFixed(0)} % (${tput(results[1]!) >= 0.95 ? 'met' : 'NOT met'}).`;
  const load = `Machine load (1-min load average, 2 cores) at start / end: ${load0.toFixed(1)} / ${loadavg()[0]!.toFixed(1)} (other work shares the machine; at high load the run-to-run spread is large).`;
  console.log(`${text}\n\n${verdict}\n\n${load}`);
  if (process.argv.includes('--write')) {
    updateBenchmarkSection(
      'throughput',
      `## Pod-to-pod throughput and latency across nodes\n\nReproduce (as root): \`npm run build && node dist/bench/throughput.js --write\`\n\n` +
        `A two-node tortie-lab per mode, a pod on each node (the real CNI path). In the same lab: node-to-node over the same underlay ` +
        `(veths to one bridge), and the same pod-to-pod path wired by hand with \`ip\` only — a namespace per node with a veth pair ` +
        `(the Tortie pod's MTU), a /32, 169.254.1.1 as gateway answered by proxy ARP, a /32 route on the node, and between the nodes a ` +
        `static route (BGP mode) or a hand-made VXLAN device (dstport 4789, MTU 1450, nolearning, udpcsum, static neighbour + FDB; VNI ${VNI} ` +
        `because the agent's VNI 4096 already has a device on that port in the namespace): the kernel's own cost for that path, no agent. ` +
        `Each run measures the three paths in turn (the order rotated from run to run): TCP \`iperf3 -t ${SECONDS} -J\` (one stream) to a one-shot \`iperf3 -s -1\`, then ` +
        `\`ping -c ${PINGS} -i 0.01\`; ${RUNS} runs, medians. Everything shares the machine's 2 cores (sender, receiver and softirq), ` +
        `so throughput is CPU-bound and noisy run to run; compare within one table.\n\n${text}\n\n${verdict}\n\n${load}\n`,
    );
  }
}

await main();
