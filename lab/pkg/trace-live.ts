// `tortie-lab trace N SRC DST [PORT/PROTO]`: `tortiectl trace`'s prediction (from the datastore),
// then one real packet from SRC's network namespace while tcpdump watches every node the
// prediction crosses (`-i any`, inside the node's namespace, filtered on this packet's addresses,
// protocol and port): the interfaces the kernel saw it on, in and out, against the predicted ones.
import { type ChildProcess, spawn } from 'node:child_process';
import { ctlRun } from './lab.js';
import { type LabState, mustReadState } from './state.js';
import { IP, run } from './sys.js';

const NODE = process.execPath;
const NSAGENT = new URL('./nsagent.js', import.meta.url).pathname;
const TCPDUMP = '/usr/bin/tcpdump';
const PING = '/usr/bin/ping';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

interface PredictedHop {
  node: string;
  where: string;
  iface?: string;
  dir?: 'in' | 'out';
  what: string;
  drop?: string;
}
interface Prediction {
  src: string;
  dst: string;
  what: string;
  delivered: boolean;
  drop?: { reason: string; node: string; where: string; why: string };
  hops: PredictedHop[];
}

export interface Sighting {
  node: string;
  iface: string;
  dir: 'in' | 'out';
}

export interface LiveResult {
  text: string;
  agrees: boolean;
  predicted: Sighting[];
  seen: Sighting[];
}

const key = (x: Sighting) => `${x.node} ${x.iface} ${x.dir}`;

/** tcpdump -i any lines ("12:00:00.1 cali123 In  IP a > b: …") → the interfaces and directions. */
export function parseTcpdump(node: string, out: string): Sighting[] {
  const seen: Sighting[] = [];
  for (const line of out.split('\n')) {
    const m = /^\S+\s+(\S+)\s+(In|Out|M|P|B)\s+IP\s/.exec(line.trim());
    if (!m || (m[2] !== 'In' && m[2] !== 'Out')) continue;
    const s: Sighting = { node, iface: m[1]!, dir: m[2] === 'In' ? 'in' : 'out' };
    if (!seen.some((x) => key(x) === key(s))) seen.push(s);
  }
  return seen;
}

function parsePP(pp: string | undefined): { proto: 'tcp' | 'udp' | 'icmp'; port: number } {
  if (pp === undefined) return { proto: 'tcp', port: 80 };
  if (/^icmp$/i.test(pp)) return { proto: 'icmp', port: 0 };
  const m = /^(\d+)(?:\/(tcp|udp))?$/i.exec(pp);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new Error(`port ${JSON.stringify(pp)} must be PORT/PROTO (80/TCP, 53/UDP) or icmp`);
  return { proto: (m[2]?.toLowerCase() ?? 'tcp') as 'tcp' | 'udp', port: Number(m[1]) };
}

/** The namespace SRC sends from: a lab pod (NS/POD or its address) or a node (its address or name). */
function sourceNs(s: LabState, src: string): string {
  if (src.includes('/')) {
    const p = s.pods[src];
    if (!p) throw new Error(`no pod ${src} in lab ${s.name}`);
    return p.netns;
  }
  const pod = Object.values(s.pods).find((p) => p.ip === src);
  if (pod) return pod.netns;
  const node = s.plan.nodes.find((n) => n.address === src || n.name === src);
  if (node) return node.ns;
  throw new Error(`${src} is no pod or node address of lab ${s.name}`);
}

const ipOf = (text: string) => /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text.split(' ')[0]!)?.[0] ?? /\(([\d.]+)\)/.exec(text)?.[1];

