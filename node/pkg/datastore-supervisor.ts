// Keeps the agent going while the datastore comes and goes. calico-node exits when it cannot
// reach the datastore at start, and Kubernetes restarts it into a crash loop; Tortie instead
// keeps its servers up, reports not-ready, and keeps trying:
//
// * every intervalMs it asks the store for its revision (bounded by checkTimeoutMs); the
//   `datastore` health reporter is ready exactly when that works, and a line is logged once per
//   change of state (not once per failed check);
// * the startup work (register the node, seed the pool, …) runs once the store answers and is
//   retried with exponential backoff until it succeeds; after an outage it runs again (the store
//   may have come back empty, e.g. a new etcd);
// * the reporter is always live while this loop turns, so a datastore outage never makes the
//   liveness probe restart the agent; a stuck loop goes stale and does.
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import type { HealthReporter } from './health.js';
import { type Logger, silentLogger } from '../../libcalico-go/lib/logutils/index.js';

export interface SupervisorOptions<R> {
  /** Opens the backend (opening an etcd client does not connect; the check does). */
  open: () => Promise<Backend>;
  /** The startup work; throws to be retried. */
  startup?: (store: Backend) => Promise<R>;
  /** Reporter for the datastore connection (live while supervising, ready while reachable). */
  reporter?: HealthReporter;
  /** Reporter for the startup work (ready once it has succeeded). */
  startupReporter?: HealthReporter;
  log?: Logger;
  intervalMs?: number;
  checkTimeoutMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** Called on every change between reachable and unreachable. */
  onStateChange?: (up: boolean) => void;
}

export type DatastoreState = 'unknown' | 'up' | 'down';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

export class DatastoreSupervisor<R = void> {
  private readonly o: Required<Omit<SupervisorOptions<R>, 'startup' | 'reporter' | 'startupReporter' | 'onStateChange'>> &
    SupervisorOptions<R>;
  private backend: Backend | null = null;
  private st: DatastoreState = 'unknown';
  private everUp = false;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private startupNeeded: boolean;
  private startupAttempts = 0;
  private nextStartupAt = 0;
  private startupBackoff: number;
  private lastStartupError = '';
  private result: R | undefined;
  private resolveStarted!: (r: R) => void;
  private rejectStarted!: (e: Error) => void;
  private startedOnce = false;
  /** Resolves with the first successful startup's result; rejects if stopped before that. */
  readonly started: Promise<R>;

  constructor(opts: SupervisorOptions<R>) {
    this.o = {
      log: silentLogger,
      intervalMs: 2000,
      checkTimeoutMs: 5000,
      backoffInitialMs: 1000,
      backoffMaxMs: 30_000,
      ...opts,
    };
    this.startupNeeded = opts.startup !== undefined;
    this.startupBackoff = this.o.backoffInitialMs;
    this.started = new Promise<R>((resolve, reject) => {
      this.resolveStarted = resolve;
      this.rejectStarted = reject;
    });
    this.started.catch(() => {
      // Observed by whoever awaits it; never an unhandled rejection.
    });
    if (!opts.startup) {
      this.startedOnce = true;
      this.resolveStarted(undefined as R);
    }
  }

  /** The open backend (null until opened); usable whether or not the store is reachable now. */
  get store(): Backend | null {
    return this.backend;
  }

  get state(): DatastoreState {
    return this.st;
  }

  /** True once the startup work has succeeded at least once. */
  get startupDone(): boolean {
    return this.startedOnce;
  }

  get startupResult(): R | undefined {
    return this.result;
  }

  start(): void {
    if (this.loop) return;
    this.o.reporter?.report({ live: true, ready: false, detail: 'connecting' });
    this.o.startupReporter?.report({ live: true, ready: !this.startupNeeded, detail: this.startupNeeded ? 'not run yet' : '' });
    this.loop = this.run();
  }

  /** Ends the loop and closes the backend. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (!this.startedOnce) this.rejectStarted(new Error('stopped before the startup work succeeded'));
    const b = this.backend;
    this.backend = null;
    if (b) {
      try {
        await b.close();
      } catch (e) {
        this.o.log.warn(`Closing the datastore client failed: ${message(e)}`);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
    });
  }

  private setState(up: boolean, why: string): void {
    const next: DatastoreState = up ? 'up' : 'down';
    this.o.reporter?.report({ live: true, ready: up, detail: up ? '' : why });
    if (next === this.st) return;
    const prev = this.st;
    this.st = next;
    if (up) {
      this.o.log.info(this.everUp ? 'Datastore is reachable again' : 'Connected to the datastore');
      this.everUp = true;
      // A store that was away may have come back without our records.
      if (prev === 'down' && this.startedOnce && this.o.startup) this.startupNeeded = true;
    } else {
      this.o.log.warn(
        `${this.everUp ? 'Lost the datastore' : 'Cannot reach the datastore'}: ${why}; ` +
          'reporting not ready and retrying (the agent keeps running)',
      );
    }
    this.o.onStateChange?.(up);
  }

  private async check(): Promise<void> {
    if (!this.backend) {
      this.backend = await withTimeout(this.o.open(), this.o.checkTimeoutMs, 'opening the datastore');
    }
    await withTimeout(this.backend.revision(), this.o.checkTimeoutMs, 'the datastore');
  }

  private async runStartup(): Promise<void> {
    const store = this.backend!;
    this.startupAttempts++;
    try {
      const r = await this.o.startup!(store);
      this.result = r;
      this.startupNeeded = false;
      this.startupBackoff = this.o.backoffInitialMs;
      this.lastStartupError = '';
      this.o.startupReporter?.report({ live: true, ready: true, detail: '' });
      if (this.startupAttempts > 1) this.o.log.info(`Startup succeeded after ${this.startupAttempts} attempts`);
      this.startupAttempts = 0;
      if (!this.startedOnce) {
        this.startedOnce = true;
        this.resolveStarted(r);
      }
    } catch (e) {
      const msg = message(e);
      const wait = this.startupBackoff;
      this.nextStartupAt = Date.now() + wait;
      this.startupBackoff = Math.min(this.startupBackoff * 2, this.o.backoffMaxMs);
      // Same error again: log it at a lower level so a long outage does not flood the log.
      const again = msg === this.lastStartupError;
      this.lastStartupError = msg;
      const line = `Startup attempt ${this.startupAttempts} failed: ${msg}; retrying in ${(wait / 1000).toFixed(1)} s`;
      if (again) this.o.log.debug(line);
      else this.o.log.error(line);
      if (!this.startedOnce) this.o.startupReporter?.report({ live: true, ready: false, detail: msg });
    }
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let up = false;
      try {
        await this.check();
        up = true;
      } catch (e) {
        this.setState(false, message(e));
      }
      if (this.stopped) break;
      if (up) {
        this.setState(true, '');
        if (this.startupNeeded && Date.now() >= this.nextStartupAt) {
          await this.runStartup();
          if (this.stopped) break;
          // Startup failed while the store answered: check again sooner than the backoff suggests.
        }
      }
      let wait = this.o.intervalMs;
      if (this.startupNeeded && up) wait = Math.max(0, Math.min(wait, this.nextStartupAt - Date.now()));
      await this.sleep(wait);
    }
  }
}
