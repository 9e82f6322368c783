// IPv4/IPv6 addresses and CIDRs as bigints: exact arithmetic for both families with one code path.

export type IPVersion = 4 | 6;

export interface IP {
  version: IPVersion;
  value: bigint;
}

export interface CIDR {
  version: IPVersion;
  /** Network address (host bits cleared). */
  network: bigint;
  prefix: number;
}

export function bitsOf(version: IPVersion): number {
  return version === 4 ? 32 : 128;
}

function parseV4(s: string): bigint | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || (p.length > 1 && p[0] === '0')) return null;
    const n = Number(p);
    if (n > 255) return null;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseV6(s: string): bigint | null {
  if (s.includes('%')) return null;
  let head = s;
  let tailV4: bigint | null = null;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tailV4 = parseV4(s.slice(lastColon + 1));
    if (tailV4 === null) return null;
    head = s.slice(0, lastColon + 1) + '0:0';
  }
  const dbl = head.split('::');
  if (dbl.length > 2) return null;
  const group = (x: string) => (x === '' ? [] : x.split(':'));
  const left = group(dbl[0]!);
  const right = dbl.length === 2 ? group(dbl[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (dbl.length === 2 ? missing < 1 : missing !== 0) return null;
  const groups = [...left, ...Array(dbl.length === 2 ? missing : 0).fill('0'), ...right];
  let v = 0n;
  for (const g of groups) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    v = (v << 16n) | BigInt(parseInt(g, 16));
  }
  if (tailV4 !== null) v = (v & ~0xffffffffn) | tailV4;
  return v;
}

/** Parses an address; returns null when it is not a valid IPv4 or IPv6 address. */
export function parseIP(s: string): IP | null {
  if (typeof s !== 'string') return null;
  if (s.includes(':')) {
    const v = parseV6(s);
    return v === null ? null : { version: 6, value: v };
  }
  const v = parseV4(s);
  return v === null ? null : { version: 4, value: v };
}

export function formatIP(ip: IP): string {
  if (ip.version === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (length ≥ 2) of zero groups, the first one on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return hex.slice(0, bestStart).join(':') + '::' + hex.slice(bestStart + bestLen).join(':');
}

export function mask(version: IPVersion, prefix: number): bigint {
  const bits = BigInt(bitsOf(version));
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/**
 * Parses `addr/prefix`. Host bits set are accepted and cleared (as Go's net.ParseCIDR does);
 * callers that must reject them compare with `hasHostBits`.
 */
export function parseCIDR(s: string): CIDR | null {
  if (typeof s !== 'string') return null;
  const slash = s.indexOf('/');
  if (slash < 0) return null;
  const ip = parseIP(s.slice(0, slash));
  const p = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(p)) return null;
  const prefix = Number(p);
  if (prefix > bitsOf(ip.version)) return null;
  return { version: ip.version, network: ip.value & mask(ip.version, prefix), prefix };
}

export function hasHostBits(s: string): boolean {
  const c = parseCIDR(s);
  const ip = parseIP(s.slice(0, s.indexOf('/')));
  return !!c && !!ip && c.network !== ip.value;
}

export function formatCIDR(c: CIDR): string {
  return `${formatIP({ version: c.version, value: c.network })}/${c.prefix}`;
}

export function cidrSize(c: CIDR): bigint {
  return 1n << BigInt(bitsOf(c.version) - c.prefix);
}

export function cidrContainsIP(c: CIDR, ip: IP): boolean {
  return c.version === ip.version && (ip.value & mask(c.version, c.prefix)) === c.network;
}

export function cidrOverlaps(a: CIDR, b: CIDR): boolean {
  if (a.version !== b.version) return false;
  const p = Math.min(a.prefix, b.prefix);
  const m = mask(a.version, p);
  return (a.network & m) === (b.network & m);
}

/** The CIDR of prefix `prefix` that contains `ip`. */
export function cidrOf(ip: IP, prefix: number): CIDR {
  return { version: ip.version, network: ip.value & mask(ip.version, prefix), prefix };
}

/** Orders CIDRs: IPv4 before IPv6, then by network address, then by prefix. */
export function compareCIDR(a: CIDR, b: CIDR): number {
  if (a.version !== b.version) return a.version - b.version;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.prefix - b.prefix;
}
