// The verbs of tortie-lab: up, pod add/del, exec, probe, ctl, down, list.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { readAgentOverrides } from './agent-overrides.js';
import { type Conflist, runConflistAdd, runConflistDel } from './cni-runner.js';
import { buildUnderlay, hostLines, makePodNs, namespaceLines } from './net.js';
import { type Expectation, type Matrix, formatMatrix, matrixJson, mismatches, summary } from '../../libcalico-go/lib/policy/matrix.js';
import { notReadyReporters, procRoutes, routesTo } from './readiness.js';
import { type DatastoreInfo, type LabState, type PodRecord, type ProcRecord, labDir, listLabNames, mustReadState, readState, withLock, writeState } from './state.js';
import * as kube from './kube/cluster.js';
import * as kdd from './kdd.js';
import { CNI_KINDS, type CniKind } from './kube/configs.js';
import { IP, ipBatch, killPid, mapLimit, netnsList, netnsPids, pidAlive, run, spawnInNs } from './sys.js';
import {
  type DatastoreKind,
  type Mode,
  type NodePlan,
  type PodRef,
  type Preset,
  type ServeSpec,
  agentEnv,
  containerId,
  parsePodRef,
  planLab,
  planNamespaces,
  podKey,
  podNsName,
  poolResource,
  resolveNodeName,
  validateNodeName,
} from './topology.js';

export const ROOT = new URL('../../../', import.meta.url).pathname;
export const BIN = (name: string) => join(ROOT, 'bin', name);
const NSAGENT = new URL('./nsagent.js', import.meta.url).pathname;
const PODSERVER = new URL('./podserver.js', import.meta.url).pathname;
const NODE = process.execPath;
const ETCD = '/usr/bin/etcd';
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const CNI_DIR = '/usr/lib/cni';

export type Log = (line: string) => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function nodeDirs(s: LabState, node: string) {
  const base = join(s.dir, 'nodes', node);
  return { base, runDir: join(base, 'run'), stateDir: join(base, 'state'), log: join(base, 'agent.log'), socket: join(base, 'run', 'cni.sock') };
}

function datastoreEnv(d: DatastoreInfo): Record<string, string> {
  if (d.type === 'kubernetes') return { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: d.kubeconfig! };
  return d.type === 'embedded' ? { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: d.path! } : { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: d.endpoints! };
}

function ctlConfig(d: DatastoreInfo): string {
  if (d.type === 'kubernetes') return `apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n  datastoreType: kubernetes\n  kubeconfig: ${d.kubeconfig}\n`;
  const spec = d.type === 'embedded' ? `  datastoreType: embedded\n  datastorePath: ${d.path}\n` : `  datastoreType: etcdv3\n  etcdEndpoints: ${d.endpoints}\n`;
  return `apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nmetadata: {}\nspec:\n${spec}`;
}

/** argv prefix for tortiectl against the lab's datastore (inside a namespace that reaches it). */
function ctlArgv(s: LabState, node?: NodePlan): { argv: string[]; env: NodeJS.ProcessEnv } {
  const env: NodeJS.ProcessEnv = { PATH, ...datastoreEnv(s.datastore) };
  const cfg = ['--config', join(s.dir, 'tortiectl.cfg')];
  if (s.kube) {
    // The API server is on the master node's underlay address; a node's agent files are at the
    // standard paths of its own mount namespace.
    if (node) {
      // The lab's stand-in agent uses Calico's directories; the manifest's DaemonSet Tortie's own.
      const own = s.kube.cni === 'manifest';
      Object.assign(env, { TORTIE_RUN_DIR: own ? '/var/run/tortie' : '/var/run/calico', TORTIE_STATE_DIR: own ? '/var/lib/tortie' : '/var/lib/calico', NODENAME: node.name });
      return { argv: [...kube.nodeEnter(s, node), BIN('tortiectl'), ...cfg], env };
    }
    const m = s.plan.nodes.find((n) => n.name === s.kube!.master)!;
    return { argv: [kube.NSENTER, `--net=/run/netns/${m.ns}`, '--', BIN('tortiectl'), ...cfg], env };
  }
  if (node) {
    env.TORTIE_RUN_DIR = nodeDirs(s, node.name).runDir;
    env.TORTIE_STATE_DIR = nodeDirs(s, node.name).stateDir;
    env.NODENAME = node.name;
    return { argv: [IP, 'netns', 'exec', node.ns, BIN('tortiectl'), ...cfg], env };
  }
  // etcd listens on the underlay only: reach it from its own namespace.
  if (s.plan.etcdNs) return { argv: [IP, 'netns', 'exec', s.plan.etcdNs, BIN('tortiectl'), ...cfg], env };
  return { argv: [BIN('tortiectl'), ...cfg], env };
}

/** tortiectl against the lab's datastore: its exit code and output, whatever the code. */
export async function ctlRun(s: LabState, args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const { argv, env } = ctlArgv(s);
  return run([...argv, ...args], { env, input });
}

