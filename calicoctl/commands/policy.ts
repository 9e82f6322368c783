// tortiectl policy explain SRC DST [PORT/PROTO]: the verdict of Calico's policy semantics for one
// packet, and which tier/policy/rule (or profile) decides each direction.
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { parseIP } from '../../libcalico-go/lib/net/ip.js';
import { type Explanation, type Flow, type Peer, type Protocol, verdict } from '../../libcalico-go/lib/policy/evaluate.js';
import { modelFromStore } from '../../libcalico-go/lib/policy/from-store.js';
import type { PolicyModel } from '../../libcalico-go/lib/policy/model.js';
import { type ParsedArgs, UsageError } from './args.js';
import type { Io } from './resources.js';

export const POLICY_USAGE = `Usage:
  tortiectl policy explain <SRC> <DST> [<PORT>/<PROTO>]

SRC and DST are NS/POD (a workload endpoint in the datastore) or an IP address. PORT/PROTO is
e.g. 80/TCP, 53/udp, 80 (TCP) or icmp; default 80/TCP. Prints whether the packet is allowed and
which tier, policy and rule decides the egress of SRC and the ingress of DST.
`;

export function parsePeer(arg: string, what: string): Peer {
  if (parseIP(arg)) return { ip: arg };
  if (/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(arg)) return arg;
  throw new UsageError(`${what} ${JSON.stringify(arg)} is neither NS/POD nor an IP address`);
}

export function parsePortProto(arg: string | undefined): { protocol: Protocol; port?: number } {
  if (arg === undefined) return { protocol: 'TCP', port: 80 };
  if (/^icmp$/i.test(arg)) return { protocol: 'ICMP' };
  const m = /^(\d+)(?:\/(tcp|udp|sctp))?$/i.exec(arg);
  const port = m ? Number(m[1]) : NaN;
  if (!m || port < 1 || port > 65535) throw new UsageError(`port ${JSON.stringify(arg)} must be PORT/PROTO (e.g. 80/TCP, 53/UDP) or icmp`);
  return { protocol: (m[2] ?? 'TCP').toUpperCase() as Protocol, port };
}

function describe(model: PolicyModel, p: Peer): string {
  if (typeof p !== 'string') {
    const ep = model.endpoints.find((e) => e.ips.includes(p.ip));
    return ep ? `${p.ip} (${ep.key})` : p.ip;
  }
  const ep = model.endpoints.find((e) => e.key === p);
  return ep?.ips.length ? `${p} (${ep.ips.join(', ')})` : p;
}

/** The endpoint key when the peer is (or has the address of) a known endpoint, else the address. */
function whoOf(model: PolicyModel, p: Peer): string {
  if (typeof p === 'string') return p;
  return model.endpoints.find((e) => e.ips.includes(p.ip))?.key ?? p.ip;
}

function line(dir: string, who: string, e: Explanation): string {
  const out = [`  ${dir} of ${who}: ${e.allowed ? 'allow' : 'deny'} by ${e.text}\n`];
  for (const t of e.trail) out.push(`    via ${t}\n`);
  return out.join('');
}

export function formatVerdict(model: PolicyModel, flow: Flow): string {
  const v = verdict(model, flow);
  const what = flow.protocol === 'ICMP' ? 'ICMP' : `${flow.port}/${flow.protocol}`;
  return (
    `${describe(model, flow.src)} -> ${describe(model, flow.dst)} ${what}: ${v.allowed ? 'ALLOWED' : 'DENIED'}\n` +
    line('egress ', whoOf(model, flow.src), v.egress) +
    line('ingress', whoOf(model, flow.dst), v.ingress)
  );
}

export async function cmdPolicy(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const [sub, src, dst, pp, ...extra] = p.positional;
  if (sub !== 'explain') throw new UsageError(`policy needs: explain${sub ? ` (got ${JSON.stringify(sub)})` : ''}\n${POLICY_USAGE}`);
  if (!src || !dst || extra.length > 0) throw new UsageError(POLICY_USAGE);
  const flow: Flow = { src: parsePeer(src, 'source'), dst: parsePeer(dst, 'destination'), ...parsePortProto(pp) };
  const model = await modelFromStore(store);
  io.out(formatVerdict(model, flow));
}
