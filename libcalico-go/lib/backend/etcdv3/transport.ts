// HTTP(S) transport to etcd's gRPC-gateway (JSON over HTTP/1.1) with endpoint failover. Only
// node:http/https: the CNI plugin opens this on every pod ADD, so no client library is loaded.
import { Agent as HttpAgent, request as httpRequest, type ClientRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { CompactedError, DatastoreError, UnavailableError } from '../api.js';

export interface EtcdTransportOptions {
  /** `http(s)://host:port`; an entry may hold a comma-separated list. */
  endpoints: string[];
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Per-attempt request timeout in ms (default 5000). */
  timeoutMs?: number;
}

/** gRPC status codes the gateway returns in `code`. */
const GRPC_DEADLINE_EXCEEDED = 4;
const GRPC_OUT_OF_RANGE = 11;
const GRPC_UNAVAILABLE = 14;

/** Where a failed attempt got to: before the request reached etcd, or after it may have. */
type Phase = 'connect' | 'sent';

class AttemptError extends Error {
  constructor(
    message: string,
    readonly phase: Phase,
  ) {
    super(message);
  }
}

function readPem(file: string | undefined, what: string): Buffer | undefined {
  if (!file) return undefined;
  try {
    return readFileSync(file);
  } catch (e) {
    throw new DatastoreError(`cannot read etcd ${what} ${file}: ${(e as Error).message}`);
  }
}

export function parseEndpoints(list: string[]): URL[] {
  const out: URL[] = [];
  for (const e of list.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean)) {
    let u: URL;
    try {
      u = new URL(e);
    } catch {
      throw new DatastoreError(`invalid etcd endpoint ${JSON.stringify(e)}: expected http(s)://host:port`);
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      throw new DatastoreError(`invalid etcd endpoint ${JSON.stringify(e)}: scheme must be http or https`);
    }
    out.push(u);
  }
  if (out.length === 0) throw new DatastoreError('no etcd endpoints configured');
  return out;
}

/**
 * A readable reason for a TLS failure, or null if `e` is not one. The server rejecting our
 * certificate shows up as an alert during or right after the handshake; our side rejecting the
 * server's certificate as a verification error code.
 */
export function tlsFailure(e: NodeJS.ErrnoException): string | null {
  const code = e.code ?? '';
  if (/ALERT_BAD_CERTIFICATE|ALERT_CERTIFICATE_REQUIRED|ALERT_UNKNOWN_CA|ALERT_CERTIFICATE_UNKNOWN|ALERT_HANDSHAKE_FAILURE/.test(code)) {
    return 'TLS handshake refused by etcd: client certificate missing or not signed by a CA etcd trusts (check certFile/keyFile)';
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_|ERR_TLS_CERT_ALTNAME/.test(code)) {
    return `TLS: etcd's server certificate is not trusted: ${e.message} (check caFile)`;
  }
  if (/^ERR_SSL_|^ERR_TLS_/.test(code)) return `TLS failure: ${e.message.split('\n')[0]} (check caFile/certFile/keyFile)`;
  return null;
}

export class EtcdTransport {
  private readonly endpoints: URL[];
  private readonly httpAgent = new HttpAgent({ keepAlive: true });
  private readonly httpsAgent: HttpsAgent;
  private readonly timeoutMs: number;
  /** Index of the endpoint that answered last; tried first next time. */
  private current = 0;

  constructor(opts: EtcdTransportOptions) {
    this.endpoints = parseEndpoints(opts.endpoints);
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.httpsAgent = new HttpsAgent({
      keepAlive: true,
      ca: readPem(opts.caFile, 'CA file'),
      cert: readPem(opts.certFile, 'certificate file'),
      key: readPem(opts.keyFile, 'key file'),
    });
  }

  get endpointList(): string[] {
    return this.endpoints.map((u) => u.origin);
  }

  /**
   * POSTs `body` to `path` and returns the parsed JSON answer. Endpoints are tried in turn when
   * the request never reached one (refused, unreachable, TLS failure, connect timeout); when it
   * failed after being sent or etcd answered "unavailable", only `idempotent` requests move on,
   * since a write may have been applied.
   */
  async call<T>(path: string, body: unknown, idempotent: boolean): Promise<T> {
    const payload = JSON.stringify(body);
    const failures: string[] = [];
    for (let i = 0; i < this.endpoints.length; i++) {
      const idx = (this.current + i) % this.endpoints.length;
      const ep = this.endpoints[idx]!;
      try {
        const res = await this.attempt(ep, path, payload);
        this.current = idx;
        return decodeAnswer<T>(res.status, res.body, ep.origin, path);
      } catch (e) {
        // A member that answered "unavailable" (no leader, timed out): another may do for a read.
        if (e instanceof UnavailableError && idempotent) {
          failures.push(e.message);
          continue;
        }
        if (!(e instanceof AttemptError)) throw e;
        if (e.phase === 'sent' && !idempotent) {
          throw new UnavailableError(
            `etcd ${ep.origin}${path}: ${e.message} after the request was sent; it may or may not have been applied`,
          );
        }
        failures.push(`${ep.origin}: ${e.message}`);
      }
    }
    throw new UnavailableError(`etcd unavailable (${failures.join('; ')})`);
  }

