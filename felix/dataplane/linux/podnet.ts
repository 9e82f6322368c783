// Pod wiring on Linux, as Calico's CNI plugin does it (cni-plugin/pkg/dataplane/linux), run by the
// node agent in its own network namespace (= the node's host namespace).
//
// wirePod, in order (processes: 1 + 1 in parallel with 2, i.e. about three `ip` start-ups of wall time):
//   1. validate; refuse a netns that is the agent's own namespace;
//   2. "create veth" (one `ip -batch`): delete a stale host link of that name (only a veth), then
//      `ip link add <host> address ee:ee:ee:ee:ee:ee [mtu M] type veth peer name <ifname> [mtu M]
//      netns <netns path>` — the host end is created here, the container end directly inside the
//      container namespace, so the two names never meet in one namespace. The MAC is given at creation
//      (addr_assign_type "set"), so udev's MACAddressPolicy leaves it alone;
//   3. "host sysctls" (file writes): proxy_arp=1, neigh proxy_delay=0, route_localnet=1, forwarding=1,
//      accept_ra=0 (+ IPv6: disable_ipv6=0, accept_dad=0, proxy_ndp=1, forwarding=1);
//   4. in parallel:
//      "host link up and routes" (one `ip -batch`): [addrgenmode eui64 if IPv6], up,
//        `<ip>/32 dev <host> scope link` per IPv4 address (`<ip>/128 dev <host>` per IPv6 one);
//        an identical existing route is accepted, one on another interface is an error naming both;
//      "container sysctls" (one nsenter sysctl): ip_forward=0 (+ IPv6: disable_ipv6=0 for
//        all/default/lo, accept_dad=0 on <ifname>, all/forwarding=0);
//      "container link, routes and addresses" (one `ip -batch`, after the sysctls when IPv6):
//        up; 169.254.1.1/32 dev <ifname> scope link; each IPv4 route via 169.254.1.1; each IPv6 route
//        via fe80::ecee:eeff:feee:eeee; the addresses as /32 and /128.
//   Any failure: the host veth is deleted (which removes the container end and the routes through it)
//   and a PodNetError naming the step is thrown.

import { formatCIDR, formatIP, parseCIDR, parseIP, type IPVersion } from '../../../libcalico-go/lib/net/ip.js';
import {
  CommandError,
  IpRoute,
  isCurrentNetns,
  isValidIfName,
  listInterfaceNames,
  netnsExists,
  readSysctl,
  SysctlError,
  writeSysctl,
} from './iproute.js';

export const HOST_VETH_MAC = 'ee:ee:ee:ee:ee:ee';
/** EUI-64 link-local address of HOST_VETH_MAC: the pods' IPv6 next hop. */
export const HOST_VETH_LINK_LOCAL = 'fe80::ecee:eeff:feee:eeee';
/** The pods' (fake) IPv4 next hop, answered by proxy ARP on the host veth. */
export const POD_GATEWAY_V4 = '169.254.1.1';

export interface WirePodSpec {
  /** The container's network namespace as a path (CNI_NETNS). */
  netns: string;
  /** Container-side interface name (CNI_IFNAME). */
  ifname: string;
  /** Host-side veth name (cali + 11 hex). */
  hostIfName: string;
  /** Pod addresses, e.g. ["10.233.64.5/32", "fd00::5/128"]; any prefix is rewritten to /32, /128. */
  addresses: string[];
  /** MTU for both ends; absent or 0 = kernel default. */
  mtu?: number;
  /** Routes in the container; default ["0.0.0.0/0"] (+ "::/0" with an IPv6 address). */
  routes?: string[];
  /** Calico's container_settings.allow_ip_forwarding (container ip_forward=1). Default false. */
  allowIpForwarding?: boolean;
  /** Calico's num_queues: tx/rx queues of both veth ends. Default 1. */
  numQueues?: number;
}

export interface WirePodResult {
  containerMac: string;
  hostMac: string;
  mtu: number;
  /** Non-fatal problems (Calico logs these as warnings), e.g. accept_ra not writable. */
  warnings: string[];
}

