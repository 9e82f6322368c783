// Pure tests of the desired-state computation, kernel JSON parsing and the diff (no root needed).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkRouteProtocol,
  computeDesired,
  diffState,
  ownsRoute,
  parseFdb,
  parseNeighbours,
  parseRoutes,
  routeDelCommand,
  routeSetCommand,
  routeText,
  type DesiredState,
  type KernelRoute,
  type KernelState,
  type OverlayInput,
} from './routes.js';

const MAC2 = '66:2d:bf:44:a6:8b'; // vtepMacForNode('node2')
const MAC1 = '66:f9:37:c3:7e:94'; // vtepMacForNode('node1')

function input(over: Partial<OverlayInput> = {}): OverlayInput {
  return {
    nodeName: 'node1',
    localAddress: '10.0.0.11/24',
    underlayDevice: 'eth0',
    vteps: [
      { node: 'node1', underlayIP: '10.0.0.11', tunnelIP: '10.233.64.0' },
      { node: 'node2', underlayIP: '10.0.0.12', tunnelIP: '10.233.65.0' },
      { node: 'node3', underlayIP: '10.9.0.13', tunnelIP: '10.233.66.0', mac: '66:AA:BB:CC:DD:03' },
    ],
    remoteBlocks: [
      { cidr: '10.233.64.0/24', node: 'node1' }, // our own: ignored
      { cidr: '10.233.65.0/24', node: 'node2' },
      { cidr: '10.233.66.0/24', node: 'node3' },
    ],
    localBlocks: ['10.233.64.0/24'],
    pools: [{ cidr: '10.233.64.0/18', vxlanMode: 'Always' }],
    ...over,
  };
}

const texts = (d: DesiredState) => d.routes.map(routeText);

