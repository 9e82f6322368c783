// `tortiectl cluster check`, the logic: the cluster's facts (pools, nodes, each node's
// CalicoNodeStatus with Tortie's `status.tortie`, FelixConfigurations, IPAM blocks and
// affinities, the `ipam check` report) in, findings out. Pure: no I/O, the clock is an input.
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';

type Obj = Record<string, unknown>;

export type Severity = 'error' | 'warning';

/** What a finding is about (the faults `tortie-lab break` injects map one-to-one onto these). */
export type FindingKind = 'pool-drift' | 'routes' | 'restarts' | 'mtu' | 'odd-node' | 'bgp' | 'ipam' | 'policy-repair' | 'node';

export interface Finding {
  kind: FindingKind;
  severity: Severity;
  /** The nodes it concerns (empty: the cluster). */
  nodes: string[];
  finding: string;
  /** The values seen and where. */
  evidence: string[];
  fix: string;
}

/** The subset of `ipam check`'s report the check uses (calicoctl/commands/ipam-data.ts runCheck). */
export interface IpamFacts {
  leaked: { ip: string; handle?: string; attrs: Record<string, string>; block: string }[];
  multipleOwners: { ip: string; owners: string[] }[];
  notInPool: { ip: string; owners: string[] }[];
  noAllocation: { ip: string; owners: string[] }[];
}

export interface ClusterFacts {
  now: Date;
  /** How far back events (restarts, readiness flips, route changes, repairs) count. */
  windowMs: number;
  pools: readonly Resource[];
  nodes: readonly Resource[];
  statuses: readonly Resource[];
  felixConfigs: readonly Resource[];
  /** Block → affine node, from the blocks. */
  blocks: readonly { cidr: string; affinity: string | null }[];
  /** Affinity records (node, block), from the affinity keys. */
  affinities: readonly { node: string; cidr: string }[];
  ipam: IpamFacts;
}

// ---- reading the facts ---------------------------------------------------------------------------

interface Route {
  destination: string;
  gateway: string;
  interface: string;
}
interface Peer {
  peerIP: string;
  type: string;
  state: string;
  since: string;
}
interface Tortie {
  nodeIP?: string;
  agentVersion?: string;
  startedAt?: string;
  restarts?: number;
  lastRestarts?: { at: string; reason: string; clean: boolean }[];
  ready?: boolean;
  notReadyReasons?: string[];
  readinessFlips?: { at: string; ready: boolean; reason: string }[];
  poolEnv?: Record<string, string>;
  poolDrift?: { variable: string; envValue: string; pool?: string; field: string; expected: string; actual: string; message: string }[];
  felixEnv?: Record<string, string>;
  networkingBackend?: string;
  birdSettings?: Record<string, string>;
  mtu?: { pod?: number; underlay?: number; underlayInterface?: string; podInterfaces?: number[] };
  kernel?: Record<string, string>;
  nftTables?: string[];
  policy?: { repairs?: number; lastRepairs?: { at: string; reason: string }[] };
  routeChanges?: { at: string; destination: string; from: string; to: string }[];
  birdRestarts?: { at: string; reason: string }[];
  bgpPeerReasons?: Record<string, string>;
}

export interface NodeFacts {
  node: string;
  lastUpdated?: string;
  period: number;
  bird?: { state?: string };
  peers: Peer[];
  routes: Route[];
  t: Tortie;
}

const obj = (v: unknown): Obj => (v !== null && typeof v === 'object' ? (v as Obj) : {});

/** One entry per node that reports (the newest CalicoNodeStatus with spec.node = it). */
export function nodeFacts(statuses: readonly Resource[]): NodeFacts[] {
  const by = new Map<string, NodeFacts>();
  for (const r of statuses) {
    const spec = obj(r.spec);
    const st = obj(r.status);
    const node = typeof spec.node === 'string' ? spec.node : '';
    if (!node || !st.lastUpdated) continue;
    const f: NodeFacts = {
      node,
      lastUpdated: String(st.lastUpdated),
      period: Number(spec.updatePeriodSeconds) || 10,
      bird: obj(obj(st.agent).birdV4) as NodeFacts['bird'],
      peers: (obj(st.bgp).peersV4 as Peer[] | undefined) ?? [],
      routes: (obj(st.routes).routesV4 as Route[] | undefined) ?? [],
      t: obj(st.tortie) as Tortie,
    };
    const cur = by.get(node);
    if (!cur || (cur.lastUpdated ?? '') < (f.lastUpdated ?? '')) by.set(node, f);
  }
  return [...by.values()].sort((a, b) => (a.node < b.node ? -1 : 1));
}

