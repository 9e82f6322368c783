import { test } from 'node:test';
import assert from 'node:assert/strict';
import { columnsFor, joinAndTruncate, knownHeadings, renderCustomColumns, renderGet, type GetResource } from './get-columns.js';

const lines = (...ls: string[]) => ls.map((l) => l + '\n').join('');
const trimmed = (s: string) => s.split('\n').map((l) => l.trimEnd());
const API = 'projectcalico.org/v3';

const defaultPool: GetResource = {
  apiVersion: API,
  kind: 'IPPool',
  metadata: { name: 'default-ipv4-ippool' },
  spec: { cidr: '192.168.0.0/16', ipipMode: 'Always', natOutgoing: true, nodeSelector: 'all()', blockSize: 26, assignmentMode: 'Automatic' },
};

function wep(ns: string, pod: string, node: string, net: string, iface: string): GetResource {
  return {
    apiVersion: API,
    kind: 'WorkloadEndpoint',
    metadata: { name: `${node}-k8s-${pod}-eth0`, namespace: ns },
    spec: { orchestrator: 'k8s', node, pod, endpoint: 'eth0', ipNetworks: [net], interfaceName: iface, profiles: ['kns.' + ns] },
  };
}

test('reference §3.4: ippool ps and wide', () => {
  assert.equal(
    renderGet('IPPool', [defaultPool]),
    lines('NAME                  CIDR             SELECTOR   ', 'default-ipv4-ippool   192.168.0.0/16   all()      ', ''),
  );
  // vxlanMode absent → Never; disabled / disableBGPExport absent → false
  assert.equal(
    renderGet('IPPool', [defaultPool], { wide: true, ctx: { calicoVersion: 'v3.32.0' } }),
    lines(
      'NAME                  CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR   ASSIGNMENTMODE   ',
      'default-ipv4-ippool   192.168.0.0/16   true   Always     Never       false      false              all()      Automatic        ',
      '',
    ),
  );
});

test('reference §3.4: workload endpoints, with and without NAMESPACE', () => {
  assert.equal(
    renderGet('WorkloadEndpoint', [wep('default', 'nginx-7cf7d6dbc8-hw6tb', 'node1', '192.168.1.5/32', 'cali8f1a2b3c4d5')]),
    lines('WORKLOAD                 NODE    NETWORKS         INTERFACE         ', 'nginx-7cf7d6dbc8-hw6tb   node1   192.168.1.5/32   cali8f1a2b3c4d5   ', ''),
  );
  assert.equal(
    renderGet('WorkloadEndpoint', [wep('kube-system', 'coredns-5d78c9869d-abcde', 'node1', '192.168.1.2/32', 'cali0123456789a')], {
      showNamespace: true,
    }),
    lines(
      'NAMESPACE     WORKLOAD                   NODE    NETWORKS         INTERFACE         ',
      'kube-system   coredns-5d78c9869d-abcde   node1   192.168.1.2/32   cali0123456789a   ',
      '',
    ),
  );
});

test('reference §3.4: nodes -o wide with the inherited AS number', () => {
  const node = (name: string, ip: string): GetResource => ({
    apiVersion: API,
    kind: 'Node',
    metadata: { name },
    spec: { bgp: { ipv4Address: ip, ipv4IPIPTunnelAddr: '10.233.1.0' } },
  });
  assert.equal(
    renderGet('Node', [node('node1', '10.0.0.21/24'), node('node2', '10.0.0.22/24')], { wide: true, ctx: { globalAS: '64512' } }),
    lines('NAME    ASN       IPV4           IPV6   ', 'node1   (64512)   10.0.0.21/24          ', 'node2   (64512)   10.0.0.22/24          ', ''),
  );
  const own: GetResource = { kind: 'Node', metadata: { name: 'n3' }, spec: { bgp: { asNumber: 65001 } } };
  const noBGP: GetResource = { kind: 'Node', metadata: { name: 'n4' }, spec: {} };
  const cols = columnsFor('Node', true);
  assert.equal(cols[1].cell(own, {}), '65001');
  assert.equal(cols[1].cell(noBGP, {}), '');
  assert.equal(cols[1].cell(own, { globalAS: 'unknown' }), '65001');
  assert.equal(cols[1].cell({ kind: 'Node', metadata: { name: 'n' }, spec: { bgp: {} } }, { globalAS: 'unknown' }), '(unknown)');
  assert.equal(cols[1].cell({ kind: 'Node', metadata: { name: 'n' }, spec: { bgp: {} } }, {}), '(64512)');
});

