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
import { normalizeListing } from './nft-listing.js';
import { type Exec, spawnExec } from './iproute.js';
import type { Resource } from '../../../libcalico-go/lib/apis/v3/resource.js';
import { caseFiles, calicoResources, defaultAddresses, e2eModel, evaluateMatrix, loadCase } from '../../../libcalico-go/lib/policy/truth-table.js';
import { type PolicyModel, emptyModel } from '../../../libcalico-go/lib/policy/model.js';
import { type CompileOptions, type LocalEndpoint, compilePolicy } from '../../calc/policy-compiler.js';
import { verdict } from '../../../libcalico-go/lib/policy/evaluate.js';
import { CHANGES, MORE_CHANGES, type Situation, baseSituation, cloneSituation } from '../../calc/testdata/policy-changes.js';
import { DUAL_CASES, dualAddresses, dualStackModel } from '../../calc/testdata/dual-stack.js';

const IP = '/usr/sbin/ip';
const NFT = '/usr/sbin/nft';
const NODE = '/usr/bin/node';
const DRIVER = fileURLToPath(new URL('./testdata/policy-driver.js', import.meta.url));
const CASES = fileURLToPath(new URL('../../../../libcalico-go/lib/policy/testdata/cases', import.meta.url));
const isRoot = process.getuid?.() === 0;
const liveSkip = !isRoot ? 'needs root (network namespaces)' : !existsSync(NFT) ? `${NFT} is not installed (apt-get install nftables)` : !existsSync(DRIVER) ? 'testdata/policy-driver.js not built (npm run build)' : false;

/**
 * A fake nft standing for a kernel that does what it is told: a transaction that succeeds leaves the
 * table compiled from `desired()` (the situation the test is applying), listed as nft would (the full
 * script without its `#` lines: rules with their id comments, sets with their elements).
 */
function fakeNft(desired: () => { model: PolicyModel; local: LocalEndpoint[]; opts?: CompileOptions }) {
  let kernel: string | null = null;
  const calls: string[] = [];
  let failNext = false;
  const exec: Exec = async (_file, args, input) => {
    calls.push(args[0] === '-f' ? `-f ${(input ?? '').split(' ')[0]}` : args.join(' '));
    if (args[0] === 'list') return kernel === null ? { code: 1, signal: null, stdout: '', stderr: 'Error: No such file or directory' } : { code: 0, signal: null, stdout: kernel, stderr: '' };
    if (args[0] !== '-f') throw new Error(`unexpected nft ${args.join(' ')}`);
    const whole = (input ?? '').startsWith('table ');
    if (failNext || (kernel === null && !whole)) {
      failNext = false;
      return { code: 1, signal: null, stdout: '', stderr: 'Error: Could not process rule: No such file or directory' };
    }
    const d = desired();
    const script = compilePolicy(d.model, d.local, d.opts).script;
    kernel = script.split('\n').slice(2).filter((l) => !l.trim().startsWith('#')).join('\n');
    return { code: 0, signal: null, stdout: '', stderr: '' };
  };
  return {
    exec,
    calls,
    failNextTransaction: () => (failNext = true),
    edit: (f: (listing: string) => string) => (kernel = kernel === null ? null : f(kernel)),
    dropTable: () => (kernel = null),
  };
}


/** Runs a server script in a namespace and waits for its "ready" line. */
async function startServer(ns: string, script: string): Promise<ChildProcess> {
  const srv = spawn(IP, ['netns', 'exec', ns, NODE, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { LC_ALL: 'C' } });
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => {
      srv.kill('SIGKILL');
      reject(new Error(`server in ${ns} did not start`));
    }, 10_000);
    srv.stdout!.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) {
        clearTimeout(t);
        resolve();
      }
    });
    srv.on('exit', (c) => reject(new Error(`server in ${ns} exited ${c}`)));
  });
  return srv;
}

