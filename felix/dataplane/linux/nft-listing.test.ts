// `nft list` output cut into objects, and checked against the table written (pure), on listings
// as nft 1.0.6 prints them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { blockDifferences, listingBlocks, normalizeListing, tableDrift } from './nft-listing.js';
import type { NftTableSpec } from '../../calc/nft-table-spec.js';

const LISTING = `table inet t {
	set wl {
		type ifname
		elements = { "cali1",
			     "cali2" }
	}

	map eg {
		type ifname : verdict
		elements = { "cali2" : jump ee-2,
			     "cali1" : jump ee-1 }
	}

	set np {
		type ipv4_addr . inet_proto . inet_service
		elements = { 10.0.0.3 . udp . 53,
			     10.0.0.1 . tcp . 80 }
	}

	chain ee-1 {
		ip saddr @s1 tcp dport { 80, 81 } return
		drop
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		iifname vmap @eg
	}
}
`;

describe('listingBlocks (pure)', () => {
  it('one entry per object; set and map elements sorted; rules in order', () => {
    const b = listingBlocks(LISTING);
    assert.deepEqual([...b.keys()], ['set wl', 'map eg', 'set np', 'chain ee-1', 'chain forward']);
    assert.equal(b.get('map eg'), 'type ifname : verdict\nelements = { "cali1" : jump ee-1, "cali2" : jump ee-2 }');
    assert.equal(b.get('set np'), 'type ipv4_addr . inet_proto . inet_service\nelements = { 10.0.0.1 . tcp . 80, 10.0.0.3 . udp . 53 }');
    assert.equal(b.get('chain ee-1'), 'ip saddr @s1 tcp dport { 80, 81 } return\ndrop');
  });

  it('several listings (list chain …; list set …) read as one; table-level lines are an object of their own', () => {
    const two = 'table inet t {\n\tchain a {\n\t\tdrop\n\t}\n}\ntable inet t {\n\tset s {\n\t\ttype ipv4_addr\n\t}\n}\n';
    assert.deepEqual([...listingBlocks(two)], [
      ['chain a', 'drop'],
      ['set s', 'type ipv4_addr'],
    ]);
    assert.equal(listingBlocks('table inet t {\n\tflags dormant\n}\n').get('table'), 'flags dormant');
  });

  it('differences: a changed rule, a missing or an extra object; element order is no difference', () => {
    const a = listingBlocks(LISTING);
    const reordered = LISTING.replace('"cali1",\n\t\t\t     "cali2"', '"cali2",\n\t\t\t     "cali1"');
    assert.notEqual(reordered, LISTING);
    assert.deepEqual(blockDifferences(a, listingBlocks(reordered)), []);
    assert.equal(normalizeListing(reordered), normalizeListing(LISTING));
    assert.deepEqual(blockDifferences(a, listingBlocks(LISTING.replace('\t\tdrop\n', '\t\taccept\n'))), ['chain ee-1']);
    assert.deepEqual(blockDifferences(a, listingBlocks(LISTING.replace(/\tchain ee-1 \{[^}]*\}[^}]*\}\n/, ''))), ['chain ee-1']);
    assert.deepEqual(blockDifferences(listingBlocks(LISTING.replace(/\tchain ee-1 \{[^}]*\}[^}]*\}\n/, '')), a), ['chain ee-1']);
  });
});

