// The IPAM garbage collector's decisions, as Calico's node controller makes them
// (kube-controllers/pkg/controllers/node/ipam.go; calico.md §7.2). Pure: the facts of one sync and
// the clock in, the actions and the numbers for the metrics out; the state it carries between syncs
// (when each allocation became a candidate, when each block was first seen empty) is its own.
//
// Per allocation:
//   * a Windows-reserved one, or one that is neither a pod's nor a tunnel address: kept;
//   * its node (the `node` attribute, else the block's host) is no Kubernetes Node: a confirmed leak
//     at once (the node is gone, nothing can be using it);
//   * a tunnel address on an existing node: valid;
//   * a pod's: valid when the pod exists, is on the allocation's node and carries the address
//     (status.podIPs, else Calico's podIP(s) annotations, none for a finished pod); otherwise a
//     *candidate*, confirmed once it has been a candidate for `leakGracePeriod`. A valid observation
//     forgets the candidate.
// A handle is released only when every one of its allocations is a confirmed leak (all or none), and
// the I/O side re-reads the pod just before releasing (revalidate below).
//
// Why a live pod's address is never released, whatever the interleaving with a CNI ADD: the ADD
// allocates (the block now names the pod) and only then patches the pod with the address. Between
// the two the allocation looks leaked (the pod does not carry it yet). Calico's answer, kept here, is
// the grace period: the allocation is only a candidate, and an ADD finishes (or fails and releases)
// in seconds, far inside 15 minutes; the re-read of the pod just before the release closes the
// window between this sync's list and the release. An ADD that neither finishes nor releases within
// the grace period has failed, and its pod is not running with that address.
//
// Empty blocks: a host's block seen empty on two syncs spanning `leakGracePeriod` loses its affinity
// (never the host's last block while the node exists). Deleted nodes: their leaks are confirmed at
// once and, once empty, all their blocks' affinities are released in the same sync.
// leakGracePeriod 0 disables the pod-leak GC and empty-block release (as Calico); a deleted node's
// allocations and affinities are still released.
import {
  type Allocation,
  WINDOWS_RESERVED_HANDLE,
  allocationNode,
  isPodAllocation,
  isTunnelAllocation,
} from '../../../../libcalico-go/lib/ipam/allocations.js';

/** A pod as the collector needs it: where it runs and the addresses it carries. */
export interface PodFacts {
  node: string;
  /** Addresses (no prefix) from status.podIPs / podIP, else the CNI's annotations; [] when finished. */
  ips: string[];
}

export interface BlockFacts {
  cidr: string;
  /** The host the block is affine to (`host:<node>`); null when none. */
  host: string | null;
  inUse: number;
  /** The pool the block belongs to (name); null when none contains it. */
  pool: string | null;
}

export interface GCFacts {
  allocations: readonly Allocation[];
  blocks: readonly BlockFacts[];
  /** Hosts with block affinity records (a deleted node's may remain without blocks). */
  affinityHosts: readonly string[];
  /** Names of the Kubernetes Nodes. */
  nodes: ReadonlySet<string>;
  /** Pods by `<namespace>/<name>`. */
  pods: ReadonlyMap<string, PodFacts>;
  /** The pool of an address (name), null when none. */
  poolOf: (ip: string) => string | null;
}

export type Verdict = 'kept' | 'valid' | 'candidate' | 'leak';

export interface Classified {
  allocation: Allocation;
  verdict: Verdict;
  /** Why it is a candidate or a leak. */
  reason?: string;
}

export interface HandleRelease {
  handle: string;
  allocations: Allocation[];
  reason: string;
}

export interface GCActions {
  /** Handles whose every allocation is a confirmed leak. */
  releaseHandles: HandleRelease[];
  /** Empty blocks whose affinity goes (seen empty across the grace period). */
  releaseBlockAffinities: { host: string; cidr: string }[];
  /** Deleted nodes whose affinities go (mustBeEmpty). */
  releaseHosts: string[];
}

export interface GCStats {
  /** Per pool and node: allocations in use, borrowed, GC candidates, blocks. */
  perPoolNode: Map<string, { pool: string; node: string; inUse: number; borrowed: number; candidates: number; blocks: number }>;
}

export interface GCResult {
  classified: Classified[];
  actions: GCActions;
  stats: GCStats;
}

/** Label for addresses and blocks in no pool (Calico's). */
export const NO_POOL = 'no_ippool';

export const podKey = (namespace: string, name: string) => `${namespace}/${name}`;

/** An allocation's identity across syncs: the same address re-allocated is a new allocation. */
function allocationKey(a: Allocation): string {
  return `${a.ip}|${a.handle ?? ''}|${a.sequenceNumber ?? ''}`;
}

/** Why a pod allocation is not valid, or null when it is (missing pod/namespace attrs ⇒ valid). */
export function podAllocationProblem(a: Allocation, pod: PodFacts | undefined): string | null {
  if (!isPodAllocation(a)) return null;
  const node = allocationNode(a);
  const who = `pod ${a.attrs.namespace}/${a.attrs.pod}`;
  if (!pod) return `${who} does not exist`;
  if (node && pod.node !== node) return `${who} is on node ${JSON.stringify(pod.node)}, not ${JSON.stringify(node)}`;
  if (!pod.ips.includes(a.ip)) return `${who} does not have address ${a.ip}`;
  return null;
}

export class IPAMGarbageCollector {
  /** When each allocation became a candidate (ms). */
  private readonly candidates = new Map<string, number>();
  /** When each host block was first seen empty (ms). */
  private readonly emptySince = new Map<string, number>();

