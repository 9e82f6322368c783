import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CompactedError, DatastoreError, UnavailableError } from '../api.js';
import { backendContract, collect } from '../contract.js';
import { spawnWorker, type Worker } from '../testdata/spawn.js';
import { EmbeddedBackend, openEmbedded, prefixEnd } from './embedded.js';

const dir = mkdtempSync(join(tmpdir(), 'tortie-embedded-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const MODULE = new URL('./embedded.js', import.meta.url).href;
const specFor = (path: string) => ({ module: MODULE, exportName: 'openEmbedded', args: [path] });

const contractPath = join(dir, 'contract', 'store.db');
backendContract('embedded', async () => openEmbedded(contractPath), {
  child: specFor(contractPath),
  compact: (b, rev) => (b as EmbeddedBackend).compact(rev),
  // Cheap per write, so many: the processes must overlap for the race to be real.
  increments: 300,
});

describe('embedded backend', () => {
  const workers: Worker[] = [];
  after(() => workers.forEach((w) => w.kill()));

  it('prefixEnd bounds exactly the strings with the prefix', () => {
    assert.equal(prefixEnd('/a/b/'), '/a/b0');
    assert.equal(prefixEnd(''), null);
    assert.equal(prefixEnd('a\u{10ffff}'), 'b');
    assert.equal(prefixEnd('\u{10ffff}'), null);
    assert.equal(prefixEnd('x\ud7ff'), 'x\ue000');
    assert.equal(prefixEnd('🐱'), '🐲');
  });

  it('creates the parent directory with mode 0700', async () => {
    const path = join(dir, 'deep', 'er', 'store.db');
    const b = openEmbedded(path);
    await b.close();
    assert.equal(statSync(join(dir, 'deep', 'er')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, 'deep')).mode & 0o777, 0o700);
  });

  it('opens, reads and closes quickly (the CNI plugin does this on every pod ADD)', async () => {
    const path = join(dir, 'startup.db');
    const w = openEmbedded(path);
    await w.apply('/calico/ipam/v2/config', '{"strictAffinity":false}');
    await w.close();
    const times: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = process.hrtime.bigint();
      const b = openEmbedded(path);
      assert.ok(await b.get('/calico/ipam/v2/config'));
      await b.close();
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    times.sort((a, b) => a - b);
    const median = times[times.length >> 1];
    console.log(`# embedded open+get+close: median ${median.toFixed(2)} ms, max ${times.at(-1)!.toFixed(2)} ms`);
    assert.ok(median < 20, `median ${median} ms`);
  });

  it('refuses a store written by a newer schema', async () => {
    const path = join(dir, 'newer.db');
    await openEmbedded(path).close();
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();
    assert.throws(() => openEmbedded(path), (e: unknown) => e instanceof DatastoreError && /newer/.test((e as Error).message) && (e as Error).message.includes(path));
  });

  it('a path that cannot be opened fails with an error naming it', () => {
    const bad = join(dir, 'startup.db', 'inside-a-file.db'); // parent is a file
    assert.throws(() => openEmbedded(bad), (e: unknown) => e instanceof DatastoreError && (e as Error).message.includes(bad));
  });

  it('a write lock held too long by another process gives UnavailableError after the busy timeout', async () => {
    const path = join(dir, 'locked.db');
    const b = openEmbedded(path, { busyTimeoutMs: 200 });
    await b.apply('/l/k', 'v');
    const other = new Database(path);
    other.exec('BEGIN IMMEDIATE');
    try {
      const t0 = Date.now();
      await assert.rejects(b.apply('/l/k', 'w'), (e: unknown) => e instanceof UnavailableError && (e as Error).message.includes(path));
      assert.ok(Date.now() - t0 >= 150, 'waited for the lock first');
      assert.equal((await b.get('/l/k'))?.value, 'v', 'reads go on while another process writes');
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
    assert.equal((await b.apply('/l/k', 'w')).value, 'w');
    await b.close();
  });

  it('keeps a bounded history: old events are compacted during writes', async () => {
    const path = join(dir, 'history.db');
    const b = openEmbedded(path, { historyRevisions: 10, compactEvery: 5 });
    const first = await b.apply('/h/k', '0');
    for (let i = 1; i < 40; i++) await b.apply('/h/k', String(i));
    const head = await b.revision();
    const raw = new Database(path, { readonly: true });
    const rows = raw.prepare('SELECT count(*) FROM events').pluck().get() as number;
    raw.close();
    assert.ok(rows <= 15 && rows >= 10, `${rows} events kept`);
    await assert.rejects(
      async () => {
        for await (const _ of b.watch('/h/', { afterRevision: first.revision })) break;
      },
      (e: unknown) => e instanceof CompactedError && /\/h\//.test((e as Error).message),
    );
    const recent = await collect(b, '/h/', 5, { afterRevision: String(BigInt(head) - 5n) });
    assert.deepEqual(recent.map((e) => e.value), ['35', '36', '37', '38', '39']);
    await b.close();
  });

  it('a watcher that falls behind the compaction gets CompactedError, not a silent gap', async () => {
    const path = join(dir, 'lag.db');
    const b = openEmbedded(path, { historyRevisions: 10, compactEvery: 5 });
    const start = await b.revision();
    const it = b.watch('/lag/', { afterRevision: start })[Symbol.asyncIterator]();
    // Fill far beyond the history before the watcher reads anything.
    for (let i = 0; i < 30; i++) await b.apply('/lag/k', String(i));
    await assert.rejects(it.next(), CompactedError);
    await b.close();
  });

  it('many processes opening a brand-new file at once all succeed', { timeout: 30_000 }, async () => {
    const path = join(dir, 'fresh', 'race.db');
    const ws = Array.from({ length: 6 }, (_, i) => spawnWorker(specFor(path), 'apply', `/race/${i}/`, '10'));
    workers.push(...ws);
    for (const w of ws) assert.equal(await w.line(), 'done', w.stderr());
    const b = openEmbedded(path);
    assert.equal((await b.list('/race/')).items.length, 60);
    assert.equal(await b.revision(), '60');
    await b.close();
  });

  it('every acknowledged write survives kill -9 of the writers, and the file stays sound', { timeout: 60_000 }, async () => {
    const path = join(dir, 'crash', 'store.db');
    for (let round = 0; round < 2; round++) {
      const ws = Array.from({ length: 3 }, (_, i) => spawnWorker(specFor(path), 'writeloop', `/crash/${round}/${i}/`));
      workers.push(...ws);
      // Let each writer get going, then kill them at different moments, mid-write.
      for (const [i, w] of ws.entries()) {
        for (let n = 0; n < 40 + 25 * i; n++) await w.line();
        w.kill('SIGKILL');
      }
      for (const w of ws) assert.equal(await w.exited, 'SIGKILL');
      const b = openEmbedded(path);
      for (const [i, w] of ws.entries()) {
        const acked = w.lines.filter((l) => l.startsWith('acked ')).map((l) => Number(l.slice(6)));
        assert.ok(acked.length >= 40, `writer ${i} acked ${acked.length}`);
        const items = (await b.list(`/crash/${round}/${i}/`)).items;
        const have = new Map(items.map((kv) => [kv.key, kv.value]));
        for (const n of acked) {
          assert.equal(have.get(`/crash/${round}/${i}/${String(n).padStart(8, '0')}`), `value-${n}`, `round ${round} writer ${i} write ${n}`);
        }
        // At most the write in flight when killed is there without its ack.
        assert.ok(items.length <= acked.length + 1, `${items.length} stored, ${acked.length} acked`);
      }
      // Revisions stay consistent: every stored key's revision is within the store revision.
      const all = await b.list('/crash/');
      assert.ok(all.items.every((kv) => BigInt(kv.revision) <= BigInt(all.revision)));
      await b.apply('/crash/after', String(round)); // still writable
      await b.close();
      const raw = new Database(path, { readonly: true });
      assert.equal(raw.pragma('integrity_check', { simple: true }), 'ok');
      raw.close();
    }
  });
});
