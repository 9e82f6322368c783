// `tortiectl trace SRC DST [PORT/PROTO]`: reads the facts the path depends on from the datastore
// (workload endpoints, Nodes, every node's CalicoNodeStatus routes and MTUs, IPAM blocks and
// affinities, the policy model) and prints trace-path.ts's prediction.
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { affinityPrefix, parseAffinityKey } from '../../libcalico-go/lib/backend/keys.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { modelFromStore } from '../../libcalico-go/lib/policy/from-store.js';
import { type ParsedArgs, UsageError, flag } from './args.js';
import { nodeFacts } from './cluster-findings.js';
import { parsePeer, parsePortProto } from './policy.js';
import type { Io } from './resources.js';
import { type TraceFacts, formatTrace, tracePath } from './trace-path.js';
import { renderTabTable } from '../printers/tabwriter.js';

export const TRACE_USAGE = `Usage:
  tortiectl trace <SRC> <DST> [<PORT>/<PROTO>] [-o json] [--config=<config>]

SRC and DST are NS/POD (a workload endpoint) or an IP address (a node's address for the host).
PORT/PROTO: 80/TCP, 53/UDP, icmp; default 80/TCP. Prints the path hop by hop as the datastore
says it is programmed — the source pod, its cali veth (egress policy), each node's route (next
hop, proto bird or vxlan.calico), the next node, the destination veth (ingress policy) — and
where the packet would be dropped (no route, blackhole, policy, MTU notes).
Facts: WorkloadEndpoints, Nodes, CalicoNodeStatus (routes and MTUs, as each agent last reported),
IPAM blocks and affinities, policies. "tortie-lab trace" (the lab) also sends a real packet and
shows the interfaces the kernel saw it on.

Options:
  -o --output=<fmt>   "json" for machines.
`;

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' ? (v as Obj) : {});

export async function readTraceFacts(store: Backend): Promise<TraceFacts> {
  const rc = new ResourceClient(store);
  const [weps, nodes, statuses, model, aff] = await Promise.all([
    rc.list('WorkloadEndpoint'),
    rc.list('Node'),
    rc.list('CalicoNodeStatus'),
    modelFromStore(store),
    store.list(affinityPrefix()),
  ]);
  const endpoints = weps.map((w) => {
    const s = obj(w.spec);
    const ns = w.metadata.namespace ?? '';
    const pod = typeof s.pod === 'string' ? s.pod : w.metadata.name;
    return {
      key: `${ns}/${pod}`,
      node: String(s.node ?? ''),
      iface: String(s.interfaceName ?? ''),
      ips: ((s.ipNetworks as string[] | undefined) ?? []).map((c) => c.split('/')[0]!),
    };
  });
  const facts = new Map(nodeFacts(statuses).map((n) => [n.node, n]));
  const traceNodes = nodes.map((n) => {
    const bgp = obj(obj(n.spec).bgp);
    const nf = facts.get(n.metadata.name);
    const address = (typeof bgp.ipv4Address === 'string' ? bgp.ipv4Address.split('/')[0] : undefined) ?? nf?.t.nodeIP;
    const routes = nf
      ? (nf.routes as unknown as Obj[]).map((r) => ({
          destination: String(r.destination ?? ''),
          gateway: String(r.gateway ?? ''),
          interface: String(r.interface ?? ''),
          source: typeof obj(r.learnedFrom).sourceType === 'string' ? String(obj(r.learnedFrom).sourceType) : undefined,
          peer: typeof obj(r.learnedFrom).peerIP === 'string' ? String(obj(r.learnedFrom).peerIP) : undefined,
        }))
      : undefined;
    const vxlan = obj(n.spec).ipv4VXLANTunnelAddr;
    return { name: n.metadata.name, address, vxlanAddress: typeof vxlan === 'string' ? vxlan : undefined, routes, podMtu: nf?.t.mtu?.pod, underlayMtu: nf?.t.mtu?.underlay, underlayIf: nf?.t.mtu?.underlayInterface };
  });
  const blocks = aff.items.flatMap((kv) => {
    const a = parseAffinityKey(kv.key);
    return a ? [{ cidr: a.cidr, affinity: a.host }] : [];
  });
  return { endpoints, nodes: traceNodes, blocks, model };
}

export async function cmdTrace(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const [src, dst, pp, ...extra] = p.positional;
  if (!src || !dst || extra.length > 0) throw new UsageError(TRACE_USAGE);
  parsePeer(src, 'source');
  parsePeer(dst, 'destination');
  const portProto = parsePortProto(pp);
  const out = flag(p, 'output');
  if (out !== undefined && out !== 'json' && out !== 'table') throw new UsageError(`-o: ${JSON.stringify(out)} is not json or table`);
  const t = tracePath(await readTraceFacts(store), src, dst, portProto);
  io.out(out === 'json' ? JSON.stringify(t, null, 2) + '\n' : formatTrace(t, renderTabTable));
  if (!t.delivered) process.exitCode = 1;
}
