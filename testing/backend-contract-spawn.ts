// Starts worker.js children for multi-process tests and reads their stdout line by line.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { OpenSpec } from './backend-contract-worker.js';

const WORKER = fileURLToPath(new URL('./backend-contract-worker.js', import.meta.url));

export interface Worker {
  child: ChildProcess;
  /** Next stdout line (rejects if the process exits first or the timeout passes). */
  line(timeoutMs?: number): Promise<string>;
  /** Every line seen so far. */
  lines: string[];
  /** Resolves with the exit code (or signal name) once the process ended and its output was read. */
  exited: Promise<number | string>;
  stderr(): string;
  /** Kills it by PID if still running. */
  kill(signal?: NodeJS.Signals): void;
}

export function spawnWorker(spec: OpenSpec, mode: string, ...args: string[]): Worker {
  const child = spawn(process.execPath, [WORKER, JSON.stringify(spec), mode, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const lines: string[] = [];
  const queue: string[] = [];
  let waiter: ((l: string | null) => void) | undefined;
  let ended = false;
  createInterface({ input: child.stdout! })
    .on('line', (l) => {
      lines.push(l);
      if (waiter) {
        const w = waiter;
        waiter = undefined;
        w(l);
      } else queue.push(l);
    })
    .on('close', () => {
      ended = true;
      waiter?.(null);
      waiter = undefined;
    });
  const exited = new Promise<number | string>((resolve) => child.on('close', (code, sig) => resolve(code ?? sig ?? -1)));
  return {
    child,
    lines,
    exited,
    stderr: () => err,
    line(timeoutMs = 20_000) {
      if (queue.length) return Promise.resolve(queue.shift()!);
      if (ended) return Promise.reject(new Error(`worker ${mode} exited: ${err.trim()}`));
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          waiter = undefined;
          reject(new Error(`worker ${mode}: no output within ${timeoutMs} ms: ${err.trim()}`));
        }, timeoutMs);
        waiter = (l) => {
          clearTimeout(t);
          if (l === null) reject(new Error(`worker ${mode} exited: ${err.trim()}`));
          else resolve(l);
        };
      });
    },
    kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null && child.pid) {
        try {
          process.kill(child.pid, signal);
        } catch {
          // already gone
        }
      }
    },
  };
}
