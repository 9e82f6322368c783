// `tortie-lab up --kubernetes`: a real Kubernetes cluster on the lab's nodes. The control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) runs in the first node's network
// and mount namespaces; every node runs containerd, the kubelet and kube-proxy (and, with
// `--cni tortie`, tortie-node as a host process; with `--cni manifest`, Tortie's DaemonSet from
// manifests/tortie.yaml) in its own network namespace and its own mount
// namespace (nodefs.ts), all started with `nsenter --net --mount` (not `ip netns exec`, which
// remounts /sys and hides the cgroup hierarchies) and recorded by PID.
import { spawn } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { release } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import type { LabState, ProcRecord } from '../state.js';
import { writeState, labsRoot } from '../state.js';
import { killPid, pidAlive, procStartTime, run } from '../sys.js';
import type { NodePlan } from '../topology.js';
import { agentEnv, poolResource } from '../topology.js';
import {
  AGNHOST_IMAGE,
  API_PORT,
  API_SERVICE_IP,
  CLUSTER_DOMAIN,
  type CniKind,
  NODE_PATHS,
  PAUSE_IMAGE,
  POD_CIDR,
  SERVICE_CIDR,
  bridgeConflist,
  containerdConfig,
  kubeProxyConfig,
  kubeletConfig,
  schedulerConfig,
  tortieConflist,
} from './configs.js';
import { COREDNS_IMAGE, DNS_SERVICE_IP, corednsManifest } from './coredns.js';
import { cgroupPids, cgroupRootName, holderArgv, makeCgroupRoot, nodeFsDir, prepareNodeFs, removeCgroupRoot } from './nodefs.js';
import { type ClusterPKI, kubeconfigFor, makeClusterPKI } from './pki.js';

export const NSENTER = '/usr/bin/nsenter';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const ROOT = new URL('../../../../', import.meta.url).pathname;
const BIN = (name: string) => join(ROOT, 'bin', name);
const DEBIAN_CNI = '/usr/lib/cni';

export interface KubeState {
  cni: CniKind;
  /** The node whose namespaces hold the control plane. */
  master: string;
  server: string;
  /** <lab>/kube: PKI, kubeconfigs, control-plane data and logs. */
  dir: string;
  adminKubeconfig: string;
  /** Node → its cgroup root (recorded before it is made). */
  cgroupRoots: Record<string, string>;
  /** Notes printed at up (e.g. no IPVS). */
  notes: string[];
}

