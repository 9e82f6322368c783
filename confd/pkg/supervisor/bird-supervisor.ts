// Runs BIRD for the node agent: one daemon in the foreground as our child (so we own its PID),
// its configuration written and checked by us, reloaded in place, restarted when it dies.
//
// Files, all under `runDir` (the agent's $TORTIE_RUN_DIR, e.g. /var/run/tortie):
//   bird.cfg            the configuration BIRD runs (mode 0600: it may hold BGP passwords)
//   bird.cfg.candidate  a new configuration while it is checked; left there when BIRD refuses it,
//                       so the line numbers in BIRD's message can be looked up
//   bird.ctl            BIRD's control socket (`birdc -s …/bird.ctl`, `tortiectl node status`)
//   bird.pid            BIRD's pid file
//
// * start(text): checks the text with `bird -p -c` (refused → BirdConfigError with BIRD's message;
//   nothing on disk changes), moves it into place (temp file + rename), runs
//   `bird -f -c bird.cfg -s bird.ctl -P bird.pid` and waits until the socket greets.
// * update(text): unchanged → nothing; else check with `bird -p`, move into place and ask BIRD
//   to `configure` (sessions whose configuration did not change stay up). When BIRD refuses, or
//   cannot be asked, the previous file is put back, so bird.cfg is always what BIRD runs; the
//   result says what happened and keeps BIRD's answer.
// * BIRD dying is logged (exit code or signal) and it is started again after a delay that doubles
//   from 0.5 s up to 10 s while it keeps dying, and starts over after it has run for 30 s.
// * stop(): SIGTERM, then SIGKILL after stopTimeoutMs, by PID; removes bird.ctl and bird.pid.
//   stop({ graceful: true }) first asks BIRD to `graceful restart`: its BGP sessions end without a
//   Cease, so peers that negotiated graceful restart keep this node's routes (stale) until a new
//   BIRD reconnects — the agent being replaced does not cut its pods off the other nodes.
//
// `wrapper` (or `netns`) prefixes every BIRD command line: `netns: 'n1'` runs
// `ip netns exec n1 bird …`; `ip netns exec` execs BIRD in place, so the PID is still BIRD's.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { birdAnswers, birdCommand, type BirdReply } from './birdc.js';

export const BIRD_BIN = '/usr/sbin/bird';
export const IP_BIN = '/usr/sbin/ip';

/** The subset of the agent's Logger (libcalico-go/lib/logutils) the supervisor uses. */
export interface SupervisorLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

const silent: SupervisorLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface BackoffOptions {
  /** First restart delay. Default 500 ms. */
  initialMs?: number;
  /** Largest delay. Default 10 s. */
  maxMs?: number;
  /** A BIRD that ran at least this long before dying restarts after initialMs again. Default 30 s. */
  stableMs?: number;
}

export interface BirdSupervisorOptions {
  /** Directory for bird.cfg, bird.ctl, bird.pid (created 0755 if missing). */
  runDir: string;
  /** Default /usr/sbin/bird. */
  birdPath?: string;
  /** Run BIRD (and `bird -p`) inside this network namespace (`ip netns exec NAME …`). */
  netns?: string;
  /** Command prefix for BIRD, e.g. ['nsenter', '-t', '1234', '-n']; overrides netns. */
  wrapper?: readonly string[];
  log?: SupervisorLogger;
  backoff?: BackoffOptions;
  /** How long a started BIRD has to answer on its socket. Default 10 s. */
  readyTimeoutMs?: number;
  /** SIGTERM → SIGKILL grace. Default 5 s. */
  stopTimeoutMs?: number;
  /** Per-line timeout for `configure`. Default 10 s (a large configuration takes a while to parse). */
  configureTimeoutMs?: number;
  /** Timeout of `bird -p`. Default 30 s. */
  checkTimeoutMs?: number;
  /**
   * When a BIRD already answers on runDir's socket at start(): false (default) refuses; true stops
   * it (by the PID in bird.pid, only if that process is a `bird` using this socket) — for an
   * agent that restarts after a crash left its BIRD running.
   */
  takeOver?: boolean;
}

export type SupervisorState = 'stopped' | 'starting' | 'running' | 'stopping';

