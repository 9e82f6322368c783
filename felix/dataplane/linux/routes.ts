// Cross-node routing state, pure: what Felix would program for remote IPAM blocks, and the diff
// between that and what the kernel holds. No I/O here (overlay.ts reads and applies).
//
// Desired state (computeDesired), per remote block, by the mode of the IP pool that contains it:
//   VXLAN Always                       <block> via <tunnel IP> dev vxlan.calico onlink proto 80
//   VXLAN CrossSubnet, other subnet    the same
//   VXLAN CrossSubnet, same subnet     <block> via <node IP> dev <underlay> proto 80   (Felix's, even with BIRD)
//   no encapsulation                   <block> via <node IP> dev <underlay> proto 80   (only with
//                                      programNoEncapRoutes; with BIRD, BIRD programs it `proto bird`)
//   IPIP                               nothing (tunl0 is not handled here)
// plus, per remote VTEP (when any pool uses VXLAN):
//   <tunnel IP> lladdr <MAC> dev vxlan.calico nud permanent
//   <MAC> dev vxlan.calico dst <node IP> self permanent                 (bridge FDB)
//   <tunnel IP>/32 dev vxlan.calico scope link proto 80                  when the tunnel IP is not inside a
//                                                                        block of that node (borrowed)
// and per local block (only with programBlackholes; with BIRD, BIRD owns them `proto bird`):
//   blackhole <block> proto 80
//
// What the reconciler owns, and may therefore delete when it is not desired:
//   - routes on the VXLAN device (any protocol but `kernel`);
//   - routes with its protocol (default 80, Calico's): everywhere when that number is dedicated
//     (not 0–4 nor bird), else only inside the IP pools;
//   - without BIRD (`bird: false`): `proto bird` routes inside the pools (a former BIRD's leftovers);
//   - PERMANENT IPv4 neighbour entries and all FDB entries on the VXLAN device.
// Anything else is left alone — in particular routes outside the pools and the CNI's
// `<pod>/32 dev cali… scope link` routes. A desired route is written with `ip route replace`, which
// takes the place of whatever route has the same destination and metric.

import { normalizeEncapMode, type EncapMode } from '../../../libcalico-go/lib/apis/v3/validate/ippool.js';
import { cidrContainsIP, formatCIDR, formatIP, mask, parseCIDR, parseIP, type CIDR, type IP } from '../../../libcalico-go/lib/net/ip.js';
import { ipv4Of, normalizeMac, VXLAN_DEVICE, vtepMacForNode } from './vxlan.js';

/** Calico's route protocol for the routes Felix programs (dataplanedefs.DefaultRouteProto). */
export const DEFAULT_ROUTE_PROTOCOL = 80;
export const RTPROT_KERNEL = 2;
export const RTPROT_BOOT = 3;
export const RTPROT_STATIC = 4;
export const RTPROT_BIRD = 12;

// ---------------------------------------------------------------------------------------------------
// Input

/** A remote node. It is a VTEP when tunnelIP is set; a node with only underlayIP can only get no-encap routes. */
export interface RemoteVtep {
  node: string;
  /** The node's underlay IPv4 address (its BGP address, Calico's ParentDeviceIp). */
  underlayIP: string;
  /** The node's VXLAN tunnel address (IPv4VXLANTunnelAddr). */
  tunnelIP?: string;
  /** VXLANTunnelMACAddr; default derived from the node name as Calico does. */
  mac?: string;
}

export interface RemoteBlock {
  /** An IPAM block (or a borrowed /32) affine to `node`. */
  cidr: string;
  node: string;
}

export interface PoolSpec {
  cidr: string;
  /** Always | CrossSubnet | Never (aliases as IPPool validation accepts them); default Never. */
  vxlanMode?: EncapMode | string;
  ipipMode?: EncapMode | string;
}

export interface OverlayInput {
  /** This node's name: its own entries in vteps/remoteBlocks are ignored. */
  nodeName?: string;
  /** This node's underlay IPv4 address with its prefix ("10.0.0.11/24"): decides CrossSubnet. */
  localAddress?: string;
  /** The underlay device for unencapsulated routes ("eth0"). */
  underlayDevice?: string;
  vteps: RemoteVtep[];
  remoteBlocks: RemoteBlock[];
  /** Blocks affine to this node (blackholed when programBlackholes). */
  localBlocks: string[];
  pools: PoolSpec[];
}

