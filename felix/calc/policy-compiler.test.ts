// The policy compiler (pure): golden snippets, determinism, stable names, a compiler that keeps its
// results compiling every change exactly as a fresh one, and `nft -c -f` on every truth-table
// case's script inside a namespace created here (`tortie-t<hex>-pcc`), deleted in `after`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compilePolicy, FILTER_TABLE, PolicyCompiler, WL_EGRESS, WL_IFACES, WL_INGRESS, parseInterfacePrefixes } from './policy-compiler.js';
import { CHANGES, MORE_CHANGES, type Situation, baseSituation, cloneSituation } from './testdata/policy-changes.js';
import { POD_KEYS, calicoResources, caseFiles, e2eModel, loadCase } from '../../libcalico-go/lib/policy/truth-table.js';
import { emptyModel, makeEndpoint } from '../../libcalico-go/lib/policy/model.js';
import { localEndpointsOf } from './policy-inputs.js';
import { DUAL_CASES, dualStackModel } from './testdata/dual-stack.js';

const IP = '/usr/sbin/ip';
const NFT = '/usr/sbin/nft';
const CASES = fileURLToPath(new URL('../../../libcalico-go/lib/policy/testdata/cases', import.meta.url));
const isRoot = process.getuid?.() === 0;
const liveSkip = !isRoot ? 'needs root (network namespaces)' : !existsSync(NFT) ? `${NFT} is not installed (apt-get install nftables)` : false;
const local9 = POD_KEYS.map((k, i) => ({ key: k, interfaceName: `cali${i}` }));

/** The full script without the rule ids (` comment "t:…"`). */
const bare = (r: { script: string }) => r.script.replace(/ comment "t:[0-9a-z]{11}"/g, '');

function modelOf(file: string) {
  return e2eModel(calicoResources(loadCase(file).policies));
}

/**
 * Rules whose protocol decides part of a notPorts or notICMP match (the compiler must not write an
 * alternative that can never match, nor one nft refuses: `meta l4proto 6 … icmp type` is "conflicting
 * protocols"), on x/a's ingress.
 */
const CRAFTED_RULES = [
  { action: 'Allow', protocol: 'TCP', destination: { notPorts: [80] } },
  { action: 'Allow', protocol: 'UDP', source: { notPorts: ['serve-80-tcp', 53] } },
  { action: 'Allow', destination: { notPorts: ['serve-80-tcp'] } },
  { action: 'Deny', protocol: 'ICMP', notICMP: { type: 8 } },
  { action: 'Deny', protocol: 'ICMP', notICMP: { type: 3, code: 1 } },
  { action: 'Deny', protocol: 'ICMPv6', notICMP: { type: 128, code: 0 } },
  { action: 'Deny', protocol: 'TCP', notICMP: { type: 8 } },
  { action: 'Deny', notICMP: { type: 8 } },
  { action: 'Allow', protocol: 'ICMP', icmp: { type: 8 } },
  { action: 'Allow', protocol: 'ICMP' },
];

function craftedModel(dual = false) {
  const p = { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'crafted' }, spec: { selector: "pod == 'a'", ingress: CRAFTED_RULES } } as never;
  return dual ? dualStackModel([p]) : e2eModel([p]);
}

