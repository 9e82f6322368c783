// `calicoctl ipam check` text. The command layer computes the findings; this turns them into
// calicoctl's exact line sequence (v3.32 release; the HEAD-only block validation is printed
// when `invalidBlocks` is given). Where calicoctl walks a Go map (random order) the order of the
// given lists is used.

export interface CheckAllocation {
  ip: string;
  /** Handle ID; absent/null prints `Main:<none>`. */
  handle?: string | null;
  /** Active owner attributes (`Extra:` k=v pairs, sorted by key). */
  attrs?: Readonly<Record<string, string>>;
  /** Alternate owner attributes; printed as ` Alternate:…` when non-empty. */
  alternateAttrs?: Readonly<Record<string, string>>;
  /** The allocation's attribute entry is missing from the block: prints `<missing>`. */
  attrsMissing?: boolean;
  /** Block CIDR; places the `--show-all-ips` "allocated" line under its block. */
  block?: string;
  /** Windows-reserved allocation: `--show-all-ips` also prints `belongs to Reserved for Windows`. */
  reservedForWindows?: boolean;
}

/** An in-use IP and who uses it: `Node(<name>)`, `Workload(<ns>/<name>)` or a service name. */
export interface InUseRef {
  ip: string;
  owner: string;
}

export interface InUseProblem {
  ip: string;
  owners: readonly string[];
}

export interface IpamCheckReport {
  blocks: readonly { cidr: string; affinity: string | null | undefined }[];
  allocationCount: number;
  /** CIDRs of the non-disabled pools. */
  activePools: readonly string[];
  /** Node tunnel IPs: a count, or the references (which `--show-all-ips` lists). */
  nodeTunnelIPs: number | readonly InUseRef[];
  /**
   * Services with Calico-managed LoadBalancer IPs; null/undefined when the kube-controllers
   * configuration has no LoadBalancer controller (the check is then skipped).
   */
  loadBalancer?: { services: number; ips?: readonly InUseRef[] } | null;
  /** Workload IPs: a count, or the references (which `--show-all-ips` lists). */
  workloadIPs: number | readonly InUseRef[];
  /** Distinct in-use IPs. Defaults to inUse.size, else derived from the reference lists. */
  inUseIPCount?: number;
  inUse?: ReadonlyMap<string, readonly string[]>;
  /** Allocation counts of every node, most first (only the first 20 are printed). */
  topNodes: readonly { node: string; count: number }[];
  /** Defaults to the count of topNodes[floor(n/2)], as calicoctl computes it. */
  median?: number;
  /** One entry per leaked allocation (an IP may appear more than once). */
  leaked: readonly CheckAllocation[];
  multipleOwners: readonly string[];
  notInPool: readonly InUseProblem[];
  noAllocation: readonly InUseProblem[];
  handlesWithoutIPs: readonly string[];
  handlesWithIPs: number;
  missingHandles: readonly string[];
  /** Every allocation, for `--show-all-ips`. */
  allocations?: readonly CheckAllocation[];
  /** HEAD only: blocks failing validation (adds the "Validating IPAMBlock structures" lines). */
  invalidBlocks?: readonly { key: string; error: string }[];
}

export interface IpamCheckOptions {
  showProblemIPs?: boolean;
  /** Implies showProblemIPs. */
  showAllIPs?: boolean;
}

function kvs(m: Readonly<Record<string, string>> | undefined): string {
  if (!m) return '';
  return Object.keys(m)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => `${k}=${m[k]}`)
    .join(',');
}

/** `Main:<handle> Extra:k=v,…[ Alternate:k=v,…]` as in the leaked/allocated lines. */
export function formatCheckAttrs(a: CheckAllocation): string {
  if (a.attrsMissing) return '<missing>';
  let s = `Main:${a.handle ?? '<none>'} Extra:${kvs(a.attrs)}`;
  if (a.alternateAttrs && Object.keys(a.alternateAttrs).length > 0) s += ` Alternate:${kvs(a.alternateAttrs)}`;
  return s;
}

const count = (v: number | readonly InUseRef[]) => (typeof v === 'number' ? v : v.length);
const refs = (v: number | readonly InUseRef[]) => (typeof v === 'number' ? [] : v);

