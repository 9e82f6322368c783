// Per-key mutual exclusion for the agent's CNI work: requests that share a key (a container ID, a
// workload endpoint) run one after another in arrival order; requests with no key in common run
// concurrently. A request holding several keys takes them all at once (no partial holding, so no
// deadlock whatever the key order). Pure: no I/O.
//
// A waiter whose AbortSignal fires before its turn rejects at once with the signal's reason and
// never runs; its place in the queue is still released only after its own predecessors are done,
// so a cancelled waiter never lets a later request overtake an earlier one.

export class KeyedLock {
  /** key → tail of its queue (resolves when the last holder of the key is done). */
  private readonly tails = new Map<string, Promise<void>>();

  /** Number of keys currently held or waited for. */
  get size(): number {
    return this.tails.size;
  }

  async run<T>(keys: readonly string[], fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const unique = [...new Set(keys)];
    const before = Promise.all(unique.map((k) => this.tails.get(k) ?? Promise.resolve())).then(() => undefined);
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    for (const k of unique) this.tails.set(k, mine);
    void mine.then(() => {
      for (const k of unique) if (this.tails.get(k) === mine) this.tails.delete(k);
    });
    try {
      await untilAborted(before, signal);
      return await fn();
    } finally {
      // After fn, `before` has settled already; after an early abort, wait for it.
      void before.then(release);
    }
  }
}

/** `p`, or a rejection with the signal's reason as soon as it aborts (whichever comes first). */
function untilAborted(p: Promise<void>, signal?: AbortSignal): Promise<void> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    void p.then(() => {
      signal.removeEventListener('abort', onAbort);
      if (signal.aborted) reject(signal.reason);
      else resolve();
    });
  });
}
