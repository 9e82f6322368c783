// Small helpers shared by the lab benchmarks (convergence, throughput): statistics, RSS, and a
// lab that is always taken down again.
import { readFileSync } from 'node:fs';
import { down, up, type UpOptions } from '../lab/pkg/lab.js';
import type { LabState } from '../lab/pkg/state.js';
import { netnsList } from '../lab/pkg/sys.js';

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function pct(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1))]!;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** VmRSS of a process in MB, NaN when it is gone. */
export function rssMB(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

const quiet = () => undefined;

/**
 * Brings up a lab, runs fn, and takes the lab down whatever happened (also when `up` itself
 * failed half-way: `down` works from the state file). Extra namespaces fn made must be removed by
 * fn itself (in its own finally).
 */
export async function withLab<T>(opts: UpOptions, fn: (s: LabState) => Promise<T>, log: (l: string) => void = quiet): Promise<T> {
  let s: LabState | undefined;
  try {
    s = await up(opts, log);
    return await fn(s);
  } finally {
    try {
      await down(opts.name, log);
    } catch (e) {
      if (!/no lab named/.test((e as Error).message)) console.error(`warning: tearing down lab ${opts.name}: ${(e as Error).message}`);
    }
    const left = netnsList().filter((n) => n.startsWith(`tl-${opts.name}-`));
    if (left.length > 0) console.error(`warning: namespaces left behind: ${left.join(', ')}`);
  }
}

/** Medians of the agent's own per-write timings ("read X ms, compile Y ms, diff Z ms, nft W ms" log lines). */
export function agentPhases(log: string): string {
  const rows = [...log.matchAll(/read (\d+) ms, compile ([\d.]+) ms, diff ([\d.]+) ms, nft ([\d.]+) ms/g)].map((m) => m.slice(1, 5).map(Number));
  if (rows.length === 0) return 'the agent logged no policy writes';
  const col = (i: number) => median(rows.map((r) => r[i]!)).toFixed(0);
  return `the agent's own log of these ${rows.length} writes (medians): read the model ${col(0)} ms, compile ${col(1)} ms, diff ${col(2)} ms, \`nft -f\` ${col(3)} ms`;
}
