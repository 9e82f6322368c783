// cluster check's logic on hand-made facts: a healthy 3-node cluster gives nothing; each change
// gives exactly the finding it should, with its evidence.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { type ClusterFacts, type Finding, encapOverhead, findProblems } from './cluster-findings.js';

const NOW = new Date('2026-12-04T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();
const NODES = ['n1', 'n2', 'n3'];
const IP = (i: number) => `10.0.0.${11 + i}`;
const BLOCK = (i: number) => `10.233.${64 + i}.0/24`;

type Obj = Record<string, unknown>;
const res = (kind: string, name: string, spec: Obj, status?: Obj): Resource =>
  ({ apiVersion: 'projectcalico.org/v3', kind, metadata: { name }, spec, ...(status ? { status } : {}) }) as Resource;

function status(i: number): Resource {
  const node = NODES[i]!;
  const peers = NODES.flatMap((_, j) => (j === i ? [] : [{ peerIP: IP(j), type: 'NodeMesh', state: 'Established', since: '11:00:00' }]));
  const routes = NODES.map((_, j) =>
    j === i
      ? { type: 'FIB', destination: BLOCK(j), gateway: 'blackhole', interface: '', learnedFrom: { sourceType: 'Static' } }
      : { type: 'FIB', destination: BLOCK(j), gateway: IP(j), interface: 'eth0', learnedFrom: { sourceType: 'NodeMesh', peerIP: IP(j) } },
  );
  return res('CalicoNodeStatus', node, { node, classes: ['Agent', 'BGP', 'Routes'], updatePeriodSeconds: 10 }, {
    lastUpdated: ago(2),
    agent: { birdV4: { state: 'Ready' } },
    bgp: { numberEstablishedV4: 2, numberNotEstablishedV4: 0, peersV4: peers },
    routes: { routesV4: routes },
    tortie: {
      nodeIP: IP(i),
      agentVersion: 'v0.1.0',
      restarts: 0,
      lastRestarts: [],
      ready: true,
      notReadyReasons: [],
      readinessFlips: [],
      poolEnv: { CALICO_IPV4POOL_IPIP: 'Never' },
      poolDrift: [],
      felixEnv: { FELIX_HEALTHENABLED: 'true' },
      networkingBackend: 'bird',
      birdSettings: { asNumber: '64512', listenPort: '179', peers: 'mesh 2, global 0, node 0' },
      mtu: { pod: 1500, underlay: 1500, underlayInterface: 'eth0', podInterfaces: [1500] },
      kernel: { 'net.ipv4.ip_forward': '1' },
      nftTables: ['inet tortie-filter', 'ip tortie-nat'],
      policy: { passes: 5, repairs: 0, lastRepairs: [] },
      routeChanges: [],
      bgpPeerReasons: {},
    },
  });
}

function healthy(): ClusterFacts {
  return {
    now: NOW,
    windowMs: 600_000,
    pools: [res('IPPool', 'default-pool', { cidr: '10.233.64.0/18', blockSize: 24, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true })],
    nodes: NODES.map((n, i) => res('Node', n, { bgp: { ipv4Address: `${IP(i)}/24` } })),
    statuses: NODES.map((_, i) => status(i)),
    felixConfigs: [res('FelixConfiguration', 'default', { logSeverityScreen: 'Info' })],
    blocks: NODES.map((n, i) => ({ cidr: BLOCK(i), affinity: `host:${n}` })),
    affinities: NODES.map((n, i) => ({ node: n, cidr: BLOCK(i) })),
    ipam: { leaked: [], multipleOwners: [], notInPool: [], noAllocation: [] },
  };
}

/** The tortie facts (or the status) of node i, to change in place. */
const t = (f: ClusterFacts, i: number) => (f.statuses[i]!.status as { tortie: Obj }).tortie;
const st = (f: ClusterFacts, i: number) => f.statuses[i]!.status as Obj & { bgp: { peersV4: Obj[] }; routes: { routesV4: Obj[] } };

function only(f: ClusterFacts, kind: Finding['kind']): Finding[] {
  const got = findProblems(f);
  assert.ok(got.length > 0, `expected a ${kind} finding, got none`);
  assert.deepEqual([...new Set(got.map((x) => x.kind))], [kind], JSON.stringify(got, null, 2));
  return got;
}

describe('cluster check findings', () => {
  it('a healthy cluster has none', () => {
    assert.deepEqual(findProblems(healthy()), []);
  });

  it("a deleted node's CalicoNodeStatus (stale, its block gone) is not a finding", () => {
    const f = healthy();
    f.nodes = f.nodes.slice(0, 2);
    (f.statuses[2]!.status as Obj).lastUpdated = ago(3600);
    f.blocks = f.blocks.slice(0, 2);
    f.affinities = f.affinities.slice(0, 2);
    assert.deepEqual(findProblems(f), []);
  });

  it('pool drift: the env the agent reports against the pool, nodes grouped', () => {
    const f = healthy();
    const d = { variable: 'CALICO_IPV4POOL_IPIP', envValue: 'Off', pool: 'default-pool', field: 'ipipMode', expected: 'Never', actual: 'Always', message: '' };
    t(f, 0).poolDrift = [d];
    t(f, 2).poolDrift = [d];
    const [x] = only(f, 'pool-drift');
    assert.equal(x!.severity, 'error');
    assert.deepEqual(x!.nodes, ['n1', 'n3']);
    assert.match(x!.evidence.join('\n'), /CALICO_IPV4POOL_IPIP=Off[\s\S]*ipipMode Always/);
  });

  it('routes: a block held by a second node and routed through it', () => {
    const f = healthy();
    st(f, 2).routes.routesV4.push({ type: 'FIB', destination: BLOCK(0), gateway: '', interface: 'califault0', learnedFrom: { sourceType: 'Kernel' } });
    st(f, 1).routes.routesV4.push({ type: 'FIB', destination: BLOCK(0), gateway: IP(2), interface: 'eth0', learnedFrom: { sourceType: 'NodeMesh', peerIP: IP(2) } });
    const got = only(f, 'routes');
    assert.equal(got.length, 1);
    assert.match(got[0]!.finding, /10\.233\.64\.0\/24 is advertised or routed by more than one node/);
    const ev = got[0]!.evidence.join('\n');
    assert.match(ev, /IPAM: 10\.233\.64\.0\/24 is affine to n1/);
    assert.match(ev, /n3 holds a route on its interface califault0/);
    assert.match(ev, /n2 routes it via 10\.0\.0\.13 \(n3\) dev eth0/);
    assert.deepEqual(got[0]!.nodes.sort(), ['n2', 'n3']);
  });

  it('routes: a next hop that changed within the window (not one that came or went with its block)', () => {
    const f = healthy();
    t(f, 1).routeChanges = [
      { at: ago(30), destination: BLOCK(0), from: IP(0), to: `${IP(0)},${IP(2)}` },
      { at: ago(20), destination: BLOCK(2), from: 'none', to: IP(2) },
    ];
    const [x] = only(f, 'routes');
    assert.equal(x!.severity, 'warning');
    assert.match(x!.finding, /next hop of 10\.233\.64\.0\/24 changed 1 time\(s\) in the last 10m \(on n2\)/);
    assert.match(x!.evidence[0]!, /^n2: 10\.0\.0\.11 → 10\.0\.0\.11,10\.0\.0\.13 \(30s ago\)$/);
    f.windowMs = 10_000;
    assert.deepEqual(findProblems(f), [], 'outside the window it is history');
  });

  it('restarts: two or more unclean restarts in the window, with the reasons', () => {
    const f = healthy();
    t(f, 1).restarts = 79;
    t(f, 1).lastRestarts = [
      { at: ago(50), reason: 'previous agent (pid 1) stopped cleanly', clean: true },
      { at: ago(40), reason: 'previous agent (pid 2) ended without a clean stop', clean: false },
    ];
    assert.deepEqual(findProblems(f), [], 'one crash and a clean restart are not a loop');
    (t(f, 1).lastRestarts as Obj[]).push({ at: ago(10), reason: 'previous agent (pid 3) ended without a clean stop', clean: false });
    const [x] = only(f, 'restarts');
    assert.match(x!.finding, /n2 restarted 2 times .* \(79 restarts in all\)/);
    assert.match(x!.evidence.join('\n'), /pid 3/);
  });

  it('restarts: BIRD started again under its agent, twice in the window', () => {
    const f = healthy();
    t(f, 2).birdRestarts = [{ at: ago(900), reason: 'old' }, { at: ago(20), reason: 'BIRD started again (boot b2, previous b1)' }];
    assert.deepEqual(findProblems(f), []);
    (t(f, 2).birdRestarts as Obj[]).push({ at: ago(5), reason: 'BIRD started again (boot b3, previous b2)' });
    const [x] = only(f, 'restarts');
    assert.match(x!.finding, /BIRD on n3 restarted 2 times/);
  });

  it('restarts: readiness flips, except those explained by BGP sessions', () => {
    const f = healthy();
    t(f, 0).readinessFlips = [
      { at: ago(30), ready: false, reason: 'routes: BGP not established with 10.0.0.12 (Active)' },
      { at: ago(25), ready: true, reason: 'ready again' },
      { at: ago(20), ready: false, reason: 'routes: BGP not established with 10.0.0.12 (Active)' },
    ];
    assert.deepEqual(findProblems(f), []);
    (t(f, 0).readinessFlips as Obj[]).push({ at: ago(5), ready: false, reason: 'policy: cannot program policy' }, { at: ago(3), ready: false, reason: 'datastore: unreachable' });
    const [x] = only(f, 'restarts');
    assert.match(x!.finding, /n1 went from ready to not ready 2 times/);
  });

  it('mtu: pod MTU + encapsulation over the underlay, and nodes that disagree', () => {
    const f = healthy();
    (f.pools[0]!.spec as Obj).ipipMode = 'Always';
    assert.deepEqual(encapOverhead(f.pools).bytes, 20);
    const got = only(f, 'mtu');
    assert.equal(got.length, 3, 'every node: 1500 + 20 > 1500 (the seed: no mtu in the conflist with IP-in-IP)');
    assert.match(got[0]!.finding, /1500 \+ 20 > 1500/);
    const g = healthy();
    t(g, 2).mtu = { pod: 1500, underlay: 1400, underlayInterface: 'eth0', podInterfaces: [] };
    const mtu = only(g, 'mtu');
    assert.deepEqual(mtu.map((x) => x.severity), ['error', 'warning']);
    assert.match(mtu[1]!.evidence.join(' '), /n3: 1400/);
  });

  it('odd node: a setting that differs from the majority, named; FelixConfiguration in force counts', () => {
    const f = healthy();
    (t(f, 2).felixEnv as Obj).FELIX_DEFAULTENDPOINTTOHOSTACTION = 'Drop';
    let [x] = only(f, 'odd-node');
    assert.deepEqual(x!.nodes, ['n3']);
    assert.deepEqual(x!.evidence, ['env FELIX_DEFAULTENDPOINTTOHOSTACTION: Drop (the other 2: (unset))']);
    const g = healthy();
    g.felixConfigs = [...g.felixConfigs, res('FelixConfiguration', 'node.n1', { logSeverityScreen: 'Debug' })];
    t(g, 1).kernel = { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.all.rp_filter': '1' };
    const got = only(g, 'odd-node');
    assert.deepEqual(got.map((y) => y.nodes[0]), ['n1', 'n2']);
    [x] = got;
    assert.match(x!.evidence[0]!, /FelixConfiguration logSeverityScreen: "Debug"/);
  });

  it("odd node: BIRD's configuration (AS number, peers) unlike the others", () => {
    const f = healthy();
    t(f, 0).birdSettings = { asNumber: '64513', listenPort: '179', peers: 'mesh 2, global 1, node 0' };
    const [x] = only(f, 'odd-node');
    assert.deepEqual(x!.evidence, ['BIRD asNumber: 64513 (the other 2: 64512)', 'BIRD peers: mesh 2, global 1, node 0 (the other 2: mesh 2, global 0, node 0)']);
    delete t(f, 0).birdSettings;
    assert.deepEqual(findProblems(f), [], 'a node that does not report them yet is not different');
  });

  it('odd node: an operator table on one node is not a difference; a missing Tortie table is', () => {
    const f = healthy();
    t(f, 0).nftTables = ['inet lab-fault-bgp', 'inet tortie-filter', 'ip tortie-nat'];
    assert.deepEqual(findProblems(f), []);
    t(f, 0).nftTables = ['ip tortie-nat'];
    const [x] = only(f, 'odd-node');
    assert.match(x!.evidence[0]!, /Tortie's nftables tables: ip tortie-nat \(the other 2: inet tortie-filter, ip tortie-nat\)/);
  });

  it('bgp: sessions not Established with since and BIRD\'s reason; the not-ready node is part of it', () => {
    const f = healthy();
    st(f, 2).bgp.peersV4[0] = { peerIP: IP(0), type: 'NodeMesh', state: 'Active', since: '11:59:00' };
    t(f, 2).bgpPeerReasons = { [IP(0)]: 'Socket: Connection refused' };
    t(f, 2).ready = false;
    t(f, 2).notReadyReasons = ['routes: BGP not established with 10.0.0.11 (Active)'];
    t(f, 2).nftTables = ['inet lab-fault-bgp', 'inet tortie-filter', 'ip tortie-nat'];
    const [x] = only(f, 'bgp');
    assert.match(x!.evidence[0]!, /n3 → 10\.0\.0\.11 \(n1\): Active since 11:59:00, BIRD: Socket: Connection refused/);
    assert.match(x!.evidence.join('\n'), /n3 not ready: routes/);
    assert.match(x!.evidence.join('\n'), /not Tortie's: inet lab-fault-bgp/);
    const g = healthy();
    ((g.statuses[1]!.status as Obj).agent as Obj).birdV4 = { state: 'NotReady' };
    assert.match(only(g, 'bgp')[0]!.evidence[0]!, /BIRD on n2 is not running/);
  });

  it('ipam: leaks, duplicates, and affinities of nodes that no longer exist (ipam check\'s report)', () => {
    const f = healthy();
    f.ipam.leaked = [{ ip: '10.233.66.5', handle: 'h1', attrs: { node: 'n3' }, block: BLOCK(2) }];
    f.ipam.multipleOwners = [{ ip: '10.233.64.2', owners: ['Workload(a/b)', 'Workload(c/d)'] }];
    f.affinities = [...f.affinities, { node: 'gone', cidr: '10.233.99.0/24' }];
    const got = only(f, 'ipam');
    assert.equal(got.length, 3);
    const all = got.map((x) => x.finding).join('\n');
    for (const re of [/1 IP address\(es\) allocated with no workload/, /1 IP address\(es\) used by more than one owner/, /1 block affinit\(ies\) of nodes that no longer exist/]) assert.match(all, re);
    assert.match(got.find((x) => /leaked/.test(x.finding))!.evidence[0]!, /10\.233\.66\.5 in block 10\.233\.66\.0\/24, handle h1, node=n3/);
  });

  it('policy repairs within the window', () => {
    const f = healthy();
    t(f, 0).policy = { passes: 9, repairs: 2, lastRepairs: [{ at: ago(700), reason: 'old' }, { at: ago(5), reason: "the kernel's inet tortie-filter was not as written; rewritten" }] };
    const [x] = only(f, 'policy-repair');
    assert.match(x!.finding, /repaired 1 time/);
  });

  it('node: stale facts, no facts, not ready for other reasons', () => {
    const f = healthy();
    (f.statuses[0]!.status as Obj).lastUpdated = ago(120);
    f.statuses = f.statuses.slice(0, 2);
    t(f, 1).ready = false;
    t(f, 1).notReadyReasons = ['policy: cannot program policy'];
    t(f, 1).kernel = { 'net.ipv4.ip_forward': '0' };
    const got = only(f, 'node');
    assert.deepEqual(got.map((x) => x.finding).sort(), ['IPv4 forwarding is off on n2', 'No CalicoNodeStatus from n3', 'n1 has not reported for 120s', 'n2 is not ready']);
  });
});
