import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Resource } from '../../../apis/v3/resource.js';
import type { K8sNode } from './k8s-objects.js';
import {
  ANN_ANNOTATIONS,
  ANN_KUBE_LABELS,
  ANN_LABELS,
  BGP_ANNOTATIONS,
  k8sNodeForUpdate,
  nodeAnnotationChanges,
  nodeFromK8s,
  parseASNumber,
} from './node.js';

const KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';

function k8sNode(annotations: Record<string, string> = {}, labels: Record<string, string> = {}): K8sNode {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'playcekube-worker01', uid: 'u-1', resourceVersion: '812', creationTimestamp: '2026-01-02T03:04:05Z', labels, annotations },
    spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'] },
    status: {
      addresses: [
        { type: 'InternalIP', address: '192.168.64.6' },
        { type: 'Hostname', address: 'playcekube-worker01' },
        { type: 'ExternalIP', address: '203.0.113.9' },
      ],
    },
  };
}

test('a k8s Node with every Calico annotation reads as the v3 Node Calico shows', () => {
  const n = nodeFromK8s(
    k8sNode(
      {
        'projectcalico.org/IPv4Address': '192.168.64.6/24',
        'projectcalico.org/IPv6Address': 'fd00::6/64',
        'projectcalico.org/IPv4IPIPTunnelAddr': '10.233.106.0',
        'projectcalico.org/ASNumber': '64512',
        'projectcalico.org/RouteReflectorClusterID': '224.0.0.1',
        'projectcalico.org/IPv4VXLANTunnelAddr': '10.233.72.128',
        'projectcalico.org/VXLANTunnelMACAddr': '66:0f:2b:7e:01:02',
        'projectcalico.org/IPv6VXLANTunnelAddr': 'fd00:72::1',
        'projectcalico.org/VXLANTunnelMACAddrV6': '66:0f:2b:7e:01:03',
        'projectcalico.org/IPv4WireguardInterfaceAddr': '10.233.72.129',
        'projectcalico.org/WireguardPublicKey': KEY,
        'projectcalico.org/labels': '{"rack":"r1","zone":"shadowed"}',
        'projectcalico.org/annotations': '{"note":"calico only"}',
        'node.alpha.kubernetes.io/ttl': '0',
      },
      { 'kubernetes.io/hostname': 'playcekube-worker01', zone: 'z1' },
    ),
  );
  assert.deepEqual(n, {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: {
      name: 'playcekube-worker01',
      uid: 'u-1',
      creationTimestamp: '2026-01-02T03:04:05Z',
      resourceVersion: '812',
      labels: { rack: 'r1', 'kubernetes.io/hostname': 'playcekube-worker01', zone: 'z1' },
      annotations: { note: 'calico only', [ANN_KUBE_LABELS]: '{"kubernetes.io/hostname":"playcekube-worker01","zone":"z1"}' },
    },
    spec: {
      bgp: {
        ipv4Address: '192.168.64.6/24',
        ipv6Address: 'fd00::6/64',
        ipv4IPIPTunnelAddr: '10.233.106.0',
        asNumber: 64512,
        routeReflectorClusterID: '224.0.0.1',
      },
      ipv4VXLANTunnelAddr: '10.233.72.128',
      vxlanTunnelMACAddr: '66:0f:2b:7e:01:02',
      ipv6VXLANTunnelAddr: 'fd00:72::1',
      vxlanTunnelMACAddrV6: '66:0f:2b:7e:01:03',
      wireguard: { interfaceIPv4Address: '10.233.72.129' },
      orchRefs: [{ nodeName: 'playcekube-worker01', orchestrator: 'k8s' }],
      addresses: [
        { address: '192.168.64.6/24', type: 'CalicoNodeIP' },
        { address: 'fd00::6/64', type: 'CalicoNodeIP' },
        { address: '192.168.64.6', type: 'InternalIP' },
        { address: '203.0.113.9', type: 'ExternalIP' },
      ],
    },
    status: { wireguardPublicKey: KEY, podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'] },
  });
});

test('a plain k8s Node: no bgp, only k8s addresses, kube-labels null when it has no labels (Go\'s JSON of a nil map)', () => {
  const k = k8sNode();
  delete k.metadata!.labels;
  const n = nodeFromK8s(k);
  assert.equal(n.spec!.bgp, undefined);
  assert.equal(n.metadata.labels, undefined);
  assert.deepEqual(n.metadata.annotations, { [ANN_KUBE_LABELS]: 'null' });
  assert.deepEqual(n.spec!.addresses, [
    { address: '192.168.64.6', type: 'InternalIP' },
    { address: '203.0.113.9', type: 'ExternalIP' },
  ]);
});

test('invalid annotation values are ignored on read, one by one', () => {
  const n = nodeFromK8s(
    k8sNode({
      'projectcalico.org/IPv4Address': 'fd00::6/64', // wrong family
      'projectcalico.org/IPv6Address': 'not-an-address',
      'projectcalico.org/IPv4IPIPTunnelAddr': '10.233.106.0/32', // must be bare
      'projectcalico.org/ASNumber': '4294967296',
      'projectcalico.org/RouteReflectorClusterID': '1.2.3',
      'projectcalico.org/IPv4VXLANTunnelAddr': '10.233.72.300',
      'projectcalico.org/VXLANTunnelMACAddr': '66:0f:2b:7e:01',
      'projectcalico.org/IPv6VXLANTunnelAddr': '10.0.0.1', // wrong family
      'projectcalico.org/labels': 'not json',
      'projectcalico.org/annotations': '{"n":1}',
    }),
  );
  assert.equal(n.spec!.bgp, undefined);
  assert.equal(n.spec!.ipv4VXLANTunnelAddr, undefined);
  assert.equal(n.spec!.vxlanTunnelMACAddr, undefined);
  assert.deepEqual(n.status, { podCIDRs: ['10.244.1.0/24', 'fd00:1::/64'] });
  assert.deepEqual(n.metadata.annotations, { [ANN_KUBE_LABELS]: '{}' });
  // A BGP address needs its prefix length; only the valid one of a mixed set survives.
  assert.equal(nodeFromK8s(k8sNode({ 'projectcalico.org/IPv4Address': '10.0.0.5' })).spec!.bgp, undefined);
  const m = nodeFromK8s(k8sNode({ 'projectcalico.org/IPv4Address': '10.0.0.5/24', 'projectcalico.org/ASNumber': 'x' }));
  assert.deepEqual(m.spec!.bgp, { ipv4Address: '10.0.0.5/24' });
});

test('AS numbers: plain and dotted notation, range checked', () => {
  assert.equal(parseASNumber('64512'), 64512);
  assert.equal(parseASNumber('4294967295'), 4294967295);
  assert.equal(parseASNumber('1.10'), 65546);
  assert.equal(parseASNumber('65536.0'), undefined);
  assert.equal(parseASNumber('-1'), undefined);
  assert.equal(parseASNumber(''), undefined);
});

test('write: fields become annotations, empty fields and absent bgp delete theirs', () => {
  const cur = k8sNode(
    {
      'projectcalico.org/IPv4Address': '192.168.64.6/24',
      'projectcalico.org/ASNumber': '64512',
      'projectcalico.org/IPv4VXLANTunnelAddr': '10.233.72.128',
      'node.alpha.kubernetes.io/ttl': '0',
    },
    { zone: 'z1' },
  );
  const v3 = nodeFromK8s(cur);
  const spec = v3.spec as Record<string, any>;
  spec.bgp = { ipv4Address: '192.168.64.7/24', ipv4IPIPTunnelAddr: '10.233.106.0', asNumber: 65001 };
  spec.ipv4VXLANTunnelAddr = '';
  spec.vxlanTunnelMACAddr = '66:0f:2b:7e:01:02';
  const changes = nodeAnnotationChanges(v3, cur);
  assert.equal(changes['projectcalico.org/IPv4Address'], '192.168.64.7/24');
  assert.equal(changes['projectcalico.org/IPv4IPIPTunnelAddr'], '10.233.106.0');
  assert.equal(changes['projectcalico.org/ASNumber'], '65001');
  assert.equal(changes['projectcalico.org/IPv6Address'], null);
  assert.equal(changes['projectcalico.org/IPv4VXLANTunnelAddr'], null);
  assert.equal(changes['projectcalico.org/VXLANTunnelMACAddr'], '66:0f:2b:7e:01:02');

  const next = k8sNodeForUpdate(v3, cur);
  assert.deepEqual(next.metadata!.annotations, {
    'node.alpha.kubernetes.io/ttl': '0',
    'projectcalico.org/IPv4Address': '192.168.64.7/24',
    'projectcalico.org/IPv4IPIPTunnelAddr': '10.233.106.0',
    'projectcalico.org/ASNumber': '65001',
    'projectcalico.org/VXLANTunnelMACAddr': '66:0f:2b:7e:01:02',
  });
  assert.equal(next.metadata!.resourceVersion, '812', 'the PUT carries the revision just read');
  assert.deepEqual(next.metadata!.labels, { zone: 'z1' }, 'k8s labels are not written');
  assert.equal(cur.metadata!.annotations!['projectcalico.org/IPv4Address'], '192.168.64.6/24', 'input untouched');

  delete spec.bgp;
  const noBgp = k8sNodeForUpdate(v3, cur).metadata!.annotations!;
  for (const a of BGP_ANNOTATIONS) assert.equal(noBgp[a], undefined, a);
});

test('write: Calico labels and annotations go to their JSON annotations, k8s labels stripped via kube-labels', () => {
  const cur = k8sNode({}, { zone: 'z1', 'kubernetes.io/os': 'linux' });
  const v3 = nodeFromK8s(cur);
  v3.metadata.labels = { ...v3.metadata.labels, rack: 'r7', zone: 'edited' };
  v3.metadata.annotations = { ...v3.metadata.annotations, owner: 'net-team' };
  const ann = k8sNodeForUpdate(v3, cur).metadata!.annotations!;
  assert.equal(ann[ANN_LABELS], '{"rack":"r7"}');
  assert.equal(ann[ANN_ANNOTATIONS], '{"owner":"net-team"}');
  assert.equal(ann[ANN_KUBE_LABELS], undefined, 'kube-labels is read-side only');
  // Reads back as written; the k8s value wins over the edited one.
  const back = nodeFromK8s({ ...cur, metadata: { ...cur.metadata, annotations: ann } });
  assert.deepEqual(back.metadata.labels, { rack: 'r7', zone: 'z1', 'kubernetes.io/os': 'linux' });
  assert.equal(back.metadata.annotations!.owner, 'net-team');

  // Without kube-labels (a Node written from scratch) the current k8s labels are stripped.
  const fresh: Resource = { apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'playcekube-worker01', labels: { zone: 'z1', rack: 'r1' } }, spec: {} };
  const ann2 = k8sNodeForUpdate(fresh, cur).metadata!.annotations!;
  assert.equal(ann2[ANN_LABELS], '{"rack":"r1"}');
  assert.equal(ann2[ANN_ANNOTATIONS], undefined);
  // No Calico labels left: the annotation goes.
  const cleared = k8sNodeForUpdate({ ...fresh, metadata: { name: 'playcekube-worker01' } }, { ...cur, metadata: { ...cur.metadata, annotations: ann } });
  assert.equal(cleared.metadata!.annotations![ANN_LABELS], undefined);
  assert.equal(cleared.metadata!.annotations![ANN_ANNOTATIONS], undefined);
});

