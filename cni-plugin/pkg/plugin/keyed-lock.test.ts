import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedLock } from './keyed-lock.js';

const tick = () => new Promise((r) => setImmediate(r));

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

describe('KeyedLock', () => {
  it('runs requests sharing a key one after another, in arrival order', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const g = gate();
    const a = lock.run(['c:1'], async () => {
      order.push('a start');
      await g.wait;
      order.push('a end');
    });
    const b = lock.run(['c:1'], async () => void order.push('b'));
    const c = lock.run(['c:1', 'w:x'], async () => void order.push('c'));
    await tick();
    assert.deepEqual(order, ['a start']);
    g.open();
    await Promise.all([a, b, c]);
    assert.deepEqual(order, ['a start', 'a end', 'b', 'c']);
    assert.equal(lock.size, 0);
  });

  it('requests with no key in common run concurrently', async () => {
    const lock = new KeyedLock();
    const g = gate();
    let second = false;
    const a = lock.run(['c:1', 'w:pod'], () => g.wait);
    await lock.run(['c:2', 'w:other'], async () => void (second = true));
    assert.equal(second, true, 'a request on other keys waited for an unrelated one');
    g.open();
    await a;
  });

  it('one shared key is enough to order two requests (two sandboxes of one pod)', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const g = gate();
    const oldAdd = lock.run(['c:old', 'w:web'], async () => {
      await g.wait;
      order.push('old');
    });
    const newAdd = lock.run(['c:new', 'w:web'], async () => void order.push('new'));
    await tick();
    g.open();
    await Promise.all([oldAdd, newAdd]);
    assert.deepEqual(order, ['old', 'new']);
  });

  it('a waiter aborted before its turn never runs, and does not let a later one overtake', async () => {
    const lock = new KeyedLock();
    const order: string[] = [];
    const g = gate();
    const first = lock.run(['k'], async () => {
      await g.wait;
      order.push('first');
    });
    const ac = new AbortController();
    const second = lock.run(['k'], async () => void order.push('second'), ac.signal);
    const third = lock.run(['k'], async () => void order.push('third'));
    ac.abort(new Error('plugin gone'));
    await assert.rejects(second, /plugin gone/);
    await tick();
    assert.deepEqual(order, [], 'the third ran while the first still held the key');
    g.open();
    await Promise.all([first, third]);
    assert.deepEqual(order, ['first', 'third']);
  });

  it('a failing holder releases the key', async () => {
    const lock = new KeyedLock();
    await assert.rejects(lock.run(['k'], async () => Promise.reject(new Error('boom'))), /boom/);
    assert.equal(await lock.run(['k'], async () => 42), 42);
  });
});
