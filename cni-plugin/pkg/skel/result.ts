// Results: a version-neutral internal form, its JSON for each spec version (CNI spec §5 "Success"),
// and parsing of a result (e.g. prevResult) back into the internal form.
//
// Output mirrors Go's encoding: key order as in the Go structs, empty lists and empty strings omitted,
// `dns` always present (`{}` when empty). 0.3.0/0.3.1/0.4.0 add `ips[].version` ("4"/"6"); 1.0.0 drops
// it; 1.1.0 additionally emits interfaces[].mtu/socketPath/pciID and routes[].mtu/advmss/priority/
// table/scope (these are dropped for older versions). Abbreviated (IPAM) results carry no
// `interfaces` and no `ips[].interface`.

import { isIP } from 'node:net';
import { CniError, ErrCode } from './errors.js';
import { RESULT_VERSIONS, versionAtLeast } from './version.js';

export interface ResultInterface {
  name: string;
  mac?: string;
  /** 1.1.0 only. */
  mtu?: number;
  /** CNI_NETNS for container-side interfaces; absent/empty for host-side ones. */
  sandbox?: string;
  /** 1.1.0 only. */
  socketPath?: string;
  /** 1.1.0 only. */
  pciID?: string;
}

export interface ResultIP {
  /** IP with prefix length, e.g. "10.1.0.5/16". */
  address: string;
  gateway?: string;
  /** Index into `interfaces`. */
  interface?: number;
}

export interface ResultRoute {
  /** Destination CIDR. */
  dst: string;
  gw?: string;
  /** 1.1.0 only. */
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface ResultDNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface InternalResult {
  interfaces?: ResultInterface[];
  ips?: ResultIP[];
  routes?: ResultRoute[];
  dns?: ResultDNS;
}

export interface FormatOptions {
  /** IPAM-style result: no `interfaces`, no `ips[].interface`. */
  abbreviated?: boolean;
}

/** 4 or 6 for "ip/prefix" with a valid prefix, else null. */
export function cidrFamily(s: string): 4 | 6 | null {
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const fam = isIP(s.slice(0, slash));
  const prefix = s.slice(slash + 1);
  if (fam === 0 || !/^\d{1,3}$/.test(prefix)) return null;
  const n = Number(prefix);
  if (n > (fam === 4 ? 32 : 128)) return null;
  return fam as 4 | 6;
}

function internalError(msg: string): CniError {
  return new CniError(ErrCode.Internal, `cannot format result: ${msg}`);
}

function checkInt(v: number | undefined, what: string): void {
  if (v !== undefined && !Number.isInteger(v)) throw internalError(`${what} must be an integer, got ${v}`);
}

/**
 * The result JSON object for `cniVersion` (one of RESULT_VERSIONS). Throws code 1 for other versions
 * and code 999 for an internally inconsistent result (bad address, interface index out of range).
 */
export function formatResult(
  result: InternalResult,
  cniVersion: string,
  opts: FormatOptions = {},
): Record<string, unknown> {
  if (!RESULT_VERSIONS.includes(cniVersion)) {
    throw new CniError(
      ErrCode.IncompatibleVersion,
      `cannot produce a result for CNI version ${JSON.stringify(cniVersion)}; supported: ${RESULT_VERSIONS.join(', ')}`,
    );
  }
  const v11 = versionAtLeast(cniVersion, '1.1.0');
  const withIpVersion = !versionAtLeast(cniVersion, '1.0.0');
  const abbreviated = opts.abbreviated === true;
  const ifaces = result.interfaces ?? [];

  const out: Record<string, unknown> = { cniVersion };

  if (!abbreviated && ifaces.length > 0) {
    out.interfaces = ifaces.map((i, idx) => {
      if (typeof i.name !== 'string' || i.name === '') throw internalError(`interfaces[${idx}].name is empty`);
      checkInt(i.mtu, `interfaces[${idx}].mtu`);
      const o: Record<string, unknown> = { name: i.name };
      if (i.mac) o.mac = i.mac;
      if (v11 && i.mtu) o.mtu = i.mtu;
      if (i.sandbox) o.sandbox = i.sandbox;
      if (v11 && i.socketPath) o.socketPath = i.socketPath;
      if (v11 && i.pciID) o.pciID = i.pciID;
      return o;
    });
  }

  const ips = result.ips ?? [];
  if (ips.length > 0) {
    out.ips = ips.map((ip, idx) => {
      const fam = cidrFamily(ip.address);
      if (fam === null) throw internalError(`ips[${idx}].address ${JSON.stringify(ip.address)} is not IP/prefix`);
      if (ip.gateway !== undefined && ip.gateway !== '' && isIP(ip.gateway) === 0) {
        throw internalError(`ips[${idx}].gateway ${JSON.stringify(ip.gateway)} is not an IP`);
      }
      const o: Record<string, unknown> = {};
      if (withIpVersion) o.version = String(fam);
      if (!abbreviated && ip.interface !== undefined) {
        if (!Number.isInteger(ip.interface) || ip.interface < 0 || ip.interface >= ifaces.length) {
          throw internalError(`ips[${idx}].interface ${ip.interface} is out of range (${ifaces.length} interfaces)`);
        }
        o.interface = ip.interface;
      }
      o.address = ip.address;
      if (ip.gateway) o.gateway = ip.gateway;
      return o;
    });
  }

  const routes = result.routes ?? [];
  if (routes.length > 0) {
    out.routes = routes.map((r, idx) => {
      if (cidrFamily(r.dst) === null) throw internalError(`routes[${idx}].dst ${JSON.stringify(r.dst)} is not a CIDR`);
      if (r.gw !== undefined && r.gw !== '' && isIP(r.gw) === 0) {
        throw internalError(`routes[${idx}].gw ${JSON.stringify(r.gw)} is not an IP`);
      }
      const o: Record<string, unknown> = { dst: r.dst };
      if (r.gw) o.gw = r.gw;
      if (v11) {
        for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
          checkInt(r[k], `routes[${idx}].${k}`);
          if (r[k] !== undefined) o[k] = r[k];
        }
      }
      return o;
    });
  }

