// The embedded datastore: one SQLite file shared by every Tortie process on a host (node agents,
// CNI plugin runs, calicoctl). It mimics etcd's model: a global revision bumped by every write,
// per-key mod revisions, and an events table from which watchers in any process read changes.
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  AlreadyExistsError,
  CompactedError,
  ConflictError,
  DatastoreError,
  NotFoundError,
  UnavailableError,
  type Backend,
  type KVPair,
  type ListResult,
  type WatchEvent,
  type WatchOptions,
} from '../api.js';
import { ChangeNotifier } from './notifier.js';
import { EVENT_DELETE, EVENT_PUT, prepareDatabase } from './schema.js';
import { secureStoreFiles, type Tightened } from './file-mode.js';

export interface EmbeddedOptions {
  /**
   * Default NORMAL. In WAL mode a commit is a write() of its WAL frames, so once a transaction is
   * committed it survives the death of the process (kill -9): the data is in the OS page cache and
   * the next opener replays the WAL. NORMAL only skips the fsync per commit, which matters for
   * power loss or a kernel crash (the last commits may roll back, never corrupt); that also kills
   * every pod on the host, so the IPAM state lost with it is stale anyway. FULL fsyncs every
   * commit for those who want power-loss durability at several times the write cost.
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a write waits for another process's write lock (ms). */
  busyTimeoutMs?: number;
  /** Events kept for watchers; older ones are compacted away. */
  historyRevisions?: number;
  /** Compact once every this many revisions (a single ranged DELETE inside that write). */
  compactEvery?: number;
  /** How often idle watchers look for commits by other processes (ms). */
  pollMs?: number;
  /** Where warnings go (store files whose permissions were tightened); default stderr. */
  onWarning?: (msg: string) => void;
}

interface KvRow {
  value: string;
  mod_rev: number;
}

interface EventRow {
  rev: number;
  key: string;
  type: number;
  value: string | null;
  prev_value: string | null;
}

const EVENT_BATCH = 256;

/** Smallest string greater than every string starting with `prefix` (null: no upper bound). */
export function prefixEnd(prefix: string): string | null {
  // SQLite compares TEXT as UTF-8 bytes, which orders like code points, so bumping the last code
  // point bounds the prefix exactly (surrogates are skipped: they have no UTF-8 form).
  const cps = [...prefix];
  while (cps.length > 0) {
    const last = cps.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last === 0xd7ff ? 0xe000 : last + 1;
      return cps.join('') + String.fromCodePoint(next);
    }
  }
  return null;
}

/** A revision argument; 0 only where "before everything" makes sense (watch start). */
function parseRevision(rev: string, key?: string, allowZero = false): number {
  const ok = allowZero ? /^\d{1,15}$/ : /^[1-9]\d{0,14}$/;
  if (!ok.test(rev)) throw new DatastoreError(`invalid revision ${JSON.stringify(rev)}`, key);
  return Number(rev);
}

export class EmbeddedBackend implements Backend {
  readonly type = 'embedded' as const;
  private readonly db: BetterSqlite3.Database;
  private readonly stmts = new Map<string, BetterSqlite3.Statement>();
  private readonly notifier: ChangeNotifier;
  private readonly history: number;
  private readonly compactEvery: number;
  private readonly writeTx: BetterSqlite3.Transaction<(fn: (nextRev: () => number) => unknown) => unknown>;
  private closed = false;
  /** Store files found with permissions beyond their owner and tightened to 0600 by this open. */
  readonly tightened: Tightened[];

