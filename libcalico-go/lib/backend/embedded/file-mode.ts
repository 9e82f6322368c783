// The embedded store's files are readable by their owner only (0600), whatever the process umask:
// the datastore holds every endpoint, policy and address of the cluster, and BGP passwords.
//
// SQLite creates a new database file with 0644 & ~umask, but its `-wal` and `-shm` files with the
// database file's own permission bits, set with fchmod whatever the umask (unix VFS robust_open;
// as root also chowned to the file's owner). So a database file made 0600 before SQLite opens it
// keeps all three at 0600, including the -wal/-shm files re-created after the last connection
// closed or a checkpoint. Files left wider by an older version or by hand are tightened here, with
// a warning.
//
// No file descriptor of an existing store file is opened here: closing any descriptor of a file
// drops every POSIX lock this process holds on it, SQLite's included (another connection of this
// process may have one). The only descriptor opened is that of a file this call created.
import { chmodSync, closeSync, constants, fchmodSync, openSync, statSync } from 'node:fs';

export const STORE_FILE_MODE = 0o600;

/** Where the permissions of a store file were changed: "path (0644 → 0600)". */
export type Tightened = string;

function isEnoent(e: unknown): boolean {
  return (e as NodeJS.ErrnoException).code === 'ENOENT';
}

/**
 * Creates the database file with mode 0600 when it does not exist, and tightens it and its
 * -wal/-shm files when their mode allows group or others anything. Returns what was tightened;
 * what could not be tightened (a file of another user, without privilege) is reported through warn.
 */
export function secureStoreFiles(path: string, warn: (msg: string) => void): Tightened[] {
  try {
    // O_EXCL: only a file made now (nobody can hold a lock on it yet); exact mode whatever the umask.
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, STORE_FILE_MODE);
    try {
      fchmodSync(fd, STORE_FILE_MODE);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const out: Tightened[] = [];
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    let mode: number;
    try {
      const st = statSync(p);
      if (!st.isFile()) continue;
      mode = st.mode & 0o7777;
    } catch (e) {
      if (isEnoent(e)) continue;
      throw e;
    }
    if ((mode & 0o7077) === 0) continue;
    const want = (mode & 0o700) | STORE_FILE_MODE;
    const change = `${p} (${mode.toString(8).padStart(4, '0')} → ${want.toString(8).padStart(4, '0')})`;
    try {
      chmodSync(p, want);
      out.push(change);
    } catch (e) {
      if (isEnoent(e)) continue; // a -wal/-shm removed meanwhile by the last connection closing
      warn(`datastore file ${p} has mode ${mode.toString(8).padStart(4, '0')} (readable beyond its owner) and cannot be tightened: ${(e as Error).message}`);
    }
  }
  if (out.length > 0) warn(`datastore files had permissions beyond their owner; tightened: ${out.join(', ')}`);
  return out;
}
