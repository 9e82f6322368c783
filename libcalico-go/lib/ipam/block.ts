// One IPAM block as Calico stores it (model.AllocationBlock JSON) and the pure operations on it.
// Allocation pops ordinals from the head of `unallocated`; release appends to the tail, so the
// address that has been free longest is reused first (FIFO).
import { type CIDR, type IP, cidrSize, formatCIDR, formatIP, parseCIDR } from '../net/ip.js';

export interface AllocationAttribute {
  handle_id?: string;
  secondary?: Record<string, string>;
}

export interface BlockData {
  cidr: string;
  /** `host:<node>` when affine to a node, null when not. */
  affinity: string | null;
  affinityClaimTime?: string;
  /** One entry per ordinal: null = free, else an index into `attributes`. */
  allocations: (number | null)[];
  unallocated: number[];
  attributes: AllocationAttribute[];
  deleted: boolean;
  sequenceNumber: number;
  sequenceNumberForAllocation: Record<string, number>;
}

export function blockCIDR(b: BlockData): CIDR {
  const c = parseCIDR(b.cidr);
  if (!c) throw new Error(`block has invalid cidr ${JSON.stringify(b.cidr)}`);
  return c;
}

/**
 * A new, empty block. The sequence number starts at the claim time in microseconds: unique per
 * claim (so a stale release guarded by sequence number cannot hit a re-created block) and exact
 * in a JavaScript number, unlike Go's nanoseconds.
 */
export function newBlock(cidr: CIDR, affinity: string | null, now: Date): BlockData {
  const size = Number(cidrSize(cidr));
  return {
    cidr: formatCIDR(cidr),
    affinity,
    affinityClaimTime: now.toISOString(),
    allocations: new Array<number | null>(size).fill(null),
    unallocated: Array.from({ length: size }, (_, i) => i),
    attributes: [],
    deleted: false,
    sequenceNumber: now.getTime() * 1000,
    sequenceNumberForAllocation: {},
  };
}

export function hostOf(b: BlockData): string | null {
  return b.affinity?.startsWith('host:') ? b.affinity.slice(5) : null;
}

export function ordinalIP(b: BlockData, ordinal: number): IP {
  const c = blockCIDR(b);
  return { version: c.version, value: c.network + BigInt(ordinal) };
}

export function ipOrdinal(b: BlockData, ip: IP): number | null {
  const c = blockCIDR(b);
  if (ip.version !== c.version) return null;
  const off = ip.value - c.network;
  return off >= 0n && off < cidrSize(c) ? Number(off) : null;
}

export function inUseCount(b: BlockData): number {
  let n = 0;
  for (const a of b.allocations) if (a !== null) n++;
  return n;
}

export function isEmpty(b: BlockData): boolean {
  return b.allocations.every((a) => a === null);
}

/** Free ordinals that are not reserved, in FIFO order. */
export function freeOrdinals(b: BlockData, reserved: (ip: IP) => boolean): number[] {
  return b.unallocated.filter((o) => !reserved(ordinalIP(b, o)));
}

function sameAttr(a: AllocationAttribute, b: AllocationAttribute): boolean {
  if (a.handle_id !== b.handle_id) return false;
  const ka = Object.keys(a.secondary ?? {}).sort();
  const kb = Object.keys(b.secondary ?? {}).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a.secondary![k] === b.secondary![k]);
}

function attrIndex(b: BlockData, attr: AllocationAttribute): number {
  const i = b.attributes.findIndex((x) => sameAttr(x, attr));
  if (i >= 0) return i;
  b.attributes.push(attr);
  return b.attributes.length - 1;
}

/**
 * Takes up to `num` free, unreserved ordinals from the head of the queue (mutates `b`).
 * Returns the assigned addresses. Reserved ordinals stay in the queue untouched.
 */
export function assignFromBlock(
  b: BlockData,
  num: number,
  handleId: string,
  attrs: Record<string, string>,
  reserved: (ip: IP) => boolean,
): IP[] {
  const chosen: number[] = [];
  for (const o of b.unallocated) {
    if (chosen.length >= num) break;
    if (!reserved(ordinalIP(b, o))) chosen.push(o);
  }
  if (chosen.length === 0) return [];
  const taken = new Set(chosen);
  b.unallocated = b.unallocated.filter((o) => !taken.has(o));
  const idx = attrIndex(b, { handle_id: handleId, secondary: attrs });
  b.sequenceNumber += 1;
  for (const o of chosen) {
    b.allocations[o] = idx;
    b.sequenceNumberForAllocation[String(o)] = b.sequenceNumber;
  }
  return chosen.map((o) => ordinalIP(b, o));
}

/** Assigns one specific ordinal; false when it is already in use. */
export function assignOrdinal(
  b: BlockData,
  ordinal: number,
  handleId: string,
  attrs: Record<string, string>,
): boolean {
  if (b.allocations[ordinal] !== null) return false;
  b.unallocated = b.unallocated.filter((o) => o !== ordinal);
  b.allocations[ordinal] = attrIndex(b, { handle_id: handleId, secondary: attrs });
  b.sequenceNumber += 1;
  b.sequenceNumberForAllocation[String(ordinal)] = b.sequenceNumber;
  return true;
}

function dropOrphanAttributes(b: BlockData): void {
  const used = new Set(b.allocations.filter((a): a is number => a !== null));
  const remap = new Map<number, number>();
  const kept: AllocationAttribute[] = [];
  b.attributes.forEach((a, i) => {
    if (used.has(i)) {
      remap.set(i, kept.length);
      kept.push(a);
    }
  });
  b.attributes = kept;
  b.allocations = b.allocations.map((a) => (a === null ? null : remap.get(a)!));
}

/** Frees the given ordinals (mutates `b`); returns the handle IDs they held, one per ordinal freed. */
export function releaseOrdinals(b: BlockData, ordinals: number[]): string[] {
  const handles: string[] = [];
  for (const o of ordinals) {
    const a = b.allocations[o];
    if (a === null || a === undefined) continue;
    handles.push(b.attributes[a]?.handle_id ?? '');
    b.allocations[o] = null;
    b.unallocated.push(o);
    delete b.sequenceNumberForAllocation[String(o)];
  }
  if (handles.length > 0) {
    b.sequenceNumber += 1;
    dropOrphanAttributes(b);
  }
  return handles;
}

/** Ordinals held by a handle. */
export function ordinalsOfHandle(b: BlockData, handleId: string): number[] {
  const out: number[] = [];
  b.allocations.forEach((a, o) => {
    if (a !== null && b.attributes[a]?.handle_id === handleId) out.push(o);
  });
  return out;
}

export function attributeOf(b: BlockData, ordinal: number): AllocationAttribute | null {
  const a = b.allocations[ordinal];
  return a === null || a === undefined ? null : (b.attributes[a] ?? null);
}

/** Each allocated address with its attribute, for checks and reports. */
export function allocationsOf(b: BlockData): { ip: string; ordinal: number; attr: AllocationAttribute; seq?: number }[] {
  const out: { ip: string; ordinal: number; attr: AllocationAttribute; seq?: number }[] = [];
  b.allocations.forEach((a, o) => {
    if (a === null) return;
    out.push({
      ip: formatIP(ordinalIP(b, o)),
      ordinal: o,
      attr: b.attributes[a] ?? {},
      seq: b.sequenceNumberForAllocation[String(o)],
    });
  });
  return out;
}