const ago = (now: Date, at: string) => {
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(at)) / 1000));
  return s < 120 ? `${s}s ago` : s < 7200 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};
const inWindow = (f: ClusterFacts, at: string) => f.now.getTime() - Date.parse(at) <= f.windowMs;
export const fmtWindow = (ms: number) => (ms % 60_000 === 0 ? `${ms / 60_000}m` : `${Math.round(ms / 1000)}s`);

function nodeIPs(f: ClusterFacts, facts: readonly NodeFacts[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const n of f.nodes) {
    const a = obj(obj(n.spec).bgp).ipv4Address;
    if (typeof a === 'string' && a) m.set(a.split('/')[0]!, n.metadata.name);
  }
  for (const n of facts) if (n.t.nodeIP) m.set(n.t.nodeIP, n.node);
  return m;
}

// ---- the checks ------------------------------------------------------------------------------

function poolDrift(facts: readonly NodeFacts[]): Finding[] {
  const groups = new Map<string, { d: NonNullable<Tortie['poolDrift']>[number]; nodes: string[] }>();
  for (const n of facts) {
    for (const d of n.t.poolDrift ?? []) {
      const key = `${d.variable}=${d.envValue}|${d.pool ?? ''}`;
      const g = groups.get(key) ?? { d, nodes: [] };
      g.nodes.push(n.node);
      groups.set(key, g);
    }
  }
  return [...groups.values()].map(({ d, nodes }) => ({
    kind: 'pool-drift',
    severity: 'error',
    nodes,
    finding: `${d.variable} disagrees with IPPool ${d.pool ?? '(none matches)'}`,
    evidence: [
      `tortie-node env on ${nodes.join(', ')}: ${d.variable}=${d.envValue}`,
      d.pool ? `IPPool ${d.pool}: ${d.field} ${d.actual}` : `no IPPool has CIDR ${d.expected}`,
    ],
    fix: d.pool
      ? `The environment only seeds a pool at first start. Set ${d.variable} to match the pool (${d.field} ${d.actual}) in the agent's environment, or change the pool (tortiectl patch ippool ${d.pool}) if the environment is what you meant.`
      : `Set ${d.variable} to an existing pool's CIDR, or create the pool.`,
  }));
}

function routes(f: ClusterFacts, facts: readonly NodeFacts[]): Finding[] {
  const ips = nodeIPs(f, facts);
  const owner = new Map(f.blocks.filter((b) => b.affinity?.startsWith('host:')).map((b) => [b.cidr, b.affinity!.slice(5)]));
  const out: Finding[] = [];
  // Who each node sends each block to (or holds it itself).
  const claims = new Map<string, string[]>(); // block → evidence lines of wrong holders / routes
  for (const n of facts) {
    for (const r of n.routes) {
      const o = owner.get(r.destination);
      if (!o) continue;
      if (r.gateway === 'blackhole' || r.gateway === '') {
        if (n.node !== o) {
          const how = r.gateway === 'blackhole' ? 'a blackhole route' : `a route on its interface ${r.interface}`;
          claims.set(r.destination, [...(claims.get(r.destination) ?? []), `${n.node} holds ${how} for it (so its BIRD advertises it)`]);
        }
        continue;
      }
      const via = ips.get(r.gateway);
      if (via !== o) {
        claims.set(r.destination, [
          ...(claims.get(r.destination) ?? []),
          `${n.node} routes it via ${r.gateway}${via ? ` (${via})` : ''} dev ${r.interface}`,
        ]);
      }
    }
  }
  for (const [block, ev] of claims) {
    const o = owner.get(block)!;
    out.push({
      kind: 'routes',
      severity: 'error',
      nodes: [...new Set(ev.map((e) => e.split(' ')[0]!))],
      finding: `Block ${block} is advertised or routed by more than one node`,
      evidence: [`IPAM: ${block} is affine to ${o}`, ...ev, 'routes as each node reports them (CalicoNodeStatus status.routes)'],
      fix: `Only ${o} should advertise ${block}. Find the other holder's source (birdc show route ${block} all on it; ip route show ${block}; a stray BlockAffinity in tortiectl ipam show --show-blocks) and remove it.`,
    });
  }
  // Next hops that changed within the window (both before and after: a route that came or went
  // with its block is not a flap), one finding per block with every node that saw it.
  const moved = new Map<string, { node: string; c: { at: string; from: string; to: string } }[]>();
  for (const n of facts) {
    for (const c of n.t.routeChanges ?? []) {
      if (!inWindow(f, c.at) || c.from === 'none' || c.to === 'none' || !owner.has(c.destination)) continue;
      moved.set(c.destination, [...(moved.get(c.destination) ?? []), { node: n.node, c }]);
    }
  }
  for (const [block, ch] of moved) {
    const nodes = [...new Set(ch.map((x) => x.node))];
    out.push({
      kind: 'routes',
      severity: 'warning',
      nodes,
      finding: `The next hop of ${block} changed ${ch.length} time(s) in the last ${fmtWindow(f.windowMs)} (on ${nodes.join(', ')})`,
      evidence: ch.slice(-6).map(({ node, c }) => `${node}: ${c.from} → ${c.to} (${ago(f.now, c.at)})`),
      fix: `A block whose next hop moves between nodes is advertised by two nodes or its owner (${owner.get(block)}) flaps: see the other findings, BIRD on the nodes involved (birdc show protocols; show route ${block} all) and the block's affinity.`,
    });
  }
  return out;
}

