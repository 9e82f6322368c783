// Wakes watchers of the embedded store when something may have changed: immediately for writes
// made through this process's connection, and by polling SQLite's `PRAGMA data_version` (which
// changes when another connection commits) for writes by other processes. The poll only runs
// while someone waits, and each tick is a read of the WAL index in shared memory, so idle
// watchers cost next to nothing.

export class ChangeNotifier {
  /** Each waiter with the data_version it had seen before it last looked for changes. */
  private waiters = new Map<() => void, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dataVersion: () => number,
    private readonly pollMs: number,
  ) {}

  /** A commit happened on our own connection. */
  notify(): void {
    const ws = [...this.waiters.keys()];
    this.waiters.clear();
    for (const w of ws) w();
    this.updateTimer();
  }

  /** Read this before looking for new data, and pass it to wait(). */
  version(): number {
    return this.dataVersion();
  }

  /**
   * Resolves once the store changed after `seen` was read (or on abort). Commits by other processes
   * between reading `seen` and calling wait() are caught because the poll compares against `seen`;
   * our own commits call notify(), which JavaScript cannot run between a caller's check and wait().
   */
  wait(seen: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal?.removeEventListener('abort', done);
        this.updateTimer();
        resolve();
      };
      this.waiters.set(done, seen);
      signal?.addEventListener('abort', done, { once: true });
      this.updateTimer();
    });
  }

  /** Wakes every waiter and stops polling (store closing). */
  close(): void {
    this.notify();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private updateTimer(): void {
    if (this.waiters.size > 0 && !this.timer) {
      // Kept referenced: like an open etcd watch stream, a pending watch keeps the process alive.
      this.timer = setInterval(() => this.poll(), this.pollMs);
    } else if (this.waiters.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private poll(): void {
    let v: number;
    try {
      v = this.dataVersion();
    } catch {
      // Database closed or busy: wake waiters so they see the state and act on it.
      this.notify();
      return;
    }
    for (const [w, seen] of [...this.waiters]) if (seen !== v) w();
  }
}
