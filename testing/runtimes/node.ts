// The "node host": a network namespace plus a private mount namespace that stand in for a Kubernetes
// node's root namespaces, so that container runtimes, the CNI plugins they exec, and a node agent
// can all run "on the node" without touching the machine's real root namespaces.
//
// What it is made of:
// - A named network namespace `trt-<pid>-<rand>` (/run/netns/<name>) with lo up. Veth host ends, routes,
//   sysctls, iptables/nft rules made by plugins land here.
// - A private mount namespace (propagation private, so nothing leaks back) held open by a "holder"
//   process (`cat`, reading a pipe from this Node process). In it:
//   * /sys is a fresh sysfs mounted from inside the network namespace (so /sys/class/net shows the
//     node's links, as `ip netns exec` does), with the machine's /sys/fs/cgroup bound back on top
//     (runc needs it; `ip netns exec` loses it, which is why the reference notes say podman fails there).
//   * Well-known runtime paths are "shadowed" by directories under the node's temp dir, so every file a
//     runtime or plugin writes there stays in the temp dir:
//       /etc/cni/net.d  -> <dir>/shadow/etc-cni-net.d     (containerd's `ctr run --cni` reads only this)
//       /opt/cni/bin    -> <dir>/shadow/opt-cni-bin       (ctr's first plugin dir; Debian's go-cni adds /usr/lib/cni)
//       /var/lib/cni    -> <dir>/shadow/var-lib-cni       (libcni result cache; host-local's default dataDir)
//       /var/lib/containers, /var/lib/containerd, /run/containerd, /run/netns, /run/runc,
//       /run/containers, /run/libpod, /run/podman, /run/crun, /run/mount, /var/tmp (same idea)
//     plus any `extraShadows` the caller asks for (e.g. a node agent's /var/run/calico).
//     A path that exists is bind-mounted over. A path that does not exist is made visible by
//     "mirroring" its nearest existing ancestor: the ancestor is rbind-mounted to <dir>/ns/orig-N, a
//     staging directory of symlinks (one per original entry, pointing into orig-N) plus the shadow
//     entries is bind-mounted over the ancestor. The machine's filesystem is never written.
// - Commands run in the node with `nsenter --net=/run/netns/<name> --mount=/proc/<holder>/ns/mnt`.
//   No PID namespace is used on purpose: CNI_NETNS values like /proc/<pid>/ns/net (what ctr passes)
//   then mean the same process inside and outside the node.
//
// Clean-up: close() kills every process still in the node's network namespace (by PID), every process
// in the cgroup parents runtimes registered (containers: see addCgroupParent), deletes the namespace and
// removes the temp dir. The same happens synchronously at process exit or on SIGINT/SIGTERM/SIGHUP as a
// last resort, and `reapStaleNodes()` (called by createNode) cleans up after a rig whose Node process died.