test('seed (calicoctl v3.20.3): get ippool -o wide has no ASSIGNMENTMODE', () => {
  const pool: GetResource = {
    apiVersion: API,
    kind: 'IPPool',
    metadata: { name: 'default-pool' },
    spec: { blockSize: 24, cidr: '10.233.64.0/18', ipipMode: 'Always', natOutgoing: true, nodeSelector: 'all()', vxlanMode: 'Never' },
  };
  assert.deepEqual(trimmed(renderGet('IPPool', [pool], { wide: true, ctx: { calicoVersion: 'v3.20.3' } })), [
    'NAME           CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR',
    'default-pool   10.233.64.0/18   true   Always     Never       false      false              all()',
    '',
    '',
  ]);
});

test('seed: get workloadEndpoint', () => {
  const weps = [
    wep('default', 'nginx-deployment-84cd76b964-jnt76', 'playcekube-worker02', '10.233.106.12/32', 'cali382bc0c1cbe'),
    wep('default', 'nginx-volume-deployment-69c9474d89-dbgm4', 'playcekube-worker02', '10.233.106.14/32', 'calif31b03684db'),
    wep('default', 'nginx-volume-deployment-69c9474d89-hh48q', 'playcekube-worker01', '10.233.99.10/32', 'cali146ae769172'),
    wep('default', 'nginx-volume-deployment-69c9474d89-jjxfr', 'playcekube-worker01', '10.233.99.9/32', 'cali6d8b6ed7fbf'),
    wep('default', 'nginx-volume-deployment-69c9474d89-mlwgc', 'playcekube-worker02', '10.233.106.13/32', 'cali37dd35672f6'),
    wep('default', 'nginx-volume-deployment-69c9474d89-v6zdm', 'playcekube-worker01', '10.233.99.11/32', 'cali7d09eb87bd4'),
  ];
  assert.deepEqual(trimmed(renderGet('WorkloadEndpoint', weps)), [
    'WORKLOAD                                   NODE                  NETWORKS           INTERFACE',
    'nginx-deployment-84cd76b964-jnt76          playcekube-worker02   10.233.106.12/32   cali382bc0c1cbe',
    'nginx-volume-deployment-69c9474d89-dbgm4   playcekube-worker02   10.233.106.14/32   calif31b03684db',
    'nginx-volume-deployment-69c9474d89-hh48q   playcekube-worker01   10.233.99.10/32    cali146ae769172',
    'nginx-volume-deployment-69c9474d89-jjxfr   playcekube-worker01   10.233.99.9/32     cali6d8b6ed7fbf',
    'nginx-volume-deployment-69c9474d89-mlwgc   playcekube-worker02   10.233.106.13/32   cali37dd35672f6',
    'nginx-volume-deployment-69c9474d89-v6zdm   playcekube-worker01   10.233.99.11/32    cali7d09eb87bd4',
    '',
    '',
  ]);
});

test('seed: get workloadendpoints -a | grep cali529aed0cdfd', () => {
  // The seed shows one grepped line; its column widths say the longest namespace had 13
  // characters, the longest workload 57 and the longest network 16.
  const weps = [
    wep('cattle-system', 'cattle-cluster-agent-679697c475-9l4p6', 'playcekube-worker01', '10.233.99.12/32', 'cali529aed0cdfd'),
    wep('kube-system', 'w'.repeat(57), 'playcekube-worker02', '10.233.106.12/32', 'cali0000000000a'),
  ];
  const out = renderGet('WorkloadEndpoint', weps, { showNamespace: true });
  const hit = out.split('\n').filter((l) => l.includes('cali529aed0cdfd'));
  assert.deepEqual(
    hit.map((l) => l.trimEnd()),
    ['cattle-system   cattle-cluster-agent-679697c475-9l4p6                       playcekube-worker01   10.233.99.12/32    cali529aed0cdfd'],
  );
});

