// The table-as-data helpers (pure): the full script, the difference between two tables as one
// transaction (exact text and order), canonical IPv4 intervals.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type NftSetSpec, type NftTableSpec, canonicalV4Intervals, canonicalV6Intervals, diffTables, renderTableScript, ruleCount, ruleIds } from './nft-table-spec.js';

const BASE = new Map([['forward', 'type filter hook forward priority filter; policy accept;']]);

function table(chains: Record<string, string[]>, sets: Record<string, Partial<NftSetSpec>> = {}): NftTableSpec {
  return {
    family: 'inet',
    name: 't',
    base: BASE,
    chains: new Map(Object.entries(chains)),
    sets: new Map(Object.entries(sets).map(([k, v]) => [k, { type: 'ipv4_addr', flags: ['interval'], elements: [], comment: '', ...v }])),
  };
}
/** The script's lines without the rule ids (checked apart: every rule carries one). */
const lines = (s: string) => {
  const out = s.trimEnd().split('\n');
  for (const l of out) if (/^(\t\t[^#\t]|add rule)/.test(l) && !/^\t\t(type|flags|elements) /.test(l)) assert.match(l, / comment "t:[0-9a-z]{11}"$/, l);
  return out.map((l) => l.replace(/ comment "t:[0-9a-z]{11}"$/, ''));
};

describe('renderTableScript (pure)', () => {
  it('recreates the table: sets and maps by name, base chains first with their declaration, every rule with its id', () => {
    const t = table(
      { b: ['drop'], forward: ['iifname vmap @m'], a: ['# note', 'return'] },
      { s: { elements: ['10.0.0.0/24'], comment: 'nets' }, m: { type: 'ifname : verdict', flags: [], elements: ['"c1" : jump a'] } },
    );
    assert.deepEqual(lines(renderTableScript(t)), [
      'table inet t {}',
      'delete table inet t',
      'table inet t {',
      '\tmap m {',
      '\t\ttype ifname : verdict',
      '\t\telements = { "c1" : jump a }',
      '\t}',
      '\t# nets',
      '\tset s {',
      '\t\ttype ipv4_addr',
      '\t\tflags interval',
      '\t\telements = { 10.0.0.0/24 }',
      '\t}',
      '\tchain forward {',
      '\t\ttype filter hook forward priority filter; policy accept;',
      '\t\tiifname vmap @m',
      '\t}',
      '\tchain a {',
      '\t\t# note',
      '\t\treturn',
      '\t}',
      '\tchain b {',
      '\t\tdrop',
      '\t}',
      '}',
    ]);
    assert.equal(ruleCount(t), 3);
  });

  it('rule ids hash the chain, the rule and the rules before it', () => {
    const a = ruleIds('a', ['# x', 'drop', 'accept']);
    assert.equal(a.length, 2);
    assert.deepEqual(ruleIds('a', ['drop', '# y', 'accept']), a, 'comments do not count');
    assert.notEqual(ruleIds('b', ['drop', 'accept'])[0], a[0], 'another chain');
    assert.notEqual(ruleIds('a', ['return', 'accept'])[1], a[1], 'another rule before');
    assert.deepEqual(ruleIds('a', ['drop', 'return'])[0], a[0]);
  });
});

describe('diffTables (pure)', () => {
  const base = table({ forward: ['iifname vmap @m'], a: ['ip saddr @s return', 'drop'], b: ['return'] }, { s: { elements: ['10.0.0.1/32', '10.0.0.4-10.0.0.6'] }, m: { type: 'ifname : verdict', flags: [], elements: ['"c1" : jump a', '"c2" : jump b'] } });

  it('equal tables, or chains differing only in comments: nothing to do', () => {
    assert.equal(diffTables(base, base)!.script, '');
    const commented = table({ forward: ['iifname vmap @m'], a: ['# a comment', 'ip saddr @s return', 'drop'], b: ['return'] }, { s: { elements: ['10.0.0.1/32', '10.0.0.4-10.0.0.6'] }, m: { type: 'ifname : verdict', flags: [], elements: ['"c1" : jump a', '"c2" : jump b'] } });
    assert.deepEqual(diffTables(base, commented), { script: '', commands: 0, touched: [], removed: [] });
  });

  it('a changed chain is flushed and refilled, nothing else', () => {
    const next = table({ forward: ['iifname vmap @m'], a: ['ip saddr @s tcp dport 81 return', 'drop'], b: ['return'] }, { s: { elements: ['10.0.0.1/32', '10.0.0.4-10.0.0.6'] }, m: { type: 'ifname : verdict', flags: [], elements: ['"c1" : jump a', '"c2" : jump b'] } });
    const d = diffTables(base, next)!;
    assert.deepEqual(lines(d.script), ['flush chain inet t a', 'add rule inet t a ip saddr @s tcp dport 81 return', 'add rule inet t a drop']);
    assert.deepEqual(d.touched, [{ kind: 'chain', name: 'a' }]);
    assert.equal(d.commands, 3);
  });

  it('set elements: only the ones gone are deleted (first), only the new ones added', () => {
    const next = table({ forward: ['iifname vmap @m'], a: ['ip saddr @s return', 'drop'], b: ['return'] }, { s: { elements: ['10.0.0.1-10.0.0.2', '10.0.0.4-10.0.0.6', '10.1.0.0/16'] }, m: { type: 'ifname : verdict', flags: [], elements: ['"c1" : jump a', '"c2" : jump b'] } });
    assert.deepEqual(lines(diffTables(base, next)!.script), ['delete element inet t s { 10.0.0.1/32 }', 'add element inet t s { 10.0.0.1-10.0.0.2, 10.1.0.0/16 }']);
  });

  it('a new endpoint: set and chain declared before the map element that jumps to it, rules (naming the new set) last', () => {
    const next = table(
      { forward: ['iifname vmap @m'], a: ['ip saddr @s return', 'drop'], b: ['return'], c: ['ip daddr @n drop', 'jump b'] },
      { s: { elements: ['10.0.0.1/32', '10.0.0.4-10.0.0.6'] }, n: { elements: ['192.168.0.0/24'] }, m: { type: 'ifname : verdict', flags: [], elements: ['"c1" : jump a', '"c2" : jump b', '"c3" : jump c'] } },
    );
    const d = diffTables(base, next)!;
    assert.deepEqual(lines(d.script), [
      'add set inet t n { type ipv4_addr; flags interval; }',
      'add chain inet t c',
      'add element inet t n { 192.168.0.0/24 }',
      'add element inet t m { "c3" : jump c }',
      'add rule inet t c ip daddr @n drop',
      'add rule inet t c jump b',
    ]);
    assert.deepEqual(
      d.touched.map((o) => `${o.kind} ${o.name}`).sort(),
      ['chain c', 'map m', 'set n'],
    );
  });

  it('a removed endpoint: references go first (map element, referencing rules flushed), then the set, then the chains', () => {
    const next = table({ forward: ['iifname vmap @m'], a: ['drop'] }, { m: { type: 'ifname : verdict', flags: [], elements: ['"c1" : jump a'] } });
    const d = diffTables(base, next)!;
    assert.deepEqual(lines(d.script), [
      'flush chain inet t a',
      'flush chain inet t b',
      'delete element inet t m { "c2" }',
      'add rule inet t a drop',
      'delete set inet t s',
      'delete chain inet t b',
    ]);
    assert.deepEqual(d.removed, [{ kind: 'set', name: 's' }, { kind: 'chain', name: 'b' }]);
  });

  it('a map element pointing elsewhere is deleted by key and added back', () => {
    const next = table({ forward: ['iifname vmap @m'], a: ['ip saddr @s return', 'drop'], b: ['return'] }, { s: { elements: ['10.0.0.1/32', '10.0.0.4-10.0.0.6'] }, m: { type: 'ifname : verdict', flags: [], elements: ['"c1" : jump a', '"c2" : jump a'] } });
    assert.deepEqual(lines(diffTables(base, next)!.script), ['delete element inet t m { "c2" }', 'add element inet t m { "c2" : jump a }']);
  });

  it('cannot be done in place: a set type or flags, a base chain declaration, another table', () => {
    assert.equal(diffTables(base, table({ forward: ['iifname vmap @m'] }, { s: { flags: [] } })), null);
    assert.equal(diffTables(base, { ...base, base: new Map([['forward', 'type filter hook forward priority 10; policy accept;']]) }), null);
    assert.equal(diffTables(base, { ...base, name: 'u' }), null);
  });
});

describe('canonicalV4Intervals (pure)', () => {
  it('merges overlapping and adjacent nets into the fewest intervals, prefixes where they are ones', () => {
    assert.deepEqual(canonicalV4Intervals(['10.0.0.2', '10.0.0.1', '10.0.0.3/32', '10.1.0.0/16', '10.1.2.0/24', 'fd00::1', '10.0.0.0/32']), ['10.0.0.0/30', '10.1.0.0/16']);
    assert.deepEqual(canonicalV4Intervals(['10.0.0.3', '10.0.0.1', '10.0.0.2']), ['10.0.0.1-10.0.0.3']);
    // ranges as nft lists them read back to the same intervals
    assert.deepEqual(canonicalV4Intervals(['10.0.0.1-10.0.0.3', '10.0.0.4', '10.2.0.0-10.2.0.255', '10.3.0.9-10.3.0.1']), ['10.0.0.1-10.0.0.4', '10.2.0.0/24']);
    assert.deepEqual(canonicalV4Intervals(['10.0.0.0/25', '10.0.0.128/25', '10.0.1.0/24']), ['10.0.0.0/23']);
    assert.deepEqual(canonicalV4Intervals(['10.0.0.1/24', '0.0.0.0/0']), ['0.0.0.0/0']);
    assert.deepEqual(canonicalV4Intervals(['255.255.255.255', '10.0.0.5', '10.0.0.7']), ['10.0.0.5/32', '10.0.0.7/32', '255.255.255.255/32']);
    assert.deepEqual(canonicalV4Intervals(['not an address', '300.0.0.1']), []);
    assert.deepEqual(canonicalV4Intervals([]), []);
  });
});

describe('canonicalV6Intervals (pure)', () => {
  it('fewest disjoint intervals, written as nft lists them (bare address, prefix, range; RFC 5952)', () => {
    assert.deepEqual(canonicalV6Intervals(['fd00:0:0::10', 'fd00::11', '10.0.0.1', 'FD00::12/128']), ['fd00::10-fd00::12']);
    assert.deepEqual(canonicalV6Intervals(['fd00::1', 'fd00::2', 'fd00::3']), ['fd00::1-fd00::3']);
    assert.deepEqual(canonicalV6Intervals(['fd00::1-fd00::3', 'fd00::4', 'fd00:1::/64', 'fd00:1::5/128', 'fd00::9-fd00::1']), ['fd00::1-fd00::4', 'fd00:1::/64']);
    assert.deepEqual(canonicalV6Intervals(['fd00::/65', 'fd00::8000:0:0:0/65']), ['fd00::/64']);
    assert.deepEqual(canonicalV6Intervals(['::/0', 'fd00::1']), ['::/0']);
    assert.deepEqual(canonicalV6Intervals(['2001:db8:0:0:1:0:0:1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']), ['2001:db8::1:0:0:1', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff']);
    assert.deepEqual(canonicalV6Intervals(['not::an::address', 'fd00::/129', 'zz']), []);
    // idempotent: what it writes reads back the same
    const once = canonicalV6Intervals(['fd00::1', 'fd00::2', 'fd00::8/125', 'fd00:1::/48']);
    assert.deepEqual(canonicalV6Intervals(once), once);
  });
});
