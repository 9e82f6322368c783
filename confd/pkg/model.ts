// The BGP model of one node: everything the BIRD configuration of that node depends on, built
// from plain projectcalico.org/v3 resources (Node, BGPConfiguration, BGPPeer, IPPool) and the
// node's affine IPAM blocks. Pure: no I/O (secrets come through an injected function).
//
// Semantics (Calico's confd, see the reference §5.1 and §5.4):
// * AS number of a node: its own `spec.bgp.asNumber`, else the per-node BGPConfiguration
//   `node.<name>`, else the `default` BGPConfiguration, else 64512. The model records where it
//   came from (calicoctl shows an inherited one in parentheses: `(64512)`).
// * Listen port: `node.<name>` configuration, else `default`, else 179. A peer that is a Calico
//   node is reached on that node's listen port.
// * Node-to-node mesh (`nodeToNodeMeshEnabled`, default true): one `Mesh_<ip>` peer per other node
//   with an address of the family. A node with `spec.bgp.routeReflectorClusterID` is a route
//   reflector: it takes no part in the mesh (it has no mesh peers and is no one's mesh peer).
//   Sessions are one-way: the side whose address is lexically (as text, as Calico compares) greater
//   waits (`passive`), the other connects.
// * BGPPeer: applies to node `spec.node`, or to nodes matching `spec.nodeSelector`, or — neither
//   set — to every node (a global peer, `Global_<ip>`; the others are `Node_<ip>`). It names its
//   peer by `spec.peerIP` (`ip`, `ip:port`, `[ip6]:port`) or selects Calico nodes with
//   `spec.peerSelector`. A peerSelector peering is also configured in reverse on the selected node
//   (as a node-specific peer) unless `reversePeering: Manual`; only such two-sided peerings (and the
//   mesh) use the passive rule above.
// * Route reflection: when this node has a cluster ID, an iBGP session to a peer that is not in
//   the same cluster gets `rr client` + `rr cluster id`.
// * A peer that is this node itself is never included; two peerings that reach the same address
//   and port are merged (node-specific before global before mesh; then BGPPeer name order).
// * Passwords: `password.secretKeyRef {name, key}` (BGPPeer) and `nodeMeshPassword.secretKeyRef`
//   (default BGPConfiguration) are read through `secret(name, key)` (tortie-node: files below
//   TORTIE_BGP_SECRETS_DIR, secrets.ts). A password that cannot be used — unresolved (unless
//   `optional: true`, which means no password), unreadable, or one BIRD or the kernel cannot take —
//   leaves out only the peerings that need it: that BGPPeer's, or all mesh peers for the mesh
//   password; the reason is in `problems`, and every other peer is configured as usual. A plain
//   string `password` is accepted too (not Calico's API: a convenience for tests and hand-written
//   input). Passwords must be printable, without `"` or `\`, and at most 80 bytes (TCP-MD5 key
//   limit).
// * Pools: CIDR, natOutgoing, ipipMode/vxlanMode (normalised as IPPool validation does),
//   disableBGPExport, disabled. Blocks: canonical, sorted, full-length (/32, /128) ones dropped as
//   Calico's bird_aggr does.
// Anything left out on purpose (a peer that is this node, a node without an address, an invalid
// BGPPeer, a merged duplicate) is explained in `notes`.

import { createHash } from 'node:crypto';