export interface UnwirePodSpec {
  /** The container's netns path; "" when the runtime gave none (only the host side is removed). */
  netns: string;
  ifname: string;
  hostIfName: string;
  /**
   * Whether the host veth may be deleted when it is still there after the container side is gone
   * (default true). False when the host interface now belongs to another sandbox of the same pod:
   * then only the container's own namespace is cleaned.
   */
  hostSide?: boolean;
}

export interface PodNetOptions {
  /** The ip runner; default a shared IpRoute. */
  ip?: IpRoute;
}

/** An error of wirePod/unwirePod/checkPod; `step` names what failed. */
export class PodNetError extends Error {
  override readonly name = 'PodNetError';
  constructor(
    readonly step: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${step}: ${message}`, options);
  }
}

let defaultIp: IpRoute | undefined;
function ipOf(opts?: PodNetOptions): IpRoute {
  return opts?.ip ?? (defaultIp ??= new IpRoute());
}

// ---------------------------------------------------------------------------------------------------
// Spec normalisation

interface PodAddr {
  version: IPVersion;
  ip: string;
  /** /32 or /128 */
  cidr: string;
}

interface NormalSpec {
  netns: string;
  ifname: string;
  host: string;
  addrs: PodAddr[];
  v4: boolean;
  v6: boolean;
  mtu: number | undefined;
  routes4: string[];
  routes6: string[];
  allowIpForwarding: boolean;
  numQueues: number;
}

function checkNames(s: { netns: unknown; ifname: unknown; hostIfName: unknown }): void {
  if (typeof s.netns !== 'string' || !s.netns.startsWith('/')) throw new Error(`netns must be an absolute path, got ${JSON.stringify(s.netns)}`);
  if (typeof s.ifname !== 'string' || !isValidIfName(s.ifname)) throw new Error(`invalid container interface name ${JSON.stringify(s.ifname)}`);
  if (typeof s.hostIfName !== 'string' || !isValidIfName(s.hostIfName)) throw new Error(`invalid host interface name ${JSON.stringify(s.hostIfName)}`);
}

function normalize(spec: WirePodSpec): NormalSpec {
  checkNames(spec);
  if (!Array.isArray(spec.addresses) || spec.addresses.length === 0) throw new Error('no addresses');
  const addrs: PodAddr[] = [];
  for (const a of spec.addresses) {
    const s = String(a);
    const ip = parseIP(s.includes('/') ? s.slice(0, s.indexOf('/')) : s);
    if (!ip || (s.includes('/') && !parseCIDR(s))) throw new Error(`invalid address ${JSON.stringify(a)}`);
    const text = formatIP(ip);
    if (addrs.some((x) => x.ip === text)) continue;
    addrs.push({ version: ip.version, ip: text, cidr: `${text}/${ip.version === 4 ? 32 : 128}` });
  }
  const v4 = addrs.some((a) => a.version === 4);
  const v6 = addrs.some((a) => a.version === 6);
  let mtu: number | undefined;
  if (spec.mtu !== undefined && spec.mtu !== 0) {
    if (!Number.isInteger(spec.mtu) || spec.mtu < 68 || spec.mtu > 65535) throw new Error(`invalid mtu ${spec.mtu}`);
    mtu = spec.mtu;
  }
  const routes = spec.routes ?? ['0.0.0.0/0', '::/0'];
  const routes4: string[] = [];
  const routes6: string[] = [];
  for (const r of routes) {
    const c = parseCIDR(String(r));
    if (!c) throw new Error(`invalid route ${JSON.stringify(r)}`);
    // As Calico: IPv4 routes only with an IPv4 address, IPv6 routes only with an IPv6 address.
    const list = c.version === 4 ? routes4 : routes6;
    const text = formatCIDR(c);
    if (!list.includes(text)) list.push(text);
  }
  const numQueues = spec.numQueues ?? 1;
  if (!Number.isInteger(numQueues) || numQueues < 1 || numQueues > 4096) throw new Error(`invalid numQueues ${spec.numQueues}`);
  return {
    netns: spec.netns,
    ifname: spec.ifname,
    host: spec.hostIfName,
    addrs,
    v4,
    v6,
    mtu,
    routes4: v4 ? routes4 : [],
    routes6: v6 ? routes6 : [],
    allowIpForwarding: spec.allowIpForwarding === true,
    numQueues,
  };
}

/** Refuses a missing netns, or one that is the agent's own namespace (e.g. a recycled /proc/<pid> path). */
function checkNetns(netns: string): void {
  if (!netnsExists(netns)) throw new Error(`netns ${netns} does not exist`);
  if (isCurrentNetns(netns)) throw new Error(`netns ${netns} is the host's own network namespace`);
}

// ---------------------------------------------------------------------------------------------------
// Link JSON helpers

interface LinkJson {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu?: number;
  operstate?: string;
  address?: string;
  link?: string;
  link_index?: number;
  linkinfo?: { info_kind?: string };
  addr_info?: { family?: string; local?: string; prefixlen?: number; scope?: string; tentative?: boolean }[];
}

interface RouteJson {
  dst?: string;
  gateway?: string;
  dev?: string;
  scope?: string;
  table?: string;
  type?: string;
}

function firstLink(v: unknown): LinkJson | undefined {
  return Array.isArray(v) ? (v[0] as LinkJson | undefined) : undefined;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Canonical CIDR of a route's dst as ip prints it ("default", "10.1.2.3", "fd00::/64"). */
function routeDst(r: RouteJson, version: IPVersion): string | null {
  const d = r.dst;
  if (d === undefined) return null;
  if (d === 'default') return version === 4 ? '0.0.0.0/0' : '::/0';
  const c = parseCIDR(d.includes('/') ? d : `${d}/${version === 4 ? 32 : 128}`);
  return c ? formatCIDR(c) : null;
}

/** The family of a route from `route show table all` (mixes both). */
function routeVersion(r: RouteJson): IPVersion | null {
  if (r.dst && r.dst !== 'default') return r.dst.includes(':') ? 6 : 4;
  if (r.gateway) return r.gateway.includes(':') ? 6 : 4;
  return null;
}

function isMainTable(r: RouteJson): boolean {
  return r.table === undefined || r.table === 'main';
}

function canonIP(s: string | undefined): string | undefined {
  if (s === undefined) return undefined;
  const ip = parseIP(s);
  return ip ? formatIP(ip) : s;
}

// ---------------------------------------------------------------------------------------------------
// Host interface queries

/** Whether an interface of that name exists in the agent's (host) namespace. No process. */
export async function hostInterfaceExists(name: string): Promise<boolean> {
  return hostIfExists(name);
}

function hostIfExists(name: string): boolean {
  return listInterfaceNames().includes(name);
}

/** The kind of a host link ("veth", "bridge", … or "" for a plain device); null when it does not exist. */
async function hostLinkKind(ip: IpRoute, name: string): Promise<string | null> {
  try {
    const l = firstLink(await ip.json(['link', 'show', 'dev', name], { details: true }));
    return l ? (l.linkinfo?.info_kind ?? '') : null;
  } catch (e) {
    if (e instanceof CommandError && e.notFound) return null;
    throw e;
  }
}

/** The MAC of `ifname` inside `netns`, or null when the namespace or interface does not exist. */
export async function podInterfaceMac(netns: string, ifname: string, opts?: PodNetOptions): Promise<string | null> {
  if (!isValidIfName(ifname)) throw new TypeError(`invalid interface name ${JSON.stringify(ifname)}`);
  if (!netnsExists(netns) || isCurrentNetns(netns)) return null;
  try {
    return firstLink(await ipOf(opts).json(['link', 'show', 'dev', ifname], { netns }))?.address ?? null;
  } catch (e) {
    if (e instanceof CommandError && e.notFound) return null;
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------------
// wirePod

function hostSysctls(s: NormalSpec): [string, number][] {
  const h = s.host;
  const v4: [string, number][] = [
    [`net/ipv4/conf/${h}/route_localnet`, 1],
    [`net/ipv4/conf/${h}/proxy_arp`, 1],
    [`net/ipv4/conf/${h}/forwarding`, 1],
  ];
  const v6: [string, number][] = s.v6
    ? [
        [`net/ipv6/conf/${h}/disable_ipv6`, 0],
        [`net/ipv6/conf/${h}/accept_dad`, 0],
        [`net/ipv6/conf/${h}/proxy_ndp`, 1],
        [`net/ipv6/conf/${h}/forwarding`, 1],
      ]
    : [];
  return [...v4, ...v6];
}

function containerSysctls(s: NormalSpec): [string, number][] {
  const fwd = s.allowIpForwarding ? 1 : 0;
  const out: [string, number][] = [];
  if (s.v4) out.push(['net/ipv4/ip_forward', fwd]);
  if (s.v6) {
    out.push(
      ['net/ipv6/conf/all/disable_ipv6', 0],
      ['net/ipv6/conf/default/disable_ipv6', 0],
      ['net/ipv6/conf/lo/disable_ipv6', 0],
      [`net/ipv6/conf/${s.ifname}/accept_dad`, 0],
      ['net/ipv6/conf/all/forwarding', fwd],
    );
  }
  return out;
}

/** Runs one named step; any error becomes a PodNetError of that step. */
async function step<T>(name: string, f: () => Promise<T> | T): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (e instanceof PodNetError) throw e;
    throw new PodNetError(name, errText(e), { cause: e });
  }
}

/**
 * [addrgenmode eui64], link up, then host routes `<ip>/32 dev <host> scope link` (`<ip>/128 dev <host>`),
 * in one batch. On EEXIST the existing route is read: the same interface is accepted (Felix may have been
 * first), another one is an error naming both. Returns the output of the final `link show`.
 */
async function hostUpAndRoutes(ip: IpRoute, s: NormalSpec): Promise<LinkJson> {
  const cmds: string[][] = [];
  if (s.v6) cmds.push(['link', 'set', 'dev', s.host, 'addrgenmode', 'eui64']);
  cmds.push(['link', 'set', 'dev', s.host, 'up']);
  const firstRoute = cmds.length;
  for (const a of s.addrs) {
    cmds.push(a.version === 4 ? ['route', 'add', a.cidr, 'dev', s.host, 'scope', 'link'] : ['route', 'add', a.cidr, 'dev', s.host]);
  }
  cmds.push(['link', 'show', 'dev', s.host]);
  let rest = cmds;
  for (;;) {
    try {
      const out = await ip.batchJson(rest);
      const l = firstLink(out[out.length - 1]);
      if (!l) throw new Error(`no link data for ${s.host}`);
      return l;
    } catch (e) {
      if (!(e instanceof CommandError) || !e.failed) throw e;
      const idx = cmds.length - rest.length + e.failed.index;
      if (idx < firstRoute || idx >= firstRoute + s.addrs.length) {
        throw new PodNetError(idx < firstRoute ? 'host link up' : 'host link read', errText(e), { cause: e });
      }
      const a = s.addrs[idx - firstRoute]!;
      if (!e.exists) throw new PodNetError('host route', errText(e), { cause: e });
      const existing = (await ip.json(['route', 'show', 'table', 'main', 'exact', a.cidr], { family: a.version })) as RouteJson[];
      const same = existing.find((r) => r.dev === s.host && (a.version === 6 || r.scope === 'link') && !r.gateway);
      if (!same) {
        const onUs = existing.find((r) => r.dev === s.host);
        if (onUs) throw new PodNetError('host route', `a different route to ${a.cidr} exists on '${s.host}': ${JSON.stringify(onUs)}`, { cause: e });
        const other = existing.map((r) => (r.dev ? `'${r.dev}'` : JSON.stringify(r))).join(', ') || 'unknown';
        throw new PodNetError(
          'host route',
          `route (Dst: ${a.cidr}, Scope: link) already exists for an interface other than '${s.host}': ${other}`,
          { cause: e },
        );
      }
      rest = cmds.slice(idx + 1); // identical route: probably programmed by Felix; go on
    }
  }
}

async function containerSetup(ip: IpRoute, s: NormalSpec): Promise<LinkJson> {
  const dev = s.ifname;
  const cmds: string[][] = [['link', 'set', 'dev', dev, 'up']];
  if (s.v4) {
    cmds.push(['route', 'add', `${POD_GATEWAY_V4}/32`, 'dev', dev, 'scope', 'link']);
    for (const r of s.routes4) cmds.push(['route', 'add', r, 'via', POD_GATEWAY_V4, 'dev', dev]);
  }
  for (const r of s.routes6) cmds.push(['route', 'add', r, 'via', HOST_VETH_LINK_LOCAL, 'dev', dev]);
  for (const a of s.addrs) cmds.push(['addr', 'add', a.cidr, 'dev', dev]);
  cmds.push(['link', 'show', 'dev', dev]);
  const out = await ip.batchJson(cmds, { netns: s.netns });
  const l = firstLink(out[out.length - 1]);
  if (!l) throw new Error(`no link data for ${dev}`);
  return l;
}

/**
 * Wires a pod as Calico's CNI plugin does (see the top of this file). On failure everything done is
 * undone (the host veth deleted, which takes the container end and routes with it) and a PodNetError
 * naming the step is thrown.
 */
export async function wirePod(spec: WirePodSpec, opts?: PodNetOptions): Promise<WirePodResult> {
  const ip = ipOf(opts);
  const s = await step('validate', () => {
    const n = normalize(spec);
    checkNetns(n.netns);
    return n;
  });
  const warnings: string[] = [];

  // 1. A stale host link of that name is deleted first, in the same batch as the creation.
  const create: string[][] = [];
  if (hostIfExists(s.host)) {
    const kind = await step('delete stale host interface', () => hostLinkKind(ip, s.host));
    if (kind !== null && kind !== 'veth') {
      throw new PodNetError('delete stale host interface', `host interface ${s.host} exists and is ${kind ? `a ${kind}` : 'not a veth'}; refusing to delete it`);
    }
    if (kind !== null) create.push(['link', 'del', 'dev', s.host]);
  }
  const mtu = s.mtu !== undefined ? ['mtu', String(s.mtu)] : [];
  const q = ['numtxqueues', String(s.numQueues), 'numrxqueues', String(s.numQueues)];
  create.push([
    'link', 'add', s.host, 'address', HOST_VETH_MAC, ...mtu, ...q,
    'type', 'veth', 'peer', 'name', s.ifname, ...mtu, ...q, 'netns', s.netns,
  ]);
  await step('create veth', async () => {
    try {
      await ip.batch(create);
    } catch (e) {
      if (e instanceof CommandError && e.failed && create.length === 2 && e.failed.index === 0) {
        throw new PodNetError('delete stale host interface', errText(e), { cause: e });
      }
      throw e;
    }
  });

  try {
    // 2. Host sysctls, before the link goes up.
    await step('host sysctls', () => {
      for (const [k, v] of hostSysctls(s)) writeSysctl(k, v);
      for (const [k, v] of [
        [`net/ipv4/neigh/${s.host}/proxy_delay`, 0],
        [`net/ipv6/conf/${s.host}/accept_ra`, 0],
      ] as const) {
        try {
          writeSysctl(k, v);
        } catch (e) {
          warnings.push(e instanceof SysctlError ? e.message : errText(e));
        }
      }
    });

    // 3. Host link up + routes, and the container side, in parallel.
    const hostTask = step('host link up and routes', () => hostUpAndRoutes(ip, s));
    const sysctlTask = step('container sysctls', () => ip.sysctl(containerSysctls(s), s.netns));
    const ctrTask = (s.v6 ? sysctlTask.then(() => undefined) : Promise.resolve()).then(() =>
      step('container link, routes and addresses', () => containerSetup(ip, s)),
    );
    const settled = await Promise.allSettled([hostTask, sysctlTask, ctrTask]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    let hostLink = (settled[0] as PromiseFulfilledResult<LinkJson>).value;
    const ctrLink = (settled[2] as PromiseFulfilledResult<LinkJson>).value;
    // The MAC was given at creation, so udev's MACAddressPolicy does not rewrite it; should anything
    // have, set it again and read it back (Calico retries this too).
    for (let i = 0; hostLink.address !== HOST_VETH_MAC; i++) {
      if (i === 5) throw new PodNetError('host MAC', `${s.host} has MAC ${hostLink.address}, want ${HOST_VETH_MAC}`);
      hostLink = await step('host MAC', async () => {
        const out = await ip.batchJson([
          ['link', 'set', 'dev', s.host, 'address', HOST_VETH_MAC],
          ['link', 'show', 'dev', s.host],
        ]);
        return firstLink(out[0]) ?? hostLink;
      });
    }
    return {
      containerMac: ctrLink.address ?? '',
      hostMac: HOST_VETH_MAC,
      mtu: ctrLink.mtu ?? s.mtu ?? 1500,
      warnings,
    };
  } catch (e) {
    const err = e instanceof PodNetError ? e : new PodNetError('wire', errText(e), { cause: e });
    try {
      await ip.run(['link', 'del', 'dev', s.host]);
    } catch (ue) {
      if (!(ue instanceof CommandError && ue.notFound)) {
        err.message += ` (and undoing failed: ${errText(ue)})`;
      }
    }
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------
// unwirePod

/**
 * Removes a pod's wiring: the container interface (inside the netns, when it still exists), which
 * takes its host peer and the host routes through it; then, unless `hostSide` is false, the host veth
 * if it is still there (netns gone, or the container end was not its peer). Succeeds when any of them
 * is already gone.
 *
 * Sequential on purpose: one veth deletion normally does all, and the kernel's deletion (15–30 ms of
 * RCU waits here) dominates; a parallel second deletion would only queue behind it on the RTNL lock.
 */
export async function unwirePod(spec: UnwirePodSpec, opts?: PodNetOptions): Promise<void> {
  const ip = ipOf(opts);
  // An empty netns (CNI DEL after the container is gone) skips the container side.
  await step('validate', () => checkNames({ ...spec, netns: spec.netns === '' ? '/' : spec.netns }));

  // Container side: skipped when the namespace is gone, or is the agent's own (a recycled path).
  if (spec.netns !== '' && netnsExists(spec.netns) && !isCurrentNetns(spec.netns)) {
    await step('delete container interface', async () => {
      try {
        await ip.run(['link', 'del', 'dev', spec.ifname], { netns: spec.netns });
      } catch (e) {
        // The namespace may vanish between the check and nsenter/ip -n opening it.
        if (!(e instanceof CommandError && e.notFound)) throw e;
      }
    });
  }
  // Host side.
  if (spec.hostSide !== false && hostIfExists(spec.hostIfName)) {
    await step('delete host interface', async () => {
      const kind = await hostLinkKind(ip, spec.hostIfName);
      if (kind === null) return;
      if (kind !== 'veth') throw new Error(`host interface ${spec.hostIfName} is ${kind ? `a ${kind}` : 'not a veth'}; refusing to delete it`);
      try {
        await ip.run(['link', 'del', 'dev', spec.hostIfName]);
      } catch (e) {
        if (!(e instanceof CommandError && e.notFound)) throw e;
      }
    });
  }
}

// ---------------------------------------------------------------------------------------------------
// checkPod

/** What differs from what wirePod sets up; empty when all is in place. */
export async function checkPod(spec: WirePodSpec, opts?: PodNetOptions): Promise<string[]> {
  const ip = ipOf(opts);
  const s = await step('validate', () => normalize(spec));
  const problems: string[] = [];
  const show = (dev: string) => [
    ['addr', 'show', 'dev', dev],
    ['route', 'show', 'table', 'all', 'dev', dev],
  ];

  const hostQ = hostIfExists(s.host)
    ? ip.batchJson(show(s.host), { details: true }).catch((e: unknown) => {
        if (e instanceof CommandError && e.notFound) return null;
        throw e;
      })
    : Promise.resolve(null);
  let ctrQ: Promise<unknown[] | null> = Promise.resolve(null);
  let netnsOk = false;
  if (!netnsExists(s.netns)) problems.push(`netns ${s.netns} does not exist`);
  else if (isCurrentNetns(s.netns)) problems.push(`netns ${s.netns} is the host's own network namespace`);
  else {
    netnsOk = true;
    ctrQ = ip.batchJson(show(s.ifname), { netns: s.netns, details: true }).catch((e: unknown) => {
      if (e instanceof CommandError && e.notFound) return null;
      throw e;
    });
  }
  const [hostR, ctrR] = await Promise.all([hostQ, ctrQ]);

  // Host side.
  const hostLink = hostR ? firstLink(hostR[0]) : undefined;
  if (!hostLink) problems.push(`host interface ${s.host} missing`);
  else {
    if (hostLink.linkinfo?.info_kind !== 'veth') problems.push(`host interface ${s.host} is not a veth`);
    if (hostLink.address !== HOST_VETH_MAC) problems.push(`host interface ${s.host} has MAC ${hostLink.address}, want ${HOST_VETH_MAC}`);
    if (!hostLink.flags?.includes('UP')) problems.push(`host interface ${s.host} is down`);
    if (s.mtu !== undefined && hostLink.mtu !== s.mtu) problems.push(`host interface ${s.host} has MTU ${hostLink.mtu}, want ${s.mtu}`);
    for (const [k, v] of hostSysctls(s)) {
      const got = readSysctl(k);
      if (got !== String(v)) problems.push(`host sysctl ${k} is ${got ?? 'missing'}, want ${v}`);
    }
    const routes = ((hostR?.[1] ?? []) as RouteJson[]).filter(isMainTable);
    for (const a of s.addrs) {
      const ok = routes.some(
        (r) => routeVersion(r) === a.version && routeDst(r, a.version) === a.cidr && !r.gateway && (a.version === 6 || r.scope === 'link'),
      );
      if (!ok) problems.push(`host route ${a.cidr} dev ${s.host}${a.version === 4 ? ' scope link' : ''} missing`);
    }
    if (s.v6 && !hostLink.addr_info?.some((x) => x.family === 'inet6' && canonIP(x.local) === HOST_VETH_LINK_LOCAL)) {
      problems.push(`host interface ${s.host} lacks link-local address ${HOST_VETH_LINK_LOCAL}`);
    }
  }

  // Container side.
  if (netnsOk) {
    const l = ctrR ? firstLink(ctrR[0]) : undefined;
    if (!l) problems.push(`container interface ${s.ifname} missing in ${s.netns}`);
    else {
      if (!l.flags?.includes('UP')) problems.push(`container interface ${s.ifname} is down`);
      if (s.mtu !== undefined && l.mtu !== s.mtu) problems.push(`container interface ${s.ifname} has MTU ${l.mtu}, want ${s.mtu}`);
      if (hostLink && l.link_index !== undefined && (l.link_index !== hostLink.ifindex || hostLink.link_index !== l.ifindex)) {
        problems.push(`container interface ${s.ifname} is not the peer of host interface ${s.host}`);
      }
      for (const a of s.addrs) {
        const ok = l.addr_info?.some((x) => canonIP(x.local) === a.ip && x.prefixlen === (a.version === 4 ? 32 : 128));
        if (!ok) problems.push(`address ${a.cidr} missing on ${s.ifname}`);
      }
      const routes = ((ctrR?.[1] ?? []) as RouteJson[]).filter(isMainTable);
      const has = (v: IPVersion, dst: string, pred: (r: RouteJson) => boolean) =>
        routes.some((r) => routeVersion(r) === v && routeDst(r, v) === dst && pred(r));
      if (s.v4 && !has(4, `${POD_GATEWAY_V4}/32`, (r) => r.scope === 'link' && !r.gateway)) {
        problems.push(`route ${POD_GATEWAY_V4} dev ${s.ifname} scope link missing`);
      }
      for (const r of s.routes4) {
        if (!has(4, r, (x) => x.gateway === POD_GATEWAY_V4)) problems.push(`route ${r} via ${POD_GATEWAY_V4} dev ${s.ifname} missing`);
      }
      for (const r of s.routes6) {
        if (!has(6, r, (x) => canonIP(x.gateway) === HOST_VETH_LINK_LOCAL)) problems.push(`route ${r} via ${HOST_VETH_LINK_LOCAL} dev ${s.ifname} missing`);
      }
    }
  }
  return problems;
}