test('wide WorkloadEndpoint: NAME, PROFILES and NATS', () => {
  const r: GetResource = {
    kind: 'WorkloadEndpoint',
    metadata: { name: 'n1-k8s-p-eth0', namespace: 'default' },
    spec: {
      workload: '',
      pod: 'p',
      node: 'n1',
      ipNetworks: ['10.0.0.1/32', 'fd00::1/128'],
      interfaceName: 'cali1',
      profiles: ['kns.default', 'ksa.default.default'],
      ipNATs: [{ internalIP: '10.0.0.1', externalIP: '172.16.0.1' }],
    },
  };
  const cells = columnsFor('WorkloadEndpoint', true).map((c) => c.cell(r, {}));
  assert.deepEqual(cells, [
    'n1-k8s-p-eth0',
    'p',
    'n1',
    '10.0.0.1/32,fd00::1/128',
    'cali1',
    'kns.default,ksa.default.default',
    '{10.0.0.1 172.16.0.1}',
  ]);
});

test('BGPPeer NODE: node, else node selector, else (global); ASN 0 when unset', () => {
  const peer = (spec: Record<string, unknown>): GetResource => ({ kind: 'BGPPeer', metadata: { name: 'p' }, spec });
  const node = columnsFor('BGPPeer', false)[2];
  const asn = columnsFor('BGPPeer', false)[3];
  assert.equal(node.heading, 'NODE');
  assert.equal(node.cell(peer({ node: 'n1', nodeSelector: 'x' }), {}), 'n1');
  assert.equal(node.cell(peer({ nodeSelector: "rack == 'a'" }), {}), "rack == 'a'");
  assert.equal(node.cell(peer({ peerIP: '10.0.0.1' }), {}), '(global)');
  assert.equal(asn.cell(peer({ asNumber: 64513 }), {}), '64513');
  assert.equal(asn.cell(peer({ asNumber: '1.10' }), {}), '65546');
  assert.equal(asn.cell(peer({}), {}), '0');
});

test('BGPConfiguration, ClusterInformation, Tier, policies print Go values', () => {
  const bgp = (spec: Record<string, unknown>): GetResource => ({ kind: 'BGPConfiguration', metadata: { name: 'default' }, spec });
  assert.equal(
    renderGet('BGPConfiguration', [bgp({ logSeverityScreen: 'Info', nodeToNodeMeshEnabled: false, asNumber: 64512 }), bgp({})]),
    lines('NAME      LOGSEVERITY   MESHENABLED   ASNUMBER   ', 'default   Info          false         64512      ', 'default                 -             -          ', ''),
  );
  const ci: GetResource = {
    kind: 'ClusterInformation',
    metadata: { name: 'default' },
    spec: { clusterGUID: 'abc', clusterType: 'k8s,bgp,kdd', calicoVersion: 'v3.20.3' },
  };
  assert.deepEqual(
    columnsFor('ClusterInformation', false).map((c) => c.cell(ci, {})),
    ['default', 'abc', 'k8s,bgp,kdd', 'v3.20.3', '<nil>'],
  );
  const tiers: GetResource[] = [
    { kind: 'Tier', metadata: { name: 'default' }, spec: { order: 1000000 } },
    { kind: 'Tier', metadata: { name: 'security' }, spec: { order: 100 } },
    { kind: 'Tier', metadata: { name: 'unordered' }, spec: {} },
  ];
  assert.equal(
    renderGet('Tier', tiers),
    lines('NAME        ORDER   ', 'default     1e+06   ', 'security    100     ', 'unordered   <nil>   ', ''),
  );
  const pol: GetResource = {
    kind: 'NetworkPolicy',
    metadata: { name: 'default.allow-dns', namespace: 'kube-system' },
    spec: { tier: 'default', order: 10.5, selector: 'all()' },
  };
  assert.equal(
    renderGet('NetworkPolicy', [pol], { wide: true, showNamespace: true }),
    lines('NAMESPACE     NAME                TIER      ORDER   SELECTOR   ', 'kube-system   default.allow-dns   default   10.5    all()      ', ''),
  );
  assert.deepEqual(
    columnsFor('GlobalNetworkPolicy', true, { calicoVersion: 'v3.28.0' }).map((c) => c.heading),
    ['NAME', 'ORDER', 'SELECTOR'],
  );
  assert.deepEqual(columnsFor('GlobalNetworkPolicy', false).map((c) => c.heading), ['NAME', 'TIER']);
});

