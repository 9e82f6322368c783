// IPv4 address autodetection over the interfaces of the agent's network namespace, with the
// methods calico-node offers (IP_AUTODETECTION_METHOD), and the pod MTU Felix derives from the
// host interfaces. The only I/O is running `ip -j addr show` / `ip -j route get` (read-only);
// the selection itself is pure and takes the parsed interface list.
//
// Calico behaviour reproduced:
// * Interfaces are considered in reverse order of their index (calico-node walks Go's interface
//   list backwards "to maintain behaviour with older versions"), addresses in listed order; the
//   first global-unicast IPv4 address wins. Link state is not looked at.
// * first-found skips the default exclude list (docker, cbr, dummy, podman, virbr, lxcbr, veth,
//   lo, cali, tunl, flannel, kube-ipvs, cni, vxlan.calico, wireguard.cali, …); skip-interface adds
//   its regexes to that list; interface= considers only matching names and excludes nothing else.
//   Regexes are unanchored, as Go's MatchString.
// * can-reach=DEST takes the source address the kernel would use towards DEST (`ip route get`,
//   where Calico connects a UDP socket — same route lookup, nothing sent) and returns it with the
//   prefix of the interface address that matches it.
// * cidr=… returns the first address (same walk, no exclusions) inside one of the CIDRs.
import { execFile } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { cidrContainsIP, formatCIDR, cidrOf, parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';
import type { AutodetectMethod } from './config.js';

export const IP_BIN = '/usr/sbin/ip';

/** calico-node's DEFAULT_INTERFACES_TO_EXCLUDE on Linux. */
export const DEFAULT_INTERFACES_TO_EXCLUDE: readonly string[] = [
  '^docker.*',
  '^cbr.*',
  '^dummy.*',
  '^podman.*',
  '^virbr.*',
  '^lxcbr.*',
  '^veth.*',
  '^lo',
  '^cali.*',
  '^tunl.*',
  '^flannel.*',
  '^kube-ipvs.*',
  '^cni.*',
  '^vxlan\\.calico.*',
  '^vxlan-v6\\.calico.*',
  '^wireguard\\.cali.*',
  '^wg-v6\\.cali.*',
];

export interface InterfaceAddress {
  family: 4 | 6;
  address: string;
  prefixLen: number;
}

export interface HostInterface {
  index: number;
  name: string;
  mtu: number;
  /** operstate UP. */
  operUp: boolean;
  addresses: InterfaceAddress[];
}

export interface DetectedAddress {
  iface: string;
  address: string;
  prefixLen: number;
  /** `address/prefixLen` with host bits kept, as spec.bgp.ipv4Address takes it. */
  cidr: string;
}

export class AutodetectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AutodetectError';
  }
}

/** Runs `ip` with an argument array and returns its stdout. */
export type IpRunner = (args: string[]) => Promise<string>;

export const runIp: IpRunner = (args) =>
  new Promise((resolve, reject) => {
    execFile(IP_BIN, args, { timeout: 5000, maxBuffer: 32 * 1024 * 1024, env: {} }, (err, stdout, stderr) => {
      if (err) {
        const why = String(stderr).trim() || err.message;
        reject(new AutodetectError(`${IP_BIN} ${args.join(' ')}: ${why}`));
      } else resolve(String(stdout));
    });
  });

/** Parses the JSON printed by `ip -j addr show`. Unknown or malformed entries are skipped. */
export function parseIpAddrJson(text: string): HostInterface[] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new AutodetectError(`cannot parse the output of "ip -j addr show": ${(e as Error).message}`);
  }
  if (!Array.isArray(doc)) throw new AutodetectError('"ip -j addr show" did not print a list');
  const out: HostInterface[] = [];
  for (const l of doc) {
    if (typeof l !== 'object' || l === null) continue;
    const link = l as Record<string, unknown>;
    if (typeof link.ifname !== 'string' || typeof link.ifindex !== 'number') continue;
    const addresses: InterfaceAddress[] = [];
    for (const a of Array.isArray(link.addr_info) ? link.addr_info : []) {
      const ai = a as Record<string, unknown>;
      const fam = ai.family === 'inet' ? 4 : ai.family === 'inet6' ? 6 : undefined;
      if (!fam || typeof ai.local !== 'string' || typeof ai.prefixlen !== 'number') continue;
      const ip = parseIP(ai.local);
      if (!ip || ip.version !== fam) continue;
      addresses.push({ family: fam, address: ai.local, prefixLen: ai.prefixlen });
    }
    out.push({
      index: link.ifindex,
      name: link.ifname,
      mtu: typeof link.mtu === 'number' ? link.mtu : 0,
      operUp: link.operstate === 'UP',
      addresses,
    });
  }
  return out.sort((a, b) => a.index - b.index);
}

