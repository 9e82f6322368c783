import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { acquireHostLock, hostLockDir, hostLockPaths } from './hostlock.js';

const base = mkdtempSync(join(tmpdir(), 'tortie-hostlock-'));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
  rmSync(base, { recursive: true, force: true });
});

const isRoot = process.getuid?.() === 0;
const NOBODY = 65534;
const URL_ = new URL('./hostlock.js', import.meta.url).href;
let n = 0;
const fresh = () => ({ dir: join(base, `d${n++}`, 'locks'), name: `tortie-ipam/embedded/node-${randomBytes(3).toString('hex')}` });
const modeOf = (p: string) => (statSync(p).mode & 0o7777).toString(8).padStart(4, '0');

/**
 * A process using the lock: `hold` takes it, says "held", keeps it until killed; `count` takes it
 * `times` times and each time does a read-modify-write of a counter file with a pause in the middle;
 * `try` says "got" or "null". umask 0 in every one of them.
 */
function child(mode: 'hold' | 'count' | 'try', dir: string, name: string, extra: Record<string, unknown> = {}) {
  const code = `
process.umask(0);
const { acquireHostLock } = await import(${JSON.stringify(URL_)});
const { readFileSync, writeFileSync } = await import('node:fs');
const [mode, dir, name, extra] = [${JSON.stringify(mode)}, ${JSON.stringify(dir)}, ${JSON.stringify(name)}, ${JSON.stringify(extra)}];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
if (mode === 'hold') {
  const l = await acquireHostLock(name, 20000, { dir });
  console.log(l ? 'held' : 'null');
  setInterval(() => {}, 1000);
} else if (mode === 'count') {
  for (let i = 0; i < extra.times; i++) {
    const l = await acquireHostLock(name, 60000, { dir });
    if (!l) throw new Error('timed out');
    const v = Number(readFileSync(extra.counter, 'utf8'));
    await sleep(1);
    writeFileSync(extra.counter, String(v + 1));
    await l.release();
  }
  console.log('done');
} else {
  const l = await acquireHostLock(name, extra.ms, { dir });
  console.log(l ? 'got' : 'null');
  if (l) { await sleep(extra.holdMs ?? 0); await l.release(); console.log('released'); }
}
`;
  const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  let err = '';
  c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const lines: string[] = [];
  const waiting: Array<(l: string) => void> = [];
  createInterface({ input: c.stdout! }).on('line', (l) => {
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  const exited = new Promise<number | string>((r) => c.on('close', (code, sig) => r(code ?? sig ?? -1)));
  return {
    c,
    exited,
    stderr: () => err,
    line: () =>
      lines.length > 0
        ? Promise.resolve(lines.shift()!)
        : Promise.race([
            new Promise<string>((r) => waiting.push(r)),
            exited.then((x) => {
              throw new Error(`child (${mode}) ended (${x}) before a line: ${err}`);
            }),
          ]),
  };
}

describe('host lock', () => {
  it('admits one holder at a time and hands over on release (one process)', async () => {
    const { dir, name } = fresh();
    let inside = 0;
    let maxInside = 0;
    let entries = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const lock = await acquireHostLock(name, 30_000, { dir });
        assert.ok(lock);
        inside++;
        entries++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, 2));
        inside--;
        await lock.release();
      }),
    );
    assert.equal(entries, 20);
    assert.equal(maxInside, 1);
  });

  it('excludes across processes: 4 processes × 25 read-modify-writes under the lock lose none', async () => {
    const { dir, name } = fresh();
    mkdirSync(join(dir, '..'), { recursive: true });
    const counter = join(dir, '..', 'counter');
    writeFileSync(counter, '0');
    const cs = Array.from({ length: 4 }, () => child('count', dir, name, { times: 25, counter }));
    for (const c of cs) assert.equal(await c.line(), 'done', c.stderr());
    assert.equal(readFileSync(counter, 'utf8'), '100');
  });

  it('is freed by the kernel when its holder is killed -9; waiting processes get it in turn', async () => {
    const { dir, name } = fresh();
    const holder = child('hold', dir, name);
    assert.equal(await holder.line(), 'held');
    const { socket } = hostLockPaths(dir, name);
    assert.ok(socket && existsSync(socket), 'the holder listens for waiters');
    const waiters = [child('try', dir, name, { ms: 30_000, holdMs: 20 }), child('try', dir, name, { ms: 30_000, holdMs: 20 })];
    const here = acquireHostLock(name, 30_000, { dir });
    // Nobody gets it while the holder lives.
    assert.equal(await acquireHostLock(name, 200, { dir }), null);
    process.kill(holder.c.pid!, 'SIGKILL');
    assert.equal(await holder.exited, 'SIGKILL');
    const lock = await here;
    assert.ok(lock, 'acquired after the holder died');
    await lock.release();
    for (const w of waiters) {
      assert.equal(await w.line(), 'got', w.stderr());
      assert.equal(await w.line(), 'released');
      assert.equal(await w.exited, 0);
    }
    // The killed holder's socket file was replaced by the next holder's, and removed on release.
    assert.deepEqual(readdirSync(dir), [`${hostLockPaths(dir, name).lock.split('/').pop()}`]);
  });

  it('gives up after the timeout (null: the caller goes on without it)', async () => {
    const { dir, name } = fresh();
    const held = await acquireHostLock(name, 1000, { dir });
    assert.ok(held);
    assert.equal(await acquireHostLock(name, 50, { dir }), null);
    await held.release();
    const again = await acquireHostLock(name, 50, { dir });
    assert.ok(again, 'free again after release');
    await again.release();
  });

  it('lock file 0600 in a directory 0700 under umask 0; wider ones of ours are tightened; no other file appears', async () => {
    const { dir, name } = fresh();
    const holder = child('hold', dir, name);
    assert.equal(await holder.line(), 'held');
    const { lock } = hostLockPaths(dir, name);
    assert.deepEqual([modeOf(dir), modeOf(lock)], ['0700', '0600']);
    assert.deepEqual(readdirSync(dir).sort(), [lock.split('/').pop(), hostLockPaths(dir, name).socket!.split('/').pop()].sort(), 'no journal next to the lock');
    assert.equal(statSync(lock).size, 0, 'nothing is ever written to the lock file');
    process.kill(holder.c.pid!, 'SIGKILL');
    await holder.exited;
    chmodSync(dir, 0o755);
    chmodSync(lock, 0o644);
    const l = await acquireHostLock(name, 1000, { dir });
    assert.ok(l);
    assert.deepEqual([modeOf(dir), modeOf(lock)], ['0700', '0600']);
    await l.release();
  });

  it('another user can neither open the lock nor look into its directory', { skip: isRoot ? false : 'needs root (runs a process as nobody)' }, async () => {
    const { dir, name } = fresh();
    const l = await acquireHostLock(name, 1000, { dir });
    assert.ok(l);
    try {
      const probe = `const fs = require('fs'); for (const f of [() => fs.openSync(${JSON.stringify(l.path)}, 'r'), () => fs.readdirSync(${JSON.stringify(dir)})]) { try { f(); console.log('allowed'); } catch (e) { console.log(e.code); } }`;
      const r = spawnSync(process.execPath, ['-e', probe], { uid: NOBODY, gid: NOBODY, encoding: 'utf8', cwd: '/' });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.stdout.trim().split('\n'), ['EACCES', 'EACCES']);
    } finally {
      await l.release();
    }
  });

  it('a directory or lock file of another user is refused: no lock, a warning, nothing taken', { skip: isRoot ? false : 'needs root (chown)' }, async () => {
    const { dir, name } = fresh();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chownSync(dir, NOBODY, NOBODY);
    const warnings: string[] = [];
    assert.equal(await acquireHostLock(name, 1000, { dir, onWarning: (m) => warnings.push(m) }), null);
    assert.match(warnings.join('\n'), new RegExp(`host lock directory ${dir} belongs to uid ${NOBODY}`));
    assert.deepEqual(readdirSync(dir), [], 'nothing created in it');

    const other = fresh();
    mkdirSync(other.dir, { recursive: true, mode: 0o700 });
    const { lock } = hostLockPaths(other.dir, other.name);
    writeFileSync(lock, '');
    chownSync(lock, NOBODY, NOBODY);
    const w2: string[] = [];
    assert.equal(await acquireHostLock(other.name, 1000, { dir: other.dir, onWarning: (m) => w2.push(m) }), null);
    assert.match(w2.join('\n'), /belongs to uid 65534/);
  });

  it('names map to distinct files; long names are hashed and the socket path stays within 107 bytes', () => {
    const d = '/var/run/tortie/locks';
    const a = hostLockPaths(d, 'tortie-ipam/embedded/a.b');
    const b = hostLockPaths(d, 'tortie-ipam/embedded.a/b');
    assert.notEqual(a.lock, b.lock);
    assert.equal(a.lock, '/var/run/tortie/locks/tortie-ipam%2Fembedded%2Fa.b.lock');
    assert.ok(!a.lock.slice(d.length + 1).includes('/'));
    const long = hostLockPaths(d, `tortie-ipam/etcdv3/${'n'.repeat(253)}`);
    assert.ok(long.lock.length < d.length + 50);
    assert.ok(Buffer.byteLength(long.socket!) <= 107);
    assert.equal(hostLockPaths(`/${'x'.repeat(120)}`, 'a').socket, null, 'no socket at all when even a hash is too long: waiters poll');
    assert.equal(hostLockDir({ TORTIE_RUN_DIR: '/run/t' }), '/run/t/locks');
    assert.equal(hostLockDir({}), '/var/run/tortie/locks');
  });
});
