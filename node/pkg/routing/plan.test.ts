import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Resource } from '../../../libcalico-go/lib/apis/v3/resource.js';
import type { BlockData } from '../../../libcalico-go/lib/ipam/block.js';
import { vtepMacForNode } from '../../../felix/dataplane/linux/vxlan.js';
import {
  addressesOfHandle,
  decideTunnelAddress,
  parseNetworkingBackend,
  planRouting,
  type RoutingSnapshot,
  vxlanTunnelHandle,
} from './plan.js';

const node = (name: string, ip?: string, spec: Record<string, unknown> = {}): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'Node',
  metadata: { name },
  spec: { ...(ip ? { bgp: { ipv4Address: ip } } : {}), ...spec },
});
const pool = (name: string, cidr: string, vxlanMode = 'Never', ipipMode = 'Never'): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name },
  spec: { cidr, vxlanMode, ipipMode, blockSize: 24, natOutgoing: true },
});
const block = (cidr: string, host: string | null, allocs: [number, string][] = []): BlockData => {
  const allocations: (number | null)[] = new Array(256).fill(null);
  const attributes = allocs.map(([ord, handle], i) => {
    allocations[ord] = i;
    return { handle_id: handle, secondary: {} };
  });
  return {
    cidr,
    affinity: host ? `host:${host}` : null,
    allocations,
    unallocated: [],
    attributes,
    deleted: false,
    sequenceNumber: 0,
    sequenceNumberForAllocation: {},
  };
};

function snap(over: Partial<RoutingSnapshot> = {}): RoutingSnapshot {
  return {
    nodeName: 'n1',
    nodes: [node('n1', '10.0.0.11/24'), node('n2', '10.0.0.12/24'), node('n3', '10.0.0.13/24')],
    ipPools: [pool('default-ipv4-ippool', '10.233.64.0/18')],
    bgpConfigurations: [],
    bgpPeers: [],
    blocks: [block('10.233.64.0/24', 'n1'), block('10.233.65.0/24', 'n2'), block('10.233.66.0/24', 'n3'), block('10.233.67.0/24', null)],
    affinities: [
      { host: 'n1', cidr: '10.233.64.0/24', state: 'confirmed' },
      { host: 'n1', cidr: '10.233.70.0/24', state: 'pending' },
      { host: 'n2', cidr: '10.233.65.0/24', state: 'confirmed' },
    ],
    ...over,
  };
}

const opts = { backend: 'bird' as const, socketDir: '/run/tortie' };

describe('parseNetworkingBackend', () => {
  it('defaults to bird, accepts vxlan and none, warns on anything else', () => {
    assert.deepEqual(parseNetworkingBackend(undefined), { backend: 'bird' });
    assert.deepEqual(parseNetworkingBackend('VXLAN'), { backend: 'vxlan' });
    assert.deepEqual(parseNetworkingBackend('none'), { backend: 'none' });
    const r = parseNetworkingBackend('gobgp');
    assert.equal(r.backend, 'bird');
    assert.match(r.warning!, /not one of bird, vxlan, none/);
  });
});