export async function ctlCapture(s: LabState, args: string[], input?: string): Promise<string> {
  const { argv, env } = ctlArgv(s);
  const r = await run([...argv, ...args], { env, input });
  if (r.code !== 0) throw new Error(`tortiectl ${args.join(' ')} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
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

async function step<T>(log: Log, label: string, fn: () => Promise<T>, detail?: (t: T) => string): Promise<T> {
  const t0 = Date.now();
  const r = await fn();
  const extra = detail ? detail(r) : '';
  log(`  ${label}${extra ? ': ' + extra : ''} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
  return r;
}

// ---------------------------------------------------------------------------------------------
// up

export interface UpOptions {
  name: string;
  nodes?: number;
  preset?: Preset;
  mode?: Mode;
  datastore?: DatastoreKind;
  /** How long to wait for every agent to report ready; 0 = do not wait. Default DEFAULT_WAIT_MS. */
  waitMs?: number;
  /** A real Kubernetes cluster on the nodes (lab/pkg/kube/). */
  kubernetes?: boolean;
  /** With kubernetes: the CNI installed by the lab (default none: nodes stay NotReady). */
  cni?: CniKind;
}

/** `--wait` default: a few minutes (a cold 20-node lab settles in well under one). */
export const DEFAULT_WAIT_MS = 180_000;

/** The agents' health port in the lab (FELIX_HEALTHPORT default, on 127.0.0.1 of each node). */
const HEALTH_URL = 'http://127.0.0.1:9099/readiness';

/**
 * Waits until every node's tortie-node answers 200 on /readiness (one helper process per node
 * polls inside the node's namespace); with `policySinceMs`, also until its policy loop has run a
 * pass that started at or after that time (so a datastore write made before it is enforced). On
 * timeout, throws naming each node that is not ready and the reporters that say why.
 */
export async function waitNodesReady(nodes: readonly NodePlan[], timeoutMs: number, policySinceMs?: number): Promise<void> {
  const since = policySinceMs === undefined ? [] : [String(policySinceMs)];
  const results = await Promise.all(
    nodes.map(async (n) => {
      const r = await run([IP, 'netns', 'exec', n.ns, NODE, NSAGENT, 'wait-ready', HEALTH_URL, String(timeoutMs), ...since], { env: { PATH }, timeoutMs: timeoutMs + 15_000 });
      return { node: n, ok: r.code === 0, out: r.stdout.trim() };
    }),
  );
  const bad = results.filter((r) => !r.ok);
  if (bad.length === 0) return;
  const lines = bad.map(({ node, out }) => {
    let why: string[] = [];
    try {
      const last = JSON.parse(out) as { httpStatus: number; body: string };
      why = last.httpStatus === 0 ? [`health endpoint not answering: ${last.body}`] : notReadyReporters(last.body);
    } catch {
      why = [out || 'no answer'];
    }
    return `  ${node.name}: ${why.join('; ') || 'not ready'}`;
  });
  throw new Error(`not ready after ${(timeoutMs / 1000).toFixed(0)}s:\n${lines.join('\n')}`);
}

/** The PID of a node's running agent (its /proc/<pid>/net/route is the node's main table). */
function agentPidOf(s: LabState, node: NodePlan): number | undefined {
  return s.processes.find((p) => p.role === `agent:${node.name}`)?.pid;
}

/**
 * Waits until every node but `owner` routes `ip` (a route more specific than the default, not a
 * blackhole), reading each node's table every 10 ms. Throws naming the nodes without a route.
 */
export async function waitRouted(s: LabState, ip: string, owner: string, timeoutMs: number): Promise<void> {
  const others = s.plan.nodes.filter((n) => n.name !== owner);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const missing = others.filter((n) => {
      const pid = agentPidOf(s, n);
      return pid === undefined || !routesTo(procRoutes(pid), ip);
    });
    if (missing.length === 0) return;
    if (Date.now() >= deadline) {
      throw new Error(`${ip} is not routed after ${(timeoutMs / 1000).toFixed(0)}s from ${missing.map((n) => n.name).join(', ')}`);
    }
    await sleep(10);
  }
}

export async function up(opts: UpOptions, log: Log): Promise<LabState> {
  const plan = planLab(opts);
  if (opts.cni !== undefined && !opts.kubernetes) throw new Error('--cni needs --kubernetes');
  if (opts.kubernetes && opts.datastore !== undefined) throw new Error('--datastore does not apply to --kubernetes (the datastore is the cluster\'s API)');
  if (opts.cni !== undefined && !CNI_KINDS.includes(opts.cni)) throw new Error(`--cni must be one of ${CNI_KINDS.join(', ')}, got ${opts.cni}`);
  if (opts.cni === 'manifest' && opts.mode !== undefined && opts.mode !== 'bgp') {
    throw new Error(`--mode ${opts.mode} does not apply to --cni manifest (manifests/tortie.yaml is applied as it is: calico_backend bird)`);
  }
  if (opts.kubernetes) {
    const missing = kube.missingForKube(opts.cni ?? 'none');
    if (missing.length > 0) throw new Error(`up --kubernetes needs: ${missing.join(', ')} (scripts/build-kubernetes.sh, scripts/build-images.sh)`);
  }
  if (readState(plan.name)) throw new Error(`lab ${plan.name} already exists (tortie-lab down ${plan.name} first)`);
  const clash = planNamespaces(plan).filter((n) => netnsList().includes(n));
  if (clash.length > 0) throw new Error(`namespaces already exist: ${clash.join(', ')}`);
  const t0 = Date.now();
  return withLock(plan.name, async () => {
    const dir = labDir(plan.name);
    const s: LabState = {
      version: 1,
      name: plan.name,
      createdAt: new Date().toISOString(),
      status: 'building',
      dir,
      plan,
      namespaces: planNamespaces(plan),
      processes: [],
      datastore: opts.kubernetes
        ? { type: 'kubernetes', kubeconfig: join(dir, 'kube', 'admin.conf') }
        : plan.datastore === 'kubernetes' ? { type: 'kubernetes', kubeconfig: kdd.kddKubeconfig({ dir }, 'admin') }
        : plan.datastore === 'embedded' ? { type: 'embedded', path: join(dir, 'datastore.db') } : { type: 'etcdv3', endpoints: `http://${plan.etcdAddress}:2379` },
      pods: {},
    };
    writeState(s);
    writeFileSync(join(dir, 'tortiectl.cfg'), ctlConfig(s.datastore));
    log(`lab ${plan.name}: ${plan.nodes.length} nodes, mode ${plan.mode}, ${opts.kubernetes ? `Kubernetes v1.34 (kubelet, containerd, kube-proxy per node), CNI ${opts.cni ?? 'none'}` : `datastore ${plan.datastore}`}${plan.preset ? `, preset ${plan.preset}` : ''} (state ${join(dir, 'state.json')})`);
    for (const note of plan.notes) log(`  note: ${note}`);
    try {
      await step(log, 'namespaces', () => ipBatch(null, namespaceLines(s.namespaces)), () => `${s.namespaces.length} created (${plan.prefix}*)`);
      await step(log, 'underlay', () => buildUnderlay(plan), () =>
        plan.subnets.map((sn) => `${sn.cidr} (${plan.nodes.filter((n) => n.subnet === sn.index).length} nodes)`).join(' + ') + `, router ${plan.subnets.map((sn) => sn.gateway).join('/')}`);
      if (opts.kubernetes) {
        await kube.upKube(s, { cni: opts.cni ?? 'none', waitMs: opts.waitMs ?? DEFAULT_WAIT_MS }, log);
        if (opts.cni === 'tortie' && (opts.waitMs ?? DEFAULT_WAIT_MS) > 0) {
          await step(log, 'ready', () => waitNodesReady(plan.nodes, opts.waitMs ?? DEFAULT_WAIT_MS), () => 'every tortie-node reports ready');
        }
        s.status = 'up';
        writeState(s);
        log(`lab ${plan.name} is up in ${((Date.now() - t0) / 1000).toFixed(2)}s (tortie-lab kubectl ${plan.name} -- get nodes)`);
        return s;
      }
      if (plan.datastore === 'kubernetes') {
        await step(log, 'kube-apiserver', () => kdd.startKddApi(s), (x) => x);
        await step(log, 'nodes', () => kdd.createNodes(s, plan.nodes), () => `${plan.nodes.length} Kubernetes Node objects (InternalIP = underlay address)`);
      } else if (plan.etcdNs) await step(log, 'etcd', () => startEtcd(s), () => `${s.datastore.endpoints} in ${plan.etcdNs}`);
      else log(`  datastore: embedded ${s.datastore.path}`);
      await step(log, 'pool', () => ctlCapture(s, ['apply', '-f', '-'], JSON.stringify(poolResource(plan.pool))), () =>
        `${plan.pool.name} ${plan.pool.cidr} blockSize ${plan.pool.blockSize} ipip ${plan.pool.ipipMode} vxlan ${plan.pool.vxlanMode}`);
      await step(log, 'agents', () => startAgents(s), () => `${plan.nodes.length} tortie-node running (${plan.nodes.map((n) => `${n.name}=${n.address}`).join(', ')})`);
      const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
      if (waitMs > 0) {
        await step(log, 'ready', () => waitNodesReady(plan.nodes, waitMs), () =>
          `every tortie-node reports ready (${plan.mode === 'vxlan' ? 'VXLAN routes to every node' : 'BGP sessions Established'}, policy programmed)`);
      }
      s.status = 'up';
      writeState(s);
      log(`lab ${plan.name} is up in ${((Date.now() - t0) / 1000).toFixed(2)}s`);
      return s;
    } catch (e) {
      s.status = 'failed';
      writeState(s);
      throw new Error(`${(e as Error).message}\nlab ${plan.name} left as built for inspection; remove it with: tortie-lab down ${plan.name}`);
    }
  });
}

