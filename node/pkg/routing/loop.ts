// The agent's cross-node routing loop: level-triggered, it reads Nodes, IPPools,
// BGPConfigurations, BGPPeers, block affinities and blocks, plans (plan.ts) and then
//   * keeps this node's VXLAN tunnel address (IPAM handle `vxlan-tunnel-addr-<node>`) and writes it
//     with the VTEP MAC on the Node (compare-and-swap, other fields kept);
//   * runs BIRD with the rendered configuration (BirdSupervisor: started on first use, `configure`d
//     on change, restarted when it dies);
//   * drives the overlay Reconciler (VXLAN routes, FDB, neighbours; blackholes and unencapsulated
//     routes only without BIRD), which also repairs the kernel every few seconds;
//   * keeps the agent's nftables table `ip tortie-nat` (IPPool natOutgoing: masquerade from those
//     pools to destinations outside all pools) in line with the IPv4 pools, repairing it each pass;
//   * writes what this node cannot do on its Node (`status.tortie.problems`) and logs it.
// Passes are triggered by datastore watch events (debounced) and by a periodic full resync
// (pass-runner.ts).

import { existsSync } from 'node:fs';
import type { Resource } from '../../../libcalico-go/lib/apis/v3/resource.js';
import type { Backend } from '../../../libcalico-go/lib/backend/api.js';
import { affinityPrefix, blockPrefix, parseAffinityKey, resourcePrefix } from '../../../libcalico-go/lib/backend/keys.js';
import { ResourceClient, ResourceError } from '../../../libcalico-go/lib/clientv3/resources.js';
import type { BlockData } from '../../../libcalico-go/lib/ipam/block.js';
import { IPAM } from '../../../libcalico-go/lib/ipam/ipam.js';
import { parseSelector } from '../../../libcalico-go/lib/selector/index.js';
import { bgpNotEstablished, birdCommand, BirdConfigError, BirdSupervisor, parseBirdShowProtocols, type SecretResolver } from '../../../confd/pkg/index.js';
import { NatTable, type ReconcileOptions, Reconciler, type ReconcileResult, vtepMacForNode, type VxlanDeviceSpec } from '../../../felix/index.js';
import type { HealthReporter } from '../health.js';
import type { Logger } from '../../../libcalico-go/lib/logutils/index.js';
import { PassRunner } from '../pass-runner.js';
import {
  type Affinity,
  decideTunnelAddress,
  describePlan,
  type NetworkingBackend,
  nodeVxlan,
  planRouting,
  poolViews,
  type RoutingPlan,
  type RoutingSnapshot,
  vxlanTunnelHandle,
} from './plan.js';

export interface RoutingLoopOptions {
  nodeName: string;
  /** The agent's datastore client (null while unavailable). */
  store: () => Backend | null;
  backend: NetworkingBackend;
  /** BIRD's files (bird.cfg, bird.ctl, bird.pid) go here. */
  runDir: string;
  log: Logger;
  /** The host MTU (the VXLAN device gets this − 50). */
  hostMtu?: () => number | undefined;
  /** Full resync period. Default 5000 ms. */
  resyncMs?: number;
  /** Kernel repair period of the overlay reconciler. Default 3000 ms. */
  repairMs?: number;
  /** Debounce of watch events. Default 100 ms. */
  debounceMs?: number;
  /** Options for BIRD (tests). */
  birdPath?: string;
  /**
   * Command prefix for BIRD. Default: `setpriv --pdeathsig SIGKILL` when available, so that a BIRD
   * never outlives an agent that crashed (its kernel routes stay: `persist`; its peers keep this
   * node's routes through graceful restart until the restarted agent's BIRD is back).
   */
  birdWrapper?: readonly string[];
  /** Reports each pass (ready while the last one succeeded). */
  health?: HealthReporter;
  /**
   * Reports whether this node routes to every other node's pods (checked after each pass and every
   * second): in BGP modes every BGP session of BIRD Established (calico-node's -bird-ready); in
   * VXLAN modes a tunnel to every node that holds a remote block; the last overlay programming
   * succeeded. Its detail names what is missing.
   */
  convergence?: HealthReporter;
  /** Program the NAT outgoing table (nftables `ip tortie-nat`). Default true. */
  natOutgoing?: boolean;
  /** BGP passwords (confd/pkg/secrets.ts); without it peers needing one are left out. */
  secrets?: SecretResolver;
}

