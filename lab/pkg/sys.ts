// System helpers: `ip` (always with -n or netns exec for anything that changes a network; the root
// namespace is never changed), detached processes tracked by PID, and PID-exact termination.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export const IP = '/usr/sbin/ip';

export function ipSync(args: string[]): string {
  return execFileSync(IP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command, collecting output; never throws for a non-zero exit. */
export function run(argv: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      argv[0]!,
      argv.slice(1),
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 << 20, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === 1 && !stderr ? String(err.message) : '') });
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin?.end();
  });
}

/** Runs `ip [-n ns] -batch -` with the given lines; throws with the output on failure. */
export async function ipBatch(ns: string | null, lines: string[]): Promise<void> {
  if (lines.length === 0) return;
  const args = ns ? ['-n', ns, '-batch', '-'] : ['-batch', '-'];
  const r = await run([IP, ...args], { input: lines.join('\n') + '\n' });
  if (r.code !== 0) throw new Error(`ip ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}\n  lines:\n    ${lines.join('\n    ')}`);
}

export function netnsList(): string[] {
  return ipSync(['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter((n) => n !== '');
}

/** PIDs of processes in a namespace (`ip netns pids`). */
export function netnsPids(ns: string): number[] {
  try {
    return ipSync(['netns', 'pids', ns])
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number)
      .filter((n) => Number.isInteger(n) && n > 0);
  } catch {
    return [];
  }
}

function procStat(pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may hold spaces and parentheses: fields start after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return rest; // rest[0] is field 3 (state)
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot). */
export function procStartTime(pid: number): string | undefined {
  return procStat(pid)?.[19];
}

/** Alive and not a zombie; when startTime is given, also the same process that was recorded. */
export function pidAlive(pid: number, startTime?: string): boolean {
  const st = procStat(pid);
  if (!st || st[0] === 'Z' || st[0] === 'X') return false;
  return startTime === undefined || st[19] === startTime;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** SIGTERM, then SIGKILL after graceMs; resolves when gone. Only the exact recorded process. */
export async function killPid(pid: number, startTime?: string, graceMs = 3000): Promise<boolean> {
  if (!pidAlive(pid, startTime)) return false;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return false;
  }
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid, startTime)) {
    if (Date.now() > deadline) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
      const hard = Date.now() + 2000;
      while (pidAlive(pid, startTime) && Date.now() < hard) await sleep(20);
      break;
    }
    await sleep(20);
  }
  return true;
}

/**
 * Starts argv inside a network namespace (`ip netns exec` execs in place, so the PID is the
 * program's), detached in its own process group with output to logFile, so it outlives the CLI.
 */
export function spawnInNs(ns: string, argv: string[], env: NodeJS.ProcessEnv, logFile: string): { pid: number; startTime?: string } {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(IP, ['netns', 'exec', ns, ...argv], { env, detached: true, stdio: ['ignore', fd, fd] });
    if (child.pid === undefined) throw new Error(`could not start ${argv[0]} in ${ns}`);
    child.unref();
    return { pid: child.pid, startTime: procStartTime(child.pid) };
  } finally {
    closeSync(fd);
  }
}

/** Bounded-parallel map. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (t: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}
