// The node's facts in the datastore, as Calico's CalicoNodeStatus: calico-node fills the status of
// every CalicoNodeStatus whose spec.node is its node (classes Agent, BGP, Routes) every
// spec.updatePeriodSeconds. Tortie's agent does the same, creates one named after its node when
// none exists, and adds `status.tortie`: what `tortiectl cluster check` compares across nodes
// (restarts and their reasons, readiness flips, the CALICO_IPV4POOL_* and FELIX_* environment,
// MTUs, kernel settings, nftables tables, policy-table repairs, route next-hop changes, BGP reasons).
//
// Why the datastore and not an HTTP endpoint per agent: the check then runs from anywhere the
// datastore is reachable (as calicoctl does) without reaching every node's health port, a node
// that is down still shows its last facts with their age, and Calico's own resource carries them.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BgpModel, type BirdProtocolRow, birdCommand, parseBirdShowProtocols } from '../../confd/pkg/index.js';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import type { Logger } from '../../libcalico-go/lib/logutils/index.js';
import { cidrContainsIP, parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';
import type { Env } from './config.js';
import type { HealthAggregator } from './health.js';
import type { Registry } from '../../libcalico-go/lib/metrics/index.js';
import { type DriftFinding, writeStateFile } from './startup.js';

const run = promisify(execFile);
type Obj = Record<string, unknown>;

export const DEFAULT_UPDATE_PERIOD_S = 10;
const KEEP_EVENTS = 20;

// ---- restarts: a record of the agent's runs in its state dir ------------------------------------

export interface AgentRun {
  pid: number;
  startedAt: string;
  /** Set by a clean stop (SIGTERM/SIGINT handled to the end). */
  stoppedAt?: string;
  stopReason?: string;
}

export interface RestartEvent {
  at: string;
  reason: string;
  previousPid: number;
  clean: boolean;
}

export interface RestartFacts {
  startedAt: string;
  restarts: number;
  uncleanRestarts: number;
  lastRestarts: RestartEvent[];
}

interface RunsFile {
  runs: AgentRun[];
  restarts: number;
  uncleanRestarts: number;
  lastRestarts: RestartEvent[];
}

/** Pure: the runs file after a start by `pid` at `now`, and the restart it records (if any). */
export function recordStart(prev: RunsFile | null, pid: number, now: Date): RunsFile {
  const at = now.toISOString();
  const f: RunsFile = prev ?? { runs: [], restarts: 0, uncleanRestarts: 0, lastRestarts: [] };
  const last = f.runs[f.runs.length - 1];
  let lastRestarts = f.lastRestarts;
  let { restarts, uncleanRestarts } = f;
  if (last) {
    const clean = last.stoppedAt !== undefined;
    const reason = clean
      ? `previous agent (pid ${last.pid}) stopped cleanly at ${last.stoppedAt} (${last.stopReason ?? 'stopped'})`
      : `previous agent (pid ${last.pid}, started ${last.startedAt}) ended without a clean stop (killed or crashed)`;
    restarts++;
    if (!clean) uncleanRestarts++;
    lastRestarts = [...lastRestarts, { at, reason, previousPid: last.pid, clean }].slice(-KEEP_EVENTS);
  }
  return { runs: [...f.runs, { pid, startedAt: at }].slice(-KEEP_EVENTS), restarts, uncleanRestarts, lastRestarts };
}

/** Pure: the runs file after a clean stop of `pid`. */
export function recordStop(f: RunsFile, pid: number, reason: string, now: Date): RunsFile {
  return { ...f, runs: f.runs.map((r) => (r.pid === pid && !r.stoppedAt ? { ...r, stoppedAt: now.toISOString(), stopReason: reason } : r)) };
}

function readRuns(path: string): RunsFile | null {
  try {
    const f = JSON.parse(readFileSync(path, 'utf8')) as RunsFile;
    return Array.isArray(f.runs) ? f : null;
  } catch {
    return null;
  }
}

/** The agent's run record: `$TORTIE_STATE_DIR/agent-runs.json`. */
export class RunRecord {
  private readonly path: string;
  readonly facts: RestartFacts;

  constructor(stateDir: string, private readonly pid = process.pid, now = new Date()) {
    this.path = join(stateDir, 'agent-runs.json');
    const f = recordStart(readRuns(this.path), pid, now);
    writeStateFile(this.path, JSON.stringify(f) + '\n');
    this.facts = { startedAt: now.toISOString(), restarts: f.restarts, uncleanRestarts: f.uncleanRestarts, lastRestarts: f.lastRestarts };
  }

  /** Marks this run as stopped cleanly (so the next start is not counted as a crash). */
  stopped(reason: string): void {
    const f = readRuns(this.path);
    if (f) writeStateFile(this.path, JSON.stringify(recordStop(f, this.pid, reason, new Date())) + '\n');
  }
}

// ---- BIRD ---------------------------------------------------------------------------------------

export interface BirdDaemon {
  state: 'Ready' | 'NotReady';
  version?: string;
  routerID?: string;
  lastBootTime?: string;
  lastReconfigurationTime?: string;
}

/** Pure: BIRD's `show status` reply → Calico's BGPDaemonStatus. */
export function parseBirdStatus(raw: string): BirdDaemon {
  const text = raw
    .split('\n')
    .map((l) => l.replace(/^\d{4}[- ]/, '').trim())
    .join('\n');
  const m = (re: RegExp) => re.exec(text)?.[1];
  return {
    state: /Daemon is up and running/.test(text) ? 'Ready' : 'NotReady',
    version: m(/^BIRD (\S+)/m),
    routerID: m(/Router ID is (\S+)/),
    lastBootTime: m(/Last reboot on (.+)/),
    lastReconfigurationTime: m(/Last reconfiguration on (.+)/),
  };
}

export interface PeerStatus {
  peerIP: string;
  type: 'NodeMesh' | 'NodePeer' | 'GlobalPeer';
  state: string;
  since: string;
  /** BIRD's words after the state (e.g. `Socket: Connection refused`). */
  reason: string;
}

const PEER_TYPES: Record<string, PeerStatus['type']> = { Mesh: 'NodeMesh', Node: 'NodePeer', Global: 'GlobalPeer' };

/** Pure: the BGP peers of `show protocols` rows, in Calico's CalicoNodePeer terms. */
export function peersFromRows(rows: readonly BirdProtocolRow[]): PeerStatus[] {
  const out: PeerStatus[] = [];
  for (const r of rows) {
    if (r.proto !== 'BGP') continue;
    const m = /^(Mesh|Node|Global)_(\d+_\d+_\d+_\d+)(?:_port_\d+)?$/.exec(r.name);
    if (!m) continue;
    const words = r.info.split(' ').filter(Boolean);
    // BIRD: state `up` with info `Established`; `start` with `Active`/`Connect`/`Idle` and a reason.
    const state = words[0] ?? (r.state === 'up' ? 'Established' : 'Idle');
    out.push({ peerIP: m[2]!.split('_').join('.'), type: PEER_TYPES[m[1]!]!, state, since: r.since, reason: words.slice(1).join(' ') });
  }
  return out;
}

// ---- routes -------------------------------------------------------------------------------------

export interface NodeRoute {
  type: 'FIB';
  destination: string;
  gateway: string;
  interface: string;
  learnedFrom: { sourceType: string; peerIP?: string };
}

interface IpRoute {
  dst?: string;
  gateway?: string;
  dev?: string;
  type?: string;
  protocol?: string;
  nexthops?: { gateway?: string; dev?: string }[];
}

/**
 * Pure: `ip -j route show` entries whose destination lies in a pool (not the /32 host routes of
 * this node's own pods), one per next hop, in Calico's CalicoNodeRoute terms.
 */
export function routesFromIp(list: readonly IpRoute[], pools: readonly string[], peers: ReadonlySet<string>): NodeRoute[] {
  const poolCidrs = pools.map((p) => parseCIDR(p)).filter((c) => c !== null);
  const out: NodeRoute[] = [];
  for (const r of list) {
    if (!r.dst || r.dst === 'default') continue;
    const dst = r.dst.includes('/') ? r.dst : `${r.dst}/32`;
    const ip = parseIP(dst.split('/')[0]!);
    if (!ip || !poolCidrs.some((c) => cidrContainsIP(c, ip))) continue;
    if (dst.endsWith('/32') && !r.gateway && !r.nexthops && r.type !== 'blackhole') continue;
    const hops = r.nexthops?.length ? r.nexthops : [{ gateway: r.gateway, dev: r.dev }];
    for (const h of hops) {
      const gw = h.gateway ?? '';
      const sourceType = r.type === 'blackhole' ? 'Static' : r.protocol === 'bird' ? (peers.has(gw) ? 'NodeMesh' : 'BGPPeer') : 'Kernel';
      out.push({
        type: 'FIB',
        destination: dst,
        gateway: r.type === 'blackhole' ? 'blackhole' : gw,
        interface: h.dev ?? r.dev ?? '',
        learnedFrom: gw && r.protocol === 'bird' ? { sourceType, peerIP: gw } : { sourceType },
      });
    }
  }
  return out.sort((a, b) => (a.destination + a.gateway < b.destination + b.gateway ? -1 : 1));
}

export interface RouteChange {
  at: string;
  destination: string;
  from: string;
  to: string;
}

/** Pure: the next-hop changes between two route snapshots (gateways per destination, joined by `,`). */
export function routeChanges(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>, at: string): RouteChange[] {
  const out: RouteChange[] = [];
  for (const dest of new Set([...before.keys(), ...after.keys()])) {
    const from = before.get(dest) ?? '';
    const to = after.get(dest) ?? '';
    if (from !== to) out.push({ at, destination: dest, from: from || 'none', to: to || 'none' });
  }
  return out;
}

export function gatewaysByDestination(routes: readonly NodeRoute[]): Map<string, string> {
  const m = new Map<string, string[]>();
  for (const r of routes) m.set(r.destination, [...(m.get(r.destination) ?? []), r.gateway || `dev ${r.interface}`]);
  return new Map([...m].map(([d, g]) => [d, [...new Set(g)].sort().join(',')]));
}

/**
 * Pure: the settings of BIRD's configuration that every node should share (not its addresses,
 * blocks or the names of its peers), as strings, for cluster check's odd-node comparison.
 */
export function bgpSettings(m: BgpModel | undefined): { birdSettings: Record<string, string> } | undefined {
  if (!m) return undefined;
  const count = (t: string) => m.peers.filter((p) => p.type === t).length;
  return {
    birdSettings: {
      asNumber: String(m.asNumber),
      listenPort: String(m.listenPort),
      nodeToNodeMesh: String(m.meshEnabled),
      bindMode: m.bindMode,
      logSeverity: m.logSeverity,
      programClusterRoutes: m.programClusterRoutes,
      ignoredInterfaces: m.ignoredInterfaces.join(','),
      peers: `mesh ${count('mesh')}, global ${count('global')}, node ${count('node')}`,
      routeReflector: m.routeReflectorClusterId ? 'yes' : 'no',
    },
  };
}

// ---- the writer ---------------------------------------------------------------------------------

/** Kernel settings Tortie needs or relies on, read in this network namespace. */
const SYSCTLS = ['net.ipv4.ip_forward', 'net.ipv4.conf.all.rp_filter', 'net.ipv4.conf.default.rp_filter', 'net.ipv4.conf.all.forwarding'];

export interface NodeStatusOptions {
  nodeName: string;
  store: () => Backend | null;
  log: Logger;
  health: HealthAggregator;
  metrics: Registry;
  env: Env;
  runs: RunRecord;
  runDir: string;
  /** The node's IPv4 address (from start-up), to find the underlay interface. */
  nodeIP: () => string | undefined;
  /** The CALICO_IPV4POOL_* settings that disagree with the stored pools (the agent's start-up check). */
  poolDrift: (pools: Resource[]) => DriftFinding[];
  /** The BGP model BIRD's configuration is rendered from (the routing loop's last plan). */
  bgpModel?: () => BgpModel | undefined;
  /** The pod MTU the agent worked out at start-up. */
  podMTU: () => number | undefined;
  version?: string;
  /** Default spec.updatePeriodSeconds of the CalicoNodeStatus the agent creates. */
  defaultPeriodS?: number;
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

async function json<T>(argv: string[]): Promise<T | undefined> {
  try {
    const { stdout } = await run(argv[0]!, argv.slice(1), { timeout: 5000 });
    return JSON.parse(stdout) as T;
  } catch {
    return undefined;
  }
}

export class NodeStatusWriter {
  private timer: NodeJS.Timeout | null = null;
  private tick = 0;
  private lastWrite = 0;
  private lastWarn = 0;
  private wasReady: boolean | null = null;
  private everReady = false;
  private flips: { at: string; ready: boolean; reason: string }[] = [];
  private routeHistory: RouteChange[] = [];
  private lastRoutes: Map<string, string> | null = null;
  private repairs: { at: string; reason: string }[] = [];
  private lastRepairCount: number | null = null;
  private passes = 0;
  private urgent = false;
  private stopped = false;
  private busy = false;

  constructor(private readonly o: NodeStatusOptions) {}

  start(): void {
    this.timer = setInterval(() => void this.onTick(), 1000);
    this.timer.unref();
    void this.onTick();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  private async onTick(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      this.watchReadiness();
      await this.watchRepairs();
      const store = this.o.store();
      if (!store) return;
      const rc = new ResourceClient(store);
      // The datastore is read every 5 s (the pools, this node's CalicoNodeStatus and its period);
      // the kernel's routes every second (their changes are events); the status written each period.
      if (this.cache === null || this.tick % 5 === 0 || this.cache.store !== store) {
        const mine = (await rc.list('CalicoNodeStatus')).filter((r) => (r.spec as Obj | undefined)?.node === this.o.nodeName);
        const poolRes = await rc.list('IPPool');
        this.cache = { store, mine, pools: poolRes.map((p) => String((p.spec as Obj).cidr ?? '')).filter(Boolean) };
        this.drift = this.o.poolDrift(poolRes).map((d) => ({ ...d, expected: String(d.expected), actual: String(d.actual) }));
      }
      this.tick++;
      const { mine, pools } = this.cache;
      const fallback = this.o.defaultPeriodS ?? DEFAULT_UPDATE_PERIOD_S;
      const period = mine.length > 0 ? Math.min(...mine.map((r) => Number((r.spec as Obj).updatePeriodSeconds) || fallback)) : fallback;
      const routes = await this.readRoutes(pools);
      if (!this.urgent && Date.now() - this.lastWrite < period * 1000 && mine.length > 0) return;
      this.urgent = false;
      const status = await this.collect(routes);
      if (mine.length === 0) {
        await rc.create({
          apiVersion: 'projectcalico.org/v3',
          kind: 'CalicoNodeStatus',
          metadata: { name: this.o.nodeName },
          spec: { node: this.o.nodeName, classes: ['Agent', 'BGP', 'Routes'], updatePeriodSeconds: this.o.defaultPeriodS ?? DEFAULT_UPDATE_PERIOD_S },
          status,
        });
      }
      for (const r of mine) await this.update(rc, r, status);
      this.lastWrite = Date.now();
      // Read again next tick: the resource versions changed (and a created one now exists).
      this.cache = null;
    } catch (e) {
      // E.g. an update conflict with someone editing the spec: read afresh next time.
      this.cache = null;
      if (Date.now() - this.lastWarn >= 60_000) {
        this.lastWarn = Date.now();
        this.o.log.warn(`Could not write CalicoNodeStatus for ${this.o.nodeName}: ${errText(e)}`);
      }
    } finally {
      this.busy = false;
    }
  }

  private async update(rc: ResourceClient, r: Resource, status: Obj): Promise<void> {
    const classes = ((r.spec as Obj).classes as string[] | undefined) ?? [];
    const s: Obj = { lastUpdated: status.lastUpdated, tortie: status.tortie };
    if (classes.includes('Agent')) s.agent = status.agent;
    if (classes.includes('BGP')) s.bgp = status.bgp;
    if (classes.includes('Routes')) s.routes = status.routes;
    await rc.update({ ...r, status: s });
  }

  private watchReadiness(): void {
    const sum = this.o.health.summary();
    // A flip is a change after the agent was first ready (becoming ready at start is not one).
    if (this.wasReady !== null && sum.ready !== this.wasReady && this.everReady) {
      const reason = sum.ready ? 'ready again' : sum.reporters.filter((r) => r.reportsReady && !r.ready).map((r) => `${r.name}${r.detail ? `: ${r.detail}` : ''}`).join('; ');
      this.flips = [...this.flips, { at: new Date().toISOString(), ready: sum.ready, reason }].slice(-KEEP_EVENTS);
      this.urgent = true;
    }
    this.wasReady = sum.ready;
    if (sum.ready) this.everReady = true;
  }

  private async watchRepairs(): Promise<void> {
    const c = this.o.metrics.counter('tortie_policy_table_writes_total', 'Writes of the policy table, by reason.', ['reason']);
    const values = (await c.get()).values;
    let repairs = 0;
    let passes = 0;
    for (const v of values) {
      passes += v.value;
      if (v.labels.reason === 'table missing' || v.labels.reason === 'table changed') repairs += v.value;
    }
    this.passes = passes;
    if (this.lastRepairCount !== null && repairs > this.lastRepairCount) {
      const at = new Date().toISOString();
      for (let i = this.lastRepairCount; i < repairs; i++) this.repairs = [...this.repairs, { at, reason: "the kernel's inet tortie-filter was not as written; rewritten" }].slice(-KEEP_EVENTS);
      this.urgent = true;
    }
    this.lastRepairCount = repairs;
  }

  private peerSet = new Set<string>();
  private drift: Obj[] = [];
  private birdBoot: string | undefined;
  private birdRestarts: { at: string; reason: string }[] = [];
  private cache: { store: Backend; mine: Resource[]; pools: string[] } | null = null;

  private async readRoutes(pools: readonly string[]): Promise<NodeRoute[]> {
    const list = (await json<IpRoute[]>(['/usr/sbin/ip', '-j', '-4', 'route', 'show', 'table', 'main'])) ?? [];
    const routes = routesFromIp(list, pools, this.peerSet);
    const now = gatewaysByDestination(routes);
    if (this.lastRoutes) {
      const ch = routeChanges(this.lastRoutes, now, new Date().toISOString());
      if (ch.length > 0) {
        this.routeHistory = [...this.routeHistory, ...ch].slice(-KEEP_EVENTS * 2);
        this.urgent = true;
      }
    }
    this.lastRoutes = now;
    return routes;
  }

  private async collect(routes: NodeRoute[]): Promise<Obj> {
    const sock = join(this.o.runDir, 'bird.ctl');
    let bird: BirdDaemon = { state: 'NotReady' };
    let peers: PeerStatus[] = [];
    try {
      bird = parseBirdStatus((await birdCommand(sock, 'show status', { timeoutMs: 2000 })).raw);
      peers = peersFromRows(parseBirdShowProtocols((await birdCommand(sock, 'show protocols', { timeoutMs: 2000 })).raw));
    } catch {
      // BIRD not running (VXLAN mode, or down): state NotReady, no peers.
    }
    this.peerSet = new Set(peers.map((p) => p.peerIP));
    // BIRD restarted under this agent (its supervisor starts it again after a crash or a kill).
    if (bird.lastBootTime) {
      if (this.birdBoot && bird.lastBootTime !== this.birdBoot) {
        this.birdRestarts = [...this.birdRestarts, { at: new Date().toISOString(), reason: `BIRD started again (boot ${bird.lastBootTime}, previous ${this.birdBoot})` }].slice(-KEEP_EVENTS);
      }
      this.birdBoot = bird.lastBootTime;
    }
    const established = peers.filter((p) => p.state === 'Established').length;
    const sum = this.o.health.summary();
    const env = this.o.env;
    const pick = (re: RegExp) => Object.fromEntries(Object.entries(env).filter(([k, v]) => re.test(k) && v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1))) as Record<string, string>;
    const felixEnv = pick(/^FELIX_/);
    const mtu = await this.readMtu();
    const kernel: Record<string, string> = {};
    for (const k of SYSCTLS) {
      try {
        kernel[k] = readFileSync(`/proc/sys/${k.split('.').join('/')}`, 'utf8').trim();
      } catch {
        // not in this kernel
      }
    }
    const tables = (await json<{ nftables: { table?: { family: string; name: string } }[] }>(['/usr/sbin/nft', '-j', 'list', 'tables']))?.nftables ?? [];
    return {
      lastUpdated: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      agent: { birdV4: bird },
      bgp: {
        numberEstablishedV4: established,
        numberNotEstablishedV4: peers.length - established,
        peersV4: peers.map(({ reason: _r, ...p }) => p),
      },
      routes: { routesV4: routes },
      tortie: {
        agentVersion: this.o.version ?? '',
        nodeIP: this.o.nodeIP() ?? '',
        ...this.o.runs.facts,
        ready: sum.ready,
        notReadyReasons: sum.reporters.filter((r) => r.reportsReady && !r.ready).map((r) => `${r.name}${r.detail ? `: ${r.detail}` : ''}`),
        readinessFlips: this.flips,
        poolEnv: pick(/^CALICO_IPV4POOL_/),
        poolDrift: this.drift,
        felixEnv,
        networkingBackend: env.CALICO_NETWORKING_BACKEND ?? 'bird',
        mtu,
        kernel,
        nftTables: tables.flatMap((t) => (t.table ? [`${t.table.family} ${t.table.name}`] : [])).sort(),
        policy: { passes: this.passes, repairs: this.lastRepairCount ?? 0, lastRepairs: this.repairs },
        ...(bgpSettings(this.o.bgpModel?.()) ?? {}),
        routeChanges: this.routeHistory,
        birdRestarts: this.birdRestarts,
        bgpPeerReasons: Object.fromEntries(peers.filter((p) => p.reason).map((p) => [p.peerIP, p.reason])),
      },
    };
  }

  private async readMtu(): Promise<Obj> {
    const addrs = (await json<{ ifname: string; mtu: number; addr_info?: { local: string }[] }[]>(['/usr/sbin/ip', '-j', '-4', 'addr', 'show'])) ?? [];
    const ip = this.o.nodeIP();
    const under = addrs.find((a) => a.addr_info?.some((x) => x.local === ip));
    const links = (await json<{ ifname: string; mtu: number }[]>(['/usr/sbin/ip', '-j', 'link', 'show'])) ?? [];
    const podIfs = [...new Set(links.filter((l) => l.ifname.startsWith('cali')).map((l) => l.mtu))].sort((a, b) => a - b);
    const out: Obj = { podInterfaces: podIfs };
    const pod = this.o.podMTU();
    if (pod !== undefined) out.pod = pod;
    if (under) Object.assign(out, { underlay: under.mtu, underlayInterface: under.ifname });
    return out;
  }
}
