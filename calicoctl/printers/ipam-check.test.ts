import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCheckAttrs, renderIpamCheck, type IpamCheckReport } from './ipam-check.js';

const lines = (...ls: string[]) => ls.map((l) => l + '\n').join('');

const clean: IpamCheckReport = {
  blocks: [
    { cidr: '10.233.77.0/24', affinity: 'host:playcekube-master01' },
    { cidr: '10.233.99.0/24', affinity: 'host:playcekube-worker01' },
  ],
  allocationCount: 3,
  activePools: ['10.233.64.0/18'],
  nodeTunnelIPs: 2,
  workloadIPs: 1,
  inUseIPCount: 3,
  topNodes: [
    { node: 'playcekube-worker01', count: 2 },
    { node: 'playcekube-master01', count: 1 },
  ],
  leaked: [],
  multipleOwners: [],
  notInPool: [],
  noAllocation: [],
  handlesWithoutIPs: [],
  handlesWithIPs: 3,
  missingHandles: [],
};

test('a clean check, line for line', () => {
  assert.equal(
    renderIpamCheck(clean),
    lines(
      'Checking IPAM for inconsistencies...',
      '',
      'Loading all IPAM blocks...',
      'Found 2 IPAM blocks.',
      ' IPAM block 10.233.77.0/24 affinity=host:playcekube-master01:',
      ' IPAM block 10.233.99.0/24 affinity=host:playcekube-worker01:',
      'IPAM blocks record 3 allocations.',
      '',
      'Loading all IPAM pools...',
      '  10.233.64.0/18',
      'Found 1 active IP pools.',
      '',
      'Loading all nodes.',
      'Found 2 node tunnel IPs.',
      '',
      'Loading all service load balancer IPs.',
      'No configuration for LoadBalancer kubecontroller found, skipping service check',
      '',
      'Loading all workload endpoints.',
      'Found 1 workload IPs.',
      'Workloads and nodes are using 3 IPs.',
      '',
      'Loading all handles',
      'Looking for top (up to 20) nodes by allocations...',
      '  playcekube-worker01 has 2 allocations',
      '  playcekube-master01 has 1 allocations',
      'Node with most allocations has 2; median is 1',
      '',
      'Scanning for IPs that are allocated but not actually in use...',
      'Found 0 IPs that are allocated in IPAM but not actually in use.',
      'Scanning for IPs that are in use by a workload or node but not allocated in IPAM...',
      'Found 0 in-use IPs that are not in active IP pools.',
      'Found 0 in-use IPs that are in active IP pools but have no corresponding IPAM allocation.',
      '',
      'Scanning for IPAM handles with no matching IPs...',
      'Found 0 handles with no matching IPs (and 3 handles with matches).',
      'Scanning for IPs with missing handle...',
      'Found 0 handles mentioned in blocks with no matching handle resource.',
      'Check complete; found 0 problems.',
    ),
  );
});

const broken: IpamCheckReport = {
  ...clean,
  blocks: [{ cidr: '10.233.77.0/24', affinity: null }],
  allocationCount: 2,
  nodeTunnelIPs: [{ ip: '10.233.77.0', owner: 'Node(m1)' }],
  loadBalancer: { services: 1, ips: [{ ip: '192.0.2.10', owner: 'web' }] },
  workloadIPs: [
    { ip: '10.233.77.5', owner: 'Workload(default/a)' },
    { ip: '10.233.77.5', owner: 'Workload(default/b)' },
    { ip: '172.16.0.9', owner: 'Workload(default/c)' },
  ],
  inUseIPCount: undefined,
  topNodes: [{ node: 'm1', count: 2 }],
  leaked: [{ ip: '10.233.77.1', handle: 'k8s-pod-network.x', attrs: { pod: 'gone', namespace: 'default', node: 'm1' } }],
  multipleOwners: ['10.233.77.5'],
  notInPool: [{ ip: '172.16.0.9', owners: ['Workload(default/c)'] }],
  noAllocation: [{ ip: '10.233.77.5', owners: ['Workload(default/a)', 'Workload(default/b)'] }],
  handlesWithoutIPs: ['k8s-pod-network.old'],
  handlesWithIPs: 1,
  missingHandles: ['ipip-tunnel-addr-m1'],
  allocations: [
    { ip: '10.233.77.0', handle: 'ipip-tunnel-addr-m1', attrs: { node: 'm1', type: 'ipipTunnelAddress' }, block: '10.233.77.0/24' },
    { ip: '10.233.77.1', handle: 'k8s-pod-network.x', attrs: { pod: 'gone', namespace: 'default', node: 'm1' }, block: '10.233.77.0/24' },
  ],
};

