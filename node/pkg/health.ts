// Liveness and readiness as Felix serves them: named reporters say whether they are live and
// ready; a report older than the reporter's timeout counts as neither. GET /liveness and
// /readiness answer 200 when every reporter that reports that aspect is good, else 503, with a
// table of the reporters as the body (JSON with ?format=json or Accept: application/json).
// GET / gives both aspects at once (200 only when live and ready).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeHttp, listenHttp } from '../../libcalico-go/lib/metrics/index.js';

export interface ReporterOptions {
  /** This reporter takes part in liveness. Default true. */
  live?: boolean;
  /** This reporter takes part in readiness. Default true. */
  ready?: boolean;
  /** A report older than this is stale: neither live nor ready. 0 / undefined = never stale. */
  timeoutMs?: number;
}

export interface HealthReport {
  live?: boolean;
  ready?: boolean;
  /** A short note shown in the report (e.g. the last error). */
  detail?: string;
}

export interface HealthReporter {
  readonly name: string;
  /** Records a report; fields left out keep their previous value. */
  report(r: HealthReport): void;
}

export interface ReporterStatus {
  name: string;
  reportsLive: boolean;
  reportsReady: boolean;
  timeoutMs: number;
  live: boolean;
  ready: boolean;
  stale: boolean;
  detail: string;
  /** ms since the last report; null before the first one. */
  ageMs: number | null;
}

export interface HealthSummary {
  live: boolean;
  ready: boolean;
  reporters: ReporterStatus[];
}

interface State {
  opts: Required<ReporterOptions>;
  live: boolean;
  ready: boolean;
  detail: string;
  at: number | null;
}

export class HealthAggregator {
  private readonly states = new Map<string, State>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Registers a reporter (not live, not ready until it reports). Names are unique. */
  register(name: string, opts: ReporterOptions = {}): HealthReporter {
    if (this.states.has(name)) throw new Error(`health reporter ${JSON.stringify(name)} is already registered`);
    const st: State = {
      opts: { live: opts.live ?? true, ready: opts.ready ?? true, timeoutMs: opts.timeoutMs ?? 0 },
      live: false,
      ready: false,
      detail: '',
      at: null,
    };
    this.states.set(name, st);
    return {
      name,
      report: (r) => {
        if (r.live !== undefined) st.live = r.live;
        if (r.ready !== undefined) st.ready = r.ready;
        if (r.detail !== undefined) st.detail = r.detail;
        st.at = this.now();
      },
    };
  }

  summary(): HealthSummary {
    const now = this.now();
    const reporters: ReporterStatus[] = [];
    let live = true;
    let ready = true;
    for (const [name, st] of [...this.states].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const age = st.at === null ? null : now - st.at;
      const stale = st.at !== null && st.opts.timeoutMs > 0 && age! > st.opts.timeoutMs;
      const isLive = st.at !== null && !stale && st.live;
      const isReady = st.at !== null && !stale && st.ready;
      if (st.opts.live && !isLive) live = false;
      if (st.opts.ready && !isReady) ready = false;
      reporters.push({
        name,
        reportsLive: st.opts.live,
        reportsReady: st.opts.ready,
        timeoutMs: st.opts.timeoutMs,
        live: isLive,
        ready: isReady,
        stale,
        detail: st.detail,
        ageMs: age,
      });
    }
    return { live, ready, reporters };
  }
}

function word(reports: boolean, ok: boolean, stale: boolean, what: string): string {
  if (!reports) return '-';
  if (stale) return 'timed out';
  return ok ? `reporting ${what}` : `reporting non-${what}`;
}

/** The reporter table for a health answer. */
export function renderHealthTable(s: HealthSummary): string {
  const rows = [
    ['COMPONENT', 'TIMEOUT', 'LIVENESS', 'READINESS', 'DETAIL'],
    ...s.reporters.map((r) => [
      r.name,
      r.timeoutMs > 0 ? `${r.timeoutMs / 1000}s` : '-',
      r.ageMs === null ? 'no report yet' : word(r.reportsLive, r.live, r.stale, 'live'),
      r.ageMs === null ? 'no report yet' : word(r.reportsReady, r.ready, r.stale, 'ready'),
      r.detail,
    ]),
  ];
  const widths = (rows[0] ?? []).map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join('  ').trimEnd()).join('\n') + '\n';
}

function wantsJson(req: IncomingMessage, url: URL): boolean {
  return url.searchParams.get('format') === 'json' || /application\/json/.test(req.headers.accept ?? '');
}

export interface HealthServer {
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** Serves /liveness, /readiness and / for `agg` on host:port (port 0 = any free port). */
export function startHealthServer(agg: HealthAggregator, host: string, port: number): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://health');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const s = agg.summary();
    let ok: boolean;
    let status: string;
    switch (url.pathname) {
      case '/liveness':
        ok = s.live;
        status = ok ? 'live' : 'not live';
        break;
      case '/readiness':
        ok = s.ready;
        status = ok ? 'ready' : 'not ready';
        break;
      case '/':
        ok = s.live && s.ready;
        status = `${s.live ? 'live' : 'not live'}, ${s.ready ? 'ready' : 'not ready'}`;
        break;
      default:
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: use /liveness or /readiness\n');
        return;
    }
    const code = ok ? 200 : 503;
    const json = wantsJson(req, url);
    const body = json ? JSON.stringify({ status, live: s.live, ready: s.ready, reporters: s.reporters }) + '\n' : `${status}\n${renderHealthTable(s)}`;
    res.writeHead(code, {
      'Content-Type': json ? 'application/json' : 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
  return listenHttp(server, host, port).then((address) => ({ address, close: () => closeHttp(server) }));
}