import { type ChildProcess, spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import { type CmdOptions, type CmdResult, mustRun, pidAlive, pidsInNetns, runCmd, sleep, terminatePids } from './proc.js';

export const IP = '/usr/sbin/ip';
export const NSENTER = '/usr/bin/nsenter';
export const UNSHARE = '/usr/bin/unshare';

/** PATH given to everything run in the node (runtimes look up runc, conmon, iptables, … in it). */
export const NODE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Paths always shadowed in the node's mount namespace. */
export const DEFAULT_SHADOWS = [
  '/etc/cni/net.d',
  '/opt/cni/bin',
  '/var/lib/cni',
  '/var/lib/containers',
  '/var/lib/containerd',
  '/run/containerd',
  '/run/netns',
  '/run/runc',
  '/run/crun',
  '/run/containers',
  '/run/libpod',
  '/run/podman',
  '/run/mount',
  '/var/tmp',
] as const;

/** Why the rig cannot run here, or null. */
export function nodeUnavailableReason(): string | null {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'needs root (network and mount namespaces)';
  for (const b of [IP, NSENTER, UNSHARE, '/usr/bin/mount', '/bin/bash', '/usr/bin/cat']) if (!existsSync(b)) return `${b} missing`;
  return null;
}

export interface NodeOptions {
  /** Netns name prefix; the name is `<prefix>-<pid>-<rand>` (max 15+ chars is fine for netns). Default "trt". */
  prefix?: string;
  /** Parent of the node's temp dir. Default os.tmpdir(). */
  baseDir?: string;
  /** More absolute paths to shadow with fresh directories (see shadowDir()). */
  extraShadows?: readonly string[];
}

interface StateFile {
  creatorPid: number;
  creatorStart: string;
  netns: string;
  dir: string;
  holderPid?: number;
  cgroupParents: string[];
}

const STATE = 'rig-state.json';
const DIR_PREFIX = 'tortie-rt-';

function procStartTime(pid: number): string {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return s.slice(s.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

function cgroupRoots(): string[] {
  const base = '/sys/fs/cgroup';
  const roots = [base];
  try {
    for (const e of readdirSync(base)) {
      const p = join(base, e);
      try {
        if (lstatSync(p).isDirectory() && existsSync(join(p, 'cgroup.procs'))) roots.push(p);
      } catch {
        /* skip */
      }
    }
  } catch {
    return [];
  }
  return roots;
}

/** Kills (SIGKILL) every process in the cgroup subtree `parent` (e.g. "/trt-x") in every hierarchy, then removes the cgroups. */
export function sweepCgroupParent(parent: string): void {
  if (!/^\/[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(parent) || parent.split('/').some((c) => c === '..' || c === '.')) return;
  const dirs: string[] = [];
  const walk = (d: string): void => {
    dirs.push(d);
    let entries: string[] = [];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e);
      try {
        if (lstatSync(p).isDirectory()) walk(p);
      } catch {
        /* gone */
      }
    }
  };
  for (const root of cgroupRoots()) {
    const top = join(root, parent);
    if (existsSync(top)) walk(top);
  }
  for (let round = 0; round < 40; round++) {
    let left = 0;
    for (const d of dirs) {
      let procs: number[] = [];
      try {
        procs = readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
      } catch {
        continue;
      }
      for (const p of procs) {
        left++;
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    }
    if (left === 0) break;
    spawnSync('sleep', ['0.05']);
  }
  // Deepest first.
  for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
    try {
      rmdirSync(d);
    } catch {
      /* busy or gone */
    }
  }
}

function syncCleanup(st: StateFile, holderPid: number | undefined): void {
  const netnsFile = `/run/netns/${st.netns}`;
  for (const parent of st.cgroupParents) sweepCgroupParent(parent);
  const pids = pidsInNetns(netnsFile);
  if (holderPid !== undefined && pidAlive(holderPid)) pids.push(holderPid);
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (let i = 0; i < 40 && pids.some(pidAlive); i++) spawnSync('sleep', ['0.05']);
  for (const parent of st.cgroupParents) sweepCgroupParent(parent);
  if (existsSync(netnsFile)) spawnSync(IP, ['netns', 'del', st.netns]);
  rmSync(st.dir, { recursive: true, force: true });
}

/**
 * Cleans up after rigs whose creating Node process is gone: their processes (by network namespace and
 * registered cgroup parents), namespace and temp dir. Only directories named tortie-rt-* holding a
 * rig-state.json under `baseDir` are considered.
 */
export function reapStaleNodes(baseDir = tmpdir()): string[] {
  const reaped: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(baseDir).filter((e) => e.startsWith(DIR_PREFIX));
  } catch {
    return reaped;
  }
  for (const e of entries) {
    const dir = join(baseDir, e);
    let st: StateFile;
    try {
      st = JSON.parse(readFileSync(join(dir, STATE), 'utf8')) as StateFile;
    } catch {
      continue;
    }
    if (st.dir !== dir || !/^[A-Za-z0-9-]+$/.test(st.netns)) continue;
    if (pidAlive(st.creatorPid) && procStartTime(st.creatorPid) === st.creatorStart) continue;
    syncCleanup(st, undefined);
    reaped.push(st.netns);
  }
  // Image caches (common.ts testImage) of dead processes.
  for (const e of entries) {
    const m = /^tortie-rt-img-(\d+)-/.exec(e);
    if (m && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]))) rmSync(join(baseDir, e), { recursive: true, force: true });
  }
  return reaped;
}

