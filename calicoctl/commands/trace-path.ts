// `tortiectl trace`, the logic: the path a packet takes from SRC to DST, hop by hop, from the
// datastore's facts alone (workload endpoints, each node's CalicoNodeStatus routes and MTUs, IPAM
// blocks and their affinities, the policy model). The policy verdict at each end is the evaluator's
// (libcalico-go/lib/policy/evaluate.ts, as `policy explain`). Pure: no I/O.
import { cidrContainsIP, parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';
import { type Explanation, type Flow, verdict } from '../../libcalico-go/lib/policy/evaluate.js';
import type { PolicyModel } from '../../libcalico-go/lib/policy/model.js';

export interface TraceEndpoint {
  key: string;
  node: string;
  iface: string;
  ips: string[];
}

export interface TraceRoute {
  destination: string;
  gateway: string;
  interface: string;
  /** learnedFrom.sourceType (NodeMesh, BGPPeer, Static, …) and peer. */
  source?: string;
  peer?: string;
}

export interface TraceNode {
  name: string;
  address?: string;
  /** Its VXLAN tunnel (VTEP) address, the next hop of the other nodes' vxlan.calico routes. */
  vxlanAddress?: string;
  /** From its CalicoNodeStatus; absent when the node does not report. */
  routes?: TraceRoute[];
  podMtu?: number;
  underlayMtu?: number;
  underlayIf?: string;
}

export interface TraceFacts {
  endpoints: TraceEndpoint[];
  nodes: TraceNode[];
  blocks: { cidr: string; affinity: string | null }[];
  model: PolicyModel;
}

export type DropReason = 'no-route' | 'blackhole' | 'policy' | 'mtu' | 'loop' | 'unknown-node';

export interface Hop {
  node: string;
  /** Where: the pod's eth0, a cali veth, the route table, eth0/vxlan.calico of a node. */
  where: string;
  /** The kernel interface the packet crosses at this hop (what --live watches), if any. */
  iface?: string;
  /** in: the packet enters the node through it; out: leaves the node through it. */
  dir?: 'in' | 'out';
  what: string;
  drop?: DropReason;
  policy?: Explanation;
}

export interface Trace {
  src: string;
  dst: string;
  what: string;
  delivered: boolean;
  drop?: { reason: DropReason; node: string; where: string; why: string };
  hops: Hop[];
  /** Warnings that do not stop this packet (e.g. full-size packets would not fit). */
  notes: string[];
}

const VXLAN_OVERHEAD = 50;

function endpointByIp(f: TraceFacts, ip: string): TraceEndpoint | undefined {
  return f.endpoints.find((e) => e.ips.includes(ip));
}

/** The most specific route containing ip (a /32 beats a /26 beats a /24). */
export function lookupRoute(routes: readonly TraceRoute[], ip: string): TraceRoute | undefined {
  const addr = parseIP(ip);
  if (!addr) return undefined;
  let best: { r: TraceRoute; len: number } | undefined;
  for (const r of routes) {
    const c = parseCIDR(r.destination.includes('/') ? r.destination : `${r.destination}/32`);
    if (!c || c.version !== addr.version || !cidrContainsIP(c, addr)) continue;
    if (!best || c.prefix > best.len) best = { r, len: c.prefix };
  }
  return best?.r;
}

function proto(r: TraceRoute): string {
  if (r.interface === 'vxlan.calico') return 'vxlan.calico';
  if (r.gateway === 'blackhole') return 'bird (blackhole of the node\'s own block)';
  if (r.source === 'NodeMesh' || r.source === 'BGPPeer') return `bird (learned from ${r.peer ?? '?'}, ${r.source})`;
  return r.source ?? 'kernel';
}

/** Resolves SRC/DST as written (NS/POD or an IP) to an address and, if known, its endpoint or node. */
export function resolvePeer(f: TraceFacts, text: string): { ip: string; ep?: TraceEndpoint; host?: TraceNode } {
  if (parseIP(text)) return { ip: text, ep: endpointByIp(f, text), host: f.nodes.find((n) => n.address === text) };
  const ep = f.endpoints.find((e) => e.key === text);
  if (!ep) throw new Error(`no workload endpoint ${text} (NS/POD) in the datastore`);
  if (!ep.ips[0]) throw new Error(`workload endpoint ${text} has no address`);
  return { ip: ep.ips[0], ep };
}

export function tracePath(f: TraceFacts, srcText: string, dstText: string, p: { protocol: Flow['protocol']; port?: number }): Trace {
  const src = resolvePeer(f, srcText);
  const dst = resolvePeer(f, dstText);
  const what = p.protocol === 'ICMP' ? 'ICMP' : `${p.port}/${p.protocol}`;
  const flow: Flow = { src: src.ep ? src.ep.key : { ip: src.ip }, dst: dst.ep ? dst.ep.key : { ip: dst.ip }, protocol: p.protocol, port: p.port };
  const v = verdict(f.model, flow);
  const hops: Hop[] = [];
  const notes: string[] = [];
  const t: Trace = { src: src.ep ? `${src.ep.key} (${src.ip})` : src.ip, dst: dst.ep ? `${dst.ep.key} (${dst.ip})` : dst.ip, what, delivered: false, hops, notes };
  const drop = (reason: DropReason, node: string, where: string, why: string, extra: Partial<Hop> = {}): Trace => {
    hops.push({ node, where, what: `DROP (${reason}): ${why}`, drop: reason, ...extra });
    t.drop = { reason, node, where, why };
    return t;
  };
  const nodeOf = (name: string) => f.nodes.find((n) => n.name === name);
  let at: TraceNode | undefined;
  if (src.ep) {
    at = nodeOf(src.ep.node) ?? { name: src.ep.node };
    hops.push({ node: at.name, where: `pod ${src.ep.key} eth0`, what: `${src.ip} sends ${what} to ${dst.ip}` });
    hops.push({ node: at.name, where: src.ep.iface, iface: src.ep.iface, dir: 'in', what: `enters the node through the pod's veth` });
    if (!v.egress.allowed) return drop('policy', at.name, src.ep.iface, `egress policy of ${src.ep.key}: deny by ${v.egress.text}`, { policy: v.egress });
    hops.push({ node: at.name, where: src.ep.iface, what: `egress policy of ${src.ep.key}: allow by ${v.egress.text}`, policy: v.egress });
  } else if (src.host) {
    at = src.host;
    hops.push({ node: at.name, where: 'host', what: `the node itself (${src.ip}) sends ${what} to ${dst.ip}` });
  } else {
    throw new Error(`source ${srcText} is neither a workload endpoint nor a node address in the datastore`);
  }
  const visited = new Set<string>();
  for (;;) {
    if (visited.has(at.name)) return drop('loop', at.name, 'route', `the path comes back to ${at.name}: a routing loop`);
    visited.add(at.name);
    // Delivered here: the destination is this node itself, or a workload on it.
    if (dst.host && dst.host.name === at.name) {
      hops.push({ node: at.name, where: 'host', what: `delivered to the node itself (${dst.ip}); host endpoints/DefaultEndpointToHostAction are not traced` });
      t.delivered = true;
      break;
    }
    if (dst.ep && dst.ep.node === at.name) {
      hops.push({ node: at.name, where: 'route (main)', what: `${dst.ip} dev ${dst.ep.iface} scope link (workload ${dst.ep.key}, local)` });
      if (!v.ingress.allowed) return drop('policy', at.name, dst.ep.iface, `ingress policy of ${dst.ep.key}: deny by ${v.ingress.text}`, { policy: v.ingress });
      hops.push({ node: at.name, where: dst.ep.iface, iface: dst.ep.iface, dir: 'out', what: `ingress policy of ${dst.ep.key}: allow by ${v.ingress.text}`, policy: v.ingress });
      hops.push({ node: at.name, where: `pod ${dst.ep.key} eth0`, what: `delivered to ${dst.ip}` });
      t.delivered = true;
      break;
    }
    if (!at.routes) return drop('unknown-node', at.name, 'route', `${at.name} reports no CalicoNodeStatus with routes: its routing is unknown (is its agent running?)`);
    const r = lookupRoute(at.routes, dst.ip);
    if (!r) {
      const block = f.blocks.find((b) => {
        const c = parseCIDR(b.cidr);
        const a = parseIP(dst.ip);
        return c && a && c.version === a.version && cidrContainsIP(c, a);
      });
      if (!block && !dst.ep) {
        hops.push({ node: at.name, where: 'route (main)', iface: 'eth0', dir: 'out', what: `no Tortie route for ${dst.ip}: the node's default route (outside the cluster's pools)` });
        t.delivered = true;
        notes.push(`${dst.ip} is in no IPAM block: the packet leaves the cluster; its fate beyond ${at.name} is not traced`);
        break;
      }
      const owner = block ? `block ${block.cidr} is affine to ${block.affinity ?? 'no node'}` : 'no block holds it';
      return drop('no-route', at.name, 'route (main)', `${at.name} has no route to ${dst.ip} (${owner}; ${at.name} learned none from BGP/VXLAN)`);
    }
    if (r.gateway === 'blackhole') {
      return drop('blackhole', at.name, 'route (main)', `${r.destination} is ${at.name}'s own block (blackhole): no workload has ${dst.ip} here${dst.ep ? ` (the datastore puts ${dst.ep.key} on ${dst.ep.node})` : ''}`);
    }
    const next = f.nodes.find((n) => n.address === r.gateway || (n.vxlanAddress !== undefined && n.vxlanAddress === r.gateway));
    const vxlan = r.interface === 'vxlan.calico';
    hops.push({
      node: at.name,
      where: 'route (main)',
      what: `${r.destination} via ${r.gateway} dev ${r.interface || '?'} proto ${proto(r)}`,
    });
    hops.push({ node: at.name, where: r.interface || 'eth0', iface: r.interface || 'eth0', dir: 'out', what: `leaves ${at.name}${vxlan ? ' encapsulated (VXLAN, UDP 4789)' : ''} for ${next ? next.name : r.gateway}` });
    if (at.podMtu !== undefined && at.underlayMtu !== undefined) {
      const need = at.podMtu + (vxlan ? VXLAN_OVERHEAD : 0);
      if (need > at.underlayMtu) notes.push(`MTU: ${at.name} sends full-size pod packets of ${at.podMtu} bytes${vxlan ? ` + ${VXLAN_OVERHEAD} VXLAN` : ''} = ${need} over ${at.underlayIf ?? 'eth0'} with MTU ${at.underlayMtu}: they are dropped (DF) — small packets such as this one pass`);
    }
    if (!next) return drop('unknown-node', at.name, r.interface || 'eth0', `next hop ${r.gateway} is no node of the cluster: not traced further`);
    if (next.podMtu !== undefined && next.underlayMtu !== undefined && at.podMtu !== undefined) {
      const need = at.podMtu + (vxlan ? VXLAN_OVERHEAD : 0);
      if (need > next.underlayMtu) notes.push(`MTU: ${next.name}'s ${next.underlayIf ?? 'eth0'} has MTU ${next.underlayMtu} < ${need}: full-size packets from ${at.name} are dropped on arrival (a black hole; ping -M do -s ${at.podMtu - 28} shows it)`);
    }
    hops.push({ node: next.name, where: vxlan ? 'vxlan.calico' : 'eth0', iface: vxlan ? 'vxlan.calico' : 'eth0', dir: 'in', what: `arrives from ${at.name} (${at.address ?? '?'})` });
    at = next;
  }
  return t;
}

/** calicoctl-style output: a verdict line, a table of hops, notes. */
export function formatTrace(t: Trace, table: (headers: string[], rows: string[][]) => string): string {
  const head = `trace ${t.src} -> ${t.dst} ${t.what}: ${t.delivered ? 'DELIVERED' : `DROPPED at ${t.drop!.node} ${t.drop!.where} (${t.drop!.reason})`}\n`;
  const rows = t.hops.map((h, i) => [String(i + 1), h.node, h.where, h.what]);
  const notes = t.notes.map((n) => `note: ${n}\n`).join('');
  return head + table(['HOP', 'NODE', 'WHERE', 'WHAT'], rows) + notes;
}
