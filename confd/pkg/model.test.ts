import { test } from 'node:test';
import assert from 'node:assert/strict';

import { type BgpModel, buildBgpModel, displayAsNumber, durationSeconds, hashRouterId } from './model.js';
import {
  dualStackScenario,
  globalPeersScenario,
  inputFor,
  kitchenSinkScenario,
  meshDisabledScenario,
  nodePeersScenario,
  routeReflectorScenario,
  seedScenario,
} from '../../testing/confd-scenarios.js';
import { SEED_ADDRESSES, SEED_NODE_NAMES, res, seedBgpConfiguration, seedNode, seedNodes, seedPool } from '../../testing/seed-fixture.js';

const names = (m: BgpModel) => m.peers.map((p) => p.name);
const peer = (m: BgpModel, name: string) => {
  const p = m.peers.find((x) => x.name === name);
  assert.ok(p, `${name} in ${names(m).join(', ')}`);
  return p;
};

test('seed: each of the five nodes has the four others as mesh peers, never itself', () => {
  const s = seedScenario();
  for (const n of SEED_NODE_NAMES) {
    const m = buildBgpModel(inputFor(s, n));
    const mine = SEED_ADDRESSES[n];
    assert.equal(m.routerId, mine);
    assert.deepEqual(m.ipv4, { address: mine, cidr: '10.0.0.0/16' });
    assert.equal(m.peers.length, 4, n);
    assert.ok(m.peers.every((p) => p.type === 'mesh' && p.address !== mine && p.family === 4));
    assert.deepEqual(
      names(m),
      Object.values(SEED_ADDRESSES)
        .filter((a) => a !== mine)
        .map((a) => `Mesh_${a.replace(/\./g, '_')}`),
    );
    // Sessions are one-way: exactly one side of each pair is passive (the lower address).
    for (const p of m.peers) assert.equal(p.passive, p.address > mine);
    assert.deepEqual(m.notes, []);
  }
  const w2 = buildBgpModel(inputFor(s, 'playcekube-worker02'));
  assert.deepEqual(w2.blocks, ['10.233.106.0/24']);
  assert.deepEqual(w2.pools, [
    {
      name: 'default-pool',
      cidr: '10.233.64.0/18',
      family: 4,
      natOutgoing: true,
      ipipMode: 'Always',
      vxlanMode: 'Never',
      disableBGPExport: false,
      disabled: false,
    },
  ]);
  assert.deepEqual(peer(w2, 'Mesh_10_0_0_11'), {
    name: 'Mesh_10_0_0_11',
    type: 'mesh',
    family: 4,
    address: '10.0.0.11',
    port: undefined,
    asNumber: 64512,
    password: undefined,
    sourceAddress: '10.0.0.15',
    passive: false,
    rrClient: false,
    gracefulRestartTime: undefined,
    peerNode: 'playcekube-master01',
    origin: 'node-to-node mesh',
  });
  assert.equal(w2.asNumber, 64512);
  assert.equal(w2.listenPort, 179);
  assert.equal(w2.meshEnabled, true);
  assert.equal(w2.routeReflectorClusterId, undefined);
});

test('mesh disabled: no peers', () => {
  const s = meshDisabledScenario();
  for (const n of SEED_NODE_NAMES) {
    const m = buildBgpModel(inputFor(s, n));
    assert.equal(m.meshEnabled, false);
    assert.deepEqual(m.peers, []);
  }
});

test('global BGPPeers: on every node, with password and port', () => {
  const s = globalPeersScenario();
  const m = buildBgpModel(inputFor(s, 'playcekube-master02'));
  assert.deepEqual(names(m), ['Mesh_10_0_0_11', 'Mesh_10_0_0_13', 'Mesh_10_0_0_14', 'Mesh_10_0_0_15', 'Global_10_0_0_1', 'Global_10_0_0_5_port_1790']);
  const tor = peer(m, 'Global_10_0_0_1');
  assert.equal(tor.type, 'global');
  assert.equal(tor.asNumber, 65001);
  assert.equal(tor.password, 'tor pass #2');
  assert.equal(tor.sourceAddress, '10.0.0.12');
  assert.equal(tor.passive, false, 'not a Calico node: never passive');
  assert.equal(tor.origin, 'BGPPeer tor');
  const alt = peer(m, 'Global_10_0_0_5_port_1790');
  assert.equal(alt.port, 1790);
  assert.equal(alt.address, '10.0.0.5');
});

