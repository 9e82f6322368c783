import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BirdReplyError,
  bgpPeersFromRows,
  parseBirdProtocolLine,
  parseBirdShowProtocols,
  renderNodeStatus,
  type BirdProtocolRow,
} from './node-status.js';

const lines = (...ls: string[]) => ls.map((l) => l + '\n').join('');

// BIRD 1.6 (Calico's fork) control-socket reply, rows in `%-8s %-8s %-8s %-5s  %-10s  %s` form.
const bird16Reply = lines(
  '0001 BIRD v0.3.3+birdv1.6.8 ready.',
  '2002-name     proto    table    state  since       info',
  '1002-static1  Static   master   up     23:30:01    ',
  ' kernel1  Kernel   master   up     23:30:01    ',
  ' device1  Device   master   up     23:30:01    ',
  ' direct1  Direct   master   up     23:30:01    ',
  ' Mesh_172_17_8_102 BGP      master   up     23:30:04    Established   ',
  '0000 ',
);

test('reference §3.3: full node status from a BIRD 1.6 reply', () => {
  const peers = bgpPeersFromRows(parseBirdShowProtocols(bird16Reply), 4);
  assert.equal(
    renderNodeStatus({ ipv4: { running: true, peers }, ipv6: { running: true, peers: [] } }),
    lines(
      'Calico process is running.',
      '',
      'IPv4 BGP status',
      '+--------------+-------------------+-------+----------+-------------+',
      '| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |',
      '+--------------+-------------------+-------+----------+-------------+',
      '| 172.17.8.102 | node-to-node mesh | up    | 23:30:04 | Established |',
      '+--------------+-------------------+-------+----------+-------------+',
      '',
      'IPv6 BGP status',
      'No IPv6 peers found.',
      '',
    ),
  );
});

test('seed: calicoctl node status on playcekube-master01', () => {
  const reply = lines(
    '0001 BIRD v0.3.3+birdv1.6.8 ready.',
    '2002-name     proto    table    state  since       info',
    '1002-static1  Static   master   up     14:28:40    ',
    ' kernel1  Kernel   master   up     14:28:40    ',
    ' device1  Device   master   up     14:28:40    ',
    ' direct1  Direct   master   up     14:28:40    ',
    ' Mesh_10_0_0_22 BGP      master   up     14:28:46    Established   ',
    ' Mesh_10_0_0_23 BGP      master   up     14:30:06    Established   ',
    ' Mesh_10_0_0_31 BGP      master   up     14:30:45    Established   ',
    ' Mesh_10_0_0_32 BGP      master   up     14:28:54    Established   ',
    '0000 ',
  );
  const peers = bgpPeersFromRows(parseBirdShowProtocols(reply), 4);
  assert.equal(
    renderNodeStatus({ ipv4: { running: true, peers }, ipv6: { running: true, peers: [] } }),
    lines(
      'Calico process is running.',
      '',
      'IPv4 BGP status',
      '+--------------+-------------------+-------+----------+-------------+',
      '| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |',
      '+--------------+-------------------+-------+----------+-------------+',
      '| 10.0.0.22    | node-to-node mesh | up    | 14:28:46 | Established |',
      '| 10.0.0.23    | node-to-node mesh | up    | 14:30:06 | Established |',
      '| 10.0.0.31    | node-to-node mesh | up    | 14:30:45 | Established |',
      '| 10.0.0.32    | node-to-node mesh | up    | 14:28:54 | Established |',
      '+--------------+-------------------+-------+----------+-------------+',
      '',
      'IPv6 BGP status',
      'No IPv6 peers found.',
      '',
    ),
  );
});