test('other kinds and their wide columns', () => {
  const heads = (kind: string, wide: boolean) => columnsFor(kind, wide).map((c) => c.heading).join(' ');
  assert.equal(heads('Profile', true), 'NAME LABELS');
  assert.equal(heads('HostEndpoint', false), 'NAME NODE');
  assert.equal(heads('HostEndpoint', true), 'NAME NODE INTERFACE IPS PROFILES');
  assert.equal(heads('IPReservation', true), 'NAME CIDRS');
  assert.equal(heads('IPAMConfiguration', false), 'NAME STRICTAFFINITY AUTOALLOCATEBLOCKS');
  assert.equal(heads('IPAMConfiguration', true), 'NAME STRICTAFFINITY AUTOALLOCATEBLOCKS MAXBLOCKSPERHOST');
  assert.equal(heads('NetworkSet', true), 'NAME NETS');
  assert.equal(heads('GlobalNetworkSet', true), 'NAME NETS');
  assert.equal(heads('FelixConfiguration', true), 'NAME');
  assert.equal(heads('KubeControllersConfiguration', true), 'NAME');
  assert.equal(heads('BGPFilter', true), 'NAME'); // not one of ours: NAME only
  assert.equal(heads('ippool', false), 'NAME CIDR SELECTOR'); // kind names match case-insensitively

  const profile: GetResource = { kind: 'Profile', metadata: { name: 'kns.default' }, spec: { labelsToApply: { 'pcns.z': 'b', 'pcns.a': 'c' } } };
  assert.equal(columnsFor('Profile', true)[1].cell(profile, {}), 'pcns.a=c,pcns.z=b');
  const ipam: GetResource = { kind: 'IPAMConfiguration', metadata: { name: 'default' }, spec: { strictAffinity: false, autoAllocateBlocks: true } };
  assert.deepEqual(columnsFor('IPAMConfiguration', true).map((c) => c.cell(ipam, {})), ['default', 'false', 'true', '0']);
  // a namespaced kind without showNamespace, and a cluster kind with it: no NAMESPACE column
  assert.ok(renderGet('NetworkSet', [], { showNamespace: true }).startsWith('NAMESPACE   NAME   '));
  assert.ok(renderGet('GlobalNetworkSet', [], { showNamespace: true }).startsWith('NAME   '));
});

test('joinAndTruncate cuts at 80 bytes with "..."', () => {
  const nets = Array.from({ length: 10 }, (_, i) => `10.0.${i}.0/24`);
  const s = joinAndTruncate(nets, ',', 80);
  assert.equal(s.length, 80);
  assert.ok(s.endsWith('...'));
  assert.equal(s, nets.join(',').slice(0, 77) + '...');
  assert.equal(joinAndTruncate(['a', 'b'], ',', 80), 'a,b');
  assert.equal(joinAndTruncate(undefined, ','), '');
  const exactly80 = ['x'.repeat(80)];
  assert.equal(joinAndTruncate(exactly80, ',', 80), 'x'.repeat(80));
});

test('custom columns', () => {
  assert.equal(
    renderCustomColumns('IPPool', ['NAME', 'CIDR'], [defaultPool]),
    lines('NAME                  CIDR             ', 'default-ipv4-ippool   192.168.0.0/16   ', ''),
  );
  // case-insensitive by default; the (headings, resources, {kind}) form; hidden columns
  assert.equal(
    renderCustomColumns(['name', 'Orchestrator'], [wep('default', 'p', 'n1', '10.0.0.1/32', 'cali1')]),
    lines('NAME            ORCHESTRATOR   ', 'n1-k8s-p-eth0   k8s            ', ''),
  );
  assert.equal(renderCustomColumns(['NAME'], [], { kind: 'Tier' }), lines('NAME   ', ''));
  assert.throws(
    () => renderCustomColumns('IPPool', ['NAME', 'FOO'], [defaultPool]),
    new Error(
      'unknown heading FOO, valid values are: ASSIGNMENTMODE, CIDR, DISABLEBGPEXPORT, DISABLED, IPIPMODE, NAME, NAT, SELECTOR, VXLANMODE',
    ),
  );
  assert.throws(() => renderCustomColumns('IPPool', ['name'], [defaultPool], { exactCase: true }), /unknown heading name, valid values/);
  assert.deepEqual(knownHeadings('WorkloadEndpoint').sort(), [
    'INTERFACE',
    'NAME',
    'NAMESPACE',
    'NATS',
    'NETWORKS',
    'NODE',
    'ORCHESTRATOR',
    'PROFILES',
    'WORKLOAD',
  ]);
});
