import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CompactedError, DatastoreError, UnavailableError } from '../api.js';
import { backendContract, collect } from '../../../../testing/backend-contract.js';
import { spawnWorker, type Worker } from '../../../../testing/backend-contract-spawn.js';
import { type EmbeddedBackend, openEmbedded, prefixEnd } from './embedded.js';

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

// A process with umask 0 (the loosest there is) that uses the store; see umaskChild.
const UMASK_CHILD = `
process.umask(0);
const [, , modulePath, path, mode, n] = process.argv;
const { openEmbedded } = await import(modulePath);
const b = openEmbedded(path);
for (let i = 0; i < Number(n); i++) await b.apply('/perm/' + mode + '/' + i, 'v' + i);
if (mode === 'checkpoint') {
  const { createRequire } = await import('node:module');
  const Database = createRequire(modulePath)('better-sqlite3');
  const raw = new Database(path);
  const r = raw.pragma('wal_checkpoint(TRUNCATE)')[0];
  raw.close();
  if (r.busy !== 0) throw new Error('checkpoint blocked: ' + JSON.stringify(r));
  await b.apply('/perm/after-checkpoint', 'v'); // the WAL grows again from its start
}
console.log('umask ' + process.umask().toString(8));
if (mode === 'hold') await new Promise((r) => process.stdin.on('end', r).resume());
await b.close();
console.log('closed');
`;

const modeOf = (p: string) => (existsSync(p) ? (statSync(p).mode & 0o7777).toString(8).padStart(4, '0') : 'absent');
const storeModes = (p: string) => [modeOf(p), modeOf(`${p}-wal`), modeOf(`${p}-shm`)];

describe('embedded store file permissions', () => {
  const script = join(dir, 'umask-child.mjs');
  writeFileSync(script, UMASK_CHILD);
  const module = new URL('./embedded.js', import.meta.url).pathname;
  /** Runs the store in a child with umask 0; resolves with its first line ("umask 0") and a way to end it. */
  function umaskChild(path: string, mode: 'hold' | 'write' | 'checkpoint', n = 20) {
    const child = spawn(process.execPath, [script, module, path, mode, String(n)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const line = new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.on('close', (code) => reject(new Error(`child exited ${code} before a line: ${err}`)));
    });
    const exited = new Promise<string>((resolve) => child.on('close', (code) => resolve(`exit ${code} ${out.trim().split('\n').at(-1)} ${err}`)));
    return { line, exited, end: () => child.stdin.end(), child };
  }

  it('store, -wal and -shm are 0600 under umask 0 in a directory open to all: writer, second process, checkpoint, re-creation', async () => {
    const d = join(dir, 'perm-open');
    mkdirSync(d);
    chmodSync(d, 0o777);
    const path = join(d, 'store.db');
    const holder = umaskChild(path, 'hold');
    try {
      assert.equal(await holder.line, 'umask 0', 'the child really runs with umask 0');
      assert.deepEqual(storeModes(path), ['0600', '0600', '0600'], 'first writer');
      const second = umaskChild(path, 'checkpoint');
      assert.equal(await second.line, 'umask 0');
      assert.match(await second.exited, /^exit 0 closed/);
      assert.deepEqual(storeModes(path), ['0600', '0600', '0600'], 'a second process wrote and checkpointed while the first held the store');
    } finally {
      holder.end();
    }
    assert.match(await holder.exited, /^exit 0 closed/);
    // The last connection closed: SQLite removed -wal and -shm; the next writer makes them again.
    assert.deepEqual(storeModes(path), ['0600', 'absent', 'absent']);
    const again = umaskChild(path, 'hold', 1);
    try {
      assert.equal(await again.line, 'umask 0');
      assert.deepEqual(storeModes(path), ['0600', '0600', '0600'], 're-created -wal/-shm');
    } finally {
      again.end();
    }
    assert.match(await again.exited, /^exit 0 closed/);
    const b = openEmbedded(path);
    assert.equal((await b.list('/perm/')).items.length, 20 + 20 + 1, 'every write of the three processes is there');
    await b.close();
  });

  it('an existing store wider than 0600 (file, -wal, -shm) is tightened on open, with a warning; a sound one is left alone', async () => {
    const path = join(dir, 'perm-wide', 'store.db');
    await openEmbedded(path).close();
    // Another connection keeps -wal and -shm in place, as a running agent does.
    const raw = new Database(path);
    raw.pragma('journal_mode = WAL');
    raw.prepare("INSERT INTO kv (key, value, create_rev, mod_rev) VALUES ('/w', 'v', 1, 1)").run();
    try {
      chmodSync(path, 0o644);
      chmodSync(`${path}-wal`, 0o666);
      chmodSync(`${path}-shm`, 0o604);
      const warnings: string[] = [];
      const b = openEmbedded(path, { onWarning: (m) => warnings.push(m) });
      assert.deepEqual(storeModes(path), ['0600', '0600', '0600']);
      assert.deepEqual(b.tightened, [`${path} (0644 → 0600)`, `${path}-wal (0666 → 0600)`, `${path}-shm (0604 → 0600)`]);
      assert.equal(warnings.length, 1);
      assert.ok(warnings[0]!.includes(`${path}-wal (0666 → 0600)`), warnings[0]);
      assert.equal((await b.get('/w'))?.value, 'v', 'the data is untouched');
      await b.close();
      const quiet: string[] = [];
      const c = openEmbedded(path, { onWarning: (m) => quiet.push(m) });
      assert.deepEqual([c.tightened, quiet], [[], []]);
      await c.close();
    } finally {
      raw.close();
    }
  });
});

describe('embedded backend', () => {
  const workers: Worker[] = [];
  after(() => {
    for (const w of workers) w.kill();
  });

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

  it('refuses a store written by a newer schema', async () => {
    const path = join(dir, 'newer.db');
    await openEmbedded(path).close();
    const raw = new Database(path);
    raw.pragma('user_version = 99');
    raw.close();
    assert.throws(() => openEmbedded(path), (e: unknown) => e instanceof DatastoreError && /newer/.test((e as Error).message) && (e as Error).message.includes(path));
  });

  it('a path that cannot be opened fails with an error naming it', () => {
    writeFileSync(join(dir, 'a-file'), '');
    const bad = join(dir, 'a-file', 'inside-a-file.db'); // parent is a file
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
