import { test } from 'node:test';
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { METRICS_CONTENT_TYPE, Registry, startMetricsServer } from './index.js';

function fetchText(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

/**
 * Every sample line of the exposition format: name{labels} value. The value as Prometheus parses it
 * (Go's ParseFloat: NaN in any case, which prom-client prints as "Nan" for an event-loop statistic
 * with no samples yet).
 */
const SAMPLE = /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\[\\"n])*",?)*\})? (-?[0-9.e+-]+|\+Inf|-Inf|[Nn][Aa][Nn])$/;

function checkFormat(text: string): void {
  assert.ok(text.endsWith('\n'));
  const typed = new Set<string>();
  for (const line of text.trimEnd().split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    const t = /^# TYPE ([^ ]+) (counter|gauge|histogram|summary)$/.exec(line);
    if (t) {
      assert.ok(!typed.has(t[1]), `TYPE once per family: ${t[1]}`);
      typed.add(t[1]);
      continue;
    }
    assert.match(line, SAMPLE);
  }
}

/** Sample lines only (no comments or blank lines), sorted: what a scraper stores. */
function samples(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).sort();
}

test('counters, gauges and histograms in the text format', async () => {
  const r = new Registry();
  const c = r.counter('tortie_cni_requests_total', 'CNI requests handled.', ['command', 'result']);
  c.inc({ command: 'ADD', result: 'ok' });
  c.inc({ command: 'ADD', result: 'ok' }, 2);
  c.inc({ command: 'DEL', result: 'error' });
  const g = r.gauge('tortie_datastore_up', 'Datastore reachable.');
  g.set(1);
  g.dec();
  g.inc(0.5);
  const h = r.histogram('tortie_cni_request_duration_seconds', 'Duration.', ['command'], [0.1, 0.5, 1]);
  h.observe({ command: 'ADD' }, 0.05);
  h.observe({ command: 'ADD' }, 0.7);
  h.observe({ command: 'ADD' }, 3);
  const e = r.counter('weird_total', 'Help with \\ and\nnewline.', ['v']);
  e.inc({ v: 'quote " backslash \\ newline \n end' });

  const text = await r.render();
  checkFormat(text);
  assert.deepEqual(
    samples(text),
    [
      'tortie_cni_request_duration_seconds_bucket{le="0.1",command="ADD"} 1',
      'tortie_cni_request_duration_seconds_bucket{le="0.5",command="ADD"} 1',
      'tortie_cni_request_duration_seconds_bucket{le="1",command="ADD"} 2',
      'tortie_cni_request_duration_seconds_bucket{le="+Inf",command="ADD"} 3',
      'tortie_cni_request_duration_seconds_sum{command="ADD"} 3.75',
      'tortie_cni_request_duration_seconds_count{command="ADD"} 3',
      'tortie_cni_requests_total{command="ADD",result="ok"} 3',
      'tortie_cni_requests_total{command="DEL",result="error"} 1',
      'tortie_datastore_up 0.5',
      'weird_total{v="quote \\" backslash \\\\ newline \\n end"} 1',
    ].sort(),
  );
  assert.match(text, /^# TYPE tortie_cni_requests_total counter$/m);
  assert.match(text, /^# TYPE tortie_datastore_up gauge$/m);
  assert.match(text, /^# TYPE tortie_cni_request_duration_seconds histogram$/m);
  assert.match(text, /^# HELP weird_total Help with \\\\ and\\nnewline\.$/m);
});

test('registration rules', async () => {
  const r = new Registry();
  const a = r.counter('x_total', 'x', ['a']);
  assert.equal(r.counter('x_total', 'x', ['a']), a, 'same metric again is the same object');
  assert.throws(() => r.gauge('x_total', 'x', ['a']), /already registered as a counter/);
  assert.throws(() => r.counter('x_total', 'x', ['b']), /already registered/);
  assert.throws(() => r.counter('bad-name', 'x'), /Invalid metric name/);
  assert.throws(() => a.inc({ b: '1' }), /label "b" is not included/);
  assert.throws(() => a.inc({ a: '1' }, -1), /not possible to decrease a counter/);
  assert.throws(() => r.histogram('h', 'h', ['le']), /le is a reserved label/);
  const t = r.histogram('h3', 'h', ['command']).startTimer({ command: 'ADD' });
  assert.ok(t() >= 0);
  const got = await r.histogram('h3', 'h', ['command']).get();
  assert.equal(got.values.find((v) => v.metricName === 'h3_count')?.value, 1);
});

test('process metrics', async () => {
  const r = new Registry();
  r.registerProcessMetrics();
  r.registerProcessMetrics(); // once per registry, whoever asks
  const text = await r.render();
  checkFormat(text);
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)![1]);
  assert.ok(value('process_resident_memory_bytes') > 1_000_000);
  assert.ok(value('process_cpu_seconds_total') > 0);
  const start = value('process_start_time_seconds');
  assert.ok(Math.abs(start - (Date.now() / 1000 - process.uptime())) < 2, `start time ${start}`);
  assert.ok(value('process_open_fds') > 0);
  assert.ok(value('process_max_fds') > 0);
  assert.ok(value('process_virtual_memory_bytes') > value('process_resident_memory_bytes'));
  assert.match(text, /# TYPE process_cpu_seconds_total counter/);
  // Another registry has none until asked.
  assert.doesNotMatch(await new Registry().render(), /process_/);
});

test('served on /metrics', async () => {
  const r = new Registry();
  r.counter('served_total', 'x').inc();
  const srv = await startMetricsServer(r, '127.0.0.1', 0);
  try {
    const base = `http://127.0.0.1:${srv.address.port}`;
    const ok = await fetchText(`${base}/metrics`);
    assert.equal(ok.status, 200);
    assert.equal(ok.type, METRICS_CONTENT_TYPE);
    assert.match(ok.body, /^served_total 1$/m);
    checkFormat(ok.body);
    assert.equal((await fetchText(`${base}/other`)).status, 404);
  } finally {
    await srv.close();
  }
});