const SETPRIV = '/usr/bin/setpriv';

function defaultBirdWrapper(): string[] {
  return existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'SIGKILL'] : [];
}

export interface RoutingStatus {
  passes: number;
  lastPassAt: Date | null;
  lastError: string | null;
  plan: RoutingPlan | null;
  tunnelAddress: string | null;
  birdPid: number | null;
}

const WATCHED = [
  resourcePrefix('Node'),
  resourcePrefix('IPPool'),
  resourcePrefix('BGPConfiguration'),
  resourcePrefix('BGPPeer'),
  blockPrefix(),
  affinityPrefix(),
];

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Reads everything the plan depends on. */
export async function readSnapshot(store: Backend, nodeName: string): Promise<RoutingSnapshot> {
  const rc = new ResourceClient(store);
  const [nodes, ipPools, bgpConfigurations, bgpPeers, blocksL, affL] = await Promise.all([
    rc.list('Node'),
    rc.list('IPPool'),
    rc.list('BGPConfiguration'),
    rc.list('BGPPeer'),
    store.list(blockPrefix()),
    store.list(affinityPrefix()),
  ]);
  const blocks: BlockData[] = [];
  for (const kv of blocksL.items) {
    try {
      blocks.push(JSON.parse(kv.value) as BlockData);
    } catch {
      // a broken block is IPAM's problem, not routing's
    }
  }
  const affinities: Affinity[] = [];
  for (const kv of affL.items) {
    const k = parseAffinityKey(kv.key);
    if (!k) continue;
    let state = '';
    try {
      const v = JSON.parse(kv.value) as { state?: string; deleted?: boolean };
      if (v.deleted) continue;
      state = v.state ?? '';
    } catch {
      // an affinity without a readable value: implicitly confirmed (as Calico's confd treats it)
    }
    affinities.push({ host: k.host, cidr: k.cidr, state });
  }
  return { nodeName, nodes, ipPools, bgpConfigurations, bgpPeers, blocks, affinities };
}

type Obj = Record<string, unknown>;

export class RoutingLoop {
  private readonly o: Required<Omit<RoutingLoopOptions, 'hostMtu' | 'birdPath' | 'birdWrapper' | 'health' | 'secrets' | 'convergence'>> &
    Pick<RoutingLoopOptions, 'hostMtu' | 'birdPath' | 'birdWrapper' | 'secrets' | 'convergence'>;
  private convergenceTimer: NodeJS.Timeout | null = null;
  private overlayError: string | null = null;
  private checking = false;
  private readonly log: Logger;
  private readonly runner: PassRunner;
  private bird: BirdSupervisor | null = null;
  private birdStarted = false;
  private readonly reconciler: Reconciler;
  private lastPlanText = '';
  private lastProblems = '';
  private lastBirdError = '';
  private lastOverlayWarnings = '';
  private readonly nat = new NatTable();
  private lastNatError = '';
  private status: Pick<RoutingStatus, 'plan' | 'tunnelAddress'> = { plan: null, tunnelAddress: null };

  constructor(opts: RoutingLoopOptions) {
    this.o = { resyncMs: 5000, repairMs: 3000, debounceMs: 100, natOutgoing: true, ...opts };
    this.log = opts.log;
    this.runner = new PassRunner({
      store: opts.store,
      prefixes: WATCHED,
      pass: () => this.pass(),
      log: this.log,
      what: 'Routing',
      health: opts.health,
      resyncMs: this.o.resyncMs,
      debounceMs: this.o.debounceMs,
    });
    this.reconciler = new Reconciler(null, {
      intervalMs: this.o.repairMs,
      onResult: (r) => this.logResult(r),
      onError: (e) => {
        if (errText(e) !== 'no desired state yet') this.log.warn(`Overlay dataplane pass failed: ${errText(e)}`);
      },
    });
  }

