// Prometheus metrics of tortie-kube-controllers: a prom-client registry, the standard process_*
// metrics and an HTTP server for /metrics (the facade of node/pkg/metrics.ts, kept to what this
// process needs). The IPAM metric names and labels are calico-kube-controllers'.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as prom from 'prom-client';

export type Gauge = prom.Gauge<string>;
export type Counter = prom.Counter<string>;

export class Registry {
  readonly prom = new prom.Registry();
  private readonly metrics = new Map<string, Gauge | Counter>();

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    const cur = this.metrics.get(name);
    if (cur) return cur as Gauge;
    const g = new prom.Gauge({ name, help, labelNames, registers: [this.prom] });
    this.metrics.set(name, g);
    return g;
  }

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    const cur = this.metrics.get(name);
    if (cur) return cur as Counter;
    const c = new prom.Counter({ name, help, labelNames, registers: [this.prom] });
    this.metrics.set(name, c);
    return c;
  }

  registerProcessMetrics(): void {
    prom.collectDefaultMetrics({ register: this.prom });
  }

  render(): Promise<string> {
    return this.prom.metrics();
  }
}

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
        res.writeHead(200, { 'Content-Type': prom.Registry.PROMETHEUS_CONTENT_TYPE, 'Content-Length': Buffer.byteLength(body) });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (e: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`error collecting metrics: ${e.message}\n`),
    );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve({
        address: server.address() as AddressInfo,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections?.();
          }),
      });
    };
    if (host === '') server.listen(port, done);
    else server.listen(port, host, done);
  });
}
