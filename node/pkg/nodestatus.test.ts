// The pure parts of the node's CalicoNodeStatus writer: the run record, BIRD's replies, routes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseBirdShowProtocols } from '../../confd/pkg/index.js';
import { RunRecord, bgpSettings, gatewaysByDestination, parseBirdStatus, peersFromRows, recordStart, recordStop, routeChanges, routesFromIp } from './nodestatus.js';

describe('node status facts', () => {
  it('counts restarts, telling a clean stop from a kill', () => {
    const t = (s: number) => new Date(Date.UTC(2026, 11, 4, 12, 0, s));
    let f = recordStart(null, 10, t(0));
    assert.equal(f.restarts, 0);
    f = recordStop(f, 10, 'received SIGTERM', t(1));
    f = recordStart(f, 11, t(2));
    assert.equal(f.restarts, 1);
    assert.equal(f.uncleanRestarts, 0);
    assert.match(f.lastRestarts[0]!.reason, /pid 10\) stopped cleanly .*received SIGTERM/);
    f = recordStart(f, 12, t(3)); // 11 never stopped: killed
    assert.equal(f.restarts, 2);
    assert.equal(f.uncleanRestarts, 1);
    assert.deepEqual(f.lastRestarts.map((r) => r.clean), [true, false]);
    assert.match(f.lastRestarts[1]!.reason, /pid 11, .*without a clean stop/);
  });

  it('keeps the record in the state dir across runs', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tortie-nodestatus-'));
    try {
      const a = new RunRecord(dir, 100);
      assert.equal(a.facts.restarts, 0);
      const b = new RunRecord(dir, 101);
      assert.equal(b.facts.uncleanRestarts, 1);
      b.stopped('received SIGTERM');
      const c = new RunRecord(dir, 102);
      assert.equal(c.facts.restarts, 2);
      assert.equal(c.facts.uncleanRestarts, 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads BIRD's show status and show protocols as Calico's status does", () => {
    const st = parseBirdStatus(
      '0001 BIRD 2.0.12 ready.\n1000-BIRD 2.0.12\n1011-Router ID is 10.0.0.11\n Hostname is x\n Current server time is 2026-12-04 19:23:06.100\n Last reboot on 2026-12-04 19:23:03.663\n Last reconfiguration on 2026-12-04 19:23:04.001\n0013 Daemon is up and running\n',
    );
    assert.deepEqual(st, { state: 'Ready', version: '2.0.12', routerID: '10.0.0.11', lastBootTime: '2026-12-04 19:23:03.663', lastReconfigurationTime: '2026-12-04 19:23:04.001' });
    const rows = parseBirdShowProtocols(
      '0001 BIRD 2.0.12 ready.\n2002-Name       Proto      Table      State  Since         Info\n1002-device1    Device     ---        up     19:23:03.663  \n Mesh_10_0_0_12 BGP        ---        up     19:23:05.408  Established   \n Mesh_10_0_0_13 BGP        ---        start  19:23:05.605  Active        Socket: Connection refused\n0000 \n',
    );
    assert.deepEqual(peersFromRows(rows), [
      { peerIP: '10.0.0.12', type: 'NodeMesh', state: 'Established', since: '19:23:05.408', reason: '' },
      { peerIP: '10.0.0.13', type: 'NodeMesh', state: 'Active', since: '19:23:05.605', reason: 'Socket: Connection refused' },
    ]);
  });

  it("BIRD's shared settings, without the node's own addresses", () => {
    const m = { asNumber: 64512, listenPort: 179, meshEnabled: true, bindMode: 'None', logSeverity: 'Info', programClusterRoutes: 'Enabled', ignoredInterfaces: [], routerId: '10.0.0.11', peers: [{ type: 'mesh' }, { type: 'mesh' }, { type: 'global' }] };
    assert.deepEqual(bgpSettings(m as unknown as Parameters<typeof bgpSettings>[0]), {
      birdSettings: { asNumber: '64512', listenPort: '179', nodeToNodeMesh: 'true', bindMode: 'None', logSeverity: 'Info', programClusterRoutes: 'Enabled', ignoredInterfaces: '', peers: 'mesh 2, global 1, node 0', routeReflector: 'no' },
    });
    assert.equal(bgpSettings(undefined), undefined);
  });

  it('keeps the pool routes (not local pod /32s), one per next hop, and sees next-hop changes', () => {
    const ip = [
      { dst: 'default', gateway: '10.0.0.1', dev: 'eth0' },
      { dst: '10.233.64.0/24', type: 'blackhole', protocol: 'bird' },
      { dst: '10.233.64.5', dev: 'cali123', scope: 'link' },
      { dst: '10.233.65.0/24', protocol: 'bird', nexthops: [{ gateway: '10.0.0.12', dev: 'eth0' }, { gateway: '10.0.0.13', dev: 'eth0' }] },
      { dst: '192.168.0.0/24', gateway: '10.0.0.1', dev: 'eth0' },
    ];
    const r = routesFromIp(ip, ['10.233.64.0/18'], new Set(['10.0.0.12']));
    assert.deepEqual(r.map((x) => [x.destination, x.gateway, x.learnedFrom.sourceType]), [
      ['10.233.64.0/24', 'blackhole', 'Static'],
      ['10.233.65.0/24', '10.0.0.12', 'NodeMesh'],
      ['10.233.65.0/24', '10.0.0.13', 'BGPPeer'],
    ]);
    const before = gatewaysByDestination(r);
    const after = gatewaysByDestination(r.filter((x) => x.gateway !== '10.0.0.13'));
    assert.deepEqual(routeChanges(before, after, 'T'), [{ at: 'T', destination: '10.233.65.0/24', from: '10.0.0.12,10.0.0.13', to: '10.0.0.12' }]);
    assert.deepEqual(routeChanges(before, before, 'T'), []);
  });
});
