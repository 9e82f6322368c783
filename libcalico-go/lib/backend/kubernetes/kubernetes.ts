// Backend `kubernetes`: the datastore contract (../api.ts) on the Kubernetes API, storing every
// CRD-backed kind exactly as Calico v3.29 does (mapping.ts) and handing the kinds Kubernetes
// derives (Nodes, Pods, Namespaces, NetworkPolicies) to KindHandlers (handler.ts).
//
// Revisions are Kubernetes resourceVersions. An object's resourceVersion is its KV revision; a
// list's resourceVersion is the list's revision; revision() is the resourceVersion of a quorum
// list (the API server's current etcd revision); watch(prefix, {afterRevision}) is a Kubernetes
// watch from that resourceVersion (410 Gone / "too old resource version" → CompactedError).
//
// Kubernetes calls resourceVersions opaque. All of Calico's CRDs and the core kinds of one cluster
// are stored in one etcd, whose revision counter they are, so this backend compares them as
// integers (BigInt) in exactly three places: `maxRevision` (the revision of a list or watch that
// spans several kinds), the watch's `afterRevision` filter (`newer`), and nowhere else. A cluster
// that splits resources over several etcds (--etcd-servers-overrides for crd.projectcalico.org)
// would break this; Calico's own multi-kind syncers avoid the question by keeping one revision
// per kind.
import {
  AlreadyExistsError,
  CompactedError,
  ConflictError,
  DatastoreError,
  NotFoundError,
  type Backend,
  type KVPair,
  type ListResult,
  type WatchEvent,
  type WatchOptions,
} from '../api.js';
import { type KubeClient, loadKubeClient, type KubeConnectionConfig } from './client.js';
import type { KindHandler, KindHandlerFactory } from './handler.js';
import {
  CRD_KINDS,
  DERIVED_PREFIXES,
  apiPath,
  crdName,
  fromObject,
  isSoftDeleted,
  prefixOverlaps,
  refOfKey,
  softDeleted,
  toObject,
  type CRDKind,
  type K8sObject,
  type ObjectRef,
} from './mapping.js';
import { EventQueue } from './event-queue.js';
import { isExpired, resyncEvents } from './resync.js';

export interface KubernetesBackendOptions extends KubeConnectionConfig {
  /** Handlers for the derived kinds (see handler.ts). */
  handlers?: KindHandlerFactory[];
  /** Items per page when listing (default 500). */
  pageSize?: number;
}

const REVISION = /^[1-9]\d*$/;

/** The larger of two resourceVersions, compared as integers (see the file comment). */
export function maxRevision(a: string, b: string): string {
  return BigInt(a) >= BigInt(b) ? a : b;
}

