// `calicoctl ipam show` and its variants (--show-blocks, --show-borrowed, --show-configuration,
// --ip), as printed by calicoctl ≤ v3.32 (tablewriter v0.0.5 tables).

import { versionAtLeast } from './compat.js';
import { formatGoF, formatGoG } from './go-format.js';
import { renderBoxTable } from './tablewriter.js';

// ---- ipam show / --show-blocks ---------------------------------------------------------------

export interface IpamBlockUsage {
  cidr: string;
  /** Addresses in the block (2^(bits - prefix)). */
  capacity: number;
  /** Addresses allocated (capacity - available). */
  inUse: number;
}

export interface IpamPoolUsage {
  cidr: string;
  /** Defaults to 2^(bits - prefix) of `cidr`, as calicoctl computes it. */
  capacity?: number;
  /** Defaults to the sum of the blocks' inUse, as calicoctl computes it. */
  inUse?: number;
  blocks: readonly IpamBlockUsage[];
  /**
   * The pseudo-pool calicoctl groups blocks under when they belong to no pool: its own row is
   * not printed (its blocks still are with --show-blocks). A pool whose CIDR has prefix length 0
   * is treated the same way, as calicoctl does.
   */
  orphan?: boolean;
}

function prefixInfo(cidr: string): { bits: number; ones: number } | null {
  const slash = cidr.lastIndexOf('/');
  if (slash < 0) return null;
  const ones = Number(cidr.slice(slash + 1));
  if (!Number.isInteger(ones)) return null;
  return { bits: cidr.includes(':') ? 128 : 32, ones };
}

/** `%.5g` of a count, as the IPS TOTAL column prints it (1048576 → `1.0486e+06`). */
export function formatCount(n: number): string {
  return formatGoG(n, 5);
}

/** `%.5g (%.f%%)`: a count with its share of `capacity`, rounded half to even. */
export function formatShare(n: number, capacity: number): string {
  return `${formatGoG(n, 5)} (${formatGoF((100 * n) / capacity, 0)}%)`;
}

function usageRow(kind: string, cidr: string, inUse: number, capacity: number): string[] {
  return [kind, cidr, formatCount(capacity), formatShare(inUse, capacity), formatShare(capacity - inUse, capacity)];
}

/** `ipam show` (one `IP Pool` row per pool) or, with showBlocks, also a `Block` row per block. */
export function renderIpamShow(pools: readonly IpamPoolUsage[], opts: { showBlocks?: boolean } = {}): string {
  const rows: string[][] = [];
  for (const pool of pools) {
    const info = prefixInfo(pool.cidr);
    const blockInUse = pool.blocks.reduce((sum, b) => sum + b.inUse, 0);
    const inUse = pool.inUse ?? blockInUse;
    const capacity = pool.capacity ?? (info ? 2 ** (info.bits - info.ones) : 0);
    if (!pool.orphan && !(info && info.ones === 0)) {
      rows.push(usageRow('IP Pool', pool.cidr, inUse, capacity));
    }
    if (opts.showBlocks) {
      for (const b of pool.blocks) rows.push(usageRow('Block', b.cidr, b.inUse, b.capacity));
    }
  }
  return renderBoxTable(['GROUPING', 'CIDR', 'IPS TOTAL', 'IPS IN USE', 'IPS FREE'], rows);
}

// ---- --show-borrowed -------------------------------------------------------------------------

export interface BorrowedIP {
  ip: string;
  borrowingNode: string;
  block: string;
  blockOwner: string;
  /** `pod`, `vmi`, or the allocation's `type` attribute (e.g. `vxlanTunnelAddress`); may be empty. */
  type: string;
  /** `<namespace>/<pod>` or `<namespace>/<vmi>`; empty for other allocations. */
  allocatedTo: string;
}

/**
 * Classifies one allocation the way --show-borrowed does. `affinity` is the block's affinity
 * (`host:<node>`) or null. Returns the row when the allocation's `node` attribute differs from
 * the block owner, `'unclassified'` when it has no `node` attribute, else null.
 */
export function classifyBorrowed(a: {
  ip: string;
  block: string;
  affinity: string | null | undefined;
  attrs: Readonly<Record<string, string>> | undefined;
}): BorrowedIP | 'unclassified' | null {
  let owner = '';
  if (a.affinity !== null && a.affinity !== undefined) {
    const parts = a.affinity.split(':');
    owner = (parts.length === 2 ? parts[1] : parts[0]) ?? '';
  }
  const attrs = a.attrs ?? {};
  if (!Object.hasOwn(attrs, 'node')) return 'unclassified';
  const node = attrs.node;
  if (node === owner) return null;
  const ns = attrs.namespace ?? '';
  let type = '';
  let allocatedTo = '';
  if (Object.hasOwn(attrs, 'vmi')) {
    type = 'vmi';
    allocatedTo = `${ns}/${attrs.vmi}`;
  } else if (Object.hasOwn(attrs, 'pod')) {
    type = 'pod';
    allocatedTo = `${ns}/${attrs.pod}`;
  } else if (Object.hasOwn(attrs, 'type')) {
    type = attrs.type ?? '';
  }
  return { ip: a.ip, borrowingNode: node ?? '', block: a.block, blockOwner: owner, type, allocatedTo };
}

