// Pods on one node, end to end: the runtime-style harness runs the seed's chain (tortie → portmap
// → bandwidth) inside a node's host namespace, tortie-node does IPAM, wiring and the workload
// endpoint, and real packets prove the result. Nothing runs in the root namespace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import type { Backend } from '../../../libcalico-go/lib/backend/api.js';
import { openEmbedded } from '../../../libcalico-go/lib/backend/embedded/embedded.js';
import { resourceKey, resourcePrefix } from '../../../libcalico-go/lib/backend/keys.js';
import { IPAM } from '../../../libcalico-go/lib/ipam/ipam.js';
import { type Conflist, runConflistAdd, runConflistDel } from '../../../testing/cni-harness.js';
import { BIN, TestNode, inNs, ip } from '../../../testing/node-fixture.js';
import { runCtl } from '../../../testing/ipam-plugin-fixture.js';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync('/usr/lib/cni/portmap') ? '/usr/lib/cni/portmap is not installed (apt-get install containernetworking-plugins)' : false;

function seedConflist(socket: string, stateDir: string): Conflist {
  return {
    name: 'k8s-pod-network',
    cniVersion: '0.3.1',
    plugins: [
      {
        type: 'tortie',
        log_level: 'info',
        datastore_type: 'embedded',
        nodename_file: join(stateDir, 'nodename'),
        agent_socket: socket,
        ipam: { type: 'tortie-ipam', assign_ipv4: 'true', ipv4_pools: ['10.233.64.0/18'] },
        policy: { type: 'k8s' },
      },
      { type: 'portmap', snat: true, capabilities: { portMappings: true } },
      { type: 'bandwidth', capabilities: { bandwidth: true } },
    ],
  };
}