const liveNodes = new Set<NodeHost>();
const exitCleanups: Array<() => void> = [];
let hooksInstalled = false;

function lastResort(): void {
  for (const n of [...liveNodes]) n.closeSync();
  for (const f of exitCleanups.splice(0)) {
    try {
      f();
    } catch {
      /* keep going */
    }
  }
}

function installHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', lastResort);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const handler = (): void => {
      lastResort();
      process.off(sig, handler);
      process.kill(process.pid, sig);
    };
    process.on(sig, handler);
  }
}

/** Registers a synchronous clean-up run at process exit or on SIGINT/SIGTERM/SIGHUP (after nodes are closed). */
export function onRigExit(fn: () => void): void {
  installHooks();
  exitCleanups.push(fn);
}

interface MountOp {
  op: 'rbind' | 'bind' | 'sysfs' | 'detach';
  args: string[];
}

// The holder: performs the mount operations given as arguments, says "ready", then holds the mount
// namespace open until its stdin (a pipe from this process) closes.
const HOLDER_SCRIPT = `set -eu
while [ $# -gt 0 ]; do
  case "$1" in
    rbind) mount -n --rbind "$2" "$3"; shift 3 ;;
    bind) mount -n --bind "$2" "$3"; shift 3 ;;
    sysfs) mount -n -t sysfs sysfs "$2"; shift 2 ;;
    detach) umount -n -l "$2"; shift 2 ;;
    *) echo "holder: bad op $1" >&2; exit 2 ;;
  esac
done
echo ready
exec cat >/dev/null
`;

/** A daemon started with NodeHost.startDaemon(). */
export interface NodeDaemon {
  /** Its PID (nsenter execs it, so this is the daemon itself). */
  pid: number;
  child: ChildProcess;
  logFile: string;
  /** SIGTERM, then SIGKILL after graceMs (default 3000), by PID. */
  stop(graceMs?: number): Promise<void>;
  /** The last 20 lines of its log. */
  logTail(): string;
}

export class NodeHost {
  /** Network namespace name (`ip netns exec <name> …`, `ip -n <name> …`). */
  readonly name: string;
  /** /run/netns/<name>. */
  readonly netnsPath: string;
  /** The node's temp dir; everything the rig and the runtimes write lives here. */
  readonly dir: string;
  /** Shadowed path -> backing directory. */
  readonly shadows: ReadonlyMap<string, string>;
  private holder: ChildProcess | null = null;
  private state: StateFile;
  private closed = false;

  private constructor(name: string, dir: string, shadows: Map<string, string>, state: StateFile) {
    this.name = name;
    this.netnsPath = `/run/netns/${name}`;
    this.dir = dir;
    this.shadows = shadows;
    this.state = state;
  }

  /** PID of the process holding the mount namespace. */
  get holderPid(): number {
    return this.holder?.pid ?? -1;
  }

  /** /proc/<holder>/ns/mnt: the node's mount namespace. */
  get mountNsPath(): string {
    return `/proc/${this.holderPid}/ns/mnt`;
  }

  /** The directory that backs a shadowed path (throws for a path that is not shadowed). */
  shadowDir(path: string): string {
    const d = this.shadows.get(normalize(path));
    if (!d) throw new Error(`${path} is not shadowed in node ${this.name}`);
    return d;
  }

  /** Backing dir of /etc/cni/net.d (what `ctr run --cni` reads; only the first file counts). */
  get cniConfDir(): string {
    return this.shadowDir('/etc/cni/net.d');
  }

  /** Backing dir of /opt/cni/bin (searched first by `ctr run --cni`, then /usr/lib/cni). */
  get cniBinDir(): string {
    return this.shadowDir('/opt/cni/bin');
  }