  /** Starts watching and the first pass. */
  start(): void {
    if (this.runner.running) return;
    this.log.info(`Starting the routing loop for node ${this.o.nodeName} (networking backend ${this.o.backend})`);
    this.runner.start();
    if (this.o.convergence) {
      this.convergenceTimer = setInterval(() => void this.checkConvergence(), 1000);
      this.convergenceTimer.unref();
    }
  }

  /**
   * Stops the loop, the kernel repair and BIRD (by its PID, after BIRD's `graceful restart`: its
   * peers keep this node's routes until a new agent's BIRD is back); routes stay in place.
   */
  async stop(): Promise<void> {
    if (!this.runner.running) return;
    if (this.convergenceTimer) clearInterval(this.convergenceTimer);
    this.convergenceTimer = null;
    await this.runner.stop();
    await this.reconciler.stop();
    if (this.bird) await this.bird.stop({ graceful: true }).catch((e) => this.log.warn(`Stopping BIRD: ${errText(e)}`));
    this.birdStarted = false;
    this.log.info('Routing loop stopped');
  }

  getStatus(): RoutingStatus {
    return { ...this.runner.stats, ...this.status, birdPid: this.bird?.status().pid ?? null };
  }

  /** Asks for a pass after `delayMs` (watch bursts share one). */
  kick(delayMs?: number): void {
    this.runner.kick(delayMs);
  }

  /** Runs a pass now or right after the current one; resolves when the pass has run. */
  runPass(): Promise<void> {
    return this.runner.runPass();
  }

  // -------------------------------------------------------------------------------------------

  private async pass(): Promise<void> {
    const store = this.o.store();
    if (!store) throw new Error('the datastore is unavailable');
    let snap = await readSnapshot(store, this.o.nodeName);
    const extraProblems: string[] = [];

    // VXLAN tunnel address (before the plan, which reads it from the Node).
    let tunnelAddress: string | null = null;
    try {
      const r = await this.ensureTunnelAddress(store, snap);
      tunnelAddress = r.address;
      if (r.changed) snap = await readSnapshot(store, this.o.nodeName);
    } catch (e) {
      extraProblems.push(`cannot get a VXLAN tunnel address: ${errText(e)}`);
    }
    this.status.tunnelAddress = tunnelAddress;

    const plan = planRouting(snap, { backend: this.o.backend, socketDir: this.o.runDir, secrets: this.o.secrets });
    this.status.plan = plan;
    const planText = describePlan(plan);
    if (planText !== this.lastPlanText) {
      this.log.info(`Routing: ${planText}`);
      this.lastPlanText = planText;
    }

    // BIRD.
    const birdProblem = await this.driveBird(plan);
    if (birdProblem) extraProblems.push(birdProblem);

    // NAT outgoing (IPv4 pools).
    const natProblem = await this.driveNat(plan);
    if (natProblem) extraProblems.push(natProblem);

    // Problems: log when they change, write them on the Node.
    const problems = [...plan.problems, ...extraProblems];
    const pText = JSON.stringify(problems);
    if (pText !== this.lastProblems) {
      for (const p of problems) this.log.error(`Routing problem: ${p}`);
      if (problems.length === 0 && this.lastProblems !== '' && this.lastProblems !== '[]') this.log.info('Routing problems resolved');
    }
    this.lastProblems = pText;
    await this.writeProblems(store, problems).catch((e) => this.log.warn(`Cannot write status.tortie.problems on Node ${this.o.nodeName}: ${errText(e)}`));

    // Overlay dataplane.
    const birdRunning = this.birdStarted;
    const ro: Partial<ReconcileOptions> = {
      bird: birdRunning,
      programNoEncapRoutes: birdRunning ? false : plan.overlayFlags.programNoEncapRoutes,
      programBlackholes: birdRunning ? false : plan.overlayFlags.programBlackholes,
    };
    if (!plan.vxlanNeeded) ro.vxlan = false;
    else if (tunnelAddress && plan.localAddress) {
      const spec: VxlanDeviceSpec = {
        localAddress: plan.localAddress,
        tunnelAddress,
        nodeName: this.o.nodeName,
        mac: vtepMacForNode(this.o.nodeName),
      };
      const mtu = this.o.hostMtu?.();
      if (mtu) spec.underlayMtu = mtu;
      ro.vxlan = spec;
    } else ro.vxlan = undefined;
    const p = this.reconciler.update(plan.overlay, ro);
    this.reconciler.start();
    this.overlayError = await p.then(
      () => null,
      (e: unknown) => errText(e), // logged by onError
    );
    await this.checkConvergence();
  }