import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { normalizeEncapMode } from '../../libcalico-go/lib/apis/v3/validate/ippool.js';
import { type IPVersion, bitsOf, compareCIDR, formatCIDR, formatIP, parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';
import { type Selector, parseSelector } from '../../libcalico-go/lib/selector/index.js';
import { BGP_PORT, type PeerType, protocolName } from './names.js';
import type { SecretResolver } from './secrets.js';

export const DEFAULT_AS_NUMBER = 64512;
export const MAX_PASSWORD_BYTES = 80;

export type EncapMode = 'Never' | 'Always' | 'CrossSubnet';

export interface PoolModel {
  name: string;
  cidr: string;
  family: IPVersion;
  natOutgoing: boolean;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  disableBGPExport: boolean;
  disabled: boolean;
}

export interface PeerModel {
  /** BIRD protocol name (`Mesh_10_0_0_12`, `Node_10_0_0_5_port_1790`, …). */
  name: string;
  type: PeerType;
  family: IPVersion;
  address: string;
  /** The peer's TCP port when it is not 179. */
  port?: number;
  asNumber: number;
  /** This side's AS for this session when it differs from the node's (BGPPeer `localASNumber`). */
  localAsNumber?: number;
  password?: string;
  /** Our address used as the session's source (`sourceAddress: UseNodeIP`, the default). */
  sourceAddress?: string;
  /** Wait for the peer to connect (two-sided peering and the peer's address is the greater). */
  passive: boolean;
  /** This node reflects routes to the peer (`rr client; rr cluster id <routeReflectorClusterId>`). */
  rrClient: boolean;
  nextHop?: 'self' | 'keep';
  /** Seconds (BGPPeer maxRestartTime, or the mesh's nodeMeshMaxRestartTime). */
  gracefulRestartTime?: number;
  /** Seconds (BGPPeer keepaliveTime). */
  keepaliveTime?: number;
  /** BGPPeer ttlSecurity: GTSM with this many hops. */
  ttlSecurity?: number;
  /** `allow local as <n>` (BGPPeer numAllowedLocalASNumbers). */
  allowLocalAs?: number;
  /** The Calico node behind the peer address, when it is one. */
  peerNode?: string;
  /** Where the peering comes from: `node-to-node mesh`, `BGPPeer <name>` or `BGPPeer <name> (reverse)`. */
  origin: string;
}

export type AsNumberSource = 'node' | 'nodeConfiguration' | 'defaultConfiguration' | 'builtin';

export interface BgpModel {
  nodeName: string;
  /** IPv4 router ID: the node's IPv4 address unless given. */
  routerId: string;
  /** The node's IPv4 address (no prefix) and its subnet, when it has one. */
  ipv4?: { address: string; cidr?: string };
  ipv6?: { address: string; cidr?: string };
  asNumber: number;
  asNumberSource: AsNumberSource;
  listenPort: number;
  /** The cluster-wide nodeToNodeMeshEnabled setting. */
  meshEnabled: boolean;
  /** This node has `spec.bgp.routeReflectorClusterID` (it is a route reflector). */
  routeReflectorClusterId?: string;
  bindMode: 'None' | 'NodeIP';
  logSeverity: string;
  /** BGPConfiguration ignoredInterfaces (interface-name globs). */
  ignoredInterfaces: string[];
  /** BGPConfiguration programClusterRoutes: `Disabled` keeps BIRD from programming any pool route. */
  programClusterRoutes: 'Enabled' | 'Disabled';
  /** Sorted: mesh, global, node; IPv4 before IPv6; by address, then port. */
  peers: PeerModel[];
  /** Sorted by CIDR (IPv4 first). */
  pools: PoolModel[];
  /** This node's affine blocks, canonical and sorted (IPv4 first). */
  blocks: string[];
  /** Service CIDRs advertised from this node (serviceClusterIPs, serviceExternalIPs, serviceLoadBalancerIPs). */
  serviceCidrs: string[];
  notes: string[];
  /** Peerings left out because something they need is missing (a password): for the Node's status. */
  problems: string[];
}

export interface BuildBgpModelInput {
  thisNode: string;
  nodes: readonly Resource[];
  bgpConfigurations?: readonly Resource[];
  bgpPeers?: readonly Resource[];
  ipPools?: readonly Resource[];
  /** This node's block CIDRs. */
  affineBlocks?: readonly string[];
  /** Resolves a secretKeyRef; undefined when the secret or key does not exist (may throw). */
  secret?: SecretResolver;
  /** calico-node's CALICO_ROUTER_ID: an IPv4 address, or `hash` (derived from the node name). */
  routerId?: string;
}

export class BgpModelError extends Error {}

type Obj = Record<string, unknown>;

function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** An AS number: integer 1–4294967295, a string of digits, or asdot `a.b`. */
function asNumberOf(v: unknown): number | undefined {
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) v = Number(v);
    else {
      const m = /^(\d+)\.(\d+)$/.exec(v);
      if (!m || Number(m[1]) > 65535 || Number(m[2]) > 65535) return undefined;
      v = Number(m[1]) * 65536 + Number(m[2]);
    }
  }
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 4294967295 ? v : undefined;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** Go duration text (`90s`, `1m30s`, `2h`, `0`) → whole seconds, rounded up; undefined when invalid. */
export function durationSeconds(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v) && v >= 0) return Math.ceil(v);
  if (typeof v !== 'string') return undefined;
  if (v === '0') return 0;
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let end = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    end = re.lastIndex;
  }
  if (end === 0 || end !== v.length) return undefined;
  return Math.ceil(total - 1e-9);
}