test('a global peer whose address is this node is left out', () => {
  const s = seedScenario();
  s.bgpPeers = [res('BGPPeer', 'to-master01', { peerIP: '10.0.0.11', asNumber: 64512 })];
  const m1 = buildBgpModel(inputFor(s, 'playcekube-master01'));
  assert.ok(!names(m1).includes('Global_10_0_0_11'));
  assert.ok(m1.notes.some((n) => /peer 10\.0\.0\.11 is this node/.test(n)));
  // On the other nodes the explicit peer replaces the mesh session to the same address.
  const m2 = buildBgpModel(inputFor(s, 'playcekube-master02'));
  assert.ok(names(m2).includes('Global_10_0_0_11'));
  assert.ok(!names(m2).includes('Mesh_10_0_0_11'));
  assert.equal(peer(m2, 'Global_10_0_0_11').peerNode, 'playcekube-master01');
  assert.ok(m2.notes.some((n) => /Mesh_10_0_0_11 .* not configured: Global_10_0_0_11/.test(n)));
});

test('per-node BGPPeer (node) and nodeSelector + peerSelector, with reverse peering', () => {
  const s = nodePeersScenario();
  const w2 = buildBgpModel(inputFor(s, 'playcekube-worker02'));
  assert.deepEqual(names(w2), ['Node_10_0_0_2', 'Node_10_0_0_11', 'Node_10_0_0_12', 'Node_10_0_0_13']);
  const tor = peer(w2, 'Node_10_0_0_2');
  assert.equal(tor.type, 'node');
  assert.equal(tor.asNumber, 65002);
  assert.equal(tor.gracefulRestartTime, 120);
  assert.equal(tor.keepaliveTime, 10);
  assert.equal(peer(w2, 'Node_10_0_0_11').passive, false, 'worker02 (greater) connects');
  // The worker-only peer is not on worker01.
  const w1 = buildBgpModel(inputFor(s, 'playcekube-worker01'));
  assert.deepEqual(names(w1), ['Node_10_0_0_11', 'Node_10_0_0_12', 'Node_10_0_0_13']);
  // Masters are not selected by the nodeSelector, but are selected by the peerSelector: they get
  // the reverse sessions to the workers, passive since the workers' addresses are greater.
  const m1 = buildBgpModel(inputFor(s, 'playcekube-master01'));
  assert.deepEqual(names(m1), ['Node_10_0_0_14', 'Node_10_0_0_15']);
  assert.ok(m1.peers.every((p) => p.passive && p.origin === 'BGPPeer workers-to-masters (reverse)'));
  // reversePeering: Manual → no reverse sessions, and no passive side.
  s.bgpPeers[1].spec!.reversePeering = 'Manual';
  assert.deepEqual(names(buildBgpModel(inputFor(s, 'playcekube-master01'))), []);
  const w2m = buildBgpModel(inputFor(s, 'playcekube-worker02'));
  assert.ok(w2m.peers.every((p) => !p.passive));
});

