// IPPool `natOutgoing` (Felix's NAT outgoing) with nftables, in ONE table the agent owns:
// `table ip tortie-nat`. Nothing else in the ruleset is read or written.
//
// * Sets (type ipv4_addr, flags interval), named after Felix's ipsets:
//     `masq-ipam-pools` = IPv4 pools with natOutgoing; `all-ipam-pools` = all IPv4 pools.
//   Disabled pools stay in both sets: a disabled pool only stops new allocations, its existing pods
//   keep their addresses and their NAT (Felix keys the sets on the pool's masquerade flag alone).
// * Chain `postrouting` (type nat hook postrouting priority srcnat), one rule:
//     ip saddr @masq-ipam-pools ip daddr != @all-ipam-pools masquerade fully-random
//   i.e. traffic from a natOutgoing pool to anything outside all pools leaves with the address of
//   the interface it leaves by; traffic to other pools (pods on other nodes, tunnel addresses) is not
//   touched.
// * The table always exists while the agent runs (empty sets when no pool has natOutgoing), so the
//   state is level-triggered: a table deleted or edited by hand is put back by the next pass.
// * Written through nft-table.ts: one atomic `nft -f -` transaction, only when the pools changed or
//   the table is missing or was edited.
//
// Programs run by absolute path with argument arrays (never a shell), environment LC_ALL=C only.

import { compareCIDR, formatCIDR, parseCIDR, type CIDR } from '../../../libcalico-go/lib/net/ip.js';
import type { Exec } from './iproute.js';
import { OwnedNftTable } from './nft-table.js';

export { NFT_BIN } from './nft-table.js';
export const NAT_TABLE_FAMILY = 'ip';
export const NAT_TABLE = 'tortie-nat';
export const MASQ_SET = 'masq-ipam-pools';
export const ALL_POOLS_SET = 'all-ipam-pools';
export const NAT_CHAIN = 'postrouting';

const TABLE_REF = [NAT_TABLE_FAMILY, NAT_TABLE] as const;

export interface NatPool {
  cidr: string;
  natOutgoing: boolean;
  disabled: boolean;
}

export interface NatSets {
  /** Sorted, normalised IPv4 CIDRs with natOutgoing (nested ones folded into the larger). */
  masq: string[];
  /** All IPv4 pool CIDRs, likewise. */
  all: string[];
  /** Pool CIDRs left out: IPv6 or unparsable. */
  ignored: string[];
}

/** Keeps only the outermost of nested CIDRs (pools may not overlap, but an interval set refuses overlaps). */
function outermost(cs: CIDR[]): CIDR[] {
  const sorted = [...cs].sort(compareCIDR);
  const out: CIDR[] = [];
  for (const c of sorted) {
    const last = out[out.length - 1];
    // Sorted by network then prefix: a CIDR inside `last` starts within it.
    if (last && c.prefix >= last.prefix) {
      const size = 1n << BigInt(32 - last.prefix);
      if (c.network >= last.network && c.network < last.network + size) continue;
    }
    out.push(c);
  }
  return out;
}

/** The two sets' contents for these pools (IPv4 only). Pure. */
export function natSets(pools: readonly NatPool[]): NatSets {
  const all: CIDR[] = [];
  const masq: CIDR[] = [];
  const ignored: string[] = [];
  for (const p of pools) {
    const c = parseCIDR(String(p.cidr));
    if (c?.version !== 4) {
      ignored.push(String(p.cidr));
      continue;
    }
    all.push(c);
    if (p.natOutgoing === true) masq.push(c);
  }
  return { masq: outermost(masq).map(formatCIDR), all: outermost(all).map(formatCIDR), ignored };
}

function renderSet(name: string, elements: readonly string[]): string[] {
  return [
    `\tset ${name} {`,
    '\t\ttype ipv4_addr',
    '\t\tflags interval',
    ...(elements.length > 0 ? [`\t\telements = { ${elements.join(', ')} }`] : []),
    '\t}',
  ];
}

