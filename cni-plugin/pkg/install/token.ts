// The CNI plugin's credentials: a TokenRequest for ServiceAccount tortie-cni-plugin (Calico v3.26+'s
// calico-cni-plugin), written into the CNI kubeconfig atomically with mode 0600; and the refresher
// the node agent runs so the token never expires on disk (Calico's `calico-node -monitor-token`, the
// fix for "Unauthorized" after the copied token's lifetime, landscape.md P5).
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { KubeClient } from '../../../libcalico-go/lib/backend/kubernetes/client.js';
import { CNI_TOKEN_SECONDS, kubeconfigToken, refreshDelayMs, tokenExpiry, tokenRequestBody, tokenRequestPath, withToken } from './render.js';

/** Writes `data` to `path` through a temporary file in the same directory and a rename: readers see the old or the new file, never a part. */
export function writeFileAtomic(path: string, data: string | Buffer, mode: number): void {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    const fd = openSync(tmp, 'wx', mode);
    try {
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, mode);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

export interface IssuedToken {
  token: string;
  /** Expiry, seconds since the epoch. */
  exp: number;
}

/** Asks the API for a token of ServiceAccount `namespace/name` (TokenRequest, `seconds` long). */
export async function requestToken(client: KubeClient, namespace: string, name: string, seconds = CNI_TOKEN_SECONDS): Promise<IssuedToken> {
  const r = await client.request<{ status?: { token?: string; expirationTimestamp?: string } }>('POST', tokenRequestPath(namespace, name), {
    body: tokenRequestBody(seconds),
    resource: 'serviceaccounts/token',
  });
  const token = r.status?.token;
  if (!token) throw new Error(`TokenRequest for ServiceAccount ${namespace}/${name} returned no token`);
  const exp = tokenExpiry(token) ?? (r.status?.expirationTimestamp ? Math.floor(Date.parse(r.status.expirationTimestamp) / 1000) : NaN);
  if (!Number.isFinite(exp)) throw new Error(`TokenRequest for ServiceAccount ${namespace}/${name} returned a token without an expiry`);
  return { token, exp };
}

export interface TokenRefresherOptions {
  /** The CNI kubeconfig to keep fresh (written by tortie-install-cni). */
  kubeconfigFile: string;
  namespace: string;
  serviceAccount: string;
  /** Issues a token (default: requestToken with the agent's client). */
  issue: () => Promise<IssuedToken>;
  log: { info(m: string): void; warn(m: string): void };
  now?: () => number;
  random?: () => number;
  /** Waits `ms` (default setTimeout); resolves early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Retry delay after a failure (default 5 s, as Calico). */
  retryMs?: number;
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref?.();
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/**
 * Keeps the token in the CNI kubeconfig valid: when a quarter (plus jitter) of its remaining life
 * has passed, it asks for a new one and rewrites the file atomically (0600). A missing file is waited
 * for (install-cni writes it); a failed request is retried every few seconds and logged.
 */
export class CniTokenRefresher {
  private readonly ac = new AbortController();
  private loop?: Promise<void>;
  /** Tokens written (for tests and metrics). */
  refreshes = 0;
  lastError?: string;

  constructor(private readonly o: TokenRefresherOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.loop;
  }

  /** One step: refreshes when due; returns ms until the next check. */
  async step(): Promise<number> {
    const now = (this.o.now ?? Date.now)();
    let text: string;
    try {
      text = readFileSync(this.o.kubeconfigFile, 'utf8');
    } catch {
      return this.o.retryMs ?? 5000; // not installed yet
    }
    const current = kubeconfigToken(text);
    const exp = current ? tokenExpiry(current) : undefined;
    // The next refresh is due a quarter (plus jitter) into what remained at the last write: follow
    // Calico and compute it from the token's expiry, checking again at that point.
    if (exp !== undefined && this.dueAt !== undefined && this.dueFor === current && now < this.dueAt) return this.dueAt - now;
    if (exp !== undefined && this.dueFor !== current) {
      // A token we did not write (install-cni's): schedule from its remaining life.
      this.dueFor = current;
      this.dueAt = now + refreshDelayMs(exp, now, this.o.random);
      if (exp * 1000 - now > 60_000) return this.dueAt - now;
    }
    try {
      const t = await this.o.issue();
      writeFileAtomic(this.o.kubeconfigFile, withToken(text, t.token), 0o600);
      this.refreshes++;
      this.lastError = undefined;
      this.dueFor = t.token;
      this.dueAt = now + refreshDelayMs(t.exp, now, this.o.random);
      this.o.log.info(
        `Refreshed the CNI token (ServiceAccount ${this.o.namespace}/${this.o.serviceAccount}) in ${this.o.kubeconfigFile}: valid until ${new Date(t.exp * 1000).toISOString()}, next refresh in ${Math.round((this.dueAt - now) / 1000)} s`,
      );
      return this.dueAt - now;
    } catch (e) {
      this.lastError = (e as Error).message;
      this.o.log.warn(`Cannot refresh the CNI token in ${this.o.kubeconfigFile}: ${this.lastError}; retrying`);
      return this.o.retryMs ?? 5000;
    }
  }

  private dueAt?: number;
  private dueFor?: string;

  private async run(): Promise<void> {
    const sleep = this.o.sleep ?? defaultSleep;
    while (!this.ac.signal.aborted) {
      const ms = await this.step();
      if (this.ac.signal.aborted) break;
      await sleep(ms, this.ac.signal);
    }
  }
}