export interface OverlayOptions {
  /** Default "vxlan.calico". */
  vxlanDevice?: string;
  /** Protocol of the routes programmed; default 80. 0–3 and 12 (bird) are refused. */
  routeProtocol?: number;
  /** BIRD runs on this node and programs unencapsulated routes and block blackholes (`proto bird`). */
  bird?: boolean;
  /** Program `<block> via <node IP> dev <underlay>` for no-encap pools; default !bird. */
  programNoEncapRoutes?: boolean;
  /** Program `blackhole <local block>`; default !bird. */
  programBlackholes?: boolean;
}

// ---------------------------------------------------------------------------------------------------
// State model

export type RouteType = 'unicast' | 'blackhole' | 'unreachable' | 'prohibit' | 'throw';
export type RouteScope = 'universe' | 'link' | 'host' | 'site' | 'nowhere';

export interface RouteEntry {
  /** Canonical CIDR ("10.233.65.0/24", "10.233.65.9/32"). */
  dst: string;
  type: RouteType;
  gateway?: string;
  dev?: string;
  onlink: boolean;
  scope: RouteScope;
  protocol: number;
  metric: number;
}

export type RouteKind = 'vxlan' | 'vxlan-tunnel' | 'same-subnet' | 'no-encap' | 'blackhole';

export interface DesiredRoute extends RouteEntry {
  kind: RouteKind;
  /** The remote node, when there is one. */
  node?: string;
}

export interface NeighEntry {
  ip: string;
  mac: string;
  dev: string;
}

export interface FdbEntry {
  mac: string;
  /** The remote VTEP's underlay address. */
  dst: string;
  dev: string;
}

export interface DesiredState {
  routes: DesiredRoute[];
  neighbours: NeighEntry[];
  fdb: FdbEntry[];
  /** Some pool uses VXLAN: the device is needed. */
  vxlanNeeded: boolean;
  /** Pool CIDRs (canonical), for ownership. */
  pools: string[];
  vxlanDevice: string;
  routeProtocol: number;
  /** Whether `proto bird` routes inside the pools are leftovers to clean (no BIRD). */
  adoptBirdRoutes: boolean;
  warnings: string[];
}

export interface KernelRoute extends RouteEntry {
  /** Route flags as ip prints them ("onlink", "linkdown", ...). */
  flags: string[];
}

export interface KernelNeigh {
  ip: string;
  dev: string;
  mac?: string;
  /** "PERMANENT", "REACHABLE", "FAILED", ... */
  states: string[];
}

export interface KernelFdb {
  mac: string;
  dst?: string;
  dev: string;
  flags: string[];
  state: string;
  master?: string;
}

export interface KernelState {
  /** Main table, IPv4. */
  routes: KernelRoute[];
  neighbours: KernelNeigh[];
  /** Entries of the VXLAN device. */
  fdb: KernelFdb[];
  /** The VXLAN device exists (or is about to be created). */
  vxlanDevicePresent: boolean;
}

// ---------------------------------------------------------------------------------------------------
// Helpers

export class OverlayConfigError extends Error {
  override readonly name = 'OverlayConfigError';
}

/** Canonical IPv4 CIDR; a bare address is a /32. null when not IPv4. */
export function canonV4Cidr(s: string): string | null {
  if (typeof s !== 'string') return null;
  const c = parseCIDR(s.includes('/') ? s : `${s}/32`);
  return c && c.version === 4 ? formatCIDR(c) : null;
}

function cidrContains(outer: CIDR, inner: CIDR): boolean {
  return outer.version === inner.version && inner.prefix >= outer.prefix && cidrContainsIP(outer, { version: inner.version, value: inner.network });
}

/** Checks a route protocol number the reconciler may own. */
export function checkRouteProtocol(p: number): number {
  if (!Number.isInteger(p) || p < 0 || p > 255) throw new OverlayConfigError(`invalid route protocol ${p}`);
  if (p <= RTPROT_BOOT) throw new OverlayConfigError(`route protocol ${p} is shared with the kernel and the CNI's routes; choose another (default 80)`);
  if (p === RTPROT_BIRD) throw new OverlayConfigError('route protocol 12 is BIRD’s; choose another (default 80)');
  return p;
}

/** Whether nobody else is expected to use this protocol (so its routes are ours anywhere). */
export function isDedicatedProtocol(p: number): boolean {
  return p > RTPROT_STATIC && p !== RTPROT_BIRD;
}

interface ResolvedOptions {
  dev: string;
  proto: number;
  bird: boolean;
  noEncap: boolean;
  blackholes: boolean;
}

