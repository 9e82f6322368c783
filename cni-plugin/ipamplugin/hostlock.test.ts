import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { acquireHostLock } from './hostlock.js';

describe('host lock', () => {
  it('admits one holder at a time and hands over on release', async () => {
    const name = `tortie-test-lock-${randomBytes(4).toString('hex')}`;
    let inside = 0;
    let maxInside = 0;
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const lock = await acquireHostLock(name, 10_000);
        assert.ok(lock);
        inside++;
        maxInside = Math.max(maxInside, inside);
        await new Promise((r) => setTimeout(r, 2));
        inside--;
        await lock.release();
      }),
    );
    assert.equal(maxInside, 1);
  });

  it('is freed by the kernel when its holder is killed -9', async () => {
    const name = `tortie-test-lock-${randomBytes(4).toString('hex')}`;
    const url = new URL('./hostlock.js', import.meta.url).href;
    const child = spawn(process.execPath, [
      '--input-type=module',
      '-e',
      `const { acquireHostLock } = await import(${JSON.stringify(url)}); await acquireHostLock(${JSON.stringify(name)}, 5000); console.log('held'); setInterval(() => {}, 1000);`,
    ]);
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    const t0 = Date.now();
    const waiting = acquireHostLock(name, 10_000);
    setTimeout(() => child.kill('SIGKILL'), 100);
    const lock = await waiting;
    assert.ok(lock, 'acquired after the holder died');
    assert.ok(Date.now() - t0 < 5000);
    await lock.release();
  });

  it('gives up after the timeout', async () => {
    const name = `tortie-test-lock-${randomBytes(4).toString('hex')}`;
    const held = await acquireHostLock(name, 1000);
    assert.equal(await acquireHostLock(name, 50), null);
    await held!.release();
  });
});
