import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backupName, rotateIfDue } from './index.js';

describe('plugin log rotation (log_file_max_size / _age / _count)', () => {
  it('names backups as lumberjack does', () => {
    assert.equal(backupName('/var/log/calico/cni/cni.log', new Date('2026-01-02T03:04:05.678Z')), '/var/log/calico/cni/cni-2026-01-02T03-04-05.678.log');
  });

  it('rotates a file at its size limit and keeps at most max_count backups, none older than max_age', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tortie-rot-'));
    try {
      const file = join(dir, 'cni.log');
      const mb = 1024 * 1024;
      writeFileSync(file, Buffer.alloc(mb - 1));
      assert.equal(rotateIfDue(file, { maxSizeMB: 1 }).rotated, false, 'rotated under the limit');
      // Three old backups, one of them 40 days old.
      const now = new Date('2026-06-10T00:00:00.000Z');
      for (const d of ['2026-06-09', '2026-06-08', '2026-05-01']) writeFileSync(backupName(file, new Date(`${d}T00:00:00.000Z`)), 'x');
      writeFileSync(file, Buffer.alloc(mb));
      const r = rotateIfDue(file, { maxSizeMB: 1, maxCount: 2, maxAgeDays: 30, now });
      assert.equal(r.rotated, true);
      const left = readdirSync(dir).sort();
      // The new backup and the newest old one stay (count 2); the 40-day-old one and the third go.
      assert.deepEqual(left, ['cni-2026-06-09T00-00-00.000.log', 'cni-2026-06-10T00-00-00.000.log']);
      assert.equal(r.removed.length, 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing file or directory is not an error', () => {
    assert.deepEqual(rotateIfDue('/nonexistent/dir/cni.log'), { rotated: false, removed: [] });
  });
});
