// The connection to the Kubernetes API: kubeconfig parsing and credentials from the official
// @kubernetes/client-node, requests over node:https with the TLS options they give.
//
// Which parts of client-node, and why (bench/kdd-client-cost.ts, docs/benchmarks.md): its
// KubeConfig class statically imports the whole generated API (gen/index.js), which costs a fresh
// process about 0.5 s (median 489 ms, p90 563 ms on the project machine) — on top of Node's own
// ~70 ms, on every exec of tortie-ipam, i.e. every CNI ADD and DEL. The pieces that matter are
// cheap on their own: config_types.js (kubeconfig cluster/user/context parsing and validation,
// ~5 ms), exec_auth.js (exec credential plugins) and file_auth.js (token files). So a kubeconfig
// is read with those, and the certificate/CA/token options are applied as KubeConfig applies them
// (applyHTTPSOptions + applyAuthorizationHeader); only users with an auth-provider (OIDC, Azure,
// GCP) take the full KubeConfig. Proxies (proxy-url) are not supported: refused by name.
//
// Why not client-node's generated CustomObjectsApi: Calico's objects are custom resources, so the
// typed API is untyped for them anyway, and the backend needs what that layer hides — the HTTP
// status and Status reason of every answer (to tell a missing object from a missing CRD, a stale
// resourceVersion from an existing name), a watch stream it can abort and resume by
// resourceVersion, and one keep-alive connection pool. KubeConfig is the part worth reusing.
//
// @kubernetes/client-node is imported only when a Kubernetes backend is opened (loadKubeClient),
// never at module load, so the other datastores and the exec'd tortie-ipam on them do not pay for it.
import { dirname, isAbsolute, join as joinPath } from 'node:path';
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

const STALE_SOCKET = new Error('stale keep-alive socket');

const VERBS: Record<string, string> = { GET: 'get', POST: 'create', PUT: 'update', PATCH: 'patch', DELETE: 'delete' };

export class KubeClient {
  private readonly agent: https.Agent | http.Agent;
  private closed = false;
  private readonly active = new Set<http.ClientRequest>();
  /** Requests made (for measurements). */
  requests = 0;
  /** Per-request limit (not for watches), ms. */
  timeoutMs = 30_000;