describe('computeDesired', () => {
  it('VXLAN Always: block routes via the tunnel IP onlink, permanent neighbours and FDB, blackhole', () => {
    const d = computeDesired(input());
    assert.deepEqual(texts(d), [
      '10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink',
      '10.233.66.0/24 via 10.233.66.0 dev vxlan.calico proto 80 onlink',
      'blackhole 10.233.64.0/24 proto 80',
    ]);
    assert.deepEqual(d.neighbours, [
      { ip: '10.233.65.0', mac: MAC2, dev: 'vxlan.calico' },
      { ip: '10.233.66.0', mac: '66:aa:bb:cc:dd:03', dev: 'vxlan.calico' },
    ]);
    assert.deepEqual(d.fdb, [
      { mac: MAC2, dst: '10.0.0.12', dev: 'vxlan.calico' },
      { mac: '66:aa:bb:cc:dd:03', dst: '10.9.0.13', dev: 'vxlan.calico' },
    ]);
    assert.equal(d.vxlanNeeded, true);
    assert.deepEqual(d.warnings, []);
  });

  it('CrossSubnet: same subnet → via the node IP on the underlay; other subnet → VXLAN', () => {
    const d = computeDesired(input({ pools: [{ cidr: '10.233.64.0/18', vxlanMode: 'CrossSubnet' }] }));
    assert.deepEqual(texts(d), [
      '10.233.65.0/24 via 10.0.0.12 dev eth0 proto 80',
      '10.233.66.0/24 via 10.233.66.0 dev vxlan.calico proto 80 onlink',
      'blackhole 10.233.64.0/24 proto 80',
    ]);
    assert.equal(d.routes[0].kind, 'same-subnet');
    // Felix programs same-subnet routes of VXLAN pools even when BIRD runs.
    const b = computeDesired(input({ pools: [{ cidr: '10.233.64.0/18', vxlanMode: 'CrossSubnet' }] }), { bird: true });
    assert.deepEqual(texts(b), ['10.233.65.0/24 via 10.0.0.12 dev eth0 proto 80', '10.233.66.0/24 via 10.233.66.0 dev vxlan.calico proto 80 onlink']);
    // Without the prefix the subnet is unknown: VXLAN for all, with a warning.
    const u = computeDesired(input({ localAddress: '10.0.0.11', pools: [{ cidr: '10.233.64.0/18', vxlanMode: 'CrossSubnet' }] }));
    assert.equal(u.routes[0].kind, 'vxlan');
    assert.match(u.warnings.join('\n'), /subnet is unknown/);
  });

  it('no encapsulation: via the node IP when programNoEncapRoutes; nothing (BIRD’s) with bird', () => {
    const pools = [{ cidr: '10.233.64.0/18', vxlanMode: 'Never', ipipMode: 'Never' }];
    const d = computeDesired(input({ pools }));
    assert.deepEqual(texts(d), ['10.233.65.0/24 via 10.0.0.12 dev eth0 proto 80', 'blackhole 10.233.64.0/24 proto 80']);
    assert.match(d.warnings.join('\n'), /node3 \(10\.9\.0\.13\) is not in this node's subnet/);
    assert.deepEqual(d.neighbours, [], 'no VXLAN pool: no VTEP entries');
    assert.deepEqual(d.fdb, []);
    assert.equal(d.vxlanNeeded, false);
    const b = computeDesired(input({ pools }), { bird: true });
    assert.deepEqual(b.routes, []);
    assert.equal(b.adoptBirdRoutes, false);
    const mixed = computeDesired(input({ pools }), { bird: true, programNoEncapRoutes: true, programBlackholes: false });
    assert.deepEqual(texts(mixed), ['10.233.65.0/24 via 10.0.0.12 dev eth0 proto 80']);
    // A node known only by its underlay address is enough for no-encap.
    const plain = computeDesired(input({ pools, vteps: [{ node: 'node2', underlayIP: '10.0.0.12' }] }));
    assert.deepEqual(texts(plain).slice(0, 1), ['10.233.65.0/24 via 10.0.0.12 dev eth0 proto 80']);
  });

  it('per pool: VXLAN and no-encap pools side by side; IPIP pools and blocks outside pools are skipped', () => {
    const d = computeDesired(
      input({
        pools: [
          { cidr: '10.233.65.0/24', vxlanMode: 'Always' },
          { cidr: '10.233.66.0/24', ipipMode: 'Always' },
          { cidr: '10.233.64.0/24', vxlanMode: 'Never' },
        ],
        remoteBlocks: [
          { cidr: '10.233.65.0/24', node: 'node2' },
          { cidr: '10.233.66.0/24', node: 'node3' },
          { cidr: '172.16.0.0/24', node: 'node2' },
        ],
      }),
    );
    assert.deepEqual(texts(d), ['10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink', 'blackhole 10.233.64.0/24 proto 80']);
    assert.match(d.warnings.join('\n'), /pool 10\.233\.66\.0\/24 uses IPIP/);
    assert.match(d.warnings.join('\n'), /172\.16\.0\.0\/24 \(node node2\) is in no IP pool/);
  });

  it('borrowed addresses: remote /32 via the VTEP, tunnel IP outside its node’s blocks → direct route', () => {
    const d = computeDesired(
      input({
        vteps: [
          { node: 'node2', underlayIP: '10.0.0.12', tunnelIP: '10.233.65.0' },
          { node: 'node4', underlayIP: '10.0.0.14', tunnelIP: '10.233.65.200' }, // borrowed from node2's block
        ],
        remoteBlocks: [
          { cidr: '10.233.65.0/24', node: 'node2' },
          { cidr: '10.233.64.77/32', node: 'node2' }, // borrowed from our block
        ],
        localBlocks: ['10.233.64.0/24', '10.233.64.99/32'],
      }),
    );
    assert.deepEqual(texts(d), [
      '10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink',
      '10.233.64.77 via 10.233.65.0 dev vxlan.calico proto 80 onlink',
      '10.233.65.200 dev vxlan.calico proto 80 scope link',
      'blackhole 10.233.64.0/24 proto 80',
    ]);
  });

  it('missing VTEP, unknown node, duplicates and bad entries give warnings, not errors', () => {
    const d = computeDesired(
      input({
        vteps: [{ node: 'node2', underlayIP: '10.0.0.12' }, { node: 'node5', underlayIP: 'nope' }, { node: 'node6', underlayIP: '10.0.0.16', tunnelIP: '10.233.70.0', mac: MAC2 }, { node: 'node7', underlayIP: '10.0.0.17', tunnelIP: '10.233.71.0', mac: MAC2 }],
        remoteBlocks: [
          { cidr: '10.233.65.0/24', node: 'node2' },
          { cidr: '10.233.67.0/24', node: 'nodeX' },
          { cidr: '10.233.70.0/24', node: 'node6' },
          { cidr: '10.233.70.0/24', node: 'node7' },
          { cidr: 'garbage', node: 'node2' },
        ],
        localBlocks: ['nope'],
      }),
    );
    assert.deepEqual(texts(d), ['10.233.70.0/24 via 10.233.70.0 dev vxlan.calico proto 80 onlink']);
    const w = d.warnings.join('\n');
    assert.match(w, /10\.233\.65\.0\/24: node node2 has no VTEP/);
    assert.match(w, /node node5: invalid underlay address|ignoring node node5/);
    assert.match(w, /node nodeX has no VTEP/);
    assert.match(w, /nodes node6 and node7 share VTEP MAC/);
    assert.match(w, /10\.233\.70\.0\/24: wanted for node6 and node7; keeping the first/);
    assert.match(w, /ignoring remote block/);
    assert.match(w, /ignoring local block/);
  });

  it('route protocol: 80 by default, 0–3 and bird refused', () => {
    assert.equal(checkRouteProtocol(80), 80);
    assert.equal(checkRouteProtocol(4), 4);
    assert.throws(() => checkRouteProtocol(3), /shared/);
    assert.throws(() => checkRouteProtocol(2), /shared/);
    assert.throws(() => checkRouteProtocol(12), /BIRD/);
    assert.throws(() => checkRouteProtocol(256), /invalid/);
    assert.equal(computeDesired(input(), { routeProtocol: 201 }).routes[0].protocol, 201);
    assert.equal(computeDesired(input(), { vxlanDevice: 'vx0' }).routes[0].dev, 'vx0');
  });
});

describe('kernel JSON parsing', () => {
  it('routes from `ip -j -N -d route show` (numbers) and without -N (names)', () => {
    const numeric = [
      { type: '1', dst: 'default', gateway: '10.0.0.254', dev: 'eth0', protocol: '3', scope: '0', flags: [] },
      { type: '1', dst: '10.0.0.0/24', dev: 'eth0', protocol: '2', scope: '253', prefsrc: '10.0.0.11', flags: [] },
      { type: '6', dst: '10.233.64.0/24', protocol: '80', scope: '0', flags: [] },
      { type: '1', dst: '10.233.64.5', dev: 'cali0000000001', protocol: '3', scope: '253', flags: [] },
      { type: '1', dst: '10.233.65.0/24', gateway: '10.233.65.0', dev: 'vxlan.calico', protocol: '80', scope: '0', flags: ['onlink'] },
      { type: '2', dst: '10.0.0.11', dev: 'eth0', table: 'local', protocol: '2', scope: '254', flags: [] },
      { type: '1', dst: '10.233.99.0/24', gateway: '10.0.0.12', dev: 'eth0', protocol: '12', metric: 20, flags: [] },
    ];
    const r = parseRoutes(numeric);
    assert.deepEqual(r.map(routeText), [
      '0.0.0.0/0 via 10.0.0.254 dev eth0 proto boot',
      '10.0.0.0/24 dev eth0 proto kernel scope link',
      'blackhole 10.233.64.0/24 proto 80',
      '10.233.64.5 dev cali0000000001 proto boot scope link',
      '10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink',
      '10.233.99.0/24 via 10.0.0.12 dev eth0 proto bird metric 20',
    ]);
    const named = parseRoutes([
      { type: 'blackhole', dst: '10.233.77.0/24', protocol: 'bird', flags: [] },
      { dst: '10.233.88.0/24', gateway: '10.0.0.12', dev: 'tunl0', protocol: 'bird', flags: ['onlink'] },
      { dst: '10.233.99.12', dev: 'cali529aed0cdfd', scope: 'link', flags: [] },
    ]);
    assert.deepEqual(named.map(routeText), [
      'blackhole 10.233.77.0/24 proto bird',
      '10.233.88.0/24 via 10.0.0.12 dev tunl0 proto bird onlink',
      '10.233.99.12 dev cali529aed0cdfd proto unspec scope link',
    ]);
  });
  it('neighbours and FDB', () => {
    assert.deepEqual(
      parseNeighbours([
        { dst: '10.233.65.0', dev: 'vxlan.calico', lladdr: '66:2D:BF:44:A6:8B', state: ['PERMANENT'] },
        { dst: 'fe80::1', dev: 'vxlan.calico', lladdr: '66:2d:bf:44:a6:8b', state: ['STALE'] },
        { dst: '10.0.0.12', dev: 'eth0', state: ['FAILED'] },
      ]),
      [
        { ip: '10.233.65.0', dev: 'vxlan.calico', mac: MAC2, states: ['PERMANENT'] },
        { ip: '10.0.0.12', dev: 'eth0', states: ['FAILED'] },
      ],
    );
    assert.deepEqual(parseFdb([{ mac: '66:2D:BF:44:A6:8B', dst: '10.0.0.12', flags: ['self'], state: 'permanent' }], 'vxlan.calico'), [
      { mac: MAC2, dst: '10.0.0.12', dev: 'vxlan.calico', flags: ['self'], state: 'permanent' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------

function kr(text: string): KernelRoute {
  // A tiny parser of `routeText` lines for fixtures.
  const w = text.split(' ');
  const r: KernelRoute = { dst: '', type: 'unicast', onlink: false, scope: 'universe', protocol: 0, metric: 0, flags: [] };
  let i = 0;
  if (['blackhole', 'unreachable', 'prohibit'].includes(w[0])) r.type = w[i++] as KernelRoute['type'];
  r.dst = w[i].includes('/') ? w[i] : `${w[i]}/32`;
  for (i++; i < w.length; i++) {
    const k = w[i];
    if (k === 'via') r.gateway = w[++i];
    else if (k === 'dev') r.dev = w[++i];
    else if (k === 'proto') r.protocol = ({ kernel: 2, boot: 3, static: 4, bird: 12 } as Record<string, number>)[w[++i]] ?? Number(w[i]);
    else if (k === 'scope') r.scope = w[++i] as KernelRoute['scope'];
    else if (k === 'metric') r.metric = Number(w[++i]);
    else if (k === 'onlink') r.onlink = true;
  }
  if (r.onlink) r.flags.push('onlink');
  return r;
}

function kstate(routes: string[], over: Partial<KernelState> = {}): KernelState {
  return { routes: routes.map(kr), neighbours: [], fdb: [], vxlanDevicePresent: true, ...over };
}

const FULL = [
  '10.0.0.0/24 dev eth0 proto kernel scope link',
  '0.0.0.0/0 via 10.0.0.254 dev eth0 proto boot',
  '10.233.64.5 dev cali0000000001 proto boot scope link',
  '10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink',
  '10.233.66.0/24 via 10.233.66.0 dev vxlan.calico proto 80 onlink',
  'blackhole 10.233.64.0/24 proto 80',
];
const FULL_NEIGH = [
  { ip: '10.233.65.0', dev: 'vxlan.calico', mac: MAC2, states: ['PERMANENT'] },
  { ip: '10.233.66.0', dev: 'vxlan.calico', mac: '66:aa:bb:cc:dd:03', states: ['PERMANENT'] },
];
const FULL_FDB = [
  { mac: MAC2, dst: '10.0.0.12', dev: 'vxlan.calico', flags: ['self'], state: 'permanent' },
  { mac: '66:aa:bb:cc:dd:03', dst: '10.9.0.13', dev: 'vxlan.calico', flags: ['self'], state: 'permanent' },
];

describe('diffState', () => {
  const desired = computeDesired(input());

  it('from nothing: everything set, neighbours before routes, one ip batch and one bridge batch', () => {
    const p = diffState(desired, kstate([]));
    assert.deepEqual(p.ip, [
      ['neigh', 'replace', '10.233.65.0', 'lladdr', MAC2, 'dev', 'vxlan.calico', 'nud', 'permanent'],
      ['neigh', 'replace', '10.233.66.0', 'lladdr', '66:aa:bb:cc:dd:03', 'dev', 'vxlan.calico', 'nud', 'permanent'],
      'route replace 10.233.65.0/24 via 10.233.65.0 dev vxlan.calico onlink proto 80'.split(' '),
      'route replace 10.233.66.0/24 via 10.233.66.0 dev vxlan.calico onlink proto 80'.split(' '),
      'route replace blackhole 10.233.64.0/24 proto 80'.split(' '),
    ]);
    assert.deepEqual(p.bridge, [
      ['fdb', 'replace', MAC2, 'dev', 'vxlan.calico', 'dst', '10.0.0.12', 'self', 'permanent'],
      ['fdb', 'replace', '66:aa:bb:cc:dd:03', 'dev', 'vxlan.calico', 'dst', '10.9.0.13', 'self', 'permanent'],
    ]);
    assert.equal(p.changes.length, 7);
    assert.ok(p.changes.every((c) => c.op === 'set' && c.reason === 'missing'));
  });

  it('in place: no change', () => {
    const p = diffState(desired, kstate(FULL, { neighbours: FULL_NEIGH, fdb: FULL_FDB }));
    assert.deepEqual(p.ip, []);
    assert.deepEqual(p.bridge, []);
    assert.equal(p.inPlace, 7);
  });

  it('touches only what it owns', () => {
    const foreign = [
      '192.168.5.0/24 via 10.0.0.12 dev eth0 proto boot', // outside the pools
      '10.233.64.6 dev cali0000000002 proto boot scope link', // the CNI's pod route
      '10.233.100.0/24 via 10.0.0.12 dev eth0 proto boot', // in a pool, someone else's
      '10.233.101.0/24 via 10.0.0.12 dev eth0 proto static', // in a pool, static
      '172.20.0.0/16 via 10.0.0.12 dev eth0 proto bird', // BIRD, outside the pools
      '10.233.64.0/32 dev vxlan.calico proto kernel scope link', // the kernel's, on our device
    ];
    const stale = [
      '10.233.99.0/24 via 10.233.99.0 dev vxlan.calico proto boot onlink', // on our device
      'blackhole 10.233.70.0/24 proto 80', // our protocol
      '203.0.113.0/24 via 10.0.0.12 dev eth0 proto 80', // our (dedicated) protocol, outside the pools
      '10.233.88.0/24 via 10.0.0.12 dev tunl0 proto bird onlink', // a former BIRD's, in a pool
    ];
    const p = diffState(desired, kstate([...FULL, ...foreign, ...stale], { neighbours: FULL_NEIGH, fdb: FULL_FDB }));
    assert.deepEqual(
      p.changes.map((c) => `${c.op} ${c.text}`),
      stale.map((s) => `del ${s}`),
    );
    assert.deepEqual(p.ip[0], 'route del 10.233.99.0/24 via 10.233.99.0 dev vxlan.calico proto 3 metric 0 table main'.split(' '));
    assert.deepEqual(p.ip[1], 'route del blackhole 10.233.70.0/24 proto 80 metric 0 table main'.split(' '));

    // With BIRD running, its routes are its own, even in the pools.
    const b = computeDesired(input(), { bird: true });
    const pb = diffState(b, kstate([...FULL, ...stale, 'blackhole 10.233.77.0/24 proto bird'], { neighbours: FULL_NEIGH, fdb: FULL_FDB }));
    assert.deepEqual(
      pb.changes.map((c) => `${c.op} ${c.text}`),
      [
        'del blackhole 10.233.64.0/24 proto 80', // BIRD owns the blackholes now
        'del 10.233.99.0/24 via 10.233.99.0 dev vxlan.calico proto boot onlink',
        'del blackhole 10.233.70.0/24 proto 80',
        'del 203.0.113.0/24 via 10.0.0.12 dev eth0 proto 80',
      ],
    );

    // A shared protocol (static) is owned only inside the pools.
    const s = computeDesired(input(), { routeProtocol: 4 });
    const ps = diffState(s, kstate(['10.233.101.0/24 via 10.0.0.12 dev eth0 proto static', '192.168.9.0/24 via 10.0.0.12 dev eth0 proto static']));
    assert.deepEqual(ps.changes.filter((c) => c.op === 'del').map((c) => c.text), ['10.233.101.0/24 via 10.0.0.12 dev eth0 proto static']);
  });

  it('a different route to a desired destination: one replace (no delete); duplicates at other metrics go', () => {
    const p = diffState(
      desired,
      kstate(
        [
          '10.233.65.0/24 via 10.0.0.12 dev eth0 proto bird', // replaced
          '10.233.66.0/24 via 10.233.66.0 dev vxlan.calico proto 80 onlink',
          '10.233.66.0/24 via 10.233.66.0 dev vxlan.calico proto 80 metric 100 onlink', // duplicate
          '10.233.64.0/24 via 10.0.0.99 dev eth0 proto boot', // foreign route at a desired destination: replaced
        ],
        { neighbours: FULL_NEIGH, fdb: FULL_FDB },
      ),
    );
    assert.deepEqual(
      p.changes.map((c) => `${c.op} ${c.text} (${c.reason})`),
      [
        'set 10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink (differs: was 10.233.65.0/24 via 10.0.0.12 dev eth0 proto bird)',
        'set blackhole 10.233.64.0/24 proto 80 (differs: was 10.233.64.0/24 via 10.0.0.99 dev eth0 proto boot)',
        'del 10.233.66.0/24 via 10.233.66.0 dev vxlan.calico proto 80 metric 100 onlink (duplicate of a desired route)',
      ],
    );
  });

  it('neighbours: wrong MAC replaced, stale permanent deleted, dynamic entries left', () => {
    const p = diffState(
      desired,
      kstate(FULL, {
        fdb: FULL_FDB,
        neighbours: [
          { ip: '10.233.65.0', dev: 'vxlan.calico', mac: '66:00:00:00:00:09', states: ['PERMANENT'] },
          { ip: '10.233.66.0', dev: 'vxlan.calico', mac: '66:aa:bb:cc:dd:03', states: ['REACHABLE'] },
          { ip: '10.233.90.0', dev: 'vxlan.calico', mac: '66:00:00:00:00:90', states: ['PERMANENT'] },
          { ip: '10.233.91.0', dev: 'vxlan.calico', states: ['FAILED'] },
          { ip: '10.0.0.12', dev: 'eth0', mac: '02:00:00:00:00:12', states: ['PERMANENT'] },
        ],
      }),
    );
    assert.deepEqual(p.ip, [
      ['neigh', 'replace', '10.233.65.0', 'lladdr', MAC2, 'dev', 'vxlan.calico', 'nud', 'permanent'],
      ['neigh', 'replace', '10.233.66.0', 'lladdr', '66:aa:bb:cc:dd:03', 'dev', 'vxlan.calico', 'nud', 'permanent'],
      ['neigh', 'del', '10.233.90.0', 'dev', 'vxlan.calico'],
    ]);
  });

  it('FDB: wrong destination replaced, extra destinations and unknown MACs deleted', () => {
    const p = diffState(
      desired,
      kstate(FULL, {
        neighbours: FULL_NEIGH,
        fdb: [
          { mac: MAC2, dst: '10.0.0.99', dev: 'vxlan.calico', flags: ['self'], state: 'permanent' },
          { mac: '66:aa:bb:cc:dd:03', dst: '10.9.0.13', dev: 'vxlan.calico', flags: ['self'], state: 'permanent' },
          { mac: '66:aa:bb:cc:dd:03', dst: '10.9.0.14', dev: 'vxlan.calico', flags: ['self'], state: 'permanent' },
          { mac: '00:00:00:00:00:00', dst: '10.0.0.200', dev: 'vxlan.calico', flags: ['self'], state: 'permanent' },
          { mac: MAC1, dst: '10.0.0.11', dev: 'vxlan.calico', flags: ['self'], state: 'permanent' },
        ],
      }),
    );
    assert.deepEqual(p.ip, []);
    assert.deepEqual(p.bridge, [
      ['fdb', 'del', '66:aa:bb:cc:dd:03', 'dev', 'vxlan.calico', 'dst', '10.9.0.14', 'self'],
      ['fdb', 'del', '00:00:00:00:00:00', 'dev', 'vxlan.calico', 'self'],
      ['fdb', 'del', MAC1, 'dev', 'vxlan.calico', 'self'],
      ['fdb', 'replace', MAC2, 'dev', 'vxlan.calico', 'dst', '10.0.0.12', 'self', 'permanent'],
    ]);
  });

  it('VXLAN device absent: VXLAN entries dropped with a warning, the rest still programmed', () => {
    const d = computeDesired(input({ pools: [{ cidr: '10.233.64.0/18', vxlanMode: 'CrossSubnet' }] }));
    const p = diffState(d, kstate([], { vxlanDevicePresent: false }));
    assert.deepEqual(p.changes.map((c) => c.text), ['10.233.65.0/24 via 10.0.0.12 dev eth0 proto 80', 'blackhole 10.233.64.0/24 proto 80']);
    assert.match(p.warnings[0], /vxlan\.calico is absent: 5 VXLAN route, neighbour and FDB entries/);
  });

  it('commands select exactly one route', () => {
    const r = kr('10.233.88.0/24 via 10.0.0.12 dev tunl0 proto bird metric 20 onlink');
    assert.deepEqual(routeDelCommand(r), 'route del 10.233.88.0/24 via 10.0.0.12 dev tunl0 proto 12 metric 20 table main'.split(' '));
    assert.deepEqual(routeSetCommand(kr('10.233.65.200 dev vxlan.calico proto 80 scope link')), 'route replace 10.233.65.200/32 dev vxlan.calico scope link proto 80'.split(' '));
    assert.equal(ownsRoute(kr('10.233.64.0/32 dev vxlan.calico proto kernel scope link'), { vxlanDevice: 'vxlan.calico', routeProtocol: 80, pools: [], adoptBirdRoutes: true }), false);
  });
});