export async function liveTrace(lab: string, src: string, dst: string, pp: string | undefined): Promise<LiveResult> {
  const s = mustReadState(lab);
  if (s.kube) throw new Error(`lab ${lab} is a Kubernetes cluster: live trace is for the lab's own pods`);
  const { proto, port } = parsePP(pp);
  const args = ['trace', src, dst, ...(pp ? [pp] : [])];
  const table = await ctlRun(s, args);
  const json = await ctlRun(s, [...args, '-o', 'json']);
  if (json.code !== 0 && json.code !== 1) throw new Error(`tortiectl trace failed: ${(json.stderr || json.stdout).trim()}`);
  const pred = JSON.parse(json.stdout) as Prediction;
  const srcIp = ipOf(pred.src)!;
  const dstIp = ipOf(pred.dst)!;
  const predicted = pred.hops.filter((h) => h.iface && h.dir).map((h) => ({ node: h.node, iface: h.iface!, dir: h.dir! }));
  const nodes = [...new Set(pred.hops.map((h) => h.node))].map((name) => s.plan.nodes.find((n) => n.name === name)!).filter(Boolean);
  const filter = ['src', 'host', srcIp, 'and', 'dst', 'host', dstIp, 'and', ...(proto === 'icmp' ? ['icmp'] : [proto, 'dst', 'port', String(port)])];
  const dumps: { node: string; child: ChildProcess; out: string }[] = [];
  try {
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((resolve, reject) => {
            const child = spawn(IP, ['netns', 'exec', n.ns, TCPDUMP, '-i', 'any', '-nn', '-l', '-c', '20', ...filter], { env: { PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
            const d = { node: n.name, child, out: '' };
            dumps.push(d);
            child.stdout!.on('data', (b: Buffer) => (d.out += b.toString()));
            let err = '';
            const t = setTimeout(() => reject(new Error(`tcpdump in ${n.ns} did not start: ${err}`)), 10_000);
            child.stderr!.on('data', (b: Buffer) => {
              err += b.toString();
              if (err.includes('listening on')) {
                clearTimeout(t);
                resolve();
              }
            });
            child.once('exit', () => {
              clearTimeout(t);
              reject(new Error(`tcpdump in ${n.ns} exited: ${err.trim()}`));
            });
          }),
      ),
    );
    const ns = sourceNs(s, src);
    let sent: string;
    if (proto === 'icmp') {
      const r = await run([IP, 'netns', 'exec', ns, PING, '-n', '-c', '1', '-W', '1', dstIp], { env: { PATH } });
      sent = `ping ${dstIp}: ${r.code === 0 ? 'echo reply' : 'no reply'}`;
    } else {
      const req = { proto, port, timeoutMs: 1000, targets: [{ key: 't', ip: dstIp }] };
      const r = await run([IP, 'netns', 'exec', ns, NODE, NSAGENT, 'probe', JSON.stringify(req)], { env: { PATH } });
      const ok = r.code === 0 && (JSON.parse(r.stdout) as Record<string, boolean>).t === true;
      sent = `${proto.toUpperCase()} ${dstIp}:${port}: ${ok ? (proto === 'tcp' ? 'connected' : 'answered') : 'no answer within 1s'}`;
    }
    await new Promise((r) => setTimeout(r, 300));
    const seen = dumps.flatMap((d) => parseTcpdump(d.node, d.out));
    const p = new Set(predicted.map(key));
    const sn = new Set(seen.map(key));
    const all = [...predicted, ...seen.filter((x) => !p.has(key(x)))];
    const wn = Math.max(12, ...all.map((x) => x.node.length));
    const wi = Math.max(16, ...all.map((x) => x.iface.length));
    const rows = all.map((x) => `  ${x.node.padEnd(wn)} ${x.iface.padEnd(wi)} ${x.dir.padEnd(4)} ${p.has(key(x)) ? 'predicted' : 'NOT predicted'}, ${sn.has(key(x)) ? 'seen' : 'NOT seen'}`);
    const agrees = p.size === sn.size && [...p].every((k) => sn.has(k));
    const text =
      table.stdout +
      `live: sent from ${src} (netns ${ns}): ${sent}\n` +
      `live: interfaces the packet crossed (tcpdump -i any in ${nodes.map((n) => n.ns).join(', ')}):\n` +
      rows.join('\n') +
      '\n' +
      (agrees
        ? `live: the kernel agrees with the prediction (${pred.delivered ? 'delivered' : `dropped at ${pred.drop?.node} ${pred.drop?.where}: ${pred.drop?.reason}`})\n`
        : `live: the kernel DISAGREES with the prediction\n`);
    return { text, agrees, predicted, seen };
  } finally {
    for (const d of dumps) if (d.child.exitCode === null) d.child.kill('SIGTERM');
  }
}
