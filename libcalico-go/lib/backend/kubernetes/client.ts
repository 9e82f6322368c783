// The connection to the Kubernetes API: configuration and credentials from the official
// @kubernetes/client-node (its KubeConfig reads kubeconfig files, in-cluster service-account
// configuration, client certificates, tokens and exec plugins), requests over node:https with the
// TLS options KubeConfig gives (applyToHTTPSOptions).
//
// Why not client-node's generated CustomObjectsApi: Calico's objects are custom resources, so the
// typed API is untyped for them anyway, and the backend needs what that layer hides — the HTTP
// status and Status reason of every answer (to tell a missing object from a missing CRD, a stale
// resourceVersion from an existing name), a watch stream it can abort and resume by
// resourceVersion, and one keep-alive connection pool. KubeConfig is the part worth reusing.
//
// @kubernetes/client-node is imported only when a Kubernetes backend is opened (loadKubeClient),
// never at module load, so the other datastores and the exec'd tortie-ipam on them do not pay for it.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import { createInterface } from 'node:readline';
import {
  AlreadyExistsError,
  CompactedError,
  ConflictError,
  DatastoreError,
  NotFoundError,
  UnavailableError,
} from '../api.js';

/** How to reach the API server (calicoctl's CalicoAPIConfig kubernetes settings). */
export interface KubeConnectionConfig {
  /** A kubeconfig file (KUBECONFIG / spec.kubeconfig / conflist kubernetes.kubeconfig). */
  kubeconfig?: string;
  /** API server URL (K8S_API_ENDPOINT / spec.k8sAPIEndpoint), used when no kubeconfig is given. */
  apiEndpoint?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Bearer token (K8S_API_TOKEN / spec.k8sAPIToken). */
  token?: string;
  /** Environment for in-cluster configuration (default process.env). */
  env?: Record<string, string | undefined>;
  /** Service-account directory for in-cluster configuration (default /var/run/secrets/kubernetes.io/serviceaccount). */
  serviceAccountDir?: string;
}

/** The API refused the caller (401/403): names the verb and resource. */
export class UnauthorizedError extends DatastoreError {}

/** A CRD the backend needs is not installed. */
export class MissingCRDError extends DatastoreError {}

/** Invalid connection configuration (unreadable or inconsistent kubeconfig, missing in-cluster files). */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

export interface RequestOptions {
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** Content type of a PATCH body. */
  contentType?: string;
  /** The datastore key this request serves: set on every error so callers can tell which. */
  key?: string;
  /** `<plural>.<group>` for error messages, e.g. `ipamblocks.crd.projectcalico.org`. */
  resource?: string;
}

export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; group?: string; causes?: { message?: string; field?: string }[] };
}

export interface RawWatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: Record<string, unknown>;
}

