import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  SEED_NODES,
  agentEnv,
  containerId,
  nodeNames,
  parseLabels,
  parsePodRef,
  parseServe,
  planLab,
  planNamespaces,
  podNsName,
  poolResource,
  resolveNodeName,
  validateLabName,
} from './topology.js';
import { hostLines, lanLines, namespaceLines, routerLines } from './net.js';

describe('lab topology', () => {
  it('plans K nodes on one subnet with unique names and addresses', () => {
    const p = planLab({ name: 'demo', nodes: 3 });
    assert.deepEqual(p.nodes.map((n) => [n.name, n.ns, n.address, n.subnet, n.lanIf]), [
      ['node1', 'tl-demo-node1', '10.0.0.11', 0, 'n0'],
      ['node2', 'tl-demo-node2', '10.0.0.12', 0, 'n1'],
      ['node3', 'tl-demo-node3', '10.0.0.13', 0, 'n2'],
    ]);
    assert.equal(p.mode, 'bgp');
    assert.equal(p.datastore, 'embedded');
    assert.equal(p.etcdNs, undefined);
    assert.deepEqual(planNamespaces(p), ['tl-demo-lan', 'tl-demo-rtr', 'tl-demo-node1', 'tl-demo-node2', 'tl-demo-node3']);
    assert.ok(planNamespaces(p).every((n) => n.startsWith('tl-demo-')));
    assert.deepEqual(p.pool, { name: 'default-ipv4-ippool', cidr: '10.233.64.0/18', blockSize: 24, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true });
  });

  it('seed preset: the seed nodes, default-pool /18 blockSize 24, IPIP replaced by Never with a note', () => {
    const p = planLab({ name: 'seed', preset: 'seed' });
    assert.deepEqual(p.nodes.map((n) => n.name), SEED_NODES);
    assert.equal(p.nodes[0]!.address, '10.0.0.11');
    assert.equal(p.nodes[4]!.address, '10.0.0.15');
    assert.equal(p.pool.name, 'default-pool');
    assert.equal(p.pool.cidr, '10.233.64.0/18');
    assert.equal(p.pool.ipipMode, 'Never');
    assert.match(p.notes.join('\n'), /ipipMode: Always.*Never/);
    assert.equal(resolveNodeName(p, 'worker01')?.name, 'playcekube-worker01');
    assert.equal(resolveNodeName(p, 'playcekube-master03')?.name, 'playcekube-master03');
    assert.equal(resolveNodeName(p, 'nope'), undefined);
    assert.throws(() => planLab({ name: 'x', preset: 'seed', nodes: 2 }), /exclusive/);
  });

  it('crosssubnet: two subnets, halves of the nodes, router on both', () => {
    const p = planLab({ name: 'cs', preset: 'seed', mode: 'crosssubnet', datastore: 'etcd' });
    assert.deepEqual(p.subnets.map((s) => [s.cidr, s.gateway, s.bridge]), [['10.0.0.0/24', '10.0.0.1', 'br0'], ['10.0.1.0/24', '10.0.1.1', 'br1']]);
    assert.deepEqual(p.nodes.map((n) => n.address), ['10.0.0.11', '10.0.0.12', '10.0.0.13', '10.0.1.11', '10.0.1.12']);
    assert.equal(p.pool.vxlanMode, 'CrossSubnet');
    assert.equal(p.etcdNs, 'tl-cs-etcd');
    assert.equal(p.etcdAddress, '10.0.0.2');
    const lan = lanLines(p);
    assert.ok(lan.includes('link add br1 type bridge'));
    assert.ok(lan.includes('link add n3 type veth peer name eth0 netns tl-cs-playcekube-worker01'));
    assert.ok(lan.includes('link set n3 master br1'));
    assert.ok(lan.includes('link add e0 type veth peer name eth0 netns tl-cs-etcd'));
    assert.deepEqual(routerLines(p).filter((l) => l.startsWith('addr')), ['addr add 10.0.0.1/24 dev eth0', 'addr add 10.0.1.1/24 dev eth1']);
    assert.deepEqual(hostLines('10.0.1.11', 24, '10.0.1.1'), ['link set lo up', 'addr add 10.0.1.11/24 dev eth0', 'link set eth0 up', 'route add default via 10.0.1.1']);
    assert.deepEqual(namespaceLines(['a', 'b']), ['netns add a', 'netns add b']);
    // No line of any batch touches a namespace outside the lab.
    for (const l of lan) {
      const m = / netns (\S+)/.exec(l);
      if (m) assert.ok(m[1]!.startsWith('tl-cs-'), l);
    }
  });

  it('agent environment per mode', () => {
    const bgp = planLab({ name: 'a', nodes: 1 });
    const env = agentEnv(bgp, bgp.nodes[0]!, { runDir: '/r', stateDir: '/s' });
    assert.equal(env.NODENAME, 'node1');
    assert.equal(env.IP, '10.0.0.11/24');
    assert.equal(env.CALICO_NETWORKING_BACKEND, 'bird');
    assert.equal(env.CALICO_IPV4POOL_IPIP, 'Never');
    assert.equal(env.CALICO_IPV4POOL_VXLAN, 'Never');
    assert.equal(env.TORTIE_RUN_DIR, '/r');
    assert.equal(env.FELIX_HEALTHHOST, '127.0.0.1');
    const vx = planLab({ name: 'a', nodes: 1, mode: 'vxlan' });
    assert.equal(agentEnv(vx, vx.nodes[0]!, { runDir: '/r', stateDir: '/s' }).CALICO_IPV4POOL_VXLAN, 'Always');
    assert.equal(agentEnv(vx, vx.nodes[0]!, { runDir: '/r', stateDir: '/s' }).CALICO_NETWORKING_BACKEND, 'vxlan');
    assert.deepEqual((poolResource(vx.pool).spec as Record<string, unknown>).vxlanMode, 'Always');
  });

  it('validates names and flags', () => {
    assert.throws(() => validateLabName('Bad_Name'));
    assert.throws(() => validateLabName('-x'));
    assert.throws(() => validateLabName('a'.repeat(17)));
    validateLabName('lab-1');
    assert.throws(() => nodeNames({ nodes: 0 }), /--nodes/);
    assert.throws(() => planLab({ name: 'x', mode: 'ipip' as never }), /--mode/);
    assert.throws(() => planLab({ name: 'x', datastore: 'kdd' as never }), /--datastore/);
    // kubernetes: the API's namespace takes etcd's place on the underlay (10.0.0.2).
    const k = planLab({ name: 'kd', datastore: 'kubernetes' });
    assert.deepEqual([k.datastore, k.etcdNs, k.etcdAddress], ['kubernetes', 'tl-kd-api', '10.0.0.2']);
    assert.ok(planNamespaces(k).includes('tl-kd-api'));
    assert.ok(lanLines(k).includes('link add e0 type veth peer name eth0 netns tl-kd-api'));
    assert.deepEqual(parsePodRef('default/nginx-1'), { namespace: 'default', name: 'nginx-1' });
    assert.throws(() => parsePodRef('nginx'), /NAMESPACE\/POD/);
    assert.throws(() => parsePodRef('a.b/c'), /namespace/);
    assert.deepEqual(parseServe('80,53/udp,8080/tcp'), [{ port: 80, proto: 'tcp' }, { port: 53, proto: 'udp' }, { port: 8080, proto: 'tcp' }]);
    assert.throws(() => parseServe('70000'));
    assert.throws(() => parseServe('80/sctp'));
    assert.deepEqual(parseLabels('app=web,tier=fe'), { app: 'web', tier: 'fe' });
    assert.throws(() => parseLabels('app'));
  });

  it('pod namespaces and container IDs are unique and stable', () => {
    const a = podNsName('lab', { namespace: 'a-b', name: 'c' });
    const b = podNsName('lab', { namespace: 'a', name: 'b-c' });
    assert.equal(a, 'tl-lab-pod-a-b.c');
    assert.notEqual(a, b);
    const long = podNsName('lab', { namespace: 'default', name: 'x'.repeat(100) });
    assert.match(long, /^tl-lab-pod-[0-9a-f]{16}$/);
    assert.equal(containerId('lab', { namespace: 'd', name: 'p' }), containerId('lab', { namespace: 'd', name: 'p' }));
    assert.notEqual(containerId('lab', { namespace: 'd', name: 'p' }), containerId('lab2', { namespace: 'd', name: 'p' }));
  });
});