/** The interfaces of the current network namespace. */
export async function readInterfaces(run: IpRunner = runIp): Promise<HostInterface[]> {
  return parseIpAddrJson(await run(['-j', 'addr', 'show']));
}

/** The source address the kernel picks towards `dest` (`ip -j route get`); undefined if none. */
export function parseRouteGetJson(text: string): string | undefined {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new AutodetectError(`cannot parse the output of "ip -j route get": ${(e as Error).message}`);
  }
  const first = Array.isArray(doc) ? (doc[0] as Record<string, unknown> | undefined) : undefined;
  return typeof first?.prefsrc === 'string' ? first.prefsrc : undefined;
}

export async function routeSource(dest: string, run: IpRunner = runIp): Promise<string | undefined> {
  return parseRouteGetJson(await run(['-j', 'route', 'get', dest]));
}

/** Go's net.IP.IsGlobalUnicast for IPv4. */
export function isGlobalUnicastV4(address: string): boolean {
  const ip = parseIP(address);
  if (ip?.version !== 4) return false;
  const v = ip.value;
  const first = Number(v >> 24n);
  if (v === 0n || v === 0xffffffffn) return false;
  if (first === 127) return false; // loopback
  if (first >= 224 && first <= 239) return false; // multicast
  if (first === 169 && Number((v >> 16n) & 255n) === 254) return false; // link-local
  return true;
}

function combined(patterns: readonly string[]): RegExp | undefined {
  return patterns.length === 0 ? undefined : new RegExp(patterns.map((p) => `(${p})`).join('|'));
}

function detected(i: HostInterface, a: InterfaceAddress): DetectedAddress {
  return { iface: i.name, address: a.address, prefixLen: a.prefixLen, cidr: `${a.address}/${a.prefixLen}` };
}

/** calico-node's filtered walk: reverse index order, include/exclude by name, first global v4. */
export function firstMatching(
  interfaces: readonly HostInterface[],
  include: readonly string[],
  exclude: readonly string[],
  cidrs: readonly string[] = [],
): DetectedAddress | undefined {
  const inc = combined(include);
  const exc = combined(exclude);
  const nets = cidrs.map((c) => parseCIDR(c)!).filter(Boolean);
  const ordered = [...interfaces].sort((a, b) => b.index - a.index);
  for (const i of ordered) {
    if (inc && !inc.test(i.name)) continue;
    if (exc?.test(i.name)) continue;
    for (const a of i.addresses) {
      if (a.family !== 4 || !isGlobalUnicastV4(a.address)) continue;
      if (nets.length > 0 && !nets.some((n) => cidrContainsIP(n, parseIP(a.address)!))) continue;
      return detected(i, a);
    }
  }
  return undefined;
}

/** The interface address equal to `address` (any interface), for its prefix length. */
export function findLocalAddress(address: string, interfaces: readonly HostInterface[]): DetectedAddress | undefined {
  const want = parseIP(address);
  if (!want) return undefined;
  for (const i of [...interfaces].sort((a, b) => b.index - a.index)) {
    for (const a of i.addresses) {
      const ip = parseIP(a.address);
      if (ip && ip.version === want.version && ip.value === want.value) return detected(i, a);
    }
  }
  return undefined;
}

function describeMethod(m: AutodetectMethod): string {
  switch (m.kind) {
    case 'first-found':
      return 'first-found';
    case 'can-reach':
      return `can-reach=${m.dest}`;
    case 'interface':
      return `interface=${m.patterns.join(',')}`;
    case 'skip-interface':
      return `skip-interface=${m.patterns.join(',')}`;
    case 'cidr':
      return `cidr=${m.cidrs.join(',')}`;
    case 'kubernetes-internal-ip':
      return 'kubernetes-internal-ip';
  }
}

/**
 * Pure selection for every method. For can-reach, `reachSource` is the source address the route
 * lookup gave. Throws AutodetectError saying what was looked at.
 */
