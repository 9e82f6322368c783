import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnavailableError, type Backend } from '../../libcalico-go/lib/backend/api.js';
import { DatastoreSupervisor } from './datastore-supervisor.js';
import { HealthAggregator } from './health.js';
import { createLogger } from '../../libcalico-go/lib/logutils/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function fakeStore(state: { down: boolean; hang?: boolean; closed?: boolean }): Backend {
  return {
    type: 'etcdv3',
    revision: async () => {
      if (state.hang) return new Promise<string>(() => {});
      if (state.down) throw new UnavailableError('connection refused');
      return '7';
    },
    close: async () => {
      state.closed = true;
    },
  } as unknown as Backend;
}

async function until(what: string, fn: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!fn()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

test('startup is retried with backoff until it succeeds; outages flip readiness and are logged once', async () => {
  const state = { down: true, closed: false };
  const lines: string[] = [];
  const health = new HealthAggregator();
  let attempts = 0;
  let failUntil = 3;
  const sup = new DatastoreSupervisor<string>({
    open: async () => fakeStore(state),
    startup: async () => {
      attempts++;
      if (attempts < failUntil) throw new Error('pool create refused');
      return `ok after ${attempts}`;
    },
    reporter: health.register('datastore'),
    startupReporter: health.register('startup', { live: false }),
    log: createLogger('datastore-supervisor.ts', { sink: (l) => lines.push(l), level: 'DEBUG' }),
    intervalMs: 20,
    checkTimeoutMs: 200,
    backoffInitialMs: 30,
    backoffMaxMs: 60,
  });
  sup.start();
  await sleep(150);
  assert.equal(sup.state, 'down');
  assert.equal(health.summary().ready, false);
  assert.equal(health.summary().live, true);
  assert.equal(attempts, 0, 'no startup while the store is away');
  assert.equal(lines.filter((l) => /Cannot reach the datastore: connection refused/.test(l)).length, 1);

  state.down = false;
  assert.equal(await sup.started, 'ok after 3');
  assert.equal(sup.startupDone, true);
  assert.equal(lines.filter((l) => /Connected to the datastore/.test(l)).length, 1);
  assert.equal(health.summary().ready, true);
  assert.equal(lines.filter((l) => /\[ERROR\].*Startup attempt 1 failed: pool create refused; retrying in 0\.0 s$/.test(l)).length, 1);
  assert.equal(lines.filter((l) => /\[DEBUG\].*Startup attempt 2 failed/.test(l)).length, 1, 'the same error again is logged quietly');
  assert.ok(lines.some((l) => /Startup succeeded after 3 attempts/.test(l)));

  // Outage: not ready, one line; back: ready, one line, startup redone.
  failUntil = 0;
  state.down = true;
  await until('down', () => sup.state === 'down');
  assert.equal(health.summary().ready, false);
  await sleep(100);
  assert.equal(lines.filter((l) => /Lost the datastore/.test(l)).length, 1);
  const before = attempts;
  state.down = false;
  await until('up', () => sup.state === 'up' && attempts > before);
  assert.equal(health.summary().ready, true);
  assert.equal(lines.filter((l) => /Datastore is reachable again/.test(l)).length, 1);

  await sup.stop();
  assert.equal(state.closed, true, 'backend closed on stop');
});

test('a hanging datastore counts as down; stop before startup rejects `started`', async () => {
  const state = { down: false, hang: true };
  const sup = new DatastoreSupervisor({
    open: async () => fakeStore(state),
    startup: async () => undefined,
    intervalMs: 20,
    checkTimeoutMs: 50,
  });
  sup.start();
  await until('down', () => sup.state === 'down');
  await sup.stop();
  await assert.rejects(sup.started, /stopped before the startup work succeeded/);
});

test('opening the store failing is retried too', async () => {
  let opens = 0;
  const sup = new DatastoreSupervisor({
    open: async () => {
      opens++;
      if (opens < 3) throw new Error('cannot open');
      return fakeStore({ down: false });
    },
    intervalMs: 10,
  });
  sup.start();
  await until('up', () => sup.state === 'up');
  assert.equal(opens, 3);
  assert.ok(sup.store);
  await sup.stop();
  assert.equal(sup.store, null);
});
