// `tortie-lab up --datastore kubernetes`: the classic lab (agents in node namespaces, pods wired by
// the lab's CNI runner) on the Kubernetes API datastore. A real kube-apiserver v1.34 and its own
// etcd run in the lab's namespace `tl-<lab>-api` (10.0.0.2:6443 on the underlay); the CRDs of
// manifests/crds.yaml are applied with the real kubectl; every lab node is a Kubernetes Node object
// (InternalIP = its underlay address) that its agent registers onto; every lab pod is first a Pod
// object (labels, namespace, serviceAccountName, nodeName, named container ports) in a Namespace
// object with its labels, then wired by the CNI runner, so that the WorkloadEndpoints and the
// kns./ksa. profiles are what the kubernetes backend derives from them. Nothing runs the Pods
// (there is no kubelet, scheduler or controller-manager): they stay Pending, as the API objects
// the backend reads. Certificates and binaries are lab/pkg/kube's (imported, not changed).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { refOfKey, toObject } from '../../libcalico-go/lib/backend/kubernetes/mapping.js';
import { resourceKey } from '../../libcalico-go/lib/backend/keys.js';
import { validateResource } from '../../libcalico-go/lib/apis/v3/validate/index.js';
import { kubeBinaries } from './kube/cluster.js';
import { kubeconfigFor, makeClusterPKI } from './kube/pki.js';
import type { LabState, PodRecord, ProcRecord } from './state.js';
import { writeState } from './state.js';
import { IP, pidAlive, run, spawnInNs } from './sys.js';
import type { NodePlan, ServeSpec } from './topology.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const ROOT = new URL('../../../', import.meta.url).pathname;

/** The API server's address on the underlay (the namespace `tl-<lab>-api`). */
export const KDD_API_ADDRESS = '10.0.0.2';
export const KDD_API_PORT = 6443;
/** Services of the lab's API (nothing routes them: no kube-proxy; the apiserver needs a range). */
export const KDD_SERVICE_CIDR = '10.96.0.0/16';
/** The image named in the lab's Pod objects (nothing pulls or runs it). */
export const KDD_POD_IMAGE = 'registry.k8s.io/pause:3.10.1';

/** True for a classic lab on the Kubernetes datastore (not an `up --kubernetes` cluster). */
export function isKdd(s: LabState): boolean {
  return s.datastore.type === 'kubernetes' && !s.kube;
}

export function kddDir(s: Pick<LabState, 'dir'>): string {
  return join(s.dir, 'api');
}

/** kubeconfigs: `admin` (kubectl, tortiectl), `tortie-node` (agents and CNI; bound to cluster-admin). */
export function kddKubeconfig(s: Pick<LabState, 'dir'>, who: 'admin' | 'tortie-node'): string {
  return join(kddDir(s), `${who}.conf`);
}

export function kddServer(): string {
  return `https://${KDD_API_ADDRESS}:${KDD_API_PORT}`;
}

/** The real kubectl with the admin kubeconfig, in the API's namespace. */
export function kddKubectlArgv(s: LabState): string[] {
  return [IP, 'netns', 'exec', s.plan.etcdNs!, kubeBinaries().kubectl, '--kubeconfig', kddKubeconfig(s, 'admin')];
}

/** kubectl's environment: its discovery cache in the lab's api dir. */
export function kddKubectlEnv(s: LabState): NodeJS.ProcessEnv {
  return { PATH, HOME: kddDir(s) };
}

