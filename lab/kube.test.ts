// `tortie-lab up --kubernetes`: a real Kubernetes v1.34 cluster in the lab, driven as an operator
// drives it (bin/tortie-lab, the real kubectl). Real kubelets, containerd and kube-proxy on every
// node; pods scheduled by the real scheduler get their network through kubelet → containerd → CNI.
// Packets are real: `kubectl exec … /agnhost connect`. And the machine is left as it was: the
// vm./kernel. sysctls the kubelet would set, the root network namespace, the host's mounts, the
// cgroup hierarchies.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { missingForKube } from './pkg/kube/cluster.js';
import type { LabState } from './pkg/state.js';
import { netnsList, pidAlive } from './pkg/sys.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const missing = missingForKube('tortie');
const skip =
  process.getuid?.() !== 0
    ? 'needs root (namespaces, cgroups)'
    : !existsSync(LAB)
      ? `${LAB} not built (npm run build)`
      : missing.length > 0
        ? `needs the Kubernetes build and images (scripts/build-kubernetes.sh, scripts/build-images.sh): ${missing.join(', ')} not built`
        : false;
const dir = mkdtempSync(join(tmpdir(), 'tortie-kube-test-'));
const env = { ...process.env, TORTIE_LAB_DIR: dir };
const made: string[] = [];
const AGNHOST = 'registry.k8s.io/e2e-test-images/agnhost:2.56';

function labName(): string {
  const n = `k${randomBytes(3).toString('hex')}`;
  made.push(n);
  return n;
}

function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout: 240_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await lab(...args);
  assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

type Obj = Record<string, any>;

/** `tortie-lab kubectl N -- apply|create -f -` with `obj` on stdin. */
async function apply(name: string, obj: Obj, verb = 'apply'): Promise<void> {
  const r = await new Promise<{ code: number; out: string }>((resolve) => {
    const c = execFile(LAB, ['kubectl', name, '--', verb, '-f', '-'], { env }, (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr }));
    c.stdin!.end(JSON.stringify(obj));
  });
  assert.equal(r.code, 0, r.out);
}

/** An agnhost Deployment serving TCP on `port`, one pod per node at most (topology spread). */
function spreadDeployment(app: string, replicas: number, port: number): Obj {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: app, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app } },
      template: {
        metadata: { labels: { app } },
        spec: {
          terminationGracePeriodSeconds: 0,
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app } } }],
          containers: [{ name: 'agnhost', image: AGNHOST, imagePullPolicy: 'Never', args: ['serve-hostname', '--tcp', '--http=false', '--port', String(port)] }],
        },
      },
    },
  };
}
const state = (name: string) => JSON.parse(readFileSync(join(dir, name, 'state.json'), 'utf8')) as LabState;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// the machine, before and after

/** Every readable vm./kernel./fs./user. sysctl of the machine (a few counters that move by themselves left out). */
function globalSysctls(): Record<string, string> {
  const out: Record<string, string> = {};
  const volatile = /^(kernel\/(random\/|ns_last_pid$|pty\/nr$)|fs\/(dentry-state|file-nr|inode-nr|inode-state)$|fs\/quota\/)/;
  const walk = (d: string) => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      const rel = p.slice('/proc/sys/'.length);
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(p);
      } catch {
        continue;
      }
      if (st.isDirectory()) walk(p);
      else if (!volatile.test(rel) && st.mode & 0o444) {
        try {
          out[rel] = readFileSync(p, 'utf8').trim();
        } catch {
          // write-only
        }
      }
    }
  };
  for (const d of ['vm', 'kernel', 'fs', 'user']) walk(`/proc/sys/${d}`);
  return out;
}

/** The root network namespace as `ip` and `nft` show it. */
function rootNetns(): Record<string, string> {
  const sh = (argv: string[]) => {
    try {
      return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
    } catch (e) {
      return `error: ${(e as Error).message}`;
    }
  };
  return {
    links: sh(['/usr/sbin/ip', '-o', 'link', 'show']).replace(/\\\s+link\/.*$/gm, '').split('\n').map((l) => l.split(':').slice(0, 2).join(':')).join('\n'),
    addrs: sh(['/usr/sbin/ip', '-o', 'addr', 'show']).replace(/valid_lft.*$/gm, ''),
    routes: sh(['/usr/sbin/ip', 'route', 'show', 'table', 'all']),
    rules: sh(['/usr/sbin/ip', 'rule', 'show']),
    nft: sh(['/usr/sbin/nft', 'list', 'ruleset']),
    ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
  };
}