/** `ipam show --show-borrowed`, plus the note about allocations without a node attribute. */
export function renderIpamBorrowed(rows: readonly BorrowedIP[], unclassified = 0): string {
  let out = renderBoxTable(
    ['IP', 'BORROWING-NODE', 'BLOCK', 'BLOCK OWNER', 'TYPE', 'ALLOCATED-TO'],
    rows.map((r) => [r.ip, r.borrowingNode, r.block, r.blockOwner, r.type, r.allocatedTo]),
  );
  if (unclassified !== 0) {
    out +=
      `\nNote: found ${unclassified} IP allocations without an explicit node association. ` +
      'Unable to determine if they are borrowed.\n';
  }
  return out;
}

// ---- --show-configuration --------------------------------------------------------------------

export interface IpamConfigView {
  strictAffinity: boolean;
  autoAllocateBlocks: boolean;
  maxBlocksPerHost: number;
  /**
   * v3.32's fourth field (a Go pointer). Leave undefined for the three-row table of earlier
   * releases; null prints `(*ipam.VMAddressPersistence)(nil)`; a value prints a pointer with
   * `pointerAddress` (Go prints a heap address there, which cannot be reproduced).
   */
  kubeVirtVMAddressPersistence?: string | null;
  pointerAddress?: string;
}

/** `ipam show --show-configuration`: PROPERTY / VALUE rows in IPAMConfig field order, `%#v` values. */
export function renderIpamConfiguration(cfg: IpamConfigView): string {
  const rows: string[][] = [
    ['StrictAffinity', String(cfg.strictAffinity)],
    ['AutoAllocateBlocks', String(cfg.autoAllocateBlocks)],
    ['MaxBlocksPerHost', String(Math.trunc(cfg.maxBlocksPerHost))],
  ];
  if (cfg.kubeVirtVMAddressPersistence !== undefined) {
    const target = cfg.kubeVirtVMAddressPersistence === null ? 'nil' : (cfg.pointerAddress ?? '0xc000010000');
    rows.push(['KubeVirtVMAddressPersistence', `(*ipam.VMAddressPersistence)(${target})`]);
  }
  return renderBoxTable(['PROPERTY', 'VALUE'], rows);
}

// ---- --ip ------------------------------------------------------------------------------------

export interface IpAssignmentView {
  /** null/undefined prints `Handle ID: <none>`. */
  handleId?: string | null;
  activeOwnerAttrs?: Readonly<Record<string, string>>;
  alternateOwnerAttrs?: Readonly<Record<string, string>>;
}

function sortedKeys(m: Readonly<Record<string, string>>): string[] {
  return Object.keys(m).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

function ownerBlock(title: string, attrs: Readonly<Record<string, string>> | undefined): string {
  if (!attrs || Object.keys(attrs).length === 0) return '';
  return `${title}:\n` + sortedKeys(attrs).map((k) => `  ${k}: ${attrs[k]}\n`).join('');
}

/**
 * `ipam show --ip=<ip>`: `<ip> is not assigned` when `assignment` is null, else
 * `IP <ip> is in use` and the handle and owner attributes (v3.32 layout; releases before v3.32
 * printed `Attributes:` / `No attributes defined` instead, selected with calicoVersion).
 */
export function renderIpamShowIP(
  ip: string,
  assignment: IpAssignmentView | null,
  opts: { calicoVersion?: string } = {},
): string {
  if (assignment === null) return `${ip} is not assigned\n`;
  let out = `IP ${ip} is in use\n`;
  if (!versionAtLeast(opts.calicoVersion, 'v3.32.0')) {
    const block = ownerBlock('Attributes', assignment.activeOwnerAttrs);
    return out + (block || 'No attributes defined\n');
  }
  out += assignment.handleId === null || assignment.handleId === undefined
    ? 'Handle ID: <none>\n'
    : `Handle ID: ${assignment.handleId}\n`;
  out += ownerBlock('Active Owner Attributes', assignment.activeOwnerAttrs) || 'No Active Owner attributes defined\n';
  out += ownerBlock('Alternate Owner Attributes', assignment.alternateOwnerAttrs);
  return out;
}