describe('pods on a node', { skip }, () => {
  let dir: string;
  let store: Backend;
  let node: TestNode;
  let conflist: Conflist;
  const cniPath = [join(BIN('tortie'), '..'), '/usr/lib/cni'];
  const rt = (id: string, netns: string, pod: string, extra: Record<string, unknown> = {}) => ({
    containerId: id,
    netns: `/run/netns/${netns}`,
    ifname: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=${id}`,
    cacheDir: join(dir, 'cni-cache'),
    cniPath,
    wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs],
    ...extra,
  });
  const allocated = async () =>
    (await new IPAM(store, { selects: () => true }).blocks(4)).reduce((s, b) => s + b.allocations.filter((a) => a !== null).length, 0);
  const weps = async () => (await store.list(resourcePrefix('WorkloadEndpoint'))).items.length;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-pods-'));
    const dsPath = join(dir, 'datastore.db');
    node = new TestNode({ nodeName: 'worker02', datastoreEnv: { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: dsPath } });
    node.setUp();
    await node.startAgent();
    store = openEmbedded(dsPath);
    conflist = seedConflist(node.socket, node.stateDir);
    (conflist.plugins[0] as Record<string, unknown>).datastore_path = dsPath;
  });
  after(async () => {
    await store?.close();
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('wires a pod through the seed chain: /32 from the node block, cali name, routes, port map, bandwidth', async () => {
    const ns1 = node.makePodNs('p1');
    const ns2 = node.makePodNs('p2');
    // Runtimes pass the same capability arguments on DEL as on ADD (portmap tears down by them).
    const caps = {
      capabilityArgs: {
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }],
        bandwidth: { ingressRate: 8_000_000, ingressBurst: 1_000_000, egressRate: 8_000_000, egressBurst: 1_000_000 },
      },
    };
    const add1 = await runConflistAdd(conflist, rt('ctr-one', ns1, 'nginx-1', caps));
    assert.ok(add1.ok, JSON.stringify(add1.error) + node.agentLog);
    const add2 = await runConflistAdd(conflist, rt('ctr-two', ns2, 'nginx-2'));
    assert.ok(add2.ok, JSON.stringify(add2.error));
    const res = add1.result as { ips: { address: string; interface: number }[]; interfaces: { name: string; sandbox?: string }[] };
    const [addr1] = res.ips[0].address.split('/');
    const addr2 = ((add2.result as typeof res).ips[0].address).split('/')[0];
    assert.match(res.ips[0].address, /^10\.233\.\d+\.\d+\/32$/);
    assert.equal(res.interfaces[res.ips[0].interface].name, 'eth0');
    const host = res.interfaces[0].name;
    assert.match(host, /^cali[0-9a-f]{11}$/);

    // The pod's side.
    const podRoutes = ip('-n', ns1, 'route');
    assert.match(podRoutes, /default via 169\.254\.1\.1 dev eth0/);
    assert.match(podRoutes, /169\.254\.1\.1 dev eth0 scope link/);
    assert.match(ip('-n', ns1, 'addr', 'show', 'eth0'), new RegExp(`inet ${addr1.replace(/\./g, '\\.')}/32`));
    // The host's side.
    assert.match(ip('-n', node.hostNs, 'route'), new RegExp(`${addr1.replace(/\./g, '\\.')} dev ${host} scope link`));
    assert.match(ip('-n', node.hostNs, 'link', 'show', host), /link\/ether ee:ee:ee:ee:ee:ee/);
    // The workload endpoint, as calicoctl shows it.
    const wep = await store.get(resourceKey('WorkloadEndpoint', 'worker02-k8s-nginx--1-eth0', 'default'));
    assert.ok(wep, 'workload endpoint stored');
    const spec = JSON.parse(wep.value).spec;
    assert.equal(spec.interfaceName, host);
    assert.deepEqual(spec.ipNetworks, [`${addr1}/32`]);
    assert.equal(spec.containerID, 'ctr-one');
    // tortiectl shows the pods as calicoctl showed them in the seed.
    const ctl = await runCtl(['get', 'workloadendpoints', '-A'], { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: join(dir, 'datastore.db') });
    assert.match(ctl.stdout, /^NAMESPACE +WORKLOAD +NODE +NETWORKS +INTERFACE +\n/);
    assert.match(ctl.stdout, new RegExp(`\\ndefault +nginx-1 +worker02 +${addr1.replace(/\./g, '\\.')}/32 +${host} +\\n`));
    // Real packets: host → pod, pod → pod.
    inNs(node.hostNs, ['ping', '-c', '1', '-W', '2', addr1]);
    inNs(ns1, ['ping', '-c', '1', '-W', '2', addr2]);
    // Bandwidth: tbf on the host veth.
    assert.match(inNs(node.hostNs, ['tc', 'qdisc', 'show', 'dev', host]), /tbf/);
    // Port mapping: from the LAN to the node's address:8080 reaches the pod's port 80.
    const server = spawn('/usr/sbin/ip', ['netns', 'exec', ns1, process.execPath, '-e',
      "require('net').createServer(s=>s.end('hello from pod\\n')).listen(80,()=>console.log('up'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((r) => server.stdout!.once('data', () => r()));
      const got = inNs(node.underlayNs, [process.execPath, '-e',
        "const s=require('net').connect(8080,'10.0.0.11');s.on('data',d=>{process.stdout.write(d);process.exit(0)});setTimeout(()=>process.exit(3),3000)"]);
      assert.equal(got, 'hello from pod\n');
    } finally {
      server.kill();
    }

    for (const round of [1, 2]) {
      for (const [id, ns, pod] of [['ctr-one', ns1, 'nginx-1'], ['ctr-two', ns2, 'nginx-2']]) {
        const d = await runConflistDel(conflist, rt(id, ns, pod, id === 'ctr-one' ? caps : {}));
        assert.ok(d.ok, `DEL round ${round}: ${JSON.stringify(d.error)}`);
      }
    }
    assert.doesNotMatch(ip('-n', node.hostNs, 'link'), /cali/);
    // The node's own block stays as BIRD's blackhole; no route to a pod may remain.
    assert.doesNotMatch(ip('-n', node.hostNs, 'route'), /10\.233\.\S+ dev cali/);
    assert.doesNotMatch(ip('-n', ns1, 'link'), /eth0/);
    assert.equal(await allocated(), 0);
    assert.equal(await weps(), 0);
    assert.doesNotMatch(inNs(node.hostNs, ['iptables-save', '-t', 'nat']), /ctr-one/);
  });

  it('50 concurrent ADDs then DELs leave nothing behind', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => i);
    const nss = ids.map((i) => node.makePodNs(`c${i}`));
    const adds = await Promise.all(ids.map((i) => runConflistAdd(conflist, rt(`conc-${i}`, nss[i], `web-${i}`))));
    for (const a of adds) assert.ok(a.ok, JSON.stringify(a.error));
    const addrs = adds.map((a) => (a.result as { ips: { address: string }[] }).ips[0].address);
    assert.equal(new Set(addrs).size, 50);
    assert.equal(await weps(), 50);
    inNs(nss[7], ['ping', '-c', '1', '-W', '2', addrs[42].split('/')[0]]);
    const dels = await Promise.all(ids.map((i) => runConflistDel(conflist, rt(`conc-${i}`, nss[i], `web-${i}`))));
    for (const d of dels) assert.ok(d.ok, JSON.stringify(d.error));
    assert.doesNotMatch(ip('-n', node.hostNs, 'link'), /cali/);
    // The node's own block stays as BIRD's blackhole; no route to a pod may remain.
    assert.doesNotMatch(ip('-n', node.hostNs, 'route'), /10\.233\.\S+ dev cali/);
    assert.equal(await allocated(), 0);
    assert.equal(await weps(), 0);
    for (const ns of nss) node.deletePodNs(ns);
  });

  it('pods keep working while the agent is down; DEL works after it restarts', async () => {
    const ns1 = node.makePodNs('k1');
    const ns2 = node.makePodNs('k2');
    const a1 = await runConflistAdd(conflist, rt('keep-1', ns1, 'keep-1'));
    const a2 = await runConflistAdd(conflist, rt('keep-2', ns2, 'keep-2'));
    assert.ok(a1.ok && a2.ok);
    const addr2 = (a2.result as { ips: { address: string }[] }).ips[0].address.split('/')[0];
    await node.killAgent('SIGKILL');
    inNs(ns1, ['ping', '-c', '1', '-W', '2', addr2]);
    // With the agent down, ADD fails fast with "try again later" and leaves nothing.
    const ns3 = node.makePodNs('k3');
    const down = await runConflistAdd(conflist, rt('keep-3', ns3, 'keep-3'));
    assert.equal(down.ok, false);
    assert.equal(down.error?.code, 11);
    assert.match(down.error?.msg ?? '', /tortie-node is not running/);
    assert.doesNotMatch(ip('-n', ns3, 'link'), /eth0/);
    await node.startAgent();
    inNs(ns1, ['ping', '-c', '1', '-W', '2', addr2]);
    for (const [id, ns] of [['keep-1', ns1], ['keep-2', ns2]]) {
      const d = await runConflistDel(conflist, rt(id, ns, id));
      assert.ok(d.ok, JSON.stringify(d.error));
    }
    assert.equal(await allocated(), 0);
    assert.doesNotMatch(ip('-n', node.hostNs, 'link'), /cali/);
  });

  it('a failed ADD undoes everything (address already routed elsewhere)', async () => {
    const ns = node.makePodNs('f1');
    // An address the IPAM will hand out next is already routed on the host to another device.
    const before = await allocated();
    const probe = await runConflistAdd(conflist, rt('probe', node.makePodNs('f0'), 'probe'));
    const next = (probe.result as { ips: { address: string }[] }).ips[0].address.split('/')[0];
    await runConflistDel(conflist, rt('probe', `tortie-t${node.tag}-f0`, 'probe'));
    // FIFO reuse means `next` goes to the back of the queue: request it explicitly instead.
    inNs(node.hostNs, ['ip', 'route', 'add', `${next}/32`, 'dev', 'eth0']);
    const r = await runConflistAdd(conflist, rt('fail-1', ns, 'fail-1', { args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=fail-1;IP=${next}` }));
    assert.equal(r.ok, false, 'ADD refused');
    assert.match(r.error?.msg ?? '', /already/);
    assert.equal(await allocated(), before, 'address released');
    assert.equal(await weps(), 0, 'no workload endpoint');
    assert.doesNotMatch(ip('-n', ns, 'link'), /eth0/, 'nothing left in the pod');
    assert.doesNotMatch(ip('-n', node.hostNs, 'link'), /cali/, 'no host veth');
    inNs(node.hostNs, ['ip', 'route', 'del', `${next}/32`, 'dev', 'eth0']);
  });
});