const VERBS: Record<string, string> = { GET: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

export class KubeClient {
  private readonly agent: https.Agent | http.Agent;
  private closed = false;
  private readonly active = new Set<http.ClientRequest>();
  /** Requests made (for measurements). */
  requests = 0;

  constructor(
    readonly server: string,
    private readonly tls: https.RequestOptions,
    /** Headers (Authorization) to add; refreshed per request for exec/OIDC users. */
    private readonly authHeaders: () => Promise<Record<string, string>>,
  ) {
    const u = new URL(server);
    this.agent = u.protocol === 'https:' ? new https.Agent({ keepAlive: true, maxSockets: 64, ...(tls as https.AgentOptions) }) : new http.Agent({ keepAlive: true, maxSockets: 64 });
  }

  private url(path: string, query?: Record<string, string | undefined>): URL {
    const base = this.server.replace(/\/+$/, '');
    const u = new URL(base + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) u.searchParams.set(k, v);
    return u;
  }

  private async open(method: string, u: URL, headers: Record<string, string>, signal?: AbortSignal): Promise<http.ClientRequest> {
    if (this.closed) throw new UnavailableError('Kubernetes client is closed');
    const auth = await this.authHeaders();
    const mod = u.protocol === 'https:' ? https : http;
    this.requests++;
    const req = mod.request(u, { method, agent: this.agent, headers: { Accept: 'application/json', ...auth, ...headers }, signal });
    this.active.add(req);
    req.once('close', () => this.active.delete(req));
    return req;
  }

  /** One request; the parsed JSON answer on 2xx, else the mapped DatastoreError. */
  async request<T = Record<string, unknown>>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
    const u = this.url(path, opts.query);
    const body = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const headers: Record<string, string> = {};
    if (body !== undefined) {
      headers['Content-Type'] = opts.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      this.open(method, u, headers)
        .then((req) => {
          req.on('response', (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
            res.on('error', (e) => reject(this.unreachable(e, opts.key)));
          });
          req.on('error', (e) => reject(this.unreachable(e, opts.key)));
          req.end(body);
        })
        .catch(reject);
    });
    if (status >= 200 && status < 300) return (text ? JSON.parse(text) : {}) as T;
    throw this.statusError(method, path, status, text, opts);
  }

  /**
   * A watch stream: the API's events one by one until the server ends it (returns), the signal
   * aborts it (returns), or it fails (throws the mapped error).
   */
  async *watch(path: string, query: Record<string, string | undefined>, signal?: AbortSignal, opts: RequestOptions = {}): AsyncGenerator<RawWatchEvent> {
    if (signal?.aborted) return;
    const u = this.url(path, { ...query, watch: 'true', allowWatchBookmarks: 'false' });
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    let res: http.IncomingMessage;
    try {
      res = await new Promise<http.IncomingMessage>((resolve, reject) => {
        this.open('GET', u, {}, ac.signal)
          .then((req) => {
            req.on('response', resolve);
            req.on('error', (e) => reject(e));
            req.end();
          })
          .catch(reject);
      });
    } catch (e) {
      signal?.removeEventListener('abort', onAbort);
      if (ac.signal.aborted) return;
      throw this.unreachable(e as Error, opts.key);
    }
    try {
      const status = res.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        const chunks: Buffer[] = [];
        for await (const c of res) chunks.push(c as Buffer);
        throw this.statusError('WATCH', path, status, Buffer.concat(chunks).toString('utf8'), opts);
      }
      const lines = createInterface({ input: res, crlfDelay: Infinity });
      try {
        for await (const line of lines) {
          if (!line.trim()) continue;
          yield JSON.parse(line) as RawWatchEvent;
        }
      } catch (e) {
        if (ac.signal.aborted || this.closed) return;
        throw this.unreachable(e as Error, opts.key);
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      res.destroy();
    }
  }

  private unreachable(e: Error, key?: string): DatastoreError {
    if (e instanceof DatastoreError) return e;
    const code = (e as NodeJS.ErrnoException).code;
    return new UnavailableError(`Kubernetes API server ${this.server} unreachable: ${code ? `${code} ` : ''}${e.message}`, key);
  }

  /** Maps an HTTP error status to Tortie's error classes. */
  statusError(method: string, path: string, status: number, text: string, opts: RequestOptions): DatastoreError {
    let st: KubeStatus = {};
    try {
      st = JSON.parse(text) as KubeStatus;
    } catch {
      st = { message: text.trim() };
    }
    const key = opts.key;
    const what = key ? `${key}: ` : '';
    const resource = opts.resource ?? resourceOfPath(path);
    const verb = method === 'WATCH' ? 'watch' : method === 'GET' && !opts.key?.length ? 'list' : (VERBS[method] ?? method.toLowerCase());
    const msg = st.message ?? `HTTP ${status}`;
    switch (status) {
      case 401:
        return new UnauthorizedError(`${what}unauthorized: the Kubernetes API server ${this.server} did not accept the credentials (${verb} ${resource}): ${msg}`, key);
      case 403:
        return new UnauthorizedError(`${what}forbidden: cannot ${verb} ${resource}: ${msg}`, key);
      case 404:
        if (st.reason === 'NotFound' && st.details?.name !== undefined) return new NotFoundError(`${what}not found (${msg})`, key);
        return new MissingCRDError(
          `${what}the Kubernetes API has no ${resource} (${msg}): the CRD ${resource} is not installed; apply manifests/crds.yaml (kubectl apply -f manifests/crds.yaml)`,
          key,
        );
      case 409:
        if (st.reason === 'AlreadyExists') return new AlreadyExistsError(`${what}already exists (${msg})`, key);
        return new ConflictError(`${what}update conflict (${msg})`, key);
      case 410:
        return new CompactedError(`${what}resource version too old (${msg}); re-list`, key);
      case 429:
      case 500:
      case 502:
      case 503:
      case 504:
        return new UnavailableError(`${what}Kubernetes API server ${this.server} answered ${status} to ${verb} ${resource}: ${msg}`, key);
      default:
        return new DatastoreError(`${what}Kubernetes API server refused ${verb} ${resource} (${status}${st.reason ? ` ${st.reason}` : ''}): ${msg}`, key);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const r of this.active) r.destroy();
    this.active.clear();
    this.agent.destroy();
  }
}

/** `ipamblocks.crd.projectcalico.org` from `/apis/crd.projectcalico.org/v1/ipamblocks/x`. */
export function resourceOfPath(path: string): string {
  const p = path.split('?')[0].split('/').filter(Boolean);
  if (p[0] === 'apis') {
    const group = p[1];
    let rest = p.slice(3);
    if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
    return `${rest[0]}.${group}`;
  }
  if (p[0] === 'api') {
    let rest = p.slice(2);
    if (rest[0] === 'namespaces' && rest.length >= 3) rest = rest.slice(2);
    return rest[0] ?? 'api';
  }
  return path;
}

/**
 * Builds a client as calicoctl chooses its connection: a kubeconfig file when given; else an API
 * endpoint with certificate/token settings; else in-cluster configuration (service-account token and
 * KUBERNETES_SERVICE_HOST/PORT). Every failure names the file or variable and the problem.
 */