/** Refuses a password BIRD cannot carry unambiguously, or the kernel cannot use as a TCP-MD5 key. */
export function checkPassword(pw: string, what: string): string {
  if (pw === '') throw new BgpModelError(`${what}: the password is empty`);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/["\\]/.test(pw) || /[\u0000-\u001f\u007f]/.test(pw)) {
    throw new BgpModelError(`${what}: the password contains a quote, a backslash or a control character, which BIRD's configuration cannot carry`);
  }
  if (Buffer.byteLength(pw, 'utf8') > MAX_PASSWORD_BYTES) {
    throw new BgpModelError(`${what}: the password is longer than ${MAX_PASSWORD_BYTES} bytes (the kernel's TCP-MD5 key limit)`);
  }
  return pw;
}

/** A router ID from a node name, for a node without IPv4 (CALICO_ROUTER_ID=hash): SHA-256's first 4 bytes. */
export function hashRouterId(nodeName: string): string {
  const d = createHash('sha256').update(nodeName).digest();
  return `${d[0]}.${d[1]}.${d[2]}.${d[3]}`;
}

interface Addr {
  address: string;
  cidr?: string;
}

function addressOf(v: unknown, family: IPVersion): Addr | undefined {
  const s = str(v);
  if (!s) return undefined;
  const slash = s.indexOf('/');
  const ip = parseIP(slash < 0 ? s : s.slice(0, slash));
  if (!ip || ip.version !== family) return undefined;
  if (slash < 0) return { address: formatIP(ip) };
  const c = parseCIDR(s);
  return c ? { address: formatIP(ip), cidr: formatCIDR(c) } : undefined;
}

interface NodeInfo {
  name: string;
  labels: Record<string, string>;
  v4?: Addr;
  v6?: Addr;
  asNumber: number;
  asSource: AsNumberSource;
  listenPort: number;
  rrClusterId?: string;
}

function addrOf(n: NodeInfo, f: IPVersion): Addr | undefined {
  return f === 4 ? n.v4 : n.v6;
}

/** Calico's secretKeyRef password, or an inline string (test convenience). */
function resolvePassword(v: unknown, what: string, secret: BuildBgpModelInput['secret'], notes: string[]): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return checkPassword(v, what);
  const ref = obj(obj(v)?.secretKeyRef);
  if (!ref) throw new BgpModelError(`${what}: password must be {secretKeyRef: {name, key}}`);
  const name = str(ref.name);
  const key = str(ref.key);
  if (!name || !key) throw new BgpModelError(`${what}: password.secretKeyRef needs both name and key`);
  const which = `password secret ${JSON.stringify(name)} key ${JSON.stringify(key)}`;
  let value: string | undefined;
  try {
    value = secret?.(name, key);
  } catch (e) {
    throw new BgpModelError(`${what}: ${which} could not be read: ${(e as Error).message}`);
  }
  if (value === undefined) {
    if (ref.optional === true) {
      notes.push(`${what}: optional secret ${name}/${key} not found; no password used`);
      return undefined;
    }
    const where = secret ? secret.where?.(name, key) : 'no secret resolver was given';
    throw new BgpModelError(`${what}: ${which} could not be resolved${where ? ` (${where})` : ''}`);
  }
  return checkPassword(value, what);
}

/** resolvePassword, or the reason it failed (BgpModelError) recorded in `problems`. */
function tryPassword(
  v: unknown,
  what: string,
  secret: BuildBgpModelInput['secret'],
  notes: string[],
  problems: string[],
  leftOut: string,
): { ok: true; password: string | undefined } | { ok: false } {
  try {
    return { ok: true, password: resolvePassword(v, what, secret, notes) };
  } catch (e) {
    if (!(e instanceof BgpModelError)) throw e;
    problems.push(`${e.message}; ${leftOut} left out of the BIRD configuration (the other peers are not affected)`);
    return { ok: false };
  }
}

const TYPE_RANK: Record<PeerType, number> = { mesh: 0, global: 1, node: 2 };

function compareAddr(a: string, b: string): number {
  const x = parseIP(a)!;
  const y = parseIP(b)!;
  if (x.version !== y.version) return x.version - y.version;
  return x.value < y.value ? -1 : x.value > y.value ? 1 : 0;
}

