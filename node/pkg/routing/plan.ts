// The pure half of the agent's cross-node routing loop (calico-node's confd + Felix's route side):
// from one datastore snapshot, what this node must run and program.
//
// * BIRD: calico-node's CALICO_NETWORKING_BACKEND decides (`bird`, the default: BIRD runs, with
//   the node-to-node mesh, BGP peers and this node's blocks; `vxlan` and `none`: no BIRD). BIRD
//   then installs other nodes' blocks of unencapsulated pools (`via <node ip> dev <if> proto bird`)
//   and this node's blocks as `blackhole <block> proto bird`.
// * VXLAN: for pools with vxlanMode Always/CrossSubnet, this node needs a tunnel address (IPAM
//   handle `vxlan-tunnel-addr-<node>`) and the overlay reconciler programs routes, neighbours and
//   FDB entries towards the other nodes' VTEPs. Without BIRD, the reconciler also programs the
//   blackholes and the unencapsulated routes (backend `vxlan`; `none` leaves those to no one).
// * IPIP pools cannot be served (this kernel has no IPIP): a problem, reported, never silent.

import type { Resource } from '../../../libcalico-go/lib/apis/v3/resource.js';
import { normalizeEncapMode } from '../../../libcalico-go/lib/apis/v3/validate/ippool.js';
import type { BlockData } from '../../../libcalico-go/lib/ipam/block.js';
import { cidrContainsIP, formatCIDR, formatIP, parseCIDR, parseIP } from '../../../libcalico-go/lib/net/ip.js';
import { type BgpModel, buildBgpModel, renderBirdConfig, type SecretResolver } from '../../../confd/pkg/index.js';
import { type OverlayInput, type PoolSpec, type RemoteBlock, type RemoteVtep, vtepMacForNode } from '../../../felix/index.js';

export type NetworkingBackend = 'bird' | 'vxlan' | 'none';

/** CALICO_NETWORKING_BACKEND (default `bird`); an unknown value is reported and treated as `bird`. */
export function parseNetworkingBackend(v: string | undefined): { backend: NetworkingBackend; warning?: string } {
  const t = (v ?? '').trim().toLowerCase();
  if (t === '' || t === 'bird') return { backend: 'bird' };
  if (t === 'vxlan' || t === 'none') return { backend: t };
  return { backend: 'bird', warning: `CALICO_NETWORKING_BACKEND=${JSON.stringify(v)} is not one of bird, vxlan, none; using bird` };
}

export const vxlanTunnelHandle = (node: string) => `vxlan-tunnel-addr-${node}`;

export interface Affinity {
  host: string;
  cidr: string;
  /** `confirmed`, `pending`, `pendingDeletion` or `` (implicitly confirmed). */
  state: string;
}

export interface RoutingSnapshot {
  nodeName: string;
  nodes: readonly Resource[];
  ipPools: readonly Resource[];
  bgpConfigurations: readonly Resource[];
  bgpPeers: readonly Resource[];
  blocks: readonly BlockData[];
  affinities: readonly Affinity[];
}

export interface RoutingOptions {
  backend: NetworkingBackend;
  /** BIRD's control socket directory (the agent's run dir). */
  socketDir: string;
  /** BGP passwords (secretKeyRef); without it such peers are left out, with a problem each. */
  secrets?: SecretResolver;
}

export interface PoolView {
  name: string;
  cidr: string;
  vxlanMode: 'Never' | 'Always' | 'CrossSubnet';
  ipipMode: 'Never' | 'Always' | 'CrossSubnet';
  disabled: boolean;
  /** Pods of this pool are masqueraded towards destinations outside all pools (felix/dataplane/linux/nat.ts). */
  natOutgoing: boolean;
}

