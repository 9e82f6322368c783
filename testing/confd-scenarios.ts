// Test scenarios (confd): sets of v3 resources (seed cluster variants) used by the model tests and the
// renderer tests; every node of every scenario is rendered and checked with `bird -p`.

import type { Resource } from '../libcalico-go/lib/apis/v3/resource.js';
import type { BuildBgpModelInput } from '../confd/pkg/model.js';
import { SEED_BLOCKS, SEED_NODE_NAMES, res, seedBgpConfiguration, seedNode, seedNodes, seedPool } from './seed-fixture.js';

export interface Scenario {
  name: string;
  nodes: Resource[];
  bgpConfigurations: Resource[];
  bgpPeers: Resource[];
  ipPools: Resource[];
  blocks: Record<string, string[]>;
  secrets?: Record<string, Record<string, string>>;
}

export function inputFor(s: Scenario, thisNode: string): BuildBgpModelInput {
  return {
    thisNode,
    nodes: s.nodes,
    bgpConfigurations: s.bgpConfigurations,
    bgpPeers: s.bgpPeers,
    ipPools: s.ipPools,
    affineBlocks: s.blocks[thisNode] ?? [],
    secret: (name, key) => s.secrets?.[name]?.[key],
  };
}

const bgpPeer = (name: string, spec: Record<string, unknown>): Resource => res('BGPPeer', name, spec);

export const SECRETS = {
  'bgp-secrets': { mesh: 'mesh-pass-1', tor: 'tor pass #2', rr: 'rr-pass' },
};

export function seedScenario(): Scenario {
  return {
    name: 'seed',
    nodes: seedNodes(),
    bgpConfigurations: [seedBgpConfiguration()],
    bgpPeers: [],
    ipPools: [seedPool()],
    blocks: SEED_BLOCKS,
  };
}

