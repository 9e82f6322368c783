// Value checks shared by several kinds: names, labels, addresses, AS numbers, ports, protocols,
// durations, MAC addresses, selectors. Each `check*` takes the value and its path, records an issue
// on failure, and returns the canonical value (or undefined).

import {
  type CIDR,
  type IPVersion,
  bitsOf,
  formatCIDR,
  formatIP,
  parseCIDR,
  parseIP,
} from '../../../net/ip.js';
import { parseSelector, SelectorError, type Selector } from '../../../selector/index.js';
import { type Ctx, type Obj, checkInt, checkKnown, join, readBool, readObj, readString, put } from './context.js';

// ---------------------------------------------------------------------------------------------
// Names

const LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const dnsLabelRe = new RegExp(`^${LABEL_FMT}$`);
const dnsSubdomainRe = new RegExp(`^${LABEL_FMT}(\\.${LABEL_FMT})*$`);

export function isDNSSubdomain(s: string): boolean {
  return s.length <= 253 && dnsSubdomainRe.test(s);
}

/** A name field that must be a DNS-1123 subdomain (Calico's `name` validator). */
export function checkSubdomain(ctx: Ctx, v: string, p: string): string | undefined {
  if (v.length > 253) {
    ctx.invalid(p, v, `is too long (${v.length} characters; at most 253)`);
    return undefined;
  }
  if (!dnsSubdomainRe.test(v)) {
    ctx.invalid(p, v, 'is not a valid name (lower-case letters, digits, "-" and "."; must start and end with a letter or digit)');
    return undefined;
  }
  return v;
}

export function checkDNSLabel(ctx: Ctx, v: string, p: string): string | undefined {
  if (v.length > 63) {
    ctx.invalid(p, v, `is too long (${v.length} characters; at most 63)`);
    return undefined;
  }
  if (!dnsLabelRe.test(v)) {
    ctx.invalid(p, v, 'is not a valid DNS label (lower-case letters, digits and "-"; must start and end with a letter or digit)');
    return undefined;
  }
  return v;
}

const qualifiedNamePartRe = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

/** Why `k` is not a Kubernetes qualified name (label/annotation key), or undefined when it is. */
export function qualifiedNameProblem(k: string): string | undefined {
  const slash = k.lastIndexOf('/');
  let name = k;
  if (k.indexOf('/') !== slash) return 'has more than one "/"';
  if (slash >= 0) {
    const prefix = k.slice(0, slash);
    name = k.slice(slash + 1);
    if (prefix === '') return 'has an empty prefix before "/"';
    if (!isDNSSubdomain(prefix)) return 'has a prefix that is not a DNS subdomain';
  }
  if (name === '') return 'has an empty name part';
  if (name.length > 63) return 'has a name part longer than 63 characters';
  if (!qualifiedNamePartRe.test(name)) {
    return 'is not a valid key (letters, digits, "-", "_" and "."; must start and end with a letter or digit; optional DNS prefix and "/")';
  }
  return undefined;
}

/** Why `v` is not a valid label value, or undefined when it is. */
export function labelValueProblem(v: string): string | undefined {
  if (v === '') return undefined;
  if (v.length > 63) return `is too long (${v.length} characters; at most 63)`;
  if (!qualifiedNamePartRe.test(v)) {
    return 'is not a valid label value (letters, digits, "-", "_" and "."; must start and end with a letter or digit)';
  }
  return undefined;
}

/** A labels map: keys are qualified names, values valid label values. */
export function checkLabels(ctx: Ctx, labels: Record<string, string>, p: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    const kp = qualifiedNameProblem(k);
    if (kp) {
      ctx.say(join(p, k), k, `label key ${JSON.stringify(k)} ${kp}`);
      continue;
    }
    const vp = labelValueProblem(v);
    if (vp) {
      ctx.invalid(join(p, k), v, vp);
      continue;
    }
    out[k] = v;
  }
  return out;
}

/** Port names as Kubernetes validates them (IANA service names). */
export function portNameProblem(s: string): string | undefined {
  if (s.length === 0 || s.length > 15) return 'must be 1–15 characters';
  if (!/^[-a-z0-9]+$/.test(s)) return 'may contain only lower-case letters, digits and "-"';
  if (!/[a-z]/.test(s)) return 'must contain at least one letter';
  if (s.startsWith('-') || s.endsWith('-')) return 'must not start or end with "-"';
  if (s.includes('--')) return 'must not contain "--"';
  return undefined;
}

const ifaceRe = /^[a-zA-Z0-9_.-]{1,15}$/;