function comparePeers(a: PeerModel, b: PeerModel): number {
  return TYPE_RANK[a.type] - TYPE_RANK[b.type] || compareAddr(a.address, b.address) || (a.port ?? BGP_PORT) - (b.port ?? BGP_PORT);
}

/** `10.0.0.5`, `10.0.0.5:1790`, `[fd00::5]:1790`, `fd00::5` → address and port. */
function parsePeerIP(v: string): { address: string; family: IPVersion; port?: number } | undefined {
  let host = v;
  let port: number | undefined;
  const v6 = /^\[([^\]]+)\]:(\d{1,5})$/.exec(v);
  const v4 = /^(\d+\.\d+\.\d+\.\d+):(\d{1,5})$/.exec(v);
  if (v6) [host, port] = [v6[1]!, Number(v6[2])];
  else if (v4) [host, port] = [v4[1]!, Number(v4[2])];
  const ip = parseIP(host);
  if (!ip || (v6 && ip.version !== 6)) return undefined;
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { address: formatIP(ip), family: ip.version, port };
}

function canonicalCidr(s: unknown): { cidr: string; family: IPVersion; prefix: number } | undefined {
  if (typeof s !== 'string') return undefined;
  const c = parseCIDR(s.includes('/') ? s : `${s}/${s.includes(':') ? 128 : 32}`);
  return c ? { cidr: formatCIDR(c), family: c.version, prefix: c.prefix } : undefined;
}

function sortCidrs(list: Iterable<string>): string[] {
  return [...new Set(list)].sort((a, b) => compareCIDR(parseCIDR(a)!, parseCIDR(b)!));
}

