// bin/tortie-kube-controllers against a real kube-apiserver (objects only: Nodes and Pods made
// through the API, no kubelet), with addresses allocated by Tortie's real IPAM on the kubernetes
// datastore: a leaked address is a candidate and is released after the grace period and never
// before; a live pod's address is never released, nor one whose CNI ADD patches the pod within the
// grace period; a deleted Node's addresses, tunnel address and block affinities go at once (well
// inside a one-hour grace period); /metrics shows the counts; through an API server restart and an
// outage of its etcd the process stays alive and live, readiness goes down with the reason and
// comes back by itself; a Node watch whose resume point was compacted (410 Gone) re-lists.
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../testing/etcd.js';
import { missingKubernetesBinaries, startKubeApiserver, type TestKubeApiserver } from '../../testing/kube-apiserver.js';
import { derivedHandlers } from '../../libcalico-go/lib/backend/kubernetes/derived/index.js';
import { openKubernetes, type KubernetesBackend } from '../../libcalico-go/lib/backend/kubernetes/kubernetes.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin', 'tortie-kube-controllers');
const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd']);
const skip = missing.length > 0 ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built` : false;

/** The Kubernetes RBAC of the node controller on the Kubernetes datastore (README.md). */
const KDD_NODE_RULES = [
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
  { apiGroups: ['crd.projectcalico.org'], resources: ['ipamblocks', 'blockaffinities', 'ipamhandles'], verbs: ['get', 'list', 'create', 'update', 'delete'] },
  { apiGroups: ['crd.projectcalico.org'], resources: ['ippools', 'ipamconfigs', 'ipreservations', 'clusterinformations', 'kubecontrollersconfigurations'], verbs: ['get', 'list'] },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, log = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${log()}`);
    await sleep(100);
  }
}

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The value of one series in a Prometheus text exposition; undefined when absent. */
function metric(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2].split(',');
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return undefined;
}

function checkStatus(flag: '-l' | '-r', file: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(BIN, ['check-status', flag, '-f', file], (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: (stdout + stderr).trim() });
    });
  });
}