function resolveOptions(o: OverlayOptions = {}): ResolvedOptions {
  const bird = o.bird === true;
  return {
    dev: o.vxlanDevice ?? VXLAN_DEVICE,
    proto: checkRouteProtocol(o.routeProtocol ?? DEFAULT_ROUTE_PROTOCOL),
    bird,
    noEncap: o.programNoEncapRoutes ?? !bird,
    blackholes: o.programBlackholes ?? !bird,
  };
}

// ---------------------------------------------------------------------------------------------------
// Desired state

interface Pool {
  text: string;
  cidr: CIDR;
  vxlan: EncapMode;
  ipip: EncapMode;
}

/** Warnings (each once) and the routes wanted so far (the first claim on a destination wins). */
class Plan {
  readonly warnings: string[] = [];
  readonly routes = new Map<string, DesiredRoute>();
  private readonly seen = new Set<string>();

  warn(w: string): void {
    if (this.seen.has(w)) return;
    this.seen.add(w);
    this.warnings.push(w);
  }

  addRoute(r: DesiredRoute): void {
    const prev = this.routes.get(r.dst);
    if (prev) this.warn(`${r.dst}: wanted for ${prev.node ?? prev.kind} and ${r.node ?? r.kind}; keeping the first`);
    else this.routes.set(r.dst, r);
  }
}

/** A remote node as the routes need it: underlay address, and its VTEP when it has one. */
interface Vtep {
  node: string;
  underlay: IP;
  tunnel?: string;
  mac?: string;
}

/** This node's underlay address and, when given with a prefix, its subnet. */
interface Local {
  ip: IP | null;
  net: CIDR | null;
}

type RouteBase = Pick<DesiredRoute, 'onlink' | 'protocol' | 'metric'>;

function parsePools(input: OverlayInput, plan: Plan): Pool[] {
  const pools: Pool[] = [];
  for (const p of input.pools ?? []) {
    const c = parseCIDR(String(p?.cidr));
    const vxlan = normalizeEncapMode(p?.vxlanMode);
    const ipip = normalizeEncapMode(p?.ipipMode);
    if (c?.version !== 4 || !vxlan || !ipip) {
      plan.warn(`ignoring pool ${JSON.stringify(p)}: not an IPv4 pool with valid modes`);
      continue;
    }
    pools.push({ text: formatCIDR(c), cidr: c, vxlan, ipip });
  }
  return pools;
}

/** The most specific pool containing `c`. */
function poolFor(pools: readonly Pool[], c: CIDR): Pool | undefined {
  let best: Pool | undefined;
  for (const p of pools) if (cidrContains(p.cidr, c) && (!best || p.cidr.prefix > best.cidr.prefix)) best = p;
  return best;
}

function parseLocal(input: OverlayInput, plan: Plan): Local {
  if (input.localAddress === undefined) return { ip: null, net: null };
  const a = String(input.localAddress);
  const ip = parseIP(a.includes('/') ? a.slice(0, a.indexOf('/')) : a);
  if (ip?.version !== 4) {
    plan.warn(`ignoring invalid local address ${JSON.stringify(a)}`);
    return { ip: null, net: null };
  }
  return { ip, net: a.includes('/') ? parseCIDR(a) : null };
}

/** The other nodes by name (the last entry wins), with valid VTEPs only. */
function parseVteps(input: OverlayInput, plan: Plan): Map<string, Vtep> {
  const vteps = new Map<string, Vtep>();
  for (const v of input.vteps ?? []) {
    if (!v || typeof v.node !== 'string' || v.node === '') {
      plan.warn(`ignoring VTEP without a node name: ${JSON.stringify(v)}`);
      continue;
    }
    if (v.node === input.nodeName) continue;
    const u = parseIP(String(v.underlayIP));
    if (u?.version !== 4) {
      plan.warn(`ignoring node ${v.node}: invalid underlay address ${JSON.stringify(v.underlayIP)}`);
      continue;
    }
    const e: Vtep = { node: v.node, underlay: u };
    if (v.tunnelIP !== undefined && v.tunnelIP !== '') {
      const t = ipv4Of(v.tunnelIP);
      const mac = v.mac ? normalizeMac(v.mac) : vtepMacForNode(v.node, 4);
      if (!t) plan.warn(`node ${v.node}: invalid tunnel address ${JSON.stringify(v.tunnelIP)}`);
      else if (!mac) plan.warn(`node ${v.node}: invalid VTEP MAC ${JSON.stringify(v.mac)}`);
      else {
        e.tunnel = t;
        e.mac = mac;
      }
    }
    if (vteps.has(v.node)) plan.warn(`node ${v.node} listed twice; using the last entry`);
    vteps.set(v.node, e);
  }
  return vteps;
}