/** Readiness flips that are not explained by BGP sessions (those are the bgp finding's). */
const nonBgpReason = (reason: string) => reason.split('; ').some((r) => r && !r.startsWith('routes'));

function restarts(f: ClusterFacts, facts: readonly NodeFacts[]): Finding[] {
  const out: Finding[] = [];
  for (const n of facts) {
    const recent = (n.t.lastRestarts ?? []).filter((r) => !r.clean && inWindow(f, r.at));
    if (recent.length >= 2) {
      out.push({
        kind: 'restarts',
        severity: 'error',
        nodes: [n.node],
        finding: `tortie-node on ${n.node} restarted ${recent.length} times in the last ${fmtWindow(f.windowMs)} without a clean stop (${n.t.restarts ?? 0} restarts in all)`,
        evidence: recent.slice(-3).map((r) => `${ago(f.now, r.at)}: ${r.reason}`),
        fix: `Read the agent's log from before each restart (kubectl logs --previous, or the node's agent.log) and the liveness probe's failures; a process killed from outside (OOM killer, liveness) or a crash at start.`,
      });
    }
    const bird = (n.t.birdRestarts ?? []).filter((r) => inWindow(f, r.at));
    if (bird.length >= 2) {
      out.push({
        kind: 'restarts',
        severity: 'error',
        nodes: [n.node],
        finding: `BIRD on ${n.node} restarted ${bird.length} times in the last ${fmtWindow(f.windowMs)}`,
        evidence: bird.slice(-3).map((r) => `${ago(f.now, r.at)}: ${r.reason}`),
        fix: "Read the agent's log (routing/loop.ts: how BIRD exited) and BIRD's configuration (bird.cfg in the agent's run directory).",
      });
    }
    const flips = (n.t.readinessFlips ?? []).filter((x) => !x.ready && inWindow(f, x.at) && nonBgpReason(x.reason));
    if (flips.length >= 2) {
      out.push({
        kind: 'restarts',
        severity: 'warning',
        nodes: [n.node],
        finding: `tortie-node on ${n.node} went from ready to not ready ${flips.length} times in the last ${fmtWindow(f.windowMs)}`,
        evidence: flips.slice(-3).map((x) => `${ago(f.now, x.at)}: not ready: ${x.reason}`),
        fix: 'The reporters named are the ones failing; their detail says why (tortie-node /readiness).',
      });
    }
  }
  return out;
}

/** Encapsulation overhead the pools need: VXLAN 50, IP-in-IP 20, none 0. */
export function encapOverhead(pools: readonly Resource[]): { bytes: number; why: string } {
  let best = { bytes: 0, why: 'no encapsulation' };
  for (const p of pools) {
    const s = obj(p.spec);
    if (s.disabled === true) continue;
    if (typeof s.vxlanMode === 'string' && s.vxlanMode !== 'Never' && best.bytes < 50) best = { bytes: 50, why: `IPPool ${p.metadata.name} vxlanMode ${s.vxlanMode}: 50 bytes` };
    if (typeof s.ipipMode === 'string' && s.ipipMode !== 'Never' && best.bytes < 20) best = { bytes: 20, why: `IPPool ${p.metadata.name} ipipMode ${s.ipipMode}: 20 bytes` };
  }
  return best;
}

