// manifests/tortie.yaml on a real kube-apiserver (testing/kube-apiserver.ts), with nothing but the
// credentials the manifest gives:
// * `kubectl apply --dry-run=server` accepts it; applied, its CRDs are established.
// * tortie-install-cni, with a token of ServiceAccount tortie-node only, writes the conflist from the
//   ConfigMap's template, the CNI kubeconfig (0600) holding a tortie-cni-plugin token the API server
//   accepts, and the plugins with their own Node runtime, which run on this host outside any image;
//   bad settings write nothing.
// * The token refresher replaces a 10-minute token before it expires (a clock of its own, the real
//   API server issuing), and the new token is accepted.
// * tortie-node with only the tortie-node token (in a network namespace of its own, the API
//   server reached through a forwarder, as in agent-kdd.test.ts) registers, sets NetworkUnavailable
//   False, replaces a bad CNI token, and serves CNI ADD/DEL for a kubectl-made Pod through the
//   tortie plugin with the CNI kubeconfig — any forbidden call would show in its log (checked).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadAll } from 'js-yaml';
import { type Conflist, runConflistAdd, runConflistDel } from '../../testing/cni-harness.js';
import { missingKubernetesBinaries, startKubeApiserver, type TestKubeApiserver } from '../../testing/kube-apiserver.js';
import { BIN, TestNode, inNs } from '../../testing/node-fixture.js';
import { NsPortForwarder } from '../../testing/ns-forwarder.js';
import { CniTokenRefresher, requestToken } from '../../cni-plugin/pkg/index.js';
import { kubeconfigToken, renderKubeconfig, tokenExpiry } from '../../cni-plugin/pkg/install/render.js';
import { loadKubeClient } from '../../libcalico-go/lib/backend/kubernetes/client.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const MANIFEST = join(ROOT, 'manifests/tortie.yaml');
type Obj = Record<string, any>;
const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd']);
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !existsSync('/usr/sbin/nft')
      ? '/usr/sbin/nft is not installed (apt-get install nftables)'
      : !existsSync('/usr/lib/cni/portmap')
        ? '/usr/lib/cni/portmap is not installed (apt-get install containernetworking-plugins)'
        : missing.length > 0
          ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built`
          : false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function eventually<T>(probe: () => T | Promise<T>, want: (v: T) => boolean, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  let got = await probe();
  while (!want(got) && Date.now() < end) {
    await sleep(200);
    got = await probe();
  }
  return got;
}

const docs = loadAll(readFileSync(MANIFEST, 'utf8')).filter(Boolean) as Obj[];
const ds = docs.find((d) => d.kind === 'DaemonSet')!;
const cm = docs.find((d) => d.kind === 'ConfigMap')!;
/** A container's env from the manifest as the kubelet resolves it on `node`. */
function manifestEnv(container: string, node: string): Record<string, string> {
  const spec = ds.spec.template.spec;
  const c = [...spec.initContainers, ...spec.containers].find((x: Obj) => x.name === container) as Obj;
  const out: Record<string, string> = {};
  for (const e of c.env as Obj[]) {
    out[e.name] = e.value !== undefined ? String(e.value) : e.valueFrom.configMapKeyRef ? String(cm.data[e.valueFrom.configMapKeyRef.key]) : node;
  }
  return out;
}

describe('manifests/tortie.yaml on a real kube-apiserver, with only its own credentials', { skip, timeout: 600_000 }, () => {
  let api: TestKubeApiserver;
  let dir: string;
  let stage: string;
  let saDir: string;
  let nodeKubeconfig: string;
  const kubectl = (args: string[], input?: unknown) => api.kubectl(args, input === undefined ? undefined : JSON.stringify(input));
  const whoami = async (kubeconfig: string): Promise<string> => {
    const r = spawnSync(api.binaries.kubectl, ['--kubeconfig', kubeconfig, 'auth', 'whoami', '-o', 'json'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as Obj).status.userInfo.username as string;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-install-kdd-'));
    // Every request of Tortie's ServiceAccounts, in an audit log: which grants are used (least privilege).
    writeFileSync(join(dir, 'audit-policy.yaml'), [
      'apiVersion: audit.k8s.io/v1',
      'kind: Policy',
      'omitStages: ["RequestReceived", "ResponseStarted"]',
      'rules:',
      '  - level: Metadata',
      '    users: ["system:serviceaccount:kube-system:tortie-node", "system:serviceaccount:kube-system:tortie-cni-plugin"]',
      '  - level: None',
      '',
    ].join('\n'));
    api = await startKubeApiserver({ extraArgs: [`--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${join(dir, 'audit.log')}`, '--audit-log-mode=blocking'] });
    // The image's /opt/tortie and /opt/cni/bin, staged from this build (what scripts/build-images.sh packs).
    stage = join(dir, 'stage');
    const r = spawnSync(process.execPath, [join(ROOT, 'images/tortie-rootfs.mjs'), '--root', ROOT, '--out', stage], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
  after(async () => {
    await api?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('kubectl apply --dry-run=server accepts the manifest; applied, its CRDs are established and its objects exist', async () => {
    const dry = await kubectl(['apply', '--dry-run=server', '-f', MANIFEST]);
    assert.match(dry.stdout, /daemonset\.apps\/tortie-node created \(server dry run\)/);
    assert.match(dry.stdout, /clusterrole\.rbac\.authorization\.k8s\.io\/tortie-node created \(server dry run\)/);
    await assert.rejects(kubectl(['-n', 'kube-system', 'get', 'daemonset', 'tortie-node']), /not found/, 'a dry run creates nothing');
    await kubectl(['apply', '-f', MANIFEST]);
    await kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
    const all = (await kubectl(['-n', 'kube-system', 'get', 'daemonset,serviceaccount,configmap', '-o', 'name'])).stdout;
    for (const o of ['daemonset.apps/tortie-node', 'serviceaccount/tortie-node', 'serviceaccount/tortie-cni-plugin', 'configmap/tortie-config']) assert.ok(all.includes(o), `${o} in ${all}`);

    // tortie-node's credentials: a token of its ServiceAccount, as the kubelet mounts it.
    const token = (await kubectl(['-n', 'kube-system', 'create', 'token', 'tortie-node', '--duration=1h'])).stdout.trim();
    saDir = join(dir, 'serviceaccount');
    mkdirSync(saDir);
    writeFileSync(join(saDir, 'token'), token);
    writeFileSync(join(saDir, 'ca.crt'), readFileSync(api.pki.caFile));
    writeFileSync(join(saDir, 'namespace'), 'kube-system');
    nodeKubeconfig = join(dir, 'tortie-node.kubeconfig');
    writeFileSync(nodeKubeconfig, renderKubeconfig({ server: api.url, caData: readFileSync(api.pki.caFile).toString('base64'), token }), { mode: 0o600 });
    assert.equal(await whoami(nodeKubeconfig), 'system:serviceaccount:kube-system:tortie-node');
  });

  const hostBin = () => join(dir, 'host/opt/cni/bin');
  const hostNet = () => join(dir, 'host/etc/cni/net.d');
  const installEnv = (extra: Record<string, string> = {}) => ({
    PATH: '/usr/sbin:/usr/bin:/sbin:/bin',
    ...manifestEnv('install-cni', 'worker01'),
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(api.port),
    TORTIE_HOST_CNI_BIN_DIR: hostBin(),
    TORTIE_HOST_CNI_NET_DIR: hostNet(),
    TORTIE_SERVICEACCOUNT_DIR: saDir,
    TORTIE_APP_DIR: join(stage, 'app/opt/tortie'),
    TORTIE_IMAGE_CNI_BIN_DIR: join(stage, 'app/opt/cni/bin'),
    ...extra,
  });
  const runInstall = (extra: Record<string, string> = {}) => spawnSync(BIN('tortie-install-cni'), [], { encoding: 'utf8', env: installEnv(extra), timeout: 120_000 });

  it('install-cni: a bad setting exits 1 naming it and writes nothing; then it installs plugins, CNI kubeconfig (0600, a tortie-cni-plugin token) and 10-tortie.conflist', async () => {
    mkdirSync(hostBin(), { recursive: true });
    mkdirSync(hostNet(), { recursive: true });
    const bad = runInstall({ CNI_MTU: 'jumbo' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /CNI_MTU="jumbo": must be an integer/);
    const badTemplate = runInstall({ CNI_NETWORK_CONFIG: '{"name": "x", "plugins": [{"type": "tortie", "mtu": __CNI_MTUU__}]}' });
    assert.equal(badTemplate.status, 1);
    assert.match(badTemplate.stderr, /unknown placeholder\(s\) __CNI_MTUU__/);
    assert.deepEqual([readdirSync(hostBin()), readdirSync(hostNet())], [[], []], 'nothing written');

    const ok = runInstall();
    assert.equal(ok.status, 0, ok.stderr);
    const conflist = JSON.parse(readFileSync(join(hostNet(), '10-tortie.conflist'), 'utf8'));
    assert.deepEqual(JSON.parse(ok.stdout), conflist, 'it prints what it wrote');
    assert.equal(conflist.plugins[0].nodename, 'worker01');
    assert.equal(conflist.plugins[0].kubernetes.kubeconfig, '/etc/cni/net.d/tortie-kubeconfig');
    const kc = join(hostNet(), 'tortie-kubeconfig');
    assert.equal(statSync(kc).mode & 0o777, 0o600);
    assert.equal(await whoami(kc), 'system:serviceaccount:kube-system:tortie-cni-plugin', 'the CNI token is the plugin account\'s, accepted by the API server');
    const exp = tokenExpiry(kubeconfigToken(readFileSync(kc, 'utf8'))!)!;
    assert.ok(exp * 1000 - Date.now() > 23 * 3600_000, 'a 24 h token');
    assert.deepEqual(readdirSync(hostBin()).sort(), ['bandwidth', 'host-local', 'loopback', 'portmap', 'tortie', 'tortie-ipam', 'tortie.d']);
    assert.doesNotMatch(readFileSync(join(hostBin(), 'tortie'), 'utf8'), /\/usr\/bin\/node/, 'the launcher does not use the host\'s Node');

    // The installed plugins run on this host, outside any image, with the bundle's runtime.
    for (const plugin of ['tortie', 'tortie-ipam']) {
      const v = spawnSync(join(hostBin(), plugin), [], { input: '{"cniVersion":"1.0.0"}', encoding: 'utf8', env: { CNI_COMMAND: 'VERSION', PATH: '/nonexistent' } });
      assert.equal(v.status, 0, `${plugin}: ${v.stderr}`);
      const out = JSON.parse(v.stdout) as { supportedVersions: string[] };
      assert.ok(out.supportedVersions.includes('0.3.1') && out.supportedVersions.includes('1.0.0'), v.stdout);
    }
    // Run again: the bundle is kept, not copied anew.
    const again = runInstall();
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /Kept the installed runtime bundle/);
  });

  it('the refresher replaces a 10-minute token before it expires; the new token is accepted', async () => {
    const kc = join(dir, 'refresh-kubeconfig');
    const short = (await kubectl(['-n', 'kube-system', 'create', 'token', 'tortie-cni-plugin', '--duration=10m'])).stdout.trim();
    writeFileSync(kc, renderKubeconfig({ server: api.url, caData: readFileSync(api.pki.caFile).toString('base64'), token: short }), { mode: 0o600 });
    const oldExp = tokenExpiry(short)!;
    // The agent's own client: tortie-node's token only.
    const client = await loadKubeClient({ kubeconfig: nodeKubeconfig });
    let now = Date.now();
    const logs: string[] = [];
    let failNext = false;
    const r = new CniTokenRefresher({
      kubeconfigFile: kc,
      namespace: 'kube-system',
      serviceAccount: 'tortie-cni-plugin',
      issue: () => (failNext ? Promise.reject(new Error('API server away')) : requestToken(client, 'kube-system', 'tortie-cni-plugin')),
      log: { info: (m) => logs.push(m), warn: (m) => logs.push(m) },
      now: () => now,
      random: () => 0,
    });
    try {
      const wait = await r.step();
      assert.equal(r.refreshes, 0, 'not yet: most of its life remains');
      assert.ok(wait > 60_000 && wait <= 300_000, `next check in ${wait} ms`);
      now += wait; // a quarter of its life later, by the refresher's clock
      failNext = true;
      assert.equal(await r.step(), 5000, 'a failed request is retried in 5 s');
      assert.equal(kubeconfigToken(readFileSync(kc, 'utf8')), short, 'the file is untouched by a failure');
      failNext = false;
      now += 5000;
      await r.step();
      assert.equal(r.refreshes, 1, logs.join('\n'));
      assert.ok(now < oldExp * 1000, 'refreshed before the old token expired');
      const fresh = kubeconfigToken(readFileSync(kc, 'utf8'))!;
      assert.notEqual(fresh, short);
      assert.ok(tokenExpiry(fresh)! > oldExp, 'the new token outlives the old one');
      assert.equal(statSync(kc).mode & 0o777, 0o600);
      assert.equal(await whoami(kc), 'system:serviceaccount:kube-system:tortie-cni-plugin');
      assert.match(logs.join('\n'), /Refreshed the CNI token \(ServiceAccount kube-system\/tortie-cni-plugin\)/);
    } finally {
      await client.close();
    }
  });

  describe('tortie-node with only the tortie-node token', () => {
    let node: TestNode;
    let forwarder: NsPortForwarder | undefined;
    let podNs = '';
    let cniKubeconfig = '';

    before(async () => {
      // The CNI kubeconfig as install-cni wrote it, but with a token the API refuses: the agent must replace it.
      cniKubeconfig = join(hostNet(), 'tortie-kubeconfig');
      writeFileSync(cniKubeconfig, renderKubeconfig({ server: api.url, caData: readFileSync(api.pki.caFile).toString('base64'), token: 'not-a-valid-token' }), { mode: 0o600 });
      node = new TestNode({
        nodeName: 'worker01',
        datastoreEnv: { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: nodeKubeconfig },
        env: { ...manifestEnv('tortie-node', 'worker01'), FELIX_HEALTHHOST: '127.0.0.1', TORTIE_CNI_KUBECONFIG: cniKubeconfig },
      });
      node.setUp();
      // The API server's 127.0.0.1:<port> inside the node namespace (testing/ns-forwarder.ts).
      forwarder = new NsPortForwarder(node.hostNs, api.port, dir);
      await forwarder.start();
      // The kubelet's part: the Node with its InternalIP (IP_AUTODETECTION_METHOD=kubernetes-internal-ip), a Pod.
      await kubectl(['create', '-f', '-'], { apiVersion: 'v1', kind: 'Node', metadata: { name: 'worker01', labels: { 'kubernetes.io/hostname': 'worker01' } } });
      await kubectl(['patch', 'node', 'worker01', '--subresource=status', '--type=merge', '-p',
        JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: '10.0.0.11' }], conditions: [{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated', message: 'set by the test as a cloud route controller would' }] } })]);
      await kubectl(['create', '-f', '-'], {
        apiVersion: 'v1',
        kind: 'List',
        items: [
          { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
          { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'shop' } },
          { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'shop', labels: { app: 'web' } }, spec: { nodeName: 'worker01', containers: [{ name: 'web', image: 'registry.k8s.io/e2e-test-images/agnhost:2.56' }] } },
        ],
      });
    });
    after(async () => {
      await node?.stop();
      await forwarder?.close();
    });

    it('registers, sets NetworkUnavailable=False (TortieIsUp), replaces the refused CNI token, answers its probes, and serves CNI ADD and DEL — no forbidden call', async () => {
      await node.startAgent();
      const ready = () => {
        const r = spawnSync('/usr/sbin/ip', ['netns', 'exec', node.hostNs, BIN('tortie-node'), '-felix-ready'], { encoding: 'utf8', env: node.agentEnv() });
        return r.status;
      };
      assert.equal(await eventually(ready, (s) => s === 0, 90_000), 0, node.agentLog);
      const live = spawnSync('/usr/sbin/ip', ['netns', 'exec', node.hostNs, BIN('tortie-node'), '-felix-live', '-bird-live'], { encoding: 'utf8', env: node.agentEnv() });
      assert.equal(live.status, 0, live.stderr + node.agentLog.slice(-2000));

      const k8sNode = await eventually(
        async () => JSON.parse((await kubectl(['get', 'node', 'worker01', '-o', 'json'])).stdout) as Obj,
        (n) => (n.status.conditions ?? []).some((c: Obj) => c.type === 'NetworkUnavailable' && c.status === 'False'),
        30_000,
      );
      const cond = (k8sNode.status.conditions as Obj[]).find((c) => c.type === 'NetworkUnavailable')!;
      assert.deepEqual([cond.status, cond.reason, cond.message], ['False', 'TortieIsUp', 'Tortie is running on this node'], node.agentLog.slice(-2000));
      assert.equal(k8sNode.metadata.annotations['projectcalico.org/IPv4Address'], '10.0.0.11/24');

      const refreshed = await eventually(() => kubeconfigToken(readFileSync(cniKubeconfig, 'utf8')), (t) => t !== 'not-a-valid-token', 30_000);
      assert.notEqual(refreshed, 'not-a-valid-token', node.agentLog.slice(-2000));
      assert.equal(statSync(cniKubeconfig).mode & 0o777, 0o600);
      assert.equal(await whoami(cniKubeconfig), 'system:serviceaccount:kube-system:tortie-cni-plugin');

      // CNI ADD through the tortie plugin with the manifest's network configuration.
      const installed = JSON.parse(readFileSync(join(hostNet(), '10-tortie.conflist'), 'utf8')) as Conflist;
      const conflist: Conflist = {
        ...installed,
        plugins: [{ ...installed.plugins[0]!, kubernetes: { kubeconfig: cniKubeconfig }, nodename_file: join(node.stateDir, 'nodename'), agent_socket: node.socket, log_file_path: join(dir, 'cni.log') }],
      };
      podNs = node.makePodNs('web');
      const runtime = {
        containerId: 'ctr-web',
        netns: `/run/netns/${podNs}`,
        ifname: 'eth0',
        args: 'IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=ctr-web',
        cacheDir: join(dir, 'cni-cache'),
        // The plugins install-cni put in the host's bin dir: tortie's launcher with its own runtime, Debian's portmap and bandwidth.
        cniPath: [hostBin()],
        wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs],
      };
      const add = await runConflistAdd(conflist, runtime);
      assert.ok(add.ok, JSON.stringify(add.error) + node.agentLog.slice(-3000));
      const a = (add.result as { ips: { address: string }[] }).ips[0]!.address;
      assert.match(a, /^10\.233\.\d+\.\d+\/32$/);
      assert.match(inNs(podNs, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']), new RegExp(`inet ${a.replace(/[./]/g, '\\$&')}`));
      const pod = JSON.parse((await kubectl(['-n', 'shop', 'get', 'pod', 'web', '-o', 'json'])).stdout) as Obj;
      assert.equal(pod.metadata.annotations['cni.projectcalico.org/podIP'], a);
      const del = await runConflistDel(conflist, runtime);
      assert.ok(del.ok, JSON.stringify(del.error));

      assert.doesNotMatch(node.agentLog, /forbidden|Forbidden|unauthorized/, 'no call refused by RBAC:\n' + node.agentLog.split('\n').filter((l) => /forbidden|unauthorized/i.test(l)).join('\n'));
    });
  });

  it("least privilege: every grant of tortie-node's ClusterRole was used by the runs above, or is listed here with the situation that uses it; none was refused", () => {
    const role = docs.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'tortie-node')!;
    const granted = new Set<string>();
    for (const r of role.rules as Obj[]) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) granted.add(`${g}/${res}:${v}`);
    const used = new Set<string>();
    const refused: string[] = [];
    for (const line of readFileSync(join(dir, 'audit.log'), 'utf8').split('\n')) {
      if (!line.trim()) continue;
      const ev = JSON.parse(line) as Obj;
      if (ev.user?.username !== 'system:serviceaccount:kube-system:tortie-node' || !ev.objectRef) continue;
      const o = ev.objectRef as Obj;
      const k = `${o.apiGroup ?? ''}/${o.resource}${o.subresource ? `/${o.subresource}` : ''}:${ev.verb}`;
      if (ev.responseStatus?.code === 403) refused.push(k);
      else used.add(k);
    }
    assert.deepEqual(refused, [], 'no request refused');
    // Grants the runs above do not reach, each with what needs it.
    const notReached: Record<string, string> = {
      'crd.projectcalico.org/clusterinformations:update': 'a restarted agent, or another node, finding ClusterInformation default not ready or of another cluster type',
      'crd.projectcalico.org/blockaffinities:delete': "releasing a block whose last address was freed (libcalico-go/lib/ipam/ipam.ts)",
      'crd.projectcalico.org/ipamblocks:delete': 'the same release: the emptied block itself',
      'crd.projectcalico.org/caliconodestatuses:update': 'the status rewrite every updatePeriodSeconds (10 s) after the first write, which creates it',
      'crd.projectcalico.org/caliconodestatuses:get': 'the same rewrite: an update reads the current object first',
    };
    const unused = [...granted].filter((k) => !used.has(k)).sort();
    // (Listed grants may be reached too, depending on timing: the status rewrite comes 10 s after the
    // first write, which a slow run reaches.)
    assert.deepEqual(unused.filter((k) => !(k in notReached)), [], `every grant not used is explained; used: ${[...used].sort().join(' ')}`);
  });
});
