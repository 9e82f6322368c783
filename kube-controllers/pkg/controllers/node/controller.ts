// The node controller's IPAM garbage collection: each sync reads the facts (IPAM blocks, affinities
// and pools from the Calico datastore; Nodes and Pods from the Kubernetes API), lets the pure
// collector (ipam-gc.ts) decide, re-validates each release against a fresh read of its pod and node,
// releases, and updates the metrics and the readiness of the two APIs it depends on.
//
// Syncs run every leakGracePeriod/2 (config.ts syncPeriodMs) and at once when a Kubernetes Node is
// deleted (a watch on Nodes), so a deleted node's addresses and blocks go without waiting. A failed
// sync (an API server or datastore that cannot be reached) marks the component not ready with the
// error, and the next one is retried with backoff (0.5 s doubling to 30 s): the process never exits
// for it.
import { CompactedError, NotFoundError, type Backend } from '../../../../libcalico-go/lib/backend/api.js';
import { isExpired } from '../../../../libcalico-go/lib/backend/kubernetes/resync.js';
import type { KubeClient } from '../../../../libcalico-go/lib/backend/kubernetes/client.js';
import type { K8sList, K8sNode, K8sPod } from '../../../../libcalico-go/lib/backend/kubernetes/derived/k8s-objects.js';
import { podIPNetworks } from '../../../../libcalico-go/lib/backend/kubernetes/derived/workloadendpoint.js';
import { ResourceClient, ResourceError } from '../../../../libcalico-go/lib/clientv3/resources.js';
import {
  type Allocation,
  allocationNode,
  allocationsFromBlocks,
  isPodAllocation,
  isTunnelAllocation,
} from '../../../../libcalico-go/lib/ipam/allocations.js';
import { inUseCount } from '../../../../libcalico-go/lib/ipam/block.js';
import { IPAM, IPAMError } from '../../../../libcalico-go/lib/ipam/ipam.js';
import type { Pool } from '../../../../libcalico-go/lib/ipam/pools.js';
import { type Logger, silentLogger } from '../../../../libcalico-go/lib/logutils/index.js';
import { cidrContainsIP, cidrOverlaps, cidrSize, parseCIDR, parseIP } from '../../../../libcalico-go/lib/net/ip.js';
import { type RunConfig, runConfigOf, syncPeriodMs } from '../../config.js';
import { DATASTORE, KUBE_API } from '../../health.js';
import { type GCFacts, type HandleRelease, IPAMGarbageCollector, NO_POOL, type PodFacts, podAllocationProblem, podKey, rowKey } from './ipam-gc.js';
import type { IPAMMetrics } from './ipam-metrics.js';

/** Readiness components (the status file's names). */
export { DATASTORE, KUBE_API };
/** The last sync's outcome (a sync can fail where the health probes pass, e.g. pods forbidden by RBAC). */
export const IPAM_GC = 'IPAMGarbageCollector';

/** Releases per sync at most (Calico's batch cap); the rest wait for the next sync. */
export const MAX_RELEASES_PER_SYNC = 10_000;

export interface NodeControllerDeps {
  /** The Calico datastore (IPAM, KubeControllersConfiguration). */
  store: Backend;
  /** The Kubernetes API (Nodes, Pods). */
  kube: KubeClient;
  log?: Logger;
  metrics?: IPAMMetrics;
  /** Readiness of KUBE_API and DATASTORE (the status file). */
  setReady?: (component: string, ready: boolean, reason?: string) => void;
  /** Called with the run configuration after each successful read (e.g. to start the metrics server). */
  onConfig?: (c: RunConfig) => void | Promise<void>;
  /** Called for each failed sync (a metric). */
  onSyncFailed?: () => void;
  now?: () => number;
}

export interface SyncReport {
  config: RunConfig;
  allocations: number;
  candidates: number;
  /** Addresses released. */
  released: string[];
  /** Handles whose release the re-validation stopped (the pod carries the address now). */
  revalidated: string[];
  /** Block affinities released (`<host> <cidr>`). */
  affinitiesReleased: string[];
  /** The datastore was locked (ClusterInformation datastoreReady=false): nothing was released. */
  locked?: boolean;
  /** Calico Nodes deleted because their Kubernetes Node is gone (etcd datastore only). */
  nodesDeleted: string[];
}