export function buildBgpModel(input: BuildBgpModelInput): BgpModel {
  const notes: string[] = [];
  const problems: string[] = [];
  const configs = new Map<string, Obj>();
  for (const r of input.bgpConfigurations ?? []) configs.set(r.metadata.name, obj(r.spec) ?? {});
  const dflt = configs.get('default') ?? {};
  const nodeConfig = (n: string): Obj => configs.get(`node.${n}`) ?? {};
  const dfltAS = asNumberOf(dflt.asNumber);
  const dfltPort = typeof dflt.listenPort === 'number' ? dflt.listenPort : BGP_PORT;

  // Every Calico node's BGP identity.
  const nodes = new Map<string, NodeInfo>();
  for (const r of [...input.nodes].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0))) {
    const name = r.metadata.name;
    const bgp = obj(obj(r.spec)?.bgp) ?? {};
    const nc = nodeConfig(name);
    let asNumber = DEFAULT_AS_NUMBER;
    let asSource: AsNumberSource = 'builtin';
    const own = asNumberOf(bgp.asNumber);
    const fromNodeCfg = asNumberOf(nc.asNumber);
    if (own !== undefined) [asNumber, asSource] = [own, 'node'];
    else if (fromNodeCfg !== undefined) [asNumber, asSource] = [fromNodeCfg, 'nodeConfiguration'];
    else if (dfltAS !== undefined) [asNumber, asSource] = [dfltAS, 'defaultConfiguration'];
    const rr = str(bgp.routeReflectorClusterID);
    const rrIP = rr ? parseIP(rr) : undefined;
    if (rr && (rrIP?.version !== 4)) notes.push(`Node ${name}: routeReflectorClusterID ${JSON.stringify(rr)} is not an IPv4 address; ignored`);
    nodes.set(name, {
      name,
      labels: { ...(r.metadata.labels ?? {}) },
      v4: addressOf(bgp.ipv4Address, 4),
      v6: addressOf(bgp.ipv6Address, 6),
      asNumber,
      asSource,
      listenPort: typeof nc.listenPort === 'number' ? nc.listenPort : dfltPort,
      rrClusterId: rrIP && rrIP.version === 4 ? formatIP(rrIP) : undefined,
    });
  }
  const me = nodes.get(input.thisNode);
  if (!me) throw new BgpModelError(`node ${JSON.stringify(input.thisNode)} not found among the Node resources`);
  if (!me.v4 && !me.v6) throw new BgpModelError(`node ${JSON.stringify(me.name)} has no BGP address (spec.bgp.ipv4Address / ipv6Address)`);
  const myConfig = nodeConfig(me.name);
  const pick = (k: string): unknown => myConfig[k] ?? dflt[k];

  let routerId: string;
  if (input.routerId === undefined || input.routerId === '') {
    routerId = me.v4 ? me.v4.address : hashRouterId(me.name);
    if (!me.v4) notes.push(`router id ${routerId} derived from the node name (the node has no IPv4 address)`);
  } else if (input.routerId === 'hash') {
    routerId = hashRouterId(me.name);
  } else {
    const ip = parseIP(input.routerId);
    if (ip?.version !== 4) throw new BgpModelError(`router id ${JSON.stringify(input.routerId)} is not an IPv4 address (or "hash")`);
    routerId = formatIP(ip);
  }

  const families = ([4, 6] as const).filter((f) => addrOf(me, f));
  const isSelf = (address: string): boolean => address === me.v4?.address || address === me.v6?.address;
  const nodeByAddress = new Map<string, NodeInfo>();
  for (const n of nodes.values()) for (const f of [4, 6] as const) {
    const a = addrOf(n, f);
    if (a && !nodeByAddress.has(a.address)) nodeByAddress.set(a.address, n);
  }

  const peers = new Map<string, PeerModel>();
  const addPeer = (p: PeerModel): void => {
    const key = `${p.address}|${p.port ?? BGP_PORT}`;
    const prev = peers.get(key);
    if (!prev) {
      peers.set(key, p);
      return;
    }
    const [keep, drop] = TYPE_RANK[p.type] > TYPE_RANK[prev.type] ? [p, prev] : [prev, p];
    peers.set(key, keep);
    if (drop.origin.replace(/ \(reverse\)$/, '') !== keep.origin.replace(/ \(reverse\)$/, '')) {
      notes.push(`${drop.name} (${drop.origin}) not configured: ${keep.name} (${keep.origin}) already peers with ${p.address}`);
    }
  };
  const rrClientFor = (localAs: number, peerAs: number, peerNode?: NodeInfo): boolean =>
    me.rrClusterId !== undefined && localAs === peerAs && peerNode?.rrClusterId !== me.rrClusterId;

  // Node-to-node mesh.
  const meshEnabled = typeof dflt.nodeToNodeMeshEnabled === 'boolean' ? dflt.nodeToNodeMeshEnabled : true;
  if (meshEnabled && me.rrClusterId) {
    notes.push(`this node is a route reflector (cluster ID ${me.rrClusterId}): no node-to-node mesh peers`);
  } else if (meshEnabled) {
    const pw = tryPassword(dflt.nodeMeshPassword, 'BGPConfiguration default nodeMeshPassword', input.secret, notes, problems, 'the node-to-node mesh peers are');
    const meshPassword = pw.ok ? pw.password : undefined;
    const restart = durationSeconds(dflt.nodeMeshMaxRestartTime);
    for (const n of pw.ok ? nodes.values() : []) {
      if (n === me) continue;
      if (n.rrClusterId) {
        notes.push(`mesh: node ${n.name} is a route reflector; not a mesh peer`);
        continue;
      }
      for (const f of families) {
        const a = addrOf(n, f);
        if (!a) continue;
        if (isSelf(a.address)) {
          notes.push(`mesh: node ${n.name} has this node's address ${a.address}; skipped`);
          continue;
        }
        const mine = addrOf(me, f)!.address;
        const port = n.listenPort !== BGP_PORT ? n.listenPort : undefined;
        addPeer({
          name: protocolName('mesh', a.address),
          type: 'mesh',
          family: f,
          address: a.address,
          port,
          asNumber: n.asNumber,
          password: meshPassword,
          sourceAddress: mine,
          passive: a.address > mine,
          rrClient: false,
          gracefulRestartTime: restart || undefined,
          peerNode: n.name,
          origin: 'node-to-node mesh',
        });
      }
      if (!n.v4 && !n.v6) notes.push(`mesh: node ${n.name} has no BGP address; skipped`);
    }
  }

  // BGPPeers, in name order (the first of two equal peerings wins).
  const bgpPeers = [...(input.bgpPeers ?? [])].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  for (const r of bgpPeers) {
    const what = `BGPPeer ${r.metadata.name}`;
    const spec = obj(r.spec) ?? {};
    let nodeSel: Selector | undefined;
    let peerSel: Selector | undefined;
    try {
      const ns = str(spec.nodeSelector);
      const ps = str(spec.peerSelector);
      nodeSel = ns && !str(spec.node) ? parseSelector(ns) : undefined;
      peerSel = ps ? parseSelector(ps) : undefined;
    } catch (e) {
      notes.push(`${what}: ${(e as Error).message}; ignored`);
      continue;
    }
    const specNode = str(spec.node);
    const scoped = specNode !== undefined || nodeSel !== undefined;
    const appliesTo = (n: NodeInfo): boolean => (specNode !== undefined ? n.name === specNode : nodeSel ? nodeSel.evaluate(n.labels) : true);
    const peerIP = str(spec.peerIP);
    if (!peerIP && !peerSel) {
      notes.push(`${what}: neither peerIP nor peerSelector set; ignored`);
      continue;
    }
    if (peerIP && peerSel) {
      notes.push(`${what}: peerIP and peerSelector are both set; ignored`);
      continue;
    }
    const reverse = peerSel !== undefined && spec.reversePeering !== 'Manual';
    // Collect the (type, remote node or address) peerings of this node.
    const targets: { type: PeerType; node?: NodeInfo; address?: string; family?: IPVersion; port?: number; reverse: boolean }[] = [];
    if (peerIP) {
      if (!appliesTo(me)) continue;
      const p = parsePeerIP(peerIP);
      if (!p) {
        notes.push(`${what}: peerIP ${JSON.stringify(peerIP)} is not an address; ignored`);
        continue;
      }
      targets.push({ type: scoped ? 'node' : 'global', address: p.address, family: p.family, port: p.port, reverse: false });
    } else {
      if (appliesTo(me)) {
        for (const n of nodes.values()) if (n !== me && peerSel!.evaluate(n.labels)) targets.push({ type: scoped ? 'node' : 'global', node: n, reverse: false });
      }
      if (reverse && peerSel!.evaluate(me.labels)) {
        for (const n of nodes.values()) if (n !== me && appliesTo(n)) targets.push({ type: 'node', node: n, reverse: true });
      }
      if (targets.length === 0) continue;
    }
    const pw = tryPassword(spec.password, what, input.secret, notes, problems, 'its peerings are');
    if (!pw.ok) continue;
    const password = pw.password;
    const localAs = asNumberOf(spec.localASNumber) ?? me.asNumber;
    for (const t of targets) {
      const list: { address: string; family: IPVersion; port?: number; node?: NodeInfo }[] = [];
      if (t.node) {
        for (const f of [4, 6] as const) {
          const a = addrOf(t.node, f);
          if (a) list.push({ address: a.address, family: f, port: t.node.listenPort !== BGP_PORT ? t.node.listenPort : undefined, node: t.node });
        }
      } else {
        const n = nodeByAddress.get(t.address!);
        list.push({ address: t.address!, family: t.family!, port: t.port, node: n });
      }
      for (const x of list) {
        if (isSelf(x.address)) {
          notes.push(`${what}: peer ${x.address} is this node; skipped`);
          continue;
        }
        const mine = addrOf(me, x.family);
        if (!mine) {
          if (!t.node) notes.push(`${what}: peer ${x.address} is IPv${x.family} and this node has no IPv${x.family} address; skipped`);
          continue;
        }
        const asNumber = t.node ? t.node.asNumber : (asNumberOf(spec.asNumber) ?? me.asNumber);
        const twoSided = t.node !== undefined && reverse;
        const nextHopMode = str(spec.nextHopMode);
        const nextHop =
          nextHopMode === 'Self' ? 'self' : nextHopMode === 'Keep' || (spec.keepOriginalNextHop === true && asNumber !== localAs) ? 'keep' : undefined;
        const ttl = typeof spec.ttlSecurity === 'number' && spec.ttlSecurity > 0 ? spec.ttlSecurity : undefined;
        const allow = typeof spec.numAllowedLocalASNumbers === 'number' && spec.numAllowedLocalASNumbers > 0 ? spec.numAllowedLocalASNumbers : undefined;
        addPeer({
          name: protocolName(t.type, x.address, x.port),
          type: t.type,
          family: x.family,
          address: x.address,
          port: x.port !== undefined && x.port !== BGP_PORT ? x.port : undefined,
          asNumber,
          localAsNumber: localAs !== me.asNumber ? localAs : undefined,
          password,
          sourceAddress: spec.sourceAddress === 'None' ? undefined : mine.address,
          passive: twoSided && x.address > mine.address,
          rrClient: rrClientFor(localAs, asNumber, x.node),
          nextHop,
          gracefulRestartTime: durationSeconds(spec.maxRestartTime) || undefined,
          keepaliveTime: durationSeconds(spec.keepaliveTime) || undefined,
          ttlSecurity: ttl,
          allowLocalAs: allow,
          peerNode: x.node?.name,
          origin: t.reverse ? `${what} (reverse)` : what,
        });
      }
    }
  }

  // Pools.
  const pools: PoolModel[] = [];
  for (const r of input.ipPools ?? []) {
    const spec = obj(r.spec) ?? {};
    const c = canonicalCidr(spec.cidr);
    if (!c || !String(spec.cidr).includes('/')) {
      notes.push(`IPPool ${r.metadata.name}: cidr ${JSON.stringify(spec.cidr)} is not a CIDR; ignored`);
      continue;
    }
    pools.push({
      name: r.metadata.name,
      cidr: c.cidr,
      family: c.family,
      natOutgoing: spec.natOutgoing === true,
      ipipMode: normalizeEncapMode(spec.ipipMode) ?? 'Never',
      vxlanMode: normalizeEncapMode(spec.vxlanMode) ?? 'Never',
      disableBGPExport: spec.disableBGPExport === true,
      disabled: spec.disabled === true,
    });
  }
  pools.sort((a, b) => compareCIDR(parseCIDR(a.cidr)!, parseCIDR(b.cidr)!) || (a.name < b.name ? -1 : 1));

  // Blocks.
  const blocks: string[] = [];
  for (const b of input.affineBlocks ?? []) {
    const c = typeof b === 'string' && b.includes('/') ? canonicalCidr(b) : undefined;
    if (!c) notes.push(`block ${JSON.stringify(b)} is not a CIDR; ignored`);
    else if (c.prefix === bitsOf(c.family)) notes.push(`block ${c.cidr} is a single address; not advertised as a block`);
    else if (!addrOf(me, c.family)) notes.push(`block ${c.cidr}: this node has no IPv${c.family} address; not advertised`);
    else blocks.push(c.cidr);
  }

  // Service CIDRs (default configuration only).
  const services: string[] = [];
  for (const k of ['serviceClusterIPs', 'serviceExternalIPs', 'serviceLoadBalancerIPs']) {
    const list = Array.isArray(dflt[k]) ? (dflt[k] as unknown[]) : [];
    for (const e of list) {
      const c = canonicalCidr(obj(e)?.cidr);
      if (!c) notes.push(`BGPConfiguration default ${k}: ${JSON.stringify(obj(e)?.cidr)} is not a CIDR; ignored`);
      else if (addrOf(me, c.family)) services.push(c.cidr);
    }
  }

  const ignored: string[] = [];
  const ii = pick('ignoredInterfaces');
  for (const s of Array.isArray(ii) ? ii : []) {
    if (typeof s === 'string' && /^[a-zA-Z0-9_.*-]{1,15}$/.test(s)) ignored.push(s);
    else notes.push(`ignoredInterfaces: ${JSON.stringify(s)} is not an interface name or pattern; ignored`);
  }
  const sev = str(pick('logSeverityScreen')) ?? 'Info';

  const out: BgpModel = {
    nodeName: me.name,
    routerId,
    asNumber: me.asNumber,
    asNumberSource: me.asSource,
    listenPort: me.listenPort,
    meshEnabled,
    bindMode: pick('bindMode') === 'NodeIP' ? 'NodeIP' : 'None',
    logSeverity: sev,
    ignoredInterfaces: ignored,
    programClusterRoutes: pick('programClusterRoutes') === 'Disabled' ? 'Disabled' : 'Enabled',
    peers: [...peers.values()].sort(comparePeers),
    pools,
    blocks: sortCidrs(blocks),
    serviceCidrs: sortCidrs(services),
    notes,
    problems,
  };
  if (me.v4) out.ipv4 = { ...me.v4 };
  if (me.v6) out.ipv6 = { ...me.v6 };
  if (me.rrClusterId) out.routeReflectorClusterId = me.rrClusterId;
  return out;
}

/** The AS as calicoctl prints it for a node: in parentheses when inherited (`(64512)`). */
export function displayAsNumber(model: Pick<BgpModel, 'asNumber' | 'asNumberSource'>): string {
  return model.asNumberSource === 'node' ? String(model.asNumber) : `(${model.asNumber})`;
}
