// Tortie installed as an operator installs Calico: a bare lab cluster (`tortie-lab up --kubernetes
// --cni none`: real kubelets, containerd, kube-proxy; nodes NotReady), Tortie's image in every node's
// containerd, then `kubectl apply -f manifests/tortie.yaml`. The DaemonSet's install-cni writes each
// node's own /etc/cni/net.d and /opt/cni/bin, tortie-node (hostNetwork, privileged, in the image)
// turns the nodes Ready, tortie-kube-controllers runs on the pod network. Packets are real
// (`kubectl exec … /agnhost connect`).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingForKube } from './pkg/kube/cluster.js';
import type { LabState } from './pkg/state.js';
import { netnsList, pidAlive } from './pkg/sys.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const MANIFEST = join(ROOT, 'manifests', 'tortie.yaml');
const missing = missingForKube('manifest');
const skip =
  process.getuid?.() !== 0
    ? 'needs root (namespaces, cgroups)'
    : !existsSync(LAB)
      ? `${LAB} not built (npm run build)`
      : missing.length > 0
        ? `needs the Kubernetes build and images (scripts/build-kubernetes.sh, scripts/build-images.sh): ${missing.join(', ')} not built`
        : false;
const dir = mkdtempSync(join(tmpdir(), 'tortie-kube-manifest-test-'));
const env = { ...process.env, TORTIE_LAB_DIR: dir };
const name = `m${randomBytes(3).toString('hex')}`;
const AGNHOST = 'registry.k8s.io/e2e-test-images/agnhost:2.56';
type Obj = Record<string, any>;

function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = execFile(LAB, args, { env, timeout: 240_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    c.stdin?.end();
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await lab(...args);
  assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const k = (...args: string[]) => ok('kubectl', name, '--', ...args);
const kj = async (...args: string[]) => JSON.parse(await k(...args, '-o', 'json')) as Obj;
const state = () => JSON.parse(readFileSync(join(dir, name, 'state.json'), 'utf8')) as LabState;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function apply(obj: Obj): Promise<void> {
  const r = await new Promise<{ code: number; out: string }>((resolve) => {
    const c = execFile(LAB, ['kubectl', name, '--', 'apply', '-f', '-'], { env }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }));
    c.stdin!.end(JSON.stringify(obj));
  });
  assert.equal(r.code, 0, r.out);
}

async function until<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    assert.ok(Date.now() < deadline, `${what}: not after ${timeoutMs / 1000}s`);
    await sleep(500);
  }
}

type Pod = { name: string; node: string; ip: string; cid: string };
async function webPods(): Promise<Pod[]> {
  return ((await kj('get', 'pods', '-l', 'app=web')).items as Obj[])
    .filter((p) => !p.metadata.deletionTimestamp && p.status.phase === 'Running')
    .map((p) => ({ name: p.metadata.name, node: p.spec.nodeName, ip: p.status.podIP, cid: p.metadata.annotations?.['cni.projectcalico.org/containerID'] }))
    .sort((a, b) => a.node.localeCompare(b.node));
}

/** Real packets: /agnhost connect inside `from`. */
async function connect(from: Pod, to: string): Promise<boolean> {
  const x = await lab('kubectl', name, '--', 'exec', from.name, '--', '/agnhost', 'connect', to, '--timeout=3s', '--protocol=tcp');
  if (x.code !== 0 && !/TIMEOUT|REFUSED|exit code 1/.test(x.stdout + x.stderr)) assert.fail(`kubectl exec ${from.name} failed: ${x.stdout}${x.stderr}`);
  return x.code === 0;
}

