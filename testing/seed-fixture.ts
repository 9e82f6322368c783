// The seed cluster as v3 resources, for tests: five nodes (playcekube-master01..03,
// playcekube-worker01..02 at 10.0.0.11–15 on 10.0.0.0/16), the kubespray default BGPConfiguration
// (mesh on, AS 64512), and `default-pool` 10.233.64.0/18 (blockSize 24, ipipMode Always,
// natOutgoing). Blocks as in the seed's `ip route` / `ipam show --show-blocks`.

import type { Resource } from '../libcalico-go/lib/apis/v3/resource.js';

export const SEED_NODE_NAMES = [
  'playcekube-master01',
  'playcekube-master02',
  'playcekube-master03',
  'playcekube-worker01',
  'playcekube-worker02',
] as const;

export const SEED_ADDRESSES: Record<string, string> = {
  'playcekube-master01': '10.0.0.11',
  'playcekube-master02': '10.0.0.12',
  'playcekube-master03': '10.0.0.13',
  'playcekube-worker01': '10.0.0.14',
  'playcekube-worker02': '10.0.0.15',
};

export const SEED_BLOCKS: Record<string, string[]> = {
  'playcekube-master01': ['10.233.77.0/24'],
  'playcekube-master02': ['10.233.88.0/24', '10.233.113.0/24'],
  'playcekube-master03': [],
  'playcekube-worker01': ['10.233.99.0/24'],
  'playcekube-worker02': ['10.233.106.0/24'],
};

export function res(kind: string, name: string, spec: Record<string, unknown>, labels?: Record<string, string>): Resource {
  return { apiVersion: 'projectcalico.org/v3', kind, metadata: labels ? { name, labels } : { name }, spec };
}

export function seedNode(name: string, extra: { bgp?: Record<string, unknown>; labels?: Record<string, string> } = {}): Resource {
  return res(
    'Node',
    name,
    { bgp: { ipv4Address: `${SEED_ADDRESSES[name]}/16`, ...(extra.bgp ?? {}) } },
    { 'kubernetes.io/hostname': name, 'kubernetes.io/os': 'linux', ...(name.includes('master') ? { 'node-role.kubernetes.io/control-plane': '' } : {}), ...(extra.labels ?? {}) },
  );
}

export const seedNodes = (): Resource[] => SEED_NODE_NAMES.map((n) => seedNode(n));

export const seedBgpConfiguration = (): Resource =>
  res('BGPConfiguration', 'default', { logSeverityScreen: 'Info', nodeToNodeMeshEnabled: true, asNumber: 64512 });

export const seedPool = (): Resource =>
  res('IPPool', 'default-pool', {
    cidr: '10.233.64.0/18',
    blockSize: 24,
    ipipMode: 'Always',
    natOutgoing: true,
    nodeSelector: 'all()',
    vxlanMode: 'Never',
  });