describe('PolicyTable change detection (fake nft)', () => {
  const ep = (name: string, ip: string) => ({ key: `x/${name}`, namespace: 'x', labels: { app: name }, ips: [ip], namedPorts: [], profiles: [] });
  const policy = (port: number): Resource =>
    ({
      apiVersion: 'projectcalico.org/v3',
      kind: 'NetworkPolicy',
      metadata: { name: 'p', namespace: 'x' },
      spec: { selector: "app == 'a'", ingress: [{ action: 'Allow', protocol: 'TCP', source: { selector: "app == 'b'" }, destination: { ports: [port] } }] },
    }) as Resource;
  const local = [
    { key: 'x/a', interfaceName: 'calia' },
    { key: 'x/b', interfaceName: 'calib' },
  ];
  const setup = () => {
    const m = emptyModel();
    m.endpoints.push(ep('a', '10.0.0.1'), ep('b', '10.0.0.2'));
    m.policies.push(policy(80));
    const f = fakeNft(() => ({ model: m, local }));
    return { m, f, t: new PolicyTable({ exec: f.exec }) };
  };

  it('writes whole first; then no nft while nothing changed; a change is one transaction', async () => {
    const { m, f, t } = setup();
    const r1 = await t.apply(m, local);
    assert.deepEqual([r1.changed, r1.reason, r1.execs, r1.incremental], [true, 'first write', 1, false]);
    assert.deepEqual(f.calls.splice(0), ['-f table']);
    const r2 = await t.apply(structuredClone(m), local);
    assert.deepEqual([r2.changed, r2.reason, r2.execs], [false, 'unchanged', 0]);
    assert.deepEqual(f.calls.splice(0), []);
    m.policies[0] = policy(81);
    const r3 = await t.apply(m, local);
    assert.deepEqual([r3.changed, r3.reason, r3.execs, r3.incremental, r3.commands], [true, 'policy changed', 1, true, 2]);
    assert.deepEqual(f.calls.splice(0), ['-f flush']);
    const r4 = await t.verify();
    assert.deepEqual([r4.changed, r4.reason, r4.execs, r4.verified], [false, 'unchanged', 1, true]);
    assert.deepEqual(f.calls.splice(0), ['list table inet tortie-filter']);
  });

  it('drift is found by a verification only (apply {verify} or verify()), and repaired by a full rewrite', async () => {
    const { m, f, t } = setup();
    await t.apply(m, local);
    f.dropTable();
    assert.equal((await t.apply(m, local)).reason, 'unchanged', 'no verification, no listing');
    const r = await t.apply(m, local, { verify: true });
    assert.deepEqual([r.changed, r.reason, r.execs, r.verified, r.incremental], [true, 'table missing', 2, true, false]);
    // a rule added by hand (no id), a rule's id changed, an element added, an object added
    const edits: Array<[string, (l: string) => string, string]> = [
      ['rule added', (l) => l.replace('\t\tct state established,related accept comment', '\t\taccept\n\t\tct state established,related accept comment'), 'chain forward'],
      ['rule replaced', (l) => l.replace(/(chain forward \{\n[^\n]*\n\t\t[^\n]*comment ")t:/, '$1t:0'), 'chain forward'],
      ['element added', (l) => l.replace('elements = { "calia", "calib" }', 'elements = { "calia", "calib", "calic" }'), 'set wl-ifaces'],
      ['chain added', (l) => l.replace(/\}\s*$/, '\tchain extra {\n\t}\n}\n'), 'chain extra'],
    ];
    for (const [what, edit, object] of edits) {
      const before = f.edit((x) => x);
      assert.notEqual(f.edit(edit), before, `${what}: the edit applies`);
      const v = await t.verify();
      assert.deepEqual([v.reason, v.drift], ['table changed', [object]], what);
      assert.equal((await t.verify()).reason, 'unchanged', `${what}: repaired`);
    }
    f.calls.splice(0);
    // a change and a verification together: verified first, then only the difference
    m.endpoints.push(ep('c', '10.0.0.3'));
    const r2 = await t.apply(m, [...local, { key: 'x/c', interfaceName: 'calic' }], { verify: true });
    assert.deepEqual([r2.reason, r2.incremental, r2.verified], ['policy changed', true, true]);
    assert.deepEqual(f.calls.splice(0), ['list table inet tortie-filter', '-f add']);
  });

  it('a failed transaction is reported and the table rewritten whole; force and reset rewrite whole', async () => {
    const { m, f, t } = setup();
    await t.apply(m, local);
    m.policies[0] = policy(82);
    f.failNextTransaction();
    const r = await t.apply(m, local);
    assert.deepEqual([r.changed, r.reason, r.incremental, r.execs], [true, 'incremental update failed', false, 2]);
    assert.match(r.error ?? '', /No such file or directory/);
    assert.equal((await t.verify()).reason, 'unchanged');
    assert.deepEqual([(await t.apply(m, local, { force: true })).reason], ['forced']);
    t.reset();
    assert.equal((await t.apply(m, local)).reason, 'first write');
    assert.equal((await t.verify()).reason, 'unchanged');
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
    for (const a of w) ok(a);
    for (const p of [...PODS, { ns: NODE_NS }]) children.push(await startServer(p.ns, SERVER));
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
  // Each case is written as a difference from the previous one (one driver run, one PolicyTable),
  // probed, and its listing compared with a full rewrite of the same model.
  let previous = e2eModel([]);
  for (const name of CASE_NAMES) {
    it(`${name}: written incrementally, measured reachability equals the evaluator's`, () => {
      const c = loadCase(`${CASES}/${name}.yaml`);
      const model = e2eModel(calicoResources(c.policies));
      const a = driver([
        { op: 'apply', model: previous, local },
        { op: 'apply', model, local },
        { op: 'nft', args: ['list', 'table', 'inet', 'tortie-filter'] },
      ]);
      previous = model;
      const res = ok<PolicyApplyResult>(a[1]);
      assert.ok(res.incremental || !res.changed, `${res.reason} ${res.error ?? ''}`);
      applyTimes.push(res.ms);
      const probes = c.probes.filter((p) => p.protocol === 'TCP' && (p.port === 80 || p.port === 81));
      assert.ok(probes.length > 0, 'the case has a TCP 80/81 probe');
      for (const p of probes) {
        const want = evaluateMatrix(model, p, KEYS);
        const got = probeMatrix(p.port!);
        assert.deepEqual(got, want, `${name} TCP ${p.port}: measured ${JSON.stringify(got)} vs evaluator ${JSON.stringify(want)}`);
      }
      const full = driver([{ op: 'apply', model, local }, { op: 'nft', args: ['list', 'table', 'inet', 'tortie-filter'] }]);
      assert.equal(ok<PolicyApplyResult>(full[0]).reason, 'first write');
      assert.equal(normalizeListing(ok<string>(a[2])), normalizeListing(ok<string>(full[1])), 'incremental and full listings differ');
    });
  }

  it('host → pod is not policed (kubelet probes under default deny); pod → host runs egress, then DefaultEndpointToHostAction', () => {
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
    // the default deny is in force for pods (x/a is isolated for ingress) …
    assert.equal(verdict(model, { src: 'y/b', dst: 'x/a', protocol: 'TCP', port: 80 }).allowed, false);
    assert.equal(probeMatrix(80)['y/b']!['x/a'], false, 'y/b → x/a under default deny');
    // … yet the host reaches every local pod, the isolated ones included
    for (const p of PODS) assert.equal(hostTo(p.ip), true, `host → ${p.key}`);
    assert.equal(podToHost(PODS[0]!.ns), true, 'Accept (default)');
    ok(driver([{ op: 'apply', model, local, endpointToHostAction: 'Drop' }])[0]);
    assert.equal(podToHost(PODS[0]!.ns), false, 'Drop');
    for (const p of PODS) assert.equal(hostTo(p.ip), true, `host → ${p.key} (Drop only concerns pod → host)`);
    // egress policy runs first: default deny egress stops pod → host even with Accept
    const egress = e2eModel(calicoResources(loadCase(`${CASES}/03-default-deny-egress.yaml`).policies));
    ok(driver([{ op: 'apply', model: egress, local, endpointToHostAction: 'Accept' }])[0]);
    const xa = verdict(egress, { src: 'x/a', dst: { ip: HOST_IP }, protocol: 'TCP', port: 80 }).allowed;
    assert.equal(xa, false);
    assert.equal(podToHost(PODS[0]!.ns), xa);
  });

  it('an unchanged model runs no nft; a verification finds a hand edit and repairs it', () => {
    const model = e2eModel(calicoResources(loadCase(`${CASES}/02-default-deny-ingress.yaml`).policies));
    const a = driver([
      { op: 'apply', model, local },
      { op: 'apply', model, local },
      { op: 'nft', args: ['flush', 'chain', 'inet', 'tortie-filter', 'forward'] },
      { op: 'apply', model, local },
      { op: 'apply', model, local, verify: true },
      { op: 'verify' },
    ]);
    assert.deepEqual([ok<PolicyApplyResult>(a[1]).reason, ok<PolicyApplyResult>(a[1]).execs], ['unchanged', 0]);
    ok(a[2]);
    assert.equal(ok<PolicyApplyResult>(a[3]).reason, 'unchanged', 'without a verification the edit goes unseen');
    assert.equal(ok<PolicyApplyResult>(a[4]).reason, 'table changed');
    assert.equal(ok<PolicyApplyResult>(a[5]).reason, 'unchanged');
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

// Each change of the fixture written as a difference must leave the kernel with exactly the table a
// full rewrite of the new model gives (listings compared object by object, set elements sorted);
// and a verification must find and repair drift. In a namespace of its own (`tortie-t<hex>-inc`),
// with a PolicyTable in this process whose nft runs through `ip netns exec`.
describe('incremental updates equal a full rewrite (real kernel)', { skip: !isRoot ? 'needs root (network namespaces)' : !existsSync(NFT) ? `${NFT} is not installed (apt-get install nftables)` : false }, () => {
  const NS = `tortie-t${R}-inc`;
  const base = spawnExec(30_000);
  const exec: Exec = (file, args, input) => base(IP, ['netns', 'exec', NS, file, ...args], input);
  const listing = () => must([IP, 'netns', 'exec', NS, NFT, 'list', 'table', 'inet', 'tortie-filter']);
  const nft = (...args: string[]) => must([IP, 'netns', 'exec', NS, NFT, ...args]);
  let rootBefore = '';

  before(() => {
    rootBefore = rootRuleset();
    must([IP, 'netns', 'add', NS]);
  });
  after(() => {
    run([IP, 'netns', 'del', NS]);
  });

  /** Writes `s` whole with a fresh PolicyTable; its normalised listing. */
  async function fullListing(s: Situation): Promise<string> {
    const r = await new PolicyTable({ exec }).apply(s.model, s.local, s.opts);
    assert.equal(r.reason, 'first write');
    return normalizeListing(listing());
  }

  for (const ch of CHANGES) {
    it(`${ch.name}: one transaction, then the table a full rewrite gives; and back`, async () => {
      const before = baseSituation('calit');
      const after = cloneSituation(before);
      ch.apply(after);
      const wantBefore = await fullListing(before);
      const wantAfter = await fullListing(after);
      assert.notEqual(wantAfter, wantBefore, 'the change changes the table');

      const t = new PolicyTable({ exec });
      assert.equal((await t.apply(before.model, before.local, before.opts)).reason, 'first write');
      const r = await t.apply(after.model, after.local, after.opts);
      assert.deepEqual([r.changed, r.reason, r.incremental, r.execs, r.error], [true, 'policy changed', true, 1, undefined]);
      assert.equal(normalizeListing(listing()), wantAfter);
      assert.deepEqual([(await t.verify()).reason], ['unchanged'], 'the record follows the kernel');
      const back = await t.apply(before.model, before.local, before.opts);
      assert.deepEqual([back.reason, back.incremental], ['policy changed', true]);
      assert.equal(normalizeListing(listing()), wantBefore);
      assert.equal((await t.verify()).reason, 'unchanged');
    });
  }

  it('every change one after another, each incremental (or nothing to do), ends where a full rewrite does', async () => {
    const s = baseSituation('calit');
    const t = new PolicyTable({ exec });
    await t.apply(s.model, s.local, s.opts);
    for (const ch of [...CHANGES, ...MORE_CHANGES]) {
      ch.apply(s);
      const r = await t.apply(s.model, s.local, s.opts);
      assert.ok(r.incremental || r.reason === 'unchanged', `${ch.name}: ${r.reason} ${r.error ?? ''}`);
    }
    const got = normalizeListing(listing());
    assert.equal((await t.verify()).reason, 'unchanged');
    assert.equal(got, await fullListing(s));
  });

  it('table deleted by hand: apply alone does not look; verify() puts it back', async () => {
    const s = baseSituation('calit');
    const want = await fullListing(s);
    const t = new PolicyTable({ exec });
    await t.apply(s.model, s.local);
    nft('delete', 'table', 'inet', 'tortie-filter');
    assert.deepEqual([(await t.apply(s.model, s.local)).execs], [0]);
    const r = await t.verify();
    assert.deepEqual([r.changed, r.reason, r.incremental], [true, 'table missing', false]);
    assert.equal(normalizeListing(listing()), want);
  });

  it('a chain or a set edited by hand: verify() rewrites the table', async () => {
    const s = baseSituation('calit');
    const want = await fullListing(s);
    const t = new PolicyTable({ exec });
    const c = await t.apply(s.model, s.local);
    assert.equal(c.reason, 'first write');
    const policyChain = /\tchain (ri-[0-9a-f]{12}) \{/.exec(listing())![1]!;
    nft('add', 'rule', 'inet', 'tortie-filter', policyChain, 'accept');
    assert.notEqual(normalizeListing(listing()), want);
    assert.equal((await t.verify()).reason, 'table changed');
    assert.equal(normalizeListing(listing()), want);
    nft('add', 'element', 'inet', 'tortie-filter', 'wl-ifaces', '{ "intruder0" }');
    assert.equal((await t.apply(s.model, s.local, { verify: true })).reason, 'table changed');
    assert.equal(normalizeListing(listing()), want);
    nft('add', 'chain', 'inet', 'tortie-filter', 'extra');
    assert.equal((await t.verify()).reason, 'table changed');
    assert.equal(normalizeListing(listing()), want);
  });

  it('a transaction the kernel refuses (an element gone by hand): reported, then the table is rewritten whole', async () => {
    const s = baseSituation('calit');
    const t = new PolicyTable({ exec });
    await t.apply(s.model, s.local);
    const gone = s.local.find((l) => l.key === 'y/a')!.interfaceName;
    nft('delete', 'element', 'inet', 'tortie-filter', 'wl-ifaces', `{ "${gone}" }`);
    CHANGES.find((c) => c.name === 'endpoint removed')!.apply(s);
    const r = await t.apply(s.model, s.local);
    assert.deepEqual([r.changed, r.reason, r.incremental], [true, 'incremental update failed', false]);
    assert.match(r.error ?? '', /nft/);
    assert.equal(normalizeListing(listing()), await fullListing(s));
  });

  it('touches nothing outside its namespace\'s table', () => {
    assert.equal(rootRuleset(), rootBefore);
  });
});

// Dual stack with real packets: the same four pods in namespaces of their own (`tortie-t<hex>-6*`),
// each with an IPv4 /32 and an IPv6 /128 (wirePod: host routes `<ip>/128 dev cali…`, the pod's
// IPv6 default route via fe80::ecee:eeff:feee:eeee), serving TCP 80/81 on `::` (both families).
// For each dual-stack case the table is written incrementally, verified against the kernel (IPv6
// set elements as nft lists them) and every ordered pair probed over IPv4 and IPv6: the result must
// equal the evaluator's verdicts for the same addresses. ICMPv6 (ping -6) is checked by hand:
// evaluate.ts does not model ICMPv6.
const PING = '/usr/bin/ping';
const NODE6_NS = `tortie-t${R}-6node`;
const DA = dualAddresses();
const PODS6 = PODS.map((p) => ({ key: p.key, ns: `tortie-t${R}-6${p.key.replace('/', '')}`, host: `cali6${R}${p.key.replace('/', '')}`, v4: DA[p.key]!.v4, v6: DA[p.key]!.v6 }));
const ALL6_NS = [NODE6_NS, ...PODS6.map((p) => p.ns)];
const local6 = PODS6.map((p) => ({ key: p.key, interfaceName: p.host }));
const SERVER6 = SERVER.replace("'0.0.0.0'", "'::'");

/** Reachability between the pods on a TCP port over one family, as measured. */
function probeMatrix6(port: number, family: 'v4' | 'v6'): Record<string, Record<string, boolean>> {
  const m: Record<string, Record<string, boolean>> = {};
  for (const src of PODS6) {
    const dsts = PODS6.filter((d) => d !== src);
    const r = run([IP, 'netns', 'exec', src.ns, NODE, '-e', CLIENT, String(port), ...dsts.map((d) => d[family])], undefined, 10_000);
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as Record<string, boolean>;
    m[src.key] = {};
    for (const d of dsts) m[src.key]![d.key] = got[d[family]] === true;
  }
  return m;
}
/** The evaluator's verdicts for the same probes (the packets' addresses as peers). */
function evaluate6(model: PolicyModel, port: number, family: 'v4' | 'v6'): Record<string, Record<string, boolean>> {
  const m: Record<string, Record<string, boolean>> = {};
  for (const src of PODS6) {
    m[src.key] = {};
    for (const d of PODS6) if (d !== src) m[src.key]![d.key] = verdict(model, { src: { ip: src[family] }, dst: { ip: d[family] }, protocol: 'TCP', port }).allowed;
  }
  return m;
}
const ping6 = (from: string, to: string, v6: boolean) => run([IP, 'netns', 'exec', from, PING, ...(v6 ? ['-6'] : ['-4']), '-c', '1', '-W', '1', to], undefined, 10_000).status === 0;

describe('Calico policy with real packets, dual stack (IPv6)', { skip: liveSkip }, () => {
  const children: ChildProcess[] = [];
  let rootBefore = '';
  const driver6 = (ops: object[]): Answer[] => {
    const r = run([IP, 'netns', 'exec', NODE6_NS, NODE, DRIVER], JSON.stringify(ops));
    assert.equal(r.status, 0, `driver failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Answer[];
  };

  before(async () => {
    rootBefore = rootRuleset();
    for (const n of ALL6_NS) must([IP, 'netns', 'add', n]);
    must([IP, '-n', NODE6_NS, '-batch', '-'], `link set lo up\nlink add uplink0 type veth peer name uplink1\nlink set uplink1 up\nlink set uplink0 up\naddr add ${HOST_IP}/24 dev uplink0\nroute add default dev uplink0\n`);
    must([IP, 'netns', 'exec', NODE6_NS, '/usr/sbin/sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const p of PODS6) must([IP, '-n', p.ns, 'link', 'set', 'lo', 'up']);
    const w = driver6(PODS6.map((p) => ({ op: 'wire', spec: { netns: `/run/netns/${p.ns}`, ifname: 'eth0', hostIfName: p.host, addresses: [`${p.v4}/32`, `${p.v6}/128`] } })));
    for (const a of w) ok(a);
    for (const p of PODS6) children.push(await startServer(p.ns, SERVER6));
  });

  after(() => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
    for (const n of ALL6_NS) run([IP, 'netns', 'del', n]);
  });

  it('without a table every pair connects over IPv4 and IPv6 (TCP and ping)', () => {
    for (const fam of ['v4', 'v6'] as const) {
      const m = probeMatrix6(80, fam);
      for (const s of PODS6) for (const d of PODS6) if (s !== d) assert.equal(m[s.key]![d.key], true, `${fam} ${s.key} → ${d.key}`);
    }
    assert.equal(ping6(PODS6[1]!.ns, PODS6[0]!.v6, true), true, 'ping -6 x/b → x/a');
  });

  let previous = dualStackModel([]);
  for (const dc of DUAL_CASES) {
    it(`dual stack: ${dc.name}: written incrementally, verified, IPv4 and IPv6 reachability equal the evaluator's`, () => {
      const model = dualStackModel(dc.resources);
      const a = driver6([
        { op: 'apply', model: previous, local: local6 },
        { op: 'apply', model, local: local6 },
        { op: 'verify' },
        { op: 'nft', args: ['list', 'table', 'inet', 'tortie-filter'] },
      ]);
      previous = model;
      const res = ok<PolicyApplyResult>(a[1]);
      assert.ok(res.incremental || !res.changed, `${res.reason} ${res.error ?? ''}`);
      const v = ok<PolicyApplyResult>(a[2]);
      assert.equal(v.reason, 'unchanged', `the kernel lists what was written: ${JSON.stringify(v.drift)}`);
      const listing = ok<string>(a[3]);
      assert.match(listing, /nd-neighbor-solicit/, 'dual stack: NDP accepted on input');
      for (const port of dc.ports) {
        for (const fam of ['v4', 'v6'] as const) {
          const want = evaluate6(model, port, fam);
          const got = probeMatrix6(port, fam);
          assert.deepEqual(got, want, `${fam} TCP ${port}: measured ${JSON.stringify(got)} vs evaluator ${JSON.stringify(want)}`);
        }
      }
      const full = driver6([{ op: 'apply', model, local: local6 }, { op: 'nft', args: ['list', 'table', 'inet', 'tortie-filter'] }]);
      assert.equal(ok<PolicyApplyResult>(full[0]).reason, 'first write');
      assert.equal(normalizeListing(listing), normalizeListing(ok<string>(full[1])), 'incremental and full listings differ');
    });
  }

  it('an IPv4-only rule neither allows nor denies IPv6 beyond what the evaluator says (notNets, nets, ipVersion 4)', () => {
    // x/a ingress: deny from every IPv4 address but x/b's (notNets), then allow TCP from IPv4 nets
    // of y/b; nothing else. IPv6: neither IPv4-only rule applies (Felix renders a rule per family
    // and drops it for a family its nets/notNets lack), so the last rule allows every IPv6 TCP.
    const gnp = { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'v4only' } } as const;
    const model = dualStackModel([
      {
        ...gnp,
        spec: {
          selector: "pod == 'a' && projectcalico.org/namespace == 'x'",
          ingress: [
            { action: 'Allow', ipVersion: 4, protocol: 'TCP', source: { nets: [`${DA['x/b']!.v4}/32`] } },
            { action: 'Deny', source: { notNets: [`${DA['y/b']!.v4}/32`] } },
            { action: 'Allow', protocol: 'TCP' },
          ],
        },
      } as Resource,
    ]);
    ok(driver6([{ op: 'apply', model, local: local6 }])[0]);
    const want = { v4: { 'x/b': true, 'y/b': true, 'z/c': false }, v6: { 'x/b': true, 'y/b': true, 'z/c': true } };
    for (const fam of ['v4', 'v6'] as const) {
      const ev = evaluate6(model, 80, fam);
      const got = probeMatrix6(80, fam);
      for (const k of ['x/b', 'y/b', 'z/c']) {
        assert.equal(ev[k]!['x/a'], want[fam][k as 'x/b'], `evaluator ${fam} ${k} → x/a`);
        assert.equal(got[k]!['x/a'], want[fam][k as 'x/b'], `measured ${fam} ${k} → x/a`);
      }
    }
  });

  it('ICMPv6: icmp/notICMP with protocol ICMPv6 match ICMPv6 type and code (ping -6); IPv4 ping as the evaluator says', () => {
    const pol = (...ingress: object[]) =>
      dualStackModel([{ apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'icmp6' }, spec: { selector: "pod == 'a' && projectcalico.org/namespace == 'x'", ingress } } as Resource]);
    const [xa, xb] = [PODS6[0]!, PODS6[1]!];
    const tcp6 = () => probeMatrix6(80, 'v6')['x/b']!['x/a'];
    // allow echo requests only
    let m = pol({ action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128, code: 0 } });
    ok(driver6([{ op: 'apply', model: m, local: local6 }])[0]);
    assert.deepEqual([ping6(xb.ns, xa.v6, true), ping6(xb.ns, xa.v4, false), tcp6()], [true, false, false], 'echo request allowed, IPv4 ping and TCP not');
    assert.equal(verdict(m, { src: { ip: xb.v4 }, dst: { ip: xa.v4 }, protocol: 'ICMP' }).allowed, false);
    // another type or code: no
    m = pol({ action: 'Allow', protocol: 'ICMPv6', icmp: { type: 128, code: 1 } });
    ok(driver6([{ op: 'apply', model: m, local: local6 }])[0]);
    assert.equal(ping6(xb.ns, xa.v6, true), false, 'code 1 is not an echo request');
    // deny echo requests, allow the rest
    m = pol({ action: 'Deny', protocol: 'ICMPv6', icmp: { type: 128 } }, { action: 'Allow' });
    ok(driver6([{ op: 'apply', model: m, local: local6 }])[0]);
    assert.deepEqual([ping6(xb.ns, xa.v6, true), ping6(xb.ns, xa.v4, false), tcp6()], [false, true, true]);
    assert.equal(verdict(m, { src: { ip: xb.v4 }, dst: { ip: xa.v4 }, protocol: 'ICMP' }).allowed, true);
    // notICMP: deny ICMPv6 that is not an echo request: ping still works
    m = pol({ action: 'Deny', protocol: 'ICMPv6', notICMP: { type: 128 } }, { action: 'Allow' });
    ok(driver6([{ op: 'apply', model: m, local: local6 }])[0]);
    assert.deepEqual([ping6(xb.ns, xa.v6, true), tcp6()], [true, true]);
    m = pol({ action: 'Deny', protocol: 'ICMPv6', notICMP: { type: 129 } }, { action: 'Allow' });
    ok(driver6([{ op: 'apply', model: m, local: local6 }])[0]);
    assert.equal(ping6(xb.ns, xa.v6, true), false, 'an echo request is not type 129: denied');
    // The same with protocol ICMP (IPv4), and notICMP on a TCP rule (every TCP packet is "not that
    // ICMP"): the compiler writes these without the alternatives that could never match; packets and
    // the evaluator agree.
    const tcp4 = () => probeMatrix6(80, 'v4')['x/b']!['x/a'];
    const cases: Array<[string, object, { ping4: boolean; tcp4: boolean }]> = [
      ['ICMP notICMP type 8 (echo request passes)', { action: 'Deny', protocol: 'ICMP', notICMP: { type: 8 } }, { ping4: true, tcp4: true }],
      ['ICMP notICMP type 0 (echo request denied)', { action: 'Deny', protocol: 'ICMP', notICMP: { type: 0 } }, { ping4: false, tcp4: true }],
      ['ICMP notICMP type 8 code 1 (echo request has code 0: denied)', { action: 'Deny', protocol: 'ICMP', notICMP: { type: 8, code: 1 } }, { ping4: false, tcp4: true }],
      ['TCP notICMP type 8 (TCP denied, ping not)', { action: 'Deny', protocol: 'TCP', notICMP: { type: 8 } }, { ping4: true, tcp4: false }],
    ];
    for (const [what, rule, want] of cases) {
      m = pol(rule, { action: 'Allow' });
      ok(driver6([{ op: 'apply', model: m, local: local6 }])[0]);
      assert.deepEqual({ ping4: ping6(xb.ns, xa.v4, false), tcp4: tcp4() }, want, `${what}: measured`);
      const ev = (protocol: 'ICMP' | 'TCP') => verdict(m, { src: { ip: xb.v4 }, dst: { ip: xa.v4 }, protocol, port: protocol === 'TCP' ? 80 : undefined }).allowed;
      assert.deepEqual({ ping4: ev('ICMP'), tcp4: ev('TCP') }, want, `${what}: evaluator`);
    }
  });

  it('egress default deny on x/b: its NDP still reaches the host (IPv6 to allowed peers works), nothing else leaves', () => {
    const m = dualStackModel([
      { apiVersion: 'projectcalico.org/v3', kind: 'GlobalNetworkPolicy', metadata: { name: 'eg' }, spec: { selector: "pod == 'b' && projectcalico.org/namespace == 'x'", types: ['Egress'], egress: [{ action: 'Allow', protocol: 'TCP', destination: { selector: "pod == 'a'" } }] } } as Resource,
    ]);
    const [xa, xb] = [PODS6[0]!, PODS6[1]!];
    // a fresh neighbour cache in x/b: the gateway must be resolved under the policy
    ok(driver6([{ op: 'apply', model: m, local: local6 }])[0]);
    must([IP, '-n', xb.ns, '-6', 'neigh', 'flush', 'dev', 'eth0']);
    const got = probeMatrix6(80, 'v6')['x/b']!;
    assert.deepEqual(got, evaluate6(m, 80, 'v6')['x/b']);
    assert.equal(got['x/a'], true);
    assert.equal(ping6(xb.ns, xa.v6, true), false, 'ICMPv6 echo is not allowed by the egress policy');
  });

  it('remove: every pair connects again over both families; root ruleset untouched', () => {
    assert.equal(ok<boolean>(driver6([{ op: 'remove' }])[0]), true);
    for (const fam of ['v4', 'v6'] as const) {
      const m = probeMatrix6(80, fam);
      for (const s of PODS6) for (const d of PODS6) if (s !== d) assert.equal(m[s.key]![d.key], true, `${fam} ${s.key} → ${d.key}`);
    }
    assert.equal(rootRuleset(), rootBefore);
  });
});