describe('tortie-kube-controllers: IPAM garbage collection on a real API server', { skip, timeout: 300_000 }, () => {
  let api: TestKubeApiserver;
  let store: KubernetesBackend;
  let ipam: IPAM;
  let resources: ResourceClient;
  let dir: string;
  let proc: ChildProcess;
  let output = '';
  let metricsPort: number;
  let statusFile: string;
  let restarted: ChildProcess | undefined;
  let restartedEtcd: ChildProcess | undefined;
  const log = () => `--- tortie-kube-controllers ---\n${output.split('\n').slice(-40).join('\n')}`;

  const kubectlJSON = (args: string[], obj: unknown) => api.kubectl(args, JSON.stringify(obj));
  const pod = (name: string, node: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop' },
    spec: { nodeName: node, automountServiceAccountToken: false, containers: [{ name: 'c', image: 'registry.k8s.io/pause:3.10.1' }] },
  });
  /** Tortie's CNI path: allocate with the pod's attributes (the handle is the container's). */
  const allocate = async (podName: string, node: string) =>
    (
      await ipam.autoAssign({
        handleId: `k8s-pod-network.ctr-${podName}`,
        attrs: { node, namespace: 'shop', pod: podName, timestamp: new Date().toISOString() },
        hostname: node,
        num4: 1,
        num6: 0,
      })
    ).ipv4[0].ip;
  /** What the kubelet reports once the sandbox is up: status.podIPs. */
  const setPodIP = (name: string, ip: string) =>
    api.kubectl(['patch', 'pod', name, '-n', 'shop', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { podIP: ip, podIPs: [{ ip }] } })]);
  const allocated = async (ip: string) => (await ipam.assignment(ip)) !== null;
  const setGrace = async (grace: string) => {
    const cur = await resources.get('KubeControllersConfiguration', 'default');
    await resources.update({ ...cur!, spec: { ...(cur!.spec as object), controllers: { node: { leakGracePeriod: grace } } } });
  };
  const scrape = async () => (await httpGet(`http://127.0.0.1:${metricsPort}/metrics`)).body;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-kc-'));
    statusFile = join(dir, 'status', 'status.json');
    // The watch cache off and every watch ended by the server after 1–2 s: watches resume all the
    // time, and a compaction makes their resume point expire (410 Gone).
    api = await startKubeApiserver({ extraArgs: ['--watch-cache=false', '--min-request-timeout=1'] });
    await api.kubectl(['apply', '-f', join(ROOT, 'manifests/crds.yaml')]);
    await api.kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
    await kubectlJSON(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'shop' } },
        ...['n1', 'n2'].map((name) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } } })),
      ],
    });
    store = await openKubernetes({ kubeconfig: api.kubeconfig, handlers: derivedHandlers() });
    ipam = new IPAM(store, { selects: () => true });
    resources = new ResourceClient(store);
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'default-ipv4-ippool' }, spec: { cidr: '10.244.0.0/16', blockSize: 26, vxlanMode: 'Always', natOutgoing: true } });
    metricsPort = await freePort();
    await resources.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'KubeControllersConfiguration',
      metadata: { name: 'default' },
      spec: { prometheusMetricsPort: metricsPort, controllers: { node: { leakGracePeriod: '2s' } } },
    });
    // The controllers' own identity with exactly the RBAC kube-controllers/README.md documents for
    // the node controller on the Kubernetes datastore (a missing rule shows as not ready).
    await kubectlJSON(['apply', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tortie-kube-controllers', namespace: 'kube-system' } },
        { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'tortie-kube-controllers' }, rules: KDD_NODE_RULES },
        {
          apiVersion: 'rbac.authorization.k8s.io/v1',
          kind: 'ClusterRoleBinding',
          metadata: { name: 'tortie-kube-controllers' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'tortie-kube-controllers' },
          subjects: [{ kind: 'ServiceAccount', name: 'tortie-kube-controllers', namespace: 'kube-system' }],
        },
      ],
    });
    const token = (await api.kubectl(['create', 'token', 'tortie-kube-controllers', '-n', 'kube-system', '--duration=1h'])).stdout.trim();
    proc = spawn(BIN, [], {
      env: {
        PATH: process.env.PATH,
        DATASTORE_TYPE: 'kubernetes',
        K8S_API_ENDPOINT: api.url,
        K8S_API_TOKEN: token,
        K8S_CA_FILE: api.pki.caFile,
        STATUS_FILE: statusFile,
        METRICS_HOST: '127.0.0.1',
        HEALTH_CHECK_INTERVAL: '500ms',
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    proc.stdout!.on('data', (d) => (output += d));
    proc.stderr!.on('data', (d) => (output += d));
    await until('the controllers to be ready', async () => (await checkStatus('-r', statusFile)).code === 0, 30_000, log);
  });

  after(async () => {
    if (proc?.pid && proc.exitCode === null) {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
    }
    if (restarted?.pid && restarted.exitCode === null) {
      restarted.kill('SIGTERM');
      await new Promise((r) => restarted!.once('exit', r));
    }
    if (restartedEtcd?.pid && restartedEtcd.exitCode === null) {
      restartedEtcd.kill('SIGKILL');
      await new Promise((r) => restartedEtcd!.once('exit', r));
    }
    await store?.close();
    await api?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('releases a leaked address after the grace period and never before; keeps live pods and an ADD that patches its pod in time', async (t) => {
    await kubectlJSON(['create', '-f', '-'], { apiVersion: 'v1', kind: 'List', items: [pod('live', 'n1'), pod('adding', 'n1'), pod('leaky', 'n1')] });
    const live = await allocate('live', 'n1');
    await setPodIP('live', live);
    // A CNI ADD in flight: allocated, the pod not patched yet.
    const adding = await allocate('adding', 'n1');
    // A pod whose CNI DEL never ran: its address stays allocated after the pod is gone.
    // Its allocation is a candidate from the first sync after it (its pod does not carry the
    // address), so the grace period runs from the allocation, not from the pod's deletion.
    const allocatedAt = Date.now();
    const leaked = await allocate('leaky', 'n1');
    await api.kubectl(['delete', 'pod', 'leaky', '-n', 'shop', '--grace-period=0', '--force']);
    const goneAt = Date.now();
    // The ADD finishes half-way through the grace period.
    await sleep(1000);
    await setPodIP('adding', adding);

    const freedAt = await until('the leaked address to be released', async () => !(await allocated(leaked)) && Date.now(), 20_000, log);
    const waited = freedAt - allocatedAt;
    assert.ok(waited >= 2000, `released ${waited} ms after it was allocated as a candidate: before the 2 s grace period`);
    t.diagnostic(`leaked address released ${waited} ms after its allocation, ${freedAt - goneAt} ms after its pod was deleted (grace period 2 s, sync every 1 s)`);
    assert.equal(await ipam.releaseByHandle('k8s-pod-network.ctr-leaky').then((r) => r.length), 0, 'the whole handle went with it');
    // Several grace periods later, the live pod's and the in-time ADD's addresses are still there.
    await sleep(5000);
    assert.ok(await allocated(live), 'a live pod keeps its address');
    assert.ok(await allocated(adding), 'an ADD that patched its pod within the grace period keeps its address');
    assert.match(output, new RegExp(`Garbage collected leaked IP.*ip=${leaked.replace(/\./g, '\\.')}`));
    assert.doesNotMatch(output, new RegExp(`Garbage collected leaked IP.*ip=(${live}|${adding})\\b`.replace(/\./g, '\\.')));

    const m = await scrape();
    assert.equal(metric(m, 'ipam_allocations_in_use', { ippool: 'default-ipv4-ippool', node: 'n1' }), 2, m);
    assert.equal(metric(m, 'ipam_allocations_gc_reclamations', { ippool: 'default-ipv4-ippool', node: 'n1' }), 1);
    assert.equal(metric(m, 'ipam_allocations_gc_candidates', { ippool: 'default-ipv4-ippool', node: 'n1' }), 0);
    assert.equal(metric(m, 'ipam_blocks', { ippool: 'default-ipv4-ippool', node: 'n1' }), 1);
    assert.equal(metric(m, 'ipam_blocks_per_node', { node: 'n1' }), 1);
    assert.equal(metric(m, 'ipam_ippool_size', { ippool: 'default-ipv4-ippool' }), 65536);
  });

  it("a live node's empty blocks lose their affinity after two observations across the grace period, never before", async (t) => {
    // A pool of /30 blocks: five addresses on n1 take two blocks; the CNI DELs then empty both.
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'small' }, spec: { cidr: '10.99.0.0/24', blockSize: 30 } });
    for (let i = 0; i < 5; i++) {
      await ipam.autoAssign({ handleId: `k8s-pod-network.ctr-small-${i}`, attrs: { node: 'n1', namespace: 'shop', pod: `small-${i}` }, hostname: 'n1', num4: 1, num6: 0, ipv4Pools: ['small'] });
    }
    const smallBlocks = async () => (await ipam.blocks(4)).filter((b) => b.cidr.startsWith('10.99.') && b.affinity === 'host:n1').map((b) => b.cidr);
    const blocks = await smallBlocks();
    assert.equal(blocks.length, 2);
    for (let i = 0; i < 5; i++) await ipam.releaseByHandle(`k8s-pod-network.ctr-small-${i}`);
    const emptyAt = Date.now();
    assert.deepEqual(await smallBlocks(), blocks, 'empty blocks keep their affinity at first');
    // A release is several writes (affinity pendingDeletion, block deleted, affinity deleted): wait for the last.
    const smallAffinities = async () => (await ipam.affinities()).filter((a) => a.cidr.startsWith('10.99.'));
    await until('the empty blocks to be released', async () => (await smallBlocks()).length === 0 && (await smallAffinities()).length === 0, 20_000, log);
    const took = Date.now() - emptyAt;
    assert.ok(took >= 2000, `released ${took} ms after the blocks emptied: before the 2 s grace period`);
    assert.equal((await ipam.blocks(4)).filter((b) => b.affinity === 'host:n1').length, 1, "n1 keeps its default-pool block (in use)");
    t.diagnostic(`two empty /30 blocks released ${took} ms after they emptied (grace period 2 s)`);
    await resources.delete('IPPool', 'small');
  });

  it("releases a deleted Node's pod and tunnel addresses and its block affinities at once, and keeps a candidate inside a long grace period", async (t) => {
    // A one-hour grace period: only the node-deletion path can release anything within this test.
    await setGrace('1h');
    await kubectlJSON(['create', '-f', '-'], { apiVersion: 'v1', kind: 'List', items: [pod('on-n2', 'n2'), pod('waiting', 'n1')] });
    const podIP = await allocate('on-n2', 'n2');
    await setPodIP('on-n2', podIP);
    const tunnel = (
      await ipam.autoAssign({ handleId: 'vxlan-tunnel-addr-n2', attrs: { node: 'n2', type: 'vxlanTunnelAddress' }, hostname: 'n2', num4: 1, num6: 0, intendedUse: 'Tunnel' })
    ).ipv4[0].ip;
    // A leak candidate on the live node n1 (its pod has no address and never will).
    const candidate = await allocate('waiting', 'n1');
    const n2Blocks = (await ipam.blocks(4)).filter((b) => b.affinity === 'host:n2').map((b) => b.cidr);
    assert.equal(n2Blocks.length, 1);
    assert.deepEqual((await ipam.affinities()).filter((a) => a.host === 'n2').map((a) => a.cidr), n2Blocks);
    // Every sync reads the configuration first: from now on the grace period is an hour, and the
    // controller sleeps its sync period (5 min): only the Node deletion can wake it.
    await sleep(1500);
    await api.kubectl(['delete', 'node', 'n2']);
    const t0 = Date.now();
    await until('n2\'s addresses to be released', async () => !(await allocated(podIP)) && !(await allocated(tunnel)), 10_000, log);
    await until('n2\'s block affinity to be released', async () => (await ipam.affinities()).every((a) => a.host !== 'n2'), 10_000, log);
    const took = Date.now() - t0;
    assert.ok(took < 10_000, `took ${took} ms`);
    t.diagnostic(`deleted node's 2 addresses and 1 block affinity released ${took} ms after the Node was deleted (grace period 1 h)`);
    assert.deepEqual((await ipam.blocks(4)).filter((b) => n2Blocks.includes(b.cidr)), [], "n2's empty block is deleted");
    assert.ok(await allocated(candidate), 'a candidate on a live node waits for its grace period (1 h)');
    const m = await scrape();
    assert.equal(metric(m, 'ipam_allocations_gc_reclamations', { ippool: 'default-ipv4-ippool', node: 'n2' }), 2, m);
    assert.equal(metric(m, 'ipam_allocations_in_use', { ippool: 'default-ipv4-ippool', node: 'n2' }), undefined, 'no allocation left on n2');
    assert.equal(metric(m, 'ipam_allocations_gc_candidates', { ippool: 'default-ipv4-ippool', node: 'n1' }), 1);
  });

  it('through an API server restart: stays alive and live, not ready with the reason, ready again by itself', async (t) => {
    const pid = proc.pid;
    const cmdline = readFileSync(`/proc/${api.pids.apiserver}/cmdline`, 'utf8').split('\0').filter((s) => s !== '');
    // A crash (its graceful shutdown would wait for open watches).
    process.kill(api.pids.apiserver, 'SIGKILL');
    await until('the API server to be gone', async () => {
      try {
        process.kill(api.pids.apiserver, 0);
        return false;
      } catch {
        return true;
      }
    }, 10_000);
    const down = await until('readiness to go down', async () => {
      const r = await checkStatus('-r', statusFile);
      return r.code !== 0 && r.out;
    }, 15_000, log);
    assert.match(down, /not ready: .*KubeAPIServer: .*(ECONNREFUSED|unreachable)/, down);
    t.diagnostic(`check-status -r during the outage: ${down}`);
    // Down for a while: several failed syncs and health checks; alive and live throughout.
    for (let i = 0; i < 6; i++) {
      await sleep(500);
      assert.equal(proc.exitCode, null, `the process exited: ${log()}`);
      assert.equal((await checkStatus('-l', statusFile)).code, 0);
      assert.notEqual((await checkStatus('-r', statusFile)).code, 0);
    }
    // The same API server, same port and etcd, started again (ours: ended by PID in after()).
    restarted = spawn(cmdline[0], cmdline.slice(1), { stdio: 'ignore', cwd: api.dir });
    const upAt = Date.now();
    await until('readiness to come back', async () => (await checkStatus('-r', statusFile)).code === 0, 90_000, log);
    t.diagnostic(`ready again ${Date.now() - upAt} ms after the API server was started again (same pid ${pid})`);
    assert.equal(proc.pid, pid);
    assert.equal(proc.exitCode, null);
    // And it works again: a new leak is collected (grace back to 2 s).
    await setGrace('2s');
    await kubectlJSON(['create', '-f', '-'], pod('after-outage', 'n1'));
    const ip = await allocate('after-outage', 'n1');
    await api.kubectl(['delete', 'pod', 'after-outage', '-n', 'shop', '--grace-period=0', '--force']);
    await until('the post-outage leak to be released', async () => !(await allocated(ip)), 20_000, log);
  });
  it("through an outage of the API server's etcd and a Node watch whose resume point was compacted (410 Gone): same PID, resumes by itself", async (t) => {
    const pid = proc.pid!;
    const etcdPid = api.pids.etcd;
    const cmdline = readFileSync(`/proc/${etcdPid}/cmdline`, 'utf8').split('\0').filter((s) => s !== '');
    const cwd = readlinkSync(`/proc/${etcdPid}/cwd`);
    process.kill(etcdPid, 'SIGKILL');
    const down = await until('readiness to go down', async () => {
      const r = await checkStatus('-r', statusFile);
      return r.code !== 0 && r.out;
    }, 40_000, log);
    assert.match(down, /not ready: .*(CalicoDatastore|IPAMGarbageCollector): /, down);
    t.diagnostic(`check-status -r with the API server's etcd down: ${down.slice(0, 300)}`);
    for (let i = 0; i < 4; i++) {
      await sleep(500);
      assert.equal(proc.exitCode, null, `the process exited: ${log()}`);
      assert.equal((await checkStatus('-l', statusFile)).code, 0, 'live');
    }
    restartedEtcd = spawn(cmdline[0], cmdline.slice(1), { stdio: 'ignore', cwd });
    const upAt = Date.now();
    await until('readiness to come back', async () => (await checkStatus('-r', statusFile)).code === 0, 90_000, log);
    t.diagnostic(`ready again ${Date.now() - upAt} ms after the API server's etcd was started again`);

    // The Node watch's resume point compacted away: a Node deleted afterwards is still seen at once.
    await setGrace('1h');
    await kubectlJSON(['create', '-f', '-'], { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n3' } });
    await kubectlJSON(['create', '-f', '-'], pod('on-n3', 'n3'));
    const ip = await allocate('on-n3', 'n3');
    await setPodIP('on-n3', ip);
    await sleep(1500); // the watch has seen n3: its resume point is n3's creation or later
    await api.kubectl(['create', 'configmap', 'bump1', '-n', 'shop']);
    await api.kubectl(['create', 'configmap', 'bump2', '-n', 'shop']);
    const latest = JSON.parse((await api.kubectl(['get', 'configmap', 'bump2', '-n', 'shop', '-o', 'json'])).stdout).metadata.resourceVersion as string;
    const c = await new Promise<string>((resolve, reject) =>
      execFile(api.binaries.etcdctl, ['--endpoints', api.etcdEndpoint, 'compact', latest], (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout))),
    );
    assert.match(c, /compacted revision/);
    await until('the Node watch to meet 410 Gone and re-list', async () => /Node watch expired \(410 Gone\); re-listing/.test(output), 15_000, log);
    t.diagnostic(`Node watch resumed after compaction at ${latest}: ${output.split('\n').find((l) => /Node watch expired/.test(l))?.slice(0, 200)}`);
    await api.kubectl(['delete', 'node', 'n3']);
    const t0 = Date.now();
    await until("n3's address to be released", async () => !(await allocated(ip)), 10_000, log);
    t.diagnostic(`deleted node's address released ${Date.now() - t0} ms after the deletion (grace period 1 h), after the 410`);
    assert.equal(proc.pid, pid);
    assert.equal(proc.exitCode, null);
    const m = await scrape();
    assert.match(m, /tortie_kube_controllers_restarts 0/);
    assert.match(m, /tortie_kube_controllers_ready\{component="IPAMGarbageCollector"\} 1/);
    assert.match(m, /tortie_kube_controllers_sync_failures_total\{controller="node"\} [1-9]/, 'the failed syncs of the outages are counted');
  });
});
