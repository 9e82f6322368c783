// `tortiectl cluster check`: reads the datastore (pools, nodes, each node's CalicoNodeStatus,
// FelixConfigurations, IPAM through `ipam check`'s reader, without locking anything) and prints
// the findings of cluster-findings.ts. Exit 0 when there are none, 1 otherwise.
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { affinityPrefix, parseAffinityKey } from '../../libcalico-go/lib/backend/keys.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { type ParsedArgs, UsageError, flag } from './args.js';
import { type ClusterFacts, type Finding, findProblems, fmtWindow } from './cluster-findings.js';
import { runCheck } from './ipam-data.js';
import type { Io } from './resources.js';
import { TORTIE_VERSION } from './version.js';
import { renderFindings } from '../printers/cluster-check.js';

export const CLUSTER_USAGE = `Usage:
  tortiectl cluster check [--window=<duration>] [-o json] [--config=<config>]

Reads the whole cluster from the datastore (every node's CalicoNodeStatus, pools, nodes,
FelixConfiguration, IPAM) and prints what is wrong: severity, finding, evidence, fix.
Exit 0 when nothing is found, 1 otherwise.

Options:
  --window=<duration>  How far back restarts, readiness flips, route changes and
                       policy-table repairs count (e.g. 30s, 10m, 1h). [default: 10m]
  -o --output=<fmt>    "json" for machines.
`;

/** "90s", "10m", "1h" → ms. */
export function parseWindow(s: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(s.trim());
  if (!m) throw new UsageError(`--window: ${JSON.stringify(s)} is not a duration like 30s, 10m or 1h`);
  return Number(m[1]) * { s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 's' | 'm' | 'h'];
}

/** Everything the check reads, at one moment. */
export async function readClusterFacts(store: Backend, windowMs: number, now = new Date()): Promise<ClusterFacts> {
  const rc = new ResourceClient(store);
  const report = await runCheck(store, TORTIE_VERSION);
  const { items } = await store.list(affinityPrefix());
  const affinities = items.flatMap((kv) => {
    const a = parseAffinityKey(kv.key);
    return a ? [{ node: a.host, cidr: a.cidr }] : [];
  });
  const [pools, nodes, statuses, felixConfigs] = await Promise.all([
    rc.list('IPPool'),
    rc.list('Node'),
    rc.list('CalicoNodeStatus'),
    rc.list('FelixConfiguration'),
  ]);
  const owners = report.inUse;
  return {
    now,
    windowMs,
    pools,
    nodes,
    statuses,
    felixConfigs,
    blocks: report.blocks,
    affinities,
    ipam: {
      leaked: report.leaked,
      multipleOwners: report.multipleOwners.map((ip) => ({ ip, owners: owners.get(ip) ?? [] })),
      notInPool: report.notInPool,
      noAllocation: report.noAllocation,
    },
  };
}

export async function cmdCluster(store: Backend, p: ParsedArgs, io: Io): Promise<void> {
  const sub = p.positional.shift();
  if (sub !== 'check') throw new UsageError(`cluster needs: check${sub ? ` (got ${JSON.stringify(sub)})` : ''}`);
  const windowMs = parseWindow(flag(p, 'window') ?? '10m');
  const out = flag(p, 'output');
  if (out !== undefined && out !== 'json' && out !== 'table') throw new UsageError(`-o: ${JSON.stringify(out)} is not json or table`);
  const facts = await readClusterFacts(store, windowMs);
  const findings: Finding[] = findProblems(facts);
  const reporting = new Set(facts.statuses.map((s) => (s.spec as { node?: string }).node)).size;
  if (out === 'json') {
    io.out(JSON.stringify({ healthy: findings.length === 0, window: fmtWindow(windowMs), nodes: facts.nodes.length, reporting, findings }, null, 2) + '\n');
  } else {
    io.out(renderFindings(findings, { nodes: facts.nodes.length, reporting, window: fmtWindow(windowMs) }));
  }
  if (findings.length > 0) process.exitCode = 1;
}