interface Context {
  input: OverlayInput;
  o: ResolvedOptions;
  plan: Plan;
  pools: readonly Pool[];
  local: Local;
  vteps: ReadonlyMap<string, Vtep>;
  base: RouteBase;
}

/**
 * A route to each remote block: over VXLAN, directly to its node on the same subnet, or left to
 * BIRD. Returns each block's owner by "prefix/network" for the tunnel-address lookups.
 */
function planRemoteBlocks(cx: Context): Map<string, string> {
  const { input, o, plan, vteps, base } = cx;
  const sameSubnet = (ip: IP): boolean | null => (cx.local.net ? cidrContainsIP(cx.local.net, ip) : null);
  const blockOwner = new Map<string, string>();
  for (const b of input.remoteBlocks ?? []) {
    const c = parseCIDR(String(b?.cidr));
    if (c?.version !== 4 || typeof b.node !== 'string') {
      plan.warn(`ignoring remote block ${JSON.stringify(b)}`);
      continue;
    }
    if (b.node === input.nodeName) continue;
    const dst = formatCIDR(c);
    const key = `${c.prefix}/${c.network}`;
    if (!blockOwner.has(key)) blockOwner.set(key, b.node);
    const pool = poolFor(cx.pools, c);
    if (!pool) {
      plan.warn(`${dst} (node ${b.node}) is in no IP pool; not routed`);
      continue;
    }
    if (pool.ipip !== 'Never') {
      plan.warn(`pool ${pool.text} uses IPIP, which is not programmed here`);
      continue;
    }
    const v = vteps.get(b.node);
    let mode: 'vxlan' | 'same-subnet' | 'no-encap';
    if (pool.vxlan === 'Always') mode = 'vxlan';
    else if (pool.vxlan === 'CrossSubnet') {
      if (!v) {
        plan.warn(`${dst}: node ${b.node} unknown; not routed`);
        continue;
      }
      const same = sameSubnet(v.underlay);
      if (same === null) plan.warn(`pool ${pool.text} is CrossSubnet but this node's subnet is unknown (localAddress without prefix); using VXLAN`);
      mode = same ? 'same-subnet' : 'vxlan';
    } else mode = 'no-encap';

    if (mode === 'vxlan') {
      if (!v?.tunnel || !v.mac) {
        plan.warn(`${dst}: node ${b.node} has no VTEP (tunnel address) yet; not routed`);
        continue;
      }
      plan.addRoute({ ...base, kind: 'vxlan', node: b.node, dst, type: 'unicast', gateway: v.tunnel, dev: o.dev, onlink: true, scope: 'universe' });
      continue;
    }
    if (mode === 'no-encap' && !o.noEncap) continue; // BIRD programs it
    if (!v) {
      plan.warn(`${dst}: node ${b.node} unknown; not routed`);
      continue;
    }
    if (mode === 'no-encap' && sameSubnet(v.underlay) === false) {
      plan.warn(`${dst}: node ${b.node} (${formatIP(v.underlay)}) is not in this node's subnet; no unencapsulated route possible`);
      continue;
    }
    if (!input.underlayDevice) {
      plan.warn(`${dst}: underlay device unknown; unencapsulated route not programmed`);
      continue;
    }
    plan.addRoute({ ...base, kind: mode, node: b.node, dst, type: 'unicast', gateway: formatIP(v.underlay), dev: input.underlayDevice, scope: 'universe' });
  }
  return blockOwner;
}

/**
 * The VXLAN neighbour and FDB entry of each remote VTEP, and a direct route on the device to a
 * tunnel address outside its node's blocks (borrowed).
 */