/** A Linux interface name (≤ 15 characters of [a-zA-Z0-9_.-]); `*` too when `allowStar`. */
export function checkInterfaceName(ctx: Ctx, v: string, p: string, allowStar: boolean): string | undefined {
  if (allowStar && v === '*') return v;
  if (v.length > 15) {
    ctx.invalid(p, v, `is too long for an interface name (${v.length} characters; at most 15)`);
    return undefined;
  }
  if (!ifaceRe.test(v)) {
    ctx.invalid(p, v, `is not a valid interface name (letters, digits, "_", "." and "-"${allowStar ? ', or "*"' : ''})`);
    return undefined;
  }
  return v;
}

// ---------------------------------------------------------------------------------------------
// Addresses

function versionWord(v: IPVersion | undefined): string {
  return v === undefined ? 'IP' : `IPv${v}`;
}

/** An IP address; returns its canonical text. */
export function checkIP(ctx: Ctx, v: string, p: string, version?: IPVersion): string | undefined {
  const ip = parseIP(v);
  if (!ip) {
    ctx.invalid(p, v, `is not a valid ${versionWord(version)} address`);
    return undefined;
  }
  if (version !== undefined && ip.version !== version) {
    ctx.invalid(p, v, `is not an IPv${version} address`);
    return undefined;
  }
  return formatIP(ip);
}

export interface CIDROpts {
  version?: IPVersion;
  /** Refuse host bits (Calico's `net` validator); otherwise they are cleared. */
  strict?: boolean;
  /** Accept a bare address as a full-length prefix (/32 or /128). */
  allowBareIP?: boolean;
}

/** Parses a CIDR per opts; returns the parsed network, or undefined after recording an issue. */
export function parseCIDRField(ctx: Ctx, v: string, p: string, opts: CIDROpts = {}): CIDR | undefined {
  let text = v;
  if (!v.includes('/')) {
    const ip = parseIP(v);
    if (ip && opts.allowBareIP) text = `${v}/${bitsOf(ip.version)}`;
    else {
      ctx.invalid(p, v, ip ? 'is not a CIDR (missing "/<prefix length>")' : `is not a valid ${versionWord(opts.version)} CIDR`);
      return undefined;
    }
  }
  const c = parseCIDR(text);
  if (!c) {
    ctx.invalid(p, v, `is not a valid ${versionWord(opts.version)} CIDR`);
    return undefined;
  }
  if (opts.version !== undefined && c.version !== opts.version) {
    ctx.invalid(p, v, `is not an IPv${opts.version} CIDR`);
    return undefined;
  }
  if (opts.strict) {
    const addr = parseIP(text.slice(0, text.indexOf('/')));
    if (addr && addr.value !== c.network) {
      ctx.invalid(p, v, `is not strictly masked: host bits are set (the network is ${formatCIDR(c)})`);
      return undefined;
    }
  }
  return c;
}

/** As parseCIDRField, returning the canonical text (network address / prefix). */
export function checkCIDR(ctx: Ctx, v: string, p: string, opts: CIDROpts = {}): string | undefined {
  const c = parseCIDRField(ctx, v, p, opts);
  return c ? formatCIDR(c) : undefined;
}

/**
 * An interface address with optional prefix, e.g. Node `spec.bgp.ipv4Address` (`10.0.0.11/24`):
 * host bits are the point, so they are kept. Returns `ip[/prefix]` in canonical text.
 */
export function checkAddressWithPrefix(ctx: Ctx, v: string, p: string, version?: IPVersion): string | undefined {
  const slash = v.indexOf('/');
  const addrText = slash < 0 ? v : v.slice(0, slash);
  const ip = parseIP(addrText);
  if (!ip || (slash >= 0 && !parseCIDR(v))) {
    ctx.invalid(p, v, `is not a valid ${versionWord(version)} address or CIDR`);
    return undefined;
  }
  if (version !== undefined && ip.version !== version) {
    ctx.invalid(p, v, `is not an IPv${version} address`);
    return undefined;
  }
  return slash < 0 ? formatIP(ip) : `${formatIP(ip)}/${Number(v.slice(slash + 1))}`;
}

/** `ip`, `ipv4:port` or `[ipv6]:port` (BGPPeer peerIP). Returns canonical text. */
export function checkIPPort(ctx: Ctx, v: string, p: string): string | undefined {
  let host = v;
  let port: string | undefined;
  const v6 = /^\[([^\]]+)\]:(\d+)$/.exec(v);
  const v4 = /^(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(v);
  if (v6) [host, port] = [v6[1]!, v6[2]!];
  else if (v4) [host, port] = [v4[1]!, v4[2]!];
  const ip = parseIP(host);
  if (!ip || (v6 && ip.version !== 6)) {
    ctx.invalid(p, v, 'is not a valid peer address (expected <IP>, <IPv4>:<port> or [<IPv6>]:<port>)');
    return undefined;
  }
  if (port === undefined) return formatIP(ip);
  const n = Number(port);
  if (n < 1 || n > 65535) {
    ctx.invalid(p, v, `has port ${port} out of range (must be 1–65535)`);
    return undefined;
  }
  return ip.version === 6 ? `[${formatIP(ip)}]:${n}` : `${formatIP(ip)}:${n}`;
}