/** Options and a report in, calicoctl's lines out (each ending in a newline). */
export function renderIpamCheck(r: IpamCheckReport, opts: IpamCheckOptions = {}): string {
  const showAll = opts.showAllIPs ?? false;
  const showProblems = showAll || (opts.showProblemIPs ?? false);
  const out: string[] = [];
  const p = (s = '') => out.push(s);
  const belongs = (list: readonly InUseRef[]) => {
    if (showAll) for (const x of list) p(`  ${x.ip} belongs to ${x.owner}`);
  };

  p('Checking IPAM for inconsistencies...');
  p();

  p('Loading all IPAM blocks...');
  p(`Found ${r.blocks.length} IPAM blocks.`);
  for (const b of r.blocks) {
    p(` IPAM block ${b.cidr} affinity=${b.affinity ?? '<none>'}:`);
    if (showAll) {
      for (const a of r.allocations ?? []) {
        if (a.block !== b.cidr) continue;
        if (a.reservedForWindows) p(`  ${a.ip} belongs to Reserved for Windows`);
        p(`  ${a.ip} allocated; attrs ${formatCheckAttrs(a)}`);
      }
    }
  }
  p(`IPAM blocks record ${r.allocationCount} allocations.`);
  p();

  p('Loading all IPAM pools...');
  for (const c of r.activePools) p(`  ${c}`);
  p(`Found ${r.activePools.length} active IP pools.`);
  p();

  p('Loading all nodes.');
  belongs(refs(r.nodeTunnelIPs));
  p(`Found ${count(r.nodeTunnelIPs)} node tunnel IPs.`);
  p();

  p('Loading all service load balancer IPs.');
  if (!r.loadBalancer) {
    p('No configuration for LoadBalancer kubecontroller found, skipping service check');
  } else {
    belongs(r.loadBalancer.ips ?? []);
    p(`Found ${r.loadBalancer.services} service load balancer(s).`);
  }
  p();

  p('Loading all workload endpoints.');
  belongs(refs(r.workloadIPs));
  p(`Found ${count(r.workloadIPs)} workload IPs.`);
  p(`Workloads and nodes are using ${inUseCount(r)} IPs.`);
  p();

  p('Loading all handles');
  p('Looking for top (up to 20) nodes by allocations...');
  const nodes = [...r.topNodes].sort((a, b) => b.count - a.count); // stable
  for (const n of nodes.slice(0, 20)) p(`  ${n.node} has ${n.count} allocations`);
  if (nodes.length > 0) {
    const median = r.median ?? nodes[Math.floor(nodes.length / 2)]!.count;
    p(`Node with most allocations has ${nodes[0]!.count}; median is ${median}`);
  }
  p();

  let problems = 0;
  p('Scanning for IPs that are allocated but not actually in use...');
  if (showProblems) for (const a of r.leaked) p(`  ${a.ip} leaked; attrs ${formatCheckAttrs(a)}`);
  const leakedIPs = new Set(r.leaked.map((a) => a.ip)).size;
  problems += leakedIPs;
  p(`Found ${leakedIPs} IPs that are allocated in IPAM but not actually in use.`);

  p('Scanning for IPs that are in use by a workload or node but not allocated in IPAM...');
  if (showProblems) inUseProblemLines(r, p);
  problems += r.notInPool.length + r.noAllocation.length;
  p(`Found ${r.notInPool.length} in-use IPs that are not in active IP pools.`);
  p(`Found ${r.noAllocation.length} in-use IPs that are in active IP pools but have no corresponding IPAM allocation.`);
  p();

  p('Scanning for IPAM handles with no matching IPs...');
  if (showAll) for (const h of r.handlesWithoutIPs) p(`  ${h} doesn't have any active IPs.`);
  problems += r.handlesWithoutIPs.length;
  p(`Found ${r.handlesWithoutIPs.length} handles with no matching IPs (and ${r.handlesWithIPs} handles with matches).`);

  p('Scanning for IPs with missing handle...');
  if (showProblems) for (const h of r.missingHandles) p(`  ${h} is in use in a block but doesn't exist.`);
  p(`Found ${r.missingHandles.length} handles mentioned in blocks with no matching handle resource.`);

  if (r.invalidBlocks) {
    p('Validating IPAMBlock structures...');
    for (const b of r.invalidBlocks) p(`  IPAMBlock ${b.key} is invalid: ${b.error}`);
    problems += r.invalidBlocks.length;
    p(`Found ${r.invalidBlocks.length} invalid IPAMBlocks.`);
  }

  p(`Check complete; found ${problems} problems.`);
  return out.map((l) => l + '\n').join('');
}

function inUseCount(r: IpamCheckReport): number {
  if (r.inUseIPCount !== undefined) return r.inUseIPCount;
  if (r.inUse) return r.inUse.size;
  const lists = [r.nodeTunnelIPs, r.workloadIPs];
  if (lists.every((l) => typeof l !== 'number')) {
    const ips = new Set<string>();
    for (const l of lists) for (const x of l as readonly InUseRef[]) ips.add(x.ip);
    for (const x of r.loadBalancer?.ips ?? []) ips.add(x.ip);
    return ips.size;
  }
  return count(r.nodeTunnelIPs) + count(r.workloadIPs);
}

/**
 * calicoctl walks the in-use IPs once: per IP, `has multiple owners` (if so), then one line per
 * owner when the IP is outside every active pool or has no allocation.
 */
function inUseProblemLines(r: IpamCheckReport, p: (s: string) => void): void {
  const order: string[] = [];
  const seen = new Set<string>();
  const add = (ip: string) => {
    if (!seen.has(ip)) {
      seen.add(ip);
      order.push(ip);
    }
  };
  for (const x of r.notInPool) add(x.ip);
  for (const x of r.noAllocation) add(x.ip);
  for (const x of r.multipleOwners) add(x);
  const multiple = new Set(r.multipleOwners);
  const notInPool = new Map(r.notInPool.map((x) => [x.ip, x.owners]));
  const noAllocation = new Map(r.noAllocation.map((x) => [x.ip, x.owners]));
  for (const ip of order) {
    if (multiple.has(ip)) p(`  ${ip} has multiple owners.`);
    for (const o of notInPool.get(ip) ?? []) p(`  ${ip} in use by ${o} is not in any active IP pool.`);
    for (const o of noAllocation.get(ip) ?? []) p(`  ${ip} in use by ${o} and in active IPAM pool but has no IPAM allocation.`);
  }
}
