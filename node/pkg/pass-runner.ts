// Level-triggered passes driven by the datastore: the agent's loops (routing, policy) each own one.
// A pass runs after a watch event under one of the loop's key prefixes (debounced: a burst of
// events shares one pass), on a periodic resync, or on request; passes never overlap, and a
// request during a pass runs one more pass right after it.
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import type { HealthReporter } from './health.js';
import type { Logger } from '../../libcalico-go/lib/logutils/index.js';

export interface PassRunnerOptions {
  /** The agent's datastore client (null while unavailable). */
  store: () => Backend | null;
  /** Key prefixes whose changes call for a pass. */
  prefixes: readonly string[];
  /** The pass; a throw is logged and counted, the next trigger runs it again. */
  /** One pass; a string it returns becomes the detail of its (ready) health report. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a pass may return nothing or a detail
  pass: () => Promise<void | string>;
  log: Logger;
  /** What the passes do, for log lines ("Routing", "Policy"). */
  what: string;
  /** Full resync period (ms). */
  resyncMs: number;
  /** Debounce of watch events (ms). */
  debounceMs: number;
  /** Told after each pass: live, and ready while the last pass succeeded. */
  health?: HealthReporter;
  /** Called with the time of the first watch event a pass will cover (for latency metrics). */
  onEvent?: (at: number) => void;
}

export interface PassStats {
  passes: number;
  lastPassAt: Date | null;
  lastError: string | null;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());
const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class PassRunner {
  private stopped = true;
  private debounceTimer: NodeJS.Timeout | null = null;
  private resyncTimer: NodeJS.Timeout | null = null;
  private watchAbort: AbortController | null = null;
  private watchTask: Promise<void> | null = null;
  private passing: Promise<void> | null = null;
  private again = false;
  readonly stats: PassStats = { passes: 0, lastPassAt: null, lastError: null };

  constructor(private readonly o: PassRunnerOptions) {}

  get running(): boolean {
    return !this.stopped;
  }

  /** Starts watching, the periodic resync and the first pass. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.watchTask = this.watchLoop();
    const tick = () => {
      if (this.stopped) return;
      this.kick(0);
      this.resyncTimer = setTimeout(tick, this.o.resyncMs);
      this.resyncTimer.unref();
    };
    tick();
  }

  /** Stops triggering and waits for a running pass to end. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.watchAbort?.abort();
    await this.passing?.catch(() => undefined);
    await this.watchTask?.catch(() => undefined);
  }

  /** Asks for a pass after `delayMs` (requests in the meantime share it). */
  kick(delayMs = this.o.debounceMs): void {
    if (this.stopped) return;
    if (this.debounceTimer) {
      if (delayMs > 0) return;
      clearTimeout(this.debounceTimer);
    }
    this.debounceTimer = setTimeout(() => {
      this.debounceTimer = null;
      void this.runPass();
    }, delayMs);
    this.debounceTimer.unref();
  }

  /** Runs a pass now or right after the current one; resolves when that pass has run. */
  runPass(): Promise<void> {
    if (this.passing) {
      this.again = true;
      return this.passing;
    }
    this.passing = (async () => {
      do {
        this.again = false;
        try {
          const detail = await this.o.pass();
          this.stats.lastError = null;
          this.o.health?.report({ live: true, ready: true, detail: typeof detail === 'string' ? detail : '' });
        } catch (e) {
          this.stats.lastError = errText(e);
          this.o.health?.report({ live: true, ready: false, detail: errText(e) });
          this.o.log.warn(`${this.o.what} pass failed (retrying in ${this.o.resyncMs} ms at the latest): ${errText(e)}`);
        }
        this.stats.passes++;
        this.stats.lastPassAt = new Date();
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.passing = null;
    });
    return this.passing;
  }

  private async watchLoop(): Promise<void> {
    let lastError = '';
    while (!this.stopped) {
      const store = this.o.store();
      if (!store) {
        await sleep(1000);
        continue;
      }
      const ac = new AbortController();
      this.watchAbort = ac;
      // One watch per prefix the loop cares about (not one of everything under /calico/): on the
      // kubernetes datastore each is a watch of only the kinds it covers, so the agent needs (and
      // its ServiceAccount is granted) nothing it does not read.
      const watchOne = async (prefix: string) => {
        const events = store.watch(prefix, { signal: ac.signal });
        for await (const ev of events) {
          if (this.o.prefixes.some((p) => ev.key.startsWith(p))) {
            this.o.onEvent?.(performance.now());
            this.kick();
          }
          if (this.o.store() !== store) break;
        }
      };
      try {
        const watches = this.o.prefixes.map((p) => watchOne(p));
        // The race below takes the first outcome; the others are awaited (or dropped) without an unhandled rejection.
        for (const w of watches) w.catch(() => undefined);
        // Anything written before the watches began is picked up by this pass.
        this.kick(0);
        // The first to end (a closed stream, an error, the store replaced) ends them all.
        await Promise.race(watches);
        ac.abort();
        await Promise.allSettled(watches);
        lastError = '';
      } catch (e) {
        if (!this.stopped && errText(e) !== lastError) {
          lastError = errText(e);
          this.o.log.warn(`Datastore watch ended: ${lastError}; watching again (passes still run every ${this.o.resyncMs} ms)`);
        }
      } finally {
        ac.abort();
      }
      if (!this.stopped) await sleep(1000);
    }
  }
}
