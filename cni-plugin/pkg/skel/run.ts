// Dispatching an invocation to plugin handlers, and the process entry point.
//
// executePlugin() is the testable core: env + stdin in, {stdout, exitCode} out. runPlugin() wires it to
// the real process: it reads stdin, writes stdout with a synchronous write (process.stdout to a pipe
// may be asynchronous and truncated by process.exit), and exits. Nothing but the result or error JSON
// ever goes to stdout; while handlers run, console.log/info/debug/dir/table are sent to stderr.

import { readFileSync, writeSync } from 'node:fs';
import { CniError, ErrCode, formatError, toCniError } from './errors.js';
import { parseGcAttachments, type GcAttachment } from './gc.js';
import { parseInvocation, type Invocation, type InvocationOptions } from './invocation.js';
import { formatResult, type InternalResult } from './result.js';
import { versionResponse } from './version.js';

type MaybePromise<T> = T | Promise<T>;

export interface PluginHandlers {
  /** ADD: returns the result; it is printed in the config's cniVersion. */
  add(inv: Invocation): MaybePromise<InternalResult>;
  /** DEL: must succeed when things are already gone. Prints nothing. */
  del(inv: Invocation): MaybePromise<void>;
  /** CHECK (>= 0.4.0). Absent → success. */
  check?(inv: Invocation): MaybePromise<void>;
  /** STATUS (>= 1.1.0): throw CniError 50/51 when not ready. Absent → success. */
  status?(inv: Invocation): MaybePromise<void>;
  /** GC (>= 1.1.0): `validAttachments` is null when the runtime gave no list. Absent → success. */
  gc?(inv: Invocation, validAttachments: GcAttachment[] | null): MaybePromise<void>;
}

export interface RunOptions extends InvocationOptions {
  /** Print IPAM-style (abbreviated) ADD results. */
  abbreviatedResult?: boolean;
}

export interface PluginOutput {
  /** Exactly what goes to stdout ("" for DEL/CHECK/STATUS/GC success). */
  stdout: string;
  /** 0 on success, 1 on error. */
  exitCode: number;
}

function errorOutput(err: CniError, cniVersion: string | undefined): PluginOutput {
  return { stdout: formatError(err, cniVersion) + '\n', exitCode: 1 };
}

/** Parses, dispatches and formats one invocation. Never throws. */
export async function executePlugin(
  handlers: PluginHandlers,
  supported: readonly string[],
  env: Record<string, string | undefined>,
  stdin: string,
  opts: RunOptions = {},
): Promise<PluginOutput> {
  let inv: Invocation;
  try {
    inv = parseInvocation(env, stdin, supported, opts);
  } catch (e) {
    return errorOutput(toCniError(e), undefined);
  }
  try {
    switch (inv.command) {
      case 'VERSION':
        return { stdout: JSON.stringify(versionResponse(inv.cniVersion || undefined, supported)) + '\n', exitCode: 0 };
      case 'ADD': {
        const result = await handlers.add(inv);
        const json = formatResult(result, inv.cniVersion, { abbreviated: opts.abbreviatedResult === true });
        return { stdout: JSON.stringify(json) + '\n', exitCode: 0 };
      }
      case 'DEL':
        await handlers.del(inv);
        break;
      case 'CHECK':
        await handlers.check?.(inv);
        break;
      case 'STATUS':
        await handlers.status?.(inv);
        break;
      case 'GC': {
        const valid = parseGcAttachments(inv.config);
        await handlers.gc?.(inv, valid);
        break;
      }
    }
    return { stdout: '', exitCode: 0 };
  } catch (e) {
    return errorOutput(toCniError(e), inv.command === 'VERSION' ? undefined : inv.cniVersion);
  }
}

/** Writes all of `text` to `fd` synchronously, retrying on EAGAIN and partial writes. */
export function writeAllSync(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') continue;
      throw e;
    }
  }
}

/**
 * Reads all of stdin. A synchronous read is several milliseconds cheaper than a stream at plugin
 * start; a non-blocking stdin (EAGAIN) falls back to the stream.
 */
async function readStdin(): Promise<string> {
  try {
    return readFileSync(0, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    return readStream(process.stdin);
  }
}

async function readStream(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

const CONSOLE_STDOUT_METHODS = ['log', 'info', 'debug', 'dir', 'table'] as const;

/** Sends console output that would reach stdout to stderr; returns the undo function. */
export function redirectConsoleToStderr(): () => void {
  const saved = CONSOLE_STDOUT_METHODS.map((m) => [m, console[m]] as const);
  for (const m of CONSOLE_STDOUT_METHODS) {
    (console as unknown as Record<string, unknown>)[m] = (...a: unknown[]) => console.error(...a);
  }
  return () => {
    for (const [m, f] of saved) (console as unknown as Record<string, unknown>)[m] = f;
  };
}

export interface RunPluginOptions extends RunOptions {
  /** Call process.exit with the exit code (default true). */
  exit?: boolean;
}

/**
 * The process entry: reads env and stdin, runs executePlugin, writes its stdout with one synchronous
 * write, and exits with its code (or returns it when `exit` is false).
 */
export async function runPlugin(
  handlers: PluginHandlers,
  supported: readonly string[],
  opts: RunPluginOptions = {},
): Promise<number> {
  const env = process.env;
  let out: PluginOutput;
  const restore = redirectConsoleToStderr();
  try {
    let stdin = '';
    let readError: CniError | null = null;
    const skipStdin = env.CNI_COMMAND === 'VERSION' && process.stdin.isTTY === true;
    if (!skipStdin) {
      try {
        stdin = await readStdin();
      } catch (e) {
        readError = new CniError(ErrCode.IOFailure, `failed to read stdin: ${(e as Error).message}`);
      }
    }
    out = readError ? errorOutput(readError, undefined) : await executePlugin(handlers, supported, env, stdin, opts);
  } finally {
    restore();
  }
  if (out.stdout !== '') writeAllSync(1, out.stdout);
  if (opts.exit !== false) process.exit(out.exitCode);
  return out.exitCode;
}