test('route reflector: RR out of the mesh, rr client towards its clients', () => {
  const s = routeReflectorScenario(false);
  const rr = buildBgpModel(inputFor(s, 'playcekube-master01'));
  assert.equal(rr.routeReflectorClusterId, '224.0.0.1');
  assert.deepEqual(names(rr), ['Node_10_0_0_12', 'Node_10_0_0_13', 'Node_10_0_0_14', 'Node_10_0_0_15']);
  assert.ok(rr.peers.every((p) => p.rrClient && p.passive && p.asNumber === 64512));
  for (const n of SEED_NODE_NAMES.slice(1)) {
    const m = buildBgpModel(inputFor(s, n));
    assert.deepEqual(names(m), ['Node_10_0_0_11'], n);
    assert.equal(m.peers[0].rrClient, false);
    assert.equal(m.peers[0].peerNode, 'playcekube-master01');
  }
  // With the mesh on: clients mesh among themselves, never with the RR; the RR has no mesh.
  const sm = routeReflectorScenario(true);
  const rr2 = buildBgpModel(inputFor(sm, 'playcekube-master01'));
  assert.ok(rr2.peers.every((p) => p.type === 'node'));
  const c2 = buildBgpModel(inputFor(sm, 'playcekube-master02'));
  assert.deepEqual(names(c2), ['Mesh_10_0_0_13', 'Mesh_10_0_0_14', 'Mesh_10_0_0_15', 'Node_10_0_0_11']);
  // Two RRs of the same cluster do not treat each other as clients; of different clusters they do.
  for (const [cluster, expectClient] of [
    ['224.0.0.1', false],
    ['224.0.0.2', true],
  ] as const) {
    const t = routeReflectorScenario(false);
    t.nodes[1] = seedNode('playcekube-master02', { bgp: { routeReflectorClusterID: cluster }, labels: { 'route-reflector': 'true' } });
    const a = buildBgpModel(inputFor(t, 'playcekube-master01'));
    assert.equal(peer(a, 'Node_10_0_0_12').rrClient, expectClient, cluster);
    assert.equal(peer(a, 'Node_10_0_0_13').rrClient, true);
  }
  // eBGP peers are never rr clients.
  const e = routeReflectorScenario(false);
  e.nodes[4] = seedNode('playcekube-worker02', { bgp: { asNumber: 65099 } });
  assert.equal(peer(buildBgpModel(inputFor(e, 'playcekube-master01')), 'Node_10_0_0_15').rrClient, false);
});

test('AS number inheritance: node, node.<name>, default, 64512', () => {
  const base = { thisNode: 'playcekube-worker02', ipPools: [seedPool()] };
  const none = buildBgpModel({ ...base, nodes: seedNodes(), bgpConfigurations: [] });
  assert.equal(none.asNumber, 64512);
  assert.equal(none.asNumberSource, 'builtin');
  assert.equal(displayAsNumber(none), '(64512)');
  const dflt = buildBgpModel({ ...base, nodes: seedNodes(), bgpConfigurations: [res('BGPConfiguration', 'default', { asNumber: 65000 })] });
  assert.equal(dflt.asNumber, 65000);
  assert.equal(dflt.asNumberSource, 'defaultConfiguration');
  assert.equal(displayAsNumber(dflt), '(65000)');
  assert.ok(dflt.peers.every((p) => p.asNumber === 65000), 'mesh peers inherit too');
  const perNode = buildBgpModel({
    ...base,
    nodes: seedNodes(),
    bgpConfigurations: [res('BGPConfiguration', 'default', { asNumber: 65000 }), res('BGPConfiguration', 'node.playcekube-worker02', { asNumber: 65005 })],
  });
  assert.equal(perNode.asNumber, 65005);
  assert.equal(perNode.asNumberSource, 'nodeConfiguration');
  const nodes = seedNodes();
  nodes[4] = seedNode('playcekube-worker02', { bgp: { asNumber: '1.10' } });
  nodes[0] = seedNode('playcekube-master01', { bgp: { asNumber: 65011 } });
  const own = buildBgpModel({ ...base, nodes, bgpConfigurations: [seedBgpConfiguration()] });
  assert.equal(own.asNumber, 65546, 'asdot 1.10');
  assert.equal(own.asNumberSource, 'node');
  assert.equal(displayAsNumber(own), '65546');
  assert.equal(peer(own, 'Mesh_10_0_0_11').asNumber, 65011, "a mesh peer's AS is that node's");
  assert.equal(peer(own, 'Mesh_10_0_0_12').asNumber, 64512);
});