test('BIRD 2 reply: capitalised header, `---` tables, milliseconds trimmed, long INFO wraps', () => {
  const reply = lines(
    '0001 BIRD 2.0.12 ready.',
    '2002-Name       Proto      Table      State  Since         Info',
    '1002-device1    Device     ---        up     22:52:32.766  ',
    ' direct1    Direct     ---        up     22:52:32.766  ',
    ' kernel1    Kernel     master4    up     22:52:32.766  ',
    ' static1    Static     master4    up     22:52:32.766  ',
    ' Mesh_192_0_2_12 BGP        ---        start  22:52:43.313  Active        Socket: Connection refused',
    ' Mesh_192_0_2_13 BGP        ---        up     22:52:34.493  Established   ',
    '0000 ',
  );
  const rows = parseBirdShowProtocols(reply);
  assert.equal(rows.length, 6);
  assert.deepEqual(rows[4], {
    name: 'Mesh_192_0_2_12',
    proto: 'BGP',
    table: '---',
    state: 'start',
    since: '22:52:43.313',
    info: 'Active Socket: Connection refused',
  });
  const peers = bgpPeersFromRows(rows, 4);
  assert.equal(
    renderNodeStatus({ ipv4: { running: true, peers }, ipv6: { running: true, peers: [] } }),
    lines(
      'Calico process is running.',
      '',
      'IPv4 BGP status',
      '+--------------+-------------------+-------+----------+--------------------------------+',
      '| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |              INFO              |',
      '+--------------+-------------------+-------+----------+--------------------------------+',
      '| 192.0.2.12   | node-to-node mesh | start | 22:52:43 | Active Socket: Connection      |',
      '|              |                   |       |          | refused                        |',
      '| 192.0.2.13   | node-to-node mesh | up    | 22:52:34 | Established                    |',
      '+--------------+-------------------+-------+----------+--------------------------------+',
      '',
      'IPv6 BGP status',
      'No IPv6 peers found.',
      '',
    ),
  );
});

test('calicoctl row filtering', () => {
  const rows: BirdProtocolRow[] = [
    parseBirdProtocolLine('Global_10_0_0_5_port_1790 BGP master up 10:00:00 Established'),
    parseBirdProtocolLine('Node_10_0_0_6 BGP master start 10:00:00 Connect Socket: Connection refused'),
    parseBirdProtocolLine('Mesh_10_0_0_7 BGP master down 10:00:00'), // five fields: dropped
    parseBirdProtocolLine('Local_Workload_10_0_0_8 BGP master up 10:00:00 Established'),
    parseBirdProtocolLine('Mesh_10_0_0_9 Static master up 10:00:00 Established'),
    parseBirdProtocolLine('Mesh_fd80_24e2_f998_72d7__2 BGP master up 2024-01-02 Established'),
  ];
  assert.deepEqual(bgpPeersFromRows(rows, 4), [
    { peerAddress: '10.0.0.5.port.1790', peerType: 'global', state: 'up', since: '10:00:00', info: 'Established' },
    {
      peerAddress: '10.0.0.6',
      peerType: 'node specific',
      state: 'start',
      since: '10:00:00',
      info: 'Connect Socket: Connection refused',
    },
    { peerAddress: 'fd80.24e2.f998.72d7..2', peerType: 'node-to-node mesh', state: 'up', since: '2024-01-02', info: 'Established' },
  ]);
  assert.deepEqual(
    bgpPeersFromRows(rows, 6, { strictFamily: true }).map((p) => p.peerAddress),
    ['fd80:24e2:f998:72d7::2'],
  );
  assert.deepEqual(
    bgpPeersFromRows(rows, 4, { strictFamily: true }).map((p) => p.peerAddress),
    ['10.0.0.5.port.1790', '10.0.0.6'],
  );
});

test('BIRD reply errors', () => {
  assert.throws(() => parseBirdShowProtocols('0001 BIRD ready.\n2002-name proto table state\n0000\n'), new BirdReplyError('unknown BIRD table output format'));
  assert.throws(() => parseBirdShowProtocols('0001 BIRD ready.\n9001 syntax error\n'), /unexpected output line from BIRD/);
  // nothing after 0000 is looked at; CRLF tolerated
  assert.deepEqual(parseBirdShowProtocols('0001 x\r\n1002-a BGP m up 1 Established\r\n0000\r\ngarbage\n'), [
    { name: 'a', proto: 'BGP', table: 'm', state: 'up', since: '1', info: 'Established' },
  ]);
});

test('processes not running, connection errors', () => {
  assert.equal(
    renderNodeStatus({ ipv4: { running: false }, ipv6: { running: false } }),
    lines('Calico process is running.', '', 'The BGP backend process (BIRD) is not running.', ''),
  );
  assert.equal(
    renderNodeStatus({ ipv4: { running: true, peers: [] }, ipv6: { running: false } }),
    lines('Calico process is running.', '', 'IPv4 BGP status', 'No IPv4 peers found.', '', "INFO: BIRDv6 process: 'bird6' is not running.", ''),
  );
  assert.equal(
    renderNodeStatus({ ipv4: { running: false }, ipv6: { running: true, connectError: 'dial unix /var/run/bird/bird6.ctl: connect: no such file or directory' } }),
    'Calico process is running.\n\nINFO: BIRDv4 process: \'bird\' is not running.\n\nIPv6 BGP status\n' +
      'Error querying BIRD: unable to connect to BIRDv6 socket: dial unix /var/run/bird/bird6.ctl: connect: no such file or directory\n',
  );
});
