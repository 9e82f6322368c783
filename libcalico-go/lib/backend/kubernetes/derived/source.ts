// One Kubernetes resource (pods, nodes, namespaces, …) seen as datastore keys: paged lists (at a
// given resourceVersion when asked), and watches from a resourceVersion that resume after the
// server ends them (re-listing, as Calico does, when the resume point has expired). Each object maps to at
// most one key; the caller's `convert` says which key and value (value null = the object gives no
// resource, e.g. a hostNetwork pod), so a change that makes an object stop giving a resource is
// seen as a delete of its key.
import { CompactedError, DatastoreError, NotFoundError, type KVPair, type ListResult, type WatchEvent } from '../../api.js';
import type { Resource } from '../../../apis/v3/resource.js';
import type { KubeClient } from '../client.js';
import type { K8sList, K8sObject } from './k8s-objects.js';
import { EventQueue } from '../event-queue.js';
import { isExpired, resyncEvents } from '../resync.js';

/** What an object gives: its key (null if it has none at all) and value (null if no resource now). */
export interface Converted {
  key: string | null;
  value: string | null;
}

export interface SourceSpec<T extends K8sObject> {
  /** `pods`, `networkpolicies.networking.k8s.io`: for messages. */
  resource: string;
  /** API path of the collection, in one namespace or all (`/api/v1/pods`, `/api/v1/namespaces/x/pods`). */
  path(namespace?: string): string;
  convert(obj: T): Converted;
  /** Objects per list page (default 500). */
  pageSize?: number;
}

const PAGE = 500;

/** The value stored for a derived resource: its JSON without metadata.resourceVersion. */
export function encodeValue(r: Resource): string {
  const { resourceVersion: _rv, ...metadata } = r.metadata;
  return JSON.stringify({ ...r, metadata });
}

/** A revision the Kubernetes API accepts as a resourceVersion (a positive integer). */
export function checkK8sRevision(rev: string, what: string): void {
  if (!/^[1-9]\d*$/.test(rev)) throw new DatastoreError(`${what}: invalid revision ${JSON.stringify(rev)}: must be a positive integer`);
}

export class Source<T extends K8sObject> {
  constructor(
    private readonly client: KubeClient,
    readonly spec: SourceSpec<T>,
  ) {}