test('passwords: secretKeyRef resolved, optional skipped; a peer whose password cannot be used is left out, the others stay', () => {
  const s = kitchenSinkScenario();
  const m = buildBgpModel(inputFor(s, 'playcekube-master01'));
  assert.ok(m.peers.filter((p) => p.type === 'mesh').every((p) => p.password === 'mesh-pass-1'));
  assert.equal(peer(m, 'Global_10_0_0_1').password, 'tor pass #2');
  assert.equal(peer(m, 'Global_10_0_0_3').password, undefined);
  assert.deepEqual(m.problems, []);

  // The mesh password cannot be resolved: the mesh peers are left out, every BGPPeer stays.
  const names = (x: BgpModel) => x.peers.map((p) => p.name);
  const noMesh = buildBgpModel({ ...inputFor(s, 'playcekube-master01'), secret: (n, k) => (k === 'mesh' ? undefined : s.secrets?.[n]?.[k]) });
  assert.deepEqual(names(noMesh), names(m).filter((n) => !n.startsWith('Mesh_')));
  assert.equal(noMesh.problems.length, 1);
  assert.match(
    noMesh.problems[0],
    /^BGPConfiguration default nodeMeshPassword: password secret "bgp-secrets" key "mesh" could not be resolved; the node-to-node mesh peers are left out of the BIRD configuration \(the other peers are not affected\)$/,
  );
  // No resolver at all: said so.
  const none = buildBgpModel({ ...inputFor(s, 'playcekube-master01'), secret: undefined });
  assert.ok(none.problems.some((p) => /key "mesh" could not be resolved \(no secret resolver was given\)/.test(p)), none.problems.join('\n'));
  // A resolver that says where it looked, and one that fails to read.
  const where = Object.assign(() => undefined, { where: (n: string, k: string) => `no file /s/${n}/${k}` });
  assert.ok(buildBgpModel({ ...inputFor(s, 'playcekube-master01'), secret: where }).problems.some((p) => /could not be resolved \(no file \/s\/bgp-secrets\/mesh\)/.test(p)));
  const failing = buildBgpModel({
    ...inputFor(s, 'playcekube-master01'),
    secret: () => {
      throw new Error('cannot read /s/bgp-secrets/mesh: EACCES');
    },
  });
  assert.ok(failing.problems.some((p) => /key "mesh" could not be read: cannot read \/s\/bgp-secrets\/mesh: EACCES/.test(p)));

  // One BGPPeer's secret is missing: that peer is left out, the other global peer and the mesh stay.
  const g = globalPeersScenario();
  const full = buildBgpModel(inputFor(g, 'playcekube-worker01'));
  g.secrets = {};
  const noTor = buildBgpModel(inputFor(g, 'playcekube-worker01'));
  assert.deepEqual(names(noTor), names(full).filter((n) => n !== 'Global_10_0_0_1'));
  assert.ok(names(noTor).includes('Global_10_0_0_5_port_1790'));
  assert.ok(names(noTor).some((n) => n.startsWith('Mesh_')));
  assert.equal(noTor.problems.length, 1);
  assert.match(noTor.problems[0], /^BGPPeer tor: password secret "bgp-secrets" key "tor" could not be resolved; its peerings are left out of the BIRD configuration/);
  (g.bgpPeers[1].spec as Record<string, unknown>).password = { secretKeyRef: { name: 'x', key: 'y', optional: true } };
  g.bgpPeers.splice(0, 1);
  const opt = buildBgpModel(inputFor(g, 'playcekube-worker01'));
  assert.equal(peer(opt, 'Global_10_0_0_5_port_1790').password, undefined);
  assert.ok(opt.notes.some((n) => /optional secret x\/y not found/.test(n)));
  assert.deepEqual(opt.problems, []);

  // Inline (test convenience) and values BIRD or the kernel cannot take: that peer left out, the other kept.
  const inline = seedScenario();
  const ok = res('BGPPeer', 'q', { peerIP: '10.0.0.8', asNumber: 65000 });
  inline.bgpPeers = [res('BGPPeer', 'p', { peerIP: '10.0.0.9', asNumber: 65000, password: 'inline-pw' })];
  assert.equal(peer(buildBgpModel(inputFor(inline, 'playcekube-worker02')), 'Global_10_0_0_9').password, 'inline-pw');
  for (const bad of ['has"quote', 'back\\slash', 'new\nline', 'x'.repeat(81), '']) {
    inline.bgpPeers = [res('BGPPeer', 'p', { peerIP: '10.0.0.9', asNumber: 65000, password: bad }), ok];
    const b = buildBgpModel(inputFor(inline, 'playcekube-worker02'));
    assert.ok(!names(b).includes('Global_10_0_0_9'), JSON.stringify(bad));
    assert.ok(names(b).includes('Global_10_0_0_8'), JSON.stringify(bad));
    assert.match(b.problems.join('\n'), /^BGPPeer p: the password (is empty|contains|is longer)/, JSON.stringify(bad));
  }
  // A BGPPeer that does not apply to this node does not need its secret.
  const elsewhere = seedScenario();
  elsewhere.bgpPeers = [res('BGPPeer', 'p', { node: 'playcekube-master01', peerIP: '10.0.0.9', asNumber: 65000, password: { secretKeyRef: { name: 'nope', key: 'k' } } })];
  assert.deepEqual(buildBgpModel(inputFor(elsewhere, 'playcekube-worker02')).problems, []);
});