  constructor(
    readonly server: string,
    tls: https.RequestOptions,
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
    const once = () =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        this.open(method, u, headers)
          .then((req) => {
            req.on('response', (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (c: Buffer) => chunks.push(c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
              res.on('error', (e) => reject(this.unreachable(e, opts.key)));
            });
            // An API server that accepts but never answers must not hang a CNI call.
            req.setTimeout(this.timeoutMs, () => req.destroy(Object.assign(new Error(`no answer within ${this.timeoutMs} ms`), { code: 'ETIMEDOUT' })));
            req.on('error', (e) => {
              // A kept-alive connection the server had just closed: the request never reached it.
              if (req.reusedSocket && (e as NodeJS.ErrnoException).code === 'ECONNRESET') reject(STALE_SOCKET);
              else reject(this.unreachable(e, opts.key));
            });
            req.end(body);
          })
          .catch(reject);
      });
    let answer: { status: number; text: string };
    try {
      answer = await once();
    } catch (e) {
      if (e !== STALE_SOCKET) throw e;
      answer = await once().catch((e2) => {
        throw e2 === STALE_SOCKET ? new UnavailableError(`Kubernetes API server ${this.server} closed the connection`, opts.key) : e2;
      });
    }
    const { status, text } = answer;
    if (status >= 200 && status < 300) return (text ? JSON.parse(text) : {}) as T;
    throw this.statusError(method, path, status, text, opts);
  }

  /**
   * A watch stream: the API's events one by one until the server ends it (returns), the signal
   * aborts it (returns), or it fails (throws the mapped error).
   */
  async *watch(path: string, query: Record<string, string | undefined>, signal?: AbortSignal, opts: RequestOptions = {}): AsyncGenerator<RawWatchEvent> {
    if (signal?.aborted) return;
    const u = this.url(path, { ...query, watch: 'true', allowWatchBookmarks: 'true' });
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
  const p = path.split('?')[0]!.split('/').filter(Boolean);
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

/** A kubeconfig cluster and user as client-node's config_types parses them. */
type KCluster = import('@kubernetes/client-node').Cluster;
type KUser = import('@kubernetes/client-node').User;

/**
 * Builds a client as calicoctl chooses its connection: a kubeconfig file when given; else an API
 * endpoint with certificate/token settings; else in-cluster configuration (service-account token and
 * KUBERNETES_SERVICE_HOST/PORT). Every failure names the file or variable and the problem.
 */
export async function loadKubeClient(cfg: KubeConnectionConfig): Promise<KubeClient> {
  if (cfg.kubeconfig) return fromKubeconfigFile(cfg.kubeconfig);
  if (cfg.apiEndpoint) {
    const source = `Kubernetes API endpoint ${cfg.apiEndpoint}`;
    try {
      new URL(cfg.apiEndpoint);
    } catch {
      throw new KubeConfigError(`Kubernetes API endpoint ${JSON.stringify(cfg.apiEndpoint)} is not a URL`);
    }
    const cluster = { name: 'cluster', server: cfg.apiEndpoint.replace(/\/$/, ''), caFile: cfg.caFile, skipTLSVerify: false } as KCluster;
    const user = { name: 'user', certFile: cfg.certFile, keyFile: cfg.keyFile, token: cfg.token } as KUser;
    return fromClusterAndUser(cluster, user, source);
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
  const cluster = { name: 'in-cluster', server, caFile: `${dir}/ca.crt`, skipTLSVerify: false } as KCluster;
  return fromClusterAndUser(cluster, { name: 'service-account' } as KUser, 'in-cluster configuration', tokenHeader);
}

async function fromKubeconfigFile(file: string): Promise<KubeClient> {
  const source = `kubeconfig ${file}`;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KubeConfigError(`${source}: cannot read it: ${(e as Error).message}`);
  }
  const { newClusters, newContexts, newUsers } = await import('@kubernetes/client-node/dist/config_types.js');
  // js-yaml, as client-node's KubeConfig.loadFromString (and ~10x cheaper to import than `yaml`).
  const { load: parseYaml } = await import('js-yaml');
  let clusters: KCluster[];
  let users: KUser[];
  let contexts: import('@kubernetes/client-node').Context[];
  let current: unknown;
  try {
    const doc = parseYaml(text) as Record<string, unknown> | null;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a YAML/JSON mapping');
    clusters = newClusters(doc.clusters);
    users = newUsers(doc.users);
    contexts = newContexts(doc.contexts);
    current = doc['current-context'];
  } catch (e) {
    throw new KubeConfigError(`${source}: invalid: ${(e as Error).message}`);
  }
  if (typeof current !== 'string' || !current) throw new KubeConfigError(`${source}: no current-context set`);
  const ctx = contexts.find((c) => c.name === current);
  if (!ctx) throw new KubeConfigError(`${source}: current-context ${JSON.stringify(current)} is not among its contexts`);
  const cluster = clusters.find((c) => c.name === ctx.cluster);
  if (!cluster) throw new KubeConfigError(`${source}: context ${JSON.stringify(current)} names no cluster that exists in the file`);
  try {
    new URL(cluster.server);
  } catch {
    throw new KubeConfigError(`${source}: cluster ${JSON.stringify(cluster.name)} server ${JSON.stringify(cluster.server)} is not a URL`);
  }
  const user = (ctx.user !== undefined ? users.find((u) => u.name === ctx.user) : undefined) ?? ({ name: '' } as KUser);
  if (ctx.user && !users.some((u) => u.name === ctx.user)) {
    throw new KubeConfigError(`${source}: context ${JSON.stringify(current)} names user ${JSON.stringify(ctx.user)}, which is not in the file`);
  }
  // As KubeConfig.loadFromFile: certificate paths are relative to the file's directory.
  const abs = (p: string | undefined) => (p && !isAbsolute(p) ? joinPath(dirname(file), p) : p);
  const c = { ...cluster, caFile: abs(cluster.caFile) } as KCluster;
  const u = { ...user, certFile: abs(user.certFile), keyFile: abs(user.keyFile) } as KUser;
  if (u.authProvider && !(u.authProvider as { config?: { tokenFile?: string } }).config?.tokenFile) {
    // OIDC / Azure / GCP auth providers: only the full KubeConfig knows them (slow to import).
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    const auth = async () => {
      const o: https.RequestOptions = {};
      await kc.applyToHTTPSOptions(o);
      return { ...((o.headers as Record<string, string>) ?? {}) };
    };
    return fromClusterAndUser(c, u, source, auth);
  }
  return fromClusterAndUser(c, u, source);
}

function readPEM(source: string, what: string, file: string | undefined, data: string | undefined): Buffer | undefined {
  if (file) {
    try {
      return readFileSync(file);
    } catch (e) {
      throw new KubeConfigError(`${source}: cannot read the ${what} ${file}: ${(e as Error).message}`);
    }
  }
  return data ? Buffer.from(data, 'base64') : undefined;
}

/** TLS and Authorization as client-node's KubeConfig applies them (applyHTTPSOptions, applyAuthorizationHeader). */
async function fromClusterAndUser(
  cluster: KCluster,
  user: KUser,
  source: string,
  headerFn?: () => Promise<Record<string, string>>,
): Promise<KubeClient> {
  if (cluster.proxyUrl) throw new KubeConfigError(`${source}: cluster ${JSON.stringify(cluster.name)} proxy-url is not supported by Tortie`);
  if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify) {
    throw new KubeConfigError(`${source}: server ${cluster.server} is plain HTTP; refused unless insecure-skip-tls-verify is set`);
  }
  const tls: https.RequestOptions = {};
  if (cluster.skipTLSVerify) tls.rejectUnauthorized = false;
  if (cluster.tlsServerName) tls.servername = cluster.tlsServerName;
  const ca = readPEM(source, 'certificate authority', cluster.caFile, cluster.caData);
  if (ca) tls.ca = ca;
  const cert = readPEM(source, 'client certificate', user.certFile, user.certData);
  if (cert) tls.cert = cert;
  const key = readPEM(source, 'client key', user.keyFile, user.keyData);
  if (key) tls.key = key;
  const fixed: Record<string, string> = {};
  if (user.impersonateUser) fixed['Impersonate-User'] = user.impersonateUser;
  if (user.token) fixed.Authorization = `Bearer ${user.token}`;
  let auth = headerFn;
  if (!auth && (user.exec || user.authProvider)) {
    const authenticator = user.exec
      ? new (await import('@kubernetes/client-node/dist/exec_auth.js')).ExecAuth()
      : new (await import('@kubernetes/client-node/dist/file_auth.js')).FileAuth();
    auth = async () => {
      const o: https.RequestOptions = { headers: {} };
      try {
        await authenticator.applyAuthentication(user, o);
      } catch (e) {
        throw new UnavailableError(`${source}: credentials of user ${JSON.stringify(user.name)}: ${(e as Error).message}`);
      }
      return { ...fixed, ...((o.headers as Record<string, string>) ?? {}) };
    };
  }
  const headers = auth ?? (async () => fixed);
  return new KubeClient(cluster.server, tls, async () => ({ ...fixed, ...(await headers()) }));
}
