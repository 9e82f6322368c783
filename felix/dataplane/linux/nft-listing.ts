// `nft list` output of one table cut into its objects, and checked against the table that was
// written (felix/calc/nft-table-spec.ts). Pure.
//
// Objects are keyed `chain NAME`, `set NAME`, `map NAME` (any other `<kind> NAME {` block likewise),
// and `table` for lines at table level (flags, comments: none in a table the agent wrote).
//
// tableDrift needs no knowledge of how nft prints a rule: every rule the agent writes carries its id
// as a comment (`comment "t:…"`, see ruleIds), so a chain is as written when its rules carry the
// expected ids in order (and a base chain its declaration). A set or map is as written when its type,
// flags and elements are; elements are compared in a canonical form (IPv4 intervals merged, protocol
// names as numbers, order ignored), since nft prints `10.0.0.1/32` as `10.0.0.1` and 6 as `tcp`.
import { type NftTableSpec, type NftSetSpec, canonicalV4Intervals, ruleIds, setKind } from '../../calc/nft-table-spec.js';

const BLOCK_START = /^\t(\S.*?) \{$/;
const ELEMENTS = /elements = \{([^}]*)\}/;
const COMMENT = / comment "([^"]*)"$/;

/** The objects of `nft list table|chain|set|map` output (one or more listings of one table): their lines, trimmed. */
export function listingObjects(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const tableLines: string[] = [];
  let key: string | null = null;
  let body: string[] = [];
  for (const line of text.split('\n')) {
    if (key !== null) {
      if (line === '\t}') {
        out.set(key, body);
        key = null;
      } else if (line.trim() !== '') body.push(line.trim());
      continue;
    }
    if (line.trim() === '' || line.startsWith('table ') || line === '}') continue;
    const m = BLOCK_START.exec(line);
    if (m) {
      key = m[1]!;
      body = [];
    } else tableLines.push(line.trim());
  }
  if (key !== null) out.set(key, [...body, '(unterminated)']);
  if (tableLines.length > 0) out.set('table', tableLines);
  return out;
}

/** A set's or map's listing lines with the elements joined into one line: [other lines, elements]. */
function splitElements(lines: readonly string[]): { rest: string[]; elements: string[] } {
  const text = lines.join('\n');
  const m = ELEMENTS.exec(text);
  const rest = (m ? text.replace(ELEMENTS, '') : text).split('\n').filter((l) => l.trim() !== '');
  const elements = m
    ? m[1]!
        .split(',')
        .map((e) => e.replace(/\s+/g, ' ').trim())
        .filter((e) => e !== '')
    : [];
  return { rest, elements };
}

/** The objects of a listing as comparable text: lines joined, set and map elements sorted. */
export function listingBlocks(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, lines] of listingObjects(text)) {
    const kind = key.split(' ')[0];
    if (kind !== 'set' && kind !== 'map') {
      out.set(key, lines.join('\n'));
      continue;
    }
    const { rest, elements } = splitElements(lines);
    out.set(key, [...rest, ...(elements.length > 0 ? [`elements = { ${elements.sort().join(', ')} }`] : [])].join('\n'));
  }
  return out;
}

/** The keys whose text differs between two block maps (present in one only, or different). */
export function blockDifferences(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of a) if (b.get(k) !== v) out.push(k);
  for (const k of b.keys()) if (!a.has(k)) out.push(k);
  return out;
}

/** A listing with its objects in name order and set elements sorted: equal for equal tables. */
export function normalizeListing(text: string): string {
  const blocks = listingBlocks(text);
  return [...blocks.keys()]
    .sort()
    .map((k) => `${k} {\n${blocks.get(k)!}\n}`)
    .join('\n');
}

const PROTO: Record<string, string> = { icmp: '1', tcp: '6', udp: '17', sctp: '132', 'ipv6-icmp': '58', icmpv6: '58', udplite: '136' };

/** Elements of a set of this type in one canonical form, sorted (for listed and written alike). */
function canonicalElements(s: NftSetSpec, elements: readonly string[]): string[] {
  if (s.type === 'ipv4_addr' && s.flags.includes('interval')) return canonicalV4Intervals(elements);
  const out = elements.map((e) =>
    e
      .replace(/\s+/g, ' ')
      .trim()
      .split(' . ')
      .map((part) => PROTO[part] ?? part)
      .join(' . '),
  );
  return out.sort();
}

/**
 * The objects of the kernel's listing of the table that differ from `spec` (missing, extra, or not
 * as written); [] when the table is as written.
 */
export function tableDrift(spec: NftTableSpec, listing: string): string[] {
  const objs = listingObjects(listing);
  const out: string[] = [];
  const expected = new Set<string>();
  for (const [name, lines] of spec.chains) {
    const key = `chain ${name}`;
    expected.add(key);
    const got = objs.get(key);
    if (!got) {
      out.push(key);
      continue;
    }
    const decl = spec.base.get(name);
    const rules = decl === undefined ? got : got[0] === decl ? got.slice(1) : null;
    const ids = ruleIds(name, lines);
    if (!rules || rules.length !== ids.length || rules.some((r, i) => COMMENT.exec(r)?.[1] !== ids[i])) out.push(key);
  }
  for (const [name, s] of spec.sets) {
    const key = `${setKind(s)} ${name}`;
    expected.add(key);
    const got = objs.get(key);
    if (!got) {
      out.push(key);
      continue;
    }
    const { rest, elements } = splitElements(got);
    const head = [`type ${s.type}`, ...(s.flags.length > 0 ? [`flags ${s.flags.join(',')}`] : [])];
    const same =
      rest.length === head.length &&
      rest.every((l, i) => l === head[i]) &&
      canonicalElements(s, elements).join('\n') === canonicalElements(s, s.elements).join('\n');
    if (!same) out.push(key);
  }
  for (const key of objs.keys()) if (!expected.has(key)) out.push(key);
  return out;
}