export interface BirdExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: Date;
  pid: number;
}

export interface BirdSupervisorStatus {
  state: SupervisorState;
  /** BIRD's PID while it runs (null while a restart is pending). */
  pid: number | null;
  /** Whether BIRD's socket answered since its last (re)start. */
  ready: boolean;
  /** How many times BIRD was started again after dying. */
  restarts: number;
  /** The most recent problem (refused configuration, BIRD's death, …) and when; not cleared by later successes. */
  lastError: string | null;
  lastErrorAt: Date | null;
  /** When BIRD last loaded a configuration successfully (its start, or a `configure` it accepted). */
  lastConfiguredAt: Date | null;
  lastExit: BirdExit | null;
  configPath: string;
  socketPath: string;
  pidPath: string;
}

export type UpdateOutcome =
  /** Same text as what runs: nothing done. */
  | 'unchanged'
  /** BIRD accepted `configure`. */
  | 'reconfigured'
  /** `bird -p` refused the text: nothing changed. */
  | 'refused'
  /** BIRD refused `configure`, or could not be asked: still running the previous configuration. */
  | 'failed'
  /** BIRD is not running right now (restart pending): the file is in place for its next start. */
  | 'deferred';

export interface UpdateResult {
  outcome: UpdateOutcome;
  /** One line for logs and callers. */
  message: string;
  /** BIRD's reply to `configure`, when it was asked. */
  reply?: BirdReply;
}

/** The configuration was refused by `bird -p`. */
export class BirdConfigError extends Error {
  constructor(
    message: string,
    /** BIRD's own message (stderr of `bird -p`). */
    readonly birdMessage: string,
  ) {
    super(message);
    this.name = 'BirdConfigError';
  }
}

export class BirdSupervisorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BirdSupervisorError';
  }
}

// ---------------------------------------------------------------------------------------------
// Pure parts.

const DEFAULT_BACKOFF: Required<BackoffOptions> = { initialMs: 500, maxMs: 10_000, stableMs: 30_000 };

/** The delay before restart number `failures` of a run of consecutive failures (1 → initialMs, doubling, capped). */
export function backoffDelay(failures: number, opts: BackoffOptions = {}): number {
  const o = { ...DEFAULT_BACKOFF, ...opts };
  const n = Math.max(1, Math.floor(failures));
  return Math.min(o.maxMs, o.initialMs * 2 ** Math.min(n - 1, 30));
}

/** Consecutive failures after BIRD died having run `uptimeMs`: a long run starts the count over. */
export function nextFailureCount(previous: number, uptimeMs: number, opts: BackoffOptions = {}): number {
  const o = { ...DEFAULT_BACKOFF, ...opts };
  return uptimeMs >= o.stableMs ? 1 : previous + 1;
}

export type UpdatePlan = 'unchanged' | 'reconfigure' | 'replace-file';

/** What update() does: nothing for the same text; `configure` when BIRD runs; else only the file. */
export function planUpdate(running: string | null, next: string, birdUp: boolean): UpdatePlan {
  if (running !== null && running === next) return 'unchanged';
  return birdUp ? 'reconfigure' : 'replace-file';
}

/**
 * Reads BIRD's answer to `configure`: `0003 Reconfigured`, `0004 Reconfiguration in progress`,
 * `0005 … queueing new config`, `0019 Nothing to do` are success; `0006 Reconfiguration ignored,
 * shutting down` and every 8xxx/9xxx (e.g. `8002 FILE:LINE:COL syntax error …`) are failures.
 */
export function interpretConfigureReply(reply: BirdReply): { ok: boolean; message: string } {
  const last = reply.text.trimEnd().split('\n').at(-1) ?? '';
  const message = last || `code ${reply.code}`;
  if (!reply.ok || reply.code === '0006') return { ok: false, message };
  return { ok: true, message };
}

/** `exit code 1` / `signal SIGKILL`. */
export function describeExit(code: number | null, signal: string | null): string {
  if (signal) return `signal ${signal}`;
  return `exit code ${code ?? 'unknown'}`;
}

