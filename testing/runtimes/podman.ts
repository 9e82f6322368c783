// podman (4.3, Debian 12) with its CNI network backend, all state in the node's temp dir, run inside a
// node host so the CNI plugins it execs run in the node's network namespace.
//
// How it is configured (no files outside the temp dir are written; the node shadows the rest):
// - CONTAINERS_CONF=<dir>/containers.conf:
//     [network] network_backend = "cni"   (explicit: with netavark installed podman would default to it)
//               network_config_dir = <dir>/net.d   (every *.conflist there is a podman network, named by
//                                                   its "name"; podman ignores /etc/cni/net.d then)
//               cni_plugin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]   (the node's /opt/cni/bin holds the
//                                                   caller's binDirs links; CNI_PATH is this list joined)
//     [engine]  cgroup_manager = "cgroupfs", events_logger = "file" (no systemd/journald here),
//               tmp_dir, volume_path, events_logfile_path under <dir>
//     [containers] default_ulimits nofile/nproc 1024 (the reference notes saw "error setting rlimit
//               type 7/6" without them)
// - CONTAINERS_STORAGE_CONF=<dir>/storage.conf: overlay driver, graphroot/runroot under <dir>.
// - Global flags repeated on every call: --root, --runroot, --tmpdir, --network-config-dir,
//   --cgroup-manager cgroupfs, --events-backend file; TMPDIR=<dir>/imgtmp (image copies).
//   conmon's exit command (`podman container cleanup`) inherits the same flags and environment.
// - Containers are started with --cgroup-parent=/<unique> (registered with the node for sweeping).
// - Each podman command runs in the node: `nsenter --net=/run/netns/<node> --mount=/proc/<holder>/ns/mnt`.
//   (Not `ip netns exec`: that remounts /sys without the cgroup mounts and runc fails; the node keeps
//   them.) podman's per-container netns files (/run/netns/netns-<uuid>) land in the node's shadow dir.
//
// Lifecycle: run() = `podman run -d --name <name> --network <net> …` (VERSION probes and CNI ADD
// happen before it returns; an ADD failure makes it fail); remove() = `podman rm -f -t 0 <name>`
// (CNI DEL with CNI_NETNS=/run/netns/netns-<uuid>, then the netns is removed).

import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
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
import type { CmdResult } from './proc.js';

export const PODMAN = '/usr/bin/podman';

/** Why the podman rig cannot run here, or null. */
export function podmanUnavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const b of [PODMAN, '/usr/bin/conmon', '/usr/sbin/runc']) if (!existsSync(b)) return `${b} missing (apt-get install podman)`;
  return null;
}

export interface PodmanOptions extends RigOptions {
  /** One network, or several: each becomes <dir>/net.d/<name>.conflist; run() uses the first by default. */
  conflist: ConflistInput | readonly ConflistInput[];
}

/** One entry of `podman inspect … .NetworkSettings.Networks` (from the CNI result). */
export interface PodmanNetworkStatus {
  IPAddress: string;
  IPPrefixLen: number;
  Gateway: string;
  MacAddress: string;
  GlobalIPv6Address?: string;
  [k: string]: unknown;
}

export class PodmanRig implements ContainerRuntime {
  readonly kind = 'podman' as const;
  readonly node: NodeHost;
  readonly hostNetns: string;
  /** The rig's directory (configs, storage, networks) in the node's temp dir. */
  readonly dir: string;
  /** Directory of the podman networks (conflists). */
  readonly networkDir: string;
  /** Cgroup parent of the containers. */
  readonly cgroupParent: string;
  /** Network names, in the order given. */
  readonly networks: string[] = [];
  private ownNode: boolean;
  private env: Record<string, string>;
  private containers = new Map<string, RunningContainer>();
  private image = '';
  private closed = false;

