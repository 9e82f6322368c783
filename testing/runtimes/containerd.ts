// A private containerd in a node host, driven with `ctr run --cni`.
//
// How `ctr run --cni` finds its CNI configuration (containerd 1.6.20, Debian 12; go-cni 1.1.x):
// - ctr itself (not the containerd daemon) does the CNI calls: `gocni.New(gocni.WithDefaultConf)` in
//   cmd/ctr/commands/run/run.go. There is no flag and no environment variable (CNI_CONF_DIR, CNI_PATH,
//   NETCONFPATH are all ignored) for either directory.
// - Conf dir: fixed /etc/cni/net.d; only the FIRST file (lexical order; .conf/.conflist/.json) is loaded.
// - Plugin dirs: fixed ["/opt/cni/bin", "/usr/lib/cni"] (the second is a Debian patch). Plugins get
//   CNI_PATH=/opt/cni/bin:/usr/lib/cni and inherit ctr's whole environment.
// - The CRI plugin's [plugins."io.containerd.grpc.v1.cri".cni] bin_dir/conf_dir settings in the
//   daemon's config do NOT apply to ctr; this rig disables the CRI plugin altogether.
// So the rig gives ctr its directories through the node's mount namespace: the node's /etc/cni/net.d
// and /opt/cni/bin are shadowed by temp dirs (see node.ts); the rig writes the conflist as the only
// file of the former and links the caller's plugins into the latter.
//
// Lifecycle as ctr does it:
// - run(): `ctr run --cni --rm --null-io <image> <name> sleep …` is started and kept running in the
//   foreground. ctr creates the task, runs CNI ADD (CNI_NETNS=/proc/<pid>/ns/net,
//   CNI_CONTAINERID=<namespace>-<name>, CNI_IFNAME=eth0), then starts the task. run() resolves when the
//   task is RUNNING (so ADD is done) and rejects with ctr's stderr if ctr exits first (ADD failed).
//   With `-d` ctr would never run DEL; that is why the foreground form is used.
// - remove(): `ctr task kill -s SIGKILL <name>`; the foreground ctr then runs CNI DEL with CNI_NETNS=""
//   (the task has exited), deletes the task, and (--rm) the container and its snapshot.
//   A DEL failure is only logged by ctr ("network review"); it appears in RemoveResult.stderr.
//
// The daemon: `containerd -c <dir>/config.toml`, spawned inside the node (nsenter into its network and
// mount namespaces), with its own root, state, gRPC/ttrpc sockets and opt dir under the node's temp
// dir, CRI disabled, snapshotter overlayfs. Shim sockets (/run/containerd/s), runc state
// (/run/containerd/runc) and the libcni cache (/var/lib/cni) land in the node's shadow dirs.
// Containers' cgroups are /<namespace>/<name>; the namespace is registered with the node as a cgroup
// parent to sweep. Stopped by PID (SIGTERM, then SIGKILL).

import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type ContainerRuntime,
  conflistObject,
  type ConflistInput,
  type ExecResult,
  linkPlugins,
  parseIpAddr,
  randomSuffix,
  type RemoveResult,
  type RigOptions,
  type RunningContainer,
  type RunOptions,
  testImage,
} from './common.js';
import { NodeHost } from './node.js';
import { pidAlive, sleep, terminatePids, waitExit } from './proc.js';

export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';

/** Why the containerd rig cannot run here, or null. */
export function containerdUnavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const b of [CONTAINERD, CTR, '/usr/bin/containerd-shim-runc-v2', '/usr/sbin/runc']) {
    if (!existsSync(b)) return `${b} missing (apt-get install containerd)`;
  }
  return null;
}

export interface ContainerdOptions extends RigOptions {
  /** The network: written as the only file of the node's /etc/cni/net.d (ctr loads only one). */
  conflist: ConflistInput;
  /** containerd namespace (default "trt-<random>"); CNI_CONTAINERID is "<namespace>-<name>". */
  namespace?: string;
  /** Snapshotter (default "overlayfs"). */
  snapshotter?: string;
}

interface Ctr {
  name: string;
  proc: ChildProcess;
  stderr: string;
  info: RunningContainer;
}

export class ContainerdRig implements ContainerRuntime {
  readonly kind = 'containerd' as const;
  readonly node: NodeHost;
  readonly hostNetns: string;
  /** containerd namespace. */
  readonly namespace: string;
  /** The rig's directory (config, root, state, socket, log) inside the node's temp dir. */
  readonly dir: string;
  /** gRPC socket path. */
  readonly address: string;
  /** Path of the conflist file ctr reads (backing file of /etc/cni/net.d/<file>). */
  conflistPath = '';
  private daemon: ChildProcess | null = null;
  private ownNode: boolean;
  private env: Record<string, string>;
  private containers = new Map<string, Ctr>();
  private image = '';
  private snapshotter: string;
  private closed = false;

