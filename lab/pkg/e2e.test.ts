import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { e2eArgv, formatSummary, parseJUnit, passStats } from './e2e.js';
import type { LabState } from './state.js';

// The shape Ginkgo v2's JUnit reporter writes (the e2e framework's junit_01.xml).
const JUNIT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="4" disabled="0" errors="0" failures="1" time="60">
  <testsuite name="Kubernetes e2e suite" package="/x" tests="4" skipped="2" disabled="0" errors="0" failures="1" time="60">
    <testcase name="[It] [sig-network] Netpol NetworkPolicy between server and client should support a &#39;default-deny-ingress&#39; policy [Feature:NetworkPolicy]" classname="Kubernetes e2e suite" status="passed" time="27.7"></testcase>
    <testcase name="[It] [sig-network] Netpol NetworkPolicy between server and client should allow egress access on one named port [Feature:NetworkPolicy]" classname="Kubernetes e2e suite" status="failed" time="80.1">
      <failure message="Had 3 wrong results in reachability matrix" type="failed">[FAILED] Had 3 wrong results in reachability matrix&#xA;In [It] at: netpol/test_helper.go:135</failure>
      <system-err>log</system-err>
    </testcase>
    <testcase name="[It] [sig-network] Netpol [Feature:SCTPConnectivity] [LinuxOnly] NetworkPolicy between server and client using SCTP should enforce policy based on Ports [Feature:NetworkPolicy]" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[sig-apps] Deployment should do a rollout" classname="Kubernetes e2e suite" status="skipped" time="0"><skipped message="skipped"></skipped></testcase>
  </testsuite>
</testsuites>`;

describe('e2e: JUnit report', () => {
  it('keeps the focused specs with their status, time and failure message', () => {
    const specs = parseJUnit(JUNIT, (n) => /Netpol/.test(n));
    assert.equal(specs.length, 3);
    assert.deepEqual(
      specs.map((s) => s.status),
      ['passed', 'failed', 'skipped'],
    );
    assert.equal(specs[0]!.name, "[sig-network] Netpol NetworkPolicy between server and client should support a 'default-deny-ingress' policy [Feature:NetworkPolicy]");
    assert.equal(specs[1]!.seconds, 80.1);
    assert.equal(specs[1]!.message, 'Had 3 wrong results in reachability matrix');
  });

  it('a failure without a message (none, or message="" as the e2e framework writes it) takes its body', () => {
    for (const attrs of ['', ' message=""']) {
      const x = `<testcase name="[It] Netpol x" status="failed" time="1"><failure${attrs} type="failed">[FAILED] Had 5 wrong results in reachability matrix&#xA;In [It] at: test_helper.go:129&#xA;</failure><system-err>log</system-err></testcase>`;
      assert.deepEqual(parseJUnit(x, () => true), [{ name: 'Netpol x', status: 'failed', seconds: 1, message: '[FAILED] Had 5 wrong results in reachability matrix\nIn [It] at: test_helper.go:129\n' }]);
    }
  });

  it('the summary names each failure and skip', () => {
    const specs = parseJUnit(JUNIT, (n) => /Netpol/.test(n));
    const text = formatSummary({
      lab: 'l',
      cni: 'tortie',
      focus: 'Netpol',
      skip: 'SCTPConnectivity',
      procs: 1,
      command: [],
      startedAt: '',
      seconds: 60,
      exitCode: 1,
      loadBefore: [1, 1, 1],
      loadAfter: [2, 2, 2],
      passed: specs.filter((s) => s.status === 'passed'),
      failed: specs.filter((s) => s.status === 'failed'),
      skipped: specs.filter((s) => s.status === 'skipped'),
    });
    assert.match(text, /1 passed, 1 failed, 1 skipped in 60s/);
    assert.match(text, /FAIL .*egress access on one named port.*\n {4}Had 3 wrong results/);
    assert.match(text, /SKIP .*using SCTP should enforce policy based on Ports/);
  });
});

describe('e2e: command line', () => {
  const s = {
    name: 'l',
    plan: { nodes: [{ name: 'node1', ns: 'tl-l-node1' }] },
    kube: { master: 'node1', adminKubeconfig: '/x/admin.conf', cni: 'tortie' },
  } as unknown as LabState;

  it('one process: e2e.test alone in the master namespace with the ginkgo.* flags', () => {
    const a = e2eArgv(s, { focus: 'Netpol', skip: 'SCTPConnectivity', procs: 1, reportDir: '/r' });
    assert.deepEqual(a.slice(0, 3), ['/usr/bin/nsenter', '--net=/run/netns/tl-l-node1', '--']);
    assert.match(a[3]!, /\/e2e\.test$/);
    for (const f of ['--kubeconfig=/x/admin.conf', '--provider=local', '--report-dir=/r', '--ginkgo.focus=Netpol', '--ginkgo.skip=SCTPConnectivity']) assert.ok(a.includes(f), f);
  });

  it('several processes: the ginkgo CLI with its own flags, the suite flags after --', () => {
    const a = e2eArgv(s, { focus: 'Netpol', procs: 2, reportDir: '/r', extra: ['--ginkgo.v'] });
    assert.match(a[3]!, /\/ginkgo$/);
    const dd = a.indexOf('--', 3);
    assert.ok(a.slice(4, dd).includes('--procs=2'));
    assert.ok(a.slice(4, dd).includes('--focus=Netpol'));
    assert.match(a[dd - 1]!, /\/e2e\.test$/);
    assert.ok(a.slice(dd).includes('--provider=local'));
    assert.equal(a.at(-1), '--ginkgo.v');
  });

  it('refuses a lab that is not a Kubernetes cluster', () => {
    assert.throws(() => e2eArgv({ name: 'p', plan: { nodes: [] } } as unknown as LabState, { focus: 'x', procs: 1, reportDir: '/r' }), /lab p is not a Kubernetes cluster/);
  });
});

describe('e2e: the agents\' policy passes', () => {
  const log = [
    '2026-12-04 22:41:10.000 [INFO][1] policy/loop.ts: Policy: wrote table inet tortie-filter (startup; 1 change(s) in one transaction): read 900 ms, compile 1 ms, diff 0 ms, nft 99 ms; 1 local endpoint(s)',
    '2026-12-04 22:41:12.766 [INFO][11411] policy/loop.ts: Policy: wrote table inet tortie-filter (policy changed; 2 change(s) in one transaction): read 343 ms, compile 11.38 ms, diff 0.06 ms, nft 163.37 ms; 15 local endpoint(s), 3 polic(ies), 76 chains, 5 sets, 242 rules',
    '2026-12-04 22:41:14.657 [INFO][11411] cniserver.ts: CNI DEL container 375e67cfbe06: ok (1.614 s)',
    '2026-12-04 22:41:15.644 [INFO][11411] policy/loop.ts: Policy: wrote table inet tortie-filter (policy changed; 15 change(s) in one transaction): read 504 ms, compile 0.42 ms, diff 0.06 ms, nft 87.97 ms; 11 local endpoint(s)',
  ].join('\n');

  it('counts the passes inside the run and gives their quantiles', () => {
    const p = passStats([log, ''], new Date('2026-12-04T22:41:11Z'), new Date('2026-12-04T22:42:00Z'));
    assert.deepEqual(p, { count: 2, p50Ms: 517.8, p90Ms: 592.5, maxMs: 592.5, readP50Ms: 343, nftP50Ms: 88 });
  });

  it('none in the window: undefined', () => {
    assert.equal(passStats([log], new Date('2026-12-05T00:00:00Z'), new Date('2026-12-05T01:00:00Z')), undefined);
  });
});
