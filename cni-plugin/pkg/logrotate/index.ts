// Size-based rotation of the plugin's log file, with Calico's settings and defaults
// (`log_file_max_size` MB = 100, `log_file_max_age` days = 30, `log_file_max_count` = 10; lumberjack's
// backup naming `<name>-<UTC 2006-01-02T15-04-05.000><.ext>`). Run before the plugin opens the file:
// a file at or over its size limit is renamed to a backup, then backups over the count or older than
// the age are removed. Several plugin processes may rotate at once: a rename that finds the file
// already moved is not an error. Never throws: logging must not fail a CNI invocation.
import { readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

export interface RotateOptions {
  /** MB; default 100; 0 = default. */
  maxSizeMB?: number;
  /** Days; default 30; 0 = default. */
  maxAgeDays?: number;
  /** Backups kept; default 10; 0 = default. */
  maxCount?: number;
  now?: Date;
}

export const DEFAULT_MAX_SIZE_MB = 100;
export const DEFAULT_MAX_AGE_DAYS = 30;
export const DEFAULT_MAX_COUNT = 10;

/** lumberjack's backup name of `file` rotated at `at`. */
export function backupName(file: string, at: Date): string {
  const ext = extname(file);
  const stem = basename(file, ext);
  const t = at.toISOString().replace(/:/g, '-').replace(/Z$/, '');
  return join(dirname(file), `${stem}-${t}${ext}`);
}

/** Rotates `file` if it is due; returns the backups removed (for tests). */
export function rotateIfDue(file: string, opts: RotateOptions = {}): { rotated: boolean; removed: string[] } {
  const maxBytes = (opts.maxSizeMB || DEFAULT_MAX_SIZE_MB) * 1024 * 1024;
  const maxAgeMs = (opts.maxAgeDays || DEFAULT_MAX_AGE_DAYS) * 86_400_000;
  const maxCount = opts.maxCount || DEFAULT_MAX_COUNT;
  const now = opts.now ?? new Date();
  let rotated = false;
  const removed: string[] = [];
  try {
    if (statSync(file).size < maxBytes) return { rotated, removed };
    renameSync(file, backupName(file, now));
    rotated = true;
  } catch {
    return { rotated, removed };
  }
  try {
    const ext = extname(file);
    const stem = basename(file, ext);
    const pattern = new RegExp(`^${escapeRegExp(stem)}-(\\d{4}-\\d{2}-\\d{2}T\\d{2}-\\d{2}-\\d{2}\\.\\d{3})${escapeRegExp(ext)}$`);
    const backups = readdirSync(dirname(file))
      .map((n) => ({ n, m: pattern.exec(n) }))
      .filter((b): b is { n: string; m: RegExpExecArray } => b.m !== null)
      .map((b) => ({ path: join(dirname(file), b.n), at: Date.parse(`${b.m[1]!.slice(0, 10)}T${b.m[1]!.slice(11).replace(/-/g, ':').replace(/:(\d{3})$/, '.$1')}Z`) }))
      .sort((a, b) => b.at - a.at);
    backups.forEach((b, i) => {
      if (i >= maxCount || now.getTime() - b.at > maxAgeMs) {
        try {
          unlinkSync(b.path);
          removed.push(b.path);
        } catch {
          // another process removed it
        }
      }
    });
  } catch {
    // directory unreadable: keep the backups
  }
  return { rotated, removed };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
