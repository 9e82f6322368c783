// One nftables table as data (named sets and maps, chains, base chains), its full `nft -f` script,
// and the difference between two of them as one `nft -f` transaction. Pure: no I/O.
//
// The full script deletes and recreates the table (`table T {}` first so that the delete never
// fails), so it is also the repair for any drift. The difference touches only what changed, in an
// order the kernel accepts inside one transaction:
//   1. new chains declared (empty), new sets/maps declared (no elements);
//   2. changed and removed chains flushed (their references to sets and chains go away);
//   3. elements deleted from changed sets/maps (a map element that jumps to a chain is a reference);
//   4. elements added to new and changed sets/maps (new chains exist: step 1);
//   5. rules added to new and changed chains (every set and chain they name exists);
//   6. removed sets/maps deleted (their rules were flushed in 2), then removed chains (the rules and
//      map elements that jumped to them are gone).
// Every rule is written with `comment "t:<id>"`, its id a hash of the chain's name, the previous
// rule's id and the rule's text (Felix's iptables rule hashes): what the kernel holds can be checked
// against a table (felix/dataplane/linux/nft-listing.ts tableDrift) without knowing how nft prints
// a rule, and a rule edited, added, removed or moved by hand is found.
// Set elements are compared as text, so they must be canonical: an interval set's elements are
// disjoint, non-adjacent intervals (see canonicalV4Intervals, canonicalV6Intervals) and no set uses auto-merge; a map's
// elements are `key : verdict` with a unique key.
import { formatIP, parseCIDR } from '../../libcalico-go/lib/net/ip.js';

export interface NftSetSpec {
  /** nft type, e.g. `ipv4_addr`; a map's is `key : value`, e.g. `ifname : verdict` (declared as `map`). */
  type: string;
  /** e.g. ['interval']. */
  flags: readonly string[];
  /** Elements as nft text, sorted, unique; a map's as `key : value`. */
  elements: readonly string[];
  /** For readers of the script (a `#` line; not stored in the kernel). */
  comment: string;
}

export interface NftTableSpec {
  family: string;
  name: string;
  sets: ReadonlyMap<string, NftSetSpec>;
  /** Every chain (base chains too) → its lines in order; lines starting with `#` are comments. */
  chains: ReadonlyMap<string, readonly string[]>;
  /** Base chain name → its declaration, e.g. `type filter hook forward priority filter; policy accept;`. */
  base: ReadonlyMap<string, string>;
}

export type NftObjectKind = 'chain' | 'set' | 'map';
export interface NftObjectRef {
  kind: NftObjectKind;
  name: string;
}

export const isMap = (s: NftSetSpec) => s.type.includes(' : ');
export const setKind = (s: NftSetSpec): NftObjectKind => (isMap(s) ? 'map' : 'set');
const isRule = (l: string) => !l.startsWith('#');
const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A fast 53-bit string hash (cyrb53), base 36. */
function hash53(str: string): string {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < str.length; i++) {
    const ch = str.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36).padStart(11, '0');
}

const idCache = new WeakMap<readonly string[], { chain: string; ids: string[] }>();

/** The ids of a chain's rules (comment lines skipped), in order: each hashes the chain, the previous id and the rule. */
export function ruleIds(chain: string, lines: readonly string[]): string[] {
  const c = idCache.get(lines);
  if (c && c.chain === chain) return c.ids;
  const ids: string[] = [];
  let prev = '';
  for (const l of lines) {
    if (!isRule(l)) continue;
    prev = `t:${hash53(`${chain}\u0000${prev}\u0000${l}`)}`;
    ids.push(prev);
  }
  idCache.set(lines, { chain, ids });
  return ids;
}

/** A chain's lines as written: each rule with its id as comment; comment lines kept when `withComments`. */
export function rulesWithIds(chain: string, lines: readonly string[], withComments: boolean): string[] {
  const ids = ruleIds(chain, lines);
  const out: string[] = [];
  let i = 0;
  for (const l of lines) {
    if (isRule(l)) out.push(`${l} comment "${ids[i++]}"`);
    else if (withComments) out.push(l);
  }
  return out;
}

/** Number of rules (non-comment lines) in a table's chains. */
export function ruleCount(t: NftTableSpec): number {
  let n = 0;
  for (const lines of t.chains.values()) for (const l of lines) if (isRule(l)) n++;
  return n;
}

function setBody(s: NftSetSpec, withElements: boolean): string[] {
  const out = [`type ${s.type}`];
  if (s.flags.length > 0) out.push(`flags ${s.flags.join(',')}`);
  if (withElements && s.elements.length > 0) out.push(`elements = { ${s.elements.join(', ')} }`);
  return out;
}

