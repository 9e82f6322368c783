// The agent's policy enforcement (Felix's job): level-triggered passes that read the policy model
// from the datastore (libcalico-go/lib/policy/from-store.ts), pick this node's workload endpoints,
// and keep the nftables table `inet tortie-filter` (felix/calc/policy-compiler.ts, written by
// felix/dataplane/linux/policy-table.ts) in line with them. A pass runs on a watch event for any
// kind policy depends on, on a periodic resync, and on request (a pod ADD); a full check of the
// kernel's table against what was written (repairing drift) runs every refresh interval, as
// Felix's IptablesRefreshInterval does.
//
// Metrics (Prometheus): felix_int_dataplane_apply_time_seconds (nft writes),
// tortie_policy_programming_seconds (first datastore event of a change → the kernel has it),
// felix_int_dataplane_failures, felix_active_local_endpoints, felix_cluster_num_* gauges.
import type { Backend } from '../../../libcalico-go/lib/backend/api.js';
import { resourcePrefix } from '../../../libcalico-go/lib/backend/keys.js';
import { ResourceClient } from '../../../libcalico-go/lib/clientv3/resources.js';
import { readPolicyInputs } from '../../../libcalico-go/lib/policy/from-store.js';
import { type EndpointToHostAction, localEndpointsOf, parseInterfacePrefixes, type PolicyApplyResult, PolicyTable } from '../../../felix/index.js';
import type { HealthReporter } from '../health.js';
import type { Logger } from '../../../libcalico-go/lib/logutils/index.js';
import type { Registry } from '../../../libcalico-go/lib/metrics/index.js';
import { PassRunner, type PassStats } from '../pass-runner.js';

export const POLICY_KINDS = [
  'NetworkPolicy',
  'GlobalNetworkPolicy',
  'Tier',
  'Profile',
  'NetworkSet',
  'GlobalNetworkSet',
  'WorkloadEndpoint',
  'FelixConfiguration',
] as const;

export interface PolicyLoopOptions {
  nodeName: string;
  /** The agent's datastore client (null while unavailable). */
  store: () => Backend | null;
  log: Logger;
  /** Reports each pass (ready while the last one succeeded). */
  health?: HealthReporter;
  /** Where the metrics go (default: none). */
  metrics?: Registry;
  /** The table writer (tests may give one with another exec). */
  table?: PolicyTable;
  /**
   * FELIX_DEFAULTENDPOINTTOHOSTACTION, which wins over FelixConfiguration (node.<name>, then
   * default). Unset everywhere: Accept (what Calico's manifests set).
   */
  endpointToHostAction?: string;
  /** FELIX_INTERFACEPREFIX: workload interface prefixes, comma-separated. Default "cali". */
  interfacePrefix?: string;
  /** Full resync period (ms). Default 10000. */
  resyncMs?: number;
  /** Debounce of watch events (ms): short, since a pass coalesces what arrives meanwhile. Default 2. */
  debounceMs?: number;
  /** Full check of the kernel's table (ms). Default 90000 (Felix's refresh interval). */
  verifyMs?: number;
}

export interface PolicyStatus extends PassStats {
  localEndpoints: number;
  lastApply: Omit<PolicyApplyResult, 'compiled'> & { chains: number; sets: number; rules: number } | null;
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Felix's spelling of the action, any case ("ACCEPT", "accept" → "Accept"); undefined if not one. */
export function endpointToHostAction(v: unknown): EndpointToHostAction | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim().toLowerCase();
  return t === 'accept' ? 'Accept' : t === 'drop' ? 'Drop' : t === 'return' ? 'Return' : undefined;
}

export class PolicyLoop {
  private readonly o: Required<Omit<PolicyLoopOptions, 'metrics' | 'table' | 'endpointToHostAction' | 'health' | 'interfacePrefix'>> & Pick<PolicyLoopOptions, 'metrics' | 'endpointToHostAction'>;
  private readonly table: PolicyTable;
  private readonly prefixes: string[];
  private readonly runner: PassRunner;
  private lastVerify = 0;
  /** performance.now() of the first event not yet in the kernel. */
  private pendingEventAt: number | null = null;
  private lastError = '';
  private localCount = 0;
  private lastApply: PolicyStatus['lastApply'] = null;
  private readonly m;

  constructor(opts: PolicyLoopOptions) {
    this.o = { resyncMs: 10000, debounceMs: 2, verifyMs: 90000, ...opts };
    this.table = opts.table ?? new PolicyTable();
    this.prefixes = parseInterfacePrefixes(opts.interfacePrefix);
    this.runner = new PassRunner({
      store: opts.store,
      prefixes: POLICY_KINDS.map((k) => resourcePrefix(k)),
      pass: () => this.pass(),
      log: opts.log,
      what: 'Policy',
      health: opts.health,
      // A verification is a pass too: run passes at least that often.
      resyncMs: Math.min(this.o.resyncMs, this.o.verifyMs),
      debounceMs: this.o.debounceMs,
      onEvent: (at) => {
        this.pendingEventAt ??= at;
      },
    });
    const r = opts.metrics;
    this.m = r
      ? {
          apply: r.histogram('felix_int_dataplane_apply_time_seconds', 'Time to apply a policy dataplane update (nft transaction).'),
          programming: r.histogram(
            'tortie_policy_programming_seconds',
            'Latency from the first datastore event of a policy change to the change being in the kernel.',
          ),
          failures: r.counter('felix_int_dataplane_failures', 'Policy dataplane updates that failed.'),
          writes: r.counter('tortie_policy_table_writes_total', 'Writes of the policy table, by reason.', ['reason']),
          localEndpoints: r.gauge('felix_active_local_endpoints', 'Workload endpoints on this node that policy is programmed for.'),
          policies: r.gauge('felix_cluster_num_policies', 'NetworkPolicies and GlobalNetworkPolicies in the cluster.'),
          profiles: r.gauge('felix_cluster_num_profiles', 'Profiles in the cluster.'),
          tiers: r.gauge('felix_cluster_num_tiers', 'Tiers in the cluster (the default tier counted when implied).'),
          weps: r.gauge('felix_cluster_num_workload_endpoints', 'Workload endpoints in the cluster.'),
          rules: r.gauge('tortie_policy_table_rules', 'Rules in the policy table.'),
        }
      : null;
  }

