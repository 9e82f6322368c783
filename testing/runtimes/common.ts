// Types and helpers shared by the containerd and podman rigs.

import { accessSync, constants, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, type BuiltImage } from './image.js';
import { type NodeHost, type NodeOptions, onRigExit } from './node.js';

/** A CNI network configuration list (parsed) or its JSON text. */
export type ConflistInput = Record<string, unknown> | string;

export function conflistObject(c: ConflistInput): Record<string, unknown> {
  const o = typeof c === 'string' ? (JSON.parse(c) as unknown) : c;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new Error('conflist must be a JSON object');
  const name = (o as Record<string, unknown>).name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(name)) throw new Error(`conflist needs a plain "name" (got ${JSON.stringify(name)})`);
  if (!Array.isArray((o as Record<string, unknown>).plugins)) throw new Error('conflist needs a "plugins" array (a single .conf is not supported here)');
  return o as Record<string, unknown>;
}

export interface RunOptions {
  /** Command run in the container (default ["sleep", "1000000"]). Must keep running until remove(). */
  command?: string[];
  /** Extra runtime flags, placed before the image (e.g. podman ["--ip", "10.1.2.3", "-p", "8080:80"]). */
  extraArgs?: string[];
  /** podman only: the network (conflist name) to attach to; default the first conflist's name. */
  network?: string;
  /** Milliseconds to wait for the container to run (default 30 000). */
  timeoutMs?: number;
}

export interface RunningContainer {
  /** The name given to run(). */
  name: string;
  /** CNI_CONTAINERID as the runtime passes it to plugins (ctr: "<namespace>-<name>"; podman: 64 hex). */
  cniContainerId: string;
  /** PID of the container's init, as seen from the machine (and the node; no PID namespace is used). */
  pid: number;
  /** /proc/<pid>/ns/net: the container's network namespace (usable with nsenter --net=…). */
  netnsPath: string;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RemoveResult {
  /** Exit status of the runtime command(s) that stopped the container. */
  code: number | null;
  /** Runtime stderr collected while stopping (DEL failures are reported here by both runtimes). */
  stderr: string;
  /** Milliseconds from the request until the runtime finished (DEL included). */
  ms: number;
}

/** What both rigs offer. */
export interface ContainerRuntime {
  readonly kind: 'containerd' | 'podman';
  /** The node host the runtime (and the plugins it execs) runs in. */
  readonly node: NodeHost;
  /** Name of the node's network namespace: `ip netns exec <hostNetns> …` reaches it from the machine. */
  readonly hostNetns: string;
  /** Starts a container (CNI ADD happens before this resolves). Rejects with the runtime's error if ADD fails. */
  run(name: string, opts?: RunOptions): Promise<RunningContainer>;
  /** Runs argv in the container. Never rejects on a non-zero exit. */
  exec(name: string, argv: readonly string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
  /** First IPv4 address of `ifname` (default eth0) in the container, without prefix length. */
  ip(name: string, ifname?: string): Promise<string>;
  /** All addresses ("a.b.c.d/len", "x::y/len") of `ifname` (default eth0), global scope. */
  addrs(name: string, ifname?: string): Promise<string[]>;
  /** Stops and removes the container; the runtime runs CNI DEL before this resolves. */
  remove(name: string): Promise<RemoveResult>;
  /** Names of containers started by run() and not yet removed. */
  names(): string[];
  /** Removes remaining containers (DEL), stops the runtime, closes the node if the rig created it. */
  close(): Promise<void>;
}

/** Options both rigs take. */
export interface RigOptions {
  /**
   * Directories whose executables are linked into the node's /opt/cni/bin, which both runtimes search
   * before Debian's /usr/lib/cni (first dir wins on a name clash). CNI_PATH is "/opt/cni/bin:/usr/lib/cni".
   */
  binDirs?: readonly string[];
  /** Use this node (shared with another runtime or an agent); it is not closed by the rig. */
  node?: NodeHost;
  /** Options for the node the rig creates when `node` is not given. */
  nodeOptions?: NodeOptions;
  /** Extra environment for the runtime commands; the CNI plugins they exec inherit it. */
  env?: Record<string, string>;
}

/**
 * Links every executable file in `binDirs` into `target` (absolute symlinks), skipping names already
 * present (so the first dir wins). Returns the names linked.
 */
export function linkPlugins(target: string, binDirs: readonly string[]): string[] {
  mkdirSync(target, { recursive: true });
  const linked: string[] = [];
  for (const d of binDirs) {
    if (!existsSync(d)) throw new Error(`plugin dir ${d} does not exist`);
    for (const e of readdirSync(d)) {
      const src = join(d, e);
      const dst = join(target, e);
      try {
        if (!statSync(src).isFile()) continue;
        accessSync(src, constants.X_OK);
      } catch {
        continue;
      }
      if (existsSync(dst) || isSymlink(dst)) continue;
      symlinkSync(src, dst);
      linked.push(e);
    }
  }
  return linked;
}

function isSymlink(p: string): boolean {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// The test image, built once per process into a temp dir removed at exit.

let imageCache: { dir: string; image: BuiltImage } | null = null;
const IMG_PREFIX = 'tortie-rt-img-';

/** The busybox OCI archive (see image.ts), built on first use and cached for this process. */
export function testImage(): BuiltImage {
  if (imageCache && existsSync(imageCache.image.archive)) return imageCache.image;
  // Caches left by dead processes are removed by reapStaleNodes() (node.ts).
  const dir = mkdtempSync(join(tmpdir(), `${IMG_PREFIX}${process.pid}-`));
  onRigExit(() => rmSync(dir, { recursive: true, force: true }));
  imageCache = { dir, image: buildImage(dir) };
  return imageCache.image;
}

/** Parses `ip -o addr show` output into "addr/len" strings of global scope. */
export function parseIpAddr(out: string): string[] {
  const res: string[] = [];
  for (const line of out.split('\n')) {
    const m = /\binet6?\s+(\S+)/.exec(line);
    if (!m) continue;
    if (/scope (link|host)/.test(line)) continue;
    res.push(m[1]!);
  }
  return res;
}

export function randomSuffix(): string {
  return Math.random().toString(16).slice(2, 8);
}