async function startEtcd(s: LabState): Promise<void> {
  const ns = s.plan.etcdNs!;
  const addr = s.plan.etcdAddress!;
  const log = join(s.dir, 'etcd.log');
  const peer = 'http://127.0.0.1:2380';
  const env: NodeJS.ProcessEnv = { PATH };
  if (process.arch === 'arm64') env.ETCD_UNSUPPORTED_ARCH = 'arm64';
  const p = spawnInNs(ns, [ETCD,
    '--name', 'lab', '--data-dir', join(s.dir, 'etcd'),
    '--listen-client-urls', `http://${addr}:2379,http://127.0.0.1:2379`, '--advertise-client-urls', `http://${addr}:2379`,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `lab=${peer}`,
    '--initial-cluster-state', 'new', '--log-level', 'error', '--heartbeat-interval', '10', '--election-timeout', '100'], env, log);
  s.processes.push({ pid: p.pid, role: 'etcd', startTime: p.startTime, log });
  writeState(s);
  const r = await run([IP, 'netns', 'exec', ns, NODE, NSAGENT, 'wait-http', `http://${addr}:2379/health`, '15000'], { env: { PATH } });
  if (r.code !== 0) throw new Error(`etcd did not become healthy:\n${tail(log)}`);
}

async function startAgents(s: LabState, nodes: readonly NodePlan[] = s.plan.nodes): Promise<void> {
  const base: NodeJS.ProcessEnv = { PATH, ...datastoreEnv(s.datastore) };
  // The agents use their own identity (bound to cluster-admin), as calico-node its service account.
  if (kdd.isKdd(s)) base.KUBECONFIG = kdd.kddKubeconfig(s, 'tortie-node');
  const started: { node: NodePlan; rec: ProcRecord; socket: string }[] = [];
  for (const node of nodes) {
    const d = nodeDirs(s, node.name);
    mkdirSync(d.runDir, { recursive: true });
    mkdirSync(d.stateDir, { recursive: true });
    writeFileSync(join(d.base, '10-calico.conflist'), JSON.stringify(conflist(s, node), null, 2) + '\n');
    const p = spawnInNs(node.ns, [BIN('tortie-node')], { ...base, ...agentEnv(s.plan, node, d), ...readAgentOverrides(d.base) }, d.log);
    const rec = { pid: p.pid, role: `agent:${node.name}`, startTime: p.startTime, log: d.log };
    s.processes.push(rec);
    started.push({ node, rec, socket: d.socket });
  }
  writeState(s);
  const deadline = Date.now() + 30_000;
  await Promise.all(
    started.map(async ({ node, rec, socket }) => {
      while (!(await accepts(socket))) {
        if (!pidAlive(rec.pid, rec.startTime)) throw new Error(`tortie-node on ${node.name} exited:\n${tail(rec.log!)}`);
        if (Date.now() > deadline) throw new Error(`tortie-node on ${node.name} did not open ${socket}:\n${tail(rec.log!)}`);
        await sleep(25);
      }
    }),
  );
}

