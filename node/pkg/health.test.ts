import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { HealthAggregator, renderHealthTable, startHealthServer } from './health.js';

function fetch(url: string, accept?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { headers: accept ? { accept } : {} }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

test('aggregation: first report, readiness-only reporters, timeouts', () => {
  let now = 1000;
  const agg = new HealthAggregator(() => now);
  assert.deepEqual(agg.summary(), { live: true, ready: true, reporters: [] }, 'nothing registered: healthy');
  const ds = agg.register('datastore', { timeoutMs: 5000 });
  const st = agg.register('startup', { live: false });
  assert.throws(() => agg.register('datastore'), /already registered/);
  let s = agg.summary();
  assert.equal(s.live, false, 'no report yet');
  assert.equal(s.ready, false);

  ds.report({ live: true, ready: true });
  s = agg.summary();
  assert.equal(s.live, true, 'startup does not take part in liveness');
  assert.equal(s.ready, false, 'startup has not reported');
  st.report({ ready: true });
  assert.equal(agg.summary().ready, true);

  ds.report({ ready: false, detail: 'connection refused' });
  s = agg.summary();
  assert.equal(s.live, true, 'omitted fields keep their value');
  assert.equal(s.ready, false);
  assert.equal(s.reporters.find((r) => r.name === 'datastore')!.detail, 'connection refused');

  ds.report({ ready: true, detail: '' });
  now += 5001;
  s = agg.summary();
  assert.equal(s.live, false, 'a stale report counts as neither');
  assert.equal(s.ready, false);
  assert.equal(s.reporters.find((r) => r.name === 'datastore')!.stale, true);
  assert.equal(s.reporters.find((r) => r.name === 'startup')!.ready, true, 'no timeout: never stale');
  assert.match(renderHealthTable(s), /^COMPONENT\s+TIMEOUT\s+LIVENESS\s+READINESS\s+DETAIL\ndatastore\s+5s\s+timed out\s+timed out\nstartup\s+-\s+-\s+reporting ready\n$/);
});

test('HTTP endpoints: 503 until ready, 200 after, table or JSON', async () => {
  const agg = new HealthAggregator();
  const ds = agg.register('datastore');
  const srv = await startHealthServer(agg, '127.0.0.1', 0);
  const base = `http://127.0.0.1:${srv.address.port}`;
  try {
    let r = await fetch(`${base}/readiness`);
    assert.equal(r.status, 503);
    assert.match(r.body, /^not ready\nCOMPONENT/);
    assert.match(r.body, /datastore\s+-\s+no report yet/);
    ds.report({ live: true, ready: false, detail: 'connection refused' });
    assert.equal((await fetch(`${base}/liveness`)).status, 200);
    assert.equal((await fetch(`${base}/readiness`)).status, 503);
    assert.equal((await fetch(`${base}/`)).status, 503);
    ds.report({ ready: true, detail: '' });
    r = await fetch(`${base}/readiness`);
    assert.equal(r.status, 200);
    assert.match(r.body, /^ready\n/);
    assert.equal((await fetch(`${base}/`)).status, 200);
    const j = JSON.parse((await fetch(`${base}/liveness?format=json`)).body);
    assert.equal(j.live, true);
    assert.equal(j.reporters[0].name, 'datastore');
    assert.equal(JSON.parse((await fetch(`${base}/readiness`, 'application/json')).body).status, 'ready');
    assert.equal((await fetch(`${base}/nope`)).status, 404);
  } finally {
    await srv.close();
  }
});
