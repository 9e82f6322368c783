// A small Prometheus registry (text exposition format 0.0.4) with counters, gauges and
// histograms, process metrics, and an HTTP server for /metrics. No dependencies.
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Labels = Record<string, string>;

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Prometheus number formatting: integers plainly, +Inf/-Inf/NaN spelled out. */
export function formatValue(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function renderLabels(names: readonly string[], values: readonly string[], extra?: [string, string]): string {
  const parts = names.map((n, i) => `${n}="${escapeLabelValue(values[i])}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabelValue(extra[1])}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

type MetricType = 'counter' | 'gauge' | 'histogram';

abstract class Metric {
  abstract readonly type: MetricType;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
  ) {
    if (!NAME_RE.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    for (const l of labelNames) {
      if (!LABEL_RE.test(l) || l.startsWith('__')) throw new Error(`invalid label name ${JSON.stringify(l)} on ${name}`);
    }
  }

  protected key(labels: Labels | undefined): { key: string; values: string[] } {
    const given = labels ?? {};
    for (const k of Object.keys(given)) {
      if (!this.labelNames.includes(k)) throw new Error(`${this.name}: unknown label ${JSON.stringify(k)}`);
    }
    const values = this.labelNames.map((n) => {
      const v = given[n];
      if (v === undefined) throw new Error(`${this.name}: label ${JSON.stringify(n)} is missing`);
      return String(v);
    });
    return { key: JSON.stringify(values), values };
  }

  abstract samples(): string[];

  render(): string {
    const lines = [`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} ${this.type}`, ...this.samples()];
    return lines.join('\n') + '\n';
  }
}

/** A metric holding one number per label set (counters, gauges), or computed at scrape time. */
abstract class ValueMetric extends Metric {
  private readonly vals = new Map<string, { values: string[]; v: number }>();
  /** Computed at scrape time instead of stored values (unlabelled metrics). */
  private collector?: () => number;

  protected add(labels: Labels | undefined, by: number): void {
    const { key, values } = this.key(labels);
    const cur = this.vals.get(key);
    if (cur) cur.v += by;
    else this.vals.set(key, { values, v: by });
  }

  protected store(labels: Labels | undefined, v: number): void {
    const { key, values } = this.key(labels);
    this.vals.set(key, { values, v });
  }

  get(labels?: Labels): number {
    if (this.collector) return this.collector();
    return this.vals.get(this.key(labels).key)?.v ?? 0;
  }

  /** Makes the metric report `fn()` at each scrape (e.g. a total kept by the OS). */
  collect(fn: () => number): this {
    this.collector = fn;
    return this;
  }

  samples(): string[] {
    if (this.collector) return collected(this.name, this.collector);
    return [...this.vals.values()].map((s) => `${this.name}${renderLabels(this.labelNames, s.values)} ${formatValue(s.v)}`);
  }
}

function collected(name: string, fn: () => number): string[] {
  try {
    return [`${name} ${formatValue(fn())}`];
  } catch {
    return [];
  }
}

export class Counter extends ValueMetric {
  readonly type = 'counter' as const;

  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new Error(`${this.name}: a counter can only go up (inc by ${by})`);
    this.add(labels, by);
  }
}

export class Gauge extends ValueMetric {
  readonly type = 'gauge' as const;

  set(v: number, labels?: Labels): void {
    this.store(labels, v);
  }

  inc(labels?: Labels, by = 1): void {
    this.add(labels, by);
  }

  dec(labels?: Labels, by = 1): void {
    this.add(labels, -by);
  }
}

/** Prometheus client default buckets (seconds). */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Histogram extends Metric {
  readonly type = 'histogram' as const;
  readonly buckets: readonly number[];
  private readonly vals = new Map<string, { values: string[]; counts: number[]; sum: number; count: number }>();

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[] = DEFAULT_BUCKETS) {
    super(name, help, labelNames);
    if (labelNames.includes('le')) throw new Error(`${name}: "le" is reserved on histograms`);
    const sorted = [...buckets].filter((b) => b !== Infinity).sort((a, b) => a - b);
    if (sorted.length === 0 || sorted.some((b, i) => !Number.isFinite(b) || (i > 0 && b === sorted[i - 1]))) {
      throw new Error(`${name}: buckets must be distinct finite numbers`);
    }
    this.buckets = sorted;
  }

  observe(v: number, labels?: Labels): void {
    const { key, values } = this.key(labels);
    let s = this.vals.get(key);
    if (!s) {
      s = { values, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.vals.set(key, s);
    }
    for (let i = 0; i < this.buckets.length; i++) if (v <= this.buckets[i]) s.counts[i]++;
    s.sum += v;
    s.count++;
  }

  /** Starts a timer; the returned function observes the elapsed seconds. */
  startTimer(labels?: Labels): (more?: Labels) => number {
    const t0 = process.hrtime.bigint();
    return (more?: Labels) => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      this.observe(secs, { ...labels, ...more });
      return secs;
    };
  }

  get(labels?: Labels): { count: number; sum: number; buckets: number[] } | undefined {
    const s = this.vals.get(this.key(labels).key);
    return s && { count: s.count, sum: s.sum, buckets: [...s.counts] };
  }

  samples(): string[] {
    const out: string[] = [];
    for (const s of this.vals.values()) {
      this.buckets.forEach((b, i) => {
        out.push(`${this.name}_bucket${renderLabels(this.labelNames, s.values, ['le', formatValue(b)])} ${s.counts[i]}`);
      });
      out.push(`${this.name}_bucket${renderLabels(this.labelNames, s.values, ['le', '+Inf'])} ${s.count}`);
      out.push(`${this.name}_sum${renderLabels(this.labelNames, s.values)} ${formatValue(s.sum)}`);
      out.push(`${this.name}_count${renderLabels(this.labelNames, s.values)} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();

  private getOrCreate<M extends Metric>(name: string, make: () => M, ctor: new (...a: never[]) => M, labelNames: readonly string[]): M {
    const cur = this.metrics.get(name);
    if (cur) {
      if (!(cur instanceof ctor) || cur.labelNames.join(',') !== labelNames.join(',')) {
        throw new Error(`metric ${name} is already registered as a ${cur.type} with labels [${cur.labelNames.join(', ')}]`);
      }
      return cur;
    }
    const m = make();
    this.metrics.set(name, m);
    return m;
  }

  /** Registers a counter, or returns the one already registered under that name. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.getOrCreate(name, () => new Counter(name, help, labelNames), Counter, labelNames);
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.getOrCreate(name, () => new Gauge(name, help, labelNames), Gauge, labelNames);
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): Histogram {
    return this.getOrCreate(name, () => new Histogram(name, help, labelNames, buckets), Histogram, labelNames);
  }

  get(name: string): Metric | undefined {
    return this.metrics.get(name);
  }

  /** The text exposition of every metric, sorted by name. */
  render(): string {
    return [...this.metrics.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((m) => m.render())
      .join('');
  }
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

function maxFds(): number {
  const line = readFileSync('/proc/self/limits', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max open files'));
  const soft = line?.split(/\s{2,}/)[1];
  return soft === undefined || soft === 'unlimited' ? Infinity : Number(soft);
}

function virtualMemoryBytes(): number {
  // /proc/self/stat field 23 (vsize); the command name (field 2) may contain spaces.
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(rest[20]);
}

/** The standard process_* metrics, computed at scrape time. */
export function registerProcessMetrics(r: Registry): void {
  const startTime = Math.round((Date.now() - process.uptime() * 1000) / 10) / 100;
  r.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.').collect(() => process.memoryUsage.rss());
  r.gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.').collect(virtualMemoryBytes);
  r.gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.').collect(() => startTime);
  r.gauge('process_open_fds', 'Number of open file descriptors.').collect(openFds);
  r.gauge('process_max_fds', 'Maximum number of open file descriptors.').collect(maxFds);
  r.counter('process_cpu_seconds_total', 'Total user and system CPU time spent in seconds.').collect(() => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  });
}

/** A registry with the process metrics, for the agent and anything in-process to add to. */
export const registry = new Registry();
registerProcessMetrics(registry);

export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Serves `r` on http://host:port/metrics (host "" = all interfaces; port 0 = any free port). */
export function startMetricsServer(r: Registry, host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    let body: string;
    try {
      body = r.render();
    } catch (e) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`error collecting metrics: ${(e as Error).message}\n`);
      return;
    }
    res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return listenHttp(server, host, port).then((address) => ({
    address,
    close: () => closeHttp(server),
  }));
}

/** Listens and resolves with the bound address; rejects on EADDRINUSE and the like. */
export function listenHttp(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    const done = () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    if (host === '') server.listen(port, done);
    else server.listen(port, host, done);
  });
}

export function closeHttp(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}