export interface RoutingPlan {
  /** BIRD runs (with `birdConfig`). */
  runBird: boolean;
  /** The BIRD configuration; absent when BIRD does not run or its model could not be built. */
  birdConfig?: string;
  bgpModel?: BgpModel;
  /** Some pool uses VXLAN: this node needs a tunnel address and the VXLAN device. */
  vxlanNeeded: boolean;
  /** This node's underlay address with prefix ("10.0.0.11/24"), from its Node. */
  localAddress?: string;
  /** The overlay reconciler's input (tunnel address of this node is the loop's business). */
  overlay: OverlayInput;
  /** Reconciler flags. */
  overlayFlags: { bird: boolean; programNoEncapRoutes: boolean; programBlackholes: boolean };
  /** This node's blocks (confirmed affinities), sorted. */
  localBlocks: string[];
  pools: PoolView[];
  /** Things this node cannot do (IPIP pools, no address, a BGP model refused): log and Node status. */
  problems: string[];
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export function poolViews(pools: readonly Resource[]): PoolView[] {
  const out: PoolView[] = [];
  for (const p of pools) {
    const s = obj(p.spec);
    const c = parseCIDR(String(s.cidr ?? ''));
    if (!c) continue;
    out.push({
      name: p.metadata.name,
      cidr: formatCIDR(c),
      vxlanMode: (normalizeEncapMode(s.vxlanMode) ?? 'Never') as PoolView['vxlanMode'],
      ipipMode: (normalizeEncapMode(s.ipipMode) ?? 'Never') as PoolView['ipipMode'],
      disabled: s.disabled === true,
      natOutgoing: s.natOutgoing === true,
    });
  }
  return out.sort((a, b) => (a.cidr < b.cidr ? -1 : a.cidr > b.cidr ? 1 : 0));
}

/** A Node's `spec.bgp.ipv4Address` ("10.0.0.11/24"), if any. */
export function nodeIPv4(node: Resource | undefined): string | undefined {
  return str(obj(obj(node?.spec).bgp).ipv4Address);
}

/** A Node's VXLAN tunnel address and MAC (spec.ipv4VXLANTunnelAddr / spec.vxlanTunnelMACAddr, as Calico names them). */
export function nodeVxlan(node: Resource | undefined): { tunnelIP?: string; mac?: string } {
  const s = obj(node?.spec);
  return { tunnelIP: str(s.ipv4VXLANTunnelAddr), mac: str(s.vxlanTunnelMACAddr) };
}

const liveAffinity = (a: Affinity) => a.state === 'confirmed' || a.state === '';

/** The addresses a handle holds in these blocks. */
export function addressesOfHandle(blocks: readonly BlockData[], handleId: string): string[] {
  const out: string[] = [];
  for (const b of blocks) {
    const c = parseCIDR(b.cidr);
    if (!c || b.deleted) continue;
    const idx = new Set<number>();
    b.attributes.forEach((a, i) => {
      if (a.handle_id === handleId) idx.add(i);
    });
    if (idx.size === 0) continue;
    b.allocations.forEach((a, ord) => {
      if (a !== null && idx.has(a)) out.push(formatIP({ version: c.version, value: c.network + BigInt(ord) }));
    });
  }
  return out.sort();
}

/** Whether `ip` lies in one of these pools. */
export function inPools(ip: string, pools: readonly PoolView[]): boolean {
  const a = parseIP(ip);
  if (!a) return false;
  return pools.some((p) => {
    const c = parseCIDR(p.cidr);
    return !!c && cidrContainsIP(c, a);
  });
}

/**
 * What to do about this node's VXLAN tunnel address: `keep` the one on the Node, `adopt` one the
 * handle already holds (write it on the Node), `assign` a new one, `release` it (no VXLAN pool).
 */
export type TunnelDecision =
  | { action: 'none' }
  | { action: 'keep'; address: string }
  | { action: 'adopt'; address: string }
  | { action: 'assign'; releaseFirst: boolean }
  | { action: 'release' };

export function decideTunnelAddress(snap: RoutingSnapshot, pools: readonly PoolView[] = poolViews(snap.ipPools)): TunnelDecision {
  const me = snap.nodes.find((n) => n.metadata.name === snap.nodeName);
  const vxPools = pools.filter((p) => p.vxlanMode !== 'Never' && !p.disabled && !p.cidr.includes(':'));
  const onNode = nodeVxlan(me).tunnelIP;
  const held = addressesOfHandle(snap.blocks, vxlanTunnelHandle(snap.nodeName)).filter((a) => !a.includes(':'));
  if (!pools.some((p) => p.vxlanMode !== 'Never')) {
    return onNode !== undefined || held.length > 0 ? { action: 'release' } : { action: 'none' };
  }
  if (onNode !== undefined && held.includes(onNode) && inPools(onNode, vxPools)) return { action: 'keep', address: onNode };
  const usable = held.filter((a) => inPools(a, vxPools));
  if (usable.length > 0) return { action: 'adopt', address: usable[0]! };
  return { action: 'assign', releaseFirst: held.length > 0 };
}

/** The plan for this node. Pure. */
export function planRouting(snap: RoutingSnapshot, opts: RoutingOptions): RoutingPlan {
  const problems: string[] = [];
  const pools = poolViews(snap.ipPools);
  const me = snap.nodes.find((n) => n.metadata.name === snap.nodeName);
  const localAddress = nodeIPv4(me);
  if (!me) problems.push(`Node ${snap.nodeName} is not in the datastore`);
  else if (!localAddress) problems.push(`Node ${snap.nodeName} has no IPv4 address (spec.bgp.ipv4Address): no cross-node routes`);

  for (const p of pools) {
    if (p.ipipMode !== 'Never') {
      problems.push(
        `IP pool ${p.name} (${p.cidr}) has ipipMode ${p.ipipMode}, but this kernel has no IPIP support: ` +
          `its pods are not reachable from other nodes; use vxlanMode instead`,
      );
    }
  }

  const localBlocks = [
    ...new Set(
      snap.affinities
        .filter((a) => a.host === snap.nodeName && liveAffinity(a))
        .map((a) => parseCIDR(a.cidr))
        .filter((c) => c !== null)
        .map((c) => formatCIDR(c)),
    ),
  ].sort();

  const runBird = opts.backend === 'bird';
  let birdConfig: string | undefined;
  let bgpModel: BgpModel | undefined;
  if (runBird && me && localAddress) {
    try {
      bgpModel = buildBgpModel({
        thisNode: snap.nodeName,
        nodes: snap.nodes,
        bgpConfigurations: snap.bgpConfigurations,
        bgpPeers: snap.bgpPeers,
        ipPools: snap.ipPools,
        affineBlocks: localBlocks,
        secret: opts.secrets,
      });
      // Peers left out (e.g. a password that cannot be resolved): the others run regardless.
      problems.push(...bgpModel.problems);
      birdConfig = renderBirdConfig(bgpModel, { socketDir: opts.socketDir }, { exportBlackholesToKernel: true });
    } catch (e) {
      problems.push(`cannot build the BIRD configuration: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  // Remote VTEPs and blocks.
  const vteps: RemoteVtep[] = [];
  for (const n of snap.nodes) {
    if (n.metadata.name === snap.nodeName) continue;
    const a = nodeIPv4(n);
    if (!a) continue;
    const v = nodeVxlan(n);
    vteps.push({
      node: n.metadata.name,
      underlayIP: a.split('/')[0]!,
      ...(v.tunnelIP ? { tunnelIP: v.tunnelIP, mac: v.mac ?? vtepMacForNode(n.metadata.name) } : {}),
    });
  }
  const remoteBlocks: RemoteBlock[] = [];
  for (const b of snap.blocks) {
    if (b.deleted || !b.affinity?.startsWith('host:')) continue;
    const host = b.affinity.slice(5);
    if (host === snap.nodeName) continue;
    const c = parseCIDR(b.cidr);
    if (c?.version !== 4) continue;
    remoteBlocks.push({ cidr: formatCIDR(c), node: host });
  }
  remoteBlocks.sort((a, b) => (a.cidr < b.cidr ? -1 : a.cidr > b.cidr ? 1 : 0));
  const poolSpecs: PoolSpec[] = pools.filter((p) => !p.cidr.includes(':')).map((p) => ({ cidr: p.cidr, vxlanMode: p.vxlanMode, ipipMode: p.ipipMode }));

  const birdPrograms = runBird && birdConfig !== undefined;
  return {
    runBird,
    birdConfig,
    bgpModel,
    vxlanNeeded: pools.some((p) => p.vxlanMode !== 'Never' && !p.cidr.includes(':')),
    localAddress,
    overlay: {
      nodeName: snap.nodeName,
      localAddress,
      vteps,
      remoteBlocks,
      localBlocks: localBlocks.filter((b) => !b.includes(':')),
      pools: poolSpecs,
    },
    overlayFlags: {
      bird: birdPrograms,
      // With BIRD, it programs unencapsulated routes and blackholes; `none` programs no routes of
      // its own (policy-only), but blackholes for the node's blocks still keep traffic from leaking.
      programNoEncapRoutes: !birdPrograms && opts.backend !== 'none',
      programBlackholes: !birdPrograms,
    },
    localBlocks,
    pools,
    problems,
  };
}

/** One line summing up a plan, for the log when it changes. */
export function describePlan(p: RoutingPlan): string {
  const modes = p.pools.map((x) => `${x.cidr}:${x.vxlanMode !== 'Never' ? `vxlan ${x.vxlanMode}` : x.ipipMode !== 'Never' ? `ipip ${x.ipipMode}` : 'no-encap'}`);
  return (
    `BIRD ${p.runBird ? 'on' : 'off'}; pools [${modes.join(', ')}]; local blocks [${p.localBlocks.join(', ')}]; ` +
    `remote blocks ${p.overlay.remoteBlocks.length}; remote nodes ${p.overlay.vteps.length}` +
    ` (${p.overlay.vteps.filter((v) => v.tunnelIP).length} with a VTEP)`
  );
}