/** The seed's 10-calico.conflist shape, with the tortie plugins and this node's agent socket. */
export function conflist(s: LabState, node: NodePlan): Conflist {
  const d = nodeDirs(s, node.name);
  const main: Record<string, unknown> = {
    type: 'tortie',
    log_level: 'info',
    nodename: node.name,
    nodename_file: join(d.stateDir, 'nodename'),
    agent_socket: d.socket,
    ipam: { type: 'tortie-ipam', assign_ipv4: 'true', ipv4_pools: [s.plan.pool.cidr] },
    policy: { type: 'k8s' },
  };
  if (s.datastore.type === 'embedded') Object.assign(main, { datastore_type: 'embedded', datastore_path: s.datastore.path });
  else if (s.datastore.type === 'kubernetes') Object.assign(main, { datastore_type: 'kubernetes', kubernetes: { kubeconfig: kdd.kddKubeconfig(s, 'tortie-node') } });
  else Object.assign(main, { datastore_type: 'etcdv3', etcd_endpoints: s.datastore.endpoints });
  const plugins: Conflist['plugins'] = [main as Conflist['plugins'][number]];
  if (existsSync(join(CNI_DIR, 'portmap'))) plugins.push({ type: 'portmap', snat: true, capabilities: { portMappings: true } });
  if (existsSync(join(CNI_DIR, 'bandwidth'))) plugins.push({ type: 'bandwidth', capabilities: { bandwidth: true } });
  return { name: 'k8s-pod-network', cniVersion: '0.3.1', plugins };
}

function nodeOf(s: LabState, want: string): NodePlan {
  const n = resolveNodeName(s.plan, want);
  if (!n) throw new Error(`no node ${JSON.stringify(want)} in lab ${s.name} (nodes: ${s.plan.nodes.map((x) => x.name).join(', ')})`);
  return n;
}

/** The named port of each server: serve-<port>-<proto>, as the e2e model's pods name theirs. */
export function namedPorts(serve: readonly ServeSpec[]): { name: string; port: number; protocol: string }[] {
  return serve.map((x) => ({ name: `serve-${x.port}-${x.proto}`, port: x.port, protocol: x.proto.toUpperCase() }));
}

/**
 * CNI_ARGS of a pod. Beside the keys a kubelet passes, the pod's labels and named ports go in
 * K8S_POD_LABELS (k=v,…) and K8S_POD_PORTS (name:port/PROTO,…): the agent writes them into the
 * WorkloadEndpoint at ADD (cni-plugin/pkg/plugin/handler.ts), so the endpoint is complete from
 * its first version (no window where policy sees a pod without its labels).
 */
export function podCniArgs(pod: Pick<PodRecord, 'namespace' | 'name' | 'containerId' | 'labels' | 'serve'>, kubeletOnly = false): string {
  const args = [`IgnoreUnknown=1`, `K8S_POD_NAMESPACE=${pod.namespace}`, `K8S_POD_NAME=${pod.name}`, `K8S_POD_INFRA_CONTAINER_ID=${pod.containerId}`];
  // On the kubernetes datastore the labels and ports are the Pod object's: only what a kubelet passes.
  if (kubeletOnly) return args.join(';');
  const labels = Object.entries(pod.labels);
  if (labels.length > 0) args.push(`K8S_POD_LABELS=${labels.map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (pod.serve.length > 0) args.push(`K8S_POD_PORTS=${namedPorts(pod.serve).map((p) => `${p.name}:${p.port}/${p.protocol}`).join(',')}`);
  return args.join(';');
}

function checkPodLabels(labels: Record<string, string>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (/[,;=]/.test(k) || /[,;=]/.test(v)) throw new Error(`label ${k}=${v}: keys and values cannot contain ',', ';' or '='`);
  }
}

function runtimeOpts(s: LabState, node: NodePlan, pod: PodRecord) {
  return {
    containerId: pod.containerId,
    netns: `/run/netns/${pod.netns}`,
    ifname: 'eth0',
    args: podCniArgs(pod, kdd.isKdd(s)),
    cacheDir: join(s.dir, 'cni-cache'),
    cniPath: [join(ROOT, 'bin'), CNI_DIR],
    wrapper: [IP, 'netns', 'exec', node.ns],
    timeoutMs: 30_000,
  };
}

function notKube(s: LabState): void {
  if (s.kube) throw new Error(`lab ${s.name} is a Kubernetes cluster: its pods are made with kubectl (tortie-lab kubectl ${s.name} -- ...), its nodes are fixed`);
}

function mustBeUp(s: LabState): void {
  if (s.status !== 'up') throw new Error(`lab ${s.name} is ${s.status}; tortie-lab down ${s.name} and up again`);
}

// ---------------------------------------------------------------------------------------------
// nodes: add (join a running lab), restart (the agent), del

/** The next free underlay address and LAN link name for a node joining subnet 0. */
function nextNode(s: LabState, name: string): NodePlan {
  const sn = s.plan.subnets[0]!;
  const base = sn.cidr.split('/')[0]!.split('.').slice(0, 3).join('.');
  const used = new Set(s.plan.nodes.filter((n) => n.subnet === 0).map((n) => Number(n.address.split('.')[3])));
  let host = 11;
  for (const h of used) host = Math.max(host, h + 1);
  if (host > 249) throw new Error(`no free underlay address on ${sn.cidr}`);
  const links = s.plan.nodes.map((n) => Number(n.lanIf.slice(1))).filter((x) => Number.isInteger(x));
  const lanIf = `n${links.length === 0 ? 0 : Math.max(...links) + 1}`;
  return { name, ns: `${s.plan.prefix}${name}`, address: `${base}.${host}`, subnet: 0, lanIf };
}

/** A node joins a running lab: namespace, underlay veth with the next address, agent started. */
export async function nodeAdd(lab: string, name: string, log: Log, waitMs: number = DEFAULT_WAIT_MS): Promise<NodePlan> {
  validateNodeName(name);
  return withLock(lab, async () => {
    const s = mustReadState(lab);
    mustBeUp(s);
    notKube(s);
    if (s.plan.nodes.some((n) => n.name === name)) throw new Error(`node ${name} already exists in lab ${lab}`);
    const node = nextNode(s, name);
    if (netnsList().includes(node.ns)) throw new Error(`namespace ${node.ns} already exists`);
    const t0 = Date.now();
    // Recorded before it is made, so that down removes it whatever happens next.
    s.plan.nodes.push(node);
    if (!s.namespaces.includes(node.ns)) s.namespaces.push(node.ns);
    writeState(s);
    const sn = s.plan.subnets[node.subnet]!;
    await ipBatch(null, namespaceLines([node.ns]));
    await ipBatch(s.plan.lanNs, [`link add ${node.lanIf} type veth peer name eth0 netns ${node.ns}`, `link set ${node.lanIf} master ${sn.bridge}`, `link set ${node.lanIf} up`]);
    await ipBatch(node.ns, hostLines(node.address, sn.prefixLen, sn.gateway));
    if (kdd.isKdd(s)) await kdd.createNodes(s, [node]);
    await startAgents(s, [node]);
    // Every node, not only the new one: the others' sessions with it count too.
    if (waitMs > 0) await waitNodesReady(s.plan.nodes, waitMs);
    log(`node ${name} joined lab ${lab}: ${node.address} (netns ${node.ns}), tortie-node ${waitMs > 0 ? 'ready' : 'running'} (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
    return node;
  });
}

