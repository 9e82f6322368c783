// A small async queue joining several producers (one watch per kind or source) into one iterator:
// events in push order, the first failure ends it, end() finishes it.

export class EventQueue<E> {
  private items: E[] = [];
  private waiting?: () => void;
  private error?: unknown;
  private ended = false;

  push(x: E): void {
    this.items.push(x);
    this.wake();
  }
  fail(e: unknown): void {
    if (this.error === undefined) this.error = e;
    this.wake();
  }
  end(): void {
    this.ended = true;
    this.wake();
  }
  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
  async *drain(): AsyncGenerator<E> {
    for (;;) {
      if (this.items.length) {
        yield this.items.shift()!;
        continue;
      }
      if (this.error !== undefined) throw this.error;
      if (this.ended) return;
      await new Promise<void>((r) => (this.waiting = r));
    }
  }
}
