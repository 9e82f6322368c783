// The connectivity test's logic, shared by `tortiectl connectivity test` (Pods through the
// Kubernetes API) and `tortie-lab connectivity` (the lab's own pods): which checks to run on the
// probe workloads a driver deployed, the order of the policy scenario, and the report (a ✔/✖ line
// per check, diagnostics under a failed one, a summary). Pure: the driver does every I/O.

/** A probe workload a driver deployed: it answers TCP on `port` and can send probes. */
export interface ProbeWorkload {
  /** NS/NAME. */
  key: string;
  node: string;
  ip: string;
  port: number;
}

export interface ProbeNode {
  name: string;
  /** The node's own address (what host→pod comes from and pod→host goes to). */
  address: string;
}

/** The policy states of the scenario: none of ours, default deny, deny + an allow. */
export type PolicyStage = 'none' | 'deny' | 'allow';

export type Endpoint = { kind: 'pod'; key: string } | { kind: 'host'; node: string };

export interface Check {
  id: string;
  /** The group the check belongs to, as the report heads it. */
  group: 'pod-to-pod' | 'host-to-pod' | 'pod-to-host' | 'mtu' | 'policy' | 'service';
  title: string;
  from: Endpoint;
  /** What is sent to: a workload, a node's address or a Service. */
  to: Endpoint | { kind: 'service'; name: string; ip: string; port: number };
  toIp: string;
  /** 'tcp' connects to `port`; 'icmp' is one echo; `size`+`df`: ping -M do -s size. */
  proto: 'tcp' | 'icmp';
  port?: number;
  size?: number;
  df?: boolean;
  /** The policy state this check runs under. */
  stage: PolicyStage;
  /** Whether the packet must get through (false: the policy must stop it). */
  expect: boolean;
}

export interface CheckResult {
  check: Check;
  ok: boolean;
  /** What the probe saw: "connected", "timed out after 2s", ping's own error line, … */
  observed: string;
  ms: number;
  /** On failure: what was sent, from where, and what the route and policy say. */
  diagnostics: string[];
}

export interface PlanInput {
  nodes: readonly ProbeNode[];
  /** Two on the first node, one on every other (planProbes names them). */
  probes: readonly ProbeWorkload[];
  /** The pods' MTU (their eth0): full-size packets are podMtu − 28 bytes of ICMP payload. */
  podMtu: number;
  /** A Service in front of the probes (Kubernetes); absent: no pod→Service check. */
  service?: { name: string; ip: string; port: number };
}

export const PROBE_NAMESPACE = 'tortie-connectivity';
export const PROBE_LABEL = 'tortie-connectivity';

/** Where the probes go: two on the first node (same-node traffic), one on each other node. */
export function planProbes(nodes: readonly string[]): { name: string; node: string }[] {
  if (nodes.length === 0) throw new Error('connectivity test needs at least one node');
  const safe = (n: string) => n.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 40);
  return [{ name: `probe-${safe(nodes[0]!)}-a`, node: nodes[0]! }, { name: `probe-${safe(nodes[0]!)}-b`, node: nodes[0]! }, ...nodes.slice(1).map((n) => ({ name: `probe-${safe(n)}`, node: n }))];
}

const label = (e: Endpoint) => (e.kind === 'pod' ? e.key : `host ${e.node}`);