function planTunnels(cx: Context, blockOwner: ReadonlyMap<string, string>): { neighbours: NeighEntry[]; fdb: FdbEntry[] } {
  const { o, plan, base } = cx;
  const neighbours: NeighEntry[] = [];
  const fdb: FdbEntry[] = [];
  const macs = new Map<string, string>();
  const ownerOf = (ip: IP): string | undefined => {
    for (let prefix = 32; prefix >= 0; prefix--) {
      const owner = blockOwner.get(`${prefix}/${ip.value & mask(4, prefix)}`);
      if (owner !== undefined) return owner;
    }
    return undefined;
  };
  for (const v of cx.vteps.values()) {
    if (!v.tunnel || !v.mac) continue;
    const other = macs.get(v.mac);
    if (other !== undefined) {
      plan.warn(`nodes ${other} and ${v.node} share VTEP MAC ${v.mac}; ignoring ${v.node}'s VTEP`);
      continue;
    }
    macs.set(v.mac, v.node);
    neighbours.push({ ip: v.tunnel, mac: v.mac, dev: o.dev });
    fdb.push({ mac: v.mac, dst: formatIP(v.underlay), dev: o.dev });
    const tip = parseIP(v.tunnel)!;
    const tpool = poolFor(cx.pools, { version: 4, network: tip.value, prefix: 32 });
    const inVxlanPool = tpool?.vxlan !== 'Never';
    if (ownerOf(tip) !== v.node && inVxlanPool) {
      plan.addRoute({ ...base, kind: 'vxlan-tunnel', node: v.node, dst: `${v.tunnel}/32`, type: 'unicast', dev: o.dev, scope: 'link' });
    }
  }
  return { neighbours, fdb };
}

/** A blackhole route per local block (Felix's, when BIRD does not program them). */
function planBlackholes(cx: Context): void {
  for (const b of cx.input.localBlocks ?? []) {
    const c = parseCIDR(String(b));
    if (c?.version !== 4) {
      cx.plan.warn(`ignoring local block ${JSON.stringify(b)}`);
      continue;
    }
    if (c.prefix === 32) continue; // a /32 "block" would hide the pod's own route
    cx.plan.addRoute({ ...cx.base, kind: 'blackhole', dst: formatCIDR(c), type: 'blackhole', scope: 'universe' });
  }
}

/** The kernel state Felix would program for `input` (pure). */
export function computeDesired(input: OverlayInput, options: OverlayOptions = {}): DesiredState {
  const o = resolveOptions(options);
  const plan = new Plan();
  const pools = parsePools(input, plan);
  const local = parseLocal(input, plan);
  const vteps = parseVteps(input, plan);
  const cx: Context = { input, o, plan, pools, local, vteps, base: { onlink: false, protocol: o.proto, metric: 0 } };
  const vxlanNeeded = pools.some((p) => p.vxlan !== 'Never');

  const blockOwner = planRemoteBlocks(cx);
  const { neighbours, fdb } = vxlanNeeded ? planTunnels(cx, blockOwner) : { neighbours: [], fdb: [] };
  if (o.blackholes) planBlackholes(cx);

  return {
    routes: [...plan.routes.values()],
    neighbours,
    fdb,
    vxlanNeeded,
    pools: pools.map((p) => p.text),
    vxlanDevice: o.dev,
    routeProtocol: o.proto,
    adoptBirdRoutes: !o.bird,
    warnings: plan.warnings,
  };
}

// ---------------------------------------------------------------------------------------------------
// Kernel JSON parsing (`ip -j -N [-d] route show`, `ip -j neigh show`, `bridge -j fdb show`)

const TYPE_BY_NUMBER: Record<string, RouteType> = { '1': 'unicast', '6': 'blackhole', '7': 'unreachable', '8': 'prohibit', '9': 'throw' };
const SCOPE_BY_NUMBER: Record<string, RouteScope> = { '0': 'universe', '200': 'site', '253': 'link', '254': 'host', '255': 'nowhere' };
const PROTO_BY_NAME: Record<string, number> = { unspec: 0, redirect: 1, kernel: 2, boot: 3, static: 4, bird: 12 };

function num(v: unknown, names: Record<string, number> = {}): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  return names[v];
}

interface RouteJson {
  type?: string;
  dst?: string;
  gateway?: string;
  dev?: string;
  protocol?: string | number;
  scope?: string | number;
  metric?: number;
  table?: string;
  flags?: string[];
}

/**
 * Main-table IPv4 routes from `ip -j -N [-d] route show` (numeric protocol/scope/type; names are
 * accepted too). Types other than unicast/blackhole/unreachable/prohibit/throw (local, broadcast,
 * multicast) and other tables are dropped.
 */
