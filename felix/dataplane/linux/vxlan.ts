// Felix's IPv4 VXLAN tunnel device, `vxlan.calico`, as Calico's vxlan manager keeps it:
//   ip link add vxlan.calico address <VTEP MAC> mtu <M> type vxlan id 4096 local <node IP> dev <parent>
//       dstport 4789 nolearning
//   ip addr add <tunnel IP>/32 dev vxlan.calico ; ip link set vxlan.calico up
//
// - The VTEP MAC is the node's VXLANTunnelMACAddr when set, else derived from the node name:
//   0x66 ('f') followed by the first 5 bytes of SHA-1(<node name>) (SHA-1(<node name>-v6) for IPv6).
//   0x66 has the locally-administered bit set and the multicast bit clear.
// - MTU: the one given, else the underlay MTU given − 50, else the parent device's MTU − 50 (VXLAN
//   over IPv4 overhead, Felix's ConfigureDefaultMTUs).
// - A device whose kind, VNI, port, local address, parent device or MAC differ is deleted and created
//   again (the routes, neighbours and FDB entries on it go with it); a wrong MTU is set in place, a
//   missing tunnel address added, any other IPv4 address removed, a down device set up.
//
// planVxlanDevice is the pure part (kernel JSON in, `ip -batch` commands out); ensureVxlanDevice reads
// (`ip -j -d addr show`, one process) and applies (one `ip -batch`, only when something differs).

import { createHash } from 'node:crypto';
import { formatIP, parseIP } from '../../../libcalico-go/lib/net/ip.js';
import { CommandError, IpRoute, isValidIfName } from './iproute.js';

