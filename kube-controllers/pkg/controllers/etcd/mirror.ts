// Calico's etcd-mode controllers (namespace, serviceaccount, policy, workloadendpoint): Kubernetes
// objects read from the API, written to the Calico datastore (etcd) as Calico's kube-controllers
// write them. The conversions are the Kubernetes datastore's own (libcalico-go's derived kinds:
// profile.ts for `kns.<ns>` / `ksa.<ns>.<sa>`, knp.ts → policy/k8s.ts for `knp.default.<name>`,
// workloadendpoint.ts for a pod's endpoint labels), read through their KindHandlers, whose lists
// are paged and whose watches resume after the server ends them and re-list on 410 Gone.
//
// One loop per controller: list the Kubernetes side, reconcile every key (a full resync), then
// follow the watch, reconciling each changed key, until the resync period (the
// KubeControllersConfiguration's `controllers.<name>.reconcilerPeriod`, default 5 m) starts the
// next full resync. A full resync deletes the objects this controller owns (by name prefix) that
// no Kubernetes object gives any more, and nothing else. Any failure (API server or etcd down, a
// watch that cannot resume) ends the cycle: the controller is not ready with the reason, waits
// (0.5 s doubling to 5 s) and starts again with a full resync; the process never exits for it.
//
// Owning controllers (namespace, serviceaccount, policy) create, update and delete their objects.
// The workloadendpoint controller only updates endpoints the CNI plugin created (labels and
// service account of the pod); it never creates or deletes one.
import { CompactedError, type Backend, NotFoundError } from '../../../../libcalico-go/lib/backend/api.js';
import { storedKey, storedValue, tortieValue } from '../../../../libcalico-go/lib/backend/etcdv3/calico-layout.js';
import { parseResourceKey, resourcePrefix } from '../../../../libcalico-go/lib/backend/keys.js';
import type { KindHandler } from '../../../../libcalico-go/lib/backend/kubernetes/handler.js';
import type { Resource } from '../../../../libcalico-go/lib/apis/v3/resource.js';
import { validateResource } from '../../../../libcalico-go/lib/apis/v3/validate/index.js';
import { ResourceClient, ResourceError } from '../../../../libcalico-go/lib/clientv3/resources.js';
import { type Logger, silentLogger } from '../../../../libcalico-go/lib/logutils/index.js';
import { NAMESPACE_PROFILE_PREFIX, SERVICE_ACCOUNT_PROFILE_PREFIX } from '../../../../libcalico-go/lib/backend/kubernetes/derived/profile.js';
import { KNP_PREFIX } from '../../../../libcalico-go/lib/policy/k8s.js';
import { LABEL_ORCHESTRATOR } from '../../../../libcalico-go/lib/backend/kubernetes/derived/workloadendpoint.js';

export type EtcdControllerName = 'namespace' | 'serviceaccount' | 'policy' | 'workloadendpoint';

/** The Kubernetes side as datastore keys: paged lists, and watches that resume (and re-list on 410 Gone). */
export type MirrorSource = Pick<KindHandler, 'list' | 'watch'>;

export interface MirrorSpec {
  controller: EtcdControllerName;
  /** The status file's component name, e.g. NamespaceController. */
  component: string;
  /** The Kubernetes side, as datastore keys (sources.ts). */
  source: MirrorSource;
  /** Key prefix on both sides. */
  prefix: string;
  kind: string;
  /** Keys (either side) this controller owns: the name prefix. */
  owns(key: string): boolean;
  /** own: create, update and delete; endpoint: update existing endpoints' labels only. */
  mode: 'own' | 'endpoint';
}

const nameOf = (key: string) => parseResourceKey(key)?.name ?? '';

/** The specs of Calico's four etcd-mode controllers over the given sources. */
export function mirrorSpec(controller: EtcdControllerName, source: MirrorSource): MirrorSpec {
  switch (controller) {
    case 'namespace':
      return { controller, component: 'NamespaceController', source, prefix: resourcePrefix('Profile'), kind: 'Profile', owns: (k) => nameOf(k).startsWith(NAMESPACE_PROFILE_PREFIX), mode: 'own' };
    case 'serviceaccount':
      return { controller, component: 'ServiceAccountController', source, prefix: resourcePrefix('Profile'), kind: 'Profile', owns: (k) => nameOf(k).startsWith(SERVICE_ACCOUNT_PROFILE_PREFIX), mode: 'own' };
    case 'policy':
      return { controller, component: 'PolicyController', source, prefix: resourcePrefix('NetworkPolicy'), kind: 'NetworkPolicy', owns: (k) => nameOf(k).startsWith(KNP_PREFIX), mode: 'own' };
    case 'workloadendpoint':
      return { controller, component: 'WorkloadEndpointController', source, prefix: resourcePrefix('WorkloadEndpoint'), kind: 'WorkloadEndpoint', owns: () => true, mode: 'endpoint' };
  }
}