test('peer options: port, local AS, next hop, TTL security, source address', () => {
  const m = buildBgpModel(inputFor(kitchenSinkScenario(), 'playcekube-master01'));
  const tor = peer(m, 'Global_10_0_0_1');
  assert.equal(tor.localAsNumber, 64600);
  assert.equal(tor.nextHop, 'keep', 'keepOriginalNextHop on an eBGP session');
  assert.equal(tor.ttlSecurity, 2);
  assert.equal(tor.allowLocalAs, 1);
  assert.equal(peer(m, 'Global_10_0_0_3').nextHop, 'self');
  assert.equal(peer(m, 'Global_10_0_0_3').sourceAddress, undefined);
  assert.equal(peer(m, 'Global_10_0_0_4').nextHop, 'keep');
  // master03 listens on 1179 (node.playcekube-master03): its mesh peers reach it there.
  assert.equal(peer(m, 'Mesh_10_0_0_13').port, 1179);
  assert.equal(peer(m, 'Mesh_10_0_0_13').name, 'Mesh_10_0_0_13', 'mesh names carry no port');
  assert.equal(peer(m, 'Mesh_10_0_0_13').gracefulRestartTime, 90);
  assert.equal(peer(m, 'Mesh_10_0_0_14').asNumber, 65010);
  const w2 = buildBgpModel(inputFor(kitchenSinkScenario(), 'playcekube-worker02'));
  assert.equal(w2.listenPort, 1179);
  assert.equal(w2.bindMode, 'NodeIP');
  assert.equal(w2.logSeverity, 'Debug');
  assert.equal(w2.programClusterRoutes, 'Disabled');
  assert.deepEqual(w2.ignoredInterfaces, ['docker*'], 'inherited from default');
  assert.deepEqual(w2.serviceCidrs, ['10.233.0.0/18', '192.0.2.0/24']);
  assert.deepEqual(w2.blocks, ['10.233.106.0/24', '10.240.7.0/26', '10.245.1.0/26', '10.246.1.0/26', '10.250.3.0/26']);
  assert.ok(w2.notes.some((n) => /10\.233\.106\.5\/32 is a single address/.test(n)));
  assert.deepEqual(
    w2.pools.map((p) => [p.name, p.ipipMode, p.vxlanMode, p.disableBGPExport]),
    [
      ['default-pool', 'Always', 'Never', false],
      ['flat-pool', 'Never', 'Never', false],
      ['private-pool', 'Never', 'Never', true],
      ['cross-subnet', 'CrossSubnet', 'Never', false],
      ['vxlan-pool', 'Never', 'Always', false],
    ],
  );
  // A peerIP with a peer AS left out is iBGP.
  const s = seedScenario();
  s.bgpPeers = [res('BGPPeer', 'p', { peerIP: '10.0.0.9' })];
  assert.equal(peer(buildBgpModel(inputFor(s, 'playcekube-worker02')), 'Global_10_0_0_9').asNumber, 64512);
});