  /** One sync: classifies every allocation and decides what to release. */
  sync(f: GCFacts, nowMs: number, leakGracePeriodMs: number): GCResult {
    const gcOn = leakGracePeriodMs > 0;
    const classified: Classified[] = [];
    const seen = new Set<string>();
    for (const a of f.allocations) {
      const key = allocationKey(a);
      const node = allocationNode(a);
      let verdict: Verdict;
      let reason: string | undefined;
      if (a.handle === WINDOWS_RESERVED_HANDLE || (!isPodAllocation(a) && !isTunnelAllocation(a))) {
        verdict = 'kept';
      } else if (node && !f.nodes.has(node)) {
        verdict = 'leak';
        reason = `node ${JSON.stringify(node)} no longer exists`;
      } else if (isTunnelAllocation(a)) {
        verdict = 'valid';
      } else {
        const problem = podAllocationProblem(a, f.pods.get(podKey(a.attrs.namespace!, a.attrs.pod!)));
        if (problem === null) {
          verdict = 'valid';
        } else if (!gcOn) {
          verdict = 'candidate';
          reason = `${problem} (garbage collection disabled: leakGracePeriod 0)`;
        } else {
          seen.add(key);
          const since = this.candidates.get(key) ?? nowMs;
          this.candidates.set(key, since);
          const confirmed = nowMs - since >= leakGracePeriodMs;
          verdict = confirmed ? 'leak' : 'candidate';
          reason = confirmed ? `${problem} for ${Math.round((nowMs - since) / 1000)}s (leakGracePeriod ${leakGracePeriodMs / 1000}s)` : problem;
        }
      }
      classified.push({ allocation: a, verdict, reason });
    }
    // A candidate not seen now (valid again, or gone) starts over if it comes back.
    for (const k of [...this.candidates.keys()]) if (!seen.has(k)) this.candidates.delete(k);

    // All or none per handle.
    const byHandle = new Map<string, Classified[]>();
    for (const c of classified) {
      const h = c.allocation.handle ?? `<no handle>:${c.allocation.ip}`;
      byHandle.set(h, [...(byHandle.get(h) ?? []), c]);
    }
    const releaseHandles: HandleRelease[] = [];
    for (const [handle, cs] of byHandle) {
      if (!cs.every((c) => c.verdict === 'leak')) continue;
      releaseHandles.push({ handle, allocations: cs.map((c) => c.allocation), reason: cs[0]?.reason ?? '' });
    }

    // Deleted nodes: every host with blocks or affinities that is no Kubernetes Node.
    const hosts = new Set<string>(f.affinityHosts);
    for (const b of f.blocks) if (b.host) hosts.add(b.host);
    const releaseHosts = [...hosts].filter((h) => !f.nodes.has(h)).sort();

    // Empty blocks of existing nodes: released after two observations across the grace period,
    // never a node's last affine block.
    const releaseBlockAffinities: { host: string; cidr: string }[] = [];
    const blocksOfHost = new Map<string, number>();
    for (const b of f.blocks) if (b.host) blocksOfHost.set(b.host, (blocksOfHost.get(b.host) ?? 0) + 1);
    const emptyNow = new Set<string>();
    for (const b of [...f.blocks].sort((x, y) => (x.cidr < y.cidr ? -1 : x.cidr > y.cidr ? 1 : 0))) {
      if (!b.host || b.inUse > 0 || !f.nodes.has(b.host)) continue;
      emptyNow.add(b.cidr);
      const since = this.emptySince.get(b.cidr);
      if (since === undefined) {
        this.emptySince.set(b.cidr, nowMs);
        continue;
      }
      if (!gcOn || nowMs - since < leakGracePeriodMs) continue;
      const left = blocksOfHost.get(b.host) ?? 0;
      if (left <= 1) continue;
      blocksOfHost.set(b.host, left - 1);
      releaseBlockAffinities.push({ host: b.host, cidr: b.cidr });
      this.emptySince.delete(b.cidr);
    }
    for (const k of [...this.emptySince.keys()]) if (!emptyNow.has(k)) this.emptySince.delete(k);

    return { classified, actions: { releaseHandles, releaseBlockAffinities, releaseHosts }, stats: statsOf(f, classified) };
  }

  /** Forgets an allocation's candidacy (after the re-validation found it valid). */
  forget(a: Allocation): void {
    this.candidates.delete(allocationKey(a));
  }
}

/** The key of a pool and node in GCStats.perPoolNode. */
export const rowKey = (pool: string, node: string) => `${pool}\u0000${node}`;

function statsOf(f: GCFacts, classified: readonly Classified[]): GCStats {
  const perPoolNode: GCStats['perPoolNode'] = new Map();
  const row = (pool: string, node: string) => {
    const k = rowKey(pool, node);
    let r = perPoolNode.get(k);
    if (!r) {
      r = { pool, node, inUse: 0, borrowed: 0, candidates: 0, blocks: 0 };
      perPoolNode.set(k, r);
    }
    return r;
  };
  for (const c of classified) {
    const a = c.allocation;
    const r = row(f.poolOf(a.ip) ?? NO_POOL, allocationNode(a) ?? '');
    r.inUse++;
    if (a.blockOwner !== null && a.attrs.node && a.attrs.node !== a.blockOwner) r.borrowed++;
    if (c.verdict === 'candidate' || c.verdict === 'leak') r.candidates++;
  }
  for (const b of f.blocks) row(b.pool ?? NO_POOL, b.host ?? '').blocks++;
  return { perPoolNode };
}