  private constructor(node: NodeHost, ownNode: boolean, opts: ContainerdOptions) {
    this.node = node;
    this.ownNode = ownNode;
    this.hostNetns = node.name;
    this.namespace = opts.namespace ?? `trt-${randomSuffix()}`;
    this.dir = join(node.dir, `containerd-${this.namespace}`);
    this.address = join(this.dir, 'containerd.sock');
    this.env = opts.env ?? {};
    this.snapshotter = opts.snapshotter ?? 'overlayfs';
  }

  /** Starts containerd in a node (a new one unless opts.node is given) and imports the test image. */
  static async start(opts: ContainerdOptions): Promise<ContainerdRig> {
    const why = containerdUnavailableReason();
    if (why) throw new Error(`containerd rig unavailable: ${why}`);
    const node = opts.node ?? (await NodeHost.create(opts.nodeOptions));
    const rig = new ContainerdRig(node, opts.node === undefined, opts);
    try {
      await rig.init(opts);
      return rig;
    } catch (e) {
      await rig.close();
      throw e;
    }
  }

  private ctr(args: readonly string[]): string[] {
    return [CTR, '--address', this.address, '--namespace', this.namespace, ...args];
  }

  private async init(opts: ContainerdOptions): Promise<void> {
    this.node.addCgroupParent(`/${this.namespace}`);
    for (const d of ['root', 'state', 'opt', 'fifo']) mkdirSync(join(this.dir, d), { recursive: true });
    this.setConflist(opts.conflist);
    linkPlugins(this.node.cniBinDir, opts.binDirs ?? []);

    const cfg = join(this.dir, 'config.toml');
    const q = (s: string): string => JSON.stringify(s);
    writeFileSync(
      cfg,
      [
        'version = 2',
        `root = ${q(join(this.dir, 'root'))}`,
        `state = ${q(join(this.dir, 'state'))}`,
        // ctr run --cni does its own CNI calls; the CRI plugin (and its cni bin_dir/conf_dir) is not needed.
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
        '[grpc]',
        `  address = ${q(this.address)}`,
        '[ttrpc]',
        `  address = ${q(this.address + '.ttrpc')}`,
        '[debug]',
        '  address = ""',
        '[metrics]',
        '  address = ""',
        '[plugins."io.containerd.internal.v1.opt"]',
        `  path = ${q(join(this.dir, 'opt'))}`,
        '',
      ].join('\n'),
    );
    const log = openSync(join(this.dir, 'containerd.log'), 'a');
    try {
      this.daemon = this.node.spawn([CONTAINERD, '-c', cfg], { env: this.node.env(this.env), stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (this.daemon.exitCode !== null || this.daemon.signalCode !== null) throw new Error(`containerd exited: ${this.logTail()}`);
      const r = await this.node.run(this.ctr(['version']), { env: this.node.env(this.env), timeoutMs: 5000 });
      if (r.code === 0) break;
      if (Date.now() > deadline) throw new Error(`containerd not ready: ${r.stderr.trim()} ${this.logTail()}`);
      await sleep(50);
    }
    const img = testImage();
    await this.node.mustRun(this.ctr(['images', 'import', '--snapshotter', this.snapshotter, img.archive]), { env: this.node.env(this.env) });
    this.image = img.ref;
  }

  /** The last lines of containerd's log. */
  logTail(lines = 20): string {
    try {
      return readFileSync(join(this.dir, 'containerd.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** PID of the containerd daemon. */
  get daemonPid(): number {
    return this.daemon?.pid ?? -1;
  }

  /**
   * Replaces the network ctr uses for containers started from now on: the conflist becomes the only file
   * in the node's /etc/cni/net.d. Note that a node shared by two ContainerdRigs has one conf dir.
   */
  setConflist(conflist: ConflistInput): void {
    const o = conflistObject(conflist);
    const dir = this.node.cniConfDir;
    for (const e of readdirSync(dir)) rmSync(join(dir, e), { force: true, recursive: true });
    this.conflistPath = join(dir, `10-${o.name as string}.conflist`);
    writeFileSync(this.conflistPath, JSON.stringify(o, null, 2));
  }

  /** Links more plugin executables into the node's /opt/cni/bin (first wins; existing names are kept). */
  addBinDirs(binDirs: readonly string[]): string[] {
    return linkPlugins(this.node.cniBinDir, binDirs);
  }

  names(): string[] {
    return [...this.containers.keys()];
  }

  async run(name: string, opts: RunOptions = {}): Promise<RunningContainer> {
    if (this.containers.has(name)) throw new Error(`container ${name} already exists`);
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`bad container name ${name}`);
    const cmd = opts.command ?? ['sleep', '1000000'];
    const argv = this.ctr([
      'run',
      '--cni',
      '--rm',
      '--null-io',
      '--fifo-dir',
      join(this.dir, 'fifo'),
      '--snapshotter',
      this.snapshotter,
      ...(opts.extraArgs ?? []),
      this.image,
      name,
      ...cmd,
    ]);
    const proc = this.node.spawn(argv, { env: this.node.env(this.env), stdio: ['ignore', 'ignore', 'pipe'] });
    const c: Ctr = { name, proc, stderr: '', info: { name, cniContainerId: `${this.namespace}-${name}`, pid: -1, netnsPath: '' } };
    proc.stderr!.setEncoding('utf8').on('data', (d: string) => (c.stderr += d));
    this.containers.set(name, c);
    const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        await waitExit(proc, 1000);
        this.containers.delete(name);
        throw new Error(`ctr run ${name} exited ${proc.exitCode ?? proc.signalCode}: ${c.stderr.trim()}`);
      }
      const r = await this.node.run(this.ctr(['tasks', 'ls']), { env: this.node.env(this.env), timeoutMs: 10_000 });
      const m = new RegExp(`^${name.replace(/\./g, '\\.')}\\s+(\\d+)\\s+(\\S+)`, 'm').exec(r.stdout);
      if (m && m[2] === 'RUNNING') {
        c.info.pid = Number(m[1]);
        c.info.netnsPath = `/proc/${c.info.pid}/ns/net`;
        return { ...c.info };
      }
      if (Date.now() > deadline) {
        await this.remove(name).catch(() => undefined);
        throw new Error(`ctr run ${name}: not running after ${opts.timeoutMs ?? 30_000} ms: ${c.stderr.trim()}`);
      }
      await sleep(20);
    }
  }

  async exec(name: string, argv: readonly string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    const execId = `x${randomSuffix()}`;
    const r = await this.node.run(this.ctr(['tasks', 'exec', '--exec-id', execId, '--fifo-dir', join(this.dir, 'fifo'), name, ...argv]), {
      env: this.node.env(this.env),
      timeoutMs: opts.timeoutMs ?? 30_000,
    });
    return { code: r.code, stdout: r.stdout, stderr: r.stderr };
  }

  async addrs(name: string, ifname = 'eth0'): Promise<string[]> {
    const r = await this.exec(name, ['ip', 'addr', 'show', 'dev', ifname]);
    if (r.code !== 0) throw new Error(`ip addr in ${name}: ${r.stderr.trim()}`);
    return parseIpAddr(r.stdout);
  }

  async ip(name: string, ifname = 'eth0'): Promise<string> {
    const v4 = (await this.addrs(name, ifname)).find((a) => !a.includes(':'));
    if (!v4) throw new Error(`${name} has no IPv4 address on ${ifname}`);
    return v4.split('/')[0]!;
  }

  async remove(name: string): Promise<RemoveResult> {
    const c = this.containers.get(name);
    if (!c) throw new Error(`no container ${name}`);
    const t0 = Date.now();
    const k = await this.node.run(this.ctr(['tasks', 'kill', '--signal', 'SIGKILL', name]), { env: this.node.env(this.env), timeoutMs: 10_000 });
    let exited = await waitExit(c.proc, 30_000);
    if (!exited) {
      // ctr is stuck (e.g. a plugin hangs in DEL): kill it by PID; its container is swept at close.
      c.proc.kill('SIGKILL');
      exited = await waitExit(c.proc, 5000);
    }
    this.containers.delete(name);
    const killErr = k.code === 0 ? '' : `ctr tasks kill: ${k.stderr.trim()}\n`;
    return { code: c.proc.exitCode, stderr: killErr + c.stderr, ms: Date.now() - t0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const name of this.names()) await this.remove(name).catch(() => undefined);
    if (this.daemon?.pid !== undefined) await terminatePids([this.daemon.pid], 5000);
    if (this.daemon) await waitExit(this.daemon, 2000);
    if (this.ownNode) await this.node.close();
    else if (this.daemon?.pid !== undefined && pidAlive(this.daemon.pid)) this.daemon.kill('SIGKILL');
  }
}

/**
 * Starts a containerd rig, runs fn, and always tears it down (containers removed with DEL, daemon
 * stopped, node closed unless it was passed in).
 */
export async function withContainerd<T>(opts: ContainerdOptions, fn: (rt: ContainerdRig) => Promise<T>): Promise<T> {
  const rt = await ContainerdRig.start(opts);
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}