export function meshDisabledScenario(): Scenario {
  return { ...seedScenario(), name: 'mesh-disabled', bgpConfigurations: [res('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: false })] };
}

/** Mesh plus a global ToR (eBGP, with a password) and a global peer on port 1790. */
export function globalPeersScenario(): Scenario {
  return {
    ...seedScenario(),
    name: 'global-peers',
    bgpPeers: [
      bgpPeer('tor', { peerIP: '10.0.0.1', asNumber: 65001, password: { secretKeyRef: { name: 'bgp-secrets', key: 'tor' } } }),
      bgpPeer('alt-port', { peerIP: '10.0.0.5:1790', asNumber: 64512 }),
    ],
    secrets: SECRETS,
  };
}

/** Per-node peers: by node name, and by nodeSelector (workers) with a peerSelector on masters. */
export function nodePeersScenario(): Scenario {
  return {
    ...seedScenario(),
    name: 'node-peers',
    bgpConfigurations: [res('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: false, asNumber: 64512 })],
    bgpPeers: [
      bgpPeer('worker02-tor', { node: 'playcekube-worker02', peerIP: '10.0.0.2', asNumber: 65002, maxRestartTime: '2m', keepaliveTime: '10s' }),
      bgpPeer('workers-to-masters', {
        nodeSelector: "!has(node-role.kubernetes.io/control-plane)",
        peerSelector: 'has(node-role.kubernetes.io/control-plane)',
      }),
    ],
  };
}

/** A route reflector (master01, cluster 224.0.0.1) for every other node; mesh disabled. */
export function routeReflectorScenario(meshEnabled = false): Scenario {
  return {
    ...seedScenario(),
    name: meshEnabled ? 'route-reflector-with-mesh' : 'route-reflector',
    nodes: SEED_NODE_NAMES.map((n) =>
      n === 'playcekube-master01'
        ? seedNode(n, { bgp: { routeReflectorClusterID: '224.0.0.1' }, labels: { 'route-reflector': 'true' } })
        : seedNode(n),
    ),
    bgpConfigurations: [res('BGPConfiguration', 'default', { nodeToNodeMeshEnabled: meshEnabled, asNumber: 64512 })],
    bgpPeers: [bgpPeer('peer-with-route-reflectors', { nodeSelector: 'all()', peerSelector: "route-reflector == 'true'" })],
  };
}

/** Dual stack: IPv6 addresses, an IPv6 pool and blocks, an IPv6 global peer on a port. */
export function dualStackScenario(): Scenario {
  const six: Record<string, string> = {
    'playcekube-master01': 'fd00:10::11',
    'playcekube-master02': 'fd00:10::12',
    'playcekube-master03': 'fd00:10::13',
    'playcekube-worker01': 'fd00:10::14',
    'playcekube-worker02': 'fd00:10::15',
  };
  return {
    ...seedScenario(),
    name: 'dual-stack',
    nodes: SEED_NODE_NAMES.map((n) => seedNode(n, { bgp: { ipv6Address: `${six[n]}/64` } })),
    ipPools: [seedPool(), res('IPPool', 'default-ipv6-ippool', { cidr: 'fd80:24e2:f998:72d6::/64', blockSize: 122, ipipMode: 'Never', vxlanMode: 'Never' })],
    bgpPeers: [bgpPeer('tor6', { peerIP: '[fd00:10::1]:1790', asNumber: 65001 })],
    blocks: Object.fromEntries(
      SEED_NODE_NAMES.map((n, i) => [n, [...SEED_BLOCKS[n], `fd80:24e2:f998:72d6:${(i + 1).toString(16)}::/122`]]),
    ),
  };
}

/** Every other knob: pools of each kind, service CIDRs, per-node configuration, peer options. */
export function kitchenSinkScenario(): Scenario {
  return {
    name: 'kitchen-sink',
    nodes: [
      ...SEED_NODE_NAMES.filter((n) => n !== 'playcekube-worker01').map((n) => seedNode(n)),
      seedNode('playcekube-worker01', { bgp: { asNumber: 65010 } }),
    ],
    bgpConfigurations: [
      res('BGPConfiguration', 'default', {
        nodeToNodeMeshEnabled: true,
        asNumber: 64512,
        logSeverityScreen: 'Info',
        nodeMeshPassword: { secretKeyRef: { name: 'bgp-secrets', key: 'mesh' } },
        nodeMeshMaxRestartTime: '90s',
        serviceClusterIPs: [{ cidr: '10.233.0.0/18' }],
        serviceExternalIPs: [{ cidr: '192.0.2.0/24' }],
        ignoredInterfaces: ['docker*'],
      }),
      res('BGPConfiguration', 'node.playcekube-worker02', {
        listenPort: 1179,
        logSeverityScreen: 'Debug',
        bindMode: 'NodeIP',
        programClusterRoutes: 'Disabled',
      }),
      res('BGPConfiguration', 'node.playcekube-master03', { listenPort: 1179 }),
    ],
    bgpPeers: [
      bgpPeer('tor', {
        peerIP: '10.0.0.1',
        asNumber: 65001,
        localASNumber: 64600,
        keepOriginalNextHop: true,
        ttlSecurity: 2,
        numAllowedLocalASNumbers: 1,
        password: { secretKeyRef: { name: 'bgp-secrets', key: 'tor' } },
      }),
      bgpPeer('self-next-hop', { peerIP: '10.0.0.3', asNumber: 64512, nextHopMode: 'Self', sourceAddress: 'None' }),
      bgpPeer('keep-next-hop', { peerIP: '10.0.0.4', asNumber: 64512, nextHopMode: 'Keep' }),
    ],
    ipPools: [
      seedPool(),
      res('IPPool', 'vxlan-pool', { cidr: '10.250.0.0/16', vxlanMode: 'Always', ipipMode: 'Never' }),
      res('IPPool', 'flat-pool', { cidr: '10.240.0.0/16' }),
      res('IPPool', 'private-pool', { cidr: '10.245.0.0/16', disableBGPExport: true }),
      res('IPPool', 'cross-subnet', { cidr: '10.246.0.0/16', ipipMode: 'CrossSubnet' }),
    ],
    blocks: {
      ...SEED_BLOCKS,
      'playcekube-worker02': ['10.233.106.0/24', '10.250.3.0/26', '10.240.7.0/26', '10.245.1.0/26', '10.246.1.0/26', '10.233.106.5/32'],
    },
    secrets: SECRETS,
  };
}

export function allScenarios(): Scenario[] {
  return [
    seedScenario(),
    meshDisabledScenario(),
    globalPeersScenario(),
    nodePeersScenario(),
    routeReflectorScenario(false),
    routeReflectorScenario(true),
    dualStackScenario(),
    kitchenSinkScenario(),
  ];
}