function mtu(f: ClusterFacts, facts: readonly NodeFacts[]): Finding[] {
  const out: Finding[] = [];
  const enc = encapOverhead(f.pools);
  for (const n of facts) {
    const m = n.t.mtu;
    if (!m?.underlay) continue;
    const biggest = Math.max(m.pod ?? 0, ...(m.podInterfaces ?? []));
    if (biggest + enc.bytes > m.underlay) {
      out.push({
        kind: 'mtu',
        severity: 'error',
        nodes: [n.node],
        finding: `Pod MTU does not fit the underlay on ${n.node}: ${biggest} + ${enc.bytes} > ${m.underlay}`,
        evidence: [
          `pod MTU ${m.pod ?? '?'} (agent's MTU file)${m.podInterfaces?.length ? `, pod interfaces ${m.podInterfaces.join(', ')}` : ''}`,
          `encapsulation: ${enc.why}`,
          `underlay ${m.underlayInterface ?? '?'} MTU ${m.underlay}`,
        ],
        fix: `Full-size packets will be dropped (or fragmented). Set the pod MTU to ${m.underlay - enc.bytes} or less (conflist "mtu", FELIX_VXLANMTU/FELIX_IPINIPMTU) or fix the underlay's MTU, then recreate the pods.`,
      });
    }
  }
  for (const [what, get] of [
    ['underlay MTU', (n: NodeFacts) => n.t.mtu?.underlay],
    ['pod MTU', (n: NodeFacts) => n.t.mtu?.pod],
  ] as const) {
    const vals = facts.map((n) => ({ node: n.node, v: get(n) })).filter((x) => x.v !== undefined);
    if (new Set(vals.map((x) => x.v)).size > 1) {
      out.push({
        kind: 'mtu',
        severity: 'warning',
        nodes: vals.map((x) => x.node),
        finding: `Nodes disagree on the ${what}`,
        evidence: vals.map((x) => `${x.node}: ${x.v}`),
        fix: 'Every node should have the same MTU: packets between nodes are limited by the smaller one.',
      });
    }
  }
  return out;
}

const ownTable = (t: string) => / tortie-/.test(t);

/** The settings compared across nodes for `odd-node` (MTU and pool env have their own findings). */
export function comparableSettings(n: NodeFacts, felix: readonly Resource[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of Object.entries(n.t.felixEnv ?? {})) m.set(`env ${k}`, v);
  m.set('networking backend', n.t.networkingBackend ?? '');
  for (const [k, v] of Object.entries(n.t.birdSettings ?? {})) m.set(`BIRD ${k}`, v);
  m.set('agent version', n.t.agentVersion ?? '');
  for (const [k, v] of Object.entries(n.t.kernel ?? {})) m.set(`sysctl ${k}`, v);
  // Tortie's own tables (a node without inet tortie-filter enforces no policy); other tables are
  // the operator's and may differ by design (they show in the BGP finding's evidence).
  m.set("Tortie's nftables tables", (n.t.nftTables ?? []).filter(ownTable).join(', '));
  const def = felix.find((c) => c.metadata.name === 'default');
  const own = felix.find((c) => c.metadata.name === `node.${n.node}`);
  const fcs = { ...obj(def?.spec), ...obj(own?.spec) };
  for (const [k, v] of Object.entries(fcs)) m.set(`FelixConfiguration ${k}`, JSON.stringify(v));
  return m;
}

function oddNodes(f: ClusterFacts, facts: readonly NodeFacts[]): Finding[] {
  if (facts.length < 3) return [];
  const settings = facts.map((n) => ({ node: n.node, s: comparableSettings(n, f.felixConfigs) }));
  const keys = new Set(settings.flatMap((x) => [...x.s.keys()]));
  const diffs = new Map<string, string[]>();
  // BIRD's settings are compared among the nodes that report them (not yet, just after a start).
  const reportsBird = (x: (typeof settings)[number]) => [...x.s.keys()].some((k) => k.startsWith('BIRD '));
  for (const k of [...keys].sort()) {
    const among = k.startsWith('BIRD ') ? settings.filter(reportsBird) : settings;
    const counts = new Map<string, number>();
    for (const x of among) counts.set(x.s.get(k) ?? '(unset)', (counts.get(x.s.get(k) ?? '(unset)') ?? 0) + 1);
    const [major, c] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
    if (among.length < 3 || c * 2 <= among.length || counts.size === 1) continue;
    for (const x of among) {
      const v = x.s.get(k) ?? '(unset)';
      if (v !== major) diffs.set(x.node, [...(diffs.get(x.node) ?? []), `${k}: ${v} (the other ${c}: ${major})`]);
    }
  }
  return [...diffs].map(([node, ev]) => ({
    kind: 'odd-node',
    severity: 'warning',
    nodes: [node],
    finding: `${node} is configured differently from the other nodes`,
    evidence: ev,
    fix: 'All nodes should be configured the same way: make this node match the others (its agent environment, FelixConfiguration node.<name>, kernel settings), or the others match it.',
  }));
}