test('--show-problem-ips', () => {
  const out = renderIpamCheck(broken, { showProblemIPs: true }).split('\n');
  const from = (s: string) => out.slice(out.indexOf(s));
  assert.deepEqual(from('Loading all service load balancer IPs.').slice(0, 8), [
    'Loading all service load balancer IPs.',
    'Found 1 service load balancer(s).',
    '',
    'Loading all workload endpoints.',
    'Found 3 workload IPs.',
    'Workloads and nodes are using 4 IPs.',
    '',
    'Loading all handles',
  ]);
  assert.deepEqual(from('Scanning for IPs that are allocated but not actually in use...'), [
    'Scanning for IPs that are allocated but not actually in use...',
    '  10.233.77.1 leaked; attrs Main:k8s-pod-network.x Extra:namespace=default,node=m1,pod=gone',
    'Found 1 IPs that are allocated in IPAM but not actually in use.',
    'Scanning for IPs that are in use by a workload or node but not allocated in IPAM...',
    '  172.16.0.9 in use by Workload(default/c) is not in any active IP pool.',
    '  10.233.77.5 has multiple owners.',
    '  10.233.77.5 in use by Workload(default/a) and in active IPAM pool but has no IPAM allocation.',
    '  10.233.77.5 in use by Workload(default/b) and in active IPAM pool but has no IPAM allocation.',
    'Found 1 in-use IPs that are not in active IP pools.',
    'Found 1 in-use IPs that are in active IP pools but have no corresponding IPAM allocation.',
    '',
    'Scanning for IPAM handles with no matching IPs...',
    'Found 1 handles with no matching IPs (and 1 handles with matches).',
    'Scanning for IPs with missing handle...',
    '  ipip-tunnel-addr-m1 is in use in a block but doesn\'t exist.',
    'Found 1 handles mentioned in blocks with no matching handle resource.',
    'Check complete; found 4 problems.',
    '',
  ]);
  assert.ok(out.includes(' IPAM block 10.233.77.0/24 affinity=<none>:'));
  assert.ok(!out.some((l) => l.includes('allocated; attrs') || l.includes('belongs to')));
});

test('--show-all-ips adds allocated / belongs-to / handle lines', () => {
  const out = renderIpamCheck(broken, { showAllIPs: true }).split('\n');
  assert.deepEqual(out.slice(2, 8), [
    'Loading all IPAM blocks...',
    'Found 1 IPAM blocks.',
    ' IPAM block 10.233.77.0/24 affinity=<none>:',
    '  10.233.77.0 allocated; attrs Main:ipip-tunnel-addr-m1 Extra:node=m1,type=ipipTunnelAddress',
    '  10.233.77.1 allocated; attrs Main:k8s-pod-network.x Extra:namespace=default,node=m1,pod=gone',
    'IPAM blocks record 2 allocations.',
  ]);
  assert.ok(out.includes('  10.233.77.0 belongs to Node(m1)'));
  assert.ok(out.includes('  192.0.2.10 belongs to web'));
  assert.ok(out.includes('  172.16.0.9 belongs to Workload(default/c)'));
  assert.ok(out.includes("  k8s-pod-network.old doesn't have any active IPs."));
  assert.ok(out.includes('  10.233.77.1 leaked; attrs Main:k8s-pod-network.x Extra:namespace=default,node=m1,pod=gone'));
  assert.equal(out.indexOf('  10.233.77.0 belongs to Node(m1)') - out.indexOf('Loading all nodes.'), 1);
});

test('top nodes: at most 20 printed, median from the full list; HEAD block validation', () => {
  const topNodes = Array.from({ length: 25 }, (_, i) => ({ node: `n${i}`, count: 30 - i }));
  const out = renderIpamCheck({ ...clean, topNodes, invalidBlocks: [{ key: 'x', error: 'bad' }] });
  const ls = out.split('\n');
  assert.equal(ls.filter((l) => / has \d+ allocations$/.test(l)).length, 20);
  assert.ok(ls.includes('Node with most allocations has 30; median is 18'));
  assert.ok(out.endsWith(lines('Validating IPAMBlock structures...', '  IPAMBlock x is invalid: bad', 'Found 1 invalid IPAMBlocks.', 'Check complete; found 1 problems.')));
});

test('attribute strings', () => {
  assert.equal(formatCheckAttrs({ ip: 'x' }), 'Main:<none> Extra:');
  assert.equal(formatCheckAttrs({ ip: 'x', attrsMissing: true }), '<missing>');
  assert.equal(formatCheckAttrs({ ip: 'x', handle: 'h', attrs: { b: '2', a: '1' }, alternateAttrs: { vmi: 'v' } }), 'Main:h Extra:a=1,b=2 Alternate:vmi=v');
});