/** The `nft -f` script that (re)creates the agent's NAT table for these pools. Pure. */
export function renderNatTable(pools: readonly NatPool[]): string {
  const s = natSets(pools);
  const t = TABLE_REF.join(' ');
  return [
    `table ${t} {}`,
    `delete table ${t}`,
    `table ${t} {`,
    ...renderSet(MASQ_SET, s.masq),
    ...renderSet(ALL_POOLS_SET, s.all),
    `\tchain ${NAT_CHAIN} {`,
    '\t\ttype nat hook postrouting priority srcnat; policy accept;',
    `\t\tip saddr @${MASQ_SET} ip daddr != @${ALL_POOLS_SET} masquerade fully-random`,
    '\t}',
    '}',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------------
// I/O

export interface NatOptions {
  /** The process runner; default spawnExec(). */
  exec?: Exec;
  /** The nft binary; default /usr/sbin/nft. */
  nft?: string;
}

/** What the kernel holds in the agent's table (from `nft -j list table ip tortie-nat`). */
export interface NatTableState {
  /** Set elements as CIDRs (`a.b.c.d/32` for single addresses, `a-b` for ranges that are no prefix). */
  masq: string[] | null;
  all: string[] | null;
  /** The postrouting chain's base-chain properties, if it is there. */
  chain: { type: string; hook: string; prio: number; policy: string } | null;
  /** Number of rules in the postrouting chain. */
  rules: number;
  /** The chain holds exactly the masquerade rule (saddr @masq, daddr != @all, masquerade fully-random). */
  masqueradeRule: boolean;
}

export type NatApplyReason = 'unchanged' | 'first write' | 'pools changed' | 'table missing' | 'table changed' | 'forced';

export interface NatApplyResult {
  /** The script was written. */
  changed: boolean;
  reason: NatApplyReason;
  sets: NatSets;
  /** Number of nft processes this call ran. */
  execs: number;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

function elemText(e: unknown): string {
  if (typeof e === 'string') return e.includes('/') ? e : `${e}/32`;
  if (isObj(e)) {
    const p = e.prefix;
    if (isObj(p)) return `${String(p.addr)}/${String(p.len)}`;
    if (Array.isArray(e.range)) return `${String(e.range[0])}-${String(e.range[1])}`;
    if ('elem' in e) return elemText((e.elem as Obj).val);
  }
  return JSON.stringify(e);
}

function isMasqueradeRule(expr: unknown): boolean {
  if (!Array.isArray(expr) || expr.length !== 3) return false;
  const [a, b, c] = expr as unknown[];
  const match = (m: unknown, op: string, field: string, set: string) => {
    if (!isObj(m) || !isObj(m.match)) return false;
    const x = m.match;
    const left = isObj(x.left) && isObj(x.left.payload) ? x.left.payload : null;
    return x.op === op && !!left && left.protocol === 'ip' && left.field === field && x.right === `@${set}`;
  };
  const masq = isObj(c) && isObj(c.masquerade) ? c.masquerade : null;
  const flags = masq ? masq.flags : undefined;
  const fully = flags === 'fully-random' || (Array.isArray(flags) && flags.includes('fully-random'));
  return match(a, '==', 'saddr', MASQ_SET) && match(b, '!=', 'daddr', ALL_POOLS_SET) && fully;
}

/** Parses `nft -j list table` output into a NatTableState. */
export function parseNatTableJson(text: string): NatTableState {
  const doc = JSON.parse(text) as { nftables?: unknown[] };
  const st: NatTableState = { masq: null, all: null, chain: null, rules: 0, masqueradeRule: false };
  const ruleExprs: unknown[] = [];
  for (const item of doc.nftables ?? []) {
    if (!isObj(item)) continue;
    if (isObj(item.set) && item.set.table === NAT_TABLE) {
      const elems = Array.isArray(item.set.elem) ? item.set.elem.map(elemText) : [];
      if (item.set.name === MASQ_SET) st.masq = elems;
      if (item.set.name === ALL_POOLS_SET) st.all = elems;
    } else if (isObj(item.chain) && item.chain.table === NAT_TABLE && item.chain.name === NAT_CHAIN) {
      const c = item.chain;
      if (typeof c.hook === 'string') st.chain = { type: String(c.type), hook: c.hook, prio: Number(c.prio), policy: String(c.policy) };
    } else if (isObj(item.rule) && item.rule.table === NAT_TABLE && item.rule.chain === NAT_CHAIN) {
      ruleExprs.push(item.rule.expr);
    }
  }
  st.rules = ruleExprs.length;
  st.masqueradeRule = ruleExprs.length === 1 && isMasqueradeRule(ruleExprs[0]);
  return st;
}

/** Writes and checks the agent's NAT table (see nft-table.ts for when it writes). */
export class NatTable {
  private readonly table: OwnedNftTable;

  constructor(opts: NatOptions = {}) {
    this.table = new OwnedNftTable(TABLE_REF, opts);
  }

  /**
   * Makes the table match these pools (IPv4 pools only count). Writes only when the pools changed
   * since the last write, or the table is missing or differs from what was written (or `force`).
   */
  apply(pools: readonly NatPool[], opts: { force?: boolean } = {}): Promise<NatApplyResult> {
    return this.table.serial(async () => {
      const sets = natSets(pools);
      const { changed, reason, execs } = await this.table.write(renderNatTable(pools), opts.force === true, 'pools changed');
      return { changed, reason, sets, execs };
    });
  }

  /** The table as the kernel has it, or null when it is missing. */
  read(): Promise<NatTableState | null> {
    return this.table.serial(async () => {
      const json = await this.table.list(true);
      return json === null ? null : parseNatTableJson(json);
    });
  }

  /** Deletes the table (only it); returns whether it was there. */
  remove(): Promise<boolean> {
    return this.table.serial(() => this.table.remove());
  }

  /** Forgets what was written: the next apply writes. */
  reset(): void {
    this.table.reset();
  }
}
