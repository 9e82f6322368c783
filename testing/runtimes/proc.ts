// Process helpers for the runtime rig: run a command with a timeout and capture its output, wait for
// a spawned child to exit, list the processes that live in a given network namespace.

import { type ChildProcess, spawn, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';

export interface CmdResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Milliseconds from spawn to exit. */
  ms: number;
}

export interface CmdOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string;
  /** Kill (SIGKILL) after this many ms; default 60 000. */
  timeoutMs?: number;
}

/** Runs argv (no shell) and resolves with its exit status and output; never rejects on a non-zero exit. */
export function runCmd(argv: readonly string[], opts: CmdOptions = {}): Promise<CmdResult> {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const so: SpawnOptions = { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] };
    if (opts.cwd !== undefined) so.cwd = opts.cwd;
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), so);
    } catch (e) {
      reject(e);
      return;
    }
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${argv[0]}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - t0 });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(opts.input ?? '');
  });
}

/** runCmd that rejects unless the exit code is 0. */
export async function mustRun(argv: readonly string[], opts: CmdOptions = {}): Promise<CmdResult> {
  const r = await runCmd(argv, opts);
  if (r.code !== 0) {
    throw new Error(`${argv.join(' ')} exited ${r.code ?? r.signal}: ${(r.stderr || r.stdout).trim()}`);
  }
  return r;
}

/** Resolves when the child has exited (immediately if it already has). */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, timeoutMs);
    const onExit = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Whether a PID exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // A zombie is as good as gone.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The "net:[inode]"-style identity of a namespace file, or null. */
export function nsIdentity(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

/**
 * PIDs of all processes whose network namespace is `netnsFile` (e.g. /run/netns/<name>), excluding this
 * process. Used to find stragglers: only this rig puts processes into a namespace it created.
 */
export function pidsInNetns(netnsFile: string): number[] {
  let want: string;
  try {
    // stat of a /run/netns/<name> bind mount gives the nsfs inode, which /proc/<pid>/ns/net names.
    want = `net:[${statSync(netnsFile).ino}]`;
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const pid = Number(d);
    if (pid === process.pid) continue;
    if (nsIdentity(`/proc/${d}/ns/net`) === want) out.push(pid);
  }
  return out;
}

/** Command name of a PID ("" if gone). */
export function pidComm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILL; to the given PIDs only. */
export async function terminatePids(pids: readonly number[], graceMs = 3000): Promise<void> {
  const live = pids.filter(pidAlive);
  for (const p of live) {
    try {
      process.kill(p, 'SIGTERM');
    } catch {
      /* gone */
    }
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && live.some(pidAlive)) await sleep(25);
  for (const p of live) {
    if (!pidAlive(p)) continue;
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}