  private constructor(node: NodeHost, ownNode: boolean, opts: PodmanOptions) {
    this.node = node;
    this.ownNode = ownNode;
    this.hostNetns = node.name;
    const id = randomSuffix();
    this.dir = join(node.dir, `podman-${id}`);
    this.networkDir = join(this.dir, 'net.d');
    this.cgroupParent = `/trt-podman-${process.pid}-${id}`;
    this.env = opts.env ?? {};
  }

  /** Starts a podman rig in a node (a new one unless opts.node is given) and loads the test image. */
  static async start(opts: PodmanOptions): Promise<PodmanRig> {
    const why = podmanUnavailableReason();
    if (why) throw new Error(`podman rig unavailable: ${why}`);
    const node = opts.node ?? (await NodeHost.create(opts.nodeOptions));
    const rig = new PodmanRig(node, opts.node === undefined, opts);
    try {
      await rig.init(opts);
      return rig;
    } catch (e) {
      await rig.close();
      throw e;
    }
  }

  private podmanEnv(): NodeJS.ProcessEnv {
    return this.node.env({
      ...this.env,
      CONTAINERS_CONF: join(this.dir, 'containers.conf'),
      CONTAINERS_STORAGE_CONF: join(this.dir, 'storage.conf'),
      TMPDIR: join(this.dir, 'imgtmp'),
    });
  }

  /** Full argv of a podman command with the rig's global flags. */
  podmanArgv(args: readonly string[]): string[] {
    return [
      PODMAN,
      '--root',
      join(this.dir, 'root'),
      '--runroot',
      join(this.dir, 'run'),
      '--tmpdir',
      join(this.dir, 'tmp'),
      '--network-config-dir',
      this.networkDir,
      '--cgroup-manager',
      'cgroupfs',
      '--events-backend',
      'file',
      ...args,
    ];
  }

  /** Runs podman (in the node) with the rig's flags and environment. */
  podman(args: readonly string[], timeoutMs = 60_000): Promise<CmdResult> {
    return this.node.run(this.podmanArgv(args), { env: this.podmanEnv(), timeoutMs });
  }