  /** Reports (see RoutingLoopOptions.convergence) whether this node routes to every other node's pods. */
  private async checkConvergence(): Promise<void> {
    const rep = this.o.convergence;
    if (!rep || this.checking) return;
    this.checking = true;
    try {
      const missing: string[] = [];
      const plan = this.status.plan;
      if (!plan) missing.push('no routing pass yet');
      else {
        if (plan.runBird) {
          if (!this.birdStarted || !this.bird) missing.push('BIRD is not running');
          else {
            try {
              const rows = parseBirdShowProtocols((await birdCommand(this.bird.socketPath, 'show protocols', { timeoutMs: 2000 })).raw);
              const down = bgpNotEstablished(rows);
              if (down.length > 0) {
                missing.push(`BGP not established with ${down.map((d) => `${peerOf(d.name)} (${d.info || d.state})`).join(', ')}`);
              }
            } catch (e) {
              missing.push(`BIRD does not answer on ${this.bird.socketPath}: ${errText(e)}`);
            }
          }
        }
        if (plan.vxlanNeeded) {
          const tunnels = new Set(plan.overlay.vteps.filter((v) => v.tunnelIP).map((v) => v.node));
          const without = [...new Set(plan.overlay.remoteBlocks.map((b) => b.node))].filter((n) => n !== this.o.nodeName && !tunnels.has(n));
          if (without.length > 0) missing.push(`no VXLAN tunnel yet to ${without.sort().join(', ')} (no tunnel address on the Node)`);
        }
        if (this.overlayError && this.overlayError !== 'no desired state yet') missing.push(`routes not programmed: ${this.overlayError}`);
      }
      rep.report({ live: true, ready: missing.length === 0, detail: missing.join('; ') });
    } finally {
      this.checking = false;
    }
  }

  /** BIRD on, reconfigured or off as planned; returns a problem line, if any. */
  private async driveBird(plan: RoutingPlan): Promise<string | null> {
    if (!plan.runBird) {
      if (this.birdStarted && this.bird) {
        this.log.info('BIRD is not needed any more (networking backend): stopping it');
        await this.bird.stop();
        this.birdStarted = false;
      }
      return null;
    }
    if (!plan.birdConfig) return null; // the plan says why
    this.bird ??= new BirdSupervisor({
      runDir: this.o.runDir,
      takeOver: true,
      log: this.log,
      wrapper: this.o.birdWrapper ?? defaultBirdWrapper(),
      ...(this.o.birdPath ? { birdPath: this.o.birdPath } : {}),
    });
    if (!this.birdStarted) {
      try {
        await this.bird.start(plan.birdConfig);
        this.birdStarted = true;
        this.lastBirdError = '';
        this.log.info(`BIRD started (pid ${this.bird.status().pid}) with ${plan.bgpModel?.peers.length ?? 0} BGP peer(s); control socket ${this.bird.socketPath}`);
        return null;
      } catch (e) {
        const msg = e instanceof BirdConfigError ? `BIRD refused its configuration: ${e.birdMessage}` : `BIRD did not start: ${errText(e)}`;
        return msg;
      }
    }
    const r = await this.bird.update(plan.birdConfig);
    if (r.outcome === 'refused' || r.outcome === 'failed') {
      if (r.message !== this.lastBirdError) this.lastBirdError = r.message;
      return r.message;
    }
    this.lastBirdError = '';
    return null;
  }

