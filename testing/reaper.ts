// The last-resort cleanup of the throwaway servers tests start (etcd, kube-apiserver): if the test
// process ends without stopping them (a failed test, a crash, SIGINT/SIGTERM), each tracked child is
// killed by its PID and its temp dir removed. Hooks are installed on the first track(), not on import.
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/** Live processes and the temp dirs they use. */
const running = new Map<ChildProcess, string>();
let hooksInstalled = false;

function killAll(): void {
  for (const [c, dir] of running) {
    try {
      if (c.pid) process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    try {
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort: the process may still be dying
    }
  }
  running.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    // once: after cleaning up, re-raise with the default action so the process still dies.
    process.once(sig, () => {
      killAll();
      process.kill(process.pid, sig);
    });
  }
}

/** Kill `child` and remove `dir` if the test process ends while it still runs. */
export function track(child: ChildProcess, dir: string): void {
  installExitHooks();
  running.set(child, dir);
}

/** `child` was stopped (or exited) by its owner: no longer the reaper's. */
export function untrack(child: ChildProcess): void {
  running.delete(child);
}