/** MAC address (6 or 8 bytes, ":" or "-" separated, or Cisco dotted); canonical lower-case with ":". */
export function checkMAC(ctx: Ctx, v: string, p: string): string | undefined {
  let bytes: string[] | undefined;
  if (/^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}((\1[0-9a-fA-F]{2}){2})?$/.test(v)) {
    bytes = v.split(/[:-]/);
  } else if (/^[0-9a-fA-F]{4}(\.[0-9a-fA-F]{4}){2,3}$/.test(v)) {
    bytes = v.split('.').flatMap((g) => [g.slice(0, 2), g.slice(2)]);
  }
  if (!bytes) {
    ctx.invalid(p, v, 'is not a valid MAC address');
    return undefined;
  }
  return bytes.map((b) => b.toLowerCase()).join(':');
}

// ---------------------------------------------------------------------------------------------
// Numbers and strings with structure

export const MAX_AS_NUMBER = 4294967295;

/** AS number: integer 1–4294967295, or a string of digits, or the dotted `a.b` form (16 bits each). */
export function checkASNumber(ctx: Ctx, v: unknown, p: string): number | undefined {
  if (typeof v === 'string') {
    if (/^\d+$/.test(v)) return checkInt(ctx, Number(v), p, { min: 1, max: MAX_AS_NUMBER, rangeHint: 'AS numbers are 1–4294967295' });
    const m = /^(\d+)\.(\d+)$/.exec(v);
    if (m && Number(m[1]) <= 65535 && Number(m[2]) <= 65535) {
      const n = Number(m[1]) * 65536 + Number(m[2]);
      if (n === 0) {
        ctx.invalid(p, v, 'is out of range (AS numbers are 1–4294967295)');
        return undefined;
      }
      return n;
    }
    ctx.invalid(p, v, 'is not a valid AS number (an integer 1–4294967295, or dotted "<0–65535>.<0–65535>")');
    return undefined;
  }
  return checkInt(ctx, v, p, { min: 1, max: MAX_AS_NUMBER, rangeHint: 'AS numbers are 1–4294967295' });
}

export const PROTOCOL_NAMES = ['TCP', 'UDP', 'ICMP', 'ICMPv6', 'SCTP', 'UDPLite'] as const;
const protocolNumbers: Record<string, number> = { TCP: 6, UDP: 17, ICMP: 1, ICMPv6: 58, SCTP: 132, UDPLite: 136 };

/** Protocol: one of PROTOCOL_NAMES (exact spelling) or a number 1–255 (a string of digits counts). */
export function checkProtocol(ctx: Ctx, v: unknown, p: string): string | number | undefined {
  if (typeof v === 'string' && /^\d+$/.test(v)) v = Number(v);
  if (typeof v === 'number') return checkInt(ctx, v, p, { min: 1, max: 255, rangeHint: 'protocol numbers are 1–255' });
  if (typeof v !== 'string') {
    ctx.invalid(p, v, 'must be a protocol name or number');
    return undefined;
  }
  if ((PROTOCOL_NAMES as readonly string[]).includes(v)) return v;
  const near = PROTOCOL_NAMES.find((n) => n.toLowerCase() === v.toLowerCase());
  ctx.invalid(
    p,
    v,
    `is not a valid protocol (one of ${PROTOCOL_NAMES.join(', ')} or a number 1–255)${near ? `; did you mean ${JSON.stringify(near)}?` : ''}`,
  );
  return undefined;
}

/** IP protocol number of a canonical protocol value (undefined for a name that is not one). */
export function protocolNumber(p: string | number): number | undefined {
  return typeof p === 'number' ? p : protocolNumbers[p];
}

/** True for TCP, UDP and SCTP (by name or number): the protocols that have ports. */
export function protocolHasPorts(p: string | number): boolean {
  const n = protocolNumber(p);
  return n === 6 || n === 17 || n === 132;
}

export interface PortValue {
  /** Canonical JSON form: number for one port, "a:b" for a range, the name for a named port. */
  value: number | string;
  named: boolean;
}

const namedPortRe = /^[a-zA-Z0-9_.-]{1,128}$/;

