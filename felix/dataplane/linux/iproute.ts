// A small I/O layer around iproute2's `ip` and the kernel's /proc/sys.
//
// - Programs are run by absolute path with argument arrays (never a shell) and a fixed environment, so
//   the agent works with an empty PATH.
// - Several commands go to one process through `ip -batch -` (stdin); with `-j`, every show command
//   prints one JSON array, parsed here.
// - A network namespace is given as a PATH, as CNI gives it (`/run/netns/x`, `/proc/<pid>/ns/net`).
//   `ip -n` only takes a name under iproute2's netns directory, so such paths use `ip -n <name>`
//   (measured ≈1.9 ms per call) and any other path goes through `nsenter --net=<path>` (≈2.4 ms).
//   `ip link ... netns <path>` takes a path directly (iproute2 opens any argument containing '/').
// - sysctls of the current namespace are plain file writes under /proc/sys (no process); those of
//   another namespace are one `nsenter --net=<path> sysctl -q -w k=v ...` call.
//
// Errors carry the argv, the batch line that failed and ip's stderr.

import { spawn } from 'node:child_process';
import { readFileSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';

export const IP_BIN = '/usr/sbin/ip';
export const NSENTER_BIN = '/usr/bin/nsenter';
export const SYSCTL_BIN = '/usr/sbin/sysctl';
/** iproute2's compiled-in directory for named namespaces (`/run/netns` through the /var/run link). */
export const NETNS_RUN_DIR = '/var/run/netns';

// ---------------------------------------------------------------------------------------------------
// Process execution

export interface ExecResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
}

/** Runs `file` with `args` (no shell); `input`, when given, is written to its stdin. */
export type Exec = (file: string, args: readonly string[], input?: string) => Promise<ExecResult>;

/** The real Exec: child_process.spawn, environment `LC_ALL=C` only, killed (by its PID) after `timeoutMs`. */
export function spawnExec(timeoutMs = 10_000): Exec {
  return (file, args, input) =>
    new Promise<ExecResult>((resolve, reject) => {
      const child = spawn(file, args as string[], {
        stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: { LC_ALL: 'C' },
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout!.on('data', (d: Buffer) => out.push(d));
      child.stderr!.on('data', (d: Buffer) => err.push(d));
      child.on('error', reject);
      child.on('close', (code, signal) =>
        resolve({ code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
      );
      if (input !== undefined) {
        // The child may exit before reading everything (a failing batch): ignore EPIPE, the exit code tells.
        child.stdin!.on('error', () => {});
        child.stdin!.end(input);
      }
    });
}

/** A command that failed: its argv, exit status, stderr and, for a batch, the line that failed. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    /** For `-batch`: the 0-based index of the failing command and its words. */
    readonly failed?: { index: number; command: readonly string[] },
    readonly signal: string | null = null,
  ) {
    const detail = stderr
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !/^Command failed -:\d+$/.test(l))
      .join('; ');
    const where = failed ? ` [batch line ${failed.index + 1}: ${failed.command.join(' ')}]` : '';
    const status = signal ? `signal ${signal}` : `exit ${exitCode}`;
    super(`${argv.join(' ')}${where} failed (${status})${detail ? `: ${detail}` : ''}`);
  }

  /** The object (device, route, namespace) is not there. */
  get notFound(): boolean {
    return /Cannot find device|does not exist|No such device|No such file or directory|No such process|Cannot open network namespace|reopen netns/i.test(
      this.stderr,
    );
  }

  /** RTNETLINK EEXIST. */
  get exists(): boolean {
    return /File exists/.test(this.stderr);
  }
}

// ---------------------------------------------------------------------------------------------------
// Validation and parsing helpers

const BATCH_WORD = /^[^\s"'\\#]+$/;

/** A word that can go on an `ip -batch` line unquoted (ip splits lines on blanks, handles quotes and #). */
export function checkBatchWord(w: string): void {
  if (typeof w !== 'string' || !BATCH_WORD.test(w)) throw new TypeError(`invalid ip argument ${JSON.stringify(w)}`);
}

/** Linux interface name rules (dev_valid_name): 1–15 bytes, not "." or "..", no '/', ':' or blank. */
export function isValidIfName(name: string): boolean {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    Buffer.byteLength(name) <= 15 &&
    name !== '.' &&
    name !== '..' &&
    /^[^\s/:"'\\#]+$/.test(name)
  );
}

/** Splits concatenated JSON values (`ip -j -batch` prints one array per show command). */
export function parseJsonValues(text: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '[' || c === '{') {
      if (depth === 0) start = i;
      depth++;
    } else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) values.push(JSON.parse(text.slice(start, i + 1)));
      if (depth < 0) throw new SyntaxError('unbalanced JSON from ip');
    }
  }
  if (depth !== 0) throw new SyntaxError('truncated JSON from ip');
  return values;
}