export function parseRoutes(json: unknown): KernelRoute[] {
  if (!Array.isArray(json)) return [];
  const out: KernelRoute[] = [];
  for (const r of json as RouteJson[]) {
    if (!r || typeof r !== 'object') continue;
    if (r.table !== undefined && r.table !== 'main' && r.table !== '254') continue;
    const t = r.type === undefined ? 'unicast' : (TYPE_BY_NUMBER[String(r.type)] ?? (Object.values(TYPE_BY_NUMBER).includes(r.type as RouteType) ? (r.type as RouteType) : undefined));
    if (!t) continue;
    if (r.dst === undefined) continue;
    const dst = r.dst === 'default' ? '0.0.0.0/0' : canonV4Cidr(r.dst);
    if (!dst) continue;
    const scopeText = r.scope === undefined ? '0' : String(r.scope);
    const scope = SCOPE_BY_NUMBER[scopeText] ?? (Object.values(SCOPE_BY_NUMBER).includes(scopeText as RouteScope) ? (scopeText as RouteScope) : 'universe');
    const flags = Array.isArray(r.flags) ? r.flags.map(String) : [];
    const gw = r.gateway !== undefined ? ipv4Of(r.gateway) ?? r.gateway : undefined;
    out.push({
      dst,
      type: t,
      ...(gw !== undefined ? { gateway: gw } : {}),
      ...(r.dev !== undefined ? { dev: r.dev } : {}),
      onlink: flags.includes('onlink'),
      scope,
      protocol: num(r.protocol, PROTO_BY_NAME) ?? 0,
      metric: typeof r.metric === 'number' ? r.metric : 0,
      flags,
    });
  }
  return out;
}

interface NeighJson {
  dst?: string;
  dev?: string;
  lladdr?: string;
  state?: string[] | string;
}

/** IPv4 neighbour entries from `ip -j neigh show [dev X]`; `dev` fills in when ip omits it. */
export function parseNeighbours(json: unknown, dev?: string): KernelNeigh[] {
  if (!Array.isArray(json)) return [];
  const out: KernelNeigh[] = [];
  for (const n of json as NeighJson[]) {
    const ip = n?.dst !== undefined ? ipv4Of(n.dst) : null;
    const d = n?.dev ?? dev;
    if (!ip || d === undefined) continue;
    const states = Array.isArray(n.state) ? n.state.map(String) : n.state !== undefined ? [String(n.state)] : [];
    out.push({ ip, dev: d, ...(n.lladdr ? { mac: n.lladdr.toLowerCase() } : {}), states });
  }
  return out;
}

interface FdbJson {
  mac?: string;
  dst?: string;
  ifname?: string;
  flags?: string[];
  state?: string;
  master?: string;
}