// A table written with renderTableScript, and `nft list table inet tortie-filter` of it (nft 1.0.6).
const SPEC: NftTableSpec = {
  family: 'inet',
  name: 'tortie-filter',
  base: new Map([['forward', 'type filter hook forward priority filter; policy accept;']]),
  chains: new Map([
    ['forward', ['ct state established,related accept', 'iifname vmap @wl-egress']],
    ['ee-1', ['# egress of x/a', 'ip daddr @s-1 meta l4proto 6 th dport { 81 } meta mark set meta mark | 0x01000000 return', 'ip daddr . meta l4proto . th dport @np-1 return', 'meta l4proto 1 icmp type 8 drop', 'log prefix "tortie x/p e0: "', 'drop']],
  ]),
  sets: new Map([
    ['wl-ifaces', { type: 'ifname', flags: [], elements: ['"cali0"', '"cali1"'], comment: '' }],
    ['wl-egress', { type: 'ifname : verdict', flags: [], elements: ['"cali0" : jump ee-1', '"cali1" : jump ee-1'], comment: '' }],
    ['s-1', { type: 'ipv4_addr', flags: ['interval'], elements: ['10.0.0.0/24', '10.0.1.1-10.0.1.3', '10.0.2.7/32'], comment: '' }],
    ['np-1', { type: 'ipv4_addr . inet_proto . inet_service', flags: [], elements: ['10.0.0.1 . 6 . 80', '10.0.0.2 . 17 . 53', '10.0.0.3 . 132 . 9'], comment: '' }],
  ]),
};
const KERNEL = `table inet tortie-filter {
	set np-1 {
		type ipv4_addr . inet_proto . inet_service
		elements = { 10.0.0.3 . sctp . 9,
			     10.0.0.2 . udp . 53,
			     10.0.0.1 . tcp . 80 }
	}

	set s-1 {
		type ipv4_addr
		flags interval
		elements = { 10.0.0.0/24, 10.0.1.1-10.0.1.3,
			     10.0.2.7 }
	}

	map wl-egress {
		type ifname : verdict
		elements = { "cali0" : jump ee-1,
			     "cali1" : jump ee-1 }
	}

	set wl-ifaces {
		type ifname
		elements = { "cali0",
			     "cali1" }
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state established,related accept comment "t:0u2sbhe5cqd"
		iifname vmap @wl-egress comment "t:1kr8zazk335"
	}

	chain ee-1 {
		ip daddr @s-1 tcp dport 81 meta mark set meta mark | 0x01000000 return comment "t:0kyr3f1qm1i"
		ip daddr . meta l4proto . th dport @np-1 return comment "t:25qskmnvyne"
		icmp type echo-request drop comment "t:0ll2xd7vabo"
		log prefix "tortie x/p e0: " comment "t:1su0t8dvhhy"
		drop comment "t:15lvl0itoqm"
	}
}
`;

describe('tableDrift (pure)', () => {
  it('the kernel\'s listing of a table is as written, however nft prints rules and elements', () => {
    assert.deepEqual(tableDrift(SPEC, KERNEL), []);
  });

  it('finds each kind of hand edit, naming the object', () => {
    const cases: Array<[string, string, string[]]> = [
      ['rule added', KERNEL.replace('\t\tdrop comment', '\t\taccept\n\t\tdrop comment'), ['chain ee-1']],
      ['rule deleted', KERNEL.replace(/\t\ticmp type echo-request[^\n]*\n/, ''), ['chain ee-1']],
      ['rules swapped', KERNEL.replace(/(\t\ticmp[^\n]*\n)(\t\tlog[^\n]*\n)/, '$2$1'), ['chain ee-1']],
      ['rule without its comment', KERNEL.replace('\t\tdrop comment "t:15lvl0itoqm"', '\t\tdrop'), ['chain ee-1']],
      ['chain flushed', KERNEL.replace(/\t\tct state[^\n]*\n\t\tiifname[^\n]*\n/, ''), ['chain forward']],
      ['base chain re-hooked', KERNEL.replace('priority filter; policy accept;', 'priority filter; policy drop;'), ['chain forward']],
      ['chain deleted', KERNEL.replace(/\tchain ee-1 \{[\s\S]*?\n\t\}\n/, ''), ['chain ee-1']],
      ['chain added', KERNEL.replace(/\}\n$/, '\tchain x {\n\t}\n}\n'), ['chain x']],
      ['interval element deleted', KERNEL.replace(',\n\t\t\t     10.0.2.7 }', ' }'), ['set s-1']],
      ['interval widened', KERNEL.replace('10.0.1.1-10.0.1.3', '10.0.1.1-10.0.1.4'), ['set s-1']],
      ['concatenation element changed', KERNEL.replace('10.0.0.2 . udp . 53', '10.0.0.2 . tcp . 53'), ['set np-1']],
      ['map element retargeted', KERNEL.replace('"cali1" : jump ee-1', '"cali1" : accept'), ['map wl-egress']],
      ['set emptied', KERNEL.replace(/\t\telements = \{ "cali0",\n\t\t\t {5}"cali1" \}\n/, ''), ['set wl-ifaces']],
      ['set flags changed', KERNEL.replace('\t\ttype ipv4_addr\n\t\tflags interval\n', '\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n'), ['set s-1']],
      ['table flags', KERNEL.replace('table inet tortie-filter {\n', 'table inet tortie-filter {\n\tflags dormant\n'), ['table']],
    ];
    for (const [what, listing, want] of cases) {
      assert.notEqual(listing, KERNEL, `${what}: the edit applies`);
      assert.deepEqual(tableDrift(SPEC, listing), want, what);
    }
  });

  it('equal content in another order is no drift', () => {
    const reordered = KERNEL.replace('10.0.0.3 . sctp . 9,\n\t\t\t     10.0.0.2 . udp . 53', '10.0.0.2 . udp . 53,\n\t\t\t     10.0.0.3 . sctp . 9');
    assert.notEqual(reordered, KERNEL);
    assert.deepEqual(tableDrift(SPEC, reordered), []);
  });
});