  /** Opens a streaming POST (watch); resolves with the response once headers arrive. */
  async stream(path: string, body: unknown, signal: AbortSignal): Promise<{ res: IncomingMessage; endpoint: string }> {
    const payload = JSON.stringify(body);
    const failures: string[] = [];
    for (let i = 0; i < this.endpoints.length; i++) {
      const idx = (this.current + i) % this.endpoints.length;
      const ep = this.endpoints[idx]!;
      try {
        const res = await this.open(ep, path, payload, signal);
        if (res.statusCode !== 200) {
          const text = await readAll(res);
          return decodeAnswer<never>(res.statusCode ?? 0, text, ep.origin, path);
        }
        this.current = idx;
        return { res, endpoint: ep.origin };
      } catch (e) {
        if (!(e instanceof AttemptError)) throw e;
        if (signal.aborted) throw e;
        failures.push(`${ep.origin}: ${e.message}`);
      }
    }
    throw new UnavailableError(`etcd unavailable (${failures.join('; ')})`);
  }

  private async attempt(ep: URL, path: string, payload: string): Promise<{ status: number; body: Buffer }> {
    const ac = new AbortController();
    const res = await this.open(ep, path, payload, ac.signal, true);
    try {
      return { status: res.statusCode ?? 0, body: await readAll(res) };
    } catch (e) {
      throw new AttemptError(`response failed: ${(e as Error).message}`, 'sent');
    }
  }

  /**
   * One HTTP attempt. The timeout covers connecting and, if `timeoutBody`, the whole answer;
   * otherwise (streams) it ends when headers arrive. Aborting `signal` destroys the request at
   * any point, the response stream included.
   */
  private open(ep: URL, path: string, payload: string, signal: AbortSignal, timeoutBody = false): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const tls = ep.protocol === 'https:';
      const url = new URL(path, ep);
      const req: ClientRequest = (tls ? httpsRequest : httpRequest)(url, {
        method: 'POST',
        agent: tls ? this.httpsAgent : this.httpAgent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
      });
      let connected = false;
      let settled = false;
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        req.destroy(new Error(`no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const onAbort = () => req.destroy(new Error('aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      req.on('socket', (s) => {
        // A kept-alive socket is already connected; a new one counts once TCP (and TLS) is up.
        if (req.reusedSocket) connected = true;
        else s.once(tls ? 'secureConnect' : 'connect', () => (connected = true));
      });
      req.on('response', (res) => {
        settled = true;
        // Streams have no overall deadline, but aborting must still cut them.
        if (!timeoutBody) clearTimeout(timer);
        res.once('close', cleanup);
        resolve(res);
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        cleanup();
        if (settled) return; // the response stream reports its own error
        settled = true;
        const tlsReason = tlsFailure(err);
        if (tlsReason) {
          // The server never processed the request (handshake or certificate refused).
          reject(new AttemptError(tlsReason, 'connect'));
        } else if (!connected || (req.reusedSocket && err.code === 'ECONNRESET')) {
          // Not connected, or the server closed an idle kept-alive socket as we reused it:
          // in both cases etcd never saw the request.
          reject(new AttemptError(timedOut ? `connect timed out after ${this.timeoutMs} ms` : err.message, 'connect'));
        } else {
          reject(new AttemptError(err.message, 'sent'));
        }
      });
      req.end(payload);
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}

function readAll(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks)));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('connection closed mid-answer')));
    res.on('close', () => {
      if (!res.complete) reject(new Error('connection closed mid-answer'));
    });
  });
}

interface GatewayError {
  error?: string | { message?: string; grpc_code?: number; code?: number };
  message?: string;
  code?: number;
}

/** Maps a gateway error body (`{error, message, code}` with a gRPC code) to a datastore error. */
export function gatewayError(e: GatewayError, endpoint: string, what: string): DatastoreError {
  const inner = typeof e.error === 'object' ? e.error : undefined;
  const msg = e.message ?? inner?.message ?? (typeof e.error === 'string' ? e.error : JSON.stringify(e));
  const code = e.code ?? inner?.grpc_code ?? inner?.code;
  if (code === GRPC_OUT_OF_RANGE && /compacted/.test(msg)) return new CompactedError(`etcd ${endpoint} ${what}: ${msg}`);
  if (code === GRPC_UNAVAILABLE || code === GRPC_DEADLINE_EXCEEDED) {
    return new UnavailableError(`etcd ${endpoint} ${what}: ${msg}`);
  }
  return new DatastoreError(`etcd ${endpoint} ${what}: ${msg}`);
}

function decodeAnswer<T>(status: number, body: Buffer, endpoint: string, path: string): T {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw new UnavailableError(`etcd ${endpoint}${path}: HTTP ${status} with a body that is not JSON: ${body.toString('utf8', 0, 200)}`);
  }
  if (status !== 200) throw gatewayError(json as GatewayError, endpoint, `${path} (HTTP ${status})`);
  return json as T;
}