/** The command line that runs BIRD in the foreground with our files. */
export function birdCommandLine(birdPath: string, wrapper: readonly string[], files: { config: string; socket: string; pid: string }): string[] {
  return [...wrapper, birdPath, '-f', '-c', files.config, '-s', files.socket, '-P', files.pid];
}

/** Whether a /proc/<pid>/cmdline (NUL-separated) is a BIRD using this control socket. */
export function isBirdForSocket(cmdline: string, socketPath: string): boolean {
  const argv = cmdline.split('\0').filter((a) => a !== '');
  const i = argv.findIndex((a) => /(^|\/)bird$/.test(a));
  if (i < 0) return false;
  const rest = argv.slice(i + 1);
  const s = rest.indexOf('-s');
  return s >= 0 && rest[s + 1] === socketPath;
}

// ---------------------------------------------------------------------------------------------

/** Writes a file by temp file + fsync + rename, so readers see the old or the new content only. */
export function writeFileAtomic(path: string, text: string, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function removeIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Running {
  child: ChildProcess;
  pid: number;
  startedAt: number;
  ready: boolean;
  exited: Promise<void>;
  output: string[];
}

export class BirdSupervisor {
  readonly configPath: string;
  readonly socketPath: string;
  readonly pidPath: string;
  readonly candidatePath: string;
  private readonly o: Required<Omit<BirdSupervisorOptions, 'netns' | 'wrapper' | 'backoff'>> & { backoff: Required<BackoffOptions> };
  private readonly wrapper: readonly string[];
  private readonly log: SupervisorLogger;

  private state: SupervisorState = 'stopped';
  private cur: Running | null = null;
  /** The configuration text BIRD runs (= bird.cfg). */
  private runningText: string | null = null;
  private restarts = 0;
  private failures = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  private lastError: string | null = null;
  private lastErrorAt: Date | null = null;
  private lastConfiguredAt: Date | null = null;
  private lastExit: BirdExit | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** Set by stop() at once (before its turn in the queue): no restart may begin after it. */
  private stopRequested = false;

  constructor(opts: BirdSupervisorOptions) {
    this.o = {
      runDir: opts.runDir,
      birdPath: opts.birdPath ?? BIRD_BIN,
      log: opts.log ?? silent,
      readyTimeoutMs: opts.readyTimeoutMs ?? 10_000,
      stopTimeoutMs: opts.stopTimeoutMs ?? 5_000,
      configureTimeoutMs: opts.configureTimeoutMs ?? 10_000,
      checkTimeoutMs: opts.checkTimeoutMs ?? 30_000,
      takeOver: opts.takeOver ?? false,
      backoff: { ...DEFAULT_BACKOFF, ...opts.backoff },
    };
    this.wrapper = opts.wrapper ?? (opts.netns ? [IP_BIN, 'netns', 'exec', opts.netns] : []);
    this.log = this.o.log;
    this.configPath = join(opts.runDir, 'bird.cfg');
    this.socketPath = join(opts.runDir, 'bird.ctl');
    this.pidPath = join(opts.runDir, 'bird.pid');
    this.candidatePath = join(opts.runDir, 'bird.cfg.candidate');
    if (Buffer.byteLength(this.socketPath) > 107) {
      throw new BirdSupervisorError(`BIRD's control socket path ${this.socketPath} is longer than a unix socket address allows (107 bytes)`);
    }
  }

  /** Runs `fn` after every earlier start/update/stop/restart has finished. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private noteError(msg: string): void {
    this.lastError = msg;
    this.lastErrorAt = new Date();
  }

  status(): BirdSupervisorStatus {
    return {
      state: this.state,
      pid: this.cur?.pid ?? null,
      ready: this.cur?.ready ?? false,
      restarts: this.restarts,
      lastError: this.lastError,
      lastErrorAt: this.lastErrorAt,
      lastConfiguredAt: this.lastConfiguredAt,
      lastExit: this.lastExit,
      configPath: this.configPath,
      socketPath: this.socketPath,
      pidPath: this.pidPath,
    };
  }

  /** Checks `text` with `bird -p -c` at the candidate path; returns BIRD's message when refused. */
  private async check(text: string): Promise<string | null> {
    writeFileAtomic(this.candidatePath, text);
    const argv = [...this.wrapper, this.o.birdPath, '-p', '-c', this.candidatePath];
    const r = await new Promise<{ code: number | null; signal: string | null; out: string; err?: Error }>((resolve) => {
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout!.on('data', (d) => (out += d));
      child.stderr!.on('data', (d) => (out += d));
      const t = setTimeout(() => child.kill('SIGKILL'), this.o.checkTimeoutMs);
      child.on('error', (err) => {
        clearTimeout(t);
        resolve({ code: null, signal: null, out, err });
      });
      child.on('close', (code, signal) => {
        clearTimeout(t);
        resolve({ code, signal, out });
      });
    });
    if (r.err) throw new BirdSupervisorError(`cannot run ${argv.join(' ')}: ${r.err.message}`);
    if (r.code === 0) {
      removeIfPresent(this.candidatePath);
      return null;
    }
    return r.out.trim() || `${argv.join(' ')} failed with ${describeExit(r.code, r.signal)} and printed nothing`;
  }

  /** Refuses (or, with takeOver, stops) a BIRD already answering on our socket; clears stale files. */
  private async clearPredecessor(): Promise<void> {
    if (await birdAnswers(this.socketPath, 1000)) {
      let pid: number | null = null;
      try {
        pid = Number.parseInt(readFileSync(this.pidPath, 'utf8').trim(), 10) || null;
      } catch {
        // no pid file
      }
      let cmdline = '';
      if (pid) {
        try {
          cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          // not visible
        }
      }
      if (!this.o.takeOver || !pid || !isBirdForSocket(cmdline, this.socketPath)) {
        throw new BirdSupervisorError(
          `a BIRD already answers on ${this.socketPath}${pid ? ` (pid ${pid} in ${this.pidPath})` : ''}; ` +
            (this.o.takeOver ? 'it is not one this supervisor can identify as its own, not touching it' : 'refusing to start a second one'),
        );
      }
      this.log.warn(`Stopping the BIRD left running on ${this.socketPath} (pid ${pid}) before starting a new one`);
      process.kill(pid, 'SIGTERM');
      const t0 = Date.now();
      while (pidAlive(pid) && Date.now() - t0 < this.o.stopTimeoutMs) await sleep(50);
      if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
      while (pidAlive(pid) && Date.now() - t0 < this.o.stopTimeoutMs + 5000) await sleep(50);
    }
    removeIfPresent(this.socketPath);
    removeIfPresent(this.pidPath);
  }

  /** Starts BIRD with bird.cfg; resolves once its socket greets, null if it died or did not answer (then it is killed). */
  private async launch(): Promise<Running | null> {
    const argv = birdCommandLine(this.o.birdPath, this.wrapper, { config: this.configPath, socket: this.socketPath, pid: this.pidPath });
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const spawned = await new Promise<Error | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (e) => resolve(e));
    });
    if (spawned || child.pid === undefined) {
      throw new BirdSupervisorError(`cannot run ${argv.join(' ')}: ${spawned?.message ?? 'no pid'}`);
    }
    const output: string[] = [];
    const collect = (d: Buffer) => {
      for (const line of d.toString('utf8').split('\n')) {
        if (!line.trim()) continue;
        output.push(line);
        if (output.length > 20) output.shift();
        this.log.debug(`bird[${child.pid}]: ${line}`);
      }
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    let exitedFlag = false;
    const run: Running = {
      child,
      pid: child.pid,
      startedAt: Date.now(),
      ready: false,
      output,
      exited: new Promise<void>((resolve) =>
        child.on('exit', (code, signal) => {
          exitedFlag = true;
          this.onExit(run, code, signal);
          resolve();
        }),
      ),
    };
    this.cur = run;
    this.log.info(`Started BIRD (pid ${run.pid}): ${argv.join(' ')}`);
    const deadline = Date.now() + this.o.readyTimeoutMs;
    while (!exitedFlag && Date.now() < deadline) {
      if (await birdAnswers(this.socketPath, 1000)) {
        if (exitedFlag) break;
        run.ready = true;
        return run;
      }
      await Promise.race([sleep(100), run.exited]);
    }
    if (!exitedFlag) {
      this.noteError(`BIRD (pid ${run.pid}) did not answer on ${this.socketPath} within ${this.o.readyTimeoutMs} ms; killing it`);
      this.log.error(this.lastError!);
      process.kill(run.pid, 'SIGKILL');
      await run.exited;
    }
    return null;
  }

  private onExit(run: Running, code: number | null, signal: NodeJS.Signals | null): void {
    this.lastExit = { code, signal, at: new Date(), pid: run.pid };
    if (this.cur === run) this.cur = null;
    const tail = run.output.length ? `; its last output: ${run.output.slice(-3).join(' | ')}` : '';
    if (this.state !== 'running' || this.stopRequested) {
      if (this.state === 'starting') this.noteError(`BIRD (pid ${run.pid}) exited with ${describeExit(code, signal)} while starting${tail}`);
      return;
    }
    const uptime = Date.now() - run.startedAt;
    this.failures = nextFailureCount(this.failures, uptime, this.o.backoff);
    const delay = backoffDelay(this.failures, this.o.backoff);
    this.noteError(`BIRD (pid ${run.pid}) exited with ${describeExit(code, signal)} after ${(uptime / 1000).toFixed(1)} s${tail}`);
    this.log.warn(`${this.lastError}; restarting it in ${delay} ms (restart #${this.restarts + 1})`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      void this.serial(() => this.restart());
    }, delay);
  }

  private async restart(): Promise<void> {
    if (this.state !== 'running' || this.stopRequested || this.cur) return;
    this.restarts++;
    // Our BIRD died: a socket or pid file it left is stale.
    removeIfPresent(this.socketPath);
    removeIfPresent(this.pidPath);
    try {
      const run = await this.launch();
      if (run) {
        this.log.info(`BIRD restarted (pid ${run.pid}); its control socket ${this.socketPath} answers`);
        this.lastConfiguredAt = new Date();
      }
      // else: onExit has scheduled the next attempt.
    } catch (e) {
      // Could not even spawn: try again later.
      this.failures++;
      const delay = backoffDelay(this.failures, this.o.backoff);
      this.noteError((e as Error).message);
      this.log.error(`${this.lastError}; trying again in ${delay} ms`);
      this.restartTimer = setTimeout(() => {
        this.restartTimer = null;
        void this.serial(() => this.restart());
      }, delay);
    }
  }

  /**
   * Checks and installs `configText`, starts BIRD and waits for its socket. Throws
   * BirdConfigError (BIRD's message; nothing changed on disk) when `bird -p` refuses the text,
   * BirdSupervisorError when BIRD does not come up.
   */
  start(configText: string): Promise<void> {
    return this.serial(async () => {
      if (this.state !== 'stopped') throw new BirdSupervisorError(`BIRD supervisor for ${this.o.runDir} is already ${this.state}`);
      this.state = 'starting';
      this.stopRequested = false;
      let launched = false;
      try {
        mkdirSync(this.o.runDir, { recursive: true, mode: 0o755 });
        // Before writing anything: a live BIRD on this run dir is refused (or, with takeOver, stopped).
        await this.clearPredecessor();
        const refused = await this.check(configText);
        if (refused !== null) {
          const msg = `BIRD refused the configuration (kept at ${this.candidatePath}): ${refused}`;
          this.noteError(msg);
          throw new BirdConfigError(msg, refused);
        }
        writeFileAtomic(this.configPath, configText);
        this.runningText = configText;
        this.failures = 0;
        launched = true;
        if (!(await this.launch())) {
          throw new BirdSupervisorError(`BIRD did not start: ${this.lastError ?? 'unknown reason'}`);
        }
        this.lastConfiguredAt = new Date();
        this.state = 'running';
      } catch (e) {
        this.state = 'stopped';
        this.cur = null;
        if (launched) {
          // Our BIRD died on the way up: what it left is ours and stale.
          removeIfPresent(this.socketPath);
          removeIfPresent(this.pidPath);
        }
        throw e;
      }
    });
  }

  /** Installs a new configuration in the running BIRD (see UpdateResult); throws only when not started. */
  update(configText: string): Promise<UpdateResult> {
    return this.serial(async (): Promise<UpdateResult> => {
      if (this.state !== 'running') throw new BirdSupervisorError(`BIRD supervisor for ${this.o.runDir} is ${this.state}: start it first`);
      const plan = planUpdate(this.runningText, configText, this.cur?.ready ?? false);
      if (plan === 'unchanged') return { outcome: 'unchanged', message: 'configuration unchanged' };
      const refused = await this.check(configText);
      if (refused !== null) {
        const message = `BIRD refused the new configuration (kept at ${this.candidatePath}): ${refused}; still running the previous configuration`;
        this.noteError(message);
        this.log.warn(message);
        return { outcome: 'refused', message };
      }
      const previous = this.runningText;
      writeFileAtomic(this.configPath, configText);
      if (plan === 'replace-file') {
        this.runningText = configText;
        const message = `BIRD is not running at the moment (restart pending); the new configuration is in ${this.configPath} for its next start`;
        this.log.info(message);
        return { outcome: 'deferred', message };
      }
      const putBack = () => {
        if (previous !== null) writeFileAtomic(this.configPath, previous);
      };
      let reply: BirdReply;
      try {
        reply = await birdCommand(this.socketPath, 'configure', { timeoutMs: this.o.configureTimeoutMs });
      } catch (e) {
        putBack();
        const message = `could not ask BIRD to load the new configuration: ${(e as Error).message}; still running the previous configuration`;
        this.noteError(message);
        this.log.warn(message);
        return { outcome: 'failed', message };
      }
      const verdict = interpretConfigureReply(reply);
      if (!verdict.ok) {
        putBack();
        const message = `BIRD did not take the new configuration: ${verdict.message}; still running the previous configuration`;
        this.noteError(message);
        this.log.warn(message);
        return { outcome: 'failed', message, reply };
      }
      this.runningText = configText;
      this.lastConfiguredAt = new Date();
      this.log.info(`BIRD reloaded its configuration: ${verdict.message}`);
      return { outcome: 'reconfigured', message: verdict.message, reply };
    });
  }

  /**
   * Stops BIRD (SIGTERM, then SIGKILL) and removes its socket and pid file. `graceful`: BIRD's
   * `graceful restart` first (peers keep the routes learned from it), SIGTERM only if it is not
   * gone within stopTimeoutMs.
   */
  stop(opts: { graceful?: boolean } = {}): Promise<void> {
    this.stopRequested = true;
    if (this.restartTimer) {
      clearTimeout(this.restartTimer);
      this.restartTimer = null;
    }
    return this.serial(async () => {
      if (this.restartTimer) {
        clearTimeout(this.restartTimer);
        this.restartTimer = null;
      }
      if (this.state === 'stopped') return;
      this.state = 'stopping';
      const run = this.cur;
      if (run) {
        let asked = false;
        if (opts.graceful) {
          try {
            await birdCommand(this.socketPath, 'graceful restart', { timeoutMs: this.o.stopTimeoutMs });
            asked = true;
            this.log.info(`Asked BIRD (pid ${run.pid}) for a graceful restart: peers keep this node's routes until it is back`);
          } catch (e) {
            this.log.warn(`BIRD (pid ${run.pid}) did not take \`graceful restart\` (${(e as Error).message}); stopping it with SIGTERM`);
          }
        }
        if (!asked) {
          try {
            process.kill(run.pid, 'SIGTERM');
          } catch {
            // already gone
          }
        }
        // The timer is cleared once BIRD exits, so it cannot keep the process alive afterwards.
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.o.stopTimeoutMs)));
        const exitedInTime = await Promise.race([run.exited.then(() => true), timeout]);
        clearTimeout(timer);
        if (!exitedInTime) {
          this.log.warn(`BIRD (pid ${run.pid}) did not stop within ${this.o.stopTimeoutMs} ms of SIGTERM; sending SIGKILL`);
          try {
            process.kill(run.pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
          await run.exited;
        }
        this.log.info(`Stopped BIRD (pid ${run.pid})`);
      }
      this.cur = null;
      removeIfPresent(this.socketPath);
      removeIfPresent(this.pidPath);
      this.state = 'stopped';
    });
  }
}
