// The lab's state file: everything `down` needs to undo a lab, written before each step takes
// effect (namespace names before they are made, PIDs as soon as processes start), so that `down`
// works after a crash. Lives in $TORTIE_LAB_DIR/<name>/state.json (default /var/lib/tortie-lab).
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { KubeState } from './kube/cluster.js';
import type { LabPlan, ServeSpec } from './topology.js';
import { pidAlive } from './sys.js';

export function labsRoot(): string {
  return process.env.TORTIE_LAB_DIR || '/var/lib/tortie-lab';
}

export function labDir(name: string): string {
  return join(labsRoot(), name);
}

export interface ProcRecord {
  pid: number;
  /** agent:<node>, etcd, server:<ns/pod>:<port>/<proto> */
  role: string;
  /** /proc/<pid>/stat start time: tells our process from a later one with the same PID. */
  startTime?: string;
  log?: string;
}

export interface PodRecord {
  namespace: string;
  name: string;
  node: string;
  netns: string;
  containerId: string;
  ip?: string;
  hostIf?: string;
  labels: Record<string, string>;
  serve: ServeSpec[];
  servers: ProcRecord[];
  /** adding | up */
  phase: 'adding' | 'up';
}

export interface DatastoreInfo {
  type: 'embedded' | 'etcdv3' | 'kubernetes';
  path?: string;
  endpoints?: string;
  /** kubernetes: the kubeconfig (reached from the master node's network namespace). */
  kubeconfig?: string;
}

export interface LabState {
  version: 1;
  name: string;
  createdAt: string;
  status: 'building' | 'up' | 'failed';
  dir: string;
  plan: LabPlan;
  /** Namespaces that may exist (recorded before creation). */
  namespaces: string[];
  processes: ProcRecord[];
  datastore: DatastoreInfo;
  pods: Record<string, PodRecord>;
  /** Kubernetes namespaces whose kns.<name> profile the lab made (`ns add`, or the first pod's
   *  `pod add`, which leaves an existing profile alone), with the labels it was given. */
  k8sNamespaces?: Record<string, Record<string, string>>;
  /** `up --kubernetes`: the cluster (control plane on the first node, kubelets on all). */
  kube?: KubeState;
}

export function statePath(name: string): string {
  return join(labDir(name), 'state.json');
}

export function readState(name: string): LabState | null {
  const p = statePath(name);
  if (!existsSync(p)) return null;
  return JSON.parse(readFileSync(p, 'utf8')) as LabState;
}

export function mustReadState(name: string): LabState {
  const s = readState(name);
  if (!s) throw new Error(`no lab named ${JSON.stringify(name)} (no ${statePath(name)})`);
  return s;
}

/** Atomic write (temp file + rename). */
export function writeState(s: LabState): void {
  mkdirSync(s.dir, { recursive: true });
  const p = join(s.dir, 'state.json');
  const tmp = `${p}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(s, null, 2) + '\n');
  renameSync(tmp, p);
}

export function listLabNames(): string[] {
  const root = labsRoot();
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => existsSync(join(root, n, 'state.json')))
    .sort();
}

/**
 * Runs fn holding the lab's lock (a file with the holder's PID; a lock whose holder is gone is
 * taken over). Commands on one lab are serialised; different labs are independent.
 */
export async function withLock<T>(name: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const dir = labDir(name);
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, 'lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      let holder = NaN;
      try {
        holder = Number(readFileSync(lock, 'utf8'));
      } catch {
        continue;
      }
      if (!Number.isInteger(holder) || holder <= 0 || !pidAlive(holder)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`lab ${name} is locked by PID ${holder}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  try {
    return await fn();
  } finally {
    try {
      if (readFileSync(lock, 'utf8') === String(process.pid)) rmSync(lock, { force: true });
    } catch {
      // lab directory removed by down
    }
  }
}
