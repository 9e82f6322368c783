// Profiles in the Kubernetes datastore: `kns.<ns>` from Namespaces, `ksa.<ns>.<sa>` from
// ServiceAccounts, and the synthetic `projectcalico-default-allow` (profile.ts). Read-only: every
// write is "operation not supported".
//
// Revisions. An item's revision is Calico's combined one: "<nsRV>/" for kns., "/<saRV>" for ksa.
// Lists take both resources at one resourceVersion R (the caller's, else the latest namespace list's)
// and the watch runs one Kubernetes watch per resource, so a list or event needs a revision too:
// * `revisions: 'combined'` (Calico's form): a list's revision is "<nsListRV>/<saListRV>", and each
//   event is stamped with the latest pair seen, e.g. "120/133"; watch accepts such a pair.
// * `revisions: 'single'` (the default, what the Kubernetes backend's multi-kind lists and watches
//   need): a list's revision is R and an event's its object's resourceVersion. Namespaces and
//   ServiceAccounts share one etcd, so one integer resumes both watches.
// watch accepts either form as afterRevision.
import type { KVPair, ListResult, WatchEvent, WatchOptions } from '../../api.js';
import { parseResourceKey, resourceKey, resourcePrefix } from '../../keys.js';
import type { KubeClient } from '../client.js';
import type { KindHandler, KindHandlerFactory } from '../handler.js';
import { OperationNotSupportedError } from './errors.js';
import type { K8sNamespace, K8sServiceAccount } from './k8s-objects.js';
import {
  defaultAllowProfile,
  joinProfileRevisions,
  profileFromNamespace,
  profileFromServiceAccount,
  profileSource,
  splitProfileRevision,
} from './profile.js';
import { CompactedError, DatastoreError } from '../../api.js';
import { encodeValue, EventQueue, Source } from './source.js';

const PREFIX = resourcePrefix('Profile');

export interface ProfileHandlerOptions {
  /** How list and watch revisions are written (see the file comment). Default 'single'. */
  revisions?: 'single' | 'combined';
  /** Namespaces / service accounts per list page (default 500). */
  pageSize?: number;
}

const key = (name: string) => resourceKey('Profile', name);

function defaultAllowPair(): KVPair {
  const p = defaultAllowProfile();
  return { key: key(p.metadata.name), value: encodeValue(p), revision: '' };
}

export class ProfileHandler implements KindHandler {
  readonly prefix = PREFIX;
  private readonly namespaces: Source<K8sNamespace>;
  private readonly serviceAccounts: Source<K8sServiceAccount>;

  constructor(
    client: KubeClient,
    private readonly opts: ProfileHandlerOptions = {},
  ) {
    this.namespaces = new Source<K8sNamespace>(client, {
      resource: 'namespaces',
      path: () => '/api/v1/namespaces',
      pageSize: opts.pageSize,
      convert: (ns) => {
        const p = profileFromNamespace(ns);
        return { key: key(p.metadata.name), value: encodeValue(p) };
      },
    });
    this.serviceAccounts = new Source<K8sServiceAccount>(client, {
      resource: 'serviceaccounts',
      path: () => '/api/v1/serviceaccounts',
      pageSize: opts.pageSize,
      convert: (sa) => {
        const p = profileFromServiceAccount(sa);
        return { key: key(p.metadata.name), value: encodeValue(p) };
      },
    });
  }

  private combined(): boolean {
    return this.opts.revisions === 'combined';
  }

  async get(k: string): Promise<KVPair | null> {
    const r = parseResourceKey(k);
    const src = r && r.plural === 'profiles' && r.namespace === undefined ? profileSource(r.name) : null;
    if (!src) return null;
    if (src.kind === 'default-allow') return defaultAllowPair();
    if (src.kind === 'namespace') {
      const ns = await this.namespaces.read(`/api/v1/namespaces/${encodeURIComponent(src.namespace)}`, k);
      return ns ? { key: k, value: encodeValue(profileFromNamespace(ns)), revision: joinProfileRevisions(ns.metadata?.resourceVersion ?? '', '') } : null;
    }
    const sa = await this.serviceAccounts.read(
      `/api/v1/namespaces/${encodeURIComponent(src.namespace)}/serviceaccounts/${encodeURIComponent(src.serviceAccount)}`,
      k,
    );
    return sa ? { key: k, value: encodeValue(profileFromServiceAccount(sa)), revision: joinProfileRevisions('', sa.metadata?.resourceVersion ?? '') } : null;
  }

