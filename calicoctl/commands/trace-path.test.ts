import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { emptyModel, makeEndpoint } from '../../libcalico-go/lib/policy/model.js';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { type TraceFacts, formatTrace, lookupRoute, tracePath } from './trace-path.js';

function facts(over: Partial<TraceFacts> = {}): TraceFacts {
  const model = emptyModel();
  model.endpoints.push(makeEndpoint({ namespace: 'ns', name: 'a', ips: ['10.1.1.2'], labels: { app: 'a' } }));
  model.endpoints.push(makeEndpoint({ namespace: 'ns', name: 'b', ips: ['10.1.2.2'], labels: { app: 'b' } }));
  model.endpoints.push(makeEndpoint({ namespace: 'ns', name: 'a2', ips: ['10.1.1.3'], labels: { app: 'a2' } }));
  return {
    endpoints: [
      { key: 'ns/a', node: 'n1', iface: 'cali-a', ips: ['10.1.1.2'] },
      { key: 'ns/a2', node: 'n1', iface: 'cali-a2', ips: ['10.1.1.3'] },
      { key: 'ns/b', node: 'n2', iface: 'cali-b', ips: ['10.1.2.2'] },
    ],
    nodes: [
      {
        name: 'n1',
        address: '10.0.0.11',
        podMtu: 1500,
        underlayMtu: 1500,
        routes: [
          { destination: '10.1.1.0/24', gateway: 'blackhole', interface: '', source: 'Static' },
          { destination: '10.1.2.0/24', gateway: '10.0.0.12', interface: 'eth0', source: 'NodeMesh', peer: '10.0.0.12' },
        ],
      },
      { name: 'n2', address: '10.0.0.12', podMtu: 1500, underlayMtu: 1500, routes: [{ destination: '10.1.2.0/24', gateway: 'blackhole', interface: '', source: 'Static' }] },
    ],
    blocks: [
      { cidr: '10.1.1.0/24', affinity: 'n1' },
      { cidr: '10.1.2.0/24', affinity: 'n2' },
    ],
    model,
    ...over,
  };
}

const ifaces = (t: ReturnType<typeof tracePath>) => t.hops.filter((h) => h.iface).map((h) => `${h.node} ${h.iface} ${h.dir}`);