  const dns: Record<string, unknown> = {};
  const d = result.dns ?? {};
  if (d.nameservers && d.nameservers.length > 0) dns.nameservers = [...d.nameservers];
  if (d.domain) dns.domain = d.domain;
  if (d.search && d.search.length > 0) dns.search = [...d.search];
  if (d.options && d.options.length > 0) dns.options = [...d.options];
  out.dns = dns;

  return out;
}

// ---------------------------------------------------------------------------------------------------
// Parsing

export interface ParsedResult {
  /** The result's own cniVersion, if it had one. */
  cniVersion: string | undefined;
  result: InternalResult;
}

class ResultParser {
  constructor(private readonly what: string) {}

  fail(path: string, problem: string): never {
    throw new CniError(ErrCode.InvalidNetworkConfig, `invalid ${this.what}: ${path} ${problem}`);
  }

  obj(v: unknown, path: string): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, 'must be an object');
    return v as Record<string, unknown>;
  }

  arr(v: unknown, path: string): unknown[] {
    if (!Array.isArray(v)) this.fail(path, 'must be an array');
    return v;
  }

  optStr(o: Record<string, unknown>, key: string, path: string): string | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') this.fail(`${path}.${key}`, 'must be a string');
    return v;
  }

  optInt(o: Record<string, unknown>, key: string, path: string): number | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v)) this.fail(`${path}.${key}`, 'must be an integer');
    return v;
  }

  optStrList(o: Record<string, unknown>, key: string, path: string): string[] | undefined {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    const a = this.arr(v, `${path}.${key}`);
    a.forEach((s, i) => {
      if (typeof s !== 'string') this.fail(`${path}.${key}[${i}]`, 'must be a string');
    });
    return a as string[];
  }
}

/**
 * Parses a 0.3.0–1.1.x result object (e.g. `prevResult`) into the internal form. Accepts `"dns":{}`,
 * `ips[].version` (ignored) and unknown keys (dropped). Throws code 7 naming the bad field (`what`
 * prefixes messages), code 1 for a 0.2.0-shaped (`ip4`/`ip6`) result.
 */
