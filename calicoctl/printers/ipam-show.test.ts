import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classifyBorrowed,
  formatCount,
  formatShare,
  renderIpamBorrowed,
  renderIpamConfiguration,
  renderIpamShow,
  renderIpamShowIP,
} from './ipam-show.js';

const lines = (...ls: string[]) => ls.map((l) => l + '\n').join('');

const refPools = [
  {
    cidr: '192.168.0.0/16',
    capacity: 65536,
    inUse: 5,
    blocks: [
      { cidr: '192.168.1.0/26', capacity: 64, inUse: 3 },
      { cidr: '192.168.2.64/26', capacity: 64, inUse: 2 },
    ],
  },
];

test('reference §3.5: ipam show --show-blocks', () => {
  assert.equal(
    renderIpamShow(refPools, { showBlocks: true }),
    lines(
      '+----------+-----------------+-----------+------------+--------------+',
      '| GROUPING |      CIDR       | IPS TOTAL | IPS IN USE |   IPS FREE   |',
      '+----------+-----------------+-----------+------------+--------------+',
      '| IP Pool  | 192.168.0.0/16  |     65536 | 5 (0%)     | 65531 (100%) |',
      '| Block    | 192.168.1.0/26  |        64 | 3 (5%)     | 61 (95%)     |',
      '| Block    | 192.168.2.64/26 |        64 | 2 (3%)     | 62 (97%)     |',
      '+----------+-----------------+-----------+------------+--------------+',
    ),
  );
});

test('ipam show without blocks; capacity and in-use derived from the CIDR and blocks', () => {
  const pools = [{ cidr: '192.168.0.0/16', blocks: refPools[0].blocks }];
  assert.equal(
    renderIpamShow(pools),
    lines(
      '+----------+----------------+-----------+------------+--------------+',
      '| GROUPING |      CIDR      | IPS TOTAL | IPS IN USE |   IPS FREE   |',
      '+----------+----------------+-----------+------------+--------------+',
      '| IP Pool  | 192.168.0.0/16 |     65536 | 5 (0%)     | 65531 (100%) |',
      '+----------+----------------+-----------+------------+--------------+',
    ),
  );
});

test('seed: calicoctl ipam show --show-blocks', () => {
  const block = (cidr: string, inUse: number) => ({ cidr, capacity: 256, inUse });
  const pools = [
    {
      cidr: '10.233.64.0/18',
      blocks: [
        block('10.233.106.0/24', 9),
        block('10.233.113.0/24', 2),
        block('10.233.77.0/24', 2),
        block('10.233.88.0/24', 3),
        block('10.233.99.0/24', 9),
      ],
    },
  ];
  assert.equal(
    renderIpamShow(pools, { showBlocks: true }),
    lines(
      '+----------+-----------------+-----------+------------+--------------+',
      '| GROUPING |      CIDR       | IPS TOTAL | IPS IN USE |   IPS FREE   |',
      '+----------+-----------------+-----------+------------+--------------+',
      '| IP Pool  | 10.233.64.0/18  |     16384 | 25 (0%)    | 16359 (100%) |',
      '| Block    | 10.233.106.0/24 |       256 | 9 (4%)     | 247 (96%)    |',
      '| Block    | 10.233.113.0/24 |       256 | 2 (1%)     | 254 (99%)    |',
      '| Block    | 10.233.77.0/24  |       256 | 2 (1%)     | 254 (99%)    |',
      '| Block    | 10.233.88.0/24  |       256 | 3 (1%)     | 253 (99%)    |',
      '| Block    | 10.233.99.0/24  |       256 | 9 (4%)     | 247 (96%)    |',
      '+----------+-----------------+-----------+------------+--------------+',
    ),
  );
});

test('big pools print in %.5g exponent form; IPv6; orphan blocks', () => {
  const out = renderIpamShow(
    [
      { cidr: '10.0.0.0/12', blocks: [] },
      { cidr: 'fd00::/112', blocks: [{ cidr: 'fd00::/122', capacity: 64, inUse: 1 }] },
      { cidr: '0.0.0.0/0', orphan: true, blocks: [{ cidr: '172.16.0.0/26', capacity: 64, inUse: 64 }] },
    ],
    { showBlocks: true },
  );
  assert.equal(
    out,
    lines(
      '+----------+---------------+------------+------------+-------------------+',
      '| GROUPING |     CIDR      | IPS TOTAL  | IPS IN USE |     IPS FREE      |',
      '+----------+---------------+------------+------------+-------------------+',
      '| IP Pool  | 10.0.0.0/12   | 1.0486e+06 | 0 (0%)     | 1.0486e+06 (100%) |',
      '| IP Pool  | fd00::/112    |      65536 | 1 (0%)     | 65535 (100%)      |',
      '| Block    | fd00::/122    |         64 | 1 (2%)     | 63 (98%)          |',
      '| Block    | 172.16.0.0/26 |         64 | 64 (100%)  | 0 (0%)            |',
      '+----------+---------------+------------+------------+-------------------+',
    ),
  );
  assert.equal(formatCount(1048576), '1.0486e+06');
  assert.equal(formatShare(1, 8), '1 (12%)'); // 12.5 → even
  assert.equal(formatShare(3, 8), '3 (38%)'); // 37.5 → even
});

