// Which pools a request may use, and the order in which a host probes a pool's blocks.
import { IPAMError } from './errors.js';
import type { Resource } from '../apis/v3/resource.js';
import { type CIDR, type IPVersion, bitsOf, formatCIDR, mask, parseCIDR } from '../net/ip.js';

export interface Pool {
  name: string;
  cidr: CIDR;
  blockSize: number;
  disabled: boolean;
  nodeSelector: string;
  assignmentMode: 'Automatic' | 'Manual';
  allowedUses: string[];
}

export function poolFromResource(r: Resource): Pool | null {
  const s = (r.spec ?? {}) as Record<string, unknown>;
  const cidr = parseCIDR(String(s.cidr ?? ''));
  if (!cidr) return null;
  return {
    name: r.metadata.name,
    cidr,
    blockSize: typeof s.blockSize === 'number' ? s.blockSize : cidr.version === 4 ? 26 : 122,
    disabled: s.disabled === true,
    nodeSelector: typeof s.nodeSelector === 'string' && s.nodeSelector !== '' ? s.nodeSelector : 'all()',
    assignmentMode: s.assignmentMode === 'Manual' ? 'Manual' : 'Automatic',
    allowedUses: Array.isArray(s.allowedUses) && s.allowedUses.length > 0 ? (s.allowedUses as string[]) : ['Workload', 'Tunnel'],
  };
}

/** FNV-1a 32-bit: a stable per-host starting point, so each host probes blocks in its own order. */
export function fnv32a(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(s, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export function numBlocks(pool: Pool): bigint {
  return 1n << BigInt(pool.blockSize - pool.cidr.prefix);
}

/** Every block CIDR of the pool, starting at a host-specific index and wrapping around once. */
export function* candidateBlocks(pool: Pool, host: string): Generator<CIDR> {
  const n = numBlocks(pool);
  const start = BigInt(fnv32a(host)) % n;
  const step = 1n << BigInt(bitsOf(pool.cidr.version) - pool.blockSize);
  for (let i = 0n; i < n; i++) {
    const idx = (start + i) % n;
    yield { version: pool.cidr.version, network: pool.cidr.network + idx * step, prefix: pool.blockSize };
  }
}

/** The block CIDR that holds `ip` in `pool`. */
export function blockFor(pool: Pool, ipValue: bigint): CIDR {
  return { version: pool.cidr.version, network: ipValue & mask(pool.cidr.version, pool.blockSize), prefix: pool.blockSize };
}

/**
 * Resolves requested pools given by name or CIDR. Unknown or disabled pools are an error that
 * names them; an empty request means every pool of the family.
 */
export function resolveRequestedPools(all: Pool[], requested: string[] | undefined, version: IPVersion): Pool[] {
  if (!requested || requested.length === 0) return all.filter((p) => p.cidr.version === version);
  return requested.map((want) => {
    const c = parseCIDR(want);
    const p = all.find((x) => x.name === want || (c !== null && formatCIDR(x.cidr) === formatCIDR(c)));
    if (!p) throw new IPAMError(`IP pool ${JSON.stringify(want)} does not exist`);
    if (p.disabled) throw new IPAMError(`IP pool ${JSON.stringify(want)} is disabled`);
    if (p.cidr.version !== version) throw new IPAMError(`IP pool ${JSON.stringify(want)} is not an IPv${version} pool`);
    return p;
  });
}