function newer(rev: string, than: string): boolean {
  return BigInt(rev) > BigInt(than);
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function checkRevision(key: string, revision: string): void {
  if (!REVISION.test(revision)) throw new DatastoreError(`${key}: invalid revision ${JSON.stringify(revision)}: must be a positive integer`, key);
}

interface ListPage {
  metadata: { resourceVersion: string; continue?: string };
  items: K8sObject[];
}


export class KubernetesBackend implements Backend {
  readonly type = 'kubernetes' as const;
  private readonly handlers: KindHandler[];
  private readonly watches = new Set<AbortController>();
  private closed = false;
  /** Watches re-listed after their resume point expired (410 Gone), for tests and measurements. */
  resyncs = 0;

  constructor(
    readonly client: KubeClient,
    factories: KindHandlerFactory[] = [],
    private readonly pageSize = 500,
  ) {
    this.handlers = factories.map((f) => f(client));
  }

  // ---- routing -----------------------------------------------------------------------------

  /** The handler for a derived key, or a DatastoreError when the kind has none yet. */
  private derived(key: string): KindHandler | null {
    for (const h of this.handlers) if (key.startsWith(h.prefix) && (!h.owns || h.owns(key))) return h;
    for (const d of DERIVED_PREFIXES) {
      if (!key.startsWith(d.prefix)) continue;
      // NetworkPolicies are Calico's own CRD unless the name is a Kubernetes NetworkPolicy's.
      if (d.prefix.endsWith('/networkpolicies/') && !/^[^/]+\/knp\.default\./.test(key.slice(d.prefix.length))) continue;
      throw this.notImplemented(d, key);
    }
    return null;
  }

  private notImplemented(d: (typeof DERIVED_PREFIXES)[number], key?: string): DatastoreError {
    return new DatastoreError(
      `${key ?? d.prefix}: ${d.what} is derived from ${d.from} in the Kubernetes datastore; not implemented yet`,
      key,
    );
  }

  private ref(key: string): ObjectRef {
    return refOfKey(key);
  }

  private opts(k: CRDKind, key?: string) {
    return { key, resource: crdName(k) };
  }

  /** Derived sources overlapping a prefix: their handlers, or an error for any without one. */
  private derivedFor(prefix: string): KindHandler[] {
    const hs = this.handlers.filter((h) => prefixOverlaps(prefix, h.prefix));
    for (const d of DERIVED_PREFIXES) {
      if (prefixOverlaps(prefix, d.prefix) && !hs.some((h) => h.prefix === d.prefix)) throw this.notImplemented(d);
    }
    return hs;
  }

  // ---- single objects ----------------------------------------------------------------------

  private async read(ref: ObjectRef, key: string): Promise<K8sObject | null> {
    try {
      return await this.client.request<K8sObject>('GET', apiPath(ref.kind, ref.namespace, ref.name), this.opts(ref.kind, key));
    } catch (e) {
      if (e instanceof NotFoundError) return null;
      throw e;
    }
  }

  private pair(k: CRDKind, key: string, obj: K8sObject): KVPair {
    const kv = fromObject(k, obj);
    return { key, value: kv?.value ?? '', revision: obj.metadata.resourceVersion! };
  }

  async get(key: string): Promise<KVPair | null> {
    const h = this.derived(key);
    if (h) return h.get(key);
    const ref = this.ref(key);
    const obj = await this.read(ref, key);
    if (!obj || isSoftDeleted(ref.kind, obj)) return null;
    return this.pair(ref.kind, key, obj);
  }

  async create(key: string, value: string): Promise<KVPair> {
    const h = this.derived(key);
    if (h) return h.create(key, value);
    const ref = this.ref(key);
    const obj = toObject(key, ref, value);
    const post = () => this.client.request<K8sObject>('POST', apiPath(ref.kind, ref.namespace), { ...this.opts(ref.kind, key), body: obj });
    try {
      return this.pair(ref.kind, key, await post());
    } catch (e) {
      if (e instanceof NotFoundError && ref.namespace !== undefined) {
        throw new DatastoreError(`${key}: namespace ${JSON.stringify(ref.namespace)} does not exist in the Kubernetes API`, key);
      }
      if (!(e instanceof AlreadyExistsError)) throw e;
      // A soft-deleted IPAM object left behind (its hard delete never happened) does not exist
      // for readers: remove it and create again.
      const old = await this.read(ref, key);
      if (!old || !isSoftDeleted(ref.kind, old)) throw new AlreadyExistsError(`${key}: already exists`, key);
      await this.hardDelete(ref, key, old).catch((err) => {
        if (!(err instanceof NotFoundError || err instanceof ConflictError)) throw err;
      });
      try {
        return this.pair(ref.kind, key, await post());
      } catch (e2) {
        if (e2 instanceof AlreadyExistsError) throw new AlreadyExistsError(`${key}: already exists`, key);
        throw e2;
      }
    }
  }

  async update(key: string, value: string, revision: string): Promise<KVPair> {
    const h = this.derived(key);
    if (h) return h.update(key, value, revision);
    checkRevision(key, revision);
    const ref = this.ref(key);
    const obj = toObject(key, ref, value, revision);
    try {
      const out = await this.client.request<K8sObject>('PUT', apiPath(ref.kind, ref.namespace, ref.name), { ...this.opts(ref.kind, key), body: obj });
      return this.pair(ref.kind, key, out);
    } catch (e) {
      if (e instanceof ConflictError) {
        // Kubernetes answers 409 both for a stale resourceVersion and for a soft-deleted object
        // being written at its old revision; either way the caller's view is stale.
        throw new ConflictError(`${key}: update conflict: revision ${revision} is not the latest`, key);
      }
      if (e instanceof NotFoundError) throw new NotFoundError(`${key}: not found`, key);
      throw e;
    }
  }

  async apply(key: string, value: string): Promise<KVPair> {
    const h = this.derived(key);
    if (h) return h.apply(key, value);
    // Calico's backend Apply: create, and on AlreadyExists update at the current revision
    // (custom resources refuse an update without metadata.resourceVersion).
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        return await this.create(key, value);
      } catch (e) {
        if (!(e instanceof AlreadyExistsError)) throw e;
      }
      const cur = await this.get(key);
      if (!cur) continue;
      try {
        return await this.update(key, value, cur.revision);
      } catch (e) {
        if (!(e instanceof ConflictError || e instanceof NotFoundError)) throw e;
      }
    }
    throw new ConflictError(`${key}: apply kept conflicting with other writers`, key);
  }

  private async hardDelete(ref: ObjectRef, key: string, obj: K8sObject): Promise<void> {
    await this.client.request('DELETE', apiPath(ref.kind, ref.namespace, ref.name), {
      ...this.opts(ref.kind, key),
      body: {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        preconditions: { uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion },
      },
    });
  }

  async delete(key: string, revision?: string): Promise<KVPair> {
    const h = this.derived(key);
    if (h) return h.delete(key, revision);
    if (revision !== undefined) return this.deleteOnce(key, revision);
    // Without a revision the delete is unconditional: an IPAM object's soft delete (a CAS on the
    // revision just read) that lost to another writer is tried again on the new state.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.deleteOnce(key, undefined);
      } catch (e) {
        if (!(e instanceof ConflictError) || attempt >= 20) throw e;
      }
    }
  }

  private async deleteOnce(key: string, revision: string | undefined): Promise<KVPair> {
    if (revision !== undefined) checkRevision(key, revision);
    const ref = this.ref(key);
    const k = ref.kind;
    // As Calico: read for the UID, then delete with it as a precondition (and with the caller's
    // revision, when given, as a second one).
    const cur = await this.read(ref, key);
    if (!cur || isSoftDeleted(k, cur)) throw new NotFoundError(`${key}: not found`, key);
    const old = this.pair(k, key, cur);
    if (revision !== undefined && revision !== cur.metadata.resourceVersion) {
      throw new ConflictError(`${key}: delete conflict: revision ${revision} is not the latest (${cur.metadata.resourceVersion})`, key);
    }
    if (k.codec !== 'resource') {
      // IPAM objects: soft delete first (a compare-and-swap on the revision, which readers then
      // treat as gone), then the hard delete with UID and revision preconditions.
      let marked: K8sObject;
      try {
        marked = await this.client.request<K8sObject>('PUT', apiPath(k, ref.namespace, ref.name), {
          ...this.opts(k, key),
          body: softDeleted(k, cur),
        });
      } catch (e) {
        if (e instanceof ConflictError) throw new ConflictError(`${key}: delete conflict: the object changed`, key);
        if (e instanceof NotFoundError) throw new NotFoundError(`${key}: not found`, key);
        throw e;
      }
      await this.hardDelete(ref, key, marked).catch((e) => {
        // Someone else finished the delete (or replaced the soft-deleted object): either way it is gone for us.
        if (!(e instanceof NotFoundError || e instanceof ConflictError)) throw e;
      });
      return old;
    }
    try {
      await this.client.request('DELETE', apiPath(k, ref.namespace, ref.name), {
        ...this.opts(k, key),
        body: {
          kind: 'DeleteOptions',
          apiVersion: 'v1',
          preconditions: { uid: cur.metadata.uid, ...(revision !== undefined ? { resourceVersion: revision } : {}) },
        },
      });
    } catch (e) {
      if (e instanceof NotFoundError) throw new NotFoundError(`${key}: not found`, key);
      if (e instanceof ConflictError) {
        if (/UID in precondition/i.test(e.message)) throw new NotFoundError(`${key}: not found (replaced by a new object)`, key);
        throw new ConflictError(`${key}: delete conflict: revision ${revision} is not the latest`, key);
      }
      throw e;
    }
    return old;
  }

  // ---- lists -------------------------------------------------------------------------------

  /** CRD kinds whose keys may start with `prefix`, and the API namespace to narrow to. */
  private kindsFor(prefix: string): { kind: CRDKind; namespace?: string }[] {
    const out: { kind: CRDKind; namespace?: string }[] = [];
    for (const kind of CRD_KINDS) {
      if (!prefixOverlaps(prefix, kind.keyPrefix)) continue;
      let namespace: string | undefined;
      if (kind.namespaced && prefix.startsWith(kind.keyPrefix)) {
        const rest = prefix.slice(kind.keyPrefix.length);
        const i = rest.indexOf('/');
        if (i > 0) namespace = rest.slice(0, i);
      }
      out.push({ kind, namespace });
    }
    return out;
  }

  /** Every live object of a kind as key/value pairs, at `revision` exactly when given. */
  private async listKind(kind: CRDKind, namespace: string | undefined, prefix: string, revision?: string): Promise<ListResult> {
    const items: KVPair[] = [];
    let cont: string | undefined;
    let rev = '';
    do {
      const q: Record<string, string | undefined> = { limit: String(this.pageSize), continue: cont };
      if (revision !== undefined && cont === undefined) {
        q.resourceVersion = revision;
        q.resourceVersionMatch = 'Exact';
      }
      const real = await this.client.request<ListPage>('GET', apiPath(kind, namespace), { resource: crdName(kind), query: q });
      if (!rev) rev = real.metadata.resourceVersion;
      for (const obj of real.items) {
        if (isSoftDeleted(kind, obj)) continue;
        const kv = fromObject(kind, obj);
        if (kv?.key.startsWith(prefix)) items.push({ key: kv.key, value: kv.value, revision: obj.metadata.resourceVersion! });
      }
      cont = real.metadata.continue || undefined;
    } while (cont);
    return { items, revision: rev };
  }

  async list(prefix: string): Promise<ListResult> {
    const hs = this.derivedFor(prefix);
    const kinds = this.kindsFor(prefix);
    const sources = kinds.length + hs.length;
    if (sources === 0) return { items: [], revision: await this.revision() };
    // One kind: its own consistent list. Several: one snapshot, every kind at the same revision.
    const at = sources > 1 ? await this.revision() : undefined;
    const parts = await Promise.all([
      ...kinds.map(({ kind, namespace }) => this.listKind(kind, namespace, prefix, at)),
      ...hs.map((h) => h.list(prefix, at !== undefined ? { revision: at } : undefined)),
    ]);
    const items = parts.flatMap((p) => p.items).sort((a, b) => byteOrder(a.key, b.key));
    const revision = parts.map((p) => p.revision).reduce(maxRevision);
    return { items, revision };
  }

  async revision(): Promise<string> {
    // A quorum list of one (usually tiny) kind: its resourceVersion is the current etcd revision.
    const k = CRD_KINDS.find((c) => c.crPlural === 'clusterinformations')!;
    const page = await this.client.request<ListPage>('GET', apiPath(k), { resource: crdName(k), query: { limit: '1' } });
    return page.metadata.resourceVersion;
  }

  // ---- watches -----------------------------------------------------------------------------

  watch(prefix: string, opts: WatchOptions = {}): AsyncIterable<WatchEvent> {
    return this.watchGen(prefix, opts);
  }

  private async *watchGen(prefix: string, opts: WatchOptions): AsyncGenerator<WatchEvent> {
    if (opts.signal?.aborted || this.closed) return;
    if (opts.afterRevision !== undefined) checkRevision(prefix, opts.afterRevision);
    const hs = this.derivedFor(prefix);
    const kinds = this.kindsFor(prefix);
    const ac = new AbortController();
    this.watches.add(ac);
    const onAbort = () => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const q = new EventQueue<WatchEvent>();
    try {
      const start = opts.afterRevision ?? (await this.revision());
      // The values at `start`, for prevValue (and a compacted `start` fails here at once).
      const seed = await Promise.all(kinds.map(({ kind, namespace }) => this.listKind(kind, namespace, prefix, start)));
      if (ac.signal.aborted) return;
      let running = kinds.length + hs.length;
      const done = () => {
        if (--running === 0) q.end();
      };
      kinds.forEach(({ kind, namespace }, i) => {
        const values = new Map(seed[i]!.items.map((kv) => [kv.key, kv.value]));
        this.watchKind(kind, namespace, prefix, start, values, ac.signal, q).then(done, (e) => {
          q.fail(e);
          ac.abort();
        });
      });
      for (const h of hs) {
        (async () => {
          for await (const e of h.watch(prefix, { afterRevision: start, signal: ac.signal })) q.push(e);
        })().then(done, (e) => {
          q.fail(e);
          ac.abort();
        });
      }
      if (running === 0) return;
      const onStop = () => q.end();
      ac.signal.addEventListener('abort', onStop, { once: true });
      for await (const e of q.drain()) {
        if (ac.signal.aborted) return;
        yield e;
      }
    } catch (e) {
      if (ac.signal.aborted && !(e instanceof CompactedError)) return;
      throw e;
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
      ac.abort();
      this.watches.delete(ac);
    }
  }

  /**
   * One kind's watch, until aborted or failed. The API server ends every watch stream after
   * --min-request-timeout (randomised); it is re-opened from the last revision the stream reported
   * (an event's, or a BOOKMARK's: bookmarks keep an idle kind's resume point fresh, as Calico asks
   * for them). When that revision has expired (410 Gone: compacted, or out of the watch cache's
   * window) the kind is listed again and the differences are reported (resync.ts), as Calico does.
   */
  private async watchKind(
    kind: CRDKind,
    namespace: string | undefined,
    prefix: string,
    start: string,
    values: Map<string, string>,
    signal: AbortSignal,
    q: EventQueue<WatchEvent>,
  ): Promise<void> {
    let from = start;
    while (!signal.aborted) {
      try {
        for await (const ev of this.client.watch(apiPath(kind, namespace), { resourceVersion: from }, signal, { resource: crdName(kind) })) {
          if (ev.type === 'ERROR') {
            const st = ev.object as { code?: number; message?: string; reason?: string };
            if (isExpired(st)) throw new CompactedError(`watch of ${crdName(kind)} from revision ${from}: ${st.message ?? 'too old resource version'}`);
            throw new DatastoreError(`watch of ${crdName(kind)}: ${st.message ?? JSON.stringify(st)}`);
          }
          const obj = ev.object as unknown as K8sObject;
          const rev = obj.metadata.resourceVersion!;
          // Only ever forward: a resume point never moves back (an older revision would repeat events).
          if (!newer(rev, from)) continue;
          from = rev;
          if (ev.type === 'BOOKMARK') continue;
          const kv = fromObject(kind, obj);
          if (!kv?.key.startsWith(prefix)) continue;
          const prev = values.get(kv.key);
          if (ev.type === 'DELETED' || isSoftDeleted(kind, obj)) {
            // A soft delete is the delete readers see; the hard delete after it is not news.
            if (prev === undefined) continue;
            values.delete(kv.key);
            q.push({ type: 'delete', key: kv.key, prevValue: prev, revision: rev });
            continue;
          }
          values.set(kv.key, kv.value);
          const e: WatchEvent = { type: 'put', key: kv.key, value: kv.value, revision: rev };
          if (prev !== undefined) e.prevValue = prev;
          q.push(e);
        }
      } catch (e) {
        if (!(e instanceof CompactedError) || signal.aborted) throw e;
        // The resume point expired while the stream was closed: re-list, report the differences.
        const l = await this.listKind(kind, namespace, prefix);
        if (signal.aborted) return;
        for (const ev of resyncEvents(values, l.items, l.revision)) q.push(ev);
        from = maxRevision(from, l.revision);
        this.resyncs++;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const ac of this.watches) ac.abort();
    this.watches.clear();
    await this.client.close();
  }
}

/** Opens the Kubernetes datastore. */
export async function openKubernetes(opts: KubernetesBackendOptions = {}): Promise<KubernetesBackend> {
  const client = await loadKubeClient(opts);
  return new KubernetesBackend(client, opts.handlers ?? [], opts.pageSize);
}