describe('trace path', () => {
  it('longest prefix wins', () => {
    const r = [
      { destination: '10.1.0.0/16', gateway: 'x', interface: 'eth0' },
      { destination: '10.1.2.0/24', gateway: 'y', interface: 'eth0' },
    ];
    assert.equal(lookupRoute(r, '10.1.2.9')?.gateway, 'y');
    assert.equal(lookupRoute(r, '10.1.9.9')?.gateway, 'x');
    assert.equal(lookupRoute(r, '10.2.0.1'), undefined);
  });

  it('across nodes over BGP: veth in, eth0 out, eth0 in, veth out, delivered', () => {
    const t = tracePath(facts(), 'ns/a', 'ns/b', { protocol: 'TCP', port: 80 });
    assert.equal(t.delivered, true);
    assert.deepEqual(ifaces(t), ['n1 cali-a in', 'n1 eth0 out', 'n2 eth0 in', 'n2 cali-b out']);
    assert.ok(t.hops.some((h) => /10\.1\.2\.0\/24 via 10\.0\.0\.12 dev eth0 proto bird \(learned from 10\.0\.0\.12, NodeMesh\)/.test(h.what)));
    const text = formatTrace(t, (hd, rows) => [hd, ...rows].map((r) => r.join('|')).join('\n') + '\n');
    assert.match(text, /^trace ns\/a \(10\.1\.1\.2\) -> ns\/b \(10\.1\.2\.2\) 80\/TCP: DELIVERED\nHOP\|NODE\|WHERE\|WHAT\n1\|n1\|pod ns\/a eth0\|/);
  });

  it('same node: no route hop to another node', () => {
    const t = tracePath(facts(), 'ns/a', 'ns/a2', { protocol: 'ICMP' });
    assert.deepEqual(ifaces(t), ['n1 cali-a in', 'n1 cali-a2 out']);
  });

  it('VXLAN: the route names vxlan.calico and the next node is entered through it', () => {
    const f = facts();
    // The next hop is the other node's VTEP address, not its underlay address.
    f.nodes[1]!.vxlanAddress = '10.1.2.0';
    f.nodes[0]!.routes![1] = { destination: '10.1.2.0/24', gateway: '10.1.2.0', interface: 'vxlan.calico', source: 'Kernel' };
    const t = tracePath(f, 'ns/a', 'ns/b', { protocol: 'TCP', port: 80 });
    assert.deepEqual(ifaces(t), ['n1 cali-a in', 'n1 vxlan.calico out', 'n2 vxlan.calico in', 'n2 cali-b out']);
    assert.ok(t.hops.some((h) => /proto vxlan\.calico/.test(h.what)));
  });

  it('drops: ingress policy (the deciding policy named), no route, blackhole, unknown node', () => {
    const deny: Resource = { apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'deny-b', namespace: 'ns' }, spec: { selector: "app == 'b'", types: ['Ingress'] } } as Resource;
    const f = facts();
    f.model.policies.push(deny);
    const t = tracePath(f, 'ns/a', 'ns/b', { protocol: 'TCP', port: 80 });
    assert.equal(t.delivered, false);
    assert.equal(t.drop?.reason, 'policy');
    assert.equal(t.drop?.node, 'n2');
    assert.match(t.drop!.why, /ingress policy of ns\/b: deny .*deny-b/);
    assert.deepEqual(ifaces(t), ['n1 cali-a in', 'n1 eth0 out', 'n2 eth0 in'], 'not on the destination veth');

    const noRoute = facts();
    noRoute.nodes[0]!.routes = noRoute.nodes[0]!.routes!.slice(0, 1);
    const t2 = tracePath(noRoute, 'ns/a', 'ns/b', { protocol: 'TCP', port: 80 });
    assert.equal(t2.drop?.reason, 'no-route');
    assert.match(t2.drop!.why, /n1 has no route to 10\.1\.2\.2 \(block 10\.1\.2\.0\/24 is affine to n2/);

    const t3 = tracePath(facts(), 'ns/a', '10.1.2.77', { protocol: 'TCP', port: 80 });
    assert.equal(t3.drop?.reason, 'blackhole');
    assert.equal(t3.drop?.node, 'n2');

    const silent = facts();
    delete silent.nodes[1]!.routes;
    silent.endpoints[2]!.node = 'n3';
    const t4 = tracePath(silent, 'ns/a', 'ns/b', { protocol: 'TCP', port: 80 });
    assert.equal(t4.drop?.reason, 'unknown-node');
  });

  it('MTU: a next node whose underlay is smaller than the pod MTU is noted', () => {
    const f = facts();
    f.nodes[1]!.underlayMtu = 1400;
    const t = tracePath(f, 'ns/a', 'ns/b', { protocol: 'ICMP' });
    assert.equal(t.delivered, true);
    assert.ok(t.notes.some((n) => /n2's eth0 has MTU 1400 < 1500/.test(n)), t.notes.join('\n'));
  });

  it('from a host address; bad endpoints are refused by name', () => {
    const t = tracePath(facts(), '10.0.0.11', 'ns/b', { protocol: 'ICMP' });
    assert.deepEqual(ifaces(t), ['n1 eth0 out', 'n2 eth0 in', 'n2 cali-b out']);
    assert.throws(() => tracePath(facts(), 'ns/zz', 'ns/b', { protocol: 'ICMP' }), /no workload endpoint ns\/zz/);
    assert.throws(() => tracePath(facts(), '192.168.9.9', 'ns/b', { protocol: 'ICMP' }), /source 192\.168\.9\.9 is neither/);
  });
});