  constructor(
    readonly path: string,
    opts: EmbeddedOptions = {},
  ) {
    const busyMs = opts.busyTimeoutMs ?? 10_000;
    this.history = opts.historyRevisions ?? 10_000;
    this.compactEvery = opts.compactEvery ?? 500;
    const warn = opts.onWarning ?? ((msg: string) => process.stderr.write(`tortie: ${msg}\n`));
    let db: BetterSqlite3.Database | undefined;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      // The file is 0600 before SQLite opens it; its -wal/-shm then inherit that (file-mode.ts).
      this.tightened = secureStoreFiles(path, warn);
      // `timeout` is SQLite's busy_timeout: how long a statement waits for another process's lock.
      db = new Database(path, { timeout: busyMs });
      prepareDatabase(db, opts.synchronous ?? 'NORMAL', busyMs);
    } catch (e) {
      db?.close();
      throw new DatastoreError(`cannot open datastore ${path}: ${(e as Error).message}`);
    }
    this.db = db;
    this.writeTx = this.db.transaction((fn: (nextRev: () => number) => unknown) => fn(() => this.nextRev()));
    const dv = this.db.prepare('PRAGMA data_version').pluck();
    this.notifier = new ChangeNotifier(() => dv.get() as number, opts.pollMs ?? 25);
  }

  /** Statements are prepared on first use: a CNI run touches only a few of them. */
  private stmt(sql: string): BetterSqlite3.Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  private check(): void {
    if (this.closed) throw new DatastoreError(`datastore ${this.path} is closed`);
  }

  private row(key: string): KvRow | undefined {
    return this.stmt('SELECT value, mod_rev FROM kv WHERE key = ?').get(key) as KvRow | undefined;
  }

  private head(): { rev: number; compact_rev: number } {
    return this.stmt('SELECT rev, compact_rev FROM meta WHERE id = 1').get() as { rev: number; compact_rev: number };
  }

  /**
   * Runs one write under BEGIN IMMEDIATE (takes the write lock up front, waiting up to the busy
   * timeout, so two processes never both read then fail to upgrade). `fn` takes a new revision
   * when it writes; throwing inside rolls everything back.
   */
  private write<T>(fn: (nextRev: () => number) => T): T {
    this.check();
    const out = this.sqlite(() => this.writeTx.immediate(fn) as T);
    this.notifier.notify();
    return out;
  }

  /** Turns SQLite failures into datastore errors that name the file; ours pass through. */
  private sqlite<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof DatastoreError) throw e;
      const code = (e as { code?: string }).code ?? '';
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
        throw new UnavailableError(`datastore ${this.path} stayed locked by another process: ${(e as Error).message}`);
      }
      throw new DatastoreError(`datastore ${this.path}: ${(e as Error).message}`);
    }
  }

  /** Bumps the global revision (one per write) and compacts now and then, inside the write. */
  private nextRev(): number {
    const rev = this.stmt('UPDATE meta SET rev = rev + 1 WHERE id = 1 RETURNING rev').pluck().get() as number;
    if (rev % this.compactEvery === 0) this.compactBelow(rev - this.history + 1);
    return rev;
  }

  /** Drops events with revision < rev (etcd's meaning of "compact at rev"). */
  private compactBelow(rev: number): void {
    if (rev <= 1) return;
    this.stmt('DELETE FROM events WHERE rev < ?').run(rev);
    this.stmt('UPDATE meta SET compact_rev = max(compact_rev, ?) WHERE id = 1').run(rev);
  }

  private event(rev: number, key: string, type: number, value: string | null, prev: string | null): void {
    this.stmt('INSERT INTO events (rev, key, type, value, prev_value) VALUES (?, ?, ?, ?, ?)').run(
      rev, key, type, value, prev,
    );
  }

  private put(key: string, value: string, rev: number, prev: KvRow | undefined): KVPair {
    if (prev) this.stmt('UPDATE kv SET value = ?, mod_rev = ? WHERE key = ?').run(value, rev, key);
    else this.stmt('INSERT INTO kv (key, value, create_rev, mod_rev) VALUES (?, ?, ?, ?)').run(key, value, rev, rev);
    this.event(rev, key, EVENT_PUT, value, prev?.value ?? null);
    return { key, value, revision: String(rev) };
  }

  async get(key: string): Promise<KVPair | null> {
    this.check();
    const r = this.sqlite(() => this.row(key));
    return r ? { key, value: r.value, revision: String(r.mod_rev) } : null;
  }

  async list(prefix: string): Promise<ListResult> {
    this.check();
    const end = prefixEnd(prefix);
    // One read transaction: the items and the revision come from the same snapshot.
    return this.sqlite(() => this.db.transaction(() => {
      const rows = (end === null
        ? this.stmt('SELECT key, value, mod_rev FROM kv WHERE key >= ? ORDER BY key').all(prefix)
        : this.stmt('SELECT key, value, mod_rev FROM kv WHERE key >= ? AND key < ? ORDER BY key').all(prefix, end)
      ) as (KvRow & { key: string })[];
      return {
        items: rows.map((r) => ({ key: r.key, value: r.value, revision: String(r.mod_rev) })),
        revision: String(this.head().rev),
      };
    })());
  }

  async create(key: string, value: string): Promise<KVPair> {
    return this.write((next) => {
      if (this.row(key)) throw new AlreadyExistsError(`key ${key} already exists`, key);
      return this.put(key, value, next(), undefined);
    });
  }

  async update(key: string, value: string, revision: string): Promise<KVPair> {
    const want = parseRevision(revision, key);
    return this.write((next) => {
      const cur = this.row(key);
      if (!cur) throw new NotFoundError(`key ${key} does not exist`, key);
      if (cur.mod_rev !== want) {
        throw new ConflictError(`key ${key} is at revision ${cur.mod_rev}, not ${revision}`, key);
      }
      return this.put(key, value, next(), cur);
    });
  }

  async apply(key: string, value: string): Promise<KVPair> {
    return this.write((next) => this.put(key, value, next(), this.row(key)));
  }

  async delete(key: string, revision?: string): Promise<KVPair> {
    const want = revision === undefined ? undefined : parseRevision(revision, key);
    return this.write((next) => {
      const cur = this.row(key);
      if (!cur) throw new NotFoundError(`key ${key} does not exist`, key);
      if (want !== undefined && cur.mod_rev !== want) {
        throw new ConflictError(`key ${key} is at revision ${cur.mod_rev}, not ${revision}`, key);
      }
      this.stmt('DELETE FROM kv WHERE key = ?').run(key);
      this.event(next(), key, EVENT_DELETE, null, cur.value);
      return { key, value: cur.value, revision: String(cur.mod_rev) };
    });
  }

  async revision(): Promise<string> {
    this.check();
    return String(this.sqlite(() => this.head().rev));
  }

  /** Drops the history before `revision`, like etcd's compaction; watches from before it fail. */
  async compact(revision: string): Promise<void> {
    const rev = parseRevision(revision);
    this.write(() => {
      const head = this.head().rev;
      if (rev > head) throw new DatastoreError(`cannot compact at ${rev}: store revision is ${head}`);
      this.compactBelow(rev);
    });
  }

  watch(prefix: string, opts: WatchOptions = {}): AsyncIterable<WatchEvent> {
    this.check();
    // Resolved now, not on first next(): writes made after watch() returns are always seen.
    const after = opts.afterRevision === undefined ? this.sqlite(() => this.head().rev) : parseRevision(opts.afterRevision, prefix, true);
    return this.watchFrom(prefix, after, opts.signal);
  }

  private async *watchFrom(prefix: string, after: number, signal?: AbortSignal): AsyncGenerator<WatchEvent> {
    const end = prefixEnd(prefix);
    let cursor = after;
    while (!signal?.aborted && !this.closed) {
      const seen = this.notifier.version();
      const { rows, next, compactRev } = this.sqlite(() => this.readEvents(prefix, end, cursor));
      if (cursor + 1 < compactRev) {
        throw new CompactedError(
          `watch of ${prefix} from revision ${cursor + 1}: history before ${compactRev} was compacted`,
          prefix,
        );
      }
      cursor = next;
      for (const r of rows) {
        const ev: WatchEvent = { type: r.type === EVENT_DELETE ? 'delete' : 'put', key: r.key, revision: String(r.rev) };
        if (r.value !== null) ev.value = r.value;
        if (r.prev_value !== null) ev.prevValue = r.prev_value;
        yield ev;
        if (signal?.aborted || this.closed) return;
      }
      if (rows.length === 0) await this.notifier.wait(seen, signal);
    }
  }

  /** Events after `cursor` in one snapshot, and how far the scan got (so skipped keys aren't rescanned). */
  private readEvents(prefix: string, end: string | null, cursor: number) {
    return this.db.transaction(() => {
      const head = this.head();
      const rows = (end === null
        ? this.stmt(
            'SELECT rev, key, type, value, prev_value FROM events WHERE rev > ? AND rev <= ? AND key >= ? ORDER BY rev LIMIT ?',
          ).all(cursor, head.rev, prefix, EVENT_BATCH)
        : this.stmt(
            'SELECT rev, key, type, value, prev_value FROM events WHERE rev > ? AND rev <= ? AND key >= ? AND key < ? ORDER BY rev LIMIT ?',
          ).all(cursor, head.rev, prefix, end, EVENT_BATCH)) as EventRow[];
      const next = rows.length === EVENT_BATCH ? rows[rows.length - 1]!.rev : Math.max(cursor, head.rev);
      return { rows, next, compactRev: head.compact_rev };
    })();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.notifier.close();
    this.db.close();
  }
}

export function openEmbedded(path: string, opts?: EmbeddedOptions): EmbeddedBackend {
  return new EmbeddedBackend(path, opts);
}