  start(): void {
    if (this.runner.running) return;
    this.o.log.info(`Starting policy enforcement for node ${this.o.nodeName} (nftables table inet tortie-filter)`);
    this.runner.start();
  }

  /** Stops the passes; the table stays (pods keep their policy while the agent is down). */
  async stop(): Promise<void> {
    await this.runner.stop();
  }

  /** A pass soon (a pod was added or removed on this node). */
  kick(): void {
    this.runner.kick(0);
  }

  /** True once a pass has programmed the table and the last one did not fail. */
  get programmed(): boolean {
    return this.lastApply !== null && this.lastError === '';
  }

  /** Runs a pass now (or right after the running one); resolves when it has run. */
  runPass(): Promise<void> {
    return this.runner.runPass();
  }

  getStatus(): PolicyStatus {
    return { ...this.runner.stats, localEndpoints: this.localCount, lastApply: this.lastApply };
  }

  private async hostAction(store: Backend): Promise<EndpointToHostAction> {
    const fromEnv = endpointToHostAction(this.o.endpointToHostAction);
    if (fromEnv) return fromEnv;
    const rc = new ResourceClient(store);
    for (const name of [`node.${this.o.nodeName}`, 'default']) {
      const fc = await rc.get('FelixConfiguration', name);
      const v = endpointToHostAction((fc?.spec as { defaultEndpointToHostAction?: unknown } | undefined)?.defaultEndpointToHostAction);
      if (v) return v;
    }
    return 'Accept';
  }

  /**
   * One pass. Returns "programmed datastore revision R (pass started <ISO time>)": everything
   * written to the datastore up to R, or before that time, is in the kernel (both are taken before
   * the inputs are read), so a writer can wait for a pass that started after its write.
   */
  private async pass(): Promise<string> {
    const store = this.o.store();
    if (!store) throw new Error('the datastore is unavailable');
    const started = new Date();
    const revision = await store.revision();
    const eventAt = this.pendingEventAt;
    this.pendingEventAt = null;
    const t0 = performance.now();
    const [{ model, workloadEndpoints }, toHost] = await Promise.all([readPolicyInputs(store), this.hostAction(store)]);
    const readMs = Math.round(performance.now() - t0);
    const local = localEndpointsOf(workloadEndpoints, this.o.nodeName);
    const verifyDue = performance.now() - this.lastVerify >= this.o.verifyMs;
    let r: PolicyApplyResult;
    try {
      r = await this.table.apply(model, local, { endpointToHostAction: toHost, interfacePrefixes: this.prefixes, verify: verifyDue && this.lastVerify > 0 });
    } catch (e) {
      this.m?.failures.inc();
      // The next pass writes the whole table again.
      this.table.reset();
      const msg = `cannot program policy (nftables table inet tortie-filter): ${errText(e)}`;
      if (msg !== this.lastError) this.o.log.error(msg);
      this.lastError = msg;
      throw e;
    }
    if (verifyDue) this.lastVerify = performance.now();
    if (this.lastError) this.o.log.info('Policy programming works again');
    this.lastError = '';
    this.localCount = local.length;
    const { compiled, ...rest } = r;
    this.lastApply = { ...rest, chains: compiled.chains, sets: compiled.sets, rules: compiled.rules };
    if (this.m) {
      this.m.localEndpoints.set(local.length);
      this.m.policies.set(model.policies.length);
      this.m.profiles.set(model.profiles.length);
      this.m.tiers.set(new Set(['default', ...model.tiers.map((t) => t.metadata.name)]).size);
      this.m.weps.set(model.endpoints.length);
      this.m.rules.set(compiled.rules);
    }
    if (r.changed) {
      this.m?.apply.observe(r.ms / 1000);
      this.m?.writes.inc({ reason: r.reason });
      if (eventAt !== null) this.m?.programming.observe((performance.now() - eventAt) / 1000);
      const summary = `${local.length} local endpoint(s), ${model.policies.length} polic(ies), ${compiled.chains} chains, ${compiled.sets} sets, ${compiled.rules} rules`;
      const how = r.incremental ? `${r.commands} change(s) in one transaction` : 'whole table';
      this.o.log.info(
        `Policy: wrote table inet tortie-filter (${r.reason}; ${how}): read ${readMs} ms, compile ${r.compileMs} ms, diff ${r.diffMs} ms, nft ${r.ms} ms; ${summary}`,
      );
      if (r.reason === 'table missing' || r.reason === 'table changed') {
        const what = r.drift && r.drift.length > 0 ? `: ${r.drift.slice(0, 10).join(', ')}${r.drift.length > 10 ? ` and ${r.drift.length - 10} more` : ''}` : '';
        this.o.log.warn(`Policy: the kernel's table inet tortie-filter was not as written (${r.reason}${what}); repaired`);
      }
      if (r.error) this.o.log.warn(`Policy: the incremental update was refused (${r.error}); the whole table was written instead`);
    }
    if (compiled.unknown.length > 0) this.o.log.warn(`Policy: local endpoints missing from the model: ${compiled.unknown.join(', ')}`);
    return `programmed datastore revision ${revision} (pass started ${started.toISOString()})`;
  }
}
