// Calico policy in nftables (policy-table.ts + felix/calc/policy-compiler.ts) with real packets.
// Everything that touches nftables runs in namespaces created here (`tortie-t<hex>-*`), deleted in
// `after`: a "node" namespace (the agent's, running policy-table.ts and podnet.ts through
// testdata/policy-driver.js) and four pod namespaces wired with wirePod, standing for the e2e pods
// x/a, x/b, y/b and z/c, each serving TCP on 80 and 81. For truth-table cases the table is applied and
// every ordered pair is probed with a TCP connect; the result must equal the evaluator's verdicts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PolicyTable, type PolicyApplyResult } from './policy-table.js';
import type { Exec } from './iproute.js';
import { caseFiles, calicoResources, defaultAddresses, e2eModel, evaluateMatrix, loadCase } from '../../../libcalico-go/lib/policy/truth-table.js';
import { emptyModel } from '../../../libcalico-go/lib/policy/model.js';
import { verdict } from '../../../libcalico-go/lib/policy/evaluate.js';

const IP = '/usr/sbin/ip';
const NFT = '/usr/sbin/nft';
const NODE = '/usr/bin/node';
const DRIVER = fileURLToPath(new URL('./testdata/policy-driver.js', import.meta.url));
const CASES = fileURLToPath(new URL('../../../../libcalico-go/lib/policy/testdata/cases', import.meta.url));
const isRoot = process.getuid?.() === 0;
const liveSkip = !isRoot ? 'needs root (network namespaces)' : !existsSync(NFT) ? 'nft is not installed' : !existsSync(DRIVER) ? 'build first (policy-driver.js)' : false;

describe('PolicyTable change detection (fake nft)', () => {
  it('writes first, then only lists while nothing changed; rewrites on change, loss or edit', async () => {
    let kernel: string | null = null;
    const calls: string[] = [];
    const exec: Exec = async (_file, args, input) => {
      calls.push(args.join(' '));
      if (args[0] === '-f') {
        kernel = `listing of ${input!.length}`;
        return { code: 0, signal: null, stdout: '', stderr: '' };
      }
      if (kernel === null) return { code: 1, signal: null, stdout: '', stderr: 'Error: No such file or directory' };
      return { code: 0, signal: null, stdout: kernel, stderr: '' };
    };
    const t = new PolicyTable({ exec });
    const m = emptyModel();
    const r1 = await t.apply(m, []);
    assert.deepEqual([r1.changed, r1.reason, r1.execs], [true, 'first write', 2]);
    const r2 = await t.apply(m, []);
    assert.deepEqual([r2.changed, r2.reason, r2.execs], [false, 'unchanged', 1]);
    kernel = null;
    assert.equal((await t.apply(m, [])).reason, 'table missing');
    kernel = 'hand edited';
    assert.equal((await t.apply(m, [])).reason, 'table changed');
    m.endpoints.push({ key: 'x/a', namespace: 'x', labels: {}, ips: ['10.0.0.1'], namedPorts: [], profiles: [] });
    assert.equal((await t.apply(m, [{ key: 'x/a', interfaceName: 'calia' }])).reason, 'policy changed');
    assert.ok(calls.every((c) => c === '-f -' || c === 'list table inet tortie-filter'));
  });
});

const R = randomBytes(3).toString('hex');
const NODE_NS = `tortie-t${R}-node`;
// e2e pod → namespace, host interface, address (the evaluator's default addresses)
const ADDRS = defaultAddresses();
const PODS = [
  { key: 'x/a', ns: `tortie-t${R}-xa`, host: `calit${R}xa` },
  { key: 'x/b', ns: `tortie-t${R}-xb`, host: `calit${R}xb` },
  { key: 'y/b', ns: `tortie-t${R}-yb`, host: `calit${R}yb` },
  { key: 'z/c', ns: `tortie-t${R}-zc`, host: `calit${R}zc` },
].map((p) => ({ ...p, ip: ADDRS[p.key]! }));
const KEYS = PODS.map((p) => p.key);
const ALL_NS = [NODE_NS, ...PODS.map((p) => p.ns)];
const HOST_IP = '192.0.2.1'; // the node's own address (on its uplink)