async function stopAgent(s: LabState, node: NodePlan): Promise<number> {
  const role = `agent:${node.name}`;
  let stopped = 0;
  for (const p of s.processes.filter((x) => x.role === role)) if (await killPid(p.pid, p.startTime, 1000)) stopped++;
  s.processes = s.processes.filter((x) => x.role !== role);
  writeState(s);
  return stopped;
}

/** Stops the node's agent (if it still runs) by its recorded PID and starts a new one. */
export async function nodeRestart(lab: string, nodeName: string, log: Log, waitMs: number = DEFAULT_WAIT_MS): Promise<ProcRecord> {
  return withLock(lab, async () => {
    const s = mustReadState(lab);
    mustBeUp(s);
    notKube(s);
    const node = nodeOf(s, nodeName);
    const t0 = Date.now();
    const stopped = await stopAgent(s, node);
    // The socket of the old agent is left behind after a SIGKILL: wait for the new one's.
    rmSync(nodeDirs(s, node.name).socket, { force: true });
    await startAgents(s, [node]);
    if (waitMs > 0) await waitNodesReady([node], waitMs);
    const rec = s.processes.find((p) => p.role === `agent:${node.name}`)!;
    log(`node ${node.name}: tortie-node ${stopped ? 'restarted' : 'started'} (pid ${rec.pid}, ${((Date.now() - t0) / 1000).toFixed(2)}s)`);
    return rec;
  });
}

/** Removes a node: its pods, its agent and whatever runs in its namespace, the namespace. */
export async function nodeDel(lab: string, nodeName: string, log: Log): Promise<void> {
  await withLock(lab, async () => {
    const s = mustReadState(lab);
    const node = nodeOf(s, nodeName);
    for (const [key, pod] of Object.entries(s.pods)) {
      if (pod.node !== node.name) continue;
      for (const w of await removePod(s, pod)) log(`warning: ${key}: ${w}`);
      delete s.pods[key];
      writeState(s);
    }
    await stopAgent(s, node);
    if (netnsList().includes(node.ns)) {
      for (const pid of netnsPids(node.ns)) await killPid(pid, undefined, 1000);
      await ipBatch(null, [`netns del ${node.ns}`]);
    }
    s.plan.nodes = s.plan.nodes.filter((n) => n !== node && n.name !== node.name);
    s.namespaces = s.namespaces.filter((n) => n !== node.ns);
    writeState(s);
    // The Node resource goes too (its blocks and BGP sessions with it); best effort.
    if (kdd.isKdd(s)) {
      await kdd.deleteNode(s, node.name).catch((e: Error) => log(`warning: ${e.message}`));
      log(`node ${node.name} removed from lab ${lab}`);
      return;
    }
    const r = await run([...ctlArgv(s).argv, 'delete', 'node', node.name], { env: ctlArgv(s).env });
    if (r.code !== 0) log(`warning: tortiectl delete node ${node.name}: ${(r.stderr || r.stdout).trim()}`);
    log(`node ${node.name} removed from lab ${lab}`);
  });
}

// ---------------------------------------------------------------------------------------------
// pods

export interface PodAddOptions {
  labels?: Record<string, string>;
  serve?: ServeSpec[];
  /** How long to wait for every other node to route the pod; 0 = do not wait. Default DEFAULT_WAIT_MS. */
  waitMs?: number;
}

export async function podAdd(lab: string, nodeName: string, refText: string, opts: PodAddOptions, log: Log): Promise<PodRecord> {
  const ref = parsePodRef(refText);
  checkPodLabels(opts.labels ?? {});
  return withLock(lab, async () => {
    const s = mustReadState(lab);
    mustBeUp(s);
    notKube(s);
    const node = nodeOf(s, nodeName);
    const key = podKey(ref);
    if (s.pods[key]) throw new Error(`pod ${key} already exists on ${s.pods[key]!.node}`);
    // As in Kubernetes, the namespace exists before its pods: a namespace never given to `ns add`
    // gets its kns.<ns> profile (no labels) unless one is there already.
    if (!s.k8sNamespaces?.[ref.namespace]) {
      if (kdd.isKdd(s)) await kdd.applyNamespace(s, ref.namespace, {});
      else await ctlCapture(s, ['create', '--skip-exists', '-f', '-'], JSON.stringify(namespaceProfile(ref.namespace)));
      s.k8sNamespaces = { ...(s.k8sNamespaces ?? {}), [ref.namespace]: {} };
      writeState(s);
    }
    const pod: PodRecord = {
      namespace: ref.namespace,
      name: ref.name,
      node: node.name,
      netns: podNsName(lab, ref),
      containerId: containerId(lab, ref),
      labels: opts.labels ?? {},
      serve: opts.serve ?? [],
      servers: [],
      phase: 'adding',
    };
    // On the kubernetes datastore the Pod object comes first (the kubelet's runs the CNI ADD for an
    // existing Pod); one that exists already (not the lab's) is refused and left alone.
    if (kdd.isKdd(s)) await kdd.createPod(s, pod);
    s.pods[key] = pod;
    if (!s.namespaces.includes(pod.netns)) s.namespaces.push(pod.netns);
    writeState(s);
    try {
      await makePodNs(pod.netns);
      const add = await runConflistAdd(conflist(s, node), runtimeOpts(s, node, pod));
      if (!add.ok) throw new Error(`CNI ADD failed: ${add.error?.msg ?? ''}${add.error?.details ? ` (${add.error.details})` : ''}\n${add.error?.stderr ?? ''}${tail(nodeDirs(s, node.name).log, 8)}`);
      const res = add.result as { ips?: { address: string }[]; interfaces?: { name: string; sandbox?: string }[] };
      pod.ip = res.ips?.[0]?.address.split('/')[0];
      pod.hostIf = res.interfaces?.find((i) => !i.sandbox)?.name;
      writeState(s);
      if (pod.serve.length > 0) await startServer(s, pod);
      const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
      if (waitMs > 0 && pod.ip) await waitRouted(s, pod.ip, node.name, waitMs);
      pod.phase = 'up';
      writeState(s);
      log(`pod ${key} on ${node.name}: ${pod.ip ?? '?'} (${pod.hostIf ?? '?'}, netns ${pod.netns})${pod.serve.length ? `, serving ${pod.serve.map((x) => `${x.port}/${x.proto}`).join(',')}` : ''}`);
      return pod;
    } catch (e) {
      // Undo: the CNI DEL is idempotent, then the namespace.
      await removePod(s, pod).catch(() => undefined);
      delete s.pods[key];
      writeState(s);
      throw e;
    }
  });
}