/** Tortie's version (package.json): its image is tortie.local/tortie:<version>. */
export function tortieVersion(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Tortie's own image, as manifests/tortie.yaml names it. */
export function tortieImage(): string {
  return `tortie.local/tortie:${tortieVersion()}`;
}

/** Where scripts/build-kubernetes.sh and scripts/build-images.sh cache what the cluster runs. */
export function kubeBinaries(env: NodeJS.ProcessEnv = process.env) {
  const cache = env.TORTIE_CACHE || '/var/cache/tortie';
  const k = (n: string) => join(cache, 'k8s', env.TORTIE_K8S_VERSION || 'v1.34.4', 'bin', n);
  return {
    kubeApiserver: k('kube-apiserver'),
    kubeControllerManager: k('kube-controller-manager'),
    kubeScheduler: k('kube-scheduler'),
    kubelet: k('kubelet'),
    kubeProxy: k('kube-proxy'),
    kubectl: k('kubectl'),
    etcd: join(cache, 'etcd', env.TORTIE_ETCD_VERSION || 'v3.6.16', 'bin', 'etcd'),
    containerd: '/usr/bin/containerd',
    ctr: '/usr/bin/ctr',
    images: [join(cache, 'images', 'pause-3.10.1.tar'), join(cache, 'images', 'agnhost-2.56.tar'), join(cache, 'images', 'coredns-v1.12.1.tar'), join(cache, 'images', `tortie-${tortieVersion()}.tar`)],
  };
}

/** What `up --kubernetes` needs that is not there (empty when all is). */
export function missingForKube(cni: CniKind): string[] {
  const b = kubeBinaries();
  const need = [b.kubeApiserver, b.kubeControllerManager, b.kubeScheduler, b.kubelet, b.kubeProxy, b.kubectl, b.etcd, b.containerd, b.ctr, ...b.images, NSENTER, '/usr/bin/unshare', '/usr/sbin/runc', '/usr/sbin/nft'];
  if (cni === 'bridge') need.push(join(DEBIAN_CNI, 'bridge'), join(DEBIAN_CNI, 'host-local'));
  need.push(join(DEBIAN_CNI, 'loopback'));
  return need.filter((p) => !existsSync(p));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function nodeDir(s: LabState, node: string): string {
  return join(s.dir, 'nodes', node);
}

function masterOf(s: LabState): NodePlan {
  return s.plan.nodes.find((n) => n.name === s.kube!.master)!;
}

function holderOf(s: LabState, node: string): ProcRecord | undefined {
  return s.processes.find((p) => p.role === `mountns:${node}`);
}

/** argv prefix entering a node's network and mount namespaces. */
export function nodeEnter(s: LabState, node: NodePlan): string[] {
  const h = holderOf(s, node.name);
  if (!h || !pidAlive(h.pid, h.startTime)) throw new Error(`the mount namespace of ${node.name} is gone (holder not running)`);
  return [NSENTER, `--net=/run/netns/${node.ns}`, `--mount=/proc/${h.pid}/ns/mnt`, '--'];
}

/** Starts argv detached in the node's namespaces, output to logFile; recorded in the state. */
function startInNode(s: LabState, node: NodePlan, role: string, argv: string[], env: NodeJS.ProcessEnv, logFile: string, mount = true): ProcRecord {
  const prefix = mount ? nodeEnter(s, node) : [NSENTER, `--net=/run/netns/${node.ns}`, '--'];
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(prefix[0]!, [...prefix.slice(1), ...argv], { env: { PATH, ...env }, detached: true, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new Error(`could not start ${argv[0]} on ${node.name}`);
    child.unref();
    const rec: ProcRecord = { pid: child.pid, role, startTime: procStartTime(child.pid), log: logFile };
    s.processes.push(rec);
    writeState(s);
    return rec;
  } finally {
    closeSync(fd);
  }
}

/** The real kubectl with the admin kubeconfig, in the master node's network namespace. */
export function kubectlArgv(s: LabState): string[] {
  const m = masterOf(s);
  return [NSENTER, `--net=/run/netns/${m.ns}`, '--', kubeBinaries().kubectl, '--kubeconfig', s.kube!.adminKubeconfig];
}

/** kubectl's environment: its discovery cache in the lab's kube dir (not in the working directory). */
export function kubectlEnv(s: LabState): NodeJS.ProcessEnv {
  return { PATH, HOME: s.kube!.dir };
}

export async function kubectl(s: LabState, args: string[], input?: string, timeoutMs = 120_000): Promise<string> {
  const r = await run([...kubectlArgv(s), ...args], { input, env: kubectlEnv(s), timeoutMs });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

function accepts(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const c = createConnection({ path });
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

async function until(what: string, rec: ProcRecord | undefined, timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (rec && !pidAlive(rec.pid, rec.startTime)) throw new Error(`${what}: ${rec.role} (pid ${rec.pid}) exited:\n${tail(rec.log!)}`);
    if (Date.now() > deadline) throw new Error(`${what}: not after ${(timeoutMs / 1000).toFixed(0)}s${rec ? `:\n${tail(rec.log!)}` : ''}`);
    await sleep(200);
  }
}

type Log = (line: string) => void;

async function step<T>(log: Log, label: string, fn: () => Promise<T>, detail?: (t: T) => string): Promise<T> {
  const t0 = Date.now();
  const r = await fn();
  const extra = detail ? detail(r) : '';
  log(`  ${label}${extra ? ': ' + extra : ''} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
  return r;
}

/**
 * Why this kernel cannot run kube-proxy's ipvs mode (the seed's), or undefined if it can. Only
 * looked at (the running kernel's config, its modules), never loaded.
 */
export function ipvsMissing(): string | undefined {
  if (existsSync('/proc/net/ip_vs') || existsSync('/sys/module/ip_vs')) return undefined;
  try {
    const config = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
    if (/^CONFIG_IP_VS=[ym]$/m.test(config)) return undefined;
    return 'CONFIG_IP_VS is not set in /proc/config.gz';
  } catch {
    const rel = release();
    if (existsSync(`/lib/modules/${rel}/modules.dep`) && /ip_vs\.ko/.test(readFileSync(`/lib/modules/${rel}/modules.dep`, 'utf8'))) return undefined;
    return `no ip_vs module for kernel ${rel}`;
  }
}

// ---------------------------------------------------------------------------------------------
// up

export interface KubeUpOptions {
  cni: CniKind;
  waitMs: number;
}

/** Builds the cluster on the lab's nodes (namespaces and underlay already made). */
export async function upKube(s: LabState, opts: KubeUpOptions, log: Log): Promise<void> {
  const missing = missingForKube(opts.cni);
  if (missing.length > 0) throw new Error(`up --kubernetes needs: ${missing.join(', ')} (scripts/build-kubernetes.sh, scripts/build-images.sh)`);
  const master = s.plan.nodes[0]!;
  const kdir = join(s.dir, 'kube');
  mkdirSync(kdir, { recursive: true });
  s.kube = {
    cni: opts.cni,
    master: master.name,
    server: `https://${master.address}:${API_PORT}`,
    dir: kdir,
    adminKubeconfig: join(kdir, 'admin.conf'),
    cgroupRoots: {},
    notes: [],
  };
  const noIPVS = ipvsMissing();
  s.kube.notes.push(`kube-proxy: nftables mode (${noIPVS ? `this kernel has no IPVS: ${noIPVS}` : 'IPVS is available but not used'}; the seed runs kube-proxy in IPVS mode)`);
  s.kube.notes.push(`services ${SERVICE_CIDR}, pods ${POD_CIDR} (kubespray defaults), CNI ${opts.cni}`);
  writeState(s);
  for (const n of s.kube.notes) log(`  note: ${n}`);

  const pki = await step(log, 'pki', () =>
    makeClusterPKI(join(kdir, 'pki'), {
      nodes: s.plan.nodes.map((n) => n.name),
      sanIPs: [master.address, API_SERVICE_IP, '127.0.0.1'],
      sanDNS: ['kubernetes', 'kubernetes.default', 'kubernetes.default.svc', `kubernetes.default.svc.${CLUSTER_DOMAIN}`, 'localhost', master.name],
    }), () => `CA + apiserver + ${s.plan.nodes.length + 6} client identities + service-account key`);
  for (const id of ['admin', 'controller-manager', 'scheduler', 'kube-proxy', 'tortie-node']) {
    writeFileSync(join(kdir, `${id}.conf`), kubeconfigFor(pki, id, s.kube.server), { mode: 0o600 });
  }

  await step(log, 'node filesystems', () => Promise.all(s.plan.nodes.map((n) => startMountNs(s, n))), () =>
    `a mount namespace per node (standard paths bound from ${join(s.dir, 'nodes', '<node>', 'fs')}), cgroup roots ${Object.values(s.kube!.cgroupRoots).join(', ')}`);
  await step(log, 'control plane', () => startControlPlane(s, master, pki), () => `etcd, kube-apiserver ${s.kube!.server}, controller-manager, scheduler in ${master.ns}`);
  await step(log, 'containerd', () => Promise.all(s.plan.nodes.map((n) => startContainerd(s, n))), () => `${s.plan.nodes.length} × containerd 1.6 (pause 3.10.1, agnhost 2.56, coredns v1.12.1, ${tortieImage()} imported)`);
  await step(log, 'kubelets', () => startKubelets(s, s.plan.nodes, pki), () => `${s.plan.nodes.length} registered`);
  await step(log, 'kube-proxy', async () => {
    for (const n of s.plan.nodes) startKubeProxy(s, n);
  }, () => 'nftables mode on every node');
  await step(log, 'cluster add-ons', async () => {
    // kubespray's node roles: the masters labelled (not tainted: the seed's pods run on masters too).
    const masters = s.plan.nodes.filter((n) => /master/.test(n.name));
    if (masters.length > 0) await kubectl(s, ['label', 'node', ...masters.map((n) => n.name), 'node-role.kubernetes.io/control-plane=']);
    await kubectl(s, ['apply', '-f', '-'], JSON.stringify(corednsManifest(Math.min(2, s.plan.nodes.length))));
  }, () => `CoreDNS (Service coredns ${DNS_SERVICE_IP}, the kubelets' clusterDNS; Pending until a CNI is installed)`);
  if (opts.cni === 'tortie') await step(log, 'cni tortie', () => installTortie(s, s.plan.nodes), () => 'CRDs, 10-tortie.conflist, tortie-node (kubernetes datastore) on every node');
  else if (opts.cni === 'manifest') await step(log, 'cni manifest', () => installManifest(s, opts.waitMs, log), () => `kubectl apply -f manifests/tortie.yaml${opts.waitMs > 0 ? ': tortie-node Ready on every node' : ''}`);
  else if (opts.cni === 'bridge') await step(log, 'cni bridge', () => installBridge(s), () => 'bridge + host-local on each node\'s podCIDR, routes between nodes');
  if (opts.cni !== 'none' && opts.waitMs > 0) {
    const t = `--timeout=${Math.ceil(opts.waitMs / 1000)}s`;
    await step(log, 'nodes Ready', () => kubectl(s, ['wait', '--for=condition=Ready', 'node', '--all', t], undefined, opts.waitMs + 15_000));
    await step(log, 'CoreDNS', () => kubectl(s, ['-n', 'kube-system', 'rollout', 'status', 'deployment/coredns', t], undefined, opts.waitMs + 15_000), () => 'available');
  }
  const nodes = await kubectl(s, ['get', 'nodes', '-o', 'wide']);
  for (const l of nodes.trimEnd().split('\n')) log(`    ${l}`);
}

/** The node's mount namespace (holder process) and cgroup root; writes its standard files. */
async function startMountNs(s: LabState, node: NodePlan): Promise<void> {
  const dir = nodeDir(s, node.name);
  mkdirSync(dir, { recursive: true });
  prepareNodeFs(dir);
  const logFile = join(dir, 'mountns.log');
  writeFileSync(logFile, '');
  const rec = startInNode(s, node, `mountns:${node.name}`, holderArgv(dir, labsRoot()), {}, logFile, false);
  await until(`mount namespace of ${node.name}`, rec, 15_000, () => readFileSync(logFile, 'utf8').includes('mountns-ready'));
  const root = cgroupRootName(s.plan.prefix, node.name);
  s.kube!.cgroupRoots[node.name] = root;
  writeState(s);
  makeCgroupRoot(root);
  // The node forwards (its pods' traffic): a per-namespace setting of the node's own network.
  const r = await run([NSENTER, `--net=/run/netns/${node.ns}`, '--', '/usr/sbin/sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  if (r.code !== 0) throw new Error(`ip_forward in ${node.ns}: ${r.stderr.trim()}`);
}

async function startControlPlane(s: LabState, master: NodePlan, pki: ClusterPKI): Promise<void> {
  const b = kubeBinaries();
  const k = s.kube!;
  const peer = 'http://127.0.0.1:2380';
  startInNode(s, master, 'kube:etcd', [b.etcd, '--name', master.name, '--data-dir', join(k.dir, 'etcd'),
    '--listen-client-urls', 'http://127.0.0.1:2379', '--advertise-client-urls', 'http://127.0.0.1:2379',
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `${master.name}=${peer}`,
    '--initial-cluster-state', 'new', '--unsafe-no-fsync', '--log-level', 'warn'], {}, join(k.dir, 'etcd.log'));
  const api = startInNode(s, master, 'kube:apiserver', [b.kubeApiserver,
    `--advertise-address=${master.address}`, '--bind-address=0.0.0.0', `--secure-port=${API_PORT}`,
    '--etcd-servers=http://127.0.0.1:2379',
    `--tls-cert-file=${pki.apiserver}`, `--tls-private-key-file=${pki.apiserverKey}`, `--client-ca-file=${pki.ca}`,
    `--kubelet-client-certificate=${pki.client('apiserver-kubelet-client').cert}`, `--kubelet-client-key=${pki.client('apiserver-kubelet-client').key}`,
    '--kubelet-preferred-address-types=InternalIP,Hostname',
    `--service-account-issuer=https://kubernetes.default.svc.${CLUSTER_DOMAIN}`, `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`, `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--authorization-mode=Node,RBAC', '--enable-admission-plugins=NodeRestriction', '--allow-privileged=true',
    `--cert-dir=${join(k.dir, 'apiserver-certs')}`, '--profiling=false', '--v=0'], {}, join(k.dir, 'kube-apiserver.log'));
  await until('kube-apiserver /readyz', api, 120_000, async () => {
    const r = await run([...kubectlArgv(s), 'get', '--raw', '/readyz'], { env: kubectlEnv(s), timeoutMs: 10_000 });
    return r.code === 0 && r.stdout.trim() === 'ok';
  });
  const cm = join(k.dir, 'controller-manager.conf');
  startInNode(s, master, 'kube:controller-manager', [b.kubeControllerManager, `--kubeconfig=${cm}`, `--authentication-kubeconfig=${cm}`,
    `--authorization-kubeconfig=${cm}`, `--service-account-private-key-file=${pki.saKey}`, `--root-ca-file=${pki.ca}`,
    `--cluster-signing-cert-file=${pki.ca}`, `--cluster-signing-key-file=${pki.caKey}`, '--use-service-account-credentials=true',
    '--controllers=*,bootstrapsigner,tokencleaner', '--leader-elect=false', `--service-cluster-ip-range=${SERVICE_CIDR}`,
    '--allocate-node-cidrs=true', `--cluster-cidr=${POD_CIDR}`, '--node-cidr-mask-size=24', `--cluster-name=${CLUSTER_DOMAIN}`,
    '--bind-address=127.0.0.1', '--v=0'], {}, join(k.dir, 'kube-controller-manager.log'));
  const schedCfg = join(k.dir, 'kube-scheduler.yaml');
  writeFileSync(schedCfg, JSON.stringify(schedulerConfig(join(k.dir, 'scheduler.conf')), null, 2) + '\n');
  const sc = join(k.dir, 'scheduler.conf');
  startInNode(s, master, 'kube:scheduler', [b.kubeScheduler, `--config=${schedCfg}`, `--authentication-kubeconfig=${sc}`,
    `--authorization-kubeconfig=${sc}`, '--bind-address=127.0.0.1', '--v=0'], {}, join(k.dir, 'kube-scheduler.log'));
  // As kubeadm and local-up-cluster: the apiserver's kubelet-client identity may use the kubelet API (exec, logs).
  await kubectl(s, ['create', 'clusterrolebinding', 'kube-apiserver-kubelet-admin', '--clusterrole=system:kubelet-api-admin', '--user=kube-apiserver']);
}

async function startContainerd(s: LabState, node: NodePlan): Promise<void> {
  const dir = nodeDir(s, node.name);
  const fs = nodeFsDir(dir);
  writeFileSync(join(fs, 'etc/containerd/config.toml'), containerdConfig());
  const b = kubeBinaries();
  await runContainerd(s, node);
  const sock = join(fs, NODE_PATHS.containerdSocket);
  for (const img of b.images) {
    const r = await run([b.ctr, '--address', sock, '-n', 'k8s.io', 'images', 'import', img], { timeoutMs: 180_000 });
    if (r.code !== 0) throw new Error(`ctr images import ${img} on ${node.name}: ${(r.stderr || r.stdout).trim()}`);
  }
  const r = await run([b.ctr, '--address', sock, '-n', 'k8s.io', 'images', 'ls', '-q']);
  for (const want of [PAUSE_IMAGE, AGNHOST_IMAGE, COREDNS_IMAGE, tortieImage()]) {
    if (!r.stdout.split('\n').includes(want)) throw new Error(`${want} not in ${node.name}'s containerd after import: ${r.stdout}`);
  }
  // Every CNI configuration needs loopback (containerd sets up lo with it) and the chained plugins.
  for (const p of ['loopback', 'portmap', 'bandwidth', 'bridge', 'host-local']) {
    const src = join(DEBIAN_CNI, p);
    if (existsSync(src)) copyFileSync(src, join(fs, NODE_PATHS.cniBinDir, p));
  }
}

/** Starts the node's containerd and waits until its socket answers. */
async function runContainerd(s: LabState, node: NodePlan): Promise<ProcRecord> {
  const dir = nodeDir(s, node.name);
  const sock = join(nodeFsDir(dir), NODE_PATHS.containerdSocket);
  const rec = startInNode(s, node, `containerd:${node.name}`, [kubeBinaries().containerd, '--config', NODE_PATHS.containerdConfig], {}, join(dir, 'containerd.log'));
  await until(`containerd on ${node.name}`, rec, 30_000, () => accepts(sock));
  return rec;
}

function writeKubeletFiles(s: LabState, node: NodePlan, pki: ClusterPKI): void {
  const fs = nodeFsDir(nodeDir(s, node.name));
  const kube = join(fs, NODE_PATHS.kubernetes);
  mkdirSync(join(kube, 'pki'), { recursive: true });
  copyFileSync(pki.ca, join(kube, 'pki', 'ca.crt'));
  writeFileSync(join(kube, 'kubelet.conf'), kubeconfigFor(pki, `kubelet-${node.name}`, s.kube!.server), { mode: 0o600 });
  writeFileSync(join(kube, 'kube-proxy.conf'), kubeconfigFor(pki, 'kube-proxy', s.kube!.server), { mode: 0o600 });
  writeFileSync(join(kube, 'kubelet-config.yaml'), JSON.stringify(kubeletConfig({ cgroupRoot: s.kube!.cgroupRoots[node.name]!, clusterDNS: [DNS_SERVICE_IP] }), null, 2) + '\n');
  writeFileSync(join(kube, 'kube-proxy-config.yaml'), JSON.stringify(kubeProxyConfig(node.name), null, 2) + '\n');
}

function startKubelet(s: LabState, node: NodePlan): ProcRecord {
  return startInNode(s, node, `kubelet:${node.name}`, [kubeBinaries().kubelet,
    `--config=${NODE_PATHS.kubernetes}/kubelet-config.yaml`, `--kubeconfig=${NODE_PATHS.kubernetes}/kubelet.conf`,
    `--hostname-override=${node.name}`, `--node-ip=${node.address}`, '--v=1'], {}, join(nodeDir(s, node.name), 'kubelet.log'));
}

async function startKubelets(s: LabState, nodes: readonly NodePlan[], pki: ClusterPKI): Promise<void> {
  const recs = nodes.map((n) => {
    writeKubeletFiles(s, n, pki);
    return { n, rec: startKubelet(s, n) };
  });
  await Promise.all(recs.map(({ n, rec }) => until(`kubelet of ${n.name} registers its Node`, rec, 120_000, async () => {
    const r = await run([...kubectlArgv(s), 'get', 'node', n.name, '-o', 'name'], { env: kubectlEnv(s), timeoutMs: 10_000 });
    return r.code === 0;
  })));
}

function startKubeProxy(s: LabState, node: NodePlan): ProcRecord {
  return startInNode(s, node, `kube-proxy:${node.name}`, [kubeBinaries().kubeProxy, `--config=${NODE_PATHS.kubernetes}/kube-proxy-config.yaml`, '--v=1'], {},
    join(nodeDir(s, node.name), 'kube-proxy.log'));
}

/** The lab's stand-in for Tortie's DaemonSet: CRDs, RBAC, conflist + binaries, tortie-node per node. */
async function installTortie(s: LabState, nodes: readonly NodePlan[]): Promise<void> {
  await kubectl(s, ['apply', '-f', '-'], readFileSync(join(ROOT, 'manifests', 'crds.yaml'), 'utf8'));
  await kubectl(s, ['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
  await kubectl(s, ['create', 'clusterrolebinding', 'tortie-lab-node', '--clusterrole=cluster-admin', '--user=tortie-node']);
  // The lab's pool (the seed's `default-pool` with --preset seed), before any agent would make its default.
  const m = masterOf(s);
  const pool = await run([NSENTER, `--net=/run/netns/${m.ns}`, '--', BIN('tortiectl'), 'apply', '-f', '-'], {
    input: JSON.stringify(poolResource(s.plan.pool)),
    env: { PATH, DATASTORE_TYPE: 'kubernetes', KUBECONFIG: s.kube!.adminKubeconfig },
  });
  if (pool.code !== 0) throw new Error(`tortiectl apply IPPool ${s.plan.pool.name}: ${(pool.stderr || pool.stdout).trim()}`);
  const kubeconfig = readFileSync(join(s.kube!.dir, 'tortie-node.conf'), 'utf8');
  const recs: { n: NodePlan; rec: ProcRecord }[] = [];
  for (const n of nodes) {
    const fs = nodeFsDir(nodeDir(s, n.name));
    for (const b of ['tortie', 'tortie-ipam']) {
      const dst = join(fs, NODE_PATHS.cniBinDir, b);
      rmSync(dst, { force: true });
      symlinkSync(BIN(b), dst);
    }
    writeFileSync(join(fs, NODE_PATHS.cniConfDir, 'tortie-kubeconfig'), kubeconfig, { mode: 0o600 });
    const extra = ['portmap', 'bandwidth'].filter((p) => existsSync(join(DEBIAN_CNI, p)));
    // Written after the binaries, as install-cni does: the conflist makes the node Ready.
    const env: NodeJS.ProcessEnv = {
      ...agentEnv(s.plan, n, { runDir: NODE_PATHS.calicoRun, stateDir: NODE_PATHS.calicoState }),
      DATASTORE_TYPE: 'kubernetes',
      KUBECONFIG: join(s.kube!.dir, 'tortie-node.conf'),
      // calico.yaml's cluster_type (kubespray's for the seed); the agent adds kdd.
      CLUSTER_TYPE: `${s.plan.preset === 'seed' ? 'kubespray' : 'k8s'},${s.plan.mode === 'bgp' ? 'bgp' : 'vxlan'}`,
    };
    const log = join(nodeDir(s, n.name), 'agent.log');
    recs.push({ n, rec: startInNode(s, n, `agent:${n.name}`, [BIN('tortie-node')], env, log) });
    writeFileSync(join(fs, NODE_PATHS.cniConfDir, '10-tortie.conflist'), JSON.stringify(tortieConflist(n.name, extra), null, 2) + '\n');
  }
  await Promise.all(recs.map(({ n, rec }) =>
    until(`tortie-node on ${n.name} opens its CNI socket`, rec, 60_000, () => accepts(join(nodeFsDir(nodeDir(s, n.name)), 'var/run/calico/cni.sock')))));
}

/** This tree's manifest. */
export function manifestPath(): string {
  return join(ROOT, 'manifests', 'tortie.yaml');
}

/**
 * Whether the cached image was built from this tree (its build stamp records the content key of
 * images/tortie-rootfs.mjs): undefined if so, else why not. Only read, never rebuilt here (the
 * cache is shared; scripts/build-images.sh --only tortie rebuilds it).
 */
export async function tortieImageStale(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const cache = env.TORTIE_CACHE || '/var/cache/tortie';
  const stampFile = join(cache, 'images', `.tortie-${tortieVersion()}.tar.stamp`);
  let stamp: string;
  try {
    stamp = readFileSync(stampFile, 'utf8');
  } catch {
    return `no build stamp ${stampFile}`;
  }
  const r = await run([process.execPath, join(ROOT, 'images', 'tortie-rootfs.mjs'), '--root', ROOT, '--key'], { timeoutMs: 60_000 });
  if (r.code !== 0) return `images/tortie-rootfs.mjs --key failed: ${r.stderr.trim()}`;
  const key = r.stdout.trim();
  return stamp.includes(`content=${key}`) ? undefined : `this tree's content key ${key.slice(0, 12)} is not the one it was built from`;
}

/**
 * Tortie as an operator installs it: `kubectl apply -f manifests/tortie.yaml` (its image is already in
 * every node's containerd), then, with a wait, the DaemonSet rolled out (every tortie-node pod Ready:
 * its readiness probe passes).
 */
async function installManifest(s: LabState, waitMs: number, log: Log): Promise<void> {
  const stale = await tortieImageStale();
  if (stale) {
    const note = `${tortieImage()} may not be this build (${stale}): scripts/build-images.sh --only tortie`;
    s.kube!.notes.push(note);
    writeState(s);
    log(`  note: ${note}`);
  }
  await kubectl(s, ['apply', '-f', manifestPath()]);
  if (waitMs > 0) {
    await kubectl(s, ['-n', 'kube-system', 'rollout', 'status', 'daemonset/tortie-node', `--timeout=${Math.ceil(waitMs / 1000)}s`], undefined, waitMs + 15_000);
  }
}

/** Debian's bridge + host-local on each node's podCIDR (allocated by the controller-manager). */
async function installBridge(s: LabState): Promise<void> {
  const cidrs: Record<string, string> = {};
  await until('podCIDR on every Node', undefined, 60_000, async () => {
    const out = JSON.parse(await kubectl(s, ['get', 'nodes', '-o', 'json'])) as { items: { metadata: { name: string }; spec: { podCIDR?: string } }[] };
    for (const it of out.items) if (it.spec.podCIDR) cidrs[it.metadata.name] = it.spec.podCIDR;
    return s.plan.nodes.every((n) => cidrs[n.name]);
  });
  for (const n of s.plan.nodes) {
    const lines = s.plan.nodes.filter((o) => o !== n).map((o) => `route replace ${cidrs[o.name]} via ${o.address}`);
    const r = await run(['/usr/sbin/ip', '-n', n.ns, '-batch', '-'], { input: lines.join('\n') + '\n' });
    if (r.code !== 0) throw new Error(`routes in ${n.ns}: ${r.stderr.trim()}`);
    const fs = nodeFsDir(nodeDir(s, n.name));
    writeFileSync(join(fs, NODE_PATHS.cniConfDir, '10-bridge.conflist'), JSON.stringify(bridgeConflist(cidrs[n.name]!), null, 2) + '\n');
  }
}

// ---------------------------------------------------------------------------------------------
// operations on a running cluster

/** Stops a node's kubelet by its recorded PID and starts a new one (its pods keep running). */
export async function restartKubelet(s: LabState, node: NodePlan): Promise<ProcRecord> {
  await stopRole(s, `kubelet:${node.name}`);
  return startKubelet(s, node);
}

/**
 * Stops a node's containerd by its recorded PID (its shims, and so the containers, keep running)
 * and starts a new one, which finds them again.
 */
export async function restartContainerd(s: LabState, node: NodePlan): Promise<ProcRecord> {
  await stopRole(s, `containerd:${node.name}`);
  rmSync(join(nodeFsDir(nodeDir(s, node.name)), NODE_PATHS.containerdSocket), { force: true });
  return runContainerd(s, node);
}

async function stopRole(s: LabState, role: string): Promise<void> {
  for (const p of s.processes.filter((x) => x.role === role)) await killPid(p.pid, p.startTime, 5000);
  s.processes = s.processes.filter((x) => x.role !== role);
  writeState(s);
}

// ---------------------------------------------------------------------------------------------
// down

/**
 * Before the lab's processes are stopped: the kubelets (so nothing restarts containers), then every
 * process in the nodes' own cgroup roots (the containers), SIGKILL, until none is left.
 */
export async function preDownKube(s: LabState): Promise<number> {
  if (!s.kube) return 0;
  let killed = 0;
  for (const p of s.processes.filter((x) => x.role.startsWith('kubelet:'))) if (await killPid(p.pid, p.startTime, 3000)) killed++;
  const roots = Object.values(s.kube.cgroupRoots);
  for (let i = 0; i < 50; i++) {
    const pids = roots.flatMap((r) => cgroupPids(r));
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
        killed++;
      } catch {
        // gone
      }
    }
    await sleep(100);
  }
  return killed;
}

/** After: the cgroup roots (retried while the last processes exit). Returns what is left. */
export async function postDownKube(s: LabState): Promise<string[]> {
  if (!s.kube) return [];
  let left: string[] = [];
  for (let i = 0; i < 50; i++) {
    left = Object.values(s.kube.cgroupRoots).flatMap((r) => removeCgroupRoot(r));
    if (left.length === 0) break;
    await sleep(100);
  }
  return left;
}

