// Prometheus metrics for Tortie's processes (the agent, tortie-kube-controllers): prom-client's
// counters, gauges and histograms in a registry that returns the metric already registered under a
// name (so two loops may ask for the same one), the standard process_* metrics, and an HTTP server for
// /metrics. Names and labels are Calico's where Calico has one (felix_*, ipam_*), Tortie's otherwise.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as prom from 'prom-client';

export type Labels = Record<string, string>;
export type Counter = prom.Counter<string>;
export type Gauge = prom.Gauge<string>;
export type Histogram = prom.Histogram<string>;

type AnyMetric = Counter | Gauge | Histogram;
type Kind = 'counter' | 'gauge' | 'histogram';

export class Registry {
  /** The prom-client registry behind this one (for collectors that take one). */
  readonly prom = new prom.Registry();
  private readonly kinds = new Map<string, { kind: Kind; labelNames: string; metric: AnyMetric }>();
  private processMetrics = false;

  private getOrCreate<M extends AnyMetric>(kind: Kind, name: string, labelNames: readonly string[], make: () => M): M {
    const cur = this.kinds.get(name);
    const labels = labelNames.join(',');
    if (cur) {
      if (cur.kind !== kind || cur.labelNames !== labels) {
        throw new Error(`metric ${name} is already registered as a ${cur.kind} with labels [${cur.labelNames.split(',').filter(Boolean).join(', ')}]`);
      }
      return cur.metric as M;
    }
    const m = make();
    this.kinds.set(name, { kind, labelNames: labels, metric: m });
    return m;
  }

  /** Registers a counter, or returns the one already registered under that name. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.getOrCreate('counter', name, labelNames, () => new prom.Counter({ name, help, labelNames, registers: [this.prom] }));
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.getOrCreate('gauge', name, labelNames, () => new prom.Gauge({ name, help, labelNames, registers: [this.prom] }));
  }

  /** Without buckets: prom-client's defaults (5 ms … 10 s). */
  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets?: readonly number[]): Histogram {
    return this.getOrCreate('histogram', name, labelNames, () =>
      new prom.Histogram({ name, help, labelNames, registers: [this.prom], ...(buckets ? { buckets: [...buckets] } : {}) }),
    );
  }

  /** Adds the standard process_* (and nodejs_*) metrics, computed at scrape time; once per registry. */
  registerProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    prom.collectDefaultMetrics({ register: this.prom });
  }

  /** The text exposition of every metric. */
  render(): Promise<string> {
    return this.prom.metrics();
  }
}

export const METRICS_CONTENT_TYPE: string = prom.Registry.PROMETHEUS_CONTENT_TYPE;

export interface MetricsServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

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
    r.render().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (e: Error) => {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`error collecting metrics: ${e.message}\n`);
      },
    );
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