  private async mustPodman(args: readonly string[], timeoutMs = 60_000): Promise<CmdResult> {
    const r = await this.podman(args, timeoutMs);
    if (r.code !== 0) throw new Error(`podman ${args.join(' ')} exited ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
    return r;
  }

  private async init(opts: PodmanOptions): Promise<void> {
    this.node.addCgroupParent(this.cgroupParent);
    for (const d of ['root', 'run', 'tmp', 'imgtmp', 'volumes', 'net.d']) mkdirSync(join(this.dir, d), { recursive: true });
    const q = (s: string): string => JSON.stringify(s);
    writeFileSync(
      join(this.dir, 'containers.conf'),
      [
        '[containers]',
        'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
        'log_driver = "k8s-file"',
        '',
        '[network]',
        'network_backend = "cni"',
        `network_config_dir = ${q(this.networkDir)}`,
        'cni_plugin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]',
        '',
        '[engine]',
        'cgroup_manager = "cgroupfs"',
        'events_logger = "file"',
        `events_logfile_path = ${q(join(this.dir, 'events.log'))}`,
        `tmp_dir = ${q(join(this.dir, 'tmp'))}`,
        `volume_path = ${q(join(this.dir, 'volumes'))}`,
        'runtime = "runc"',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(this.dir, 'storage.conf'),
      ['[storage]', 'driver = "overlay"', `graphroot = ${q(join(this.dir, 'root'))}`, `runroot = ${q(join(this.dir, 'run'))}`, ''].join('\n'),
    );
    const lists = Array.isArray(opts.conflist) ? (opts.conflist as readonly ConflistInput[]) : [opts.conflist as ConflistInput];
    for (const c of lists) this.addNetwork(c);
    linkPlugins(this.node.cniBinDir, opts.binDirs ?? []);

    const info = await this.mustPodman(['info', '--format', '{{.Host.NetworkBackend}}']);
    if (info.stdout.trim() !== 'cni') throw new Error(`podman network backend is ${info.stdout.trim()}, not cni`);
    const img = testImage();
    await this.mustPodman(['load', '--quiet', '--input', img.archive]);
    this.image = img.ref;
  }

  /** Adds (or replaces) a network: writes <networkDir>/<name>.conflist. */
  addNetwork(conflist: ConflistInput): string {
    const o = conflistObject(conflist);
    const name = o.name as string;
    writeFileSync(join(this.networkDir, `${name}.conflist`), JSON.stringify(o, null, 2));
    if (!this.networks.includes(name)) this.networks.push(name);
    return name;
  }

  /** Removes a network's conflist (containers using it should be removed first). */
  removeNetwork(name: string): void {
    rmSync(join(this.networkDir, `${name}.conflist`), { force: true });
    const i = this.networks.indexOf(name);
    if (i >= 0) this.networks.splice(i, 1);
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
    const network = opts.network ?? this.networks[0];
    if (!network) throw new Error('no network configured');
    const r = await this.podman(
      [
        'run',
        '--detach',
        '--name',
        name,
        '--network',
        network,
        '--cgroup-parent',
        this.cgroupParent,
        ...(opts.extraArgs ?? []),
        this.image,
        ...(opts.command ?? ['sleep', '1000000']),
      ],
      opts.timeoutMs ?? 60_000,
    );
    if (r.code !== 0) {
      // podman may have created the container before ADD failed; remove it (runs DEL) and report.
      await this.podman(['rm', '--force', '--time', '0', name]);
      throw new Error(`podman run ${name} exited ${r.code ?? r.signal}: ${r.stderr.trim()}`);
    }
    const id = r.stdout.trim().split('\n').pop()!.trim();
    const info: RunningContainer = { name, cniContainerId: id, pid: -1, netnsPath: '' };
    this.containers.set(name, info);
    const pid = await this.mustPodman(['inspect', '--format', '{{.State.Pid}}', name]);
    info.pid = Number(pid.stdout.trim());
    info.netnsPath = `/proc/${info.pid}/ns/net`;
    return { ...info };
  }

  async exec(name: string, argv: readonly string[], opts: { timeoutMs?: number } = {}): Promise<ExecResult> {
    const r = await this.podman(['exec', name, ...argv], opts.timeoutMs ?? 30_000);
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

  /** podman's view of the container's networks (built from the CNI ADD result). */
  async inspectNetworks(name: string): Promise<Record<string, PodmanNetworkStatus>> {
    const r = await this.mustPodman(['inspect', '--format', '{{json .NetworkSettings.Networks}}', name]);
    return JSON.parse(r.stdout) as Record<string, PodmanNetworkStatus>;
  }

  /** The netns path podman gave the container (what it passes as CNI_NETNS), via `podman inspect`. */
  async sandboxKey(name: string): Promise<string> {
    const r = await this.mustPodman(['inspect', '--format', '{{.NetworkSettings.SandboxKey}}', name]);
    return r.stdout.trim();
  }

  async remove(name: string): Promise<RemoveResult> {
    if (!this.containers.has(name)) throw new Error(`no container ${name}`);
    const r = await this.podman(['rm', '--force', '--time', '0', name]);
    this.containers.delete(name);
    return { code: r.code, stderr: r.stderr, ms: r.ms };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      for (const name of this.names()) await this.remove(name).catch(() => undefined);
      if (existsSync(join(this.dir, 'root')) && readdirSync(join(this.dir, 'root')).length > 0) {
        await this.podman(['rm', '--all', '--force', '--time', '0']).catch(() => undefined);
      }
    } finally {
      if (this.ownNode) await this.node.close();
    }
  }
}

/**
 * Starts a podman rig, runs fn, and always tears it down (containers removed with DEL, node closed
 * unless it was passed in).
 */
export async function withPodman<T>(opts: PodmanOptions, fn: (rt: PodmanRig) => Promise<T>): Promise<T> {
  const rt = await PodmanRig.start(opts);
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}