/** Entries of `bridge -j fdb show dev <dev>` (the command's own device). */
export function parseFdb(json: unknown, dev: string): KernelFdb[] {
  if (!Array.isArray(json)) return [];
  const out: KernelFdb[] = [];
  for (const f of json as FdbJson[]) {
    if (!f || typeof f.mac !== 'string') continue;
    out.push({
      mac: f.mac.toLowerCase(),
      ...(f.dst !== undefined ? { dst: ipv4Of(f.dst) ?? f.dst } : {}),
      dev: f.ifname ?? dev,
      flags: Array.isArray(f.flags) ? f.flags.map(String) : [],
      state: f.state ?? '',
      ...(f.master !== undefined ? { master: f.master } : {}),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Diff

export interface Change {
  what: 'route' | 'neigh' | 'fdb';
  op: 'set' | 'del';
  /** The entry, as `ip` / `bridge` would print it. */
  text: string;
  /** Why: "missing", "differs: ...", "not desired". */
  reason: string;
}

export interface OverlayPlan {
  /** For one `ip -batch`: neighbours set, routes set, routes deleted, neighbours deleted. */
  ip: string[][];
  /** For one `bridge -batch`: FDB entries deleted, then set. */
  bridge: string[][];
  /** One per command, same order: ip's then bridge's. */
  changes: Change[];
  /** Desired entries dropped (e.g. the VXLAN device is absent). */
  warnings: string[];
  /** Desired entries already in place. */
  inPlace: number;
}

const PROTO_NAME: Record<number, string> = { 0: 'unspec', 1: 'redirect', 2: 'kernel', 3: 'boot', 4: 'static', 12: 'bird' };

/** A route as `ip route` prints it (well-known protocols by name). */
export function routeText(r: RouteEntry): string {
  const w: string[] = [];
  if (r.type !== 'unicast') w.push(r.type);
  w.push(r.dst.endsWith('/32') ? r.dst.slice(0, -3) : r.dst);
  if (r.gateway) w.push('via', r.gateway);
  if (r.dev) w.push('dev', r.dev);
  w.push('proto', PROTO_NAME[r.protocol] ?? String(r.protocol));
  if (r.scope !== 'universe') w.push('scope', r.scope);
  if (r.metric) w.push('metric', String(r.metric));
  if (r.onlink) w.push('onlink');
  return w.join(' ');
}

/** `ip route replace` words for a desired route. */
export function routeSetCommand(r: RouteEntry): string[] {
  const w = ['route', 'replace'];
  if (r.type !== 'unicast') w.push(r.type);
  w.push(r.dst);
  if (r.gateway) w.push('via', r.gateway);
  if (r.dev) w.push('dev', r.dev);
  if (r.onlink) w.push('onlink');
  if (r.scope !== 'universe') w.push('scope', r.scope);
  w.push('proto', String(r.protocol));
  if (r.metric) w.push('metric', String(r.metric));
  return w;
}

/** `ip route del` words that select exactly this kernel route. */
export function routeDelCommand(r: RouteEntry): string[] {
  const w = ['route', 'del'];
  if (r.type !== 'unicast') w.push(r.type);
  w.push(r.dst);
  if (r.gateway) w.push('via', r.gateway);
  if (r.dev) w.push('dev', r.dev);
  w.push('proto', String(r.protocol), 'metric', String(r.metric), 'table', 'main');
  return w;
}

export function routesEqual(a: RouteEntry, b: RouteEntry): boolean {
  return (
    a.dst === b.dst &&
    a.type === b.type &&
    (a.gateway ?? '') === (b.gateway ?? '') &&
    (a.dev ?? '') === (b.dev ?? '') &&
    a.onlink === b.onlink &&
    a.scope === b.scope &&
    a.protocol === b.protocol &&
    a.metric === b.metric
  );
}

export interface Ownership {
  vxlanDevice: string;
  routeProtocol: number;
  pools: string[];
  adoptBirdRoutes: boolean;
}

/** Whether a kernel route is Tortie's to delete (see the header). */
export function ownsRoute(r: KernelRoute, own: Ownership): boolean {
  if (r.dev === own.vxlanDevice && r.protocol !== RTPROT_KERNEL) return true;
  const c = parseCIDR(r.dst);
  const inPools = !!c && own.pools.some((p) => cidrContains(parseCIDR(p)!, c));
  if (r.protocol === own.routeProtocol) return isDedicatedProtocol(own.routeProtocol) || inPools;
  if (r.protocol === RTPROT_BIRD && own.adoptBirdRoutes) return inPools;
  return false;
}

/** The minimal changes that turn `current` into `desired`, touching only what Tortie owns. */
export function diffState(desired: DesiredState, current: KernelState): OverlayPlan {
  const dev = desired.vxlanDevice;
  const warnings: string[] = [];
  const own: Ownership = { vxlanDevice: dev, routeProtocol: desired.routeProtocol, pools: desired.pools, adoptBirdRoutes: desired.adoptBirdRoutes };
  let wantRoutes = desired.routes;
  let wantNeigh = desired.neighbours;
  let wantFdb = desired.fdb;
  if (!current.vxlanDevicePresent) {
    const n = wantRoutes.filter((r) => r.dev === dev).length + wantNeigh.length + wantFdb.length;
    if (n > 0) warnings.push(`${dev} is absent: ${n} VXLAN route, neighbour and FDB entries not programmed`);
    wantRoutes = wantRoutes.filter((r) => r.dev !== dev);
    wantNeigh = [];
    wantFdb = [];
  }
  let inPlace = 0;

  // Routes.
  const byDst = new Map<string, KernelRoute[]>();
  for (const r of current.routes) {
    const l = byDst.get(r.dst) ?? [];
    l.push(r);
    byDst.set(r.dst, l);
  }
  const routeSets: [string[], Change][] = [];
  const routeDels: [string[], Change][] = [];
  const wanted = new Map(wantRoutes.map((r) => [r.dst, r]));
  for (const d of wantRoutes) {
    const have = byDst.get(d.dst) ?? [];
    if (have.some((k) => routesEqual(d, k))) {
      inPlace++;
      continue;
    }
    const same = have.find((k) => k.metric === d.metric);
    routeSets.push([
      routeSetCommand(d),
      { what: 'route', op: 'set', text: routeText(d), reason: same ? `differs: was ${routeText(same)}` : 'missing' },
    ]);
  }
  for (const k of current.routes) {
    const d = wanted.get(k.dst);
    if (d && routesEqual(d, k)) continue;
    if (!ownsRoute(k, own)) continue;
    // `replace` overwrites the route of the same destination and metric; others must go.
    if (d && d.metric === k.metric && !(byDst.get(k.dst) ?? []).some((x) => routesEqual(d, x))) {
      const first = (byDst.get(k.dst) ?? []).find((x) => x.metric === d.metric);
      if (first === k) continue;
    }
    routeDels.push([routeDelCommand(k), { what: 'route', op: 'del', text: routeText(k), reason: d ? 'duplicate of a desired route' : 'not desired' }]);
  }

  // Neighbours (IPv4, on the VXLAN device).
  const neighSets: [string[], Change][] = [];
  const neighDels: [string[], Change][] = [];
  const curNeigh = new Map<string, KernelNeigh>();
  for (const n of current.neighbours) if (n.dev === dev) curNeigh.set(n.ip, n);
  const wantNeighIps = new Set<string>();
  for (const d of wantNeigh) {
    wantNeighIps.add(d.ip);
    const k = curNeigh.get(d.ip);
    const text = `${d.ip} lladdr ${d.mac} dev ${d.dev} nud permanent`;
    if (k && k.mac === d.mac && k.states.includes('PERMANENT')) {
      inPlace++;
      continue;
    }
    neighSets.push([
      ['neigh', 'replace', d.ip, 'lladdr', d.mac, 'dev', d.dev, 'nud', 'permanent'],
      { what: 'neigh', op: 'set', text, reason: k ? `differs: was ${k.mac ?? 'no lladdr'} ${k.states.join(',')}` : 'missing' },
    ]);
  }
  for (const k of curNeigh.values()) {
    if (wantNeighIps.has(k.ip) || !k.states.includes('PERMANENT')) continue;
    neighDels.push([
      ['neigh', 'del', k.ip, 'dev', k.dev],
      { what: 'neigh', op: 'del', text: `${k.ip} lladdr ${k.mac ?? '?'} dev ${k.dev} nud permanent`, reason: 'not desired' },
    ]);
  }

  // FDB (all entries of the VXLAN device).
  const fdbDels: [string[], Change][] = [];
  const fdbSets: [string[], Change][] = [];
  const curFdb = new Map<string, KernelFdb[]>();
  for (const f of current.fdb) {
    if (f.dev !== dev || f.master !== undefined) continue;
    const l = curFdb.get(f.mac) ?? [];
    l.push(f);
    curFdb.set(f.mac, l);
  }
  const fdbText = (mac: string, dst: string | undefined, state = 'permanent') => `${mac} dev ${dev}${dst ? ` dst ${dst}` : ''} self ${state}`;
  const wantMacs = new Set<string>();
  for (const d of wantFdb) {
    wantMacs.add(d.mac);
    const have = curFdb.get(d.mac) ?? [];
    const good = have.find((k) => k.dst === d.dst && k.state === 'permanent');
    // Extra destinations for this MAC (VXLAN FDB entries can hold several) are deleted; when the
    // right one is missing, `replace` rewrites the first remaining one (or creates the entry).
    const keep = good ?? have[0];
    for (const k of have) {
      if (k === keep) continue;
      fdbDels.push([
        ['fdb', 'del', k.mac, 'dev', dev, ...(k.dst ? ['dst', k.dst] : []), 'self'],
        { what: 'fdb', op: 'del', text: fdbText(k.mac, k.dst, k.state), reason: 'extra destination' },
      ]);
    }
    if (good) {
      inPlace++;
      continue;
    }
    fdbSets.push([
      ['fdb', 'replace', d.mac, 'dev', dev, 'dst', d.dst, 'self', 'permanent'],
      { what: 'fdb', op: 'set', text: fdbText(d.mac, d.dst), reason: keep ? `differs: was ${fdbText(keep.mac, keep.dst, keep.state)}` : 'missing' },
    ]);
  }
  for (const [mac, list] of curFdb) {
    if (wantMacs.has(mac)) continue;
    fdbDels.push([
      ['fdb', 'del', mac, 'dev', dev, 'self'],
      { what: 'fdb', op: 'del', text: list.map((k) => fdbText(k.mac, k.dst, k.state)).join('; '), reason: 'not desired' },
    ]);
  }

  const ipPart = [...neighSets, ...routeSets, ...routeDels, ...neighDels];
  const bridgePart = [...fdbDels, ...fdbSets];
  return {
    ip: ipPart.map(([c]) => c),
    bridge: bridgePart.map(([c]) => c),
    changes: [...ipPart, ...bridgePart].map(([, ch]) => ch),
    warnings,
    inPlace,
  };
}