  /** Base environment for commands in the node. */
  env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { PATH: NODE_PATH, HOME: '/root', LANG: 'C', ...extra };
  }

  /**
   * argv prefix that runs `argv` inside the node (its network and mount namespaces). `cwd` (default
   * "/") is resolved inside the node's mount namespace.
   */
  wrap(argv: readonly string[], cwd = '/'): string[] {
    if (this.closed || !this.holder) throw new Error(`node ${this.name} is closed`);
    return [NSENTER, `--net=${this.netnsPath}`, `--mount=${this.mountNsPath}`, `--wdns=${cwd}`, '--', ...argv];
  }

  /**
   * Spawns a long-running process in the node (e.g. a node agent or a daemon). The returned child's
   * PID is the process itself (nsenter execs it; no fork). Stop it with process.kill(child.pid) before
   * close(); close() kills any leftover by PID anyway.
   */
  spawn(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdio?: SpawnOptions['stdio'] } = {}): ChildProcess {
    const full = this.wrap(argv, opts.cwd);
    return spawn(full[0]!, full.slice(1), { env: opts.env ?? this.env(), stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'] });
  }

  /**
   * Starts a daemon in the node (e.g. Tortie's node agent) with stdout+stderr appended to `logFile`
   * (default <dir>/<argv0 basename>.log), and waits until `ready()` resolves true (polled every 50 ms)
   * or rejects if the daemon exits first or `timeoutMs` (default 15 000) passes. stop() sends SIGTERM,
   * then SIGKILL after `graceMs`, by PID. close() kills it anyway if it is still running.
   */
  async startDaemon(
    argv: readonly string[],
    opts: { env?: NodeJS.ProcessEnv; logFile?: string; ready?: () => Promise<boolean>; timeoutMs?: number } = {},
  ): Promise<NodeDaemon> {
    const logFile = opts.logFile ?? join(this.dir, `${(argv[0] ?? 'daemon').split('/').pop()}-${randomBytes(2).toString('hex')}.log`);
    const fd = openSync(logFile, 'a');
    let child: ChildProcess;
    try {
      child = this.spawn(argv, { env: opts.env ?? this.env(), stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const tail = (): string => {
      try {
        return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-20).join('\n');
      } catch {
        return '';
      }
    };
    const stop = async (graceMs = 3000): Promise<void> => {
      if (child.pid !== undefined) await terminatePids([child.pid], graceMs);
    };
    const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${argv.join(' ')} exited ${child.exitCode ?? child.signalCode}: ${tail()}`);
      if (!opts.ready || (await opts.ready().catch(() => false))) break;
      if (Date.now() > deadline) {
        await stop(500);
        throw new Error(`${argv.join(' ')} not ready after ${opts.timeoutMs ?? 15_000} ms: ${tail()}`);
      }
      await sleep(50);
    }
    return { pid: child.pid!, child, logFile, stop, logTail: tail };
  }

  /** Runs a command in the node and captures its output (never rejects on a non-zero exit). */
  run(argv: readonly string[], opts: CmdOptions = {}): Promise<CmdResult> {
    return runCmd(this.wrap(argv, opts.cwd), { ...opts, cwd: undefined, env: opts.env ?? this.env() });
  }

  /** Like run(), but rejects on a non-zero exit. */
  mustRun(argv: readonly string[], opts: CmdOptions = {}): Promise<CmdResult> {
    return mustRun(this.wrap(argv, opts.cwd), { ...opts, cwd: undefined, env: opts.env ?? this.env() });
  }

  /** `ip -n <name> <args>` stdout (rejects on failure). Runs from the root namespaces; reads only. */
  async ip(args: readonly string[]): Promise<string> {
    return (await mustRun([IP, '-n', this.name, ...args])).stdout;
  }

  /**
   * Registers a cgroup parent (e.g. "/trt-x") whose processes are killed and cgroups removed at close,
   * as a safety net for container processes (a container's init survives the death of its shim).
   */
  addCgroupParent(parent: string): void {
    if (!this.state.cgroupParents.includes(parent)) {
      this.state.cgroupParents.push(parent);
      this.saveState();
    }
  }

  private saveState(): void {
    writeFileSync(join(this.dir, STATE), JSON.stringify(this.state));
  }

  /** Creates the node. */
  static async create(opts: NodeOptions = {}): Promise<NodeHost> {
    const why = nodeUnavailableReason();
    if (why) throw new Error(`node host unavailable: ${why}`);
    const baseDir = opts.baseDir ?? tmpdir();
    reapStaleNodes(baseDir);
    const prefix = opts.prefix ?? 'trt';
    const name = `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const dir = mkdtempSync(join(baseDir, DIR_PREFIX));
    const state: StateFile = { creatorPid: process.pid, creatorStart: procStartTime(process.pid), netns: name, dir, cgroupParents: [] };
    writeFileSync(join(dir, STATE), JSON.stringify(state));

    const shadowPaths = [...DEFAULT_SHADOWS, ...(opts.extraShadows ?? [])].map((p) => {
      if (!isAbsolute(p)) throw new Error(`shadow path must be absolute: ${p}`);
      return normalize(p).replace(/\/+$/, '');
    });
    const shadows = new Map<string, string>();
    for (const p of shadowPaths) {
      const d = join(dir, 'shadow', p.slice(1).replaceAll('/', '-'));
      mkdirSync(d, { recursive: true });
      shadows.set(p, d);
    }

    const node = new NodeHost(name, dir, shadows, state);
    liveNodes.add(node);
    installHooks();
    try {
      await mustRun([IP, 'netns', 'add', name]);
      await mustRun([IP, '-n', name, 'link', 'set', 'lo', 'up']);
      const ops = planMounts(dir, shadows);
      const holder = spawn(NSENTER, [`--net=/run/netns/${name}`, '--', UNSHARE, '--mount', '--propagation', 'private', '--', '/bin/bash', '-c', HOLDER_SCRIPT, 'holder', ...ops.flatMap((o) => [o.op, ...o.args])], {
        env: { PATH: NODE_PATH, LIBMOUNT_UTAB: join(dir, 'ns', 'utab'), LANG: 'C' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      node.holder = holder;
      state.holderPid = holder.pid;
      node.saveState();
      await new Promise<void>((resolve, reject) => {
        let out = '';
        let err = '';
        const timer = setTimeout(() => reject(new Error(`node holder not ready after 10 s: ${err}`)), 10_000);
        holder.stdout!.setEncoding('utf8').on('data', (d: string) => {
          out += d;
          if (out.includes('ready\n')) {
            clearTimeout(timer);
            resolve();
          }
        });
        holder.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
        holder.on('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`node holder exited ${code}: ${err.trim()}`));
        });
        holder.on('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
      holder.removeAllListeners('exit');
      holder.stdin!.on('error', () => {});
      return node;
    } catch (e) {
      await node.close();
      throw e;
    }
  }

  /**
   * Tears the node down: kills (by PID) every process still in its network namespace and its registered
   * cgroup parents, stops the holder, deletes the namespace and the temp dir. Idempotent.
   * Runtimes attached to the node should be closed first (they stop containers so DEL runs).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const parent of this.state.cgroupParents) sweepCgroupParent(parent);
    const pids = pidsInNetns(this.netnsPath).filter((p) => p !== this.holder?.pid);
    await terminatePids(pids, 3000);
    if (this.holder && this.holder.exitCode === null && this.holder.signalCode === null) {
      this.holder.stdin?.end();
      const t = Date.now();
      while (pidAlive(this.holder.pid!) && Date.now() - t < 2000) await sleep(20);
      if (pidAlive(this.holder.pid!)) this.holder.kill('SIGKILL');
    }
    this.closeSync();
  }

  /** Synchronous last-resort version of close() (process exit, signals). */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    liveNodes.delete(this);
    syncCleanup(this.state, this.holder?.pid);
  }
}

/** Convenience: create a node, run fn, always close. */
export async function withNode<T>(opts: NodeOptions, fn: (node: NodeHost) => Promise<T>): Promise<T> {
  const node = await NodeHost.create(opts);
  try {
    return await fn(node);
  } finally {
    await node.close();
  }
}

function isUnder(p: string, a: string): boolean {
  return a === '/' ? p !== '/' : p.startsWith(a + sep);
}

function nearestExisting(p: string): string {
  let cur = p;
  while (!existsSync(cur)) cur = dirname(cur);
  return cur;
}

/**
 * Works out the mount operations (and builds the staging directories) that make every shadowed path
 * show its backing directory in the node's mount namespace, plus the /sys remount.
 */
function planMounts(dir: string, shadows: Map<string, string>): MountOp[] {
  const nsDir = join(dir, 'ns');
  mkdirSync(nsDir, { recursive: true });
  const ops: MountOp[] = [];

  // Fresh sysfs for the node's network namespace, keeping the machine's cgroup mounts.
  if (existsSync('/sys/fs/cgroup')) {
    const cg = join(nsDir, 'cgroup');
    mkdirSync(cg);
    ops.push({ op: 'rbind', args: ['/sys/fs/cgroup', cg] });
    ops.push({ op: 'sysfs', args: ['/sys'] });
    ops.push({ op: 'rbind', args: [cg, '/sys/fs/cgroup'] });
    ops.push({ op: 'detach', args: [cg] });
  } else {
    ops.push({ op: 'sysfs', args: ['/sys'] });
  }

  // Ancestors to mirror: the nearest existing ancestor of each missing (or non-directory) path, keeping
  // only the outermost when one contains another.
  const paths = [...shadows.keys()];
  const isDir = (p: string): boolean => {
    try {
      return statSync(p).isDirectory();
    } catch {
      return false;
    }
  };
  let mirrors = [...new Set(paths.filter((p) => !isDir(p)).map((p) => nearestExisting(dirname(p))))];
  mirrors = mirrors.filter((a) => !mirrors.some((b) => b !== a && isUnder(a, b))).sort();
  if (mirrors.includes('/')) throw new Error('refusing to mirror /: a shadow path has no existing parent below /');

  mirrors.forEach((a, i) => {
    const orig = join(nsDir, `orig-${i}`);
    const stage = join(nsDir, `mirror-${i}`);
    mkdirSync(orig);
    mkdirSync(stage);
    const under = paths.filter((p) => isUnder(p, a)).map((p) => [relative(a, p).split(sep), shadows.get(p)!] as const);
    buildMirror(stage, a, orig, under);
    ops.push({ op: 'rbind', args: [a, orig] });
    ops.push({ op: 'bind', args: [stage, a] });
  });
  for (const p of paths) {
    if (mirrors.some((a) => isUnder(p, a))) continue;
    ops.push({ op: 'bind', args: [shadows.get(p)!, p] });
  }
  return ops;
}

/**
 * Fills `stage` (to be mounted over real dir `real`, whose original content is reachable at `orig`)
 * with a symlink per original entry, except along shadow paths `rels`, where the entry is a directory
 * (recursively mirrored) or, at the end of the path, a symlink to the backing directory.
 */
function buildMirror(stage: string, real: string | null, orig: string, rels: ReadonlyArray<readonly [string[], string]>): void {
  const heads = new Map<string, Array<readonly [string[], string]>>();
  for (const [r, backing] of rels) {
    const list = heads.get(r[0]!) ?? [];
    list.push([r.slice(1), backing]);
    heads.set(r[0]!, list);
  }
  let entries: string[] = [];
  if (real !== null) {
    try {
      entries = readdirSync(real);
    } catch {
      entries = [];
    }
  }
  for (const e of entries) if (!heads.has(e)) symlinkSync(join(orig, e), join(stage, e));
  for (const [head, subs] of heads) {
    const end = subs.find(([r]) => r.length === 0);
    if (end) {
      symlinkSync(end[1], join(stage, head));
      continue;
    }
    const sub = join(stage, head);
    mkdirSync(sub);
    const realSub = real !== null && existsSync(join(real, head)) && statSync(join(real, head)).isDirectory() ? join(real, head) : null;
    buildMirror(sub, realSub, join(orig, head), subs);
  }
}