  /** The NAT outgoing table in line with the pools; returns a problem line when masquerading is wanted but failed. */
  private async driveNat(plan: RoutingPlan): Promise<string | null> {
    if (!this.o.natOutgoing) return null;
    const pools = plan.pools.filter((p) => !p.cidr.includes(':'));
    try {
      const r = await this.nat.apply(pools);
      if (r.changed) {
        this.log.info(
          `NAT outgoing: wrote nftables table ip tortie-nat (${r.reason}): masquerade from [${r.sets.masq.join(', ')}] ` +
            `to outside [${r.sets.all.join(', ')}]`,
        );
      }
      this.lastNatError = '';
      return null;
    } catch (e) {
      const msg = `cannot program NAT outgoing (nftables table ip tortie-nat): ${errText(e)}`;
      if (!pools.some((p) => p.natOutgoing)) {
        // Nothing to masquerade: worth a log line, not a problem on the Node.
        if (msg !== this.lastNatError) this.log.warn(msg);
        this.lastNatError = msg;
        return null;
      }
      this.lastNatError = msg;
      return msg;
    }
  }

  /**
   * This node's VXLAN tunnel address: kept, adopted from the handle, assigned from a VXLAN pool
   * that selects the node, or released when no pool uses VXLAN. Writes it (and the VTEP MAC) on
   * the Node when it differs.
   */
  private async ensureTunnelAddress(store: Backend, snap: RoutingSnapshot): Promise<{ address: string | null; changed: boolean }> {
    const node = this.o.nodeName;
    const pools = poolViews(snap.ipPools);
    const decision = decideTunnelAddress(snap, pools);
    const me = snap.nodes.find((n) => n.metadata.name === node);
    const labels = (me?.metadata.labels ?? {}) as Record<string, string>;
    const ipam = new IPAM(store, { selects: (sel, l) => parseSelector(sel).evaluate(l) });
    const handle = vxlanTunnelHandle(node);
    const mac = vtepMacForNode(node);
    const cur = nodeVxlan(me);
    switch (decision.action) {
      case 'none':
        return { address: null, changed: false };
      case 'release': {
        const released = await ipam.releaseByHandle(handle).catch(() => [] as string[]);
        await this.patchNode(store, (spec) => {
          delete spec.ipv4VXLANTunnelAddr;
          delete spec.vxlanTunnelMACAddr;
        });
        this.log.info(`No IP pool uses VXLAN: released this node's tunnel address${released.length ? ` ${released.join(', ')}` : ''}`);
        return { address: null, changed: true };
      }
      case 'keep':
      case 'adopt': {
        if (cur.tunnelIP === decision.address && cur.mac === mac) return { address: decision.address, changed: false };
        await this.patchNode(store, (spec) => {
          spec.ipv4VXLANTunnelAddr = decision.address;
          spec.vxlanTunnelMACAddr = mac;
        });
        this.log.info(`VXLAN tunnel address ${decision.address} (MAC ${mac}) written on Node ${node}`);
        return { address: decision.address, changed: true };
      }
      case 'assign': {
        if (decision.releaseFirst) await ipam.releaseByHandle(handle).catch(() => []);
        const vx = snap.ipPools.filter((p) => {
          const s = (p.spec ?? {}) as Obj;
          const v = pools.find((x) => x.name === p.metadata.name);
          if (!v || v.disabled || v.vxlanMode === 'Never' || v.cidr.includes(':')) return false;
          const sel = typeof s.nodeSelector === 'string' && s.nodeSelector !== '' ? s.nodeSelector : 'all()';
          try {
            return parseSelector(sel).evaluate(labels);
          } catch {
            return false;
          }
        });
        if (vx.length === 0) throw new Error('no enabled VXLAN IP pool selects this node');
        const r = await ipam.autoAssign({
          handleId: handle,
          attrs: { node, type: 'vxlanTunnelAddress' },
          hostname: node,
          num4: 1,
          num6: 0,
          ipv4Pools: vx.map((p) => p.metadata.name),
          intendedUse: 'Tunnel',
        });
        const address = r.ipv4[0]?.ip;
        if (!address) throw new Error('IPAM returned no address');
        try {
          await this.patchNode(store, (spec) => {
            spec.ipv4VXLANTunnelAddr = address;
            spec.vxlanTunnelMACAddr = mac;
          });
        } catch (e) {
          // Not recorded: give it back, the next pass tries again.
          await ipam.releaseByHandle(handle).catch(() => []);
          throw e;
        }
        this.log.info(`Assigned VXLAN tunnel address ${address} to node ${node} (handle ${handle}, MAC ${mac})`);
        return { address, changed: true };
      }
    }
  }