/** The host's mounts that mention the lab dir or a node's standard path. */
function hostMounts(): string[] {
  const paths = [dir, '/var/lib/kubelet', '/var/lib/containerd', '/run/containerd', '/etc/cni/net.d', '/opt/cni', '/var/lib/calico', '/run/calico'];
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => paths.some((p) => l.split(' ')[4]?.startsWith(p)));
}

/** Which of a node's standard paths exist on the host (none is made there by a lab). */
const HOST_PATHS = ['/var/lib/kubelet', '/var/lib/containerd', '/run/containerd', '/opt/cni', '/var/lib/cni', '/etc/kubernetes', '/var/lib/calico',
  '/run/calico', '/var/log/pods', '/var/log/containers', '/var/log/calico', '/usr/lib/modules', '/run/xtables.lock', '/opt/containerd', '/etc/containerd'];
function hostPaths(): Record<string, boolean> {
  return Object.fromEntries(HOST_PATHS.map((p) => [p, existsSync(p)]));
}

function cgroupDirs(name: string): string[] {
  const out: string[] = [];
  for (const h of readdirSync('/sys/fs/cgroup')) {
    try {
      for (const e of readdirSync(join('/sys/fs/cgroup', h))) if (e.startsWith(`tl-${name}-`)) out.push(join('/sys/fs/cgroup', h, e));
    } catch {
      // not a directory
    }
  }
  return out;
}

function assertGone(name: string, s: LabState): void {
  assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), [], 'no namespace left');
  for (const p of s.processes) assert.equal(pidAlive(p.pid, p.startTime), false, `${p.role} (PID ${p.pid}) still running`);
  assert.deepEqual(cgroupDirs(name), [], 'no cgroup directory left');
  assert.equal(existsSync(join(dir, name)), false, 'lab directory removed');
}

// ---------------------------------------------------------------------------------------------