async function startServer(s: LabState, pod: PodRecord): Promise<void> {
  const logFile = join(s.dir, 'pods', `${pod.namespace}.${pod.name}.server.log`);
  mkdirSync(join(s.dir, 'pods'), { recursive: true });
  writeFileSync(logFile, '');
  const specs = pod.serve.map((x) => `${x.port}/${x.proto}`);
  const p = spawnInNs(pod.netns, [NODE, PODSERVER, podKey(pod), ...specs], { PATH }, logFile);
  const rec: ProcRecord = { pid: p.pid, role: `server:${podKey(pod)}`, startTime: p.startTime, log: logFile };
  pod.servers.push(rec);
  writeState(s);
  const deadline = Date.now() + 10_000;
  while (!readFileSync(logFile, 'utf8').includes('ready')) {
    if (!pidAlive(rec.pid, rec.startTime)) throw new Error(`pod server for ${podKey(pod)} exited: ${tail(logFile)}`);
    if (Date.now() > deadline) throw new Error(`pod server for ${podKey(pod)} not ready: ${tail(logFile)}`);
    await sleep(20);
  }
}

/** Stops the pod's servers, CNI DEL, deletes its namespace. */
async function removePod(s: LabState, pod: PodRecord): Promise<string[]> {
  const warnings: string[] = [];
  for (const p of pod.servers) await killPid(p.pid, p.startTime);
  const node = s.plan.nodes.find((n) => n.name === pod.node);
  if (node) {
    const del = await runConflistDel(conflist(s, node), runtimeOpts(s, node, pod));
    if (!del.ok) warnings.push(`CNI DEL failed: ${del.error?.msg ?? ''}`);
  }
  if (netnsList().includes(pod.netns)) {
    for (const pid of netnsPids(pod.netns)) await killPid(pid, undefined, 1000);
    await ipBatch(null, [`netns del ${pod.netns}`]);
  }
  s.namespaces = s.namespaces.filter((n) => n !== pod.netns);
  if (kdd.isKdd(s)) await kdd.deletePod(s, pod).catch((e: Error) => warnings.push(e.message));
  return warnings;
}

export async function podDel(lab: string, refText: string, log: Log): Promise<void> {
  const ref = parsePodRef(refText);
  await withLock(lab, async () => {
    const s = mustReadState(lab);
    const key = podKey(ref);
    const pod = s.pods[key];
    if (!pod) throw new Error(`no pod ${key} in lab ${lab}`);
    const warnings = await removePod(s, pod);
    delete s.pods[key];
    writeState(s);
    for (const w of warnings) log(`warning: ${w}`);
    log(`pod ${key} deleted`);
  });
}

// ---------------------------------------------------------------------------------------------
// namespaces

/** The profile Calico keeps for a Kubernetes namespace: kns.<ns>, allow-all, labels as pcns.*. */
export function namespaceProfile(name: string, labels: Record<string, string> = {}): Record<string, unknown> {
  const labelsToApply: Record<string, string> = {};
  // Kubernetes gives every namespace kubernetes.io/metadata.name=<name> (and keeps it so).
  for (const [k, v] of Object.entries({ ...labels, 'kubernetes.io/metadata.name': name })) labelsToApply[`pcns.${k}`] = v;
  labelsToApply['pcns.projectcalico.org/name'] = name;
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: `kns.${name}` },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply },
  };
}

/** A Kubernetes namespace: its kns.<name> profile applied (again, with new labels, if it exists). */
export async function nsAdd(lab: string, name: string, labels: Record<string, string>, log: Log): Promise<void> {
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name) || name.length > 63) throw new Error(`invalid namespace name ${JSON.stringify(name)}`);
  await withLock(lab, async () => {
    const s = mustReadState(lab);
    mustBeUp(s);
    // On the kubernetes datastore the Namespace object: the backend derives kns.<name> from it.
    if (kdd.isKdd(s)) await kdd.applyNamespace(s, name, labels);
    else await ctlCapture(s, ['apply', '-f', '-'], JSON.stringify(namespaceProfile(name, labels)));
    s.k8sNamespaces = { ...(s.k8sNamespaces ?? {}), [name]: labels };
    writeState(s);
    const shown = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
    log(`namespace ${name}: ${kdd.isKdd(s) ? `Namespace object (the backend derives kns.${name})` : `profile kns.${name}`}${shown ? ` (labels ${shown})` : ''}`);
  });
}

// ---------------------------------------------------------------------------------------------
// exec, ctl

/** The namespace of `NODE` or `NS/POD`. */
export function targetNs(s: LabState, target: string): string {
  if (target.includes('/')) {
    const pod = s.pods[podKey(parsePodRef(target))];
    if (!pod) throw new Error(`no pod ${target} in lab ${s.name}`);
    return pod.netns;
  }
  return nodeOf(s, target).ns;
}

