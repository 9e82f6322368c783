import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ProtocolNameError, calicoctlPeerAddress, parseProtocolName, protocolName } from './names.js';

test('protocol names as Calico writes them', () => {
  assert.equal(protocolName('mesh', '10.0.0.12'), 'Mesh_10_0_0_12');
  assert.equal(protocolName('global', '10.0.0.5'), 'Global_10_0_0_5');
  assert.equal(protocolName('node', '10.0.0.5', 1790), 'Node_10_0_0_5_port_1790');
  assert.equal(protocolName('global', '10.0.0.5', 179), 'Global_10_0_0_5', 'port 179 is not written');
  assert.equal(protocolName('mesh', 'fd80:24e2:f998:72d7::2'), 'Mesh_fd80_24e2_f998_72d7__2');
  assert.equal(protocolName('mesh', 'FD80:24E2:F998:72D7:0:0:0:2'), 'Mesh_fd80_24e2_f998_72d7__2', 'canonical IPv6');
  assert.equal(protocolName('global', '::1', 65535), 'Global___1_port_65535');
  const longest = protocolName('global', '1111:2222:3333:4444:5555:6666:7777:8888', 65535);
  assert.ok(longest.length <= 64, 'fits a BIRD symbol');
  assert.throws(() => protocolName('mesh', '10.0.0'), ProtocolNameError);
  assert.throws(() => protocolName('mesh', '10.0.0.1', 0), ProtocolNameError);
});

test('the inverse: name → peer', () => {
  assert.deepEqual(parseProtocolName('Mesh_10_0_0_12'), { type: 'mesh', peerTypeLabel: 'node-to-node mesh', family: 4, address: '10.0.0.12' });
  assert.deepEqual(parseProtocolName('Node_10_0_0_5_port_1790'), {
    type: 'node',
    peerTypeLabel: 'node specific',
    family: 4,
    address: '10.0.0.5',
    port: 1790,
  });
  assert.deepEqual(parseProtocolName('Global_fd80_24e2_f998_72d7__2'), {
    type: 'global',
    peerTypeLabel: 'global',
    family: 6,
    address: 'fd80:24e2:f998:72d7::2',
  });
  assert.deepEqual(parseProtocolName('Global___1_port_179'), { type: 'global', peerTypeLabel: 'global', family: 6, address: '::1', port: 179 });
  for (const other of ['kernel4', 'device1', 'static4', 'Local_Workload_10_0_0_9', 'Mesh_', 'Mesh_10_0_0', 'Mesh_300_0_0_1', 'mesh_10_0_0_1', 'Node_10_0_0_5_port_70000']) {
    assert.equal(parseProtocolName(other), undefined, other);
  }
  // Round trip over a spread of addresses and ports.
  for (const [type, addr, port] of [
    ['mesh', '192.168.255.1', undefined],
    ['global', '2001:db8::1:0:0:1', 1790],
    ['node', '::ffff:10.0.0.1', undefined],
    ['node', '2001:db8:0:1:1:1:1:1', 180],
  ] as const) {
    const name = protocolName(type, addr, port);
    const back = parseProtocolName(name)!;
    assert.equal(back.type, type);
    assert.equal(protocolName(back.type, back.address, back.port), name);
  }
});

test('calicoctl-compatible PEER ADDRESS, port quirk included', () => {
  assert.equal(calicoctlPeerAddress('Mesh_10_0_0_12', 4), '10.0.0.12');
  assert.equal(calicoctlPeerAddress('Global_10_0_0_5_port_1790', 4), '10.0.0.5.port.1790');
  assert.equal(calicoctlPeerAddress('Mesh_fd80_24e2_f998_72d7__2', 6), 'fd80:24e2:f998:72d7::2');
  assert.equal(calicoctlPeerAddress('kernel4', 4), undefined);
});
