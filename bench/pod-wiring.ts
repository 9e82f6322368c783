// Pod wiring cost in the node's namespace: felix/dataplane/linux/podnet.ts's wirePod (host veth
// cali…, pod eth0 with its /32 and default route via 169.254.1.1, proxy ARP, host route) and
// unwirePod, IPv4 and dual stack, with the number of processes each runs. Moved here from
// podnet.test.ts, which asserted "a wire + unwire cycle takes < 100 ms" (a wall-clock limit does
// not belong in a correctness test; the test keeps the behaviour: repeated cycles leave nothing).
//
//   npm run build && node dist/bench/pod-wiring.js [--write] [--n 40]      (as root)
//
// Two namespaces made for the run (`tortie-pw<hex>-host`, `-pod`), deleted at the end, also on
// error. The host namespace looks like a node (uplink veth with an address and a default route,
// forwarding on); the operations run there through podnet-driver.js as the agent runs them.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { updateBenchmarkSection } from './report.js';

const IP = '/usr/sbin/ip';
const DRIVER = fileURLToPath(new URL('../felix/dataplane/linux/testdata/podnet-driver.js', import.meta.url));
const nArg = process.argv.indexOf('--n');
const N = nArg > 0 ? Number(process.argv[nArg + 1]) : 40;
const R = `tortie-pw${randomBytes(3).toString('hex')}`;
const HOST = `${R}-host`;
const POD = `${R}-pod`;

function must(argv: string[], input?: string): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, env: { LC_ALL: 'C' } });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

type S = { median: number; p90: number; max: number; min: number };
type Bench = { wire: S; unwire: S; cycle: S; execsPerWire: number; execsPerUnwire: number };

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  if (!existsSync(DRIVER)) throw new Error(`${DRIVER} not built (npm run build)`);
  const load0 = loadavg()[0]!;
  try {
    must([IP, 'netns', 'add', HOST]);
    must([IP, 'netns', 'add', POD]);
    must([IP, '-n', HOST, '-batch', '-'], ['link set lo up', 'link add eth0 mtu 1450 type veth peer name up0peer', 'link set eth0 up', 'link set up0peer up', 'addr add 10.99.0.1/24 dev eth0', 'route add default via 10.99.0.254 dev eth0', ''].join('\n'));
    must([IP, 'netns', 'exec', HOST, '/usr/sbin/sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    must([IP, '-n', POD, 'link', 'set', 'lo', 'up']);
    const v4 = { netns: `/run/netns/${POD}`, ifname: 'eth0', hostIfName: 'cali0123456789e', addresses: ['10.233.64.7/32'], mtu: 1410 };
    const dual = { ...v4, addresses: ['10.233.64.7/32', 'fd00::7/128'] };
    const out = must([IP, 'netns', 'exec', HOST, process.execPath, DRIVER, JSON.stringify([{ op: 'bench', spec: v4, n: 3 }, { op: 'bench', spec: v4, n: N }, { op: 'bench', spec: dual, n: N }])]);
    const answers = JSON.parse(out) as Array<{ ok: boolean; value?: Bench; error?: unknown }>;
    for (const a of answers) if (!a.ok) throw new Error(`driver: ${JSON.stringify(a.error)}`);
    const [, r4, r6] = answers.map((a) => a.value!);
    const f = (x: number) => x.toFixed(1);
    const row = (what: string, r: Bench) =>
      `| ${what} | ${f(r.wire.median)} | ${f(r.wire.p90)} | ${f(r.unwire.median)} | ${f(r.unwire.p90)} | ${f(r.cycle.median)} | ${f(r.cycle.max)} | ${r.execsPerWire} | ${r.execsPerUnwire} |`;
    const body = [
      '## Pod wiring (wirePod / unwirePod)',
      '',
      'Reproduce (as root): `npm run build && node dist/bench/pod-wiring.js --write`',
      '',
      `podnet.ts in a namespace made to look like a node, ${N} wire + unwire cycles per row after 3 warm-up cycles; the pod namespace is made before the clock starts. "processes" = \`ip\` and sysctl runs per operation.`,
      '',
      '| addresses | wire ms: median | p90 | unwire ms: median | p90 | cycle ms: median | max | processes per wire | per unwire |',
      '|---|---|---|---|---|---|---|---|---|',
      row('IPv4', r4!),
      row('IPv4 + IPv6', r6!),
      '',
      `Machine load (1-min load average, 2 cores) at start / end: ${load0.toFixed(1)} / ${loadavg()[0]!.toFixed(1)}.`,
      '',
    ].join('\n');
    console.log(body);
    if (process.argv.includes('--write')) updateBenchmarkSection('pod-wiring', body);
  } finally {
    for (const n of [POD, HOST]) spawnSync(IP, ['netns', 'del', n]);
  }
}

await main();
