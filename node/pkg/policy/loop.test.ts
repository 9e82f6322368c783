// Policy enforcement by the agent, end to end on one node: pods added through the CNI chain, Calico
// policies written to the datastore, real packets between the pods' namespaces. Nothing runs in the
// root namespace.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../../libcalico-go/lib/backend/api.js';
import { openEmbedded } from '../../../libcalico-go/lib/backend/embedded/embedded.js';
import { ResourceClient } from '../../../libcalico-go/lib/clientv3/resources.js';
import { type Conflist, runConflistAdd } from '../../../testing/cni-harness.js';
import { BIN, TestNode, inNs } from '../../../testing/node-fixture.js';
import { endpointToHostAction } from './loop.js';

const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync('/usr/sbin/nft') ? '/usr/sbin/nft is not installed (apt-get install nftables)' : false;

describe('endpointToHostAction', () => {
  it('reads Felix spellings in any case and refuses others', () => {
    assert.equal(endpointToHostAction('ACCEPT'), 'Accept');
    assert.equal(endpointToHostAction(' drop '), 'Drop');
    assert.equal(endpointToHostAction('Return'), 'Return');
    assert.equal(endpointToHostAction('reject'), undefined);
    assert.equal(endpointToHostAction(undefined), undefined);
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns `want` (5 s); returns the last answer. */
async function eventually(probe: () => boolean, want: boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  let got = probe();
  while (got !== want && Date.now() < end) {
    await sleep(100);
    got = probe();
  }
  return got;
}

function pings(ns: string, to: string): boolean {
  try {
    inNs(ns, ['ping', '-c', '1', '-W', '1', to]);
    return true;
  } catch {
    return false;
  }
}

function connects(ns: string, to: string, port: number): boolean {
  try {
    const out = inNs(ns, [process.execPath, '-e',
      `const s=require('net').connect(${port},'${to}');s.on('data',d=>{process.stdout.write(d);process.exit(0)});s.on('error',()=>process.exit(2));setTimeout(()=>process.exit(3),1000)`]);
    return out === 'ok\n';
  } catch {
    return false;
  }
}

describe('policy enforcement by tortie-node', { skip }, () => {
  let dir: string;
  let store: Backend;
  let rc: ResourceClient;
  let node: TestNode;
  const servers: ChildProcess[] = [];
  const addr: Record<string, string> = {};
  const podNs: Record<string, string> = {};

  const conflist = (policy: boolean): Conflist => ({
    name: policy ? 'k8s-pod-network' : 'plain-net',
    cniVersion: '1.0.0',
    plugins: [
      {
        type: 'tortie',
        datastore_type: 'embedded',
        datastore_path: join(dir, 'datastore.db'),
        nodename_file: join(node.stateDir, 'nodename'),
        agent_socket: node.socket,
        ipam: { type: 'tortie-ipam', assign_ipv4: 'true' },
        ...(policy ? { policy: { type: 'k8s' } } : {}),
      },
    ],
  });

  async function addPod(name: string, labels: string, k8s = true): Promise<void> {
    const ns = node.makePodNs(name);
    podNs[name] = ns;
    const r = await runConflistAdd(conflist(k8s), {
      containerId: `ctr-${name}`,
      netns: `/run/netns/${ns}`,
      ifname: 'eth0',
      args: k8s ? `IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=${name};K8S_POD_LABELS=${labels}` : '',
      cacheDir: join(dir, 'cni-cache'),
      cniPath: [join(BIN('tortie'), '..')],
      wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs],
    });
    assert.ok(r.ok, JSON.stringify(r.error) + node.agentLog);
    addr[name] = (r.result as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
    const srv = spawn('/usr/sbin/ip', ['netns', 'exec', ns, process.execPath, '-e',
      "require('net').createServer(s=>s.end('ok\\n')).listen(80,()=>console.log('up'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
    servers.push(srv);
    await new Promise<void>((r) => srv.stdout!.once('data', () => r()));
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-policy-'));
    const dsPath = join(dir, 'datastore.db');
    node = new TestNode({
      nodeName: 'worker01',
      datastoreEnv: { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: dsPath },
      env: { FELIX_PROMETHEUSMETRICSENABLED: 'true', FELIX_PROMETHEUSMETRICSHOST: '127.0.0.1', FELIX_HEALTHENABLED: 'true', FELIX_IPTABLESREFRESHINTERVAL: '1' },
    });
    node.setUp();
    await node.startAgent();
    store = openEmbedded(dsPath);
    rc = new ResourceClient(store);
    await addPod('web', 'app=web');
    await addPod('db', 'app=db');
  });
  after(async () => {
    for (const s of servers) s.kill();
    await store?.close();
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without policy, pods in a namespace with no profile talk', async () => {
    assert.ok(await eventually(() => pings(podNs.web!, addr.db!), true), node.agentLog);
    assert.ok(connects(podNs.web!, addr.db!, 80));
  });

  it('a NetworkPolicy selecting db denies what it does not allow, within moments, on real packets', async () => {
    await rc.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'NetworkPolicy',
      metadata: { name: 'db-from-web-80', namespace: 'shop' },
      spec: { selector: "app == 'db'", types: ['Ingress'], ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "app == 'web'" }, destination: { ports: [80] } }] },
    });
    assert.equal(await eventually(() => pings(podNs.web!, addr.db!), false), false, 'ping web → db should be denied');
    assert.ok(connects(podNs.web!, addr.db!, 80), 'TCP 80 web → db is allowed');
    // db's egress is not selected: db → web still works, and the reply comes back (conntrack).
    assert.ok(pings(podNs.db!, addr.web!));
    // The host reaches its local pods whatever their ingress policy says (Calico: kubelet probes).
    assert.ok(pings(node.hostNs, addr.db!), 'host → pod is not policed');
    // The kernel has the agent's table, and nothing else was written.
    const tables = inNs(node.hostNs, ['nft', 'list', 'tables']);
    assert.match(tables, /table inet tortie-filter/);
  });

  it('a label change takes a pod out of the allowed set', async () => {
    const wep = (await rc.list('WorkloadEndpoint', 'shop')).find((w) => (w.spec as { pod?: string }).pod === 'web')!;
    wep.metadata.labels = { ...(wep.metadata.labels ?? {}), app: 'intruder' };
    await rc.update(wep);
    assert.equal(await eventually(() => connects(podNs.web!, addr.db!, 80), false), false, 'web relabelled: denied');
    wep.metadata.labels = { ...(wep.metadata.labels ?? {}), app: 'web' };
    const again = (await rc.list('WorkloadEndpoint', 'shop')).find((w) => (w.spec as { pod?: string }).pod === 'web')!;
    again.metadata.labels = { ...(again.metadata.labels ?? {}), app: 'web' };
    await rc.update(again);
    assert.ok(await eventually(() => connects(podNs.web!, addr.db!, 80), true), 'web again: allowed');
  });

  it('the table, deleted by hand, comes back at the next refresh', async () => {
    execFileSync('/usr/sbin/ip', ['netns', 'exec', node.hostNs, 'nft', 'delete', 'table', 'inet', 'tortie-filter']);
    assert.ok(pings(podNs.web!, addr.db!), 'with the table gone, nothing is enforced');
    // The repair is logged; wait for it before probing (under load a ping can also go unanswered
    // for a second without any table, so an unanswered ping alone does not show the repair).
    const repaired = /table inet tortie-filter was not as written \(table missing\); repaired/;
    assert.ok(await eventually(() => repaired.test(node.agentLog), true, 30_000), `no repair logged:\n${node.agentLog}`);
    assert.equal(await eventually(() => pings(podNs.web!, addr.db!), false), false, 'restored: ping denied again');
  });

  it('a GlobalNetworkPolicy in an earlier tier denies before the namespace policy allows', async () => {
    await rc.create({ apiVersion: 'projectcalico.org/v3', kind: 'Tier', metadata: { name: 'security' }, spec: { order: 100 } });
    await rc.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'GlobalNetworkPolicy',
      metadata: { name: 'security.no-80' },
      spec: { tier: 'security', selector: 'all()', types: ['Ingress'], ingress: [{ action: 'Deny', protocol: 'TCP', destination: { ports: [80] } }, { action: 'Pass' }] },
    });
    assert.equal(await eventually(() => connects(podNs.web!, addr.db!, 80), false), false, 'denied by the security tier');
    await rc.delete('GlobalNetworkPolicy', 'security.no-80');
    await rc.delete('Tier', 'security');
    assert.ok(await eventually(() => connects(podNs.web!, addr.db!, 80), true), 'allowed again');
  });

  it('FelixConfiguration defaultEndpointToHostAction: Drop stops pod → host; the host still reaches the pod', async () => {
    const hostIp = node.address.split('/')[0]!;
    assert.ok(pings(podNs.web!, hostIp), 'pod → host accepted by default');
    await rc.create({ apiVersion: 'projectcalico.org/v3', kind: 'FelixConfiguration', metadata: { name: 'default' }, spec: { defaultEndpointToHostAction: 'Drop' } });
    assert.equal(await eventually(() => pings(podNs.web!, hostIp), false), false, 'pod → host dropped');
    assert.ok(pings(node.hostNs, addr.web!), 'host → pod');
    await rc.delete('FelixConfiguration', 'default');
    assert.ok(await eventually(() => pings(podNs.web!, hostIp), true), 'accepted again');
  });

  it('deleting the policy opens the path again; metrics show programming latency', async () => {
    await rc.delete('NetworkPolicy', 'db-from-web-80', 'shop');
    assert.ok(await eventually(() => pings(podNs.web!, addr.db!), true));
    const m = node.metrics();
    const count = /^tortie_policy_programming_seconds_count (\d+)/m.exec(m);
    assert.ok(count && Number(count[1]) >= 2, `programming latency observed:\n${m.slice(0, 2000)}`);
    assert.match(m, /^felix_active_local_endpoints 2$/m);
    assert.match(m, /^felix_int_dataplane_apply_time_seconds_count [1-9]/m);
    // Felix-style readiness names the policy and routing loops.
    const health = JSON.parse(node.httpGet(9099, '/readiness?format=json')) as { ready: boolean; reporters: { name: string; ready: boolean }[] };
    assert.equal(health.ready, true);
    for (const name of ['policy', 'routing']) assert.equal(health.reporters.find((r) => r.name === name)?.ready, true, name);
  });

  /** A veth named `hostIf` on the node to a new namespace, wired like a pod but never given to the agent. */
  function rogue(name: string, hostIf: string, address: string): string {
    const ns = node.makePodNs(name);
    const ipn = (...a: string[]) => execFileSync('/usr/sbin/ip', a);
    ipn('-n', node.hostNs, 'link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ipn('-n', ns, 'addr', 'add', `${address}/32`, 'dev', 'eth0');
    ipn('-n', ns, 'link', 'set', 'eth0', 'up');
    ipn('-n', node.hostNs, 'link', 'set', hostIf, 'up');
    ipn('-n', ns, 'route', 'add', '169.254.1.1', 'dev', 'eth0', 'scope', 'link');
    ipn('-n', ns, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
    ipn('-n', node.hostNs, 'route', 'add', `${address}/32`, 'dev', hostIf);
    inNs(node.hostNs, ['sysctl', '-q', '-w', `net.ipv4.conf.${hostIf}.proxy_arp=1`]);
    return ns;
  }

  it('a cali* interface the agent has no endpoint for is dropped (fail closed); another prefix is not policed', async () => {
    const unknown = rogue('rogue', 'calirogue00001', '10.233.99.1');
    const other = rogue('other', 'tstother000001', '10.233.99.2');
    assert.ok(await eventually(() => pings(other, addr.web!), true), 'a non-workload interface is forwarded (the wiring works)');
    assert.equal(pings(unknown, addr.web!), false, 'an unknown cali interface is dropped');
    assert.equal(pings(podNs.web!, '10.233.99.1'), false, 'and so is traffic to it');
  });

  it('a network without Kubernetes policy gets a profile named after it, and its pods talk', async () => {
    await addPod('plain1', '', false);
    await addPod('plain2', '', false);
    const prof = await rc.get('Profile', 'plain-net');
    assert.ok(prof, 'profile plain-net created');
    assert.deepEqual((prof.spec as { labelsToApply?: unknown }).labelsToApply, { 'plain-net': '' });
    assert.ok(await eventually(() => pings(podNs.plain1!, addr.plain2!), true), node.agentLog.slice(-3000));
    // The profile's label selects them: a global deny on it applies.
    await rc.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'GlobalNetworkPolicy',
      metadata: { name: 'plain-isolated' },
      spec: { selector: 'has(plain-net)', types: ['Ingress'], ingress: [] },
    });
    assert.equal(await eventually(() => pings(podNs.plain1!, addr.plain2!), false), false, 'denied by a policy on the profile label');
    assert.ok(pings(podNs.web!, addr.db!), 'k8s pods are not selected');
  });
});
