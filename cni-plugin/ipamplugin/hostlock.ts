// A per-node mutex between plugin processes on one host, like Calico's /var/run/calico/ipam.lock.
// Correctness never depends on it (IPAM writes are CAS); it turns a thundering herd on one block
// into a queue. Only root (the user running the plugin) can take it.
//
// The lock is a POSIX record lock (fcntl F_SETLK) on a file in a directory only its owner can
// enter: `<dir>/<name>.lock`, dir `$TORTIE_RUN_DIR/locks` (default /var/run/tortie/locks), the
// directory 0700 and the file 0600, both owned by the caller (checked on every acquisition; a mode
// wider than that is tightened, another owner is refused). Node has no flock/fcntl, so the lock is
// taken through SQLite, whose unix VFS is exactly a wrapper around fcntl locks: an EXCLUSIVE
// transaction on the (always empty) file, journal in memory so that no file is ever written. Why:
//   * the kernel frees the lock the moment its holder dies, kill -9 included: no PID file, no
//     stale-lock detection and none of its races (two waiters both judging a PID file stale and
//     both "taking over");
//   * nobody else can take it or hold it: the directory is closed to other users (the abstract unix
//     socket this replaces could be bound by any user of the network namespace);
//   * SQLite also excludes connections within one process (POSIX locks alone do not), and never
//     closes a descriptor of a locked file while a lock is held (which would drop POSIX locks).
// Waiting: the holder also listens on `<dir>/<name>.sock` (only the lock holder binds or unlinks
// it, so a socket left by a killed holder is simply replaced by the next one). Waiters connect and
// sleep until the connection closes (release, or the kernel closing it when the holder dies), then
// try again; when there is no socket to wait on (the holder has not bound it yet, or a stale one)
// they retry every POLL_MS. After the timeout acquireHostLock resolves null and the caller goes on
// without the lock, as it does when the directory cannot be used (with a warning).
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, constants, fchmodSync, lstatSync, mkdirSync, openSync, unlinkSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname, join, resolve } from 'node:path';

export interface HostLock {
  /** The lock file. */
  readonly path: string;
  release(): Promise<void>;
}

export interface HostLockOptions {
  /** Directory of the lock files (default hostLockDir()). */
  dir?: string;
  /** Where a warning goes when the directory or the file cannot be used (default stderr). */
  onWarning?: (msg: string) => void;
}

export const DEFAULT_RUN_DIR = '/var/run/tortie';
/** Longest retry interval when there is no holder socket to wait on (1, 2, 4, 8, 10, 10… ms). */
const POLL_MS = 10;
/** Longest unix socket path (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

export class HostLockError extends Error {}

/** `$TORTIE_RUN_DIR/locks`, default /var/run/tortie/locks. */
export function hostLockDir(env: Record<string, string | undefined> = process.env): string {
  return join(resolve(env.TORTIE_RUN_DIR || DEFAULT_RUN_DIR), 'locks');
}

/** The lock file and holder socket of a lock name (any string; encoded, hashed when long). */
export function hostLockPaths(dir: string, name: string): { lock: string; socket: string | null } {
  const hash = createHash('sha256').update(name).digest('hex');
  let base = encodeURIComponent(name);
  if (base.length > 200) base = hash.slice(0, 32);
  let socket: string | null = join(dir, `${base}.sock`);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) socket = join(dir, `${hash.slice(0, 16)}.sock`);
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) socket = null;
  return { lock: join(dir, `${base}.lock`), socket };
}

const euid = () => process.geteuid?.() ?? 0;

/** The directory exists, is ours and is 0700 (tightened when ours and wider). */
function ensureDir(dir: string): void {
  mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new HostLockError(`host lock directory ${dir} is not a directory`);
  if (st.uid !== euid()) throw new HostLockError(`host lock directory ${dir} belongs to uid ${st.uid}, not to this process (uid ${euid()})`);
  if ((st.mode & 0o7777) !== 0o700) chmodSync(dir, 0o700);
}