export function parseResult(raw: unknown, what = 'prevResult'): ParsedResult {
  const p: ResultParser = new ResultParser(what);
  const o = p.obj(raw, what);
  const cniVersion = p.optStr(o, 'cniVersion', what);
  if (o.ips === undefined && (o.ip4 !== undefined || o.ip6 !== undefined)) {
    throw new CniError(ErrCode.IncompatibleVersion, `${what} uses the 0.2.0 result format (ip4/ip6), which is not supported`);
  }
  const result: InternalResult = {};

  if (o.interfaces !== undefined && o.interfaces !== null) {
    result.interfaces = p.arr(o.interfaces, 'interfaces').map((x, i) => {
      const path = `interfaces[${i}]`;
      const io = p.obj(x, path);
      const name = p.optStr(io, 'name', path);
      if (!name) p.fail(`${path}.name`, 'is missing');
      const iface: ResultInterface = { name };
      const mac = p.optStr(io, 'mac', path);
      if (mac) iface.mac = mac;
      const mtu = p.optInt(io, 'mtu', path);
      if (mtu) iface.mtu = mtu;
      const sandbox = p.optStr(io, 'sandbox', path);
      if (sandbox) iface.sandbox = sandbox;
      const socketPath = p.optStr(io, 'socketPath', path);
      if (socketPath) iface.socketPath = socketPath;
      const pciID = p.optStr(io, 'pciID', path);
      if (pciID) iface.pciID = pciID;
      return iface;
    });
  }

  if (o.ips !== undefined && o.ips !== null) {
    result.ips = p.arr(o.ips, 'ips').map((x, i) => {
      const path = `ips[${i}]`;
      const io = p.obj(x, path);
      const address = p.optStr(io, 'address', path);
      if (!address) p.fail(`${path}.address`, 'is missing');
      if (cidrFamily(address) === null) p.fail(`${path}.address`, `${JSON.stringify(address)} is not IP/prefix`);
      const ip: ResultIP = { address };
      const gateway = p.optStr(io, 'gateway', path);
      if (gateway) {
        if (isIP(gateway) === 0) p.fail(`${path}.gateway`, `${JSON.stringify(gateway)} is not an IP`);
        ip.gateway = gateway;
      }
      const idx = p.optInt(io, 'interface', path);
      if (idx !== undefined) {
        if (idx < 0) p.fail(`${path}.interface`, 'must not be negative');
        ip.interface = idx;
      }
      return ip;
    });
  }

  if (o.routes !== undefined && o.routes !== null) {
    result.routes = p.arr(o.routes, 'routes').map((x, i) => {
      const path = `routes[${i}]`;
      const ro = p.obj(x, path);
      const dst = p.optStr(ro, 'dst', path);
      if (!dst) p.fail(`${path}.dst`, 'is missing');
      if (cidrFamily(dst) === null) p.fail(`${path}.dst`, `${JSON.stringify(dst)} is not a CIDR`);
      const route: ResultRoute = { dst };
      const gw = p.optStr(ro, 'gw', path);
      if (gw) {
        if (isIP(gw) === 0) p.fail(`${path}.gw`, `${JSON.stringify(gw)} is not an IP`);
        route.gw = gw;
      }
      for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope'] as const) {
        const n = p.optInt(ro, k, path);
        if (n !== undefined) route[k] = n;
      }
      return route;
    });
  }

  if (o.dns !== undefined && o.dns !== null) {
    const d = p.obj(o.dns, 'dns');
    const dns: ResultDNS = {};
    const ns = p.optStrList(d, 'nameservers', 'dns');
    if (ns && ns.length > 0) dns.nameservers = ns;
    const domain = p.optStr(d, 'domain', 'dns');
    if (domain) dns.domain = domain;
    const search = p.optStrList(d, 'search', 'dns');
    if (search && search.length > 0) dns.search = search;
    const options = p.optStrList(d, 'options', 'dns');
    if (options && options.length > 0) dns.options = options;
    result.dns = dns;
  }

  return { cniVersion, result };
}

/** The config's `prevResult` in internal form, or null when absent. Throws like parseResult. */
export function prevResultOf(config: Record<string, unknown>): InternalResult | null {
  const raw = config.prevResult;
  if (raw === undefined || raw === null) return null;
  return parseResult(raw, 'prevResult').result;
}