  /** Read-modify-write of this node's Node with compare-and-swap (5 tries). */
  private async patchNode(store: Backend, edit: (spec: Obj, status: Obj) => void): Promise<void> {
    const rc = new ResourceClient(store);
    let last: unknown;
    for (let i = 0; i < 5; i++) {
      const n = await rc.get('Node', this.o.nodeName);
      if (!n) throw new Error(`Node ${this.o.nodeName} does not exist`);
      const copy = structuredClone(n) as Resource;
      const spec = { ...((copy.spec ?? {}) as Obj) };
      const status = { ...((copy.status ?? {}) as Obj) };
      edit(spec, status);
      copy.spec = spec;
      if (Object.keys(status).length > 0) copy.status = status;
      else delete copy.status;
      if (JSON.stringify(copy.spec) === JSON.stringify(n.spec) && JSON.stringify(copy.status) === JSON.stringify(n.status)) return;
      try {
        await rc.update(copy);
        return;
      } catch (e) {
        last = e;
        if (!(e instanceof ResourceError && /update conflict/.test(e.message))) throw e;
      }
    }
    throw last instanceof Error ? last : new Error(String(last));
  }

  private async writeProblems(store: Backend, problems: string[]): Promise<void> {
    await this.patchNode(store, (_spec, status) => {
      const tortie = { ...((status.tortie as Obj | undefined) ?? {}) };
      if (problems.length > 0) tortie.problems = problems;
      else delete tortie.problems;
      if (Object.keys(tortie).length > 0) status.tortie = tortie;
      else delete status.tortie;
    });
  }

  private logResult(r: ReconcileResult): void {
    for (const d of r.device) this.log.info(`VXLAN device: ${d}`);
    for (const c of r.changes) {
      this.log.info(`${c.op === 'set' ? 'Programmed' : 'Removed'} ${c.what} ${c.text} (${c.reason})`);
    }
    for (const e of r.errors) this.log.warn(`Dataplane update failed: ${e}`);
    const w = JSON.stringify(r.warnings);
    if (w !== this.lastOverlayWarnings) {
      for (const x of r.warnings) this.log.warn(`Overlay: ${x}`);
      this.lastOverlayWarnings = w;
    }
    if (r.changes.length > 0) {
      this.log.debug(`Overlay pass: ${r.changes.length} change(s), ${r.inPlace} in place, ${r.ms.total.toFixed(1)} ms`);
    }
  }
}

/** The peer address in a BIRD protocol name (`Mesh_10_0_0_12` → 10.0.0.12), or the name itself. */
function peerOf(name: string): string {
  const m = /^(?:Mesh|Node|Global)_(.+?)(?:_port_\d+)?$/.exec(name);
  if (!m) return name;
  const s = m[1]!;
  return /^\d+(_\d+){3}$/.test(s) ? s.replace(/_/g, '.') : s.replace(/_/g, ':');
}