// ---------------------------------------------------------------------------------------------------
// Namespaces

/** The name to give `ip -n` when `path` is a file in iproute2's netns directory, else null. */
export function netnsNameOf(path: string): string | null {
  const name = basename(path);
  if (!isValidNetnsName(name)) return null;
  try {
    return realpathSync(dirname(path)) === realpathSync(NETNS_RUN_DIR) ? name : null;
  } catch {
    return null;
  }
}

function isValidNetnsName(n: string): boolean {
  return n !== '' && n !== '.' && n !== '..' && BATCH_WORD.test(n) && !n.startsWith('-');
}

/** Whether the namespace file exists. */
export function netnsExists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether `path` is the network namespace this process runs in (e.g. a stale /proc/<pid>/ns/net whose
 * PID now belongs to a host process). Container-side changes must never be applied there.
 */
export function isCurrentNetns(path: string): boolean {
  try {
    const a = statSync(path);
    const b = statSync('/proc/thread-self/ns/net');
    return a.dev === b.dev && a.ino === b.ino;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// sysctl

/** A sysctl key as a path under /proc/sys: "net/ipv4/conf/cali1/proxy_arp" (dotted keys are converted). */
export function sysctlPath(key: string): string {
  const rel = key.includes('/') ? key : key.replaceAll('.', '/');
  if (rel.split('/').some((p) => p === '' || p === '.' || p === '..') || /[\s=]/.test(rel)) {
    throw new TypeError(`invalid sysctl key ${JSON.stringify(key)}`);
  }
  return rel;
}

export class SysctlError extends Error {
  override readonly name = 'SysctlError';
  constructor(
    readonly key: string,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** Writes one sysctl of the current network namespace (a file write, no process). */
export function writeSysctl(key: string, value: string | number): void {
  const file = `/proc/sys/${sysctlPath(key)}`;
  try {
    writeFileSync(file, `${value}\n`);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new SysctlError(key, err.code, `cannot write ${value} to ${file}: ${err.code ?? err.message}`);
  }
}

/** Reads one sysctl of the current network namespace; null when it does not exist. */
export function readSysctl(key: string): string | null {
  try {
    return readFileSync(`/proc/sys/${sysctlPath(key)}`, 'utf8').trim();
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------------
// ip

export interface IpOptions {
  /** Network namespace path; omitted = the current namespace. */
  netns?: string;
  /** `-4` / `-6`. */
  family?: 4 | 6;
  /** `-j` (JSON output). */
  json?: boolean;
  /** `-d` (details, e.g. the link kind). */
  details?: boolean;
}

/** `ip` (and sysctl) for the current namespace or one given by path. */
export class IpRoute {
  constructor(readonly exec: Exec = spawnExec()) {}

  /** The argv that runs `ip <ipArgs>` in `netns` (or here): `[file, ...args]`. */
  argv(ipArgs: readonly string[], netns?: string): string[] {
    if (netns === undefined) return [IP_BIN, ...ipArgs];
    if (typeof netns !== 'string' || !netns.startsWith('/')) throw new TypeError(`netns must be an absolute path, got ${JSON.stringify(netns)}`);
    const name = netnsNameOf(netns);
    if (name !== null) return [IP_BIN, '-n', name, ...ipArgs];
    return [NSENTER_BIN, `--net=${netns}`, IP_BIN, ...ipArgs];
  }

  private static flags(o: IpOptions): string[] {
    const f: string[] = [];
    if (o.family) f.push(`-${o.family}`);
    if (o.json) f.push('-j');
    if (o.details) f.push('-d');
    return f;
  }

  private async execArgv(argv: string[], input?: string, batch?: readonly (readonly string[])[]): Promise<string> {
    const r = await this.exec(argv[0]!, argv.slice(1), input);
    if (r.code === 0) return r.stdout;
    let failed: { index: number; command: readonly string[] } | undefined;
    const m = /Command failed -:(\d+)/.exec(r.stderr);
    if (batch && m) {
      const index = Number(m[1]) - 1;
      failed = { index, command: batch[index] ?? [] };
    }
    throw new CommandError(argv, r.code, r.stderr, failed, r.signal);
  }

  /** Runs one ip command; returns its stdout. */
  async run(args: readonly string[], opts: IpOptions = {}): Promise<string> {
    return this.execArgv(this.argv([...IpRoute.flags(opts), ...args], opts.netns));
  }

  /** Runs one ip show command with `-j` and parses its output. */
  async json<T = unknown>(args: readonly string[], opts: Omit<IpOptions, 'json'> = {}): Promise<T> {
    const out = await this.run(args, { ...opts, json: true });
    return (out.trim() === '' ? [] : JSON.parse(out)) as T;
  }

  /**
   * Runs several ip commands in one process (`ip -batch -`). The batch stops at the first failing
   * command; the CommandError names it (`failed.index`). Returns stdout.
   */
  async batch(cmds: readonly (readonly string[])[], opts: IpOptions = {}): Promise<string> {
    if (cmds.length === 0) return '';
    for (const c of cmds) {
      if (c.length === 0) throw new TypeError('empty ip batch command');
      c.forEach(checkBatchWord);
    }
    const input = cmds.map((c) => c.join(' ')).join('\n') + '\n';
    return this.execArgv(this.argv([...IpRoute.flags(opts), '-batch', '-'], opts.netns), input, cmds);
  }

  /** A batch of show commands with `-j`: one parsed JSON value per command that printed one. */
  async batchJson(cmds: readonly (readonly string[])[], opts: Omit<IpOptions, 'json'> = {}): Promise<unknown[]> {
    return parseJsonValues(await this.batch(cmds, { ...opts, json: true }));
  }

  /**
   * Sets sysctls. In the current namespace (netns omitted): file writes, in order, stopping at the
   * first failure (SysctlError). In another namespace: one `nsenter --net=<path> sysctl -q -w ...`
   * (CommandError on failure).
   */
  async sysctl(entries: readonly (readonly [string, string | number])[], netns?: string): Promise<void> {
    if (entries.length === 0) return;
    if (netns === undefined) {
      for (const [k, v] of entries) writeSysctl(k, v);
      return;
    }
    const words = entries.map(([k, v]) => {
      const val = String(v);
      if (!/^[\w.:-]*$/.test(val)) throw new TypeError(`invalid sysctl value ${JSON.stringify(val)}`);
      return `${sysctlPath(k)}=${val}`;
    });
    if (!netns.startsWith('/')) throw new TypeError(`netns must be an absolute path, got ${JSON.stringify(netns)}`);
    await this.execArgv([NSENTER_BIN, `--net=${netns}`, SYSCTL_BIN, '-q', '-w', ...words]);
  }
}

/** Names of the interfaces in the current network namespace (from /proc/self/net/dev, no process). */
export function listInterfaceNames(): string[] {
  const text = readFileSync('/proc/thread-self/net/dev', 'utf8');
  const names: string[] = [];
  for (const line of text.split('\n').slice(2)) {
    const i = line.indexOf(':');
    if (i > 0) names.push(line.slice(0, i).trim());
  }
  return names;
}
