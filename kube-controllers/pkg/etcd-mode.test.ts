// bin/tortie-kube-controllers on the etcd datastore (DATASTORE_TYPE=etcdv3), Calico's etcd-mode
// controllers, with a real kube-apiserver (its own etcd, watch cache off, every watch ended by the
// server after 1–2 s) and a second real etcd as the Calico datastore. Everything is checked through
// etcd's own keys (Calico's layout) with etcdctl, and through Calico's calicoctl v3.30.1:
// Namespaces → `kns.<ns>`, ServiceAccounts → `ksa.<ns>.<sa>`, Kubernetes NetworkPolicies →
// `knp.default.<name>` (the same conversion as policy/k8s.ts), pod labels → existing
// WorkloadEndpoints only; a full resync deletes stale objects it owns and nothing else. Then
// outages: the Calico etcd killed and started again, the API server killed and started again, the
// API server's etcd killed and started again, and watches whose resume point was compacted (410
// Gone): the process stays the same PID and live, is not ready with the reason while a dependency
// is down, and resumes by itself.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, startEtcd, type TestEtcd } from '../../testing/etcd.js';
import { kubernetesBuild, missingKubernetesBinaries, startKubeApiserver, type TestKubeApiserver } from '../../testing/kube-apiserver.js';
import { openEtcdV3 } from '../../libcalico-go/lib/backend/etcdv3/etcdv3.js';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { podWorkloadEndpointName } from '../../libcalico-go/lib/backend/kubernetes/derived/workloadendpoint.js';
import { loadKubeClient } from '../../libcalico-go/lib/backend/kubernetes/client.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { convertK8sNetworkPolicy } from '../../libcalico-go/lib/policy/k8s.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'tortie-kube-controllers');
const CALICOCTL = join(kubernetesBuild().cache, 'calico', 'v3.30.1', 'bin', 'calicoctl');
const ETCDCTL = '/usr/bin/etcdctl';
const missing = [...missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd', 'etcdctl']), ...[CALICOCTL, ETCDCTL].filter((p) => !existsSync(p))];
const skip = missing.length > 0 ? `needs scripts/build-kubernetes.sh and scripts/build-calicoctl.sh: ${missing.join(', ')} not built` : false;
const R = '/calico/resources/v3/projectcalico.org';

/** The Kubernetes RBAC of node,namespace,serviceaccount,workloadendpoint,policy on the etcd datastore (README.md). */
const ETCD_MODE_RULES = [
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['namespaces', 'serviceaccounts'], verbs: ['list', 'watch'] },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: ['list', 'watch'] },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, log = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}\n${log()}`);
    await sleep(150);
  }
}

function run(cmd: string, args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; out: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { PATH: process.env.PATH, ...env }, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: (stdout + stderr).trim(), stdout });
    });
  });
}

function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(',') : [];
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return undefined;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('tortie-kube-controllers on the etcd datastore: Calico\'s etcd-mode controllers', { skip, timeout: 170_000 }, () => {
  let api: TestKubeApiserver;
  let etcd: TestEtcd;
  let store: Backend;
  let resources: ResourceClient;
  let dir: string;
  let proc: ChildProcess;
  let output = '';
  let metricsPort: number;
  let statusFile: string;
  /** Processes this test started again after killing them (ended by PID in after()). */
  const restarted: ChildProcess[] = [];
  const log = () => `--- tortie-kube-controllers ---\n${output.split('\n').slice(-40).join('\n')}`;
  const etcdEnv = () => ({ ETCDCTL_API: '3' });

  const kubectl = (args: string[], input?: string) => api.kubectl(args, input);
  const kubectlJSON = (args: string[], obj: unknown) => api.kubectl(args, JSON.stringify(obj));
  /** The raw value Calico's layout keeps at `key` in the Calico etcd; null when absent. */
  const etcdGet = async (key: string): Promise<Record<string, unknown> | null> => {
    const r = await run(ETCDCTL, ['--endpoints', etcd.endpoints.join(','), 'get', key, '--print-value-only'], etcdEnv());
    if (r.code !== 0) throw new Error(`etcdctl get ${key}: ${r.out}`);
    return r.stdout.trim() === '' ? null : (JSON.parse(r.stdout) as Record<string, unknown>);
  };
  const etcdKeys = async (prefix: string): Promise<string[]> => {
    const r = await run(ETCDCTL, ['--endpoints', etcd.endpoints.join(','), 'get', prefix, '--prefix', '--keys-only'], etcdEnv());
    if (r.code !== 0) throw new Error(`etcdctl get ${prefix}: ${r.out}`);
    return r.stdout.split('\n').filter((l) => l.trim() !== '');
  };
  const checkStatus = (flag: '-l' | '-r') => run(BIN, ['check-status', flag, '-f', statusFile]);
  const scrape = () => httpGet(`http://127.0.0.1:${metricsPort}/metrics`);
  const labelsToApply = async (profile: string) => ((await etcdGet(`${R}/profiles/${profile}`))?.spec as { labelsToApply?: Record<string, string> } | undefined)?.labelsToApply;
  /** Kills a process we do not own the handle of (the test's own apiserver/etcd) and starts it again as it was. */
  const killAndCmdline = async (pid: number) => {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s !== '');
    const cwd = readlinkSync(`/proc/${pid}/cwd`);
    process.kill(pid, 'SIGKILL');
    await until(`pid ${pid} to be gone`, async () => !alive(pid), 10_000);
    return () => {
      const c = spawn(cmdline[0], cmdline.slice(1), { stdio: 'ignore', cwd });
      restarted.push(c);
      return c;
    };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-kc-etcd-'));
    statusFile = join(dir, 'status', 'status.json');
    [api, etcd] = await Promise.all([startKubeApiserver({ extraArgs: ['--watch-cache=false', '--min-request-timeout=1'] }), startEtcd()]);
    store = openEtcdV3({ endpoints: etcd.endpoints });
    resources = new ResourceClient(store);
    metricsPort = await freePort();
    await resources.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'KubeControllersConfiguration',
      metadata: { name: 'default' },
      spec: {
        prometheusMetricsPort: metricsPort,
        controllers: { node: { leakGracePeriod: '15m' }, namespace: { reconcilerPeriod: '3s' }, serviceAccount: { reconcilerPeriod: '3s' }, policy: { reconcilerPeriod: '3s' }, workloadEndpoint: { reconcilerPeriod: '3s' } },
      },
    });
    // Objects that exist before the controllers start: the initial sync must bring them.
    await kubectlJSON(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { team: 'a' } } },
        { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } },
      ],
    });
    await kubectlJSON(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'shop' } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'robot', namespace: 'shop', labels: { tier: 'backend' } } },
        {
          apiVersion: 'networking.k8s.io/v1',
          kind: 'NetworkPolicy',
          metadata: { name: 'web-in', namespace: 'shop' },
          spec: { podSelector: { matchLabels: { app: 'web' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'api' } } }], ports: [{ port: 80, protocol: 'TCP' }] }] },
        },
      ],
    });
    // Stale objects a controller owns (no Kubernetes object gives them), and Calico objects nobody else may delete.
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'kns.gone' }, spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] } });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'ksa.shop.gone' }, spec: {} });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'mine' }, spec: { labelsToApply: { x: 'y' } } });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'knp.default.gone', namespace: 'shop' }, spec: { selector: 'all()', types: ['Ingress'] } });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'ops', namespace: 'shop' }, spec: { selector: 'all()', types: ['Ingress'] } });

    // The controllers' own identity with exactly the RBAC kube-controllers/README.md documents
    // for these five controllers on the etcd datastore (a missing rule shows as not ready).
    await kubectlJSON(['apply', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tortie-kube-controllers', namespace: 'kube-system' } },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'tortie-kube-controllers' }, rules: ETCD_MODE_RULES },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: 'tortie-kube-controllers' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'tortie-kube-controllers' },
          subjects: [{ kind: 'ServiceAccount', name: 'tortie-kube-controllers', namespace: 'kube-system' }],
        },
      ],
    });
    const token = (await kubectl(['create', 'token', 'tortie-kube-controllers', '-n', 'kube-system', '--duration=1h'])).stdout.trim();
    proc = spawn(BIN, [], {
      env: {
        PATH: process.env.PATH,
        DATASTORE_TYPE: 'etcdv3',
        ETCD_ENDPOINTS: etcd.endpoints.join(','),
        K8S_API_ENDPOINT: api.url,
        K8S_API_TOKEN: token,
        K8S_CA_FILE: api.pki.caFile,
        ENABLED_CONTROLLERS: 'node,namespace,serviceaccount,workloadendpoint,policy',
        STATUS_FILE: statusFile,
        METRICS_HOST: '127.0.0.1',
        HEALTH_CHECK_INTERVAL: '500ms',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    await until('the controllers to be ready', async () => (await checkStatus('-r')).code === 0, 60_000, log);
  });

  after(async () => {
    if (proc?.pid && proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    for (const c of restarted) {
      if (c.pid && c.exitCode === null && c.signalCode === null) {
        c.kill('SIGKILL');
        await new Promise((r) => c.once('exit', r));
      }
    }
    await store?.close();
    await etcd?.stop();
    await api?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('initial sync: kns./ksa. profiles with pcns./pcsa. labels, knp.default. policies as policy/k8s.ts converts them; calicoctl reads them', async (t) => {
    const kns = await etcdGet(`${R}/profiles/kns.shop`);
    assert.ok(kns, `no kns.shop in etcd: ${(await etcdKeys(`${R}/profiles/`)).join(', ')}`);
    // The API server adds kubernetes.io/metadata.name to every namespace.
    const nsLabels = { 'pcns.kubernetes.io/metadata.name': 'shop', 'pcns.projectcalico.org/name': 'shop' };
    assert.deepEqual((kns.spec as Record<string, unknown>).labelsToApply, { ...nsLabels, 'pcns.team': 'a' });
    assert.deepEqual((kns.spec as Record<string, unknown>).ingress, [{ action: 'Allow' }]);
    assert.deepEqual(await labelsToApply('ksa.shop.robot'), { 'pcsa.tier': 'backend', 'pcsa.projectcalico.org/name': 'robot' });
    assert.deepEqual(await labelsToApply('ksa.shop.default'), { 'pcsa.projectcalico.org/name': 'default' });
    // Calico's key for a knp: `knp.default.<name>` (no extra tier prefix).
    const knp = await etcdGet(`${R}/networkpolicies/shop/knp.default.web-in`);
    assert.ok(knp, `no knp.default.web-in: ${(await etcdKeys(`${R}/networkpolicies/`)).join(', ')}`);
    const np = JSON.parse((await kubectl(['get', 'networkpolicy', 'web-in', '-n', 'shop', '-o', 'json'])).stdout);
    const want = convertK8sNetworkPolicy(np);
    const spec = knp.spec as Record<string, unknown>;
    for (const f of ['selector', 'types', 'ingress', 'order'] as const) assert.deepEqual(spec[f], (want.spec as Record<string, unknown>)[f], `spec.${f}`);

    // Stale owned objects are deleted; the user's profile and policy are left alone.
    await until('the stale owned objects to be deleted', async () => (await etcdGet(`${R}/profiles/kns.gone`)) === null && (await etcdGet(`${R}/profiles/ksa.shop.gone`)) === null && (await etcdGet(`${R}/networkpolicies/shop/knp.default.gone`)) === null, 10_000, log);
    assert.ok(await etcdGet(`${R}/profiles/mine`), 'a profile the controllers do not own stays');
    assert.ok(await etcdGet(`${R}/networkpolicies/shop/default.ops`), 'a Calico policy stays');

    // Calico's own calicoctl reads the same etcd and sees them.
    const env = { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: etcd.endpoints.join(',') };
    const profiles = await run(CALICOCTL, ['get', 'profiles', '-o', 'json', '--allow-version-mismatch'], env);
    assert.equal(profiles.code, 0, profiles.out);
    const items = (JSON.parse(profiles.stdout) as { items: { metadata: { name: string }; spec: { labelsToApply?: Record<string, string> } }[] }).items;
    const byName = new Map(items.map((i) => [i.metadata.name, i]));
    assert.deepEqual(byName.get('kns.shop')?.spec.labelsToApply, { ...nsLabels, 'pcns.team': 'a' }, profiles.stdout);
    assert.ok(byName.has('ksa.shop.robot'), profiles.stdout);
    assert.ok(!byName.has('kns.gone'));
    const pols = await run(CALICOCTL, ['get', 'networkpolicy', '-n', 'shop', '-o', 'json', '--allow-version-mismatch'], env);
    assert.equal(pols.code, 0, pols.out);
    const polNames = (JSON.parse(pols.stdout) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name).sort();
    assert.deepEqual(polNames, ['knp.default.web-in', 'ops'], pols.stdout);
    t.diagnostic(`calicoctl v3.30.1 sees profiles ${[...byName.keys()].sort().join(', ')} and policies ${polNames.join(', ')}`);
  });

  it('follows the watch: namespace and service account labels, new and deleted policies; a resync with nothing changed writes nothing', async (t) => {
    let t0 = Date.now();
    await kubectl(['label', 'namespace', 'shop', 'team=b', 'env=prod', '--overwrite']);
    await until('kns.shop to get the new labels', async () => (await labelsToApply('kns.shop'))?.['pcns.env'] === 'prod', 10_000, log);
    assert.deepEqual(await labelsToApply('kns.shop'), { 'pcns.team': 'b', 'pcns.env': 'prod', 'pcns.kubernetes.io/metadata.name': 'shop', 'pcns.projectcalico.org/name': 'shop' });
    t.diagnostic(`namespace label → profile in ${Date.now() - t0} ms`);
    await kubectl(['create', 'serviceaccount', 'batch', '-n', 'shop']);
    await until('ksa.shop.batch', async () => (await etcdGet(`${R}/profiles/ksa.shop.batch`)) !== null, 10_000, log);
    await kubectl(['delete', 'serviceaccount', 'batch', '-n', 'shop']);
    await until('ksa.shop.batch to be deleted', async () => (await etcdGet(`${R}/profiles/ksa.shop.batch`)) === null, 10_000, log);
    t0 = Date.now();
    await kubectlJSON(['create', '-f', '-'], { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny', namespace: 'shop' }, spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } });
    await until('knp.default.deny', async () => (await etcdGet(`${R}/networkpolicies/shop/knp.default.deny`)) !== null, 10_000, log);
    t.diagnostic(`NetworkPolicy → knp.default.deny in ${Date.now() - t0} ms`);
    await kubectl(['delete', 'networkpolicy', 'deny', '-n', 'shop']);
    await until('knp.default.deny to be deleted', async () => (await etcdGet(`${R}/networkpolicies/shop/knp.default.deny`)) === null, 10_000, log);
    // Several 3 s resyncs with nothing changed: the revisions of the synced objects stay.
    const rev = async () => (await store.get(`${R}/profiles/kns.shop`))!.revision;
    const before = await rev();
    const syncs = metric(await scrape(), 'tortie_kube_controllers_full_syncs_total', { controller: 'namespace' })!;
    await until('two more namespace resyncs', async () => metric(await scrape(), 'tortie_kube_controllers_full_syncs_total', { controller: 'namespace' })! >= syncs + 2, 15_000, log);
    assert.equal(await rev(), before, 'an unchanged profile is not rewritten by a resync');
  });

  it('pod labels reach the WorkloadEndpoint the CNI plugin created, and no endpoint is ever created', async () => {
    const pod = (name: string, labels: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'shop', labels },
      spec: { nodeName: 'n1', serviceAccountName: 'robot', automountServiceAccountToken: false, containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10.1' }] },
    });
    await kubectlJSON(['create', '-f', '-'], { apiVersion: 'v1', kind: 'List', items: [pod('web-0', { app: 'web' }), pod('no-wep', { app: 'web' })] });
    // What Tortie's CNI plugin writes at ADD (cni-plugin/pkg/plugin/handler.ts).
    const name = podWorkloadEndpointName('n1', 'web-0');
    await resources.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'WorkloadEndpoint',
      metadata: { name, namespace: 'shop', labels: { app: 'web', 'projectcalico.org/namespace': 'shop', 'projectcalico.org/orchestrator': 'k8s' } },
      spec: { orchestrator: 'k8s', node: 'n1', pod: 'web-0', endpoint: 'eth0', interfaceName: 'cali1234567890a', ipNetworks: ['10.244.0.5/32'], profiles: ['kns.shop'] },
    });
    await kubectl(['label', 'pod', 'web-0', 'no-wep', '-n', 'shop', 'app=api', 'version=2', '--overwrite']);
    const key = `${R}/workloadendpoints/shop/${name}`;
    const wep = await until('the endpoint labels to follow the pod', async () => {
      const w = await etcdGet(key);
      return w && (w.metadata as { labels?: Record<string, string> })?.labels?.version === '2' ? w : undefined;
    }, 10_000, log);
    assert.deepEqual((wep.metadata as { labels: Record<string, string> }).labels, {
      app: 'api',
      version: '2',
      'projectcalico.org/namespace': 'shop',
      'projectcalico.org/orchestrator': 'k8s',
      'projectcalico.org/serviceaccount': 'robot',
    });
    const spec = wep.spec as Record<string, unknown>;
    assert.equal(spec.serviceAccountName, 'robot');
    assert.deepEqual(spec.ipNetworks, ['10.244.0.5/32'], 'the rest of the endpoint is the CNI plugin\'s, untouched');
    assert.equal(spec.interfaceName, 'cali1234567890a');
    // Two resyncs later, the pod without an endpoint still has none.
    await sleep(6500);
    assert.deepEqual((await etcdKeys(`${R}/workloadendpoints/`)).sort(), [key]);
  });

  it('through a Calico etcd outage (killed, started again): same PID, live, not ready with the reason, resumes by itself', async (t) => {
    const pid = proc.pid;
    const start = await killAndCmdline(etcd.pid);
    const down = await until('readiness to go down', async () => {
      const r = await checkStatus('-r');
      return r.code !== 0 && r.out;
    }, 20_000, log);
    assert.match(down, /CalicoDatastore: /, down);
    t.diagnostic(`check-status -r with etcd down: ${down.slice(0, 300)}`);
    // Changes while etcd is down, synced when it is back.
    await kubectl(['label', 'namespace', 'shop', 'during=etcd-outage']);
    for (let i = 0; i < 8; i++) {
      await sleep(500);
      assert.equal(proc.exitCode, null, `the process exited: ${log()}`);
      assert.equal((await checkStatus('-l')).code, 0, 'live');
      assert.notEqual((await checkStatus('-r')).code, 0, 'not ready');
    }
    start();
    const upAt = Date.now();
    await until('readiness to come back', async () => (await checkStatus('-r')).code === 0, 60_000, log);
    await until('the change made during the outage to be synced', async () => (await labelsToApply('kns.shop'))?.['pcns.during'] === 'etcd-outage', 30_000, log);
    t.diagnostic(`ready and synced ${Date.now() - upAt} ms after etcd was started again`);
    assert.equal(proc.pid, pid);
    assert.equal(proc.exitCode, null);
    const m = await scrape();
    assert.equal(metric(m, 'tortie_kube_controllers_restarts'), 0);
    assert.ok(metric(m, 'tortie_kube_controllers_sync_failures_total', { controller: 'namespace' })! >= 1, 'the failures are counted');
    assert.equal(metric(m, 'tortie_kube_controllers_ready', { component: 'CalicoDatastore' }), 1);
  });

  it('through an API server outage (killed, started again): same PID, live, not ready with the reason, resumes by itself', async (t) => {
    const pid = proc.pid;
    const start = await killAndCmdline(api.pids.apiserver);
    // Started again whatever happens below, so that a failure here does not take the next tests with it.
    try {
      // The controllers notice at their next request; the API server's own health check at its next
      // probe (HEALTH_CHECK_INTERVAL): wait for the latter's reason.
      const down = await until('readiness to go down with the KubeAPIServer reason', async () => {
        const r = await checkStatus('-r');
        return r.code !== 0 && /KubeAPIServer: /.test(r.out) && r.out;
      }, 30_000, log);
      assert.match(down, /KubeAPIServer: .*(ECONNREFUSED|unreachable)/, down);
      assert.match((await scrape()), /tortie_kube_controllers_ready\{component="KubeAPIServer"\} 0/);
      // A stale owned object written meanwhile: removed once the API is back (a full resync).
      await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'kns.ghost' }, spec: {} });
      for (let i = 0; i < 6; i++) {
        await sleep(500);
        assert.equal(proc.exitCode, null, `the process exited: ${log()}`);
        assert.equal((await checkStatus('-l')).code, 0, 'live');
      }
      assert.ok(await etcdGet(`${R}/profiles/kns.ghost`), 'nothing is deleted while the Kubernetes side cannot be read');
    } finally {
      start();
    }
    const upAt = Date.now();
    await until('readiness to come back', async () => (await checkStatus('-r')).code === 0, 90_000, log);
    t.diagnostic(`ready again ${Date.now() - upAt} ms after the API server was started again (same pid ${pid})`);
    await until('kns.ghost to be deleted', async () => (await etcdGet(`${R}/profiles/kns.ghost`)) === null, 15_000, log);
    await kubectl(['label', 'namespace', 'shop', 'after=api-outage']);
    await until('a change after the outage to be synced', async () => (await labelsToApply('kns.shop'))?.['pcns.after'] === 'api-outage', 15_000, log);
    assert.equal(proc.pid, pid);
    assert.equal(proc.exitCode, null);
  });

  it("through an outage of the API server's etcd and a watch resume point compacted away (410 Gone): resumes by itself", async (t) => {
    const pid = proc.pid;
    // The API server's etcd dies: the API answers errors; the controllers are not ready.
    const start = await killAndCmdline(api.pids.etcd);
    const down = await until('readiness to go down', async () => {
      const r = await checkStatus('-r');
      return r.code !== 0 && r.out;
    }, 40_000, log);
    t.diagnostic(`check-status -r with the API server's etcd down: ${down.slice(0, 300)}`);
    await sleep(2000);
    assert.equal((await checkStatus('-l')).code, 0, 'live');
    start();
    await until('readiness to come back', async () => (await checkStatus('-r')).code === 0, 90_000, log);

    // From here on no periodic full resync (5 min): what reaches etcd comes through the watches.
    const kcc = (await resources.get('KubeControllersConfiguration', 'default'))!;
    const ctl = (kcc.spec as { controllers: Record<string, unknown> }).controllers;
    await resources.update({ ...kcc, spec: { ...(kcc.spec as object), controllers: { ...ctl, namespace: { reconcilerPeriod: '5m' }, policy: { reconcilerPeriod: '5m' } } } });
    await sleep(4000); // the current 3 s cycles end; the next ones run 5 min
    // The namespaces watch's resume point: the last namespace change. Anything else changes after
    // it; etcd is compacted at the latest revision. The server ends every watch within 2 s, and the
    // resume from the old point is then answered 410 Gone (checked below with our own watch).
    await kubectl(['label', 'namespace', 'shop', 'phase=before-compaction']);
    await until('the label before compaction', async () => (await labelsToApply('kns.shop'))?.['pcns.phase'] === 'before-compaction', 15_000, log);
    const nsRV = JSON.parse((await kubectl(['get', 'namespace', 'shop', '-o', 'json'])).stdout).metadata.resourceVersion as string;
    // Two writes after it: compacting at the second removes the revision after the resume point.
    await kubectl(['create', 'configmap', 'bump1', '-n', 'shop']);
    await kubectl(['create', 'configmap', 'bump2', '-n', 'shop']);
    const latest = JSON.parse((await kubectl(['get', 'configmap', 'bump2', '-n', 'shop', '-o', 'json'])).stdout).metadata.resourceVersion as string;
    const m0 = await scrape();
    const failuresBefore = metric(m0, 'tortie_kube_controllers_sync_failures_total', { controller: 'namespace' }) ?? 0;
    const fullBefore = [metric(m0, 'tortie_kube_controllers_full_syncs_total', { controller: 'namespace' }), metric(m0, 'tortie_kube_controllers_full_syncs_total', { controller: 'policy' })];
    const c = await run(api.binaries.etcdctl, ['--endpoints', api.etcdEndpoint, 'compact', latest], etcdEnv());
    assert.equal(c.code, 0, c.out);
    // Our own watch from the controllers' resume point: the server answers 410 Gone.
    const client = await loadKubeClient({ kubeconfig: api.kubeconfig });
    let answer = '';
    try {
      for await (const ev of client.watch('/api/v1/namespaces', { resourceVersion: nsRV, timeoutSeconds: '2' })) {
        answer = JSON.stringify(ev);
        break;
      }
    } catch (e) {
      answer = `${(e as Error).name}: ${(e as Error).message}`;
    } finally {
      await client.close();
    }
    assert.match(answer, /"code":410|CompactedError|too old resource version/i, `the old resume point must be gone: ${answer}`);
    t.diagnostic(`a watch from the namespaces' resume point ${nsRV} after compacting at ${latest}: ${answer.slice(0, 200)}`);
    // Let the controllers' streams end and resume from the expired point, then change things.
    await sleep(3000);
    await kubectl(['label', 'namespace', 'shop', 'phase=after-compaction', '--overwrite']);
    await kubectlJSON(['create', '-f', '-'], { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'late', namespace: 'shop' }, spec: { podSelector: {} } });
    await until('changes after the compaction to be synced', async () => (await labelsToApply('kns.shop'))?.['pcns.phase'] === 'after-compaction' && (await etcdGet(`${R}/networkpolicies/shop/knp.default.late`)) !== null, 15_000, log);
    const m = await scrape();
    // Through the watches' own re-list on 410: no failure, no full resync of the controller.
    assert.equal(metric(m, 'tortie_kube_controllers_sync_failures_total', { controller: 'namespace' }) ?? 0, failuresBefore, 'the expired watch is not a failure');
    assert.deepEqual([metric(m, 'tortie_kube_controllers_full_syncs_total', { controller: 'namespace' }), metric(m, 'tortie_kube_controllers_full_syncs_total', { controller: 'policy' })], fullBefore, 'synced by the watch, not by a full resync');
    assert.equal(proc.pid, pid);
    assert.equal(proc.exitCode, null);
    assert.equal(metric(m, 'tortie_kube_controllers_restarts'), 0);
    assert.equal((await checkStatus('-r')).code, 0);
  });
  it('after all the outages, the node controller works on etcd: a deleted node\'s address and Calico Node go at once; a live pod\'s address and other Calico Nodes stay', async (t) => {
    const ipam = new IPAM(store, { selects: () => true });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'default-ipv4-ippool' }, spec: { cidr: '10.244.0.0/16', blockSize: 26 } });
    const allocate = async (node: string, pod: string) =>
      (await ipam.autoAssign({ handleId: `k8s-pod-network.ctr-${pod}`, attrs: { node, namespace: 'shop', pod }, hostname: node, num4: 1, num6: 0 })).ipv4[0].ip;
    // web-0 is a live pod on n1: give it the address the kubelet would report.
    const live = await allocate('n1', 'web-0');
    await kubectl(['patch', 'pod', 'web-0', '-n', 'shop', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { podIP: live, podIPs: [{ ip: live }] } })]);
    await kubectlJSON(['create', '-f', '-'], { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n9' } });
    // Calico Nodes: n9 and n1 name their Kubernetes node (orchRefs, as calico/node's CALICO_K8S_NODE_REF sets); bare names none.
    for (const [name, refs] of [['n9', true], ['n1', true], ['bare', false]] as const) {
      await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name }, spec: refs ? { orchRefs: [{ orchestrator: 'k8s', nodeName: name }] } : {} });
    }
    const leaked = await allocate('n9', 'on-n9');
    await sleep(1500);
    await kubectl(['delete', 'node', 'n9']);
    const t0 = Date.now();
    await until("the deleted node's address to be released", async () => (await ipam.assignment(leaked)) === null, 15_000, log);
    t.diagnostic(`deleted node's address released from etcd ${Date.now() - t0} ms after the Node was deleted (grace period 15 m)`);
    await until('the Calico Node n9 to be deleted', async () => (await etcdGet(`${R}/nodes/n9`)) === null, 10_000, log);
    assert.ok(await etcdGet(`${R}/nodes/n1`), 'a Calico Node whose Kubernetes Node exists stays');
    assert.ok(await etcdGet(`${R}/nodes/bare`), 'a Calico Node without a Kubernetes orchRef is never deleted');
    await sleep(2000);
    assert.ok((await ipam.assignment(live)) !== null, 'a live pod keeps its address');
    assert.equal(proc.pid !== undefined && proc.exitCode === null, true);
    assert.equal((await checkStatus('-r')).code, 0);
  });
});