/** The script that (re)creates the whole table atomically. */
export function renderTableScript(t: NftTableSpec): string {
  const ref = `${t.family} ${t.name}`;
  const out: string[] = [`table ${ref} {}`, `delete table ${ref}`, `table ${ref} {`];
  for (const name of [...t.sets.keys()].sort(cmp)) {
    const s = t.sets.get(name)!;
    if (s.comment) out.push(`\t# ${s.comment.replace(/\n/g, ' ')}`);
    out.push(`\t${setKind(s)} ${name} {`, ...setBody(s, true).map((l) => `\t\t${l}`), '\t}');
  }
  const chain = (name: string) => {
    const decl = t.base.get(name);
    out.push(`\tchain ${name} {`, ...(decl ? [`\t\t${decl}`] : []), ...rulesWithIds(name, t.chains.get(name)!, true).map((l) => `\t\t${l}`), '\t}');
  };
  for (const name of t.base.keys()) if (t.chains.has(name)) chain(name);
  for (const name of [...t.chains.keys()].sort(cmp)) if (!t.base.has(name)) chain(name);
  out.push('}', '');
  return out.join('\n');
}

export interface TableDiff {
  /** The transaction (empty when the tables are equal). */
  script: string;
  /** Number of commands in it. */
  commands: number;
  /** Objects new or changed (their kernel listing changed). */
  touched: NftObjectRef[];
  /** Objects deleted. */
  removed: NftObjectRef[];
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const mapKey = (e: string) => {
  const i = e.indexOf(' : ');
  return i < 0 ? e : e.slice(0, i);
};

/**
 * The transaction that turns table `from` (as written) into `to`, or null when it cannot be done
 * in place (another table, a base chain's declaration or a set's type or flags changed): then
 * rewrite the whole table.
 */
export function diffTables(from: NftTableSpec, to: NftTableSpec): TableDiff | null {
  if (from.family !== to.family || from.name !== to.name) return null;
  for (const [name, decl] of to.base) if (from.base.has(name) ? from.base.get(name) !== decl : from.chains.has(name)) return null;
  for (const [name, decl] of from.base) if (to.base.get(name) !== decl && to.chains.has(name)) return null;
  const ref = `${to.family} ${to.name}`;
  const declare: string[] = [];
  const flush: string[] = [];
  const delElems: string[] = [];
  const addElems: string[] = [];
  const addRules: string[] = [];
  const delChains: string[] = [];
  const delSets: string[] = [];
  const touched: NftObjectRef[] = [];
  const removed: NftObjectRef[] = [];
  let commands = 0;

  for (const [name, s] of to.sets) {
    const old = from.sets.get(name);
    const kind = setKind(s);
    if (old && (old.type !== s.type || old.flags.join(',') !== s.flags.join(','))) return null;
    let add: readonly string[] = s.elements;
    if (!old) {
      declare.push(`add ${kind} ${ref} ${name} { ${setBody(s, false).join('; ')}; }`);
      touched.push({ kind, name });
    } else {
      if (sameLines(old.elements, s.elements)) continue;
      const now = new Set(s.elements);
      const before = new Set(old.elements);
      const gone = old.elements.filter((e) => !now.has(e));
      add = s.elements.filter((e) => !before.has(e));
      if (gone.length === 0 && add.length === 0) continue;
      if (gone.length > 0) {
        delElems.push(`delete element ${ref} ${name} { ${gone.map(isMap(s) ? mapKey : (e: string) => e).join(', ')} }`);
        commands++;
      }
      touched.push({ kind, name });
    }
    if (add.length > 0) {
      addElems.push(`add element ${ref} ${name} { ${add.join(', ')} }`);
      commands++;
    }
  }
  for (const [name, s] of from.sets) {
    if (to.sets.has(name)) continue;
    delSets.push(`delete ${setKind(s)} ${ref} ${name}`);
    removed.push({ kind: setKind(s), name });
  }

  for (const [name, lines] of to.chains) {
    const old = from.chains.get(name);
    if (old && sameLines(old, lines)) continue;
    if (!old) {
      const decl = to.base.get(name);
      declare.push(decl ? `add chain ${ref} ${name} { ${decl} }` : `add chain ${ref} ${name}`);
    } else {
      // A comment-only change needs no kernel change.
      const a = old.filter(isRule);
      const b = lines.filter(isRule);
      if (sameLines(a, b)) continue;
      flush.push(`flush chain ${ref} ${name}`);
    }
    for (const l of rulesWithIds(name, lines, false)) addRules.push(`add rule ${ref} ${name} ${l}`);
    touched.push({ kind: 'chain', name });
  }
  for (const name of from.chains.keys()) {
    if (to.chains.has(name)) continue;
    flush.push(`flush chain ${ref} ${name}`);
    delChains.push(`delete chain ${ref} ${name}`);
    removed.push({ kind: 'chain', name });
  }

  const all = [...declare, ...flush, ...delElems, ...addElems, ...addRules, ...delSets, ...delChains];
  commands += declare.length + flush.length + addRules.length + delChains.length + delSets.length;
  return { script: all.length > 0 ? `${all.join('\n')}\n` : '', commands, touched, removed };
}

const OCTET = '(0|[1-9][0-9]{0,2})';
const V4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}(?:/(0|[1-9][0-9]?))?$`);

/**
 * IPv4 CIDRs, addresses (bare ones are /32) and ranges (`a-b`, as nft lists them; anything else
 * is ignored) as the fewest disjoint,
 * non-adjacent intervals, sorted: each a CIDR (`10.0.0.0/24`, `10.0.0.1/32`) when it is one, else a
 * range (`10.0.0.1-10.0.0.3`). The kernel then holds exactly these elements whether they were
 * written at once or added and deleted one by one.
 */
export function canonicalV4Intervals(list: Iterable<string>): string[] {
  const iv: Array<[number, number]> = [];
  for (const x of list) {
    const s = String(x).trim();
    if (s.includes(':')) continue;
    const dash = s.indexOf('-');
    if (dash > 0) {
      const a = canonicalV4Intervals([s.slice(0, dash)]);
      const b = canonicalV4Intervals([s.slice(dash + 1)]);
      if (a.length !== 1 || b.length !== 1 || a[0]!.includes('-') || b[0]!.includes('-') || !a[0]!.endsWith('/32') || !b[0]!.endsWith('/32')) continue;
      const lo = v4Number(a[0]!.slice(0, -3));
      const hi = v4Number(b[0]!.slice(0, -3));
      if (lo <= hi) iv.push([lo, hi]);
      continue;
    }
    let addr: number;
    let prefix: number;
    const m = V4.exec(s);
    if (m && Number(m[1]) < 256 && Number(m[2]) < 256 && Number(m[3]) < 256 && Number(m[4]) < 256 && (m[5] === undefined || Number(m[5]) <= 32)) {
      addr = ((Number(m[1]) * 256 + Number(m[2])) * 256 + Number(m[3])) * 256 + Number(m[4]);
      prefix = m[5] === undefined ? 32 : Number(m[5]);
    } else {
      const c = parseCIDR(s.includes('/') ? s : `${s}/32`);
      if (c?.version !== 4) continue;
      addr = Number(c.network);
      prefix = c.prefix;
    }
    const size = 2 ** (32 - prefix);
    const start = Math.floor(addr / size) * size;
    iv.push([start, start + size - 1]);
  }
  iv.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const merged: Array<[number, number]> = [];
  for (const [s, e] of iv) {
    const last = merged[merged.length - 1];
    if (last && s <= last[1] + 1) last[1] = Math.max(last[1], e);
    else merged.push([s, e]);
  }
  return merged.map(([s, e]) => {
    const n = e - s + 1;
    const prefix = 32 - Math.log2(n);
    if (Number.isInteger(prefix) && s % n === 0) return `${v4(s)}/${prefix}`;
    return `${v4(s)}-${v4(e)}`;
  });
}

function v4Number(s: string): number {
  const [a, b, c, d] = s.split('.').map(Number) as [number, number, number, number];
  return ((a * 256 + b) * 256 + c) * 256 + d;
}

function v4(n: number): string {
  return `${Math.floor(n / 16777216) % 256}.${Math.floor(n / 65536) % 256}.${Math.floor(n / 256) % 256}.${n % 256}`;
}

/**
 * IPv6 CIDRs, addresses (bare ones are /128) and ranges (`a-b`) as the fewest disjoint, non-adjacent
 * intervals, sorted, written as nft lists them (so that a listing compares as text): a single
 * address bare (`fd00::1`), a prefix as a CIDR (`fd00::/64`), anything else as a range
 * (`fd00::1-fd00::3`); addresses in RFC 5952 form. Anything not IPv6 is ignored.
 */
export function canonicalV6Intervals(list: Iterable<string>): string[] {
  const iv: Array<[bigint, bigint]> = [];
  const one = (s: string): [bigint, bigint] | null => {
    const c = parseCIDR(s.includes('/') ? s : `${s}/128`);
    if (c?.version !== 6) return null;
    return [c.network, c.network + (1n << BigInt(128 - c.prefix)) - 1n];
  };
  for (const x of list) {
    const s = String(x).trim();
    if (!s.includes(':')) continue;
    const dash = s.indexOf('-');
    if (dash > 0) {
      if (s.includes('/')) continue;
      const a = one(s.slice(0, dash));
      const b = one(s.slice(dash + 1));
      if (a && b && a[0] <= b[0]) iv.push([a[0], b[0]]);
      continue;
    }
    const r = one(s);
    if (r) iv.push(r);
  }
  iv.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  const merged: Array<[bigint, bigint]> = [];
  for (const [s, e] of iv) {
    const last = merged[merged.length - 1];
    // biome-ignore lint/complexity/useMathMinMax: bigints; Math.max takes numbers
    if (last && s <= last[1] + 1n) last[1] = last[1] > e ? last[1] : e;
    else merged.push([s, e]);
  }
  const f = (v: bigint) => formatIP({ version: 6, value: v });
  return merged.map(([s, e]) => {
    const n = e - s + 1n;
    if (n === 1n) return f(s);
    if ((n & (n - 1n)) === 0n && s % n === 0n) return `${f(s)}/${128 - (n.toString(2).length - 1)}`;
    return `${f(s)}-${f(e)}`;
  });
}