test('dual stack: IPv6 mesh and peers beside IPv4', () => {
  const m = buildBgpModel(inputFor(dualStackScenario(), 'playcekube-worker02'));
  assert.deepEqual(m.ipv6, { address: 'fd00:10::15', cidr: 'fd00:10::/64' });
  assert.equal(m.routerId, '10.0.0.15');
  assert.deepEqual(names(m), [
    'Mesh_10_0_0_11',
    'Mesh_10_0_0_12',
    'Mesh_10_0_0_13',
    'Mesh_10_0_0_14',
    'Mesh_fd00_10__11',
    'Mesh_fd00_10__12',
    'Mesh_fd00_10__13',
    'Mesh_fd00_10__14',
    'Global_fd00_10__1_port_1790',
  ]);
  assert.equal(peer(m, 'Mesh_fd00_10__11').sourceAddress, 'fd00:10::15');
  assert.deepEqual(m.blocks, ['10.233.106.0/24', 'fd80:24e2:f998:72d6:5::/122']);
  // An IPv6 peer on an IPv4-only node is skipped with a note.
  const v4only = dualStackScenario();
  v4only.nodes[4] = seedNode('playcekube-worker02');
  const w = buildBgpModel(inputFor(v4only, 'playcekube-worker02'));
  assert.ok(w.peers.every((p) => p.family === 4));
  assert.ok(w.notes.some((n) => /fd00:10::1 is IPv6 and this node has no IPv6 address/.test(n)));
});

test('errors and odd input', () => {
  const s = seedScenario();
  assert.throws(() => buildBgpModel(inputFor(s, 'no-such-node')), /node "no-such-node" not found/);
  const bare = { ...inputFor(s, 'playcekube-worker02'), nodes: [res('Node', 'playcekube-worker02', {})] };
  assert.throws(() => buildBgpModel(bare), /has no BGP address/);
  assert.throws(() => buildBgpModel({ ...inputFor(s, 'playcekube-worker02'), routerId: '1.2.3' }), /not an IPv4 address/);
  assert.equal(buildBgpModel({ ...inputFor(s, 'playcekube-worker02'), routerId: '192.0.2.1' }).routerId, '192.0.2.1');
  assert.equal(buildBgpModel({ ...inputFor(s, 'playcekube-worker02'), routerId: 'hash' }).routerId, hashRouterId('playcekube-worker02'));
  assert.match(hashRouterId('x'), /^\d+\.\d+\.\d+\.\d+$/);
  // A bad selector or peerIP drops that BGPPeer only.
  s.bgpPeers = [
    res('BGPPeer', 'bad-sel', { peerSelector: 'a ==', nodeSelector: 'all()' }),
    res('BGPPeer', 'bad-ip', { peerIP: '10.0.0.300' }),
    res('BGPPeer', 'good', { peerIP: '10.0.0.9', asNumber: 65000 }),
  ];
  const m = buildBgpModel(inputFor(s, 'playcekube-worker02'));
  assert.ok(names(m).includes('Global_10_0_0_9'));
  assert.ok(m.notes.some((n) => n.startsWith('BGPPeer bad-sel:')));
  assert.ok(m.notes.some((n) => n.startsWith('BGPPeer bad-ip:')));
  // A node without addresses is no mesh peer.
  const t = seedScenario();
  t.nodes[0] = res('Node', 'playcekube-master01', {});
  const w = buildBgpModel(inputFor(t, 'playcekube-worker02'));
  assert.equal(w.peers.length, 3);
  assert.ok(w.notes.some((n) => /playcekube-master01 has no BGP address/.test(n)));
});

test('durations', () => {
  assert.equal(durationSeconds('120s'), 120);
  assert.equal(durationSeconds('2m'), 120);
  assert.equal(durationSeconds('1h1m1s'), 3661);
  assert.equal(durationSeconds('1.5s'), 2);
  assert.equal(durationSeconds('300ms'), 1);
  assert.equal(durationSeconds('0'), 0);
  assert.equal(durationSeconds('2 m'), undefined);
  assert.equal(durationSeconds('m'), undefined);
  assert.equal(durationSeconds('10'), undefined);
});