describe('compilePolicy (pure)', () => {
  it('recreates one table atomically; hooks start with conntrack; endpoints dispatched by verdict maps', () => {
    const m = emptyModel();
    m.endpoints.push(makeEndpoint({ namespace: 'x', name: 'a', ips: ['10.0.0.1'] }));
    const r = compilePolicy(m, [{ key: 'x/a', interfaceName: 'caliaaa' }]);
    const lines = r.script.split('\n');
    assert.deepEqual(lines.slice(0, 3), [`table inet ${FILTER_TABLE} {}`, `delete table inet ${FILTER_TABLE}`, `table inet ${FILTER_TABLE} {`]);
    assert.match(bare(r), /chain forward \{\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n\t\tiifname @wl-ifaces ct state invalid drop\n/);
    assert.deepEqual(r.table.chains.get('forward'), [
      'ct state established,related accept',
      'iifname @wl-ifaces ct state invalid drop',
      'oifname @wl-ifaces ct state invalid drop',
      // an interface of a workload the agent does not know: dropped (fail closed)
      'iifname "cali*" iifname != @wl-ifaces drop',
      'oifname "cali*" oifname != @wl-ifaces drop',
      'iifname vmap @wl-egress',
      'oifname vmap @wl-ingress',
    ]);
    assert.deepEqual(
      compilePolicy(m, [], { interfacePrefixes: ['cali', 'tap'] }).table.chains.get('input')!.slice(2, 4),
      ['iifname "cali*" iifname != @wl-ifaces drop', 'iifname "tap*" iifname != @wl-ifaces drop'],
    );
    assert.deepEqual(r.table.sets.get(WL_IFACES)?.elements, ['"caliaaa"']);
    assert.match(r.table.sets.get(WL_EGRESS)!.elements[0]!, /^"caliaaa" : jump ee-[0-9a-f]{12}$/);
    assert.match(r.table.sets.get(WL_INGRESS)!.elements[0]!, /^"caliaaa" : jump ei-[0-9a-f]{12}$/);
    assert.match(bare(r), /\tmap wl-egress \{\n\t\ttype ifname : verdict\n\t\telements = \{ "caliaaa" : jump ee-[0-9a-f]{12} \}\n/);
    // no policy, no kns.x Profile resource: allowed by the (absent) profile
    assert.match(bare(r), /# egress of x\/a\n\t\tmeta mark set meta mark & 0xfcffffff\n\t\t# profile kns.x is absent: allow\n\t\treturn\n/);
    assert.deepEqual(r.unknown, []);
    assert.deepEqual(compilePolicy(m, [{ key: 'x/zz', interfaceName: 'calizz' }]).unknown, ['x/zz']);
  });

  it('FELIX_INTERFACEPREFIX: comma-separated prefixes; a prefix nft could not take is refused by name', () => {
    assert.deepEqual(parseInterfacePrefixes(undefined), ['cali']);
    assert.deepEqual(parseInterfacePrefixes('cali, tap'), ['cali', 'tap']);
    assert.throws(() => parseInterfacePrefixes('cali,ta"p'), /interface prefix "ta\\"p" must be/);
  });

  it('host → local workload is not policed: output accepts endpoint interfaces, jumps to no endpoint chain', () => {
    const r = compilePolicy(modelOf(`${CASES}/02-default-deny-ingress.yaml`), local9);
    const output = r.table.chains.get('output')!;
    assert.ok(output.every((l) => !/jump|vmap|goto/.test(l)), output.join('\n'));
    assert.ok(output.includes('oifname @wl-ifaces ct state invalid drop'));
    assert.ok(output.includes('oifname @wl-ifaces accept'));
    // pod → host: egress policy first, then DefaultEndpointToHostAction
    assert.deepEqual(compilePolicy(modelOf(`${CASES}/02-default-deny-ingress.yaml`), local9, { endpointToHostAction: 'Drop' }).table.chains.get('input')!.slice(3), ['iifname vmap @wl-egress', 'iifname @wl-ifaces drop']);
  });

  it('default deny ingress: a tier chain that drops at its end', () => {
    const r = compilePolicy(modelOf(`${CASES}/02-default-deny-ingress.yaml`), local9);
    assert.match(bare(r), /# tier default, ingress of x\/a\n\t\tjump ri-[0-9a-f]{12}\n\t\tmeta mark & 0x03000000 != 0x00000000 return\n\t\tdrop\n/);
  });

  it('selectors become named sets of endpoint addresses (canonical intervals); ports an anonymous set', () => {
    const r = compilePolicy(modelOf(`${CASES}/22-tier-pass-to-default.yaml`), local9);
    assert.match(bare(r), /# namespaceSelector ns == 'y'\n\tset s-[0-9a-f]{12} \{\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\telements = \{ 10\.200\.1\.10-10\.200\.1\.12 \}\n/);
    assert.doesNotMatch(bare(r), /auto-merge/);
    assert.match(bare(r), /ip saddr @s-[0-9a-f]{12} meta mark set meta mark \| 0x02000000 return\n/);
    const p = compilePolicy(modelOf(`${CASES}/10-ports.yaml`), local9);
    assert.match(bare(p), /\t\tmeta l4proto 6 th dport \{ 81 \} meta mark set meta mark \| 0x01000000 return\n/);
    const n = compilePolicy(modelOf(`${CASES}/11-named-port.yaml`), local9);
    assert.match(bare(n), /type ipv4_addr \. inet_proto \. inet_service/);
    assert.match(bare(n), /ip daddr \. meta l4proto \. th dport @np-[0-9a-f]{12}/);
  });

  it('is deterministic and independent of the order of local endpoints', () => {
    const m = modelOf(`${CASES}/22-tier-pass-to-default.yaml`);
    assert.equal(compilePolicy(m, local9).script, compilePolicy(m, [...local9].reverse()).script);
  });

  it('chain and set names do not move on unrelated changes (a tier added before, a policy added)', () => {
    const base = baseSituation();
    const before = compilePolicy(base.model, base.local).table;
    for (const name of ['tier added', 'policy added']) {
      const s = cloneSituation(base);
      CHANGES.find((c) => c.name === name)!.apply(s);
      const after = compilePolicy(s.model, s.local).table;
      const gone = [...before.chains.keys()].filter((c) => !after.chains.has(c));
      assert.deepEqual(gone, [], `${name}: chains renamed or removed`);
      const goneSets = [...before.sets.keys()].filter((c) => !after.sets.has(c));
      assert.deepEqual(goneSets, [], `${name}: sets renamed or removed`);
      assert.ok(after.chains.size > before.chains.size, `${name}: adds chains`);
    }
  });
});

describe('compilePolicy IPv6 (pure)', () => {
  const gnp = (spec: Record<string, unknown>) => ({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'p' }, spec }) as never;
  const rulesOf = (r: { table: { chains: ReadonlyMap<string, readonly string[]> } }) => [...r.table.chains].filter(([n]) => n.startsWith('ri-') || n.startsWith('re-')).flatMap(([, l]) => l.filter((x) => !x.startsWith('#')));
  const ALLOW = 'meta mark set meta mark | 0x01000000 return';

  it('selector sets per family (s-… ipv4_addr, s6-… ipv6_addr, canonical RFC 5952 intervals) and a rule per family', () => {
    const m = dualStackModel([gnp({ selector: "pod == 'a'", ingress: [{ action: 'Allow', source: { selector: "pod == 'b'" } }] })]);
    const r = compilePolicy(m, local9);
    const s4 = [...r.table.sets].find(([n]) => n.startsWith('s-'))!;
    const s6 = [...r.table.sets].find(([n]) => n.startsWith('s6-'))!;
    assert.equal(s6[0].slice(3), s4[0].slice(2), 'one identity, two families');
    assert.deepEqual(s4[1].elements, ['10.200.0.11/32', '10.200.1.11/32', '10.200.2.11/32']);
    assert.deepEqual([s6[1].type, s6[1].flags, s6[1].elements], ['ipv6_addr', ['interval'], ['fd00:10:200::11', 'fd00:10:200:1::11', 'fd00:10:200:2::11']]);
    assert.deepEqual(rulesOf(r), [`ip saddr @${s4[0]} ${ALLOW}`, `ip6 saddr @${s6[0]} ${ALLOW}`]);
    assert.match(bare(r), /chain input \{\n[^}]*iifname @wl-ifaces meta l4proto 58 icmpv6 type \{ 130, 131, 132, 133, 135, 136 \} accept\n\t\tiifname vmap @wl-egress\n/);
  });

  it('nets and notNets per family; a rule never ANDs an IPv4 match with an IPv6 one', () => {
    const m = dualStackModel([
      gnp({
        selector: "pod == 'a'",
        ingress: [
          { action: 'Allow', source: { nets: ['10.0.0.0/8', 'fd00::1', 'fd00::2/127'] } },
          { action: 'Allow', source: { nets: ['fd00::/16'] }, destination: { selector: "pod == 'b'" } },
          { action: 'Deny', source: { notNets: ['10.0.0.0/8'] } },
          { action: 'Deny', source: { notNets: ['fd00::/8'] } },
          { action: 'Deny', source: { notNets: ['10.0.0.0/8', 'fd00::/8'] } },
        ],
      }),
    ]);
    const r = compilePolicy(m, local9);
    const set = (prefix: string, elements: string[]) => [...r.table.sets].find(([n, s]) => n.startsWith(prefix) && s.elements.join() === elements.join())![0];
    const n4 = set('n-', ['10.0.0.0/8']);
    const n6a = set('n6-', ['fd00::1-fd00::3']);
    const n6b = set('n6-', ['fd00::/16']);
    const n6c = set('n6-', ['fd00::/8']);
    const sb = [...r.table.sets.keys()].filter((n) => /^s6?-/.test(n)).sort();
    assert.deepEqual(rulesOf(r), [
      `ip saddr @${n4} ${ALLOW}`,
      `ip6 saddr @${n6a} ${ALLOW}`,
      `ip6 saddr @${n6b} ip6 daddr @${sb[1]} ${ALLOW}`,
      // notNets of one family only: the rule says nothing about the other family (Felix)
      `ip saddr != @${n4} drop`,
      `ip6 saddr != @${n6c} drop`,
      `ip saddr != @${n4} drop`,
      `ip6 saddr != @${n6c} drop`,
    ]);
    assert.equal(r.table.sets.get(n6a)!.type, 'ipv6_addr');
  });

  it('named ports per family (np6-…: ipv6_addr . inet_proto . inet_service), notPorts too', () => {
    const m = dualStackModel([gnp({ selector: "pod == 'a'", ingress: [{ action: 'Allow', protocol: 'TCP', destination: { ports: ['serve-81-tcp'] } }, { action: 'Deny', destination: { notPorts: ['serve-80-tcp'] } }] })]);
    const r = compilePolicy(m, local9);
    const np6 = [...r.table.sets].filter(([n]) => n.startsWith('np6-')).sort();
    assert.equal(np6.length, 2);
    for (const [, s] of np6) assert.equal(s.type, 'ipv6_addr . inet_proto . inet_service');
    assert.ok(np6.some(([, s]) => s.elements.includes('fd00:10:200:2::12 . 6 . 81')), JSON.stringify(np6));
    const lines = rulesOf(r);
    assert.ok(lines.some((l) => /^meta l4proto 6 ip6 daddr \. meta l4proto \. th dport @np6-[0-9a-f]{12} meta mark/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => /^ip6 daddr \. meta l4proto \. th dport != @np6-[0-9a-f]{12} drop$/.test(l)), lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes('meta nfproto != ipv4')), 'dual stack: IPv6 packets go by the np6 set');
  });

  it('ICMPv6 type/code, ipVersion 6', () => {
    const m = dualStackModel([
      gnp({
        selector: "pod == 'a'",
        ingress: [
          { action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128, code: 0 } },
          { action: 'Deny', protocol: 'ICMPv6', notICMP: { type: 129 } },
          { action: 'Allow', ipVersion: 6, protocol: 'TCP', source: { selector: "pod == 'b'" } },
          { action: 'Allow', protocol: 'ICMP', icmp: { type: 8 } },
        ],
      }),
    ]);
    const lines = rulesOf(compilePolicy(m, local9));
    // notICMP with protocol ICMPv6: only "ICMPv6 of another type" (a "not ICMPv6 at all" alternative,
    // `meta l4proto 58 meta l4proto != 58`, could never match an ICMPv6 rule's packet).
    assert.deepEqual(lines.slice(0, 2), [`meta l4proto 58 icmpv6 type 128 icmpv6 code 0 ${ALLOW}`, 'meta l4proto 58 icmpv6 type != 129 drop']);
    assert.match(lines[2]!, /^meta nfproto ipv6 meta l4proto 6 ip6 saddr @s6-[0-9a-f]{12} meta mark/);
    assert.equal(lines.length, 4, 'ipVersion 6 drops the IPv4 selector alternative');
    assert.equal(lines[3], `meta l4proto 1 icmp type 8 ${ALLOW}`);
  });

  it('no compiled rule can never match: the rule\'s protocol is not matched twice nor contradicted (notPorts, notICMP)', () => {
    const models = [
      ...caseFiles(CASES).map((f) => [f, modelOf(f)] as const),
      ...DUAL_CASES.map((d) => [d.name, dualStackModel(d.resources)] as const),
      ['crafted, IPv4', craftedModel()] as const,
      ['crafted, dual stack', craftedModel(true)] as const,
    ];
    for (const [name, m] of models) {
      for (const line of rulesOf(compilePolicy(m, local9))) {
        const is = [...line.matchAll(/meta l4proto (\d+)(?= )/g)].map((x) => x[1]!);
        const isNot = [...line.matchAll(/meta l4proto != (?:\{ ([^}]*) \}|(\d+))/g)].flatMap((x) => (x[1] ?? x[2]!).split(', '));
        assert.equal(new Set(is).size, is.length, `${name}: protocol matched twice: ${line}`);
        assert.ok(!is.some((p) => isNot.includes(p)), `${name}: a rule that can never match: ${line}`);
      }
    }
    const crafted = rulesOf(compilePolicy(craftedModel(), local9)).map((l) => l.replace(/@np-[0-9a-f]{12}/, '@np-X'));
    assert.deepEqual(crafted, [
      `meta l4proto 6 th dport != { 80 } ${ALLOW}`,
      // UDP, notPorts [serve-80-tcp, 53]: port not 53 and (an IPv6 packet, which no IPv4 named-port set holds, or not in the set)
      `meta l4proto 17 th sport != { 53 } meta nfproto != ipv4 ${ALLOW}`,
      `meta l4proto 17 th sport != { 53 } ip saddr . meta l4proto . th sport != @np-X ${ALLOW}`,
      // no protocol: a packet without ports is outside any notPorts
      `meta l4proto != { 6, 17, 132, 136 } ${ALLOW}`,
      `meta nfproto != ipv4 ${ALLOW}`,
      `ip daddr . meta l4proto . th dport != @np-X ${ALLOW}`,
      'meta l4proto 1 icmp type != 8 drop',
      'meta l4proto 1 icmp type != 3 drop',
      'meta l4proto 1 icmp code != 1 drop',
      'meta l4proto 58 icmpv6 type != 128 drop',
      'meta l4proto 58 icmpv6 code != 0 drop',
      // TCP and notICMP: every TCP packet is "not that ICMP"
      'meta l4proto 6 drop',
      // no protocol: not ICMP at all, or ICMP of another type
      'meta l4proto != 1 drop',
      'meta l4proto 1 icmp type != 8 drop',
      `meta l4proto 1 icmp type 8 ${ALLOW}`,
      `meta l4proto 1 ${ALLOW}`,
    ]);
  });

  it('an IPv4-only model compiles as before: no IPv6 sets, no ip6 matches, no NDP rule', () => {
    for (const f of caseFiles(CASES)) {
      const s = bare(compilePolicy(modelOf(f), local9));
      assert.doesNotMatch(s, /ip6 |s6-|np6-|ipv6_addr|icmpv6/, f);
    }
  });
});

describe('PolicyCompiler keeps results between compiles (pure)', () => {
  const check = (c: PolicyCompiler, s: Situation, what: string) => {
    const warm = c.compile(s.model, s.local, s.opts);
    const cold = compilePolicy(s.model, s.local, s.opts);
    assert.deepStrictEqual(warm.table, cold.table, what);
    assert.equal(warm.script, cold.script, what);
    assert.deepEqual([warm.chains, warm.sets, warm.rules, warm.unknown], [cold.chains, cold.sets, cold.rules, cold.unknown], what);
  };

  it('each change, from the same start: what a fresh compiler gives', () => {
    for (const ch of [...CHANGES, ...MORE_CHANGES]) {
      const c = new PolicyCompiler();
      const s = baseSituation();
      check(c, s, 'base');
      ch.apply(s);
      check(c, s, ch.name);
      check(c, baseSituation(), `${ch.name}, undone`);
    }
  });

  it('every change applied one after another, then every truth-table case in turn', () => {
    const c = new PolicyCompiler();
    const s = baseSituation();
    check(c, s, 'base');
    for (const ch of [...CHANGES, ...MORE_CHANGES]) {
      ch.apply(s);
      check(c, s, `after ${ch.name}`);
    }
    for (const f of caseFiles(CASES)) check(c, { model: modelOf(f), local: local9, opts: {} }, f);
  });

  it('IPv6: endpoints becoming dual stack one by one, every dual-stack case, network sets, back to IPv4 only', () => {
    const c = new PolicyCompiler();
    const s = baseSituation();
    check(c, s, 'base');
    const dual = dualStackModel([]);
    for (let i = 0; i < s.model.endpoints.length; i += 4) {
      s.model.endpoints[i]!.ips = dual.endpoints[i]!.ips;
      check(c, s, `endpoint ${i} dual stack`);
    }
    for (const dc of DUAL_CASES) {
      const m = dualStackModel(dc.resources);
      check(c, { model: m, local: local9, opts: {} }, dc.name);
      m.endpoints[1]!.ips = [m.endpoints[1]!.ips[0]!];
      check(c, { model: m, local: local9, opts: {} }, `${dc.name}, x/b IPv4 only`);
    }
    for (const f of caseFiles(CASES).slice(0, 8)) check(c, { model: dualStackModel(calicoResources(loadCase(f).policies)), local: local9, opts: {} }, `${f} dual stack`);
    const only6 = dualStackModel([]);
    for (const ep of only6.endpoints) ep.ips = [ep.ips[1]!];
    only6.policies.push(...baseSituation().model.policies);
    check(c, { model: only6, local: local9, opts: {} }, 'IPv6 only');
    check(c, baseSituation(), 'back to IPv4 only');
    const s2 = baseSituation();
    s2.model.networkSets.push({ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkSet', metadata: { name: 'v6', labels: { role: 'v6' } }, spec: { nets: ['fd00:99::/64'] } } as never);
    check(c, s2, 'a network set with IPv6 nets makes the model dual stack');
    check(c, baseSituation(), 'and back');
  });

  it('a model rebuilt from scratch with equal content compiles to the same objects (nothing to diff)', () => {
    const c = new PolicyCompiler();
    const a = c.compile(baseSituation().model, baseSituation().local).table;
    const b = c.compile(baseSituation().model, baseSituation().local).table;
    for (const [name, lines] of a.chains) assert.equal(b.chains.get(name), lines, `chain ${name} was rebuilt`);
    for (const [name, set] of a.sets) if (!name.startsWith('wl-')) assert.equal(b.sets.get(name), set, `set ${name} was rebuilt`);
  });
});

describe('compilePolicy scripts pass `nft -c -f`', { skip: liveSkip }, () => {
  const NS = `tortie-t${randomBytes(3).toString('hex')}-pcc`;
  before(() => {
    assert.equal(spawnSync(IP, ['netns', 'add', NS]).status, 0);
  });
  after(() => {
    spawnSync(IP, ['netns', 'del', NS]);
  });
  it('every truth-table case, all nine e2e pods local', () => {
    const files = caseFiles(CASES);
    assert.ok(files.length >= 20);
    for (const f of files) {
      const r = compilePolicy(modelOf(f), local9, { endpointToHostAction: 'Drop' });
      const c = spawnSync(IP, ['netns', 'exec', NS, NFT, '-c', '-f', '-'], { input: r.script, encoding: 'utf8' });
      assert.equal(c.status, 0, `${f}: ${c.stderr}`);
    }
    for (const dual of [false, true]) {
      const c = spawnSync(IP, ['netns', 'exec', NS, NFT, '-c', '-f', '-'], { input: compilePolicy(craftedModel(dual), local9).script, encoding: 'utf8' });
      assert.equal(c.status, 0, `notPorts/notICMP decided by the protocol${dual ? ', dual stack' : ''}: ${c.stderr}`);
    }
    assert.equal(spawnSync(IP, ['netns', 'exec', NS, NFT, 'list', 'ruleset'], { encoding: 'utf8' }).stdout.trim(), '');
  });
  it('IPv6: every dual-stack case and every truth-table case on dual-stack pods', () => {
    const models = [...DUAL_CASES.map((d) => [d.name, dualStackModel(d.resources)] as const), ...caseFiles(CASES).map((f) => [f, dualStackModel(calicoResources(loadCase(f).policies))] as const)];
    const icmp = dualStackModel([{ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'icmp' }, spec: { selector: 'all()', ingress: [{ action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128, code: 0 } }, { action: 'Deny', protocol: 'ICMPv6', notICMP: { type: 129, code: 1 }, source: { notNets: ['fd00::/8', '10.0.0.0/8'], selector: 'all()' } }, { action: 'Allow', ipVersion: 6, source: { notSelector: 'all()', notPorts: ['serve-80-tcp', 90] } }] } } as never]);
    for (const [name, m] of [...models, ['icmpv6', icmp] as const]) {
      const r = compilePolicy(m, local9, { endpointToHostAction: 'Drop' });
      assert.match(r.script, /icmpv6 type \{ 130/, name);
      const c = spawnSync(IP, ['netns', 'exec', NS, NFT, '-c', '-f', '-'], { input: r.script, encoding: 'utf8' });
      assert.equal(c.status, 0, `${name}: ${c.stderr}`);
    }
  });
});

describe('localEndpointsOf (pure)', () => {
  it('keeps this node\'s endpoints with an interface, keyed NS/POD', () => {
    const wep = (name: string, ns: string, spec: Record<string, unknown>) => ({ apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name, namespace: ns }, spec });
    const got = localEndpointsOf(
      [
        wep('n1-k8s-a-eth0', 'x', { node: 'n1', pod: 'a', interfaceName: 'calib' }),
        wep('n2-k8s-b-eth0', 'x', { node: 'n2', pod: 'b', interfaceName: 'calic' }),
        wep('n1-k8s-c-eth0', 'y', { node: 'n1', pod: 'c' }),
        wep('w', 'z', { node: 'n1', interfaceName: 'calia' }),
      ],
      'n1',
    );
    assert.deepEqual(got, [
      { key: 'z/w', interfaceName: 'calia' },
      { key: 'x/a', interfaceName: 'calib' },
    ]);
  });
});