describe('tortie-lab up --kubernetes', { skip }, () => {
  let sysctlsBefore: Record<string, string>;
  let netnsBefore: Record<string, string>;
  let mountsBefore: string[];
  let pathsBefore: Record<string, boolean>;

  before(() => {
    sysctlsBefore = globalSysctls();
    netnsBefore = rootNetns();
    mountsBefore = hostMounts();
    pathsBefore = hostPaths();
    assert.ok(Object.keys(sysctlsBefore).length > 50, 'read the machine\'s sysctls');
  });

  after(async () => {
    for (const n of made) if (existsSync(join(dir, n, 'state.json'))) await lab('down', n);
    rmSync(dir, { recursive: true, force: true });
  });

  it('bad input: a clear error naming the flag and value, and nothing made', async () => {
    const name = labName();
    for (const [args, want] of [
      [['--kubernetes', '--cni', 'calico'], /--cni must be one of none, tortie, manifest, bridge, got calico/],
      [['--cni', 'tortie'], /--cni needs --kubernetes/],
      [['--kubernetes', '--datastore', 'etcd'], /--datastore does not apply to --kubernetes/],
    ] as const) {
      const r = await lab('up', '--name', name, ...args);
      assert.equal(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, want);
      assert.equal(existsSync(join(dir, name)), false, 'no lab directory');
      assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), [], 'no namespace');
    }
  });

  it('--cni none: the nodes register and stay NotReady (no CNI configuration), as on a real cluster; down removes everything', async () => {
    const name = labName();
    const out = await ok('up', '--kubernetes', '--name', name, '--nodes', '1');
    assert.match(out, /nftables mode \(this kernel has no IPVS/);
    const s = state(name);
    const nodes = JSON.parse(await ok('kubectl', name, '--', 'get', 'nodes', '-o', 'json')) as Obj;
    assert.deepEqual(nodes.items.map((n: Obj) => n.metadata.name), ['node1']);
    const node = nodes.items[0];
    assert.equal(node.status.nodeInfo.kubeletVersion, 'v1.34.4');
    assert.equal(node.status.nodeInfo.containerRuntimeVersion, 'containerd://1.6.20');
    assert.deepEqual(node.status.addresses.find((a: Obj) => a.type === 'InternalIP'), { type: 'InternalIP', address: '10.0.0.11' });
    const ready = node.status.conditions.find((c: Obj) => c.type === 'Ready');
    assert.equal(ready.status, 'False');
    assert.match(ready.message, /NetworkReady=false.*cni plugin not initialized/);
    // The node's standard paths are its own: empty /etc/cni/net.d inside, the host's untouched.
    assert.equal((await ok('exec', name, 'node1', '--', 'ls', '-A', '/etc/cni/net.d')).trim(), '');
    assert.match(await ok('exec', name, 'node1', '--', 'cat', '/proc/self/mountinfo'), / \/var\/lib\/kubelet .*/);
    // The kubelet's view of the sysctls it would set (protectKernelDefaults: false) is its own
    // values, in files of the node's mount namespace; the machine keeps its own.
    assert.equal((await ok('exec', name, 'node1', '--', 'cat', '/proc/sys/vm/overcommit_memory', '/proc/sys/kernel/panic', '/proc/sys/kernel/panic_on_oops')).trim().split('\n').join(' '), '1 10 1');
    assert.deepEqual(['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'].map((k) => globalSysctls()[k]),
      ['vm/overcommit_memory', 'kernel/panic', 'kernel/panic_on_oops'].map((k) => sysctlsBefore[k]));
    await ok('down', name);
    assertGone(name, s);
  });

  it('--cni tortie: a Deployment over 3 nodes and a Service; pod→pod and pod→ClusterIP on real packets; a deleted pod frees its address; a kubelet restart keeps pods reachable; a NetworkPolicy made with kubectl is enforced', async () => {
    const name = labName();
    await ok('up', '--kubernetes', '--cni', 'tortie', '--name', name, '--nodes', '3');
    const s = state(name);
    const k = (...args: string[]) => ok('kubectl', name, '--', ...args);
    const kj = async (...args: string[]) => JSON.parse(await k(...args, '-o', 'json')) as Obj;

    const nodes = await kj('get', 'nodes');
    assert.deepEqual(nodes.items.map((n: Obj) => [n.metadata.name, n.status.conditions.find((c: Obj) => c.type === 'Ready').status]), [['node1', 'True'], ['node2', 'True'], ['node3', 'True']]);

    await apply(name, {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        spreadDeployment('web', 3, 8080),
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } },
      ],
    });
    await k('rollout', 'status', 'deployment/web', '--timeout=120s');

    type Pod = { name: string; node: string; ip: string; uid: string; cid: string };
    const pods = async (): Promise<Pod[]> =>
      ((await kj('get', 'pods', '-l', 'app=web')).items as Obj[])
        .filter((p) => !p.metadata.deletionTimestamp && p.status.phase === 'Running')
        .map((p) => ({ name: p.metadata.name, node: p.spec.nodeName, ip: p.status.podIP, uid: p.metadata.uid, cid: p.metadata.annotations?.['cni.projectcalico.org/containerID'] }))
        .sort((a, b) => a.node.localeCompare(b.node));
    let web = await pods();
    assert.deepEqual(web.map((p) => p.node), ['node1', 'node2', 'node3'], 'one pod per node (the real scheduler, topology spread)');
    for (const p of web) assert.match(p.ip, /^10\.233\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\.\d+$/, `${p.name} has an address of the pool 10.233.64.0/18`);

    /** Real packets: /agnhost connect inside `from` (kubectl exec → apiserver → kubelet → containerd). */
    const connect = async (from: Pod, to: string): Promise<boolean> => {
      const x = await lab('kubectl', name, '--', 'exec', from.name, '--', '/agnhost', 'connect', to, '--timeout=2s', '--protocol=tcp');
      if (x.code !== 0 && !/TIMEOUT|REFUSED|exit code 1/.test(x.stdout + x.stderr)) assert.fail(`kubectl exec ${from.name} failed: ${x.stdout}${x.stderr}`);
      return x.code === 0;
    };
    for (const a of web) for (const b of web) if (a !== b) assert.ok(await connect(a, `${b.ip}:8080`), `${a.name} (${a.node}) → ${b.name} (${b.node}) ${b.ip}:8080`);
    const svc = await kj('get', 'service', 'web');
    const clusterIP = svc.spec.clusterIP as string;
    assert.match(clusterIP, /^10\.233\.([0-9]|[1-5]\d|6[0-3])\.\d+$/, 'ClusterIP in the service range 10.233.0.0/18');
    for (const a of web) assert.ok(await connect(a, `${clusterIP}:80`), `${a.name} → Service web ${clusterIP}:80 (kube-proxy, nftables)`);
    // By name: the pod's resolver is the kubelets' clusterDNS, CoreDNS behind 10.233.0.3 (as in the seed).
    assert.ok(await connect(web[2]!, 'web.default.svc.cluster.local:80'), 'web.default.svc.cluster.local:80 through CoreDNS');
    assert.equal(await connect(web[2]!, 'nothere.default.svc.cluster.local:80'), false, 'a name CoreDNS does not know does not connect');
    const pools = (await kj('get', 'ippools.crd.projectcalico.org')).items as Obj[];
    assert.deepEqual(pools.map((p) => [p.metadata.name, p.spec.cidr, p.spec.blockSize]), [['default-ipv4-ippool', '10.233.64.0/18', 24]]);
    assert.equal(await connect(web[0]!, '10.233.127.250:8080'), false, 'an address nobody has does not answer (the probe can fail)');

    // A deleted pod frees its address: the kubelet's CNI DEL releases its IPAM handle and block slot.
    const victim = web[1]!;
    const handle = `k8s-pod-network.${victim.cid}`;
    assert.ok(victim.cid, 'the pod carries its containerID annotation');
    const handlesBefore = ((await kj('get', 'ipamhandles')).items as Obj[]).map((h) => h.spec.handleID);
    assert.ok(handlesBefore.includes(handle), `${handle} in ${handlesBefore.join(', ')}`);
    await k('delete', 'pod', victim.name, '--wait=true', '--timeout=60s');
    let handlesAfter: string[] = [];
    for (let i = 0; i < 100; i++) {
      handlesAfter = ((await kj('get', 'ipamhandles')).items as Obj[]).map((h) => h.spec.handleID);
      if (!handlesAfter.includes(handle)) break;
      await sleep(200);
    }
    assert.ok(!handlesAfter.includes(handle), `IPAMHandle ${handle} released`);
    const blocks = (await kj('get', 'ipamblocks')).items as Obj[];
    const ipNum = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    const holding = blocks.filter((b) => {
      const [base, len] = (b.spec.cidr as string).split('/');
      const off = ipNum(victim.ip) - ipNum(base!);
      return off >= 0 && off < 2 ** (32 - Number(len)) && b.spec.allocations[off] !== null && b.spec.allocations[off] !== undefined;
    });
    assert.deepEqual(holding.map((b) => b.metadata.name), [], `${victim.ip} is no longer allocated in any IPAMBlock`);
    await k('rollout', 'status', 'deployment/web', '--timeout=120s');
    web = await pods();
    assert.equal(web.length, 3);

    // The kubelet of node2 restarted: its pod keeps its sandbox, address and reachability.
    const on2 = web.find((p) => p.node === 'node2')!;
    const oldKubelet = s.processes.find((p) => p.role === 'kubelet:node2')!;
    const restart = await ok('kubelet', 'restart', name, 'node2');
    assert.match(restart, /kubelet restarted/);
    const newKubelet = state(name).processes.find((p) => p.role === 'kubelet:node2')!;
    assert.notEqual(newKubelet.pid, oldKubelet.pid);
    assert.equal(pidAlive(oldKubelet.pid, oldKubelet.startTime), false, 'the old kubelet is gone');
    for (const a of web) if (a !== on2) assert.ok(await connect(a, `${on2.ip}:8080`), `${a.name} → ${on2.name} after node2's kubelet restart`);
    assert.ok(await connect(on2, `${clusterIP}:80`), `${on2.name} → ClusterIP after its kubelet's restart`);
    const after2 = (await pods()).find((p) => p.name === on2.name)!;
    assert.deepEqual([after2.ip, after2.cid], [on2.ip, on2.cid], 'same address, same sandbox');

    // containerd of node3 restarted: its shims keep the containers; the new daemon finds them, the
    // pod stays reachable, and the node still starts pods (the Deployment scaled up by one).
    const on3 = web.find((p) => p.node === 'node3')!;
    assert.match(await ok('containerd', 'restart', name, 'node3'), /containerd restarted/);
    assert.ok(await connect(web[0]!, `${on3.ip}:8080`), `${on3.name} reachable after node3's containerd restart`);
    assert.ok(await connect(on3, `${web[0]!.ip}:8080`), `exec into ${on3.name} (through the new containerd) and out`);
    await k('scale', 'deployment/web', '--replicas=4');
    await k('rollout', 'status', 'deployment/web', '--timeout=120s');

    // A Kubernetes NetworkPolicy, made with kubectl: ingress to app=web denied.
    const deny = { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name: 'deny-web', namespace: 'default' }, spec: { podSelector: { matchLabels: { app: 'web' } }, policyTypes: ['Ingress'] } };
    await apply(name, deny, 'create');
    const [a, b] = [web[0]!, web[2]!];
    let denied = false;
    for (let i = 0; i < 20 && !denied; i++) denied = !(await connect(a, `${b.ip}:8080`));
    assert.ok(denied, `${a.name} → ${b.name} denied by deny-web`);
    assert.equal(await connect(b, `${a.ip}:8080`), false, `${b.name} → ${a.name} denied too`);
    assert.ok(await connect(a, '10.233.0.1:443'), 'egress is not denied: the kubernetes Service answers');
    await k('delete', 'networkpolicy', 'deny-web');
    let allowed = false;
    for (let i = 0; i < 20 && !allowed; i++) allowed = await connect(a, `${b.ip}:8080`);
    assert.ok(allowed, `${a.name} → ${b.name} allowed again once the policy is deleted`);

    const final = state(name);
    await ok('down', name);
    assertGone(name, final);
  });

  it('--cni bridge: Debian\'s bridge + host-local on each node\'s podCIDR; pod→pod across nodes and pod→ClusterIP', async () => {
    const name = labName();
    await ok('up', '--kubernetes', '--cni', 'bridge', '--name', name, '--nodes', '2');
    const k = (...args: string[]) => ok('kubectl', name, '--', ...args);
    const nodes = JSON.parse(await k('get', 'nodes', '-o', 'json')).items as Obj[];
    const cidr: Record<string, string> = Object.fromEntries(nodes.map((n) => [n.metadata.name, n.spec.podCIDR]));
    assert.deepEqual(Object.keys(cidr), ['node1', 'node2']);
    for (const c of Object.values(cidr)) assert.match(c, /^10\.233\.\d+\.0\/24$/);
    await apply(name, spreadDeployment('echo', 2, 9000));
    await k('expose', 'deployment', 'echo', '--port=90', '--target-port=9000');
    await k('rollout', 'status', 'deployment/echo', '--timeout=120s');
    const pods = (JSON.parse(await k('get', 'pods', '-l', 'app=echo', '-o', 'json')).items as Obj[]).map((p) => ({ name: p.metadata.name, node: p.spec.nodeName, ip: p.status.podIP }));
    const inCidr = (ip: string, c: string) => ip.split('.').slice(0, 3).join('.') === c.split('.').slice(0, 3).join('.');
    for (const p of pods) assert.ok(inCidr(p.ip, cidr[p.node]!), `${p.name} on ${p.node}: ${p.ip} in the node's podCIDR ${cidr[p.node]}`);
    assert.deepEqual(pods.map((p) => p.node).sort(), ['node1', 'node2']);
    const clusterIP = JSON.parse(await k('get', 'service', 'echo', '-o', 'json')).spec.clusterIP as string;
    const conn = async (from: string, to: string) =>
      (await lab('kubectl', name, '--', 'exec', from, '--', '/agnhost', 'connect', to, '--timeout=2s', '--protocol=tcp')).code === 0;
    assert.ok(await conn(pods[0]!.name, `${pods[1]!.ip}:9000`), `${pods[0]!.name} (${pods[0]!.node}) → ${pods[1]!.ip} (${pods[1]!.node})`);
    for (const p of pods) assert.ok(await conn(p.name, `${clusterIP}:90`), `${p.name} → ${clusterIP}:90`);
    assert.equal(await conn(pods[0]!.name, `${clusterIP}:91`), false, 'a port the Service does not have does not answer');
    // A DaemonSet's hostPaths are the node's: /etc/cni/net.d (written), /lib/modules, a
    // DirectoryOrCreate and a FileOrCreate one (made in the node's filesystem, not the host's).
    await apply(name, {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: { name: 'hostpaths', namespace: 'kube-system' },
      spec: {
        selector: { matchLabels: { app: 'hostpaths' } },
        template: {
          metadata: { labels: { app: 'hostpaths' } },
          spec: {
            hostNetwork: true,
            terminationGracePeriodSeconds: 0,
            tolerations: [{ operator: 'Exists' }],
            containers: [{
              name: 'c', image: AGNHOST, imagePullPolicy: 'Never',
              command: ['/bin/sh', '-c', 'echo "$NODE" > /host-cni/written-by-$NODE && sleep 3600'],
              env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
              volumeMounts: [{ name: 'cni', mountPath: '/host-cni' }, { name: 'mods', mountPath: '/lib/modules', readOnly: true },
                { name: 'log', mountPath: '/var/log/calico/cni' }, { name: 'xt', mountPath: '/run/xtables.lock' }],
            }],
            volumes: [
              { name: 'cni', hostPath: { path: '/etc/cni/net.d' } },
              { name: 'mods', hostPath: { path: '/lib/modules' } },
              { name: 'log', hostPath: { path: '/var/log/calico/cni', type: 'DirectoryOrCreate' } },
              { name: 'xt', hostPath: { path: '/run/xtables.lock', type: 'FileOrCreate' } },
            ],
          },
        },
      },
    });
    await k('-n', 'kube-system', 'rollout', 'status', 'daemonset/hostpaths', '--timeout=120s');
    for (const n of ['node1', 'node2']) {
      let files = '';
      for (let i = 0; i < 50 && !files.includes(`written-by-${n}`); i++) {
        files = await ok('exec', name, n, '--', 'ls', '/etc/cni/net.d');
        if (!files.includes(`written-by-${n}`)) await sleep(100);
      }
      assert.deepEqual(files.trim().split('\n').sort(), ['10-bridge.conflist', `written-by-${n}`], `${n}'s /etc/cni/net.d holds what its pod wrote, and only that`);
      await ok('exec', name, n, '--', 'test', '-d', '/var/log/calico/cni');
    }
    // host-local's leases are the node's own (its /var/lib/cni).
    for (const p of pods) {
      const leases = (await ok('exec', name, p.node, '--', 'ls', '/var/lib/cni/networks/lab-bridge')).split('\n');
      assert.ok(leases.includes(p.ip), `${p.ip} leased in ${p.node}'s /var/lib/cni: ${leases.join(' ')}`);
    }
    const final = state(name);
    await ok('down', name);
    assertGone(name, final);
  });

  it('down cleans up after the CLI is killed in the middle of up --kubernetes (containers, mounts, cgroups, processes)', async () => {
    const name = labName();
    const child = spawn(LAB, ['up', '--kubernetes', '--cni', 'tortie', '--name', name, '--nodes', '2'], { env, stdio: 'ignore' });
    const stateFile = join(dir, name, 'state.json');
    const deadline = Date.now() + 120_000;
    for (;;) {
      const s = existsSync(stateFile) ? (() => { try { return state(name); } catch { return null; } })() : null;
      // The agents start once the kubelets run (CoreDNS's pods are being made by then).
      if (s?.processes.some((p) => p.role.startsWith('agent:'))) break;
      assert.ok(Date.now() < deadline, 'agents never recorded');
      await sleep(20);
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const s = state(name);
    assert.notEqual(s.status, 'up');
    assert.ok(cgroupDirs(name).length > 0, 'the nodes\' cgroup roots were made');
    await ok('down', name);
    assertGone(name, s);
  });

  it('the machine is as it was: vm./kernel./fs./user. sysctls, the root network namespace, the host\'s mounts', () => {
    const now = globalSysctls();
    const changed = Object.keys({ ...sysctlsBefore, ...now }).filter((k) => sysctlsBefore[k] !== now[k]).map((k) => `${k}: ${sysctlsBefore[k]} → ${now[k]}`);
    assert.deepEqual(changed, []);
    for (const [k, v] of Object.entries({ 'vm/overcommit_memory': sysctlsBefore['vm/overcommit_memory'], 'kernel/panic': sysctlsBefore['kernel/panic'], 'kernel/panic_on_oops': sysctlsBefore['kernel/panic_on_oops'] })) {
      assert.equal(now[k], v, k);
    }
    assert.deepEqual(rootNetns(), netnsBefore);
    assert.deepEqual(hostMounts(), mountsBefore);
    assert.deepEqual(hostPaths(), pathsBefore, 'no node path made on the host');
  });
});