/** The lock file exists, is a regular file of ours and is 0600. */
function ensureFile(path: string): void {
  try {
    // Only a file made now is ever opened here: closing a descriptor of a file this process holds
    // a POSIX lock on would drop that lock.
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      fchmodSync(fd, 0o600);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = lstatSync(path);
  if (!st.isFile()) throw new HostLockError(`host lock ${path} is not a regular file`);
  if (st.uid !== euid()) throw new HostLockError(`host lock ${path} belongs to uid ${st.uid}, not to this process (uid ${euid()})`);
  if ((st.mode & 0o7777) !== 0o600) chmodSync(path, 0o600);
}

function isBusy(e: unknown): boolean {
  const code = (e as { code?: string }).code ?? '';
  return code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED');
}

/** One connection to the lock file; tryLock takes the exclusive lock or says it is busy. */
class LockFile {
  private readonly db: BetterSqlite3.Database;
  private memoryJournal = false;

  constructor(readonly path: string) {
    this.db = new Database(path, { fileMustExist: true, timeout: 0 });
  }

  tryLock(): boolean {
    try {
      // An in-memory journal: the exclusive transaction writes no -journal file next to the lock.
      // (Setting it reads the file header, which a holder's lock may refuse: then try again.)
      if (!this.memoryJournal) this.memoryJournal = this.db.pragma('journal_mode = MEMORY', { simple: true }) === 'memory';
      if (!this.memoryJournal) return false;
      this.db.exec('BEGIN EXCLUSIVE');
      return true;
    } catch (e) {
      if (isBusy(e)) return false;
      throw e;
    }
  }

  /** Releases the lock (if held) and the connection. */
  close(): void {
    if (!this.db.open) return;
    if (this.db.inTransaction) this.db.exec('ROLLBACK');
    this.db.close();
  }
}

function listen(path: string): Promise<Server | null> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(null));
    srv.listen({ path }, () => resolve(srv));
  });
}

/** The holder's socket: waiters connect to it and wake up when it closes. */
async function holderSocket(path: string | null): Promise<{ close(): void }> {
  if (path === null) return { close: () => undefined };
  // Only the lock holder binds or removes the socket: one left by a killed holder is replaced.
  try {
    unlinkSync(path);
  } catch {
    // not there
  }
  const srv = await listen(path);
  if (!srv) return { close: () => undefined };
  srv.unref();
  const waiters = new Set<Socket>();
  srv.on('connection', (s) => {
    waiters.add(s);
    s.on('close', () => waiters.delete(s));
    s.on('error', () => undefined);
  });
  return {
    close: () => {
      srv.close(); // removes the socket file at once (before the lock is released)
      for (const s of waiters) s.destroy();
    },
  };
}

/**
 * Resolves true when the holder's connection closes; false after pollMs when there is no holder to
 * connect to (not bound yet: the new holder is a moment behind the one who woke us; or gone); or
 * after ms.
 */
function waitForHolder(path: string | null, ms: number, pollMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    let connected = false;
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      clearTimeout(timer);
      sock?.destroy();
      resolve(connected);
    };
    const poll = () => {
      clearTimeout(timer);
      timer = setTimeout(done, Math.min(ms, pollMs));
    };
    const sock = path === null ? null : createConnection({ path });
    if (!sock) return poll();
    timer = setTimeout(done, ms);
    sock.on('connect', () => (connected = true));
    sock.on('error', () => undefined);
    sock.on('close', () => (connected ? done() : poll()));
  });
}

/**
 * Waits for the lock up to `timeoutMs`; resolves null on timeout, or (with a warning) when the lock
 * directory or file cannot be used: callers go on without it.
 */
export async function acquireHostLock(name: string, timeoutMs: number, opts: HostLockOptions = {}): Promise<HostLock | null> {
  const dir = opts.dir ?? hostLockDir();
  const warn = opts.onWarning ?? ((msg: string) => process.stderr.write(`tortie: ${msg}\n`));
  const { lock: path, socket } = hostLockPaths(dir, name);
  const deadline = Date.now() + timeoutMs;
  let file: LockFile;
  try {
    ensureDir(dir);
    ensureFile(path);
    file = new LockFile(path);
  } catch (e) {
    warn(`going on without the host lock ${JSON.stringify(name)}: ${(e as Error).message}`);
    return null;
  }
  let misses = 0;
  try {
    for (;;) {
      if (file.tryLock()) {
        const sock = await holderSocket(socket);
        let released = false;
        return {
          path,
          release: async () => {
            if (released) return;
            released = true;
            sock.close();
            file.close();
          },
        };
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        file.close();
        return null;
      }
      misses = (await waitForHolder(socket, left, Math.min(POLL_MS, 2 ** misses))) ? 0 : misses + 1;
    }
  } catch (e) {
    file.close();
    throw e;
  }
}