  /** GET one object; null when it does not exist. */
  async read(path: string, key: string): Promise<T | null> {
    try {
      return await this.client.request<T>('GET', path, { key, resource: this.spec.resource });
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  /**
   * Every object's resource under `prefix`, sorted by key. With `revision`, the list is exactly at
   * that resourceVersion (one snapshot with other lists); without, the latest (a quorum read).
   */
  async list(prefix: string, namespace: string | undefined, revision?: string): Promise<ListResult & { objects: Map<string, T> }> {
    if (revision !== undefined) checkK8sRevision(revision, `list of ${this.spec.resource}`);
    const items: KVPair[] = [];
    const objects = new Map<string, T>();
    let cont: string | undefined;
    let rev = '';
    do {
      const query: Record<string, string | undefined> = { limit: String(this.spec.pageSize ?? PAGE), continue: cont };
      if (!cont && revision !== undefined) {
        query.resourceVersion = revision;
        query.resourceVersionMatch = 'Exact';
      }
      const page = await this.client.request<K8sList<T>>('GET', this.spec.path(namespace), { query, resource: this.spec.resource });
      if (!cont) rev = page.metadata?.resourceVersion ?? '';
      for (const obj of page.items) {
        const c = this.spec.convert(obj);
        if (c.key === null || c.value === null || !c.key.startsWith(prefix)) continue;
        items.push({ key: c.key, value: c.value, revision: obj.metadata?.resourceVersion ?? '' });
        objects.set(c.key, obj);
      }
      cont = page.metadata?.continue || undefined;
    } while (cont);
    items.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    return { items, revision: rev, objects };
  }

  /**
   * Events for keys under `prefix` after resourceVersion `from`, until `signal` aborts. `values`
   * holds the values at `from` (for prevValue and to know which deletes matter); it is kept up to date.
   * `onEvent` may stamp the revision (Profiles combine two sources).
   */
  async watch(
    prefix: string,
    namespace: string | undefined,
    from: string,
    values: Map<string, string>,
    signal: AbortSignal,
    push: (e: WatchEvent) => void,
  ): Promise<void> {
    let last = from;
    while (!signal.aborted) {
      try {
        for await (const ev of this.client.watch(this.spec.path(namespace), { resourceVersion: last }, signal, { resource: this.spec.resource })) {
          if (ev.type === 'ERROR') {
            const st = ev.object as { code?: number; message?: string; reason?: string };
            if (isExpired(st)) throw new CompactedError(`watch of ${this.spec.resource} from revision ${last}: ${st.message ?? 'too old resource version'}`);
            throw new DatastoreError(`watch of ${this.spec.resource}: ${st.message ?? JSON.stringify(st)}`);
          }
          const obj = ev.object as unknown as T;
          const rev = obj.metadata?.resourceVersion ?? last;
          // The resume point only moves forward; BOOKMARKs move it for a quiet resource.
          if (BigInt(rev) <= BigInt(last)) continue;
          last = rev;
          if (ev.type === 'BOOKMARK') continue;
          const c = this.spec.convert(obj);
          if (c.key === null || !c.key.startsWith(prefix)) continue;
          const prev = values.get(c.key);
          if (ev.type === 'DELETED' || c.value === null) {
            if (prev === undefined) continue;
            values.delete(c.key);
            push({ type: 'delete', key: c.key, prevValue: prev, revision: rev });
            continue;
          }
          if (prev === c.value) continue;
          values.set(c.key, c.value);
          const e: WatchEvent = { type: 'put', key: c.key, value: c.value, revision: rev };
          if (prev !== undefined) e.prevValue = prev;
          push(e);
        }
      } catch (e) {
        if (!(e instanceof CompactedError) || signal.aborted) throw e;
        // The resume point expired while the stream was closed (410 Gone): re-list and report the
        // differences, as Calico's watcher cache does (../resync.ts).
        const l = await this.list(prefix, namespace);
        if (signal.aborted) return;
        for (const ev of resyncEvents(values, l.items, l.revision)) push(ev);
        if (BigInt(l.revision) > BigInt(last)) last = l.revision;
      }
    }
  }
}

/**
 * The namespace a key prefix is limited to, when it names a whole one: for kind prefix
 * `…/workloadendpoints/`, `…/workloadendpoints/web/` and `…/workloadendpoints/web/node-k8s-` give
 * `web`; `…/workloadendpoints/we` and anything shorter than the kind prefix give undefined (all).
 */
export function namespaceOfPrefix(prefix: string, kindPrefix: string): string | undefined {
  if (!prefix.startsWith(kindPrefix)) return undefined;
  const rest = prefix.slice(kindPrefix.length);
  const slash = rest.indexOf('/');
  return slash > 0 ? rest.slice(0, slash) : undefined;
}

export { EventQueue };

/**
 * A Backend-style watch over one source: the values at the start revision (afterRevision, or the
 * latest) are listed first, so a compacted revision fails at once and deletes carry prevValue.
 */
export async function* watchSource<T extends K8sObject>(
  source: Source<T>,
  prefix: string,
  namespace: string | undefined,
  opts: { afterRevision?: string; signal?: AbortSignal },
): AsyncGenerator<WatchEvent> {
  if (opts.signal?.aborted) return;
  const ac = new AbortController();
  const onAbort = () => ac.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const q = new EventQueue<WatchEvent>();
  try {
    const seed = await source.list(prefix, namespace, opts.afterRevision).catch((e: unknown) => {
      // An Exact list of a revision etcd no longer has is "too old" like the watch would be.
      throw e instanceof CompactedError || !(e instanceof DatastoreError) || !/too old|expired|compacted/i.test(e.message)
        ? e
        : new CompactedError(e.message);
    });
    const values = new Map(seed.items.map((kv) => [kv.key, kv.value]));
    source.watch(prefix, namespace, opts.afterRevision ?? seed.revision, values, ac.signal, (e) => q.push(e)).then(
      () => q.end(),
      (e) => q.fail(e),
    );
    ac.signal.addEventListener('abort', () => q.end(), { once: true });
    for await (const e of q.drain()) {
      if (ac.signal.aborted) return;
      yield e;
    }
  } catch (e) {
    // Ended by the caller: no error. A failure of a source is thrown, whatever it is.
    if (opts.signal?.aborted) return;
    throw e;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    ac.abort();
  }
}
