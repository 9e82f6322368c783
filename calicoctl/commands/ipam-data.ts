// The numbers behind `ipam show` and the findings of `ipam check`, computed from the datastore.
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { HANDLE_PREFIX } from '../../libcalico-go/lib/backend/keys.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { type Allocation, allocationsFromBlocks, nodeTunnelIPs } from '../../libcalico-go/lib/ipam/allocations.js';
import { type BlockData, inUseCount } from '../../libcalico-go/lib/ipam/block.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';
import type { Pool } from '../../libcalico-go/lib/ipam/pools.js';
import { cidrContainsIP, cidrOverlaps, cidrSize, compareCIDR, formatCIDR, parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';

export interface BlockUsage {
  cidr: string;
  capacity: number;
  inUse: number;
  affinity: string | null;
}

export interface PoolUsage {
  name: string;
  cidr: string;
  capacity: number;
  inUse: number;
  blocks: BlockUsage[];
}

/** Per pool (sorted by CIDR) its capacity, addresses in use and blocks. */
export function usage(pools: Pool[], blocks: BlockData[]): PoolUsage[] {
  const sorted = [...pools].sort((a, b) => compareCIDR(a.cidr, b.cidr));
  return sorted.map((p) => {
    const mine = blocks
      .filter((b) => {
        const c = parseCIDR(b.cidr);
        return c !== null && cidrOverlaps(c, p.cidr);
      })
      .sort((a, b) => compareCIDR(parseCIDR(a.cidr)!, parseCIDR(b.cidr)!))
      .map((b) => ({ cidr: b.cidr, capacity: b.allocations.length, inUse: inUseCount(b), affinity: b.affinity }));
    return {
      name: p.name,
      cidr: formatCIDR(p.cidr),
      capacity: Number(cidrSize(p.cidr)),
      inUse: mine.reduce((s, b) => s + b.inUse, 0),
      blocks: mine,
    };
  });
}

export type { Allocation } from '../../libcalico-go/lib/ipam/allocations.js';

export interface CheckReport {
  version: string;
  clusterGUID: string;
  datastoreLocked: boolean;
  clusterInformationRevision: string;
  clusterType: string;
  blocks: { cidr: string; affinity: string | null }[];
  allocationCount: number;
  activePools: string[];
  nodeTunnelIPs: number;
  workloadIPs: number;
  inUse: Map<string, string[]>;
  topNodes: { node: string; count: number }[];
  median: number;
  leaked: Allocation[];
  multipleOwners: string[];
  notInPool: { ip: string; owners: string[] }[];
  noAllocation: { ip: string; owners: string[] }[];
  handlesWithoutIPs: string[];
  /** Revision of each handle record, so a release can refuse one that changed since the check. */
  handleRevisions: Map<string, string>;
  handlesWithIPs: number;
  missingHandles: string[];
  allocations: Allocation[];
}

function firstAddress(net: string): string {
  return net.split('/')[0]!;
}

export async function runCheck(store: Backend, version: string): Promise<CheckReport> {
  const client = new ResourceClient(store);
  const ipam = new IPAM(store, { selects: () => true });
  const ci = await client.get('ClusterInformation', 'default');
  const ciSpec = (ci?.spec ?? {}) as { clusterGUID?: string; clusterType?: string; datastoreReady?: boolean };
  const blocks = await ipam.blocks();
  const allocations = allocationsFromBlocks(blocks);
  const byIP = new Map<string, Allocation[]>();
  for (const rec of allocations) byIP.set(rec.ip, [...(byIP.get(rec.ip) ?? []), rec]);
  const pools = (await ipam.pools()).filter((p) => !p.disabled);
  const inUse = new Map<string, string[]>();
  const use = (ip: string, owner: string) => inUse.set(ip, [...(inUse.get(ip) ?? []), owner]);
  const tunnels = nodeTunnelIPs(await client.list('Node'));
  for (const t of tunnels) use(t.ip, `Node(${t.node})`);
  let workloadIPs = 0;
  for (const w of await client.list('WorkloadEndpoint')) {
    for (const net of ((w.spec ?? {}) as { ipNetworks?: string[] }).ipNetworks ?? []) {
      use(firstAddress(net), `Workload(${w.metadata.namespace}/${w.metadata.name})`);
      workloadIPs++;
    }
  }
  const perNode = new Map<string, number>();
  for (const a of allocations) {
    const n = a.attrs.node ?? a.blockOwner ?? '';
    perNode.set(n, (perNode.get(n) ?? 0) + 1);
  }
  const counts = [...perNode.entries()].map(([node, count]) => ({ node, count })).sort((a, b) => b.count - a.count);
  const sortedCounts = counts.map((c) => c.count).sort((a, b) => a - b);
  const leaked = allocations.filter((a) => !inUse.has(a.ip));
  const notInPool: CheckReport['notInPool'] = [];
  const noAllocation: CheckReport['noAllocation'] = [];
  for (const [ip, owners] of inUse) {
    const parsed = parseIP(ip);
    if (!parsed || !pools.some((p) => cidrContainsIP(p.cidr, parsed))) notInPool.push({ ip, owners });
    else if (!byIP.has(ip)) noAllocation.push({ ip, owners });
  }
  const { items: handleKVs } = await store.list(HANDLE_PREFIX);
  const handles = new Set(handleKVs.map((kv) => kv.key.slice(HANDLE_PREFIX.length)));
  const referenced = new Set(allocations.map((a) => a.handle).filter((h): h is string => !!h));
  return {
    version,
    clusterGUID: ciSpec.clusterGUID ?? '',
    datastoreLocked: ciSpec.datastoreReady === false,
    clusterInformationRevision: ci?.metadata.resourceVersion ?? '',
    clusterType: ciSpec.clusterType ?? '',
    blocks: blocks.map((b) => ({ cidr: b.cidr, affinity: b.affinity })),
    allocationCount: allocations.length,
    activePools: pools.map((p) => formatCIDR(p.cidr)),
    nodeTunnelIPs: tunnels.length,
    workloadIPs,
    inUse,
    topNodes: counts.slice(0, 20),
    median: sortedCounts.length ? (sortedCounts[Math.floor(sortedCounts.length / 2)] ?? 0) : 0,
    leaked,
    multipleOwners: [...inUse.entries()].filter(([, o]) => o.length > 1).map(([ip]) => ip),
    notInPool,
    noAllocation,
    handlesWithoutIPs: [...handles].filter((h) => !referenced.has(h)).sort(),
    handleRevisions: new Map(handleKVs.map((kv) => [kv.key.slice(HANDLE_PREFIX.length), kv.revision])),
    handlesWithIPs: [...handles].filter((h) => referenced.has(h)).length,
    missingHandles: [...referenced].filter((h) => !handles.has(h)).sort(),
    allocations,
  };
}

