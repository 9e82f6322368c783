// The behaviour every Backend must show, as a node:test suite. Each backend's test file calls
// backendContract() with a way to open (another handle on) the same store.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  AlreadyExistsError,
  CompactedError,
  ConflictError,
  DatastoreError,
  NotFoundError,
  type Backend,
  type WatchEvent,
} from '../libcalico-go/lib/backend/api.js';
import { spawnWorker, type Worker } from './backend-contract-spawn.js';
import type { OpenSpec } from './backend-contract-worker.js';

export interface ContractOptions {
  /**
   * How a child process opens the same store (a function when it is only known once the store
   * runs); without it the multi-process tests are skipped.
   */
  child?: OpenSpec | (() => OpenSpec);
  /** Compacts history before `revision`; without it the CompactedError test is skipped. */
  compact?: (b: Backend, revision: string) => Promise<void>;
  /** Child processes for the concurrency tests (default 4) and CAS increments each (default 25). */
  processes?: number;
  increments?: number;
}

const rev = (r: string) => BigInt(r);

/** A key space of its own for each test, so tests sharing one store do not see each other. */
function space(): string {
  return `/contract/${randomBytes(6).toString('hex')}/`;
}

/**
 * Pulls events from a watch until `n` arrived or `ms` passed, then stops the watch.
 * Returns what arrived (fewer than n on timeout) so assertions show what was missing.
 */
export async function collect(
  b: Backend,
  prefix: string,
  n: number,
  opts: { afterRevision?: string; ms?: number; onStarted?: () => Promise<void> } = {},
): Promise<WatchEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), opts.ms ?? 5000);
  const got: WatchEvent[] = [];
  try {
    const it = b.watch(prefix, { afterRevision: opts.afterRevision, signal: ac.signal })[Symbol.asyncIterator]();
    const first = it.next();
    await opts.onStarted?.();
    for (let r = await first; !r.done; r = await it.next()) {
      got.push(r.value);
      if (got.length >= n) {
        ac.abort();
        await it.return?.();
        break;
      }
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  return got;
}

async function rejectsWith(p: Promise<unknown>, cls: new (...a: never[]) => Error, key?: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    if (key !== undefined) {
      assert.equal((e as DatastoreError).key, key);
      assert.ok((e as Error).message.includes(key), `message names the key: ${(e as Error).message}`);
    }
    return true;
  });
}

const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