/** Marks which API a failure came from, for readiness. */
class APIFailure extends Error {
  constructor(
    readonly component: string,
    readonly err: unknown,
  ) {
    super(`${component}: ${(err as Error)?.message ?? String(err)}`);
  }
}

async function on<T>(component: string, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (e) {
    throw new APIFailure(component, e);
  }
}

export class NodeController {
  readonly gc = new IPAMGarbageCollector();
  private readonly ipam: IPAM;
  private readonly resources: ResourceClient;
  private readonly log: Logger;
  private readonly now: () => number;
  private wake: (() => void) | undefined;
  private pending = false;
  /** Syncs done (for tests and the log). */
  syncs = 0;

  constructor(private readonly deps: NodeControllerDeps) {
    this.ipam = new IPAM(deps.store, { selects: () => true });
    this.resources = new ResourceClient(deps.store);
    this.log = deps.log ?? silentLogger;
    this.now = deps.now ?? Date.now;
  }

  private ready(component: string, ok: boolean, reason = ''): void {
    this.deps.setReady?.(component, ok, reason);
  }

  private async listPods(): Promise<Map<string, PodFacts>> {
    const out = new Map<string, PodFacts>();
    let cont: string | undefined;
    do {
      const page = await this.deps.kube.request<K8sList<K8sPod>>('GET', '/api/v1/pods', { query: { limit: '500', continue: cont } });
      for (const p of page.items) out.set(podKey(p.metadata?.namespace ?? 'default', p.metadata?.name ?? ''), podFacts(p));
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  private async listNodes(): Promise<Set<string>> {
    const out = new Set<string>();
    let cont: string | undefined;
    do {
      const page = await this.deps.kube.request<K8sList<K8sNode>>('GET', '/api/v1/nodes', { query: { limit: '500', continue: cont } });
      for (const n of page.items) if (n.metadata?.name) out.add(n.metadata.name);
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return out;
  }

  private async getPod(namespace: string, name: string): Promise<PodFacts | undefined> {
    try {
      const p = await this.deps.kube.request<K8sPod>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, { key: `pod ${namespace}/${name}` });
      return podFacts(p);
    } catch (e) {
      if (e instanceof NotFoundError) return undefined;
      throw e;
    }
  }

  private async nodeExists(name: string): Promise<boolean> {
    try {
      await this.deps.kube.request('GET', `/api/v1/nodes/${encodeURIComponent(name)}`, { key: `node ${name}` });
      return true;
    } catch (e) {
      if (e instanceof NotFoundError) return false;
      throw e;
    }
  }

  /**
   * Re-reads the pod and node of every allocation of a handle just before its release: true when
   * all are still leaks. A pod that carries the address now (a CNI ADD that finished after the
   * list) stops the release and clears the candidate.
   */
  private async stillLeaked(h: HandleRelease, nodes: Map<string, boolean>): Promise<boolean> {
    for (const a of h.allocations) {
      const node = allocationNode(a);
      if (node) {
        if (!nodes.has(node)) nodes.set(node, await this.nodeExists(node));
        if (!nodes.get(node)) continue; // the node is gone: a leak whatever its pod says
      }
      if (isTunnelAllocation(a)) return false;
      if (isPodAllocation(a) && podAllocationProblem(a, await this.getPod(a.attrs.namespace!, a.attrs.pod!)) === null) return false;
    }
    return true;
  }

  /** One sync: read, decide, re-validate, release, report. Throws when an API cannot be reached. */
  async syncOnce(): Promise<SyncReport> {
    const kcc = await on(DATASTORE, this.resources.get('KubeControllersConfiguration', 'default'));
    const config = runConfigOf(kcc);
    this.lastConfig = JSON.stringify([config.leakGracePeriodMs, config.reconcilerPeriodMs]);
    await this.deps.onConfig?.(config);
    const [blocks, affinities, pools, ci] = await on(
      DATASTORE,
      Promise.all([this.ipam.blocks(), this.ipam.affinities(), this.ipam.pools(), this.resources.get('ClusterInformation', 'default')]),
    );
    // `tortiectl datastore migrate lock` / an `ipam check` report in progress: look, release nothing.
    const locked = (ci?.spec as { datastoreReady?: boolean } | undefined)?.datastoreReady === false;
    this.ready(DATASTORE, true);
    this.lastPools = pools;
    const [nodes, pods] = await on(KUBE_API, Promise.all([this.listNodes(), this.listPods()]));
    this.ready(KUBE_API, true);

    const poolOfIP = (ip: string) => {
      const parsed = parseIP(ip);
      return (parsed && pools.find((p) => cidrContainsIP(p.cidr, parsed))?.name) || null;
    };
    const poolOfBlock = (cidr: string) => {
      const c = parseCIDR(cidr);
      return (c && pools.find((p) => cidrOverlaps(p.cidr, c))?.name) || null;
    };
    const facts: GCFacts = {
      allocations: allocationsFromBlocks(blocks),
      blocks: blocks.map((b) => ({ cidr: b.cidr, host: b.affinity?.startsWith('host:') ? b.affinity.slice(5) : null, inUse: inUseCount(b), pool: poolOfBlock(b.cidr) })),
      affinityHosts: [...new Set(affinities.map((a) => a.host))],
      nodes,
      pods,
      poolOf: poolOfIP,
    };
    const result = this.gc.sync(facts, this.now(), config.leakGracePeriodMs);
    const report: SyncReport = {
      config,
      allocations: facts.allocations.length,
      candidates: result.classified.filter((c) => c.verdict === 'candidate' || c.verdict === 'leak').length,
      released: [],
      revalidated: [],
      affinitiesReleased: [],
      nodesDeleted: [],
    };
    for (const c of result.classified) {
      if (c.verdict === 'candidate') this.log.debug('Candidate IP leak', { ip: c.allocation.ip, handle: c.allocation.handle, reason: c.reason });
    }

    if (locked) {
      this.log.info('Datastore is locked (ClusterInformation datastoreReady=false); releasing nothing');
      result.actions.releaseHandles = [];
      result.actions.releaseHosts = [];
      result.actions.releaseBlockAffinities = [];
    }
    report.locked = locked;
    const nodeSeen = new Map<string, boolean>();
    let budget = MAX_RELEASES_PER_SYNC;
    for (const h of result.actions.releaseHandles) {
      if (budget < h.allocations.length) break;
      if (!(await on(KUBE_API, this.stillLeaked(h, nodeSeen)))) {
        report.revalidated.push(h.handle);
        for (const a of h.allocations) this.gc.forget(a);
        this.log.info('Leak candidate is valid on re-read; not releasing', { handle: h.handle });
        continue;
      }
      for (const a of h.allocations) {
        budget--;
        if (await this.release(a, h.reason)) report.released.push(a.ip);
      }
    }
    for (const host of result.actions.releaseHosts) {
      if (await on(KUBE_API, this.nodeExists(host))) continue;
      const r = await on(DATASTORE, this.ipam.releaseHostAffinities(host, { mustBeEmpty: true }));
      for (const c of r.released) report.affinitiesReleased.push(`${host} ${c}`);
      if (r.released.length > 0) this.log.info('Released the block affinities of a deleted node', { node: host, blocks: r.released.join(','), kept: r.kept.join(',') });
    }
    if (this.deps.store.type === 'etcdv3' && !locked) report.nodesDeleted = await this.deleteGoneNodes(nodes);
    for (const { host, cidr } of result.actions.releaseBlockAffinities) {
      if (await on(DATASTORE, this.ipam.releaseBlockAffinity(host, cidr, { mustBeEmpty: true }))) {
        report.affinitiesReleased.push(`${host} ${cidr}`);
        this.log.info('Released the affinity of an empty block', { node: host, block: cidr });
      }
    }
    // The metrics show the state after this sync's releases.
    const gone = new Set(report.released);
    const stats = result.stats;
    for (const c of result.classified) {
      if (!gone.has(c.allocation.ip)) continue;
      const row = stats.perPoolNode.get(rowKey(poolName(c.allocation, pools), allocationNode(c.allocation) ?? ''));
      if (!row) continue;
      row.inUse--;
      if (c.verdict === 'candidate' || c.verdict === 'leak') row.candidates--;
      if (c.allocation.blockOwner !== null && c.allocation.attrs.node && c.allocation.attrs.node !== c.allocation.blockOwner) row.borrowed--;
    }
    for (const r of report.affinitiesReleased) {
      const [host = '', cidr] = r.split(' ');
      const row = stats.perPoolNode.get(rowKey(facts.blocks.find((b) => b.cidr === cidr)?.pool ?? NO_POOL, host));
      if (row && row.blocks > 0) row.blocks--;
    }
    for (const [k, r] of stats.perPoolNode) if (r.inUse === 0 && r.blocks === 0 && r.candidates === 0) stats.perPoolNode.delete(k);
    this.deps.metrics?.update(stats, pools.map((p: Pool) => ({ name: p.name, size: Number(cidrSize(p.cidr)) })));
    this.syncs++;
    return report;
  }

  /**
   * On the etcd datastore (Calico's node controller, etcd mode): deletes each Calico Node whose
   * `spec.orchRefs` names a Kubernetes node (orchestrator `k8s`) that no longer exists, read again
   * just before, with the revision as precondition. Nodes without a k8s orchRef (hosts outside
   * Kubernetes) are never deleted. Their addresses and blocks are the garbage collector's.
   */
  private async deleteGoneNodes(k8sNodes: Set<string>): Promise<string[]> {
    const deleted: string[] = [];
    for (const n of await on(DATASTORE, this.resources.list('Node'))) {
      const refs = ((n.spec as { orchRefs?: { orchestrator?: string; nodeName?: string }[] } | undefined)?.orchRefs ?? []).filter((r) => r.orchestrator === 'k8s' && r.nodeName);
      const k8sName = refs[0]?.nodeName;
      if (!k8sName) continue;
      if (k8sNodes.has(k8sName) || (await on(KUBE_API, this.nodeExists(k8sName)))) continue;
      try {
        await on(DATASTORE, this.resources.delete('Node', n.metadata.name, undefined, n.metadata.resourceVersion));
      } catch (e) {
        if (!(e instanceof APIFailure && e.err instanceof ResourceError)) throw e;
        this.log.info('Not deleting the Calico Node: it changed or went meanwhile', { node: n.metadata.name, error: e.err.message });
        continue;
      }
      deleted.push(n.metadata.name);
      this.log.info('Deleted the Calico Node of a deleted Kubernetes Node', { node: n.metadata.name, k8sNode: k8sName });
    }
    return deleted;
  }

  /** Releases one confirmed leak, guarded by its handle and sequence number; false when it changed meanwhile. */
  private async release(a: Allocation, reason: string): Promise<boolean> {
    try {
      const r = await on(DATASTORE, this.ipam.releaseIPs([a.ip], { handleId: a.handle, sequenceNumber: a.sequenceNumber }));
      if (r.released.length === 0) return false;
      this.log.info('Garbage collected leaked IP', { ip: a.ip, handle: a.handle, node: allocationNode(a) ?? '', reason });
      this.deps.metrics?.reclaimed(poolName(a, this.lastPools), allocationNode(a) ?? '');
      return true;
    } catch (e) {
      if (e instanceof APIFailure && e.err instanceof IPAMError) {
        this.log.info('Not releasing: the allocation changed since it was read', { ip: a.ip, error: e.err.message });
        return false;
      }
      throw e;
    }
  }

  private lastPools: Pool[] = [];
  /** The node controller settings the last sync used (JSON), to sync again when they change. */
  private lastConfig: string | undefined;

  /** The health checks' read of the KubeControllersConfiguration: syncs at once when the node controller's settings changed. */
  configChanged(kcc: Parameters<typeof runConfigOf>[0]): void {
    let c: RunConfig;
    try {
      c = runConfigOf(kcc);
    } catch {
      return; // the sync reports it
    }
    const key = JSON.stringify([c.leakGracePeriodMs, c.reconcilerPeriodMs]);
    if (this.lastConfig !== undefined && key !== this.lastConfig) {
      this.log.info('KubeControllersConfiguration changed; syncing', { leakGracePeriodMs: c.leakGracePeriodMs });
      this.trigger();
    }
  }

  /** Syncs now (e.g. a Node was deleted) rather than at the next period. */
  trigger(): void {
    this.pending = true;
    this.wake?.();
  }

  private sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (this.pending || signal.aborted) {
        resolve();
        return;
      }
      const done = () => {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        this.wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake = done;
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Syncs until `signal` aborts; never throws. */
  async run(signal: AbortSignal): Promise<void> {
    let failures = 0;
    let period = 5000;
    while (!signal.aborted) {
      this.pending = false;
      try {
        const r = await this.syncOnce();
        failures = 0;
        this.ready(IPAM_GC, true);
        period = syncPeriodMs(r.config);
        if (r.released.length > 0 || r.affinitiesReleased.length > 0) {
          this.log.info('IPAM sync', { allocations: r.allocations, candidates: r.candidates, released: r.released.length, affinities: r.affinitiesReleased.length });
        }
      } catch (e) {
        failures++;
        this.deps.onSyncFailed?.();
        const component = e instanceof APIFailure ? e.component : DATASTORE;
        const msg = e instanceof APIFailure ? ((e.err as Error)?.message ?? String(e.err)) : (e as Error).message;
        this.ready(component, false, msg);
        this.ready(IPAM_GC, false, `last sync failed: ${msg}`);
        this.log.warn('IPAM sync failed; retrying', { component, error: msg, attempt: failures });
      }
      await this.sleep(failures > 0 ? Math.min(30_000, 500 * 2 ** Math.min(failures - 1, 6)) : period, signal);
    }
  }

  /**
   * Watches Kubernetes Nodes and triggers a sync when one is deleted. A stream the server ends is
   * resumed from the last resourceVersion seen; a resume point that expired (410 Gone) or a failed
   * watch re-lists, and a re-list triggers a sync (a deletion inside the gap would otherwise wait
   * for the next period). Returns when `signal` aborts; never throws.
   */
  async watchNodes(signal: AbortSignal): Promise<void> {
    let rv: string | undefined;
    let first = true;
    while (!signal.aborted) {
      let pause = 0;
      const started = Date.now();
      try {
        if (rv === undefined) {
          const list = await this.deps.kube.request<K8sList<K8sNode>>('GET', '/api/v1/nodes', { query: { limit: '1' } });
          rv = list.metadata?.resourceVersion;
          if (!first) this.trigger();
          first = false;
        }
        for await (const ev of this.deps.kube.watch('/api/v1/nodes', { resourceVersion: rv }, signal)) {
          if (ev.type === 'ERROR') {
            const st = ev.object as { code?: number; reason?: string; message?: string };
            if (isExpired(st)) this.log.info('Node watch expired (410 Gone); re-listing', { resourceVersion: rv ?? '', error: st.message ?? '' });
            else this.log.warn('Node watch error; re-listing', { error: st.message ?? JSON.stringify(st) });
            rv = undefined;
            break;
          }
          const next = (ev.object as K8sNode).metadata?.resourceVersion;
          if (next) rv = next;
          if (ev.type === 'DELETED') {
            this.log.info('Kubernetes Node deleted; syncing IPAM', { node: (ev.object as K8sNode).metadata?.name ?? '' });
            this.trigger();
          }
        }
      } catch (e) {
        if (e instanceof CompactedError) {
          this.log.info('Node watch expired (410 Gone); re-listing', { resourceVersion: rv ?? '', error: (e as Error).message });
          rv = undefined;
        } else {
          // The API server is unreachable: resume from the same point once it is back.
          this.log.debug('Node watch failed; re-watching', { error: (e as Error).message });
          pause = 1000;
        }
      }
      // A stream that ends at once again and again must not spin.
      if (pause === 0 && rv !== undefined && Date.now() - started < 500) pause = 500;
      if (!signal.aborted && pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
  }
}

function podFacts(p: K8sPod): PodFacts {
  return { node: p.spec?.nodeName ?? '', ips: podIPNetworks(p).map((n) => n.slice(0, n.indexOf('/'))) };
}

function poolName(a: Allocation, pools: readonly Pool[]): string {
  const ip = parseIP(a.ip);
  return (ip && pools.find((p) => cidrContainsIP(p.cidr, ip))?.name) || NO_POOL;
}