export function selectIPv4(
  method: AutodetectMethod,
  interfaces: readonly HostInterface[],
  reachSource?: string,
): DetectedAddress {
  let hit: DetectedAddress | undefined;
  switch (method.kind) {
    case 'first-found':
      hit = firstMatching(interfaces, [], DEFAULT_INTERFACES_TO_EXCLUDE);
      break;
    case 'skip-interface':
      hit = firstMatching(interfaces, [], [...DEFAULT_INTERFACES_TO_EXCLUDE, ...method.patterns]);
      break;
    case 'interface':
      hit = firstMatching(interfaces, method.patterns, []);
      break;
    case 'cidr':
      hit = firstMatching(interfaces, [], [], method.cidrs);
      break;
    case 'kubernetes-internal-ip':
      // Start-up reads the k8s Node's InternalIP itself (startup.ts); nothing to select here.
      throw new AutodetectError('kubernetes-internal-ip is taken from the Kubernetes Node, not from the interfaces');
    case 'can-reach': {
      if (!reachSource) throw new AutodetectError(`no source address found for a route to ${method.dest}`);
      hit = findLocalAddress(reachSource, interfaces);
      if (!hit) {
        throw new AutodetectError(
          `autodetected IPv4 address ${reachSource} (route to ${method.dest}) does not match any address on the local interfaces`,
        );
      }
      return hit;
    }
  }
  if (!hit) {
    const names = interfaces.map((i) => i.name).join(', ') || 'none';
    throw new AutodetectError(
      `no valid IPv4 address found on the host interfaces with IP_AUTODETECTION_METHOD=${describeMethod(method)} (interfaces: ${names})`,
    );
  }
  return hit;
}

export interface AutodetectDeps {
  interfaces?: () => Promise<HostInterface[]>;
  routeSource?: (dest: string) => Promise<string | undefined>;
  resolveHost?: (host: string) => Promise<string>;
}

/** Reads the interfaces (and the route for can-reach) and selects the address. */
export async function autodetectIPv4(method: AutodetectMethod, deps: AutodetectDeps = {}): Promise<DetectedAddress> {
  const interfaces = await (deps.interfaces ?? (() => readInterfaces()))();
  let src: string | undefined;
  if (method.kind === 'can-reach') {
    let dest = method.dest;
    if (!parseIP(dest)) {
      const resolve = deps.resolveHost ?? (async (h: string) => (await lookup(h, { family: 4 })).address);
      try {
        dest = await resolve(dest);
      } catch (e) {
        throw new AutodetectError(`cannot resolve ${method.dest}: ${(e as Error).message}`);
      }
    }
    src = await (deps.routeSource ?? ((d: string) => routeSource(d)))(dest);
  }
  return selectIPv4(method, interfaces, src);
}

/** spec.bgp.ipv4Address for an explicit IP: its own prefix, else the matching interface's, else /32. */
export function addressWithPrefix(address: string, prefix: number | undefined, interfaces: readonly HostInterface[]): string {
  if (prefix !== undefined) return `${address}/${prefix}`;
  const local = findLocalAddress(address, interfaces);
  return local ? local.cidr : `${address}/32`;
}

/** The network of an interface address, e.g. 10.0.0.11/24 → 10.0.0.0/24. */
export function networkOf(cidr: string): string | undefined {
  const slash = cidr.indexOf('/');
  const ip = parseIP(cidr.slice(0, slash));
  if (!ip || slash < 0) return undefined;
  return formatCIDR(cidrOf(ip, Number(cidr.slice(slash + 1))));
}

// ---------------------------------------------------------------------------------------------
// MTU, as Felix computes the value it writes to the mtu file.

export const ENCAP_OVERHEAD = { ipip: 20, vxlan: 50 } as const;
/** Felix's host MTU when no interface matches MTUIfacePattern. */
export const FALLBACK_HOST_MTU = 1460;

export interface MTUInputs {
  /** MTUIfacePattern (regex source). */
  ifacePattern: string;
  ipipEnabled: boolean;
  vxlanEnabled: boolean;
  /** Explicit IpInIpMtu / VXLANMTU; 0 = auto (host MTU minus overhead). */
  ipipMTU?: number;
  vxlanMTU?: number;
}

export interface MTUResult {
  hostMTU: number;
  /** Interfaces that set hostMTU (empty when the fallback was used). */
  hostInterfaces: string[];
  podMTU: number;
}

export function computePodMTU(interfaces: readonly HostInterface[], inp: MTUInputs): MTUResult {
  const re = new RegExp(inp.ifacePattern);
  let hostMTU = Infinity;
  let hostInterfaces: string[] = [];
  for (const i of interfaces) {
    if (!i.operUp || !re.test(i.name) || i.mtu <= 0) continue;
    if (i.mtu < hostMTU) {
      hostMTU = i.mtu;
      hostInterfaces = [i.name];
    } else if (i.mtu === hostMTU) hostInterfaces.push(i.name);
  }
  if (hostMTU === Infinity) hostMTU = FALLBACK_HOST_MTU;
  const candidates: number[] = [];
  if (inp.ipipEnabled) candidates.push(inp.ipipMTU || hostMTU - ENCAP_OVERHEAD.ipip);
  if (inp.vxlanEnabled) candidates.push(inp.vxlanMTU || hostMTU - ENCAP_OVERHEAD.vxlan);
  return { hostMTU, hostInterfaces, podMTU: candidates.length > 0 ? Math.min(...candidates) : hostMTU };
}