/** The checks, in the order they run (policy stages last, in none → deny → allow order). */
export function planChecks(input: PlanInput): Check[] {
  const { nodes, probes, podMtu } = input;
  if (probes.length === 0) throw new Error('no probe workloads deployed');
  if (!(podMtu >= 68)) throw new Error(`pod MTU ${podMtu} is not a usable MTU`);
  const checks: Check[] = [];
  const pod = (p: ProbeWorkload): Endpoint => ({ kind: 'pod', key: p.key });
  const host = (n: ProbeNode): Endpoint => ({ kind: 'host', node: n.name });
  const first = probes[0]!;
  const onFirst = probes.filter((p) => p.node === first.node);
  const remote = probes.filter((p) => p.node !== first.node);
  const tcp = (group: Check['group'], from: Endpoint, to: ProbeWorkload, title: string, stage: PolicyStage = 'none', expect = true): Check => ({
    id: `${group}:${label(from)}->${to.key}:${stage}`,
    group,
    title,
    from,
    to: pod(to),
    toIp: to.ip,
    proto: 'tcp',
    port: to.port,
    stage,
    expect,
  });
  if (onFirst.length > 1) {
    const [a, b] = onFirst as [ProbeWorkload, ProbeWorkload];
    checks.push(tcp('pod-to-pod', pod(a), b, `pod→pod on ${a.node}: ${a.key} → ${b.key} ${b.ip}:${b.port}/TCP`));
    checks.push(tcp('pod-to-pod', pod(b), a, `pod→pod on ${a.node}: ${b.key} → ${a.key} ${a.ip}:${a.port}/TCP`));
  }
  for (const r of remote) {
    checks.push(tcp('pod-to-pod', pod(first), r, `pod→pod across nodes: ${first.key} (${first.node}) → ${r.key} (${r.node}) ${r.ip}:${r.port}/TCP`));
    checks.push(tcp('pod-to-pod', pod(r), first, `pod→pod across nodes: ${r.key} (${r.node}) → ${first.key} (${first.node}) ${first.ip}:${first.port}/TCP`));
  }
  const byNode = new Map(nodes.map((n) => [n.name, n]));
  for (const n of nodes) {
    const local = probes.find((p) => p.node === n.name);
    const other = probes.find((p) => p.node !== n.name);
    for (const p of [local, other]) {
      if (!p) continue;
      checks.push({
        id: `host-to-pod:${n.name}->${p.key}`,
        group: 'host-to-pod',
        title: `host→pod: ${n.name} (${n.address}) → ${p.key} (${p.node}) ${p.ip}:${p.port}/TCP`,
        from: host(n),
        to: pod(p),
        toIp: p.ip,
        proto: 'tcp',
        port: p.port,
        stage: 'none',
        expect: true,
      });
    }
  }
  for (const p of probes.filter((x, i) => probes.findIndex((y) => y.node === x.node) === i)) {
    const own = byNode.get(p.node);
    const other = nodes.find((n) => n.name !== p.node);
    for (const n of [own, other]) {
      if (!n) continue;
      checks.push({
        id: `pod-to-host:${p.key}->${n.name}`,
        group: 'pod-to-host',
        title: `pod→host: ${p.key} (${p.node}) → ${n.name === p.node ? 'its own node' : 'node'} ${n.name} ${n.address} ICMP`,
        from: pod(p),
        to: host(n),
        toIp: n.address,
        proto: 'icmp',
        stage: 'none',
        expect: true,
      });
    }
  }
  const size = podMtu - 28;
  const mtuPairs = remote.length > 0 ? remote.flatMap((r) => [[first, r], [r, first]] as const) : onFirst.length > 1 ? [[onFirst[0]!, onFirst[1]!] as const] : [];
  for (const [a, b] of mtuPairs) {
    checks.push({
      id: `mtu:${a.key}->${b.key}`,
      group: 'mtu',
      title: `full-size packet, DF set: ${a.key} (${a.node}) → ${b.key} (${b.node}) ICMP ${size}+28 = ${podMtu} bytes (pod MTU)`,
      from: pod(a),
      to: pod(b),
      toIp: b.ip,
      proto: 'icmp',
      size,
      df: true,
      stage: 'none',
      expect: true,
    });
  }
  if (input.service) {
    const sv = input.service;
    for (const p of [first, ...remote]) {
      checks.push({
        id: `service:${p.key}->${sv.name}`,
        group: 'service',
        title: `pod→Service: ${p.key} (${p.node}) → ${sv.name} ${sv.ip}:${sv.port}/TCP`,
        from: pod(p),
        to: { kind: 'service', ...sv },
        toIp: sv.ip,
        proto: 'tcp',
        port: sv.port,
        stage: 'none',
        expect: true,
      });
    }
  }
  // Policy: the target is the second workload (remote when there is one); the client is the first.
  const target = remote[0] ?? onFirst[1];
  if (target) {
    checks.push(tcp('policy', pod(first), target, `policy default deny: ${first.key} → ${target.key} ${target.ip}:${target.port}/TCP is refused`, 'deny', false));
    checks.push(tcp('policy', pod(first), target, `policy allow from role=client: ${first.key} → ${target.key} ${target.ip}:${target.port}/TCP gets through`, 'allow', true));
    const third = probes.find((p) => p !== first && p !== target);
    if (third) checks.push(tcp('policy', pod(third), target, `policy allow is narrow: ${third.key} (not role=client) → ${target.key} is still refused`, 'allow', false));
  }
  return checks;
}

/** The probe that plays the policy scenario's client (role=client); the others are role=server. */
export function clientProbe(probes: readonly ProbeWorkload[]): ProbeWorkload | undefined {
  return probes[0];
}

/** Whether a probe outcome counts as the check passing. */
export function judge(check: Check, reached: boolean): boolean {
  return reached === check.expect;
}

export interface ReportOptions {
  /** No ✔/✖ (plain terminals): OK / FAIL. */
  ascii?: boolean;
}

/** One line per check, its diagnostics under it when it failed. */
export function formatResult(r: CheckResult, opts: ReportOptions = {}): string {
  const mark = r.ok ? (opts.ascii ? 'OK  ' : '✔') : opts.ascii ? 'FAIL' : '✖';
  const lines = [`${mark} ${r.check.title}${r.ok ? '' : ` — ${r.observed}`} (${(r.ms / 1000).toFixed(2)}s)`];
  for (const d of r.diagnostics) lines.push(`    ${d}`);
  return lines.join('\n') + '\n';
}