function bgp(f: ClusterFacts, facts: readonly NodeFacts[]): Finding[] {
  const ips = nodeIPs(f, facts);
  const out: Finding[] = [];
  for (const n of facts) {
    if ((n.t.networkingBackend ?? 'bird') !== 'bird') continue;
    const ev: string[] = [];
    if (n.bird?.state !== 'Ready') ev.push(`BIRD on ${n.node} is not running (CalicoNodeStatus agent.birdV4.state ${n.bird?.state ?? 'unknown'})`);
    for (const p of n.peers.filter((x) => x.state !== 'Established')) {
      const who = ips.get(p.peerIP);
      const why = n.t.bgpPeerReasons?.[p.peerIP];
      ev.push(`${n.node} → ${p.peerIP}${who ? ` (${who})` : ''}: ${p.state} since ${p.since}${why ? `, BIRD: ${why}` : ''}`);
    }
    if (ev.length === 0) continue;
    if (n.t.ready === false) ev.push(`${n.node} not ready: ${(n.t.notReadyReasons ?? []).join('; ')}`);
    const foreign = (n.t.nftTables ?? []).filter((t) => !ownTable(t));
    if (foreign.length) ev.push(`nftables tables on ${n.node} that are not Tortie's: ${foreign.join(', ')} (a firewall rule may block TCP 179)`);
    out.push({
      kind: 'bgp',
      severity: 'error',
      nodes: [n.node],
      finding: `BGP sessions of ${n.node} are not Established`,
      evidence: ev,
      fix: 'Routes to and from the peers named are missing. Check BIRD on both ends (tortiectl node status), that TCP 179 is open between them (firewall, nftables), and the Node addresses.',
    });
  }
  return out;
}