export function exec(lab: string, target: string, cmd: string[]): number {
  const s = mustReadState(lab);
  if (cmd.length === 0) throw new Error('exec needs a command after --');
  // A cluster's node: its network and mount namespaces (its own /etc/cni/net.d, /var/lib/kubelet, …).
  const argv = s.kube && !target.includes('/') ? [...kube.nodeEnter(s, nodeOf(s, target)), ...cmd] : [IP, 'netns', 'exec', targetNs(s, target), ...cmd];
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'inherit' });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

/** tortiectl verbs that write to the datastore. */
const WRITE_VERBS = new Set(['apply', 'create', 'replace', 'delete', 'patch', 'label']);

/**
 * Runs tortiectl against the lab's datastore (on NODE: with that node's run directory, for `node
 * status`). After a successful write, waits (up to `waitMs`; 0 = not) until every node's policy loop
 * has programmed a pass that started after the write: when it returns, the policy is enforced.
 */
export async function ctl(lab: string, nodeName: string | undefined, args: string[], waitMs: number = DEFAULT_WAIT_MS): Promise<number> {
  const s = mustReadState(lab);
  const { argv, env } = ctlArgv(s, nodeName ? nodeOf(s, nodeName) : undefined);
  const r = spawnSync(argv[0]!, [...argv.slice(1), ...args], { stdio: 'inherit', env });
  if (r.error) throw r.error;
  const code = r.status ?? 1;
  const verb = args.find((a) => !a.startsWith('-'));
  // (A cluster without tortie has no agents to wait for.)
  const agents = !s.kube || s.kube.cni === 'tortie' || s.kube.cni === 'manifest';
  if (code === 0 && waitMs > 0 && verb && WRITE_VERBS.has(verb) && s.status === 'up' && agents) {
    await waitNodesReady(s.plan.nodes, waitMs, Date.now());
  }
  return code;
}

/** The real kubectl with the lab cluster's admin kubeconfig (in the master node's network namespace). */
export function kubectl(lab: string, args: string[]): number {
  const s = mustReadState(lab);
  if (kdd.isKdd(s)) {
    // `up --datastore kubernetes`: the lab's kube-apiserver, from its namespace.
    const argv = kdd.kddKubectlArgv(s);
    const r = spawnSync(argv[0]!, [...argv.slice(1), ...args], { stdio: 'inherit', env: kdd.kddKubectlEnv(s) });
    if (r.error) throw r.error;
    return r.status ?? 1;
  }
  if (!s.kube) throw new Error(`lab ${lab} has no Kubernetes cluster (up --kubernetes or --datastore kubernetes)`);
  const argv = kube.kubectlArgv(s);
  const r = spawnSync(argv[0]!, [...argv.slice(1), ...args], { stdio: 'inherit', env: kube.kubectlEnv(s) });
  if (r.error) throw r.error;
  return r.status ?? 1;
}

/** kubectl verbs that write; after one, `tortie-lab kubectl` on a --datastore kubernetes lab waits as `ctl` does. */
const KUBECTL_WRITE_VERBS = new Set(['apply', 'create', 'replace', 'delete', 'patch', 'label', 'annotate', 'edit']);

/**
 * The `kubectl` verb: the real kubectl (see kubectl()); on a `--datastore kubernetes` lab, after a
 * successful write, waits (up to `waitMs`; 0 = not) until every node's policy loop has programmed a
 * pass that started after it, as `ctl` does after a tortiectl write.
 */
export async function kubectlVerb(lab: string, args: string[], waitMs: number = DEFAULT_WAIT_MS): Promise<number> {
  const code = kubectl(lab, args);
  const s = mustReadState(lab);
  if (code === 0 && waitMs > 0 && kdd.isKdd(s) && s.status === 'up' && args.some((a) => KUBECTL_WRITE_VERBS.has(a))) {
    await waitNodesReady(s.plan.nodes, waitMs, Date.now());
  }
  return code;
}

/**
 * Stops a cluster node's kubelet or containerd by its recorded PID and starts a new one; with a CNI
 * installed, waits until the Node is Ready again with a status posted after the restart.
 */
export async function kubeRestart(lab: string, what: 'kubelet' | 'containerd', nodeName: string, log: Log, waitMs: number = DEFAULT_WAIT_MS): Promise<ProcRecord> {
  return withLock(lab, async () => {
    const s = mustReadState(lab);
    if (!s.kube) throw new Error(`lab ${lab} has no Kubernetes cluster (up --kubernetes)`);
    const node = nodeOf(s, nodeName);
    const t0 = Date.now();
    const old = s.processes.find((p) => p.role === `${what}:${node.name}`);
    const rec = what === 'kubelet' ? await kube.restartKubelet(s, node) : await kube.restartContainerd(s, node);
    if (waitMs > 0 && s.kube.cni !== 'none') {
      // Heartbeats have one-second resolution: ready again means one at or after the restart's second.
      const since = new Date(t0).toISOString().slice(0, 19);
      const deadline = Date.now() + waitMs;
      for (;;) {
        const out = JSON.parse(await kube.kubectl(s, ['get', 'node', node.name, '-o', 'json'])) as { status: { conditions: { type: string; status: string; lastHeartbeatTime: string }[] } };
        const ready = out.status.conditions.find((c) => c.type === 'Ready');
        // The kubelet posts its status at start; after a containerd restart it does not (the status
        // is unchanged), so there Ready is enough: the socket already answers.
        if (ready?.status === 'True' && (what === 'containerd' || ready.lastHeartbeatTime.slice(0, 19) >= since)) break;
        if (!pidAlive(rec.pid, rec.startTime)) throw new Error(`${what} on ${node.name} exited:\n${tail(rec.log!)}`);
        if (Date.now() > deadline) throw new Error(`Node ${node.name} not Ready after the ${what} restart`);
        await sleep(500);
      }
    }
    log(`node ${node.name}: ${what} restarted (pid ${old?.pid ?? 'none'} → ${rec.pid}, ${((Date.now() - t0) / 1000).toFixed(2)}s)`);
    return rec;
  });
}

// ---------------------------------------------------------------------------------------------
// probe

export interface ProbeOptions {
  port?: number;
  proto?: 'tcp' | 'udp' | 'icmp';
  timeoutMs?: number;
  parallel?: number;
  /** Only these pods (NS/POD), in this order; default every pod of the lab. */
  pods?: readonly string[];
}