/** A rule port: 1–65535, "a:b" range, or a named port. */
export function checkPort(ctx: Ctx, v: unknown, p: string): PortValue | undefined {
  if (typeof v === 'number') {
    const n = checkInt(ctx, v, p, { min: 1, max: 65535, rangeHint: 'port numbers are 1–65535' });
    return n === undefined ? undefined : { value: n, named: false };
  }
  if (typeof v !== 'string') {
    ctx.invalid(p, v, 'must be a port number, a range "<min>:<max>" or a port name');
    return undefined;
  }
  if (/^\d+$/.test(v)) {
    const n = checkInt(ctx, Number(v), p, { min: 1, max: 65535, rangeHint: 'port numbers are 1–65535' });
    return n === undefined ? undefined : { value: n, named: false };
  }
  const m = /^(\d+):(\d+)$/.exec(v);
  if (m) {
    const lo = Number(m[1]);
    const hi = Number(m[2]);
    if (lo < 1 || hi > 65535 || lo > 65535) {
      ctx.invalid(p, v, 'is out of range (port numbers are 1–65535)');
      return undefined;
    }
    if (lo > hi) {
      ctx.invalid(p, v, `is not a valid port range (minimum ${lo} is greater than maximum ${hi})`);
      return undefined;
    }
    return { value: lo === hi ? lo : `${lo}:${hi}`, named: false };
  }
  if (!namedPortRe.test(v)) {
    ctx.invalid(p, v, 'is not a valid port (a number 1–65535, a range "<min>:<max>", or a name of [a-zA-Z0-9_.-])');
    return undefined;
  }
  return { value: v, named: true };
}

const durationRe = /^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$/;

/** A Go duration string ("90s", "1m30s", "1.5h", "0"). Kept as written. */
export function checkDuration(ctx: Ctx, v: unknown, p: string): string | undefined {
  if (typeof v !== 'string') {
    ctx.invalid(p, v, 'must be a duration string such as "90s" or "1m30s"');
    return undefined;
  }
  if (v === '0' || durationRe.test(v)) return v;
  ctx.invalid(p, v, 'is not a valid duration (e.g. "300ms", "90s", "1m30s", "2h")');
  return undefined;
}

export interface SelectorOpts {
  /** Allow `global()` (only an EntityRule namespaceSelector may use it, and alone). */
  allowGlobal?: boolean;
  /** What the selector selects, for the global() message. */
  what?: string;
}

/** Parses a selector field; returns the text as given (Calico stores it unchanged). */
export function checkSelector(ctx: Ctx, v: string, p: string, opts: SelectorOpts = {}): Selector | undefined {
  let sel: Selector;
  try {
    sel = parseSelector(v);
  } catch (e) {
    if (!(e instanceof SelectorError)) throw e;
    ctx.invalid(p, v, `is not a valid selector: ${e.detail} at position ${e.position}`);
    return undefined;
  }
  if (sel.usesGlobal()) {
    if (!opts.allowGlobal) {
      ctx.invalid(p, v, `may not use global()${opts.what ? ` in ${opts.what}` : ''} (global() is only valid alone in a rule's namespaceSelector)`);
      return undefined;
    }
    if (sel.root.type !== 'global') {
      ctx.invalid(p, v, 'combines global() with other expressions (global() cannot be combined with other selectors)');
      return undefined;
    }
  }
  return sel;
}

/** Reads an optional selector string field; returns the text when valid ("" counts as unset). */
export function readSelector(ctx: Ctx, o: Obj, key: string, path: string, opts: SelectorOpts = {}): string | undefined {
  const v = readString(ctx, o, key, path);
  if (v === undefined || v === '') return undefined;
  return checkSelector(ctx, v, join(path, key), opts) ? v : undefined;
}

/** `{secretKeyRef: {name, key, optional}}` (a BGP password). */
export function checkSecretRef(ctx: Ctx, o: Obj, key: string, path: string): Obj | undefined {
  const pw = readObj(ctx, o, key, path);
  if (!pw) return undefined;
  const p = join(path, key);
  checkKnown(ctx, pw, p, ['secretKeyRef'], 'a password');
  const ref = readObj(ctx, pw, 'secretKeyRef', p);
  if (!ref) return {};
  const rp = join(p, 'secretKeyRef');
  checkKnown(ctx, ref, rp, ['name', 'key', 'optional'], 'a secretKeyRef');
  const out: Obj = {};
  put(out, 'name', readString(ctx, ref, 'name', rp));
  put(out, 'key', readString(ctx, ref, 'key', rp, { required: true }));
  put(out, 'optional', readBool(ctx, ref, 'optional', rp));
  return { secretKeyRef: out };
}