export async function loadKubeClient(cfg: KubeConnectionConfig): Promise<KubeClient> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (cfg.kubeconfig) {
    const file = cfg.kubeconfig;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (e) {
      throw new KubeConfigError(`kubeconfig ${file}: cannot read it: ${(e as Error).message}`);
    }
    try {
      kc.loadFromString(text);
    } catch (e) {
      throw new KubeConfigError(`kubeconfig ${file}: invalid: ${(e as Error).message}`);
    }
    const ctx = kc.getCurrentContext();
    if (!ctx) throw new KubeConfigError(`kubeconfig ${file}: no current-context set`);
    if (!kc.getContextObject(ctx)) throw new KubeConfigError(`kubeconfig ${file}: current-context ${JSON.stringify(ctx)} is not among its contexts`);
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new KubeConfigError(`kubeconfig ${file}: context ${JSON.stringify(ctx)} names no cluster that exists in the file`);
    if (!cluster.server) throw new KubeConfigError(`kubeconfig ${file}: cluster ${JSON.stringify(cluster.name)} has no server`);
    try {
      new URL(cluster.server);
    } catch {
      throw new KubeConfigError(`kubeconfig ${file}: cluster ${JSON.stringify(cluster.name)} server ${JSON.stringify(cluster.server)} is not a URL`);
    }
    // Relative certificate paths in a kubeconfig are relative to the file.
    return fromKubeConfig(kc, `kubeconfig ${file}`);
  }
  if (cfg.apiEndpoint) {
    try {
      new URL(cfg.apiEndpoint);
    } catch {
      throw new KubeConfigError(`Kubernetes API endpoint ${JSON.stringify(cfg.apiEndpoint)} is not a URL`);
    }
    kc.loadFromClusterAndUser(
      { name: 'cluster', server: cfg.apiEndpoint, caFile: cfg.caFile, skipTLSVerify: false },
      { name: 'user', certFile: cfg.certFile, keyFile: cfg.keyFile, token: cfg.token },
    );
    return fromKubeConfig(kc, `Kubernetes API endpoint ${cfg.apiEndpoint}`);
  }
  const env = cfg.env ?? process.env;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const dir = cfg.serviceAccountDir ?? '/var/run/secrets/kubernetes.io/serviceaccount';
  if (!host || !port) {
    throw new KubeConfigError(
      'no Kubernetes connection configured: set KUBECONFIG (or kubeconfig in the CalicoAPIConfig / conflist kubernetes.kubeconfig), or run in a pod (KUBERNETES_SERVICE_HOST/PORT are unset)',
    );
  }
  let token: string;
  try {
    token = readFileSync(`${dir}/token`, 'utf8').trim();
  } catch (e) {
    throw new KubeConfigError(`in-cluster configuration: cannot read the service-account token ${dir}/token: ${(e as Error).message}`);
  }
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  kc.loadFromClusterAndUser(
    { name: 'in-cluster', server, caFile: `${dir}/ca.crt`, skipTLSVerify: false },
    { name: 'service-account', token },
  );
  // The kubelet rotates the token file: read it again at most once a minute.
  let read = Date.now();
  let current = token;
  const tokenHeader = async () => {
    if (Date.now() - read > 60_000) {
      read = Date.now();
      try {
        current = readFileSync(`${dir}/token`, 'utf8').trim();
      } catch {
        // keep the last token
      }
    }
    return { Authorization: `Bearer ${current}` };
  };
  return fromKubeConfig(kc, 'in-cluster configuration', tokenHeader);
}

async function fromKubeConfig(
  kc: import('@kubernetes/client-node').KubeConfig,
  source: string,
  headerFn?: () => Promise<Record<string, string>>,
): Promise<KubeClient> {
  const cluster = kc.getCurrentCluster()!;
  const opts: https.RequestOptions = {};
  try {
    await kc.applyToHTTPSOptions(opts);
  } catch (e) {
    throw new KubeConfigError(`${source}: ${(e as Error).message}`);
  }
  const tls: https.RequestOptions = {};
  for (const k of ['ca', 'cert', 'key', 'rejectUnauthorized', 'servername'] as const) {
    if ((opts as Record<string, unknown>)[k] !== undefined) (tls as Record<string, unknown>)[k] = (opts as Record<string, unknown>)[k];
  }
  const staticHeaders = { ...((opts.headers as Record<string, string>) ?? {}) };
  const user = kc.getCurrentUser();
  const dynamic = !!(user?.exec || user?.authProvider);
  const authHeaders = headerFn ?? (async () => {
    // Users with exec plugins or auth providers get a fresh header each time; others a fixed one.
    if (!dynamic) return staticHeaders;
    const o: https.RequestOptions = {};
    try {
      await kc.applyToHTTPSOptions(o);
      return { ...((o.headers as Record<string, string>) ?? {}) };
    } catch {
      return staticHeaders;
    }
  });
  return new KubeClient(cluster.server, tls, authHeaders);
}