function run(argv: string[], input?: string, timeout = 30_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, timeout, env: { LC_ALL: 'C' } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}
function must(argv: string[], input?: string): string {
  const r = run(argv, input);
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Answer {
  ok: boolean;
  value?: unknown;
  error?: { name: string; message: string };
}
function driver(ops: object[]): Answer[] {
  const r = run([IP, 'netns', 'exec', NODE_NS, NODE, DRIVER], JSON.stringify(ops));
  assert.equal(r.status, 0, `driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Answer[];
}
function ok<T>(a: Answer | undefined): T {
  assert.ok(a?.ok, `operation failed: ${JSON.stringify(a?.error)}`);
  return a.value as T;
}

const SERVER = `
const net = require('node:net');
let n = 0;
for (const port of [80, 81]) {
  const s = net.createServer((c) => { c.on('error', () => {}); c.end('hi\\n'); });
  s.listen(port, '0.0.0.0', () => { if (++n === 2) process.stdout.write('ready\\n'); });
}
`;
// Connects to every address given (in parallel) and prints {ip: reached}.
const CLIENT = `
const net = require('node:net');
const [port, ...ips] = process.argv.slice(1);
const out = {};
Promise.all(ips.map((ip) => new Promise((res) => {
  const c = net.connect({ host: ip, port: Number(port), timeout: 800 });
  const done = (v) => { out[ip] = v; c.destroy(); res(); };
  c.on('data', () => done(true));
  c.on('timeout', () => done(false));
  c.on('error', () => done(false));
}))).then(() => process.stdout.write(JSON.stringify(out)));
`;

/** Reachability between the three pods on a TCP port, as measured. */
function probeMatrix(port: number): Record<string, Record<string, boolean>> {
  const m: Record<string, Record<string, boolean>> = {};
  for (const src of PODS) {
    const dsts = PODS.filter((d) => d !== src);
    const r = run([IP, 'netns', 'exec', src.ns, NODE, '-e', CLIENT, String(port), ...dsts.map((d) => d.ip)], undefined, 10_000);
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as Record<string, boolean>;
    m[src.key] = {};
    for (const d of dsts) m[src.key]![d.key] = got[d.ip] === true;
  }
  return m;
}

const rootRuleset = () => (isRoot && existsSync(NFT) ? run([NFT, 'list', 'ruleset']).stdout : '');
const local = PODS.map((p) => ({ key: p.key, interfaceName: p.host }));
export const applyTimes: number[] = [];

describe('Calico policy with real packets', { skip: liveSkip }, () => {
  const children: ChildProcess[] = [];
  let rootBefore = '';

  before(async () => {
    rootBefore = rootRuleset();
    for (const n of ALL_NS) must([IP, 'netns', 'add', n]);
    // A default route (out of a veth) as every node has: proxy ARP answers the pods' 169.254.1.1
    // only when the node has a route to it through another interface.
    must([IP, '-n', NODE_NS, '-batch', '-'], `link set lo up\nlink add uplink0 type veth peer name uplink1\nlink set uplink1 up\nlink set uplink0 up\naddr add ${HOST_IP}/24 dev uplink0\nroute add default dev uplink0\n`);
    must([IP, 'netns', 'exec', NODE_NS, '/usr/sbin/sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    for (const p of PODS) must([IP, '-n', p.ns, 'link', 'set', 'lo', 'up']);
    const w = driver(PODS.map((p) => ({ op: 'wire', spec: { netns: `/run/netns/${p.ns}`, ifname: 'eth0', hostIfName: p.host, addresses: [`${p.ip}/32`] } })));
    w.forEach((a) => ok(a));
    for (const p of [...PODS, { ns: NODE_NS }]) {
      const srv = spawn(IP, ['netns', 'exec', p.ns, NODE, '-e', SERVER], { stdio: ['ignore', 'pipe', 'pipe'], env: { LC_ALL: 'C' } });
      children.push(srv);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error('server did not start')), 10_000);
        srv.stdout!.on('data', (d: Buffer) => {
          if (d.toString().includes('ready')) {
            clearTimeout(t);
            resolve();
          }
        });
        srv.on('exit', (c) => reject(new Error(`server exited ${c}`)));
      });
    }
  });

  after(() => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
    for (const n of ALL_NS) run([IP, 'netns', 'del', n]);
  });

  it('without a table every pair connects', () => {
    const m = probeMatrix(80);
    for (const s of KEYS) for (const d of KEYS) if (s !== d) assert.equal(m[s]![d], true, `${s} → ${d}`);
  });

  // Every truth-table case with a TCP probe on 80 or 81 (the servers' ports).
  const CASE_NAMES = existsSync(CASES)
    ? caseFiles(CASES)
        .map((f) => basename(f, '.yaml'))
        .filter((n) => loadCase(`${CASES}/${n}.yaml`).probes.some((p) => p.protocol === 'TCP' && (p.port === 80 || p.port === 81)))
    : [];
  for (const name of CASE_NAMES) {
    it(`${name}: measured reachability equals the evaluator's`, () => {
      const c = loadCase(`${CASES}/${name}.yaml`);
      const model = e2eModel(calicoResources(c.policies));
      const res = ok<PolicyApplyResult>(driver([{ op: 'apply', model, local }])[0]);
      assert.equal(res.changed, true);
      applyTimes.push(res.ms);
      const probes = c.probes.filter((p) => p.protocol === 'TCP' && (p.port === 80 || p.port === 81));
      assert.ok(probes.length > 0, 'the case has a TCP 80/81 probe');
      for (const p of probes) {
        const want = evaluateMatrix(model, p, KEYS);
        const got = probeMatrix(p.port!);
        assert.deepEqual(got, want, `${name} TCP ${p.port}: measured ${JSON.stringify(got)} vs evaluator ${JSON.stringify(want)}`);
      }
    });
  }

  it('host → pod runs the pod\'s ingress policy (output hook); pod → host its egress, then DefaultEndpointToHostAction', () => {
    const model = e2eModel(calicoResources(loadCase(`${CASES}/02-default-deny-ingress.yaml`).policies));
    const hostTo = (ip: string) => {
      const r = run([IP, 'netns', 'exec', NODE_NS, NODE, '-e', CLIENT, '80', ip], undefined, 10_000);
      assert.equal(r.status, 0, r.stderr);
      return (JSON.parse(r.stdout) as Record<string, boolean>)[ip] === true;
    };
    const podToHost = (ns: string) => {
      const r = run([IP, 'netns', 'exec', ns, NODE, '-e', CLIENT, '80', HOST_IP], undefined, 10_000);
      assert.equal(r.status, 0, r.stderr);
      return (JSON.parse(r.stdout) as Record<string, boolean>)[HOST_IP] === true;
    };
    ok(driver([{ op: 'apply', model, local }])[0]);
    for (const p of PODS) {
      const want = verdict(model, { src: { ip: HOST_IP }, dst: p.key, protocol: 'TCP', port: 80 }).allowed;
      assert.equal(hostTo(p.ip), want, `host → ${p.key}`);
    }
    assert.equal(podToHost(PODS[0]!.ns), true, 'Accept (default)');
    ok(driver([{ op: 'apply', model, local, endpointToHostAction: 'Drop' }])[0]);
    assert.equal(podToHost(PODS[0]!.ns), false, 'Drop');
    // egress policy runs first: default deny egress stops pod → host even with Accept
    const egress = e2eModel(calicoResources(loadCase(`${CASES}/03-default-deny-egress.yaml`).policies));
    ok(driver([{ op: 'apply', model: egress, local, endpointToHostAction: 'Accept' }])[0]);
    const xa = verdict(egress, { src: 'x/a', dst: { ip: HOST_IP }, protocol: 'TCP', port: 80 }).allowed;
    assert.equal(xa, false);
    assert.equal(podToHost(PODS[0]!.ns), xa);
  });

  it('an unchanged model only lists; a hand edit is repaired', () => {
    const model = e2eModel(calicoResources(loadCase(`${CASES}/02-default-deny-ingress.yaml`).policies));
    const a = driver([
      { op: 'apply', model, local },
      { op: 'apply', model, local },
      { op: 'nft', args: ['flush', 'chain', 'inet', 'tortie-filter', 'forward'] },
      { op: 'apply', model, local },
    ]);
    assert.equal(ok<PolicyApplyResult>(a[1]).reason, 'unchanged');
    ok(a[2]);
    assert.equal(ok<PolicyApplyResult>(a[3]).reason, 'table changed');
    const m = probeMatrix(80);
    assert.equal(m['y/b']!['x/a'], false);
  });

  it('remove deletes only the agent table; every pair connects again; root ruleset untouched', () => {
    assert.equal(ok<boolean>(driver([{ op: 'remove' }])[0]), true);
    const m = probeMatrix(80);
    for (const s of KEYS) for (const d of KEYS) if (s !== d) assert.equal(m[s]![d], true, `${s} → ${d}`);
    assert.equal(rootRuleset(), rootBefore);
    if (applyTimes.length > 0) console.log(`# policy apply ms: ${applyTimes.join(', ')}`);
  });
});