describe('manifests/tortie.yaml applied with kubectl on the lab\'s real cluster', { skip }, () => {
  after(async () => {
    if (existsSync(join(dir, name, 'state.json'))) await lab('down', name);
    rmSync(dir, { recursive: true, force: true });
  });

  it('bad input: --cni manifest takes the manifest as it is (no --mode vxlan), nothing made', async () => {
    const r = await lab('up', '--kubernetes', '--cni', 'manifest', '--mode', 'vxlan', '--name', name, '--nodes', '2');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /--mode vxlan does not apply to --cni manifest/);
    assert.equal(existsSync(join(dir, name)), false);
  });

  it('NotReady → apply → every node Ready with tortie-node 1/1; install-cni wrote each node\'s own CNI files; pods reach each other and a Service across nodes; a deleted tortie-node pod is recreated and pods keep their network; a deleted pod frees its IPAM handle; tortie-kube-controllers Ready', async () => {
    await ok('up', '--kubernetes', '--cni', 'none', '--name', name, '--nodes', '2');
    let nodes = await kj('get', 'nodes');
    const readyOf = (n: Obj) => n.status.conditions.find((c: Obj) => c.type === 'Ready').status;
    assert.deepEqual(nodes.items.map((n: Obj) => [n.metadata.name, readyOf(n)]), [['node1', 'False'], ['node2', 'False']], 'no network yet');

    // As the README says: the image is in every node's containerd (the lab imported it), apply.
    const applied = await k('apply', '-f', MANIFEST);
    assert.match(applied, /daemonset\.apps\/tortie-node created/);
    assert.match(applied, /deployment\.apps\/tortie-kube-controllers created/);
    await k('-n', 'kube-system', 'rollout', 'status', 'daemonset/tortie-node', '--timeout=180s');
    await k('wait', '--for=condition=Ready', 'node', '--all', '--timeout=120s');
    nodes = await kj('get', 'nodes');
    for (const n of nodes.items as Obj[]) {
      assert.equal(readyOf(n), 'True', `${n.metadata.name} Ready`);
      const nu = n.status.conditions.find((c: Obj) => c.type === 'NetworkUnavailable');
      assert.deepEqual([nu?.status, nu?.reason], ['False', 'TortieIsUp'], `${n.metadata.name}: NetworkUnavailable cleared by tortie-node`);
      // Registered with the kubelet's InternalIP (IP_AUTODETECTION_METHOD=kubernetes-internal-ip).
      const internal = n.status.addresses.find((a: Obj) => a.type === 'InternalIP').address;
      assert.equal(n.metadata.annotations['projectcalico.org/IPv4Address'], `${internal}/24`);
    }
    const agents = ((await kj('-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=tortie-node')).items as Obj[]);
    assert.deepEqual(agents.map((p) => p.spec.nodeName).sort(), ['node1', 'node2']);
    for (const p of agents) {
      assert.equal(p.status.containerStatuses[0].ready, true, `${p.metadata.name}: readiness probe (-felix-ready -bird-ready) passes`);
      assert.equal(p.status.initContainerStatuses[0].state.terminated?.exitCode, 0, `${p.metadata.name}: install-cni exited 0`);
    }

    // install-cni wrote each node's own files (the node's mount namespace), not the machine's.
    for (const n of ['node1', 'node2']) {
      const net = (await ok('exec', name, n, '--', 'stat', '-c', '%n %a', '/etc/cni/net.d/10-tortie.conflist', '/etc/cni/net.d/tortie-kubeconfig')).trim().split('\n');
      assert.deepEqual(net, ['/etc/cni/net.d/10-tortie.conflist 644', '/etc/cni/net.d/tortie-kubeconfig 600']);
      const conf = JSON.parse(await ok('exec', name, n, '--', 'cat', '/etc/cni/net.d/10-tortie.conflist')) as Obj;
      assert.equal(conf.plugins[0].nodename, n, '__KUBERNETES_NODE_NAME__ rendered per node');
      const bins = (await ok('exec', name, n, '--', 'ls', '/opt/cni/bin')).trim().split('\n');
      for (const b of ['tortie', 'tortie-ipam', 'portmap', 'bandwidth', 'loopback']) assert.ok(bins.includes(b), `${n}: /opt/cni/bin/${b} in ${bins.join(' ')}`);
    }
    assert.equal(existsSync('/etc/cni/net.d/10-tortie.conflist'), false, 'nothing written to the machine\'s /etc/cni/net.d');

    // `kubectl -n kube-system get all`, as the seed's `| grep calico`.
    const all = await k('-n', 'kube-system', 'get', 'all');
    assert.match(all, /pod\/tortie-node-[a-z0-9]{5}\s+1\/1\s+Running/);
    assert.match(all, /daemonset\.apps\/tortie-node\s+2\s+2\s+2\s+2\s+2\s+kubernetes\.io\/os=linux/);
    await k('-n', 'kube-system', 'rollout', 'status', 'deployment/tortie-kube-controllers', '--timeout=120s');
    const kc = ((await kj('-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=tortie-kube-controllers')).items as Obj[])[0]!;
    assert.equal(kc.status.containerStatuses[0].ready, true, 'tortie-kube-controllers: check-status -r passes');
    assert.match(kc.status.podIP, /^10\.233\./, 'tortie-kube-controllers is on the pod network (a pool address)');
    assert.match(await k('-n', 'kube-system', 'get', 'all'), /deployment\.apps\/tortie-kube-controllers\s+1\/1\s+1\s+1/);

    // A Deployment spread over both nodes and its Service: real packets.
    await apply({
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          metadata: { name: 'web', namespace: 'default' },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: 'web' } },
            template: {
              metadata: { labels: { app: 'web' } },
              spec: {
                terminationGracePeriodSeconds: 0,
                topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'web' } } }],
                containers: [{ name: 'agnhost', image: AGNHOST, imagePullPolicy: 'Never', args: ['netexec', '--http-port=8080'] }],
              },
            },
          },
        },
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } },
      ],
    });
    await k('rollout', 'status', 'deployment/web', '--timeout=120s');
    let web = await webPods();
    assert.deepEqual(web.map((p) => p.node), ['node1', 'node2'], 'one pod per node');
    for (const p of web) assert.match(p.ip, /^10\.233\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+$/, `${p.name}: an address of the manifest's pool 10.233.64.0/18`);
    const clusterIP = (await kj('get', 'service', 'web')).spec.clusterIP as string;
    const [a, b] = web as [Pod, Pod];
    assert.ok(await connect(a, `${b.ip}:8080`), `${a.name} (node1) → ${b.name} (node2)`);
    assert.ok(await connect(b, `${a.ip}:8080`), `${b.name} (node2) → ${a.name} (node1)`);
    for (const p of web) assert.ok(await connect(p, `${clusterIP}:80`), `${p.name} → Service web ${clusterIP}:80`);
    assert.equal(await connect(a, '10.233.127.250:8080'), false, 'an address nobody has does not answer');

    // tortie-node of node2 deleted: the DaemonSet makes a new one; the pods keep their network meanwhile and after.
    const old2 = agents.find((p) => p.spec.nodeName === 'node2')!;
    await k('-n', 'kube-system', 'delete', 'pod', old2.metadata.name, '--wait=false');
    assert.ok(await connect(a, `${b.ip}:8080`), `${a.name} → ${b.name} while node2's tortie-node is replaced`);
    const new2 = await until('a new tortie-node on node2, Ready', 180_000, async () => {
      const ps = ((await kj('-n', 'kube-system', 'get', 'pods', '-l', 'k8s-app=tortie-node')).items as Obj[]).filter(
        (p) => p.spec.nodeName === 'node2' && p.metadata.name !== old2.metadata.name && p.status.containerStatuses?.[0]?.ready === true,
      );
      return ps[0];
    });
    assert.notEqual(new2.metadata.uid, old2.metadata.uid);
    assert.ok(await connect(a, `${b.ip}:8080`), `${a.name} → ${b.name} after node2's tortie-node was recreated`);
    assert.ok(await connect(b, `${a.ip}:8080`), `${b.name} → ${a.name} after`);
    assert.ok(await connect(b, `${clusterIP}:80`), `${b.name} → ClusterIP after`);

    // A deleted pod frees its address: the kubelet's CNI DEL (through the new agent) releases its handle.
    const handle = `k8s-pod-network.${b.cid}`;
    assert.ok(b.cid, 'the pod carries its containerID annotation');
    const handles = async () => ((await kj('get', 'ipamhandles.crd.projectcalico.org')).items as Obj[]).map((h) => h.spec.handleID as string);
    assert.ok((await handles()).includes(handle), `${handle} exists`);
    await k('delete', 'pod', b.name, '--wait=true', '--timeout=90s');
    await until(`IPAMHandle ${handle} released`, 30_000, async () => ((await handles()).includes(handle) ? undefined : true));
    await k('rollout', 'status', 'deployment/web', '--timeout=120s');
    web = await webPods();
    const b2 = web.find((p) => p.node === 'node2')!;
    assert.ok(b2 && b2.name !== b.name, 'the Deployment made a new pod on node2');
    assert.ok(await connect(a, `${b2.ip}:8080`), `${a.name} → the new ${b2.name} (a sandbox wired by the recreated tortie-node)`);

    const final = state();
    await ok('down', name);
    assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), [], 'no namespace left');
    for (const p of final.processes) assert.equal(pidAlive(p.pid, p.startTime), false, `${p.role} (PID ${p.pid}) still running`);
  });
});
