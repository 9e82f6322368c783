// `tortie-lab connectivity` and `tortie-lab trace` on a real 2-node lab (root only; its own
// tl-<unique>-* namespaces, state in a temporary TORTIE_LAB_DIR, `down` in after):
// - a healthy lab passes every check (exit 0) and leaves no probe pod, namespace or policy;
// - `break mtu` (node2's eth0 −100) fails exactly the full-size DF checks and the diagnostics name
//   the small link; `break odd-node` (DefaultEndpointToHostAction=Drop on node2) fails exactly
//   node2's pod→own host and the diagnostic names the setting (both broken in one run; exit 1);
// - SIGINT in the middle removes the probes and the policies;
// - trace: the prediction agrees with tcpdump in the nodes for an allowed pair across nodes and,
//   under a deny policy, for the same pair (seen up to node2's eth0, not on the pod's veth), and a
//   prediction that the kernel contradicts (a route the datastore does not know) is reported as such.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabState } from './pkg/state.js';
import { netnsList, pidAlive } from './pkg/sys.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const skip = process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync(LAB) ? 'bin/tortie-lab not built (npm run build)' : false;

function run(env: NodeJS.ProcessEnv, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout: 180_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

const failed = (out: string) => out.split('\n').filter((l) => l.startsWith('✖'));
const passed = (out: string) => out.split('\n').filter((l) => l.startsWith('✔'));

describe('tortie-lab connectivity and trace', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-conn-test-'));
  const env = { ...process.env, TORTIE_LAB_DIR: dir };
  const name = `c${randomBytes(3).toString('hex')}`;
  const lab = (...args: string[]) => run(env, args);
  const ok = async (...args: string[]) => {
    const r = await lab(...args);
    assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r.stdout;
  };
  const state = () => JSON.parse(readFileSync(join(dir, name, 'state.json'), 'utf8')) as LabState;
  let last: LabState | undefined;

  /** Nothing of the test is left: no probe pod, no probe namespace, no scenario policy. */
  const assertClean = async () => {
    const s = state();
    assert.deepEqual(Object.keys(s.pods).filter((k) => k.startsWith('tortie-connectivity/')), [], 'probe pods removed');
    assert.deepEqual(netnsList().filter((n) => n.includes('pod-tortie-connectivity')), [], 'probe namespaces removed');
    const pol = await ok('ctl', name, '--no-wait', '--', 'get', 'networkpolicy', '-n', 'tortie-connectivity', '-o', 'json');
    assert.deepEqual((JSON.parse(pol) as { items: unknown[] }).items, [], 'scenario policies removed');
  };

  before(async () => {
    await ok('up', '--name', name, '--nodes', '2');
    await ok('pod', 'add', name, 'node1', 'default/a', '--serve', '80');
    await ok('pod', 'add', name, 'node2', 'default/b', '--serve', '80');
  });

  after(async () => {
    if (existsSync(join(dir, name, 'state.json'))) {
      last = state();
      await lab('down', name);
    }
    rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), [], 'no namespace left');
    for (const p of last?.processes ?? []) assert.equal(pidAlive(p.pid, p.startTime), false, `${p.role} (PID ${p.pid}) still running`);
  });

  it('a healthy lab: every check passes, exit 0, nothing left', async () => {
    const out = await ok('connectivity', name);
    assert.deepEqual(failed(out), []);
    assert.equal(passed(out).length, 17, out);
    for (const g of ['pod→pod on node1', 'pod→pod across nodes', 'host→pod', 'pod→host', 'full-size packet, DF set', 'policy default deny', 'policy allow from role=client', 'policy allow is narrow']) {
      assert.ok(passed(out).some((l) => l.includes(g)), `a passing "${g}" check\n${out}`);
    }
    assert.match(out, /connectivity test: 17\/17 checks passed/);
    await assertClean();
  });

  it('mtu and odd-node at once: exactly their checks fail, each with its own diagnostic; exit 1', async () => {
    // One run for both faults (each fails checks of its own kind only), to keep the file short.
    await ok('break', name, 'mtu', '--node', 'node2');
    await ok('break', name, 'odd-node', '--node', 'node2');
    try {
      const r = await lab('connectivity', name);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      const bad = failed(r.stdout);
      assert.equal(bad.length, 3, r.stdout);
      // mtu: both full-size DF checks, naming the small link and what the kernel said.
      assert.equal(bad.filter((l) => l.includes('full-size packet, DF set')).length, 2, r.stdout);
      assert.match(r.stdout, /MTU: pod packets are up to 1500 bytes; .*node2 eth0 mtu 1400 — a link smaller than that drops/);
      // node2 → node1: the kernel says why (ICMP from node2's forwarding, or ping's local error once the path MTU is cached)
      assert.match(r.stdout, /Frag needed and DF set \(mtu = 1400\)|message too long, mtu=1400/);
      assert.match(r.stdout, /sent: ping -c 1 -M do -s 1472 /);
      assert.match(r.stdout, /route on node1: ip route get \S+ → \S+ via 10\.0\.0\.12 dev eth0/);
      // odd-node: node2's pod to its own host, naming the setting.
      assert.equal(bad.filter((l) => /pod→host: tortie-connectivity\/probe-node2 \(node2\) → its own node node2/.test(l)).length, 1, r.stdout);
      assert.match(r.stdout, /DefaultEndpointToHostAction Drop/);
      assert.match(r.stdout, /3 of 17 checks FAILED \((mtu, pod-to-host|pod-to-host, mtu)\)/);
      await assertClean();
    } finally {
      await ok('heal', name, 'mtu');
      await ok('heal', name, 'odd-node');
    }
  });

  it('SIGINT in the middle: the probes and policies are removed, exit non-zero', async () => {
    const child = spawn(LAB, ['connectivity', name], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    // Interrupt once the policy scenario has started (probes and a policy exist).
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no policy stage within 60s:\n${out}`)), 60_000);
      const tick = setInterval(() => {
        if (out.includes('policy: default deny')) {
          clearInterval(tick);
          clearTimeout(t);
          child.kill('SIGINT');
          resolve();
        }
      }, 20);
    });
    const code = await new Promise<number>((resolve) => child.once('exit', (c) => resolve(c ?? 1)));
    assert.notEqual(code, 0, out);
    assert.match(out, /interrupted/);
    await assertClean();
  });

  it('trace: prediction and kernel agree for an allowed and a denied pair; a contradiction is reported', async () => {
    const allowed = await ok('trace', name, 'default/a', 'default/b', '80/TCP');
    assert.match(allowed, /: DELIVERED/);
    assert.match(allowed, /proto bird/);
    assert.match(allowed, /node1 +cali\w+ +in +predicted, seen/);
    assert.match(allowed, /node2 +cali\w+ +out +predicted, seen/);
    assert.match(allowed, /the kernel agrees with the prediction \(delivered\)/);
    const deny = join(dir, 'deny.json');
    writeFileSync(deny, JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'NetworkPolicy', metadata: { name: 'deny-b', namespace: 'default' }, spec: { selector: "projectcalico.org/orchestrator == 'k8s'", types: ['Ingress'] } }));
    await ok('ctl', name, '--', 'apply', '-f', deny);
    try {
      const denied = await ok('trace', name, 'default/a', 'default/b', '80/TCP');
      assert.match(denied, /DROPPED at node2 cali\w+ \(policy\)/);
      assert.match(denied, /selected by default\/deny-b/);
      assert.match(denied, /node2 +eth0 +in +predicted, seen/);
      assert.doesNotMatch(denied, /node2 +cali\w+ +out/);
      assert.match(denied, /the kernel agrees with the prediction \(dropped at node2 cali\w+: policy\)/);
    } finally {
      await ok('ctl', name, '--', 'delete', 'networkpolicy', 'deny-b', '-n', 'default');
    }
    // The kernel of node1 routes b's address elsewhere (a /32 on a veth of its own), which no
    // datastore fact says: the packet leaves by that veth, not eth0; the check must say so.
    const bIp = state().pods['default/b']!.ip!;
    const inNode1 = ['exec', name, 'node1', '--', 'ip'];
    await ok(...inNode1, 'link', 'add', 'tracex0', 'type', 'veth', 'peer', 'name', 'tracex1');
    try {
      await ok(...inNode1, 'link', 'set', 'tracex0', 'up');
      await ok(...inNode1, 'link', 'set', 'tracex1', 'up');
      await ok(...inNode1, 'route', 'add', `${bIp}/32`, 'dev', 'tracex0');
      // (a neighbour entry, so the packet is sent rather than held for ARP)
      await ok(...inNode1, 'neigh', 'add', bIp, 'lladdr', '02:00:00:00:00:01', 'dev', 'tracex0');
      const r = await lab('trace', name, 'default/a', 'default/b', '80/TCP');
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /node1 +eth0 +out +predicted, NOT seen/);
      assert.match(r.stdout, /node1 +tracex0 +out +NOT predicted, seen/);
      assert.match(r.stdout, /the kernel DISAGREES with the prediction/);
    } finally {
      await ok(...inNode1, 'link', 'del', 'tracex0');
    }
  });
});