export interface ProbeResult {
  keys: string[];
  matrix: Matrix;
  proto: 'tcp' | 'udp' | 'icmp';
  port: number;
}

export async function probe(lab: string, opts: ProbeOptions): Promise<ProbeResult> {
  const s = mustReadState(lab);
  const proto = opts.proto ?? (opts.port !== undefined ? 'tcp' : 'icmp');
  const port = opts.port ?? 0;
  if (proto !== 'icmp' && !(port >= 1 && port <= 65535)) throw new Error(`--proto ${proto} needs --port`);
  const up = Object.values(s.pods).filter((p) => p.phase === 'up' && p.ip);
  const pods = opts.pods
    ? opts.pods.map((k) => {
        const p = up.find((x) => podKey(x) === k);
        if (!p) throw new Error(`no running pod ${k} in lab ${lab}`);
        return p;
      })
    : up;
  const keys = pods.map((p) => podKey(p));
  const matrix: Matrix = {};
  await mapLimit(pods, opts.parallel ?? 8, async (src) => {
    const targets = pods.filter((p) => p !== src).map((p) => ({ key: podKey(p), ip: p.ip! }));
    const row: Record<string, boolean> = {};
    for (const t of targets) row[t.key] = false;
    if (targets.length > 0) {
      const req = { proto, port, timeoutMs: opts.timeoutMs ?? 1000, targets };
      const r = await run([IP, 'netns', 'exec', src.netns, NODE, NSAGENT, 'probe', JSON.stringify(req)], { env: { PATH }, timeoutMs: 60_000 });
      if (r.code === 0) Object.assign(row, JSON.parse(r.stdout) as Record<string, boolean>);
    }
    matrix[podKey(src)] = row;
  });
  return { keys, matrix, proto, port };
}

export function renderProbe(r: ProbeResult, opts: { json?: boolean; expect?: Expectation }): { text: string; ok: boolean } {
  const ok = mismatches(r.keys, r.matrix, opts.expect).length === 0;
  if (opts.json) return { text: JSON.stringify(matrixJson(r.keys, r.matrix)) + '\n', ok };
  const what = r.proto === 'icmp' ? 'icmp' : `${r.proto}/${r.port}`;
  return { text: `probe ${what}\n` + formatMatrix(r.keys, r.matrix, opts.expect) + summary(r.keys, r.matrix, opts.expect), ok };
}

// ---------------------------------------------------------------------------------------------
// down, list

export async function down(lab: string, log: Log): Promise<{ killed: number; namespaces: number }> {
  if (!readState(lab)) throw new Error(`no lab named ${JSON.stringify(lab)} (nothing recorded in ${labDir(lab)})`);
  return withLock(lab, async () => {
    const s = mustReadState(lab);
    const t0 = Date.now();
    let killed = 0;
    const killAll = async (pids: { pid: number; startTime?: string }[], graceMs = 3000) =>
      (killed += (await Promise.all(pids.map((p) => killPid(p.pid, p.startTime, graceMs)))).filter(Boolean).length);
    // Pod servers and agents, then etcd (agents may still talk to it): each exactly as recorded.
    const recs = [...Object.values(s.pods).flatMap((p) => p.servers), ...s.processes];
    // A cluster: kubelets, then the containers in the nodes' own cgroups.
    killed += await kube.preDownKube(s);
    // tortie-node logs "Node agent stopped" at once on SIGTERM but its process lingers ~5 s after:
    // a short grace, then SIGKILL (whatever it leaves in its namespace is swept below).
    await killAll(recs.filter((p) => p.role !== 'etcd'), 1000);
    await killAll(recs.filter((p) => p.role === 'etcd'));
    // Anything else still running inside the lab's own namespaces (e.g. a routing daemon an agent
    // started, or a command left by exec) is the lab's too.
    const existing = new Set(netnsList());
    const present = s.namespaces.filter((n) => existing.has(n));
    const stray = [...new Set(present.flatMap((n) => netnsPids(n)))];
    await killAll(stray.map((pid) => ({ pid })), 2000);
    if (present.length > 0) {
      const r = await run([IP, '-force', '-batch', '-'], { input: present.map((n) => `netns del ${n}`).join('\n') + '\n' });
      if (r.code !== 0) log(`warning: deleting namespaces: ${r.stderr.trim()}`);
    }
    const cgroupsLeft = await kube.postDownKube(s);
    const left = netnsList().filter((n) => s.namespaces.includes(n));
    const alive = recs.filter((p) => pidAlive(p.pid, p.startTime));
    if (left.length > 0 || alive.length > 0 || cgroupsLeft.length > 0) {
      throw new Error(`lab ${lab} not fully removed: namespaces ${left.join(', ') || 'none'}; processes ${alive.map((p) => p.pid).join(', ') || 'none'}; cgroups ${cgroupsLeft.join(', ') || 'none'} (state kept)`);
    }
    // The nodes' mount namespaces (and their overlays, tmpfs and bind mounts) went with their last process.
    rmSync(s.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    log(`lab ${lab} down: ${killed} processes stopped, ${present.length} namespaces deleted (${((Date.now() - t0) / 1000).toFixed(2)}s)`);
    return { killed, namespaces: present.length };
  });
}

export function list(): string {
  const rows = [['NAME', 'STATUS', 'MODE', 'DATASTORE', 'NODES', 'PODS', 'PROCESSES']];
  for (const name of listLabNames()) {
    const s = readState(name);
    if (!s) continue;
    const procs = [...s.processes, ...Object.values(s.pods).flatMap((p) => p.servers)];
    const alive = procs.filter((p) => pidAlive(p.pid, p.startTime)).length;
    rows.push([name, s.status, s.plan.mode, s.kube ? `kubernetes (cni ${s.kube.cni})` : s.plan.datastore, String(s.plan.nodes.length), String(Object.keys(s.pods).length), `${alive}/${procs.length} running`]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((x, c) => (c === r.length - 1 ? x : x.padEnd(widths[c]!))).join('  ')).join('\n') + '\n';
}

export type { PodRef };