export function summarize(results: readonly CheckResult[], elapsedMs: number): { line: string; ok: boolean } {
  const failed = results.filter((r) => !r.ok);
  const groups = [...new Set(failed.map((r) => r.check.group))];
  const ok = failed.length === 0 && results.length > 0;
  const line = ok
    ? `connectivity test: ${results.length}/${results.length} checks passed in ${(elapsedMs / 1000).toFixed(1)}s\n`
    : `connectivity test: ${failed.length} of ${results.length} checks FAILED (${groups.join(', ') || 'none ran'}) in ${(elapsedMs / 1000).toFixed(1)}s\n`;
  return { line, ok };
}

export function reportJson(results: readonly CheckResult[], elapsedMs: number): string {
  return (
    JSON.stringify(
      {
        ok: summarize(results, elapsedMs).ok,
        elapsedMs,
        checks: results.map((r) => ({ id: r.check.id, group: r.check.group, title: r.check.title, ok: r.ok, expect: r.check.expect, observed: r.observed, ms: r.ms, diagnostics: r.diagnostics })),
      },
      null,
      2,
    ) + '\n'
  );
}

/** What a driver does; every I/O of the test goes through it. */
export interface ConnectivityDriver {
  /** The nodes to test, in order (probes are placed by planProbes). */
  nodes(): Promise<ProbeNode[]>;
  /** Deploys the probes (labels app=tortie-connectivity, role=client for the first), returns them running. */
  deploy(plan: { name: string; node: string }[]): Promise<ProbeWorkload[]>;
  podMtu(probe: ProbeWorkload): Promise<number>;
  /** A Service in front of the probes, when the platform has Services. */
  service?(): Promise<PlanInput['service']>;
  /** Sends the check's packet; `reached` whether it got through, `observed` in a few words. */
  send(check: Check): Promise<{ reached: boolean; observed: string }>;
  /** Puts the probe namespace's policy in the stage (and waits until it is enforced). */
  policy(stage: PolicyStage): Promise<void>;
  /** What was sent, from where, what the route and the policy say. */
  diagnose(check: Check, observed: string): Promise<string[]>;
  /** Removes everything deploy/policy made; safe to call whatever happened before. */
  cleanup(): Promise<string[]>;
}

export interface RunOptions {
  signal?: AbortSignal;
  out: (text: string) => void;
  json?: boolean;
  ascii?: boolean;
}

/** Deploys, runs every check, reports, and removes what it made whatever happens. */
export async function runConnectivity(driver: ConnectivityDriver, opts: RunOptions): Promise<{ ok: boolean; results: CheckResult[] }> {
  const t0 = Date.now();
  const results: CheckResult[] = [];
  const say = (s: string) => {
    if (!opts.json) opts.out(s);
  };
  const interrupted = () => {
    if (opts.signal?.aborted) throw new Error('interrupted: removing what the test made');
  };
  let failure: Error | undefined;
  try {
    const nodes = await driver.nodes();
    const placed = planProbes(nodes.map((n) => n.name));
    say(`deploying ${placed.length} probe workloads in namespace ${PROBE_NAMESPACE} on ${nodes.length} nodes\n`);
    const probes = await driver.deploy(placed);
    interrupted();
    const podMtu = await driver.podMtu(probes[0]!);
    const service = driver.service ? await driver.service() : undefined;
    const checks = planChecks({ nodes, probes, podMtu, service });
    let stage: PolicyStage = 'none';
    for (const check of checks) {
      interrupted();
      if (check.stage !== stage) {
        await driver.policy(check.stage);
        stage = check.stage;
        say(`policy: ${stage === 'deny' ? `default deny ingress in ${PROBE_NAMESPACE}` : `plus allow ingress from role=client`}\n`);
      }
      const c0 = Date.now();
      const { reached, observed } = await driver.send(check);
      const ok = judge(check, reached);
      const r: CheckResult = { check, ok, observed, ms: Date.now() - c0, diagnostics: [] };
      if (!ok) r.diagnostics = await driver.diagnose(check, observed).catch((e: Error) => [`(diagnostics failed: ${e.message})`]);
      results.push(r);
      say(formatResult(r, opts));
    }
  } catch (e) {
    failure = e as Error;
  } finally {
    const left = await driver.cleanup().catch((e: Error) => [`cleanup failed: ${e.message}`]);
    for (const l of left) say(`warning: ${l}\n`);
    if (!failure) say(`removed the probes and policies\n`);
  }
  if (failure) throw failure;
  const sum = summarize(results, Date.now() - t0);
  if (opts.json) opts.out(reportJson(results, Date.now() - t0));
  else opts.out(sum.line);
  return { ok: sum.ok, results };
}