export interface MirrorCounters {
  fullSync(controller: string): void;
  failure(controller: string): void;
  write(controller: string, op: 'create' | 'update' | 'delete'): void;
}

export interface MirrorDeps {
  /** The Calico datastore (etcd). */
  store: Backend;
  log?: Logger;
  setReady?: (component: string, ready: boolean, reason?: string) => void;
  /** The full-resync period now (the configuration is re-read by the health checks). */
  resyncPeriodMs: () => number;
  counters?: MirrorCounters;
}

/** JSON with sorted keys, for comparing objects whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .sort()
      .filter((k) => o[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** What of an object a controller maintains: its labels and spec. */
const content = (r: Resource) => canonical({ labels: r.metadata.labels ?? {}, spec: r.spec ?? {} });

class Retry extends Error {}

/**
 * The longest wait between attempts after failures: a failed list is one refused or timed-out
 * request, so retrying every 5 s costs an API server nothing, and the controller is back within
 * 5 s of the end of an outage.
 */
export const MAX_BACKOFF_MS = 5000;

export class MirrorController {
  private readonly resources: ResourceClient;
  private readonly log: Logger;
  /** Kubernetes' view: key → derived value, as last listed or watched. */
  private desired = new Map<string, string>();
  /** Full resyncs done and writes made (for tests and the log). */
  fullSyncs = 0;
  writes = 0;

  constructor(
    readonly spec: MirrorSpec,
    private readonly deps: MirrorDeps,
  ) {
    this.resources = new ResourceClient(deps.store);
    this.log = (deps.log ?? silentLogger).child(spec.controller);
  }

  private ready(ok: boolean, reason = ''): void {
    this.deps.setReady?.(this.spec.component, ok, reason);
  }

  /** The desired object as a read from etcd would give it back (validated, Calico's layout), or null if invalid. */
  private normalised(key: string, value: string): Resource | null {
    try {
      const r = validateResource(JSON.parse(value));
      const { resourceVersion: _rv, ...metadata } = r.metadata;
      return JSON.parse(tortieValue(storedKey(key), storedValue(key, JSON.stringify({ ...r, metadata })))) as Resource;
    } catch (e) {
      this.log.warn('Kubernetes object gives an invalid Calico resource; skipping it', { key, error: (e as Error).message });
      return null;
    }
  }

