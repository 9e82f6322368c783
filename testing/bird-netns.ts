// Test helpers: throwaway network namespaces (never the root one) for running BIRD in tests.
// Names are `tortie-t<random>-<tag>`; whoever creates one deletes it in an `after` hook.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { BIRD_BIN, IP_BIN } from '../confd/pkg/supervisor/bird-supervisor.js';

/** Why BIRD tests cannot run here, or null when they can (root, bird and ip present). */
export function birdTestSkipReason(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces)';
  for (const b of [BIRD_BIN, IP_BIN]) if (!existsSync(b)) return `${b} is not installed`;
  return null;
}

export function ip(...args: string[]): string {
  return execFileSync(IP_BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Creates `tortie-t<random>-<tag>` with its loopback up; returns the name. */
export function makeNetns(tag: string): string {
  const name = `tortie-t${randomBytes(3).toString('hex')}-${tag}`;
  ip('netns', 'add', name);
  ip('-n', name, 'link', 'set', 'lo', 'up');
  return name;
}

/** Deletes a namespace made by makeNetns (ignores one already gone). */
export function deleteNetns(name: string): void {
  if (!name.startsWith('tortie-t')) throw new Error(`refusing to delete namespace ${name}: not a test namespace`);
  try {
    ip('netns', 'del', name);
  } catch {
    // already gone
  }
}

/** Ends a process this test started, by PID, if it still runs. */
export function killIfRunning(pid: number | null | undefined): void {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(what: string, fn: () => boolean | Promise<boolean>, ms = 15_000, stepMs = 100): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (await fn()) return;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