describe('planRouting', () => {
  it('BGP mode: BIRD with the mesh and only confirmed local blocks, blackholes exported, the reconciler leaves routes to BIRD', () => {
    const p = planRouting(snap(), opts);
    assert.equal(p.runBird, true);
    assert.deepEqual(p.localBlocks, ['10.233.64.0/24']);
    assert.ok(p.birdConfig);
    assert.match(p.birdConfig!, /protocol bgp Mesh_10_0_0_12 /);
    assert.match(p.birdConfig!, /protocol bgp Mesh_10_0_0_13 /);
    assert.doesNotMatch(p.birdConfig!, /Mesh_10_0_0_11/);
    assert.match(p.birdConfig!, /route 10\.233\.64\.0\/24 blackhole;/);
    assert.doesNotMatch(p.birdConfig!, /route 10\.233\.70\.0\/24 blackhole;/);
    // exportBlackholesToKernel: `blackhole <block> proto bird`.
    assert.match(p.birdConfig!, /source = RTS_STATIC && net = 10\.233\.64\.0\/24/);
    assert.match(p.birdConfig!, /\/run\/tortie\/bird\.ctl/);
    assert.deepEqual(p.overlayFlags, { bird: true, programNoEncapRoutes: false, programBlackholes: false });
    assert.equal(p.vxlanNeeded, false);
    assert.deepEqual(p.problems, []);
    // Remote blocks from block affinities, not this node's, not unaffine ones.
    assert.deepEqual(p.overlay.remoteBlocks, [
      { cidr: '10.233.65.0/24', node: 'n2' },
      { cidr: '10.233.66.0/24', node: 'n3' },
    ]);
    assert.equal(p.overlay.localAddress, '10.0.0.11/24');
  });

  it('backend vxlan: no BIRD, the reconciler programs blackholes and unencapsulated routes', () => {
    const p = planRouting(snap(), { ...opts, backend: 'vxlan' });
    assert.equal(p.runBird, false);
    assert.equal(p.birdConfig, undefined);
    assert.deepEqual(p.overlayFlags, { bird: false, programNoEncapRoutes: true, programBlackholes: true });
  });

  it('backend none: no BIRD, no unencapsulated routes', () => {
    const p = planRouting(snap(), { ...opts, backend: 'none' });
    assert.equal(p.runBird, false);
    assert.equal(p.overlayFlags.programNoEncapRoutes, false);
  });

  it('VXLAN pool: VTEPs from the other Nodes (tunnel address, MAC, underlay IP)', () => {
    const nodes = [
      node('n1', '10.0.0.11/24', { ipv4VXLANTunnelAddr: '10.233.64.0' }),
      node('n2', '10.0.0.12/24', { ipv4VXLANTunnelAddr: '10.233.65.0', vxlanTunnelMACAddr: '66:aa:bb:cc:dd:ee' }),
      node('n3', '10.0.0.13/24', { ipv4VXLANTunnelAddr: '10.233.66.0' }),
      node('n4'),
    ];
    const p = planRouting(snap({ nodes, ipPools: [pool('p', '10.233.64.0/18', 'Always')] }), opts);
    assert.equal(p.vxlanNeeded, true);
    assert.deepEqual(p.overlay.vteps, [
      { node: 'n2', underlayIP: '10.0.0.12', tunnelIP: '10.233.65.0', mac: '66:aa:bb:cc:dd:ee' },
      { node: 'n3', underlayIP: '10.0.0.13', tunnelIP: '10.233.66.0', mac: vtepMacForNode('n3') },
    ]);
    assert.deepEqual(p.overlay.pools, [{ cidr: '10.233.64.0/18', vxlanMode: 'Always', ipipMode: 'Never' }]);
    // BIRD still runs (mesh, blackholes) but the VXLAN pool's routes are the reconciler's.
    assert.match(p.birdConfig!, /the agent programs these \(via vxlan\.calico onlink/);
  });

  it('IPIP pools are a problem, said plainly', () => {
    const p = planRouting(snap({ ipPools: [pool('ipip', '10.233.64.0/18', 'Never', 'Always')] }), opts);
    assert.equal(p.problems.length, 1);
    assert.match(p.problems[0], /IP pool ipip \(10\.233\.64\.0\/18\) has ipipMode Always, but this kernel has no IPIP support/);
  });

  it('a node without an address gets no BIRD configuration and says why', () => {
    const p = planRouting(snap({ nodes: [node('n1'), node('n2', '10.0.0.12/24')] }), opts);
    assert.equal(p.birdConfig, undefined);
    assert.match(p.problems.join('\n'), /Node n1 has no IPv4 address/);
  });
});

describe('tunnel address', () => {
  const vx = [pool('vx', '10.233.64.0/18', 'Always')];
  const h = vxlanTunnelHandle('n1');

  it('finds a handle\'s addresses in blocks', () => {
    assert.deepEqual(addressesOfHandle([block('10.233.64.0/24', 'n1', [[0, h], [5, 'other']])], h), ['10.233.64.0']);
  });

  it('assigns when the handle holds nothing, keeps a recorded one, adopts an unrecorded one', () => {
    assert.deepEqual(decideTunnelAddress(snap({ ipPools: vx })), { action: 'assign', releaseFirst: false });
    const blocks = [block('10.233.64.0/24', 'n1', [[3, h]])];
    assert.deepEqual(decideTunnelAddress(snap({ ipPools: vx, blocks })), { action: 'adopt', address: '10.233.64.3' });
    const nodes = [node('n1', '10.0.0.11/24', { ipv4VXLANTunnelAddr: '10.233.64.3' })];
    assert.deepEqual(decideTunnelAddress(snap({ ipPools: vx, blocks, nodes })), { action: 'keep', address: '10.233.64.3' });
  });

  it('a recorded address the handle does not hold is replaced', () => {
    const nodes = [node('n1', '10.0.0.11/24', { ipv4VXLANTunnelAddr: '10.233.64.9' })];
    assert.deepEqual(decideTunnelAddress(snap({ ipPools: vx, nodes })), { action: 'assign', releaseFirst: false });
  });

  it('releases when no pool uses VXLAN, does nothing when there is nothing', () => {
    assert.deepEqual(decideTunnelAddress(snap()), { action: 'none' });
    const nodes = [node('n1', '10.0.0.11/24', { ipv4VXLANTunnelAddr: '10.233.64.3' })];
    assert.deepEqual(decideTunnelAddress(snap({ nodes })), { action: 'release' });
  });
});