  async list(prefix: string, opts: { revision?: string } = {}): Promise<ListResult> {
    // One snapshot: namespaces at R (given, or the latest), service accounts at exactly R.
    const nsList = await this.namespaces.list(prefix, undefined, opts.revision);
    const at = opts.revision ?? nsList.revision;
    const saList = await this.serviceAccounts.list(prefix, undefined, at);
    const items = [...nsList.items.map((kv) => ({ ...kv, revision: joinProfileRevisions(kv.revision, '') }))];
    items.push(...saList.items.map((kv) => ({ ...kv, revision: joinProfileRevisions('', kv.revision) })));
    const da = defaultAllowPair();
    if (da.key.startsWith(prefix)) items.push(da);
    items.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
    return { items, revision: this.combined() ? joinProfileRevisions(nsList.revision, saList.revision) : at };
  }

  private refuse(op: string, k: string): never {
    throw new OperationNotSupportedError(op, k, 'Profiles are derived from Namespaces and ServiceAccounts in the Kubernetes datastore');
  }
  async create(k: string, ..._rest: string[]): Promise<KVPair> {
    this.refuse('Create', k);
  }
  async update(k: string, ..._rest: string[]): Promise<KVPair> {
    this.refuse('Update', k);
  }
  async apply(k: string, ..._rest: string[]): Promise<KVPair> {
    this.refuse('Apply', k);
  }
  async delete(k: string, ..._rest: string[]): Promise<KVPair> {
    this.refuse('Delete', k);
  }

  watch(prefix: string, opts: WatchOptions = {}): AsyncIterable<WatchEvent> {
    return this.watchGen(prefix, opts);
  }

  private async *watchGen(prefix: string, opts: WatchOptions): AsyncGenerator<WatchEvent> {
    if (opts.signal?.aborted) return;
    let nsFrom: string | undefined;
    let saFrom: string | undefined;
    if (opts.afterRevision?.includes('/')) {
      const s = splitProfileRevision(opts.afterRevision);
      nsFrom = s.nsRev || undefined;
      saFrom = s.saRev || undefined;
    } else if (opts.afterRevision !== undefined && opts.afterRevision !== '' && opts.afterRevision !== '0') {
      nsFrom = saFrom = opts.afterRevision;
    }
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const q = new EventQueue<WatchEvent>();
    try {
      const tooOld = (e: unknown) => {
        throw e instanceof DatastoreError && !(e instanceof CompactedError) && /too old|expired|compacted/i.test(e.message) ? new CompactedError(e.message) : e;
      };
      const nsSeed = await this.namespaces.list(prefix, undefined, nsFrom).catch(tooOld);
      const saSeed = await this.serviceAccounts.list(prefix, undefined, saFrom).catch(tooOld);
      // The latest revision of each side, stamped on every event in combined mode.
      let nsRev = nsFrom ?? nsSeed.revision;
      let saRev = saFrom ?? saSeed.revision;
      let running = 2;
      const done = () => {
        if (--running === 0) q.end();
      };
      const stamp = (side: 'ns' | 'sa') => (e: WatchEvent) => {
        if (side === 'ns') nsRev = e.revision;
        else saRev = e.revision;
        q.push(this.combined() ? { ...e, revision: joinProfileRevisions(nsRev, saRev) } : e);
      };
      const values = (s: { items: KVPair[] }) => new Map(s.items.map((kv) => [kv.key, kv.value]));
      for (const [src, seed, from, side] of [
        [this.namespaces, nsSeed, nsRev, 'ns'],
        [this.serviceAccounts, saSeed, saRev, 'sa'],
      ] as const) {
        (src as Source<K8sNamespace>).watch(prefix, undefined, from, values(seed), ac.signal, stamp(side)).then(done, (e) => {
          q.fail(e);
          ac.abort();
        });
      }
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
}

/** Registers the Profile kind with the Kubernetes backend. */
export function profileHandler(opts: ProfileHandlerOptions = {}): KindHandlerFactory {
  return (client) => new ProfileHandler(client, opts);
}