test('Tortie\'s status.tortie travels in the tortie.dev/status annotation; a bad one is ignored', () => {
  const cur = k8sNode();
  const v3 = nodeFromK8s(cur);
  v3.status = { ...v3.status, tortie: { configDrift: [{ variable: 'CALICO_IPV4POOL_IPIP', stored: 'Always' }], unsupportedSettings: ['wireguardEnabled'] } };
  const ann = k8sNodeForUpdate(v3, cur).metadata!.annotations!;
  assert.deepEqual(JSON.parse(ann['tortie.dev/status']!), v3.status.tortie);
  assert.deepEqual(nodeFromK8s({ ...cur, metadata: { ...cur.metadata, annotations: ann } }).status!.tortie, v3.status.tortie);
  delete v3.status.tortie;
  assert.equal(k8sNodeForUpdate(v3, { ...cur, metadata: { ...cur.metadata, annotations: ann } }).metadata!.annotations!['tortie.dev/status'], undefined);
  assert.equal(nodeFromK8s(k8sNode({ 'tortie.dev/status': '[1]' })).status!.tortie, undefined);
  assert.equal(nodeFromK8s(k8sNode({ 'tortie.dev/status': '{' })).status!.tortie, undefined);
});

test('round trip: read → write → read gives the same v3 Node', () => {
  const cur = k8sNode(
    {
      'projectcalico.org/IPv4Address': '192.168.64.6/24',
      'projectcalico.org/IPv4VXLANTunnelAddr': '10.233.72.128',
      'projectcalico.org/WireguardPublicKey': KEY,
      'projectcalico.org/labels': '{"rack":"r1"}',
    },
    { zone: 'z1' },
  );
  const v3 = nodeFromK8s(cur);
  assert.deepEqual(nodeFromK8s(k8sNodeForUpdate(v3, cur)), v3);
});