test('reference §3.5: --show-configuration', () => {
  assert.equal(
    renderIpamConfiguration({ strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0 }),
    lines(
      '+--------------------+-------+',
      '|      PROPERTY      | VALUE |',
      '+--------------------+-------+',
      '| StrictAffinity     | false |',
      '| AutoAllocateBlocks | true  |',
      '| MaxBlocksPerHost   |     0 |',
      '+--------------------+-------+',
    ),
  );
  assert.ok(
    renderIpamConfiguration({ strictAffinity: true, autoAllocateBlocks: false, maxBlocksPerHost: 4, kubeVirtVMAddressPersistence: null }).includes(
      '| KubeVirtVMAddressPersistence | (*ipam.VMAddressPersistence)(nil) |',
    ),
  );
});

test('--ip', () => {
  assert.equal(renderIpamShowIP('10.0.0.9', null), '10.0.0.9 is not assigned\n');
  assert.equal(
    renderIpamShowIP('10.233.99.12', {
      handleId: 'k8s-pod-network.abc',
      activeOwnerAttrs: { pod: 'p', namespace: 'ns', node: 'w1', timestamp: '2023-05-10 15:12:42.1 +0000 UTC' },
    }, { calicoVersion: 'v3.32.0' }),
    lines(
      'IP 10.233.99.12 is in use',
      'Handle ID: k8s-pod-network.abc',
      'Active Owner Attributes:',
      '  namespace: ns',
      '  node: w1',
      '  pod: p',
      '  timestamp: 2023-05-10 15:12:42.1 +0000 UTC',
    ),
  );
  assert.equal(
    renderIpamShowIP('10.0.0.1', { handleId: null, alternateOwnerAttrs: { vmi: 'v' } }, { calicoVersion: 'v3.32.0' }),
    lines('IP 10.0.0.1 is in use', 'Handle ID: <none>', 'No Active Owner attributes defined', 'Alternate Owner Attributes:', '  vmi: v'),
  );
  // releases before v3.32, and the default (v3.29)
  assert.equal(renderIpamShowIP('10.0.0.1', {}), lines('IP 10.0.0.1 is in use', 'No attributes defined'));
  assert.equal(
    renderIpamShowIP('10.0.0.1', { handleId: 'h', activeOwnerAttrs: { node: 'n', pod: 'p' } }, { calicoVersion: 'v3.20.3' }),
    lines('IP 10.0.0.1 is in use', 'Attributes:', '  node: n', '  pod: p'),
  );
  assert.equal(renderIpamShowIP('10.0.0.1', {}, { calicoVersion: 'v3.31.0' }), lines('IP 10.0.0.1 is in use', 'No attributes defined'));
});

test('--show-borrowed', () => {
  const row = classifyBorrowed({
    ip: '192.168.1.5',
    block: '192.168.1.0/26',
    affinity: 'host:node1',
    attrs: { node: 'node2', namespace: 'default', pod: 'nginx' },
  });
  assert.deepEqual(row, {
    ip: '192.168.1.5',
    borrowingNode: 'node2',
    block: '192.168.1.0/26',
    blockOwner: 'node1',
    type: 'pod',
    allocatedTo: 'default/nginx',
  });
  assert.equal(classifyBorrowed({ ip: 'x', block: 'b', affinity: 'host:node1', attrs: { node: 'node1' } }), null);
  assert.equal(classifyBorrowed({ ip: 'x', block: 'b', affinity: 'host:node1', attrs: { pod: 'p' } }), 'unclassified');
  assert.deepEqual(classifyBorrowed({ ip: 'x', block: 'b', affinity: null, attrs: { node: 'n3', type: 'vxlanTunnelAddress' } }), {
    ip: 'x',
    borrowingNode: 'n3',
    block: 'b',
    blockOwner: '',
    type: 'vxlanTunnelAddress',
    allocatedTo: '',
  });
  assert.equal(
    renderIpamBorrowed([row as Exclude<typeof row, null | 'unclassified'>], 2),
    lines(
      '+-------------+----------------+----------------+-------------+------+---------------+',
      '|     IP      | BORROWING-NODE |     BLOCK      | BLOCK OWNER | TYPE | ALLOCATED-TO  |',
      '+-------------+----------------+----------------+-------------+------+---------------+',
      '| 192.168.1.5 | node2          | 192.168.1.0/26 | node1       | pod  | default/nginx |',
      '+-------------+----------------+----------------+-------------+------+---------------+',
      '',
      'Note: found 2 IP allocations without an explicit node association. Unable to determine if they are borrowed.',
    ),
  );
});