function ipam(f: ClusterFacts): Finding[] {
  const out: Finding[] = [];
  const r = f.ipam;
  if (r.leaked.length) {
    out.push({
      kind: 'ipam',
      severity: 'warning',
      nodes: [],
      finding: `${r.leaked.length} IP address(es) allocated with no workload or node using them (leaked)`,
      evidence: r.leaked.slice(0, 10).map((a) => `${a.ip} in block ${a.block}, handle ${a.handle ?? '(none)'}${Object.keys(a.attrs).length ? `, ${Object.entries(a.attrs).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`),
      fix: 'tortiectl ipam check --show-problem-ips -o report.json, then tortiectl ipam release --from-report=report.json (only when no pod is being created right now).',
    });
  }
  if (r.multipleOwners.length) {
    out.push({
      kind: 'ipam',
      severity: 'error',
      nodes: [],
      finding: `${r.multipleOwners.length} IP address(es) used by more than one owner (duplicates)`,
      evidence: r.multipleOwners.slice(0, 10).map((d) => `${d.ip}: ${d.owners.join(', ')}`),
      fix: 'Two workloads share an address: delete and recreate one of them.',
    });
  }
  for (const [list, what] of [
    [r.notInPool, 'outside every active pool'],
    [r.noAllocation, 'in use with no IPAM allocation'],
  ] as const) {
    if (!list.length) continue;
    out.push({
      kind: 'ipam',
      severity: 'error',
      nodes: [],
      finding: `${list.length} IP address(es) ${what}`,
      evidence: list.slice(0, 10).map((d) => `${d.ip}: ${d.owners.join(', ')}`),
      fix: 'tortiectl ipam check --show-problem-ips lists them; recreate the workloads so they get allocated addresses.',
    });
  }
  const names = new Set(f.nodes.map((n) => n.metadata.name));
  const gone = f.affinities.filter((a) => !names.has(a.node));
  if (gone.length) {
    out.push({
      kind: 'ipam',
      severity: 'warning',
      nodes: [...new Set(gone.map((a) => a.node))],
      finding: `${gone.length} block affinit(ies) of nodes that no longer exist`,
      evidence: gone.slice(0, 10).map((a) => `block ${a.cidr} affine to ${a.node} (no Node ${a.node})`),
      fix: 'Their addresses cannot be freed by their node: release the blocks (Calico\'s kube-controllers does this; tortiectl ipam release for the addresses, then the affinity).',
    });
  }
  return out;
}

function policyRepairs(f: ClusterFacts, facts: readonly NodeFacts[]): Finding[] {
  const out: Finding[] = [];
  for (const n of facts) {
    const rec = (n.t.policy?.lastRepairs ?? []).filter((r) => inWindow(f, r.at));
    if (rec.length === 0) continue;
    out.push({
      kind: 'policy-repair',
      severity: 'warning',
      nodes: [n.node],
      finding: `The policy table on ${n.node} was found changed and repaired ${rec.length} time(s) in the last ${fmtWindow(f.windowMs)}`,
      evidence: rec.slice(-3).map((r) => `${ago(f.now, r.at)}: ${r.reason}`),
      fix: "Something else writes the table inet tortie-filter (another agent, a script running nft): find it in the agent's log (\"was not as written\") and stop it.",
    });
  }
  return out;
}

function nodesReporting(f: ClusterFacts, facts: readonly NodeFacts[], bgpNodes: ReadonlySet<string>): Finding[] {
  const out: Finding[] = [];
  const seen = new Set(facts.map((n) => n.node));
  for (const n of f.nodes) {
    if (!seen.has(n.metadata.name)) {
      out.push({
        kind: 'node',
        severity: 'warning',
        nodes: [n.metadata.name],
        finding: `No CalicoNodeStatus from ${n.metadata.name}`,
        evidence: [`Node ${n.metadata.name} exists; no CalicoNodeStatus has spec.node ${n.metadata.name} with a status`],
        fix: 'Its agent is not running or not Tortie\'s; start it (it creates the resource) or create a CalicoNodeStatus for the node.',
      });
    }
  }
  for (const n of facts) {
    const age = f.now.getTime() - Date.parse(n.lastUpdated ?? '');
    const limit = Math.max(3 * n.period * 1000, 15_000);
    if (!(age <= limit)) {
      out.push({
        kind: 'node',
        severity: 'error',
        nodes: [n.node],
        finding: `${n.node} has not reported for ${Math.round(age / 1000)}s`,
        evidence: [`CalicoNodeStatus lastUpdated ${n.lastUpdated} (update period ${n.period}s); the facts below are that old`],
        fix: 'Its agent is down or cannot reach the datastore: look at it on the node (tortie-node log, /readiness).',
      });
    } else if (n.t.kernel?.['net.ipv4.ip_forward'] === '0') {
      out.push({
        kind: 'node',
        severity: 'error',
        nodes: [n.node],
        finding: `IPv4 forwarding is off on ${n.node}`,
        evidence: [`net.ipv4.ip_forward = 0 (in the agent's network namespace)`],
        fix: 'Pods on this node reach nothing beyond it: sysctl -w net.ipv4.ip_forward=1 (tortie-node sets it at start; something turned it off).',
      });
    }
    if (age <= limit && n.t.ready === false && !bgpNodes.has(n.node)) {
      out.push({
        kind: 'node',
        severity: 'error',
        nodes: [n.node],
        finding: `${n.node} is not ready`,
        evidence: (n.t.notReadyReasons ?? []).map((r) => `not ready: ${r}`),
        fix: 'The reporters named are failing; their detail says why.',
      });
    }
  }
  return out;
}

/** Every finding for these facts, errors first. */
export function findProblems(f: ClusterFacts): Finding[] {
  // A CalicoNodeStatus outlives its Node (Calico leaves them to whoever made them): a deleted
  // node's last facts are history, not a problem of the cluster.
  const names = new Set(f.nodes.map((n) => n.metadata.name));
  const facts = nodeFacts(f.statuses).filter((n) => names.has(n.node));
  const b = bgp(f, facts);
  const all = [
    ...nodesReporting(f, facts, new Set(b.flatMap((x) => x.nodes))),
    ...poolDrift(facts),
    ...routes(f, facts),
    ...restarts(f, facts),
    ...mtu(f, facts),
    ...oddNodes(f, facts),
    ...b,
    ...ipam(f),
    ...policyRepairs(f, facts),
  ];
  return all.sort((a, c) => (a.severity === c.severity ? 0 : a.severity === 'error' ? -1 : 1));
}