  /** Makes one key of the Calico datastore what Kubernetes says. Throws on datastore failures. */
  async reconcileKey(key: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await (this.spec.mode === 'own' ? this.reconcileOwned(key) : this.reconcileEndpoint(key));
        return;
      } catch (e) {
        // Someone else wrote the key between our read and write: read again.
        if (e instanceof Retry && attempt < 5) continue;
        throw e;
      }
    }
  }

  private async reconcileOwned(key: string): Promise<void> {
    if (!this.spec.owns(key)) return;
    const want = this.desired.get(key);
    const cur = await this.deps.store.get(key);
    if (want === undefined) {
      if (!cur) return;
      try {
        await this.deps.store.delete(key, cur.revision);
      } catch (e) {
        if (e instanceof NotFoundError) return;
        throw new Retry((e as Error).message);
      }
      this.counted('delete');
      this.log.info('Deleted', { kind: this.spec.kind, key: nameKey(key) });
      return;
    }
    const desired = this.normalised(key, want);
    if (!desired) return;
    const { uid: _u, creationTimestamp: _c, ...meta } = desired.metadata;
    if (!cur) {
      try {
        await this.resources.create({ ...desired, metadata: meta });
      } catch (e) {
        if (e instanceof ResourceError && /already exists/.test(e.message)) throw new Retry(e.message);
        throw e;
      }
      this.counted('create');
      this.log.info('Created', { kind: this.spec.kind, key: nameKey(key) });
      return;
    }
    const current = JSON.parse(cur.value) as Resource;
    if (content(current) === content(desired)) return;
    try {
      await this.resources.update({ ...desired, metadata: { ...meta, resourceVersion: cur.revision } });
    } catch (e) {
      if (e instanceof ResourceError && /update conflict|does not exist/.test(e.message)) throw new Retry(e.message);
      throw e;
    }
    this.counted('update');
    this.log.info('Updated', { kind: this.spec.kind, key: nameKey(key) });
  }

  private async reconcileEndpoint(key: string): Promise<void> {
    const want = this.desired.get(key);
    if (want === undefined) return; // the CNI plugin deletes endpoints, never this controller
    const cur = await this.deps.store.get(key);
    if (!cur) return; // not created by the CNI plugin yet: never created here
    const current = JSON.parse(cur.value) as Resource;
    const spec = (current.spec ?? {}) as Record<string, unknown>;
    if (spec.orchestrator !== 'k8s' && current.metadata.labels?.[LABEL_ORCHESTRATOR] !== 'k8s') return;
    const pod = JSON.parse(want) as Resource;
    const podSpec = (pod.spec ?? {}) as Record<string, unknown>;
    const next: Resource = { ...current, metadata: { ...current.metadata, labels: pod.metadata.labels ?? {} }, spec: { ...spec } };
    const nextSpec = next.spec as Record<string, unknown>;
    if (podSpec.serviceAccountName) nextSpec.serviceAccountName = podSpec.serviceAccountName;
    else delete nextSpec.serviceAccountName;
    if (content(next) === content(current)) return;
    try {
      await this.resources.update({ ...next, metadata: { ...next.metadata, resourceVersion: cur.revision } });
    } catch (e) {
      if (e instanceof ResourceError && /update conflict/.test(e.message)) throw new Retry(e.message);
      if (e instanceof ResourceError && /does not exist/.test(e.message)) return;
      throw e;
    }
    this.counted('update');
    this.log.info('Updated endpoint labels', { key: nameKey(key) });
  }

  private counted(op: 'create' | 'update' | 'delete'): void {
    this.writes++;
    this.deps.counters?.write(this.spec.controller, op);
  }

  /** Every key either side knows: Kubernetes' keys, and the datastore's keys this controller owns. */
  async fullResync(): Promise<void> {
    const keys = new Set(this.desired.keys());
    if (this.spec.mode === 'own') {
      const { items } = await this.deps.store.list(this.spec.prefix);
      for (const kv of items) if (this.spec.owns(kv.key)) keys.add(kv.key);
    }
    for (const k of [...keys].sort()) await this.reconcileKey(k);
    this.fullSyncs++;
    this.deps.counters?.fullSync(this.spec.controller);
  }

  /** Runs until `signal` aborts; never throws. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      const cycle = new AbortController();
      const stop = () => cycle.abort();
      signal.addEventListener('abort', stop, { once: true });
      let timer: NodeJS.Timeout | undefined;
      try {
        const l = await this.spec.source.list(this.spec.prefix);
        this.desired = new Map(l.items.filter((kv) => this.spec.owns(kv.key)).map((kv) => [kv.key, kv.value]));
        await this.fullResync();
        if (failures > 0) this.log.info('Resynced after failures', { failures });
        failures = 0;
        this.ready(true);
        timer = setTimeout(stop, this.deps.resyncPeriodMs());
        for await (const ev of this.spec.source.watch(this.spec.prefix, { afterRevision: l.revision, signal: cycle.signal })) {
          if (!this.spec.owns(ev.key)) continue;
          if (ev.type === 'put' && ev.value !== undefined) this.desired.set(ev.key, ev.value);
          else this.desired.delete(ev.key);
          await this.reconcileKey(ev.key);
        }
        // The watch ended: the resync period is over (full resync now) or we are stopping.
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof CompactedError) {
          // The list's revision expired before the watch started: list again at once.
          this.log.info('Watch revision expired; re-listing', { error: e.message });
          continue;
        }
        failures++;
        const msg = (e as Error)?.message ?? String(e);
        this.ready(false, msg);
        this.deps.counters?.failure(this.spec.controller);
        this.log.warn('Sync failed; retrying with a full resync', { error: msg, attempt: failures });
        await sleep(Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(failures - 1, 6)), signal);
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', stop);
      }
    }
  }
}

function nameKey(key: string): string {
  const k = parseResourceKey(key);
  return k ? (k.namespace ? `${k.namespace}/${k.name}` : k.name) : key;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