export async function kddKubectl(s: LabState, args: string[], input?: string, timeoutMs = 120_000): Promise<string> {
  const r = await run([...kddKubectlArgv(s), ...args], { input, env: kddKubectlEnv(s), timeoutMs });
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/** What `up --datastore kubernetes` needs that is not there. */
export function missingForKdd(): string[] {
  const b = kubeBinaries();
  return [b.kubeApiserver, b.kubectl, b.etcd].filter((p) => !existsSync(p));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function startIn(s: LabState, role: string, argv: string[], log: string): ProcRecord {
  const p = spawnInNs(s.plan.etcdNs!, argv, { PATH }, log);
  const rec: ProcRecord = { pid: p.pid, role, startTime: p.startTime, log };
  s.processes.push(rec);
  writeState(s);
  return rec;
}

async function until(what: string, rec: ProcRecord, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (!pidAlive(rec.pid, rec.startTime)) throw new Error(`${what}: ${rec.role} (pid ${rec.pid}) exited:\n${tail(rec.log!)}`);
    if (Date.now() > deadline) throw new Error(`${what}: not after ${(timeoutMs / 1000).toFixed(0)}s:\n${tail(rec.log!)}`);
    await sleep(250);
  }
}

/**
 * PKI, etcd (127.0.0.1:2379 of the API namespace), kube-apiserver (10.0.0.2:6443), the CRDs
 * (kubectl apply -f manifests/crds.yaml, Established) and the tortie-node identity bound to
 * cluster-admin. Returns a one-line summary.
 */
export async function startKddApi(s: LabState): Promise<string> {
  const missing = missingForKdd();
  if (missing.length > 0) throw new Error(`--datastore kubernetes needs: ${missing.join(', ')} (scripts/build-kubernetes.sh)`);
  const dir = kddDir(s);
  mkdirSync(dir, { recursive: true });
  const pki = await makeClusterPKI(join(dir, 'pki'), { nodes: [], sanIPs: [KDD_API_ADDRESS, '127.0.0.1'], sanDNS: ['kubernetes', 'kubernetes.default', 'localhost'] });
  for (const who of ['admin', 'tortie-node'] as const) writeFileSync(kddKubeconfig(s, who), kubeconfigFor(pki, who, kddServer()), { mode: 0o600 });
  const b = kubeBinaries();
  const peer = 'http://127.0.0.1:2380';
  startIn(s, 'etcd', [b.etcd, '--name', 'lab', '--data-dir', join(dir, 'etcd'),
    '--listen-client-urls', 'http://127.0.0.1:2379', '--advertise-client-urls', 'http://127.0.0.1:2379',
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `lab=${peer}`,
    '--initial-cluster-state', 'new', '--unsafe-no-fsync', '--log-level', 'warn'], join(dir, 'etcd.log'));
  const api = startIn(s, 'kube-apiserver', [b.kubeApiserver,
    `--advertise-address=${KDD_API_ADDRESS}`, '--bind-address=0.0.0.0', `--secure-port=${KDD_API_PORT}`,
    '--etcd-servers=http://127.0.0.1:2379',
    `--tls-cert-file=${pki.apiserver}`, `--tls-private-key-file=${pki.apiserverKey}`, `--client-ca-file=${pki.ca}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local', `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`, `--service-cluster-ip-range=${KDD_SERVICE_CIDR}`,
    '--authorization-mode=Node,RBAC', '--allow-privileged=true',
    `--cert-dir=${join(dir, 'apiserver-certs')}`, '--profiling=false', '--v=0'], join(dir, 'kube-apiserver.log'));
  await until('kube-apiserver /readyz', api, 120_000, async () => {
    const r = await run([...kddKubectlArgv(s), 'get', '--raw', '/readyz'], { env: kddKubectlEnv(s), timeoutMs: 10_000 });
    return r.code === 0 && r.stdout.trim() === 'ok';
  });
  await kddKubectl(s, ['apply', '-f', '-'], readFileSync(join(ROOT, 'manifests', 'crds.yaml'), 'utf8'));
  await kddKubectl(s, ['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s'], undefined, 130_000);
  await kddKubectl(s, ['create', 'clusterrolebinding', 'tortie-lab-node', '--clusterrole=cluster-admin', '--user=tortie-node']);
  const crds = (await kddKubectl(s, ['get', 'crd', '-o', 'name'])).trim().split('\n').filter((l) => l.includes('crd.projectcalico.org')).length;
  return `etcd + kube-apiserver ${kddServer()} in ${s.plan.etcdNs}, ${crds} CRDs applied with kubectl`;
}

// ---------------------------------------------------------------------------------------------
// API objects made by the lab

/** The Kubernetes Node of a lab node: hostname label and its underlay address as InternalIP. */
export function nodeObject(node: NodePlan): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: node.name, labels: { 'kubernetes.io/hostname': node.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': process.arch === 'arm64' ? 'arm64' : 'amd64' } },
    status: { addresses: [{ type: 'InternalIP', address: node.address }, { type: 'Hostname', address: node.name }] },
  };
}

/** Creates the Node objects (status with InternalIP, as a kubelet posts it). */
export async function createNodes(s: LabState, nodes: readonly NodePlan[]): Promise<void> {
  for (const n of nodes) {
    const obj = nodeObject(n);
    await kddKubectl(s, ['create', '-f', '-'], JSON.stringify(obj));
    // The status subresource: a create may not keep it.
    await kddKubectl(s, ['patch', 'node', n.name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: obj.status })]);
  }
}

export async function deleteNode(s: LabState, name: string): Promise<void> {
  await kddKubectl(s, ['delete', 'node', name, '--ignore-not-found']);
}

/** A Namespace with its labels (kubectl apply: labels given earlier and not now go) and its `default` ServiceAccount. */
export async function applyNamespace(s: LabState, name: string, labels: Record<string, string>): Promise<void> {
  const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels } };
  // No controller-manager makes the `default` ServiceAccount: the lab does (its ksa.<ns>.default profile follows).
  const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: name } };
  await kddKubectl(s, ['apply', '-f', '-'], `${JSON.stringify(ns)}\n---\n${JSON.stringify(sa)}\n`);
}

/** The container port name of a served port (≤ 15 characters, as Kubernetes requires): serve-<port>-<proto>. */
export function servePortName(x: ServeSpec): string {
  return `serve-${x.port}-${x.proto}`;
}

/** The Pod object of a lab pod: bound to its node, one container declaring the served ports by name. */
export function podObject(pod: Pick<PodRecord, 'namespace' | 'name' | 'node' | 'labels' | 'serve'>): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: pod.name, namespace: pod.namespace, labels: pod.labels },
    spec: {
      nodeName: pod.node,
      serviceAccountName: 'default',
      automountServiceAccountToken: false,
      containers: [{
        name: 'server',
        image: KDD_POD_IMAGE,
        ports: pod.serve.map((x) => ({ name: servePortName(x), containerPort: x.port, protocol: x.proto.toUpperCase() })),
      }],
    },
  };
}

export async function createPod(s: LabState, pod: PodRecord): Promise<void> {
  await kddKubectl(s, ['create', '-f', '-'], JSON.stringify(podObject(pod)));
}

/** Deletes the Pod object at once (no kubelet would ever confirm a graceful deletion). */
export async function deletePod(s: LabState, pod: Pick<PodRecord, 'namespace' | 'name'>): Promise<void> {
  await kddKubectl(s, ['-n', pod.namespace, 'delete', 'pod', pod.name, '--grace-period=0', '--force', '--ignore-not-found', '--wait=false']);
}

// ---------------------------------------------------------------------------------------------
// Policies through kubectl

/**
 * A policy document as kubectl takes it on a cluster without Calico's aggregated API server:
 * Kubernetes kinds as they are; a projectcalico.org/v3 resource validated and defaulted as
 * tortiectl would store it, then as its crd.projectcalico.org/v1 custom resource, exactly as the
 * kubernetes backend writes it (libcalico-go/lib/backend/kubernetes/mapping.ts: tiered names
 * `default.<name>`, the tier label, metadata in the `projectcalico.org/metadata` annotation).
 */
export function kubectlDocument(doc: Record<string, unknown>): Record<string, unknown> {
  if (doc.apiVersion !== 'projectcalico.org/v3') return doc;
  const r = validateResource(doc);
  const { resourceVersion: _rv, ...metadata } = r.metadata;
  const key = resourceKey(r.kind, r.metadata.name, r.metadata.namespace);
  return toObject(key, refOfKey(key), JSON.stringify({ ...r, metadata })) as unknown as Record<string, unknown>;
}

export function kubectlDocumentsText(docs: readonly Record<string, unknown>[]): string {
  return docs.map((d) => JSON.stringify(kubectlDocument(d))).join('\n---\n') + '\n';
}