export const VXLAN_DEVICE = 'vxlan.calico';
export const VXLAN_DEVICE_V6 = 'vxlan-v6.calico';
export const DEFAULT_VXLAN_VNI = 4096;
export const DEFAULT_VXLAN_PORT = 4789;
/** Bytes VXLAN over IPv4 adds (outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14). */
export const VXLAN_OVERHEAD_V4 = 50;

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Calico's deterministic VTEP MAC for a node: "66:" + first 5 bytes of SHA-1(name [+ "-v6"]). */
export function vtepMacForNode(nodeName: string, ipVersion: 4 | 6 = 4): string {
  if (typeof nodeName !== 'string' || nodeName === '') throw new TypeError('node name required');
  const sha = createHash('sha1')
    .update(ipVersion === 6 ? `${nodeName}-v6` : nodeName, 'utf8')
    .digest();
  return [0x66, ...sha.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0')).join(':');
}

/** Lower-case colon form of a unicast MAC ("66:AA-bb..." accepted); null when not a valid unicast MAC. */
export function normalizeMac(mac: string): string | null {
  if (typeof mac !== 'string') return null;
  const m = mac.trim().toLowerCase().replaceAll('-', ':');
  if (!MAC_RE.test(m)) return null;
  if (parseInt(m.slice(0, 2), 16) & 1) return null; // multicast / broadcast
  if (m === '00:00:00:00:00:00') return null;
  return m;
}

/** A canonical IPv4 address from "a.b.c.d" or "a.b.c.d/nn"; null otherwise. */
export function ipv4Of(s: string): string | null {
  if (typeof s !== 'string') return null;
  const ip = parseIP(s.includes('/') ? s.slice(0, s.indexOf('/')) : s);
  return ip && ip.version === 4 ? formatIP(ip) : null;
}

// ---------------------------------------------------------------------------------------------------
// Kernel JSON (`ip -j -d addr show`)

export interface AddrInfoJson {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}

export interface VxlanInfoJson {
  id?: number;
  local?: string;
  link?: string;
  port?: number;
  learning?: boolean;
}

export interface AddrLinkJson {
  ifindex?: number;
  ifname: string;
  flags?: string[];
  mtu?: number;
  operstate?: string;
  address?: string;
  linkinfo?: { info_kind?: string; info_data?: VxlanInfoJson };
  addr_info?: AddrInfoJson[];
}

/** The link holding IPv4 address `addr` (any prefix), if any. */
export function linkWithAddress(links: readonly AddrLinkJson[], addr: string): AddrLinkJson | undefined {
  return links.find((l) => l.addr_info?.some((a) => a.family === 'inet' && a.local !== undefined && ipv4Of(a.local) === addr));
}

// ---------------------------------------------------------------------------------------------------
// Plan

export interface VxlanDeviceSpec {
  /** Default "vxlan.calico". */
  name?: string;
  /** Default 4096 (Felix VXLANVNI). */
  vni?: number;
  /** Default 4789 (Felix VXLANPort). */
  port?: number;
  /** Device MTU; default: underlayMtu − 50, else the parent device's MTU − 50. */
  mtu?: number;
  /** The underlay MTU (e.g. Felix's detected host MTU); the device gets this − 50 unless mtu is given. */
  underlayMtu?: number;
  /** This node's underlay IPv4 address (the VXLAN source, Calico's ParentDeviceIp). "/nn" is ignored. */
  localAddress: string;
  /** The underlay device; default: the device holding localAddress. */
  parentIfName?: string;
  /** This node's VXLAN tunnel address (IPv4VXLANTunnelAddr, from IPAM), put on the device as /32. */
  tunnelAddress: string;
  /** VTEP MAC (VXLANTunnelMACAddr); default derived from nodeName. */
  mac?: string;
  /** Needed when mac is not given. */
  nodeName?: string;
}

/** A spec with every default filled in and every field checked. */
export interface ResolvedVxlanSpec {
  name: string;
  vni: number;
  port: number;
  mtu: number | undefined;
  localAddress: string;
  parentIfName: string | undefined;
  tunnelAddress: string;
  mac: string;
}

export class VxlanError extends Error {
  override readonly name = 'VxlanError';
}

export function resolveVxlanSpec(spec: VxlanDeviceSpec): ResolvedVxlanSpec {
  if (spec === null || typeof spec !== 'object') throw new VxlanError('VXLAN device spec required');
  const name = spec.name ?? VXLAN_DEVICE;
  if (!isValidIfName(name)) throw new VxlanError(`invalid device name ${JSON.stringify(name)}`);
  const vni = spec.vni ?? DEFAULT_VXLAN_VNI;
  if (!Number.isInteger(vni) || vni < 1 || vni > 0xffffff) throw new VxlanError(`invalid VNI ${spec.vni}`);
  const port = spec.port ?? DEFAULT_VXLAN_PORT;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new VxlanError(`invalid port ${spec.port}`);
  if (spec.mtu !== undefined && (!Number.isInteger(spec.mtu) || spec.mtu < 68 || spec.mtu > 65535)) throw new VxlanError(`invalid MTU ${spec.mtu}`);
  let mtu = spec.mtu;
  if (mtu === undefined && spec.underlayMtu !== undefined) {
    if (!Number.isInteger(spec.underlayMtu) || spec.underlayMtu - VXLAN_OVERHEAD_V4 < 68 || spec.underlayMtu > 65535) {
      throw new VxlanError(`invalid underlay MTU ${spec.underlayMtu}`);
    }
    mtu = spec.underlayMtu - VXLAN_OVERHEAD_V4;
  }
  const localAddress = ipv4Of(spec.localAddress);
  if (!localAddress) throw new VxlanError(`invalid local (underlay) IPv4 address ${JSON.stringify(spec.localAddress)}`);
  const tunnelAddress = ipv4Of(spec.tunnelAddress);
  if (!tunnelAddress) throw new VxlanError(`invalid tunnel IPv4 address ${JSON.stringify(spec.tunnelAddress)}`);
  if (spec.parentIfName !== undefined && !isValidIfName(spec.parentIfName)) throw new VxlanError(`invalid parent device name ${JSON.stringify(spec.parentIfName)}`);
  let mac: string | null;
  if (spec.mac !== undefined && spec.mac !== '') {
    mac = normalizeMac(spec.mac);
    if (!mac) throw new VxlanError(`invalid VTEP MAC ${JSON.stringify(spec.mac)}`);
  } else if (spec.nodeName) {
    mac = vtepMacForNode(spec.nodeName, 4);
  } else {
    throw new VxlanError('either mac or nodeName is required');
  }
  return { name, vni, port, mtu, localAddress, parentIfName: spec.parentIfName, tunnelAddress, mac };
}

export interface VxlanDevicePlan {
  spec: ResolvedVxlanSpec;
  parent: string;
  mtu: number;
  /** The device is absent and will be created. */
  create: boolean;
  /** The device exists with other parameters and will be deleted and created again. */
  recreate: boolean;
  /** What differs, in words ("vni 42, want 4096", "down", ...); empty when the device is right. */
  actions: string[];
  /** `ip -batch` commands that make it right; empty when it is. */
  commands: string[][];
}

/** What `ip` would have to do to make the device match `spec`, given `ip -j -d addr show` output. */
export function planVxlanDevice(specIn: VxlanDeviceSpec, links: readonly AddrLinkJson[]): VxlanDevicePlan {
  const spec = resolveVxlanSpec(specIn);
  const parentLink = spec.parentIfName !== undefined ? links.find((l) => l.ifname === spec.parentIfName) : linkWithAddress(links, spec.localAddress);
  if (!parentLink) {
    throw new VxlanError(
      spec.parentIfName !== undefined ? `parent device ${spec.parentIfName} not found` : `no device has the local address ${spec.localAddress}`,
    );
  }
  if (parentLink.ifname === spec.name) throw new VxlanError(`the local address ${spec.localAddress} is on ${spec.name} itself`);
  const parent = parentLink.ifname;
  let mtu = spec.mtu;
  if (mtu === undefined) {
    if (typeof parentLink.mtu !== 'number') throw new VxlanError(`MTU of ${parent} unknown`);
    mtu = parentLink.mtu - VXLAN_OVERHEAD_V4;
    if (mtu < 68) throw new VxlanError(`parent ${parent} MTU ${parentLink.mtu} too small for VXLAN`);
  }
  const dev = spec.name;
  const createCmds: string[][] = [
    [
      'link', 'add', dev, 'address', spec.mac, 'mtu', String(mtu), 'type', 'vxlan', 'id', String(spec.vni),
      'local', spec.localAddress, 'dev', parent, 'dstport', String(spec.port), 'nolearning',
    ],
    ['addr', 'add', `${spec.tunnelAddress}/32`, 'dev', dev],
    ['link', 'set', 'dev', dev, 'up'],
  ];
  const base = { spec, parent, mtu };
  const cur = links.find((l) => l.ifname === dev);
  if (!cur) return { ...base, create: true, recreate: false, actions: ['absent'], commands: createCmds };

  const incompat: string[] = [];
  const kind = cur.linkinfo?.info_kind;
  const d = cur.linkinfo?.info_data ?? {};
  if (kind !== 'vxlan') incompat.push(`kind ${kind ?? 'none'}, want vxlan`);
  else {
    if (d.id !== spec.vni) incompat.push(`vni ${d.id}, want ${spec.vni}`);
    if (d.port !== spec.port) incompat.push(`port ${d.port}, want ${spec.port}`);
    if ((d.local === undefined ? undefined : ipv4Of(d.local)) !== spec.localAddress) incompat.push(`local ${d.local ?? 'none'}, want ${spec.localAddress}`);
    if (d.link !== parent) incompat.push(`parent ${d.link ?? 'none'}, want ${parent}`);
    if (d.learning === true) incompat.push('learning on, want off');
    if (normalizeMac(cur.address ?? '') !== spec.mac) incompat.push(`mac ${cur.address}, want ${spec.mac}`);
  }
  if (incompat.length > 0) {
    return { ...base, create: false, recreate: true, actions: incompat, commands: [['link', 'del', 'dev', dev], ...createCmds] };
  }

  const actions: string[] = [];
  const commands: string[][] = [];
  if (cur.mtu !== mtu) {
    actions.push(`mtu ${cur.mtu}, want ${mtu}`);
    commands.push(['link', 'set', 'dev', dev, 'mtu', String(mtu)]);
  }
  const v4 = (cur.addr_info ?? []).filter((a) => a.family === 'inet');
  for (const a of v4) {
    if (a.local === undefined) continue;
    if (ipv4Of(a.local) === spec.tunnelAddress && a.prefixlen === 32) continue;
    actions.push(`stray address ${a.local}/${a.prefixlen}`);
    commands.push(['addr', 'del', `${a.local}/${a.prefixlen}`, 'dev', dev]);
  }
  if (!v4.some((a) => a.local !== undefined && ipv4Of(a.local) === spec.tunnelAddress && a.prefixlen === 32)) {
    actions.push(`tunnel address ${spec.tunnelAddress}/32 missing`);
    commands.push(['addr', 'add', `${spec.tunnelAddress}/32`, 'dev', dev]);
  }
  if (!cur.flags?.includes('UP')) {
    actions.push('down');
    commands.push(['link', 'set', 'dev', dev, 'up']);
  }
  return { ...base, create: false, recreate: false, actions, commands };
}

// ---------------------------------------------------------------------------------------------------
// I/O

export interface VxlanIoOptions {
  /** The ip runner; default a shared IpRoute. */
  ip?: IpRoute;
  /** Network namespace path; default the current one (the node's). */
  netns?: string;
}

let defaultIp: IpRoute | undefined;
export function ipOf(opts?: VxlanIoOptions): IpRoute {
  return opts?.ip ?? (defaultIp ??= new IpRoute());
}

/** `ip -j -d addr show`: every link with its details and addresses. */
export async function readLinks(opts?: VxlanIoOptions): Promise<AddrLinkJson[]> {
  return ipOf(opts).json<AddrLinkJson[]>(['addr', 'show'], { netns: opts?.netns, details: true });
}

export interface EnsureVxlanResult {
  /** What was wrong (empty: nothing changed). */
  actions: string[];
  created: boolean;
  recreated: boolean;
  name: string;
  mac: string;
  mtu: number;
  parent: string;
}

/** Creates or repairs the VXLAN device; a no-op (one `ip` read) when it is already right. */
export async function ensureVxlanDevice(spec: VxlanDeviceSpec, opts?: VxlanIoOptions): Promise<EnsureVxlanResult> {
  const plan = planVxlanDevice(spec, await readLinks(opts));
  await applyVxlanPlan(plan, opts);
  return vxlanResult(plan);
}

/** Runs a plan's commands (nothing when there are none). */
export async function applyVxlanPlan(plan: VxlanDevicePlan, opts?: VxlanIoOptions): Promise<void> {
  if (plan.commands.length === 0) return;
  try {
    await ipOf(opts).batch(plan.commands, { netns: opts?.netns });
  } catch (e) {
    throw new VxlanError(`${plan.spec.name}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
}

export function vxlanResult(plan: VxlanDevicePlan): EnsureVxlanResult {
  return {
    actions: plan.commands.length === 0 ? [] : plan.actions,
    created: plan.create,
    recreated: plan.recreate,
    name: plan.spec.name,
    mac: plan.spec.mac,
    mtu: plan.mtu,
    parent: plan.parent,
  };
}

/** Deletes the VXLAN device (with its routes, neighbours and FDB entries). False when it was absent. */
export async function removeVxlanDevice(opts?: VxlanIoOptions & { name?: string }): Promise<boolean> {
  const name = opts?.name ?? VXLAN_DEVICE;
  if (!isValidIfName(name)) throw new VxlanError(`invalid device name ${JSON.stringify(name)}`);
  try {
    await ipOf(opts).run(['link', 'del', 'dev', name], { netns: opts?.netns });
    return true;
  } catch (e) {
    if (e instanceof CommandError && e.notFound) return false;
    throw e;
  }
}
