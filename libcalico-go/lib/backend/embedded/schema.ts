// SQLite schema of the embedded store and the cheap open sequence (run by every short-lived CNI
// process, so the common case is a couple of pragmas and one read of user_version).
import type BetterSqlite3 from 'better-sqlite3';

export const SCHEMA_VERSION = 1;

// kv: live keys. events: the change history watchers read (one row per revision).
// meta: one row: current revision and the compaction point (events below compact_rev are gone).
const DDL = `
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  create_rev INTEGER NOT NULL,
  mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
  rev INTEGER PRIMARY KEY,
  key TEXT NOT NULL,
  type INTEGER NOT NULL,
  value TEXT,
  prev_value TEXT
);
CREATE TABLE IF NOT EXISTS meta (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  rev INTEGER NOT NULL,
  compact_rev INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (id, rev, compact_rev) VALUES (1, 0, 0);
`;

export const EVENT_PUT = 0;
export const EVENT_DELETE = 1;

function isBusy(e: unknown): boolean {
  const code = (e as { code?: string }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** Runs fn, retrying for up to timeoutMs on SQLITE_BUSY (for statements the busy handler skips). */
function retryBusy<T>(fn: () => T, timeoutMs: number): T {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return fn();
    } catch (e) {
      if (!isBusy(e) || Date.now() > deadline) throw e;
      // Synchronous back-off: this only happens while another process is creating the file.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

export function prepareDatabase(db: BetterSqlite3.Database, synchronous: 'NORMAL' | 'FULL', busyMs: number): void {
  // journal_mode=WAL is stored in the file: after the first open this is a read. Switching a fresh
  // file needs an exclusive lock, and SQLite does not call the busy handler for it, hence retryBusy.
  const mode = db.pragma('journal_mode', { simple: true });
  if (mode !== 'wal') retryBusy(() => db.pragma('journal_mode = WAL'), busyMs);
  db.pragma(`synchronous = ${synchronous}`);
  if (db.pragma('user_version', { simple: true }) === SCHEMA_VERSION) return;
  retryBusy(
    () =>
      db.transaction(() => {
        const v = db.pragma('user_version', { simple: true }) as number;
        if (v === SCHEMA_VERSION) return;
        if (v > SCHEMA_VERSION) throw new Error(`datastore schema version ${v} is newer than this program (${SCHEMA_VERSION})`);
        db.exec(DDL);
        db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate(),
    busyMs,
  );
}