export function backendContract(name: string, open: () => Promise<Backend>, opts: ContractOptions = {}): void {
  describe(`Backend contract: ${name}`, () => {
    let b: Backend;
    before(async () => {
      b = await open();
    });
    after(async () => {
      await b?.close();
    });

    describe('get / create', () => {
      it('returns null for a missing key and the stored pair after create', async () => {
        const k = space() + 'x';
        assert.equal(await b.get(k), null);
        const c = await b.create(k, 'hello');
        assert.deepEqual(c, { key: k, value: 'hello', revision: c.revision });
        assert.match(c.revision, /^[1-9]\d*$/);
        assert.deepEqual(await b.get(k), c);
      });

      it('create of an existing key fails with AlreadyExistsError and leaves it unchanged', async () => {
        const k = space() + 'dup';
        const c = await b.create(k, 'first');
        await rejectsWith(b.create(k, 'second'), AlreadyExistsError, k);
        assert.deepEqual(await b.get(k), c);
      });

      it('stores empty, unicode and ~1 MB values exactly', async () => {
        const p = space();
        const uni = 'ключ/🐱/日本語/\u00e9\u0301/\u{10ffff}';
        const big = 'αβγ🐱'.repeat(100_000) + 'end'; // ~1 MB in UTF-8
        assert.ok(Buffer.byteLength(big) > 1_000_000);
        const start = await b.revision();
        const w = collect(b, p, 3, { afterRevision: start, ms: 15000 });
        await b.create(p + 'empty', '');
        await b.create(p + uni, uni);
        await b.create(p + 'big', big);
        assert.equal((await b.get(p + 'empty'))?.value, '');
        assert.equal((await b.get(p + uni))?.value, uni);
        assert.equal((await b.get(p + 'big'))?.value, big);
        const l = await b.list(p);
        assert.deepEqual(l.items.map((i) => i.key), [p + 'big', p + 'empty', p + uni]);
        assert.equal(l.items[0].value, big);
        const evs = await w;
        assert.deepEqual(evs.map((e) => [e.key, e.value?.length]), [[p + 'empty', 0], [p + uni, uni.length], [p + 'big', big.length]]);
        assert.equal(evs[2].value, big);
      });
    });

    describe('update / apply', () => {
      it('update with the current revision succeeds and returns a newer revision', async () => {
        const k = space() + 'u';
        const c = await b.create(k, 'v1');
        const u = await b.update(k, 'v2', c.revision);
        assert.equal(u.value, 'v2');
        assert.ok(rev(u.revision) > rev(c.revision));
        assert.deepEqual(await b.get(k), u);
      });

      it('update with a stale revision fails with ConflictError and changes nothing', async () => {
        const k = space() + 'u';
        const c = await b.create(k, 'v1');
        const u = await b.update(k, 'v2', c.revision);
        await rejectsWith(b.update(k, 'v3', c.revision), ConflictError, k);
        assert.deepEqual(await b.get(k), u);
      });

      it('update of a missing key fails with NotFoundError (and does not create it)', async () => {
        const k = space() + 'missing';
        await rejectsWith(b.update(k, 'v', '1'), NotFoundError, k);
        const r = await b.revision();
        await rejectsWith(b.update(k, 'v', r), NotFoundError, k);
        assert.equal(await b.get(k), null);
      });

      it('update with a malformed revision is rejected', async () => {
        const k = space() + 'bad';
        await b.create(k, 'v');
        for (const bad of ['', 'abc', '-1', '0', '1.5']) {
          await assert.rejects(b.update(k, 'w', bad), DatastoreError, `revision ${JSON.stringify(bad)}`);
        }
        assert.equal((await b.get(k))?.value, 'v');
      });

      it('apply creates or overwrites unconditionally', async () => {
        const k = space() + 'a';
        const a1 = await b.apply(k, 'one');
        const a2 = await b.apply(k, 'two');
        assert.ok(rev(a2.revision) > rev(a1.revision));
        assert.deepEqual(await b.get(k), a2);
      });
    });

    describe('delete', () => {
      it('delete of a missing key fails with NotFoundError', async () => {
        const k = space() + 'gone';
        await rejectsWith(b.delete(k), NotFoundError, k);
        await rejectsWith(b.delete(k, '5'), NotFoundError, k);
      });

      it('delete with a wrong revision fails with ConflictError and the key stays', async () => {
        const k = space() + 'd';
        const c = await b.create(k, 'v1');
        const u = await b.update(k, 'v2', c.revision);
        await rejectsWith(b.delete(k, c.revision), ConflictError, k);
        assert.deepEqual(await b.get(k), u);
      });

      it('delete with the right revision, or none, removes the key and returns the old pair', async () => {
        const p = space();
        const c = await b.create(p + '1', 'v1');
        assert.deepEqual(await b.delete(p + '1', c.revision), c);
        assert.equal(await b.get(p + '1'), null);
        const c2 = await b.create(p + '2', 'v2');
        assert.deepEqual(await b.delete(p + '2'), c2);
        assert.equal(await b.get(p + '2'), null);
        // A deleted key can be created again.
        const again = await b.create(p + '2', 'v3');
        assert.ok(rev(again.revision) > rev(c2.revision));
      });
    });

    describe('list', () => {
      it('lists exactly the keys under a prefix, sorted by key bytes', async () => {
        const root = space();
        const p = root + 'a/b/';
        const inside = [p + 'z', p + 'a', p + 'a/deeper', p + 'Ω', p + '\u{1f431}', p + '\u{10ffff}x', p + '~'];
        const outside = [root + 'a/bc', root + 'a/b', root + 'a/b0', root + 'a/a', root + 'b'];
        for (const k of [...inside, ...outside]) await b.create(k, k);
        const l = await b.list(p);
        assert.deepEqual(l.items.map((i) => i.key), [...inside].sort(byteOrder));
        for (const i of l.items) assert.equal(i.value, i.key);
        assert.deepEqual((await b.list(root + 'a/b')).items.map((i) => i.key),
          [root + 'a/b', p + 'a', p + 'a/deeper', p + 'z', p + '~', p + 'Ω', p + '\u{1f431}', p + '\u{10ffff}x', root + 'a/b0', root + 'a/bc'].sort(byteOrder));
        assert.deepEqual((await b.list(root + 'nothing/')).items, []);
      });

      it('the empty prefix lists every key', async () => {
        const p = space();
        await b.create(p + 'k', 'v');
        const all = await b.list('');
        assert.ok(all.items.some((i) => i.key === p + 'k'));
        const keys = all.items.map((i) => i.key);
        assert.deepEqual(keys, [...keys].sort(byteOrder));
      });

      it('reports the store revision, which items never exceed', async () => {
        const p = space();
        const last = await b.apply(p + 'k2', 'v');
        await b.apply(p + 'k1', 'v');
        const l = await b.list(p);
        assert.equal(l.revision, await b.revision());
        assert.ok(l.items.every((i) => rev(i.revision) <= rev(l.revision)));
        assert.ok(rev(l.revision) > rev(last.revision));
        // item revisions are per-key mod revisions
        assert.equal(l.items[1].revision, last.revision);
      });
    });

    describe('revisions', () => {
      it('strictly increase with every write, and revision() follows', async () => {
        const p = space();
        let prev = rev(await b.revision());
        const writes = [
          () => b.create(p + 'a', '1'),
          () => b.apply(p + 'b', '1'),
          async () => b.update(p + 'a', '2', (await b.get(p + 'a'))!.revision),
          () => b.apply(p + 'b', '2'),
          () => b.create(p + 'c', '1'),
        ];
        for (const w of writes) {
          const r = rev((await w()).revision);
          assert.ok(r > prev, `${r} > ${prev}`);
          assert.equal(rev(await b.revision()), r);
          prev = r;
        }
        await b.delete(p + 'c');
        assert.ok(rev(await b.revision()) > prev, 'a delete is a write too');
      });

      it('failed writes do not change anything', async () => {
        const k = space() + 'k';
        const c = await b.create(k, 'v');
        const before = await b.revision();
        await assert.rejects(b.create(k, 'x'));
        await assert.rejects(b.update(k, 'x', String(rev(c.revision) + 1000n)));
        await assert.rejects(b.delete(k + 'nope'));
        assert.deepEqual(await b.get(k), c);
        // etcd does not bump the revision for a failed txn; neither may any backend.
        assert.equal(await b.revision(), before);
      });
    });

    describe('watch', () => {
      it('delivers puts, updates and deletes under the prefix in order, with values and prevValue', async () => {
        const p = space();
        const start = await b.revision();
        const events = collect(b, p + 'w/', 4, { afterRevision: start });
        const c = await b.create(p + 'w/a', 'v1');
        await b.create(p + 'wx', 'outside'); // shares the text prefix but not the `/`
        const u = await b.update(p + 'w/a', 'v2', c.revision);
        const d = await b.delete(p + 'w/a');
        const c2 = await b.apply(p + 'w/b', 'b1');
        const got = await events;
        const deleteRev = rev(c2.revision) - 1n;
        assert.deepEqual(got, [
          { type: 'put', key: p + 'w/a', value: 'v1', revision: c.revision },
          { type: 'put', key: p + 'w/a', value: 'v2', prevValue: 'v1', revision: u.revision },
          { type: 'delete', key: p + 'w/a', prevValue: 'v2', revision: String(deleteRev) },
          { type: 'put', key: p + 'w/b', value: 'b1', revision: c2.revision },
        ]);
        assert.equal(d.value, 'v2');
      });

      it('by default starts at the current revision: earlier writes are not delivered', async () => {
        const p = space();
        await b.apply(p + 'old', 'x');
        const ac = new AbortController();
        const got: WatchEvent[] = [];
        const it = b.watch(p, { signal: ac.signal })[Symbol.asyncIterator]();
        const first = it.next();
        // Write until the watch (which may start asynchronously) reports something.
        let n = 0;
        let done = false;
        const writer = (async () => {
          while (!done && n < 200) {
            await b.apply(p + 'new', String(n++));
            await new Promise((r) => setTimeout(r, 20));
          }
        })();
        const r = await Promise.race([first, new Promise<null>((res) => setTimeout(() => res(null), 5000))]);
        done = true;
        await writer;
        ac.abort();
        assert.ok(r && !r.done, 'a write after the watch started was delivered');
        got.push(r.value);
        assert.equal(got[0].key, p + 'new');
      });

      it('resumes after a list: events after the list revision, none missed or repeated', async () => {
        const p = space();
        for (let i = 0; i < 5; i++) await b.apply(`${p}k${i}`, 'before');
        const l = await b.list(p);
        assert.equal(l.items.length, 5);
        const later: string[] = [];
        for (let i = 0; i < 5; i++) later.push((await b.apply(`${p}k${i}`, 'after')).revision);
        await b.delete(`${p}k0`);
        const evs = await collect(b, p, 6, { afterRevision: l.revision });
        assert.deepEqual(evs.slice(0, 5).map((e) => [e.key, e.value, e.prevValue, e.revision]),
          later.map((r, i) => [`${p}k${i}`, 'after', 'before', r]));
        assert.equal(evs[5].type, 'delete');
        // Starting in the middle of the history delivers only the tail.
        const tail = await collect(b, p, 3, { afterRevision: later[2] });
        assert.deepEqual(tail.map((e) => e.revision), [later[3], later[4], evs[5].revision]);
      });

      it('events arrive in strictly increasing revision order under a burst of writes', { timeout: 120_000 }, async () => {
        const p = space();
        const start = await b.revision();
        // A hang guard, not a deadline: 100 applies on 7 keys are ~1,300 requests on the Kubernetes backend.
        const w = collect(b, p, 100, { afterRevision: start, ms: 90_000 });
        await Promise.all(Array.from({ length: 100 }, (_, i) => b.apply(`${p}${i % 7}`, String(i))));
        const got = await w;
        assert.equal(got.length, 100);
        for (let i = 1; i < got.length; i++) assert.ok(rev(got[i].revision) > rev(got[i - 1].revision));
      });

      it('ends cleanly when aborted: while idle, after an event, or already aborted', async () => {
        const p = space();
        // idle
        const ac = new AbortController();
        const t0 = Date.now();
        const run = (async () => {
          const seen: WatchEvent[] = [];
          for await (const e of b.watch(p, { signal: ac.signal })) seen.push(e);
          return seen;
        })();
        await new Promise((r) => setTimeout(r, 100));
        ac.abort();
        assert.deepEqual(await run, []);
        assert.ok(Date.now() - t0 < 2000, 'abort ends an idle watch promptly');
        // after the first event
        const ac2 = new AbortController();
        const start = await b.revision();
        await b.apply(p + 'a', '1');
        await b.apply(p + 'b', '2');
        const seen: WatchEvent[] = [];
        for await (const e of b.watch(p, { afterRevision: start, signal: ac2.signal })) {
          seen.push(e);
          ac2.abort();
        }
        assert.equal(seen.length, 1);
        // pre-aborted
        const ac3 = new AbortController();
        ac3.abort();
        const none: WatchEvent[] = [];
        for await (const e of b.watch(p, { afterRevision: start, signal: ac3.signal })) none.push(e);
        assert.deepEqual(none, []);
      });

      it('a watch ends when its backend handle is closed', async () => {
        const b2 = await open();
        const p = space();
        const run = (async () => {
          const seen: WatchEvent[] = [];
          for await (const e of b2.watch(p)) seen.push(e);
          return seen;
        })();
        await new Promise((r) => setTimeout(r, 100));
        await b2.close();
        const res = await Promise.race([run, new Promise((r) => setTimeout(() => r('hung'), 3000))]);
        assert.deepEqual(res, []);
      });

      it('throws CompactedError when asked for compacted history', { skip: !opts.compact && 'no compact hook' }, async () => {
        const p = space();
        const first = await b.apply(p + 'k', '0');
        for (let i = 1; i < 5; i++) await b.apply(p + 'k', String(i));
        const now = await b.revision();
        await opts.compact!(b, now);
        const it = b.watch(p, { afterRevision: first.revision })[Symbol.asyncIterator]();
        await rejectsWith(it.next(), CompactedError);
        // From the compaction point on, watching works.
        const evs = collect(b, p, 1, { afterRevision: now });
        const next = await b.apply(p + 'k', 'after');
        assert.deepEqual((await evs).map((e) => e.revision), [next.revision]);
      });
    });

    describe('several processes', { skip: !opts.child && 'no child spec' }, () => {
      const spec = () => (typeof opts.child === 'function' ? opts.child() : opts.child!);
      const procs = opts.processes ?? 4;
      const n = opts.increments ?? 25;
      const workers: Worker[] = [];
      after(() => {
        for (const w of workers) w.kill();
      });

      const start = async (ws: Worker[]) => {
        workers.push(...ws);
        for (const w of ws) assert.equal(await w.line(), 'ready');
        for (const w of ws) w.child.stdin!.end('go\n');
      };

      it(`${procs} processes x ${n} compare-and-swap increments lose no update`, { timeout: 60_000 }, async () => {
        const k = space() + 'counter';
        const ws = Array.from({ length: procs }, () => spawnWorker(spec(), 'cas', k, String(n)));
        await start(ws);
        let conflicts = 0;
        for (const w of ws) {
          const res = JSON.parse(await w.line(50_000)) as { done: number; conflicts: number };
          assert.equal(res.done, n);
          conflicts += res.conflicts;
          assert.equal(await w.exited, 0, w.stderr());
        }
        assert.equal((await b.get(k))?.value, String(procs * n), `${conflicts} conflicts were retried`);
        console.log(`# ${name}: ${procs * n} increments from ${procs} processes, ${conflicts} conflicts retried`);
      });

      it('concurrent creates of one key: exactly one process wins', { timeout: 30_000 }, async () => {
        const k = space() + 'lock';
        const ws = Array.from({ length: procs + 2 }, (_, i) => spawnWorker(spec(), 'create', k, `owner-${i}`));
        await start(ws);
        const results = await Promise.all(ws.map((w) => w.line()));
        assert.equal(results.filter((r) => r === 'won').length, 1, results.join(','));
        assert.equal(results.filter((r) => r === 'lost').length, ws.length - 1, results.join(','));
        assert.equal((await b.get(k))?.value, `owner-${results.indexOf('won')}`);
      });

      it('every acknowledged write survives kill -9 of writers mid-burst', { timeout: 120_000 }, async () => {
        const p = space();
        const ws = Array.from({ length: 3 }, (_, i) => spawnWorker(spec(), 'writeloop', `${p}${i}/`));
        workers.push(...ws);
        // Let each writer get going, then kill them at different moments, mid-write.
        for (const [i, w] of ws.entries()) {
          for (let n = 0; n < 20 + 10 * i; n++) await w.line(50_000);
          w.kill('SIGKILL');
        }
        for (const w of ws) assert.equal(await w.exited, 'SIGKILL');
        for (const [i, w] of ws.entries()) {
          const acked = w.lines.filter((l) => l.startsWith('acked ')).map((l) => Number(l.slice(6)));
          assert.ok(acked.length >= 20, `writer ${i} acked ${acked.length}`);
          const items = (await b.list(`${p}${i}/`)).items;
          const have = new Map(items.map((kv) => [kv.key, kv.value]));
          for (const n of acked) assert.equal(have.get(`${p}${i}/${String(n).padStart(8, '0')}`), `value-${n}`, `writer ${i} write ${n}`);
          // At most the write in flight when killed is there without its ack.
          assert.ok(items.length <= acked.length + 1, `${items.length} stored, ${acked.length} acked`);
        }
        const all = await b.list(p);
        assert.ok(all.items.every((kv) => rev(kv.revision) <= rev(all.revision)));
        await b.apply(p + 'after', 'x'); // still writable
      });

      it('a watcher sees, in order, the writes another process makes', { timeout: 120_000 }, async () => {
        const p = space();
        const start = await b.revision();
        const evs = collect(b, p, 20, { afterRevision: start, ms: 90_000 });
        const w = spawnWorker(spec(), 'apply', p, '20');
        workers.push(w);
        assert.equal(await w.line(90_000), 'done');
        const got = await evs;
        assert.deepEqual(got.map((e) => [e.key, e.value]), Array.from({ length: 20 }, (_, i) => [`${p}${i}`, `v${i}`]));
      });
    });
  });
}
