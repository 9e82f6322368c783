// The IPAM metrics of calico-kube-controllers' node controller, set from each sync's numbers:
// per pool and node (labels `ippool`, `node`; `no_ippool` for addresses in no pool) and the legacy
// per-node series (label `node`).
import type { Counter, Gauge, Registry } from '../../../../libcalico-go/lib/metrics/index.js';
import type { GCStats } from './ipam-gc.js';

export class IPAMMetrics {
  private readonly inUse: Gauge;
  private readonly borrowed: Gauge;
  private readonly candidates: Gauge;
  private readonly reclamations: Counter;
  private readonly blocks: Gauge;
  private readonly poolSize: Gauge;
  private readonly inUsePerNode: Gauge;
  private readonly borrowedPerNode: Gauge;
  private readonly candidatesPerNode: Gauge;
  private readonly reclamationsPerNode: Counter;
  private readonly blocksPerNode: Gauge;

  constructor(r: Registry) {
    const pn = ['ippool', 'node'];
    this.inUse = r.gauge('ipam_allocations_in_use', 'IPs currently allocated in IPAM, by pool and node.', pn);
    this.borrowed = r.gauge('ipam_allocations_borrowed', 'IPs allocated to a node from a block affine to another node, by pool and node.', pn);
    this.candidates = r.gauge('ipam_allocations_gc_candidates', 'Allocations the garbage collector considers leaked (waiting for the grace period or releasing), by pool and node.', pn);
    this.reclamations = r.counter('ipam_allocations_gc_reclamations', 'Leaked allocations released by the garbage collector, by pool and node.', pn);
    this.blocks = r.gauge('ipam_blocks', 'IPAM blocks, by pool and the node they are affine to.', pn);
    this.poolSize = r.gauge('ipam_ippool_size', 'Addresses in each IP pool.', ['ippool']);
    this.inUsePerNode = r.gauge('ipam_allocations_per_node', 'IPs currently allocated, by node (legacy).', ['node']);
    this.borrowedPerNode = r.gauge('ipam_allocations_borrowed_per_node', 'Borrowed IPs, by node (legacy).', ['node']);
    this.candidatesPerNode = r.gauge('ipam_allocations_gc_candidates_per_node', 'Garbage collection candidates, by node (legacy).', ['node']);
    this.reclamationsPerNode = r.counter('ipam_allocations_gc_reclamations_per_node', 'Leaked allocations released, by node (legacy).', ['node']);
    this.blocksPerNode = r.gauge('ipam_blocks_per_node', 'IPAM blocks, by node (legacy).', ['node']);
  }

  /** Replaces the gauges with one sync's numbers (series of pools/nodes that are gone disappear). */
  update(stats: GCStats, pools: readonly { name: string; size: number }[]): void {
    for (const g of [this.inUse, this.borrowed, this.candidates, this.blocks, this.poolSize, this.inUsePerNode, this.borrowedPerNode, this.candidatesPerNode, this.blocksPerNode]) g.reset();
    const perNode = new Map<string, { inUse: number; borrowed: number; candidates: number; blocks: number }>();
    for (const r of stats.perPoolNode.values()) {
      const l = { ippool: r.pool, node: r.node };
      this.inUse.set(l, r.inUse);
      this.borrowed.set(l, r.borrowed);
      this.candidates.set(l, r.candidates);
      this.blocks.set(l, r.blocks);
      const n = perNode.get(r.node) ?? { inUse: 0, borrowed: 0, candidates: 0, blocks: 0 };
      n.inUse += r.inUse;
      n.borrowed += r.borrowed;
      n.candidates += r.candidates;
      n.blocks += r.blocks;
      perNode.set(r.node, n);
    }
    for (const [node, n] of perNode) {
      this.inUsePerNode.set({ node }, n.inUse);
      this.borrowedPerNode.set({ node }, n.borrowed);
      this.candidatesPerNode.set({ node }, n.candidates);
      this.blocksPerNode.set({ node }, n.blocks);
    }
    for (const p of pools) this.poolSize.set({ ippool: p.name }, p.size);
  }

  reclaimed(pool: string, node: string, n = 1): void {
    this.reclamations.inc({ ippool: pool, node }, n);
    this.reclamationsPerNode.inc({ node }, n);
  }
}
