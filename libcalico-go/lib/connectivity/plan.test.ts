import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type Check, type ConnectivityDriver, type PolicyStage, formatResult, planChecks, planProbes, runConnectivity, summarize } from './plan.js';

const nodes = [
  { name: 'n1', address: '10.0.0.11' },
  { name: 'n2', address: '10.0.0.12' },
  { name: 'n3', address: '10.0.0.13' },
];
const probes = [
  { key: 'tc/probe-n1-a', node: 'n1', ip: '10.1.0.1', port: 8080 },
  { key: 'tc/probe-n1-b', node: 'n1', ip: '10.1.0.2', port: 8080 },
  { key: 'tc/probe-n2', node: 'n2', ip: '10.1.1.1', port: 8080 },
  { key: 'tc/probe-n3', node: 'n3', ip: '10.1.2.1', port: 8080 },
];

describe('connectivity plan', () => {
  it('places two probes on the first node and one on each other', () => {
    assert.deepEqual(planProbes(['n1', 'n2', 'n3']).map((p) => `${p.name}@${p.node}`), ['probe-n1-a@n1', 'probe-n1-b@n1', 'probe-n2@n2', 'probe-n3@n3']);
    assert.throws(() => planProbes([]), /at least one node/);
  });

  it('covers same node, across nodes, host→pod, pod→host, DF full-size, policy deny then allow', () => {
    const checks = planChecks({ nodes, probes, podMtu: 1450 });
    const groups = new Map<string, number>();
    for (const c of checks) groups.set(c.group, (groups.get(c.group) ?? 0) + 1);
    // 2 same-node + 2×2 across; 3 nodes × (local + remote); 3 nodes' first probe × (own + other); 2×2 MTU; 3 policy
    assert.deepEqual(Object.fromEntries(groups), { 'pod-to-pod': 6, 'host-to-pod': 6, 'pod-to-host': 6, mtu: 4, policy: 3 });
    const mtu = checks.filter((c) => c.group === 'mtu');
    assert.ok(mtu.every((c) => c.df === true && c.size === 1450 - 28 && c.proto === 'icmp'));
    // Stages only move forward: none … deny … allow, and the deny check expects refusal.
    const order: PolicyStage[] = ['none', 'deny', 'allow'];
    const idx = checks.map((c) => order.indexOf(c.stage));
    assert.deepEqual([...idx].sort((a, b) => a - b), idx);
    assert.deepEqual(checks.filter((c) => c.group === 'policy').map((c) => [c.stage, c.expect]), [['deny', false], ['allow', true], ['allow', false]]);
    assert.equal(new Set(checks.map((c) => c.id)).size, checks.length, 'ids are unique');
    assert.ok(checks.some((c) => c.group === 'pod-to-host' && c.from.kind === 'pod' && c.from.key === 'tc/probe-n2' && c.toIp === '10.0.0.12'), 'a pod to its own host');
  });

  it('adds pod→Service when there is a Service; refuses bad input', () => {
    const checks = planChecks({ nodes, probes, podMtu: 1500, service: { name: 'tc/probe', ip: '10.233.0.9', port: 80 } });
    assert.equal(checks.filter((c) => c.group === 'service').length, 3);
    assert.throws(() => planChecks({ nodes, probes: [], podMtu: 1500 }), /no probe workloads/);
    assert.throws(() => planChecks({ nodes, probes, podMtu: 0 }), /pod MTU 0/);
  });

  it('reports ✔/✖ lines, diagnostics under failures, and a summary', () => {
    const c = planChecks({ nodes, probes, podMtu: 1500 })[0]!;
    assert.match(formatResult({ check: c, ok: true, observed: 'connected', ms: 120, diagnostics: [] }), /^✔ pod→pod on n1: .* \(0\.12s\)\n$/);
    const bad = formatResult({ check: c, ok: false, observed: 'no connection within 2s', ms: 2000, diagnostics: ['route on n1: x'] });
    assert.match(bad, /^✖ .* — no connection within 2s \(2\.00s\)\n {4}route on n1: x\n$/);
    assert.equal(summarize([{ check: c, ok: true, observed: '', ms: 1, diagnostics: [] }], 1500).ok, true);
    const s = summarize([{ check: c, ok: false, observed: '', ms: 1, diagnostics: [] }], 1500);
    assert.equal(s.ok, false);
    assert.match(s.line, /1 of 1 checks FAILED \(pod-to-pod\)/);
    assert.equal(summarize([], 1).ok, false, 'nothing run is not a pass');
  });

  it('runs a driver: diagnoses failures, cleans up after an error and on abort', async () => {
    const calls: string[] = [];
    const fake = (failOn: (c: Check) => boolean, throwOnSend = false): ConnectivityDriver => ({
      nodes: async () => nodes.slice(0, 2),
      deploy: async (plan) => plan.map((p, i) => ({ key: `tc/${p.name}`, node: p.node, ip: `10.1.0.${i + 1}`, port: 8080 })),
      podMtu: async () => 1500,
      send: async (c) => {
        if (throwOnSend) throw new Error('boom');
        const reached = c.expect !== failOn(c);
        return { reached, observed: reached ? 'ok' : 'nope' };
      },
      policy: async (st) => void calls.push(`policy ${st}`),
      diagnose: async (c) => [`diag ${c.id}`],
      cleanup: async () => {
        calls.push('cleanup');
        return [];
      },
    });
    let out = '';
    const r = await runConnectivity(fake((c) => c.group === 'mtu'), { out: (t) => (out += t) });
    assert.equal(r.ok, false);
    assert.equal(r.results.filter((x) => !x.ok).length, 2);
    assert.match(out, /✖ full-size packet.*\n {4}diag mtu:/);
    assert.match(out, /2 of 17 checks FAILED \(mtu\)/);
    assert.deepEqual(calls, ['policy deny', 'policy allow', 'cleanup']);
    calls.length = 0;
    await assert.rejects(runConnectivity(fake(() => false, true), { out: () => undefined }), /boom/);
    assert.deepEqual(calls, ['cleanup']);
    calls.length = 0;
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(runConnectivity(fake(() => false), { out: () => undefined, signal: ac.signal }), /interrupted/);
    assert.deepEqual(calls, ['cleanup']);
  });
});
