// tortie-node on DATASTORE_TYPE=kubernetes, end to end on one node: a real kube-apiserver (on
// 127.0.0.1 of the root namespace, reached from the node's namespace through a forwarder this test
// owns: 127.0.0.1:<port> inside the node namespace → a Unix socket → 127.0.0.1:<port>), the real
// agent in its own namespace (testing/node-fixture.ts), k8s objects made with the real kubectl,
// pods added through the real `tortie` CNI plugin, Kubernetes NetworkPolicies enforced on real
// packets. Nothing runs in or changes the root namespace besides the loopback servers.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type Conflist, runConflistAdd, runConflistDel } from '../../testing/cni-harness.js';
import { missingKubernetesBinaries, startKubeApiserver, type TestKubeApiserver } from '../../testing/kube-apiserver.js';
import { BIN, TestNode, inNs } from '../../testing/node-fixture.js';
import { hostVethName } from '../../cni-plugin/pkg/naming/index.js';
import { NsPortForwarder } from '../../testing/ns-forwarder.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

function ctl(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(ROOT, 'bin/tortiectl'), args, { env: { ...env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}
const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd']);
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !existsSync('/usr/sbin/nft')
      ? '/usr/sbin/nft is not installed (apt-get install nftables)'
      : missing.length > 0
        ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built`
        : false;

type Obj = Record<string, any>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns `want` (bounded guard, not a timing assertion); returns the last answer. */
async function eventually<T>(probe: () => T | Promise<T>, want: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  let got = await probe();
  while (!want(got) && Date.now() < end) {
    await sleep(200);
    got = await probe();
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

describe('tortie-node on the kubernetes datastore', { skip, timeout: 600_000 }, () => {
  let api: TestKubeApiserver;
  let node: TestNode;
  let dir: string;
  let forwarder: NsPortForwarder | undefined;
  const servers: ChildProcess[] = [];
  const addr: Record<string, string> = {};
  const podNs: Record<string, string> = {};
  const kubectl = (args: string[], input?: unknown) => api.kubectl(args, input === undefined ? undefined : JSON.stringify(input));
  const getJSON = async (args: string[]): Promise<Obj> => JSON.parse((await kubectl([...args, '-o', 'json'])).stdout) as Obj;

  /** HTTP status of the agent's /readiness (inside the node namespace). */
  const readiness = (): number => {
    try {
      return Number(inNs(node.hostNs, [process.execPath, '-e',
        "require('http').get('http://127.0.0.1:9099/readiness',r=>{process.stdout.write(String(r.statusCode));r.resume()}).on('error',()=>process.stdout.write('0'))"]));
    } catch {
      return 0;
    }
  };

  const conflist = (): Conflist => ({
    name: 'k8s-pod-network',
    cniVersion: '1.0.0',
    plugins: [
      {
        type: 'tortie',
        datastore_type: 'kubernetes',
        kubernetes: { kubeconfig: api.kubeconfig },
        nodename_file: join(node.stateDir, 'nodename'),
        agent_socket: node.socket,
        ipam: { type: 'tortie-ipam', assign_ipv4: 'true' },
        policy: { type: 'k8s' },
      },
    ],
  });
  const runtime = (name: string, ns = 'shop') => ({
    containerId: `ctr-${name}`,
    netns: `/run/netns/${podNs[name]}`,
    ifname: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${ns};K8S_POD_NAME=${name};K8S_POD_INFRA_CONTAINER_ID=ctr-${name}`,
    cacheDir: join(dir, 'cni-cache'),
    cniPath: [join(BIN('tortie'), '..')],
    wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs],
  });

  async function addPod(name: string, ns = 'shop'): Promise<void> {
    podNs[name] = node.makePodNs(name);
    const r = await runConflistAdd(conflist(), runtime(name, ns));
    assert.ok(r.ok, JSON.stringify(r.error) + node.agentLog);
    addr[name] = (r.result as { ips: { address: string }[] }).ips[0]!.address.split('/')[0]!;
    const srv = spawn('/usr/sbin/ip', ['netns', 'exec', podNs[name]!, process.execPath, '-e',
      "require('net').createServer(s=>s.end('ok\\n')).listen(80,()=>console.log('up'))"], { stdio: ['ignore', 'pipe', 'inherit'] });
    servers.push(srv);
    await new Promise<void>((r) => srv.stdout!.once('data', () => r()));
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-agent-kdd-'));
    api = await startKubeApiserver();
    await api.kubectl(['apply', '-f', join(ROOT, 'manifests/crds.yaml')]);
    await api.kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
    await kubectl(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'shop' } },
        ...['web', 'db'].map((name) => ({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace: 'shop', labels: { app: name } },
          // Nothing runs it: the pod's sandbox is the namespace this test makes.
          spec: { nodeName: 'worker01', containers: [{ name, image: 'registry.k8s.io/e2e-test-images/agnhost:2.53' }] },
        })),
      ],
    });

    node = new TestNode({
      nodeName: 'worker01',
      datastoreEnv: { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: api.kubeconfig },
      env: { FELIX_HEALTHENABLED: 'true', FELIX_IPTABLESREFRESHINTERVAL: '1', CLUSTER_TYPE: 'k8s,bgp' },
    });
    node.setUp();
    // The API server's 127.0.0.1:<port> inside the node namespace (testing/ns-forwarder.ts).
    forwarder = new NsPortForwarder(node.hostNs, api.port, dir);
    await forwarder.start();
  });

  after(async () => {
    for (const s of servers) s.kill();
    await node?.stop();
    await forwarder?.close();
    await api?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('without its k8s Node the agent says so and stays not ready; once kubectl creates the Node it is ready, and only annotates it', async () => {
    await node.startAgent();
    const log = await eventually(() => node.agentLog, (l) => /Kubernetes Node worker01 does not exist/.test(l), 30_000);
    assert.match(log, /Kubernetes Node worker01 does not exist: on the kubernetes datastore the Node is the k8s Node that kubelet registers/);
    assert.equal(readiness(), 503);
    await assert.rejects(kubectl(['get', 'node', 'worker01']), /not found/, 'the agent did not create the Node');

    await kubectl(['create', '-f', '-'], { apiVersion: 'v1', kind: 'Node', metadata: { name: 'worker01', labels: { 'kubernetes.io/hostname': 'worker01' } } });
    assert.equal(await eventually(readiness, (s) => s === 200, 90_000), 200, node.agentLog);

    const k8sNode = await getJSON(['get', 'node', 'worker01']);
    assert.equal(k8sNode.metadata.annotations['projectcalico.org/IPv4Address'], '10.0.0.11/24');
    assert.deepEqual(k8sNode.metadata.labels, { 'kubernetes.io/hostname': 'worker01' }, 'labels are kubelet\'s, unchanged');
    const yaml = (await kubectl(['get', 'nodes', '-o', 'yaml'])).stdout;
    assert.match(yaml, /projectcalico\.org\/IPv4Address: 10\.0\.0\.11\/24/);

    const pools = await getJSON(['get', 'ippools.crd.projectcalico.org']);
    assert.deepEqual(pools.items.map((p: Obj) => [p.metadata.name, p.spec.cidr, p.spec.blockSize]), [['default-ipv4-ippool', '10.233.64.0/18', 24]]);
    const ci = await getJSON(['get', 'clusterinformations.crd.projectcalico.org', 'default']);
    assert.deepEqual(String(ci.spec.clusterType).split(','), ['k8s', 'bgp', 'kdd']);
    assert.equal(ci.spec.datastoreReady, true);
  });

  it('CNI ADD through the tortie plugin for Pods made with kubectl: eth0 with a pool address, the Pod annotated, Calico IPAM objects in the API', async () => {
    await addPod('web');
    await addPod('db');
    for (const name of ['web', 'db']) {
      const a = addr[name]!;
      assert.match(a, /^10\.233\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+$/, `${name} has an address of 10.233.64.0/18`);
      const eth0 = inNs(podNs[name]!, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      assert.match(eth0, new RegExp(`inet ${a.replace(/\./g, '\\.')}/32`));
      const pod = await getJSON(['get', 'pod', name, '-n', 'shop']);
      assert.equal(pod.metadata.annotations['cni.projectcalico.org/podIP'], `${a}/32`);
      assert.equal(pod.metadata.annotations['cni.projectcalico.org/podIPs'], `${a}/32`);
      assert.equal(pod.metadata.annotations['cni.projectcalico.org/containerID'], `ctr-${name}`);
    }
    const blocks = await getJSON(['get', 'ipamblocks']);
    assert.equal(blocks.items.length, 1);
    assert.equal(blocks.items[0].spec.affinity, 'host:worker01');
    const affs = await getJSON(['get', 'blockaffinities']);
    assert.deepEqual(affs.items.map((x: Obj) => [x.spec.node, x.spec.cidr, x.spec.state]), [['worker01', blocks.items[0].spec.cidr, 'confirmed']]);
    const handles = await getJSON(['get', 'ipamhandles']);
    assert.deepEqual(handles.items.map((h: Obj) => h.spec.handleID).sort(), ['k8s-pod-network.ctr-db', 'k8s-pod-network.ctr-web']);
    // The endpoints as Calico shows them (real tortiectl): read from the Pods, with the host veths
    // the agent made in the node namespace (the agent's interface prefix).
    const weps = await ctl(['get', 'workloadendpoints', '-A'], { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: api.kubeconfig });
    assert.equal(weps.code, 0, weps.stderr);
    const rows = weps.stdout.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    const hostLinks = inNs(node.hostNs, ['ip', '-o', 'link', 'show']);
    assert.deepEqual(rows.map((r) => r.slice(0, 4)).sort(), [['shop', 'db', 'worker01', `${addr.db}/32`], ['shop', 'web', 'worker01', `${addr.web}/32`]]);
    for (const r of rows) assert.match(hostLinks, new RegExp(`: ${r[4]}@`), `host veth ${r[4]} exists in the node namespace`);
    assert.ok(await eventually(() => pings(podNs.web!, addr.db!), (x) => x), 'web → db before any policy\n' + node.agentLog);
    assert.ok(connects(podNs.web!, addr.db!, 80));
  });

  it('a Kubernetes NetworkPolicy created with kubectl denying ingress to db is enforced on real packets; deleted → allowed again', async () => {
    await kubectl(['create', '-f', '-'], {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'deny-db-ingress', namespace: 'shop' },
      spec: { podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress'] },
    });
    assert.equal(await eventually(() => connects(podNs.web!, addr.db!, 80), (x) => !x), false, 'web → db:80 denied\n' + node.agentLog.slice(-3000));
    assert.equal(pings(podNs.web!, addr.db!), false, 'ping web → db denied');
    assert.equal(connects(podNs.db!, addr.web!, 80), true, 'db → web still allowed (the policy selects db only)');

    await kubectl(['delete', 'networkpolicy', 'deny-db-ingress', '-n', 'shop']);
    assert.equal(await eventually(() => connects(podNs.web!, addr.db!, 80), (x) => x), true, 'allowed again after delete');
  });

  it('namespace labels through kns.*: a kubectl NetworkPolicy admitting a namespaceSelector follows kubectl label namespace', async () => {
    await kubectl(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ops', labels: { team: 'ops' } } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'ops' } },
        { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'probe', namespace: 'ops', labels: { app: 'probe' } }, spec: { nodeName: 'worker01', containers: [{ name: 'probe', image: 'registry.k8s.io/e2e-test-images/agnhost:2.53' }] } },
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'db-from-ops', namespace: 'shop' },
          spec: { podSelector: { matchLabels: { app: 'db' } }, policyTypes: ['Ingress'], ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }] }] },
        },
      ],
    });
    await addPod('probe', 'ops');
    assert.equal(await eventually(() => connects(podNs.web!, addr.db!, 80), (x) => !x), false, 'shop/web → db denied (its namespace is not team=ops)');
    assert.equal(await eventually(() => connects(podNs.probe!, addr.db!, 80), (x) => x), true, 'ops/probe → db allowed\n' + node.agentLog.slice(-3000));
    await kubectl(['label', 'namespace', 'ops', 'team=dev', '--overwrite']);
    assert.equal(await eventually(() => connects(podNs.probe!, addr.db!, 80), (x) => !x), false, 'denied once the namespace label changes');
    await kubectl(['label', 'namespace', 'shop', 'team=ops']);
    assert.equal(await eventually(() => connects(podNs.web!, addr.db!, 80), (x) => x), true, 'shop/web allowed once its namespace is team=ops');
    await kubectl(['delete', 'networkpolicy', 'db-from-ops', '-n', 'shop']);
    const r = await runConflistDel(conflist(), runtime('probe', 'ops'));
    assert.ok(r.ok, JSON.stringify(r.error));
  });

  it('DEL frees the address and empties the pod annotations; a second DEL succeeds', async () => {
    for (const name of ['web', 'db']) {
      for (const round of [1, 2]) {
        const r = await runConflistDel(conflist(), runtime(name));
        assert.ok(r.ok, `DEL ${name} round ${round}: ${JSON.stringify(r.error)}`);
      }
      const pod = await getJSON(['get', 'pod', name, '-n', 'shop']);
      assert.equal(pod.metadata.annotations['cni.projectcalico.org/podIP'] ?? '', '');
    }
    const handles = await getJSON(['get', 'ipamhandles']);
    assert.equal(handles.items.length, 0, 'no handle left');
    const blocks = await getJSON(['get', 'ipamblocks']);
    for (const b of blocks.items) assert.ok((b.spec.allocations as unknown[]).every((a) => a === null), 'no address allocated');
  });

  it("Calico's IPAM annotations: ipv4pools on the pod or its namespace, ipAddrs, ipAddrsNoIpam (with feature_control); a bad value fails the ADD with code 2 and leaves nothing", async () => {
    const ann = (a: Record<string, string>) => a;
    await kubectl(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'crd.projectcalico.org/v1', kind: 'IPPool', metadata: { name: 'second' }, spec: { cidr: '10.66.0.0/24', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', nodeSelector: 'all()', natOutgoing: false } },
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'teamb', annotations: ann({ 'cni.projectcalico.org/ipv4pools': '["10.66.0.0/24"]' }) } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'teamb' } },
        ...(
          [
            ['pooled', 'shop', { 'cni.projectcalico.org/ipv4pools': '["second"]' }],
            ['nspooled', 'teamb', {}],
            ['fixed', 'shop', { 'cni.projectcalico.org/ipAddrs': '["10.66.0.77"]' }],
            ['badann', 'shop', { 'cni.projectcalico.org/ipv4pools': 'second' }],
            ['noipam', 'shop', { 'cni.projectcalico.org/ipAddrsNoIpam': '["10.99.0.5"]' }],
          ] as const
        ).map(([name, ns, a]) => ({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name, namespace: ns, annotations: a },
          spec: { nodeName: 'worker01', containers: [{ name, image: 'registry.k8s.io/e2e-test-images/agnhost:2.53' }] },
        })),
      ],
    });
    const handlesNow = async () => (await getJSON(['get', 'ipamhandles'])).items.map((h: Obj) => h.spec.handleID).sort() as string[];
    await addPod('pooled');
    assert.match(addr.pooled!, /^10\.66\.0\.\d+$/, 'the pod annotation names pool second');
    await addPod('nspooled', 'teamb');
    assert.match(addr.nspooled!, /^10\.66\.0\.\d+$/, "the namespace's annotation applies to a pod without one");
    await addPod('fixed');
    assert.equal(addr.fixed, '10.66.0.77', 'ipAddrs: exactly that address');
    assert.match(inNs(podNs.fixed!, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), /inet 10\.66\.0\.77\/32/);

    const before = await handlesNow();
    podNs.badann = node.makePodNs('badann');
    const bad = await runConflistAdd(conflist(), runtime('badann'));
    assert.equal(bad.ok, false);
    assert.equal((bad.error as { code?: number }).code, 2, JSON.stringify(bad.error));
    assert.match((bad.error as { msg?: string }).msg ?? '', /pod annotation cni\.projectcalico\.org\/ipv4pools="second" is not JSON/);
    assert.deepEqual(await handlesNow(), before, 'no address allocated for the refused ADD');
    assert.equal(inNs(node.hostNs, ['ip', '-o', 'link', 'show']).includes(hostVethName({ namespace: 'shop', pod: 'badann' }, '', 'cali')), false, 'no host veth left');

    podNs.noipam = node.makePodNs('noipam');
    const refused = await runConflistAdd(conflist(), runtime('noipam'));
    assert.equal((refused.error as { code?: number } | undefined)?.code, 2, JSON.stringify(refused.error));
    assert.match((refused.error as { msg?: string }).msg ?? '', /needs feature_control\.ip_addrs_no_ipam: true/);
    const withFc: Conflist = { ...conflist(), plugins: [{ ...conflist().plugins[0]!, feature_control: { ip_addrs_no_ipam: true } }] };
    const ok = await runConflistAdd(withFc, runtime('noipam'));
    assert.ok(ok.ok, JSON.stringify(ok.error) + node.agentLog.slice(-2000));
    assert.match(inNs(podNs.noipam!, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), /inet 10\.99\.0\.5\/32/);
    assert.deepEqual(await handlesNow(), before, 'ipAddrsNoIpam allocates nothing in IPAM');

    for (const [name, ns] of [['pooled', 'shop'], ['nspooled', 'teamb'], ['fixed', 'shop']] as const) {
      const r = await runConflistDel(conflist(), runtime(name, ns));
      assert.ok(r.ok, JSON.stringify(r.error));
    }
    assert.ok((await runConflistDel(withFc, runtime('noipam'))).ok);
    assert.deepEqual(await handlesNow(), [], 'every annotated pod released its address');
  });

  it('the API server unreachable from the node: the agent stays up, not ready, CNI ADD answers 11 at once; reachable again → ready by itself', async () => {
    await forwarder!.stopInNs();
    assert.equal(await eventually(readiness, (x) => x === 503, 60_000), 503, 'readiness down while the API is unreachable\n' + node.agentLog.slice(-2000));
    podNs.late = node.makePodNs('late');
    await kubectl(['create', '-f', '-'], { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'late', namespace: 'shop' }, spec: { nodeName: 'worker01', containers: [{ name: 'late', image: 'registry.k8s.io/e2e-test-images/agnhost:2.53' }] } });
    const r = await runConflistAdd(conflist(), runtime('late'));
    assert.equal(r.ok, false);
    assert.equal((r.error as { code?: number }).code, 11, JSON.stringify(r.error));
    assert.match(await eventually(() => node.agentLog, (l) => /Lost the datastore/.test(l), 30_000), /Lost the datastore: .*unreachable/);

    await forwarder!.startInNs();
    assert.equal(await eventually(readiness, (x) => x === 200, 90_000), 200, 'ready again by itself\n' + node.agentLog.slice(-2000));
    assert.match(await eventually(() => node.agentLog, (l) => /Datastore is reachable again/.test(l), 30_000), /Datastore is reachable again/);
    const ok = await runConflistAdd(conflist(), runtime('late'));
    assert.ok(ok.ok, JSON.stringify(ok.error));
    const del = await runConflistDel(conflist(), runtime('late'));
    assert.ok(del.ok, JSON.stringify(del.error));
  });
});
