// Cross-node routing with real packets. Two "node" namespaces joined by a veth underlay
// (10.0.0.11/24 — 10.0.0.12/24), each with a pod wired by podnet's wirePod (10.233.64.5 in block
// 10.233.64.0/24 on node1, 10.233.65.7 in 10.233.65.0/24 on node2). Nothing is linked to the root
// namespace; all namespaces (`tortie-t<hex>-*`) are deleted in `after`. The code under test runs inside
// a node namespace through testdata/overlay-driver.js (`ip netns exec <node> node overlay-driver.js`).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { IP_BIN, IpRoute, type Exec } from './iproute.js';
import type { OverlayInput } from './routes.js';
import { BRIDGE_BIN, Reconciler, type ReconcileResult } from './overlay.js';
import type { EnsureVxlanResult } from './vxlan.js';

const IP = '/usr/sbin/ip';
const BRIDGE = '/usr/sbin/bridge';
const NODE = '/usr/bin/node';
const PING = '/usr/bin/ping';
const TCPDUMP = '/usr/bin/tcpdump';
const DRIVER = fileURLToPath(new URL('./testdata/overlay-driver.js', import.meta.url));
const isRoot = process.getuid?.() === 0;

const R = `tortie-t${randomBytes(4).toString('hex')}`;
const N1 = `${R}-n1`;
const N2 = `${R}-n2`;
const P1 = `${R}-p1`;
const P2 = `${R}-p2`;
const ALL_NS = [N1, N2, P1, P2];
const nsPath = (n: string) => `/run/netns/${n}`;

const MAC1 = '66:f9:37:c3:7e:94'; // Calico's VTEP MAC of "node1"
const MAC2 = '66:2d:bf:44:a6:8b'; // of "node2"
const POD_MTU = 1500 - 50; // the 1500 underlay minus VXLAN's overhead, as Felix computes it

const pod1 = { netns: nsPath(P1), ifname: 'eth0', hostIfName: 'cali00000000001', addresses: ['10.233.64.5/32'], mtu: POD_MTU };
const pod2 = { netns: nsPath(P2), ifname: 'eth0', hostIfName: 'cali00000000002', addresses: ['10.233.65.7/32'], mtu: POD_MTU };

const vxlanPools = [{ cidr: '10.233.64.0/18', vxlanMode: 'Always' }];
const input1 = (pools: object[] = vxlanPools): OverlayInput => ({
  nodeName: 'node1',
  localAddress: '10.0.0.11',
  vteps: [
    { node: 'node1', underlayIP: '10.0.0.11', tunnelIP: '10.233.64.0' },
    { node: 'node2', underlayIP: '10.0.0.12', tunnelIP: '10.233.65.0' },
  ],
  remoteBlocks: [
    { cidr: '10.233.64.0/24', node: 'node1' },
    { cidr: '10.233.65.0/24', node: 'node2' },
  ],
  localBlocks: ['10.233.64.0/24'],
  pools: pools as OverlayInput['pools'],
});
const input2 = (pools: object[] = vxlanPools): OverlayInput => ({
  ...input1(pools),
  nodeName: 'node2',
  localAddress: '10.0.0.12',
  localBlocks: ['10.233.65.0/24'],
});
const dev1 = { localAddress: '10.0.0.11', tunnelAddress: '10.233.64.0', nodeName: 'node1' };
const dev2 = { localAddress: '10.0.0.12', tunnelAddress: '10.233.65.0', nodeName: 'node2' };

interface DriverAnswer {
  ok: boolean;
  value?: unknown;
  error?: { name: string; message: string };
  ms: number;
  execs?: number;
}

function run(argv: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', input, timeout: 60_000, env: { LC_ALL: 'C' } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

function must(argv: string[], input?: string): string {
  const r = run(argv, input);
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const ipn = (ns: string, ...args: string[]) => must([IP, '-n', ns, ...args]);
const bridgen = (ns: string, ...args: string[]) => must([BRIDGE, '-n', ns, ...args]);
const inNs = (ns: string, ...argv: string[]) => run([IP, 'netns', 'exec', ns, ...argv]);

function driver(ns: string, ops: object[]): DriverAnswer[] {
  const r = run([IP, 'netns', 'exec', ns, NODE, DRIVER, JSON.stringify(ops)]);
  assert.equal(r.status, 0, `driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as DriverAnswer[];
}

function ok<T>(a: DriverAnswer): T {
  assert.ok(a.ok, `operation failed: ${JSON.stringify(a.error)}`);
  return a.value as T;
}

function reconcileOn(ns: string, input: OverlayInput, options: object): ReconcileResult {
  const r = ok<ReconcileResult>(driver(ns, [{ op: 'reconcile', input, options }])[0]);
  assert.deepEqual(r.errors, [], `reconcile errors: ${r.errors.join('; ')}`);
  return r;
}

const changeTexts = (r: ReconcileResult) => r.changes.map((c) => `${c.what} ${c.op} ${c.text}`);

const ping = (ns: string, dst: string, extra: string[] = []) => inNs(ns, PING, '-c', '2', '-i', '0.2', '-W', '2', ...extra, dst);
const pingOnce = (ns: string, dst: string) => inNs(ns, PING, '-c', '1', '-W', '1', dst);

function assertPing(ns: string, dst: string, extra: string[] = []): void {
  const r = ping(ns, dst, extra);
  assert.equal(r.status, 0, `ping ${dst} from ${ns}: ${r.stdout}${r.stderr}`);
}

function vxlanCounters(ns: string): { tx: number; rx: number } {
  const l = JSON.parse(ipn(ns, '-j', '-s', 'link', 'show', 'dev', 'vxlan.calico'))[0] as { stats64: { tx: { packets: number }; rx: { packets: number } } };
  return { tx: l.stats64.tx.packets, rx: l.stats64.rx.packets };
}

const children: ChildProcess[] = [];

/** tcpdump on a node's underlay; resolves once it listens. stop() ends it (SIGINT, by PID) and returns its output. */
async function capture(ns: string, filter: string[]): Promise<{ stop: () => Promise<string> }> {
  const c = spawn(IP, ['netns', 'exec', ns, TCPDUMP, '-l', '-nn', '-i', 'eth0', ...filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  let out = '';
  c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    c.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    c.on('exit', (code) => reject(new Error(`tcpdump exited ${code}: ${err}`)));
  });
  return {
    stop: () =>
      new Promise<string>((resolve) => {
        c.on('exit', () => resolve(out));
        process.kill(c.pid!, 'SIGINT');
      }),
  };
}

async function tcpAcross(): Promise<string> {
  const server = spawn(
    IP,
    [
      'netns', 'exec', P2, NODE, '-e',
      `require('net').createServer((c) => c.end('hello ' + c.remoteAddress)).listen(8080, '10.233.65.7', () => console.log('ready'));
       setTimeout(() => process.exit(0), 20000);`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(server);
  await new Promise<void>((resolve, reject) => {
    server.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
  try {
    const c = inNs(
      P1,
      NODE,
      '-e',
      `const c = require('net').connect(8080, '10.233.65.7'); let d = ''; c.on('data', (x) => d += x);
       c.on('end', () => { console.log(d); }); c.on('error', (e) => { console.error(e.message); process.exit(1); });
       setTimeout(() => { console.error('timeout'); process.exit(1); }, 5000).unref();`,
    );
    assert.equal(c.status, 0, c.stderr);
    return c.stdout.trim();
  } finally {
    process.kill(server.pid!, 'SIGKILL');
  }
}

describe('Reconciler with a fake ip (no root)', () => {
  // A kernel that never changes: node1 with its device in place and nothing else, so every pass
  // applies the same 3 VXLAN entries + 1 blackhole.
  const links = [
    { ifindex: 2, ifname: 'eth0', flags: ['UP'], mtu: 1500, addr_info: [{ family: 'inet', local: '10.0.0.11', prefixlen: 24 }] },
    {
      ifindex: 4, ifname: 'vxlan.calico', flags: ['UP'], mtu: 1450, address: MAC1,
      linkinfo: { info_kind: 'vxlan', info_data: { id: 4096, local: '10.0.0.11', link: 'eth0', port: 4789, learning: false } },
      addr_info: [{ family: 'inet', local: '10.233.64.0', prefixlen: 32 }],
    },
  ];
  function fake(delayMs = 0): { exec: Exec; applied: string[]; reads: string[][] } {
    const applied: string[] = [];
    const reads: string[][] = [];
    const exec: Exec = async (file, args, input) => {
      await new Promise((r) => setTimeout(r, delayMs));
      if (file === IP_BIN && input?.startsWith('addr show')) {
        reads.push([file, ...args]);
        return { code: 0, signal: null, stdout: JSON.stringify(links) + JSON.stringify([]) + JSON.stringify([]), stderr: '' };
      }
      if (file === BRIDGE_BIN && args.includes('show')) return { code: 0, signal: null, stdout: '[]', stderr: '' };
      applied.push(`${file === IP_BIN ? 'ip' : 'bridge'}: ${input?.trim().split('\n').join(' | ')}`);
      return { code: 0, signal: null, stdout: '', stderr: '' };
    };
    return { exec, applied, reads };
  }

  it('reads with one ip and one bridge, applies in one batch each', async () => {
    const f = fake();
    const rec = new Reconciler(input1(), { ip: new IpRoute(f.exec), vxlan: dev1 });
    const r = await rec.reconcileNow();
    assert.deepEqual(f.reads, [[IP_BIN, '-j', '-N', '-d', '-batch', '-']]);
    assert.deepEqual(f.applied, [
      `ip: neigh replace 10.233.65.0 lladdr ${MAC2} dev vxlan.calico nud permanent | route replace 10.233.65.0/24 via 10.233.65.0 dev vxlan.calico onlink proto 80 | route replace blackhole 10.233.64.0/24 proto 80`,
      `bridge: fdb replace ${MAC2} dev vxlan.calico dst 10.0.0.12 self permanent`,
    ]);
    assert.equal(r.changes.length, 4);
    assert.deepEqual(r.device, []);
    assert.equal(rec.passes, 1);
  });

  it('coalesces requests made during a pass into one next pass', async () => {
    const f = fake(20);
    const rec = new Reconciler(input1(), { ip: new IpRoute(f.exec), vxlan: dev1 });
    const a = rec.reconcileNow();
    const b = rec.reconcileNow();
    const c = rec.reconcileNow();
    assert.notEqual(a, b);
    assert.equal(b, c);
    await Promise.all([a, b, c]);
    assert.equal(rec.passes, 2);
    assert.equal(f.reads.length, 2);
  });

  it('runs periodically until stopped; a failing pass is reported and the next one runs', async () => {
    const f = fake();
    let fail = true;
    const errors: unknown[] = [];
    const exec: Exec = (file, args, input) => {
      if (fail && input?.startsWith('addr show')) {
        fail = false;
        return Promise.resolve({ code: 1, signal: null, stdout: '', stderr: 'boom' });
      }
      return f.exec(file, args, input);
    };
    const results: ReconcileResult[] = [];
    const rec = new Reconciler(input1(), { ip: new IpRoute(exec), vxlan: dev1, intervalMs: 20, onResult: (r) => results.push(r), onError: (e) => errors.push(e) });
    rec.start();
    await new Promise((r) => setTimeout(r, 200));
    await rec.stop();
    const n = rec.passes;
    assert.ok(n >= 4, `${n} passes`);
    assert.equal(errors.length, 1);
    assert.match(String(errors[0]), /boom/);
    assert.equal(results.length, n - 1);
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(rec.passes, n, 'no pass after stop');
    assert.throws(() => new Reconciler(null, { intervalMs: 0 }), /intervalMs/);
    await assert.rejects(new Reconciler(null, {}).reconcileNow(), /no desired state/);
  });
});

describe('VXLAN and no-encap cross-node routing with real packets', { skip: !isRoot ? 'needs root (network namespaces)' : !existsSync(DRIVER) ? 'testdata/overlay-driver.js not built (npm run build)' : false }, () => {
  before(() => {
    for (const n of ALL_NS) must([IP, 'netns', 'add', n]);
    for (const n of ALL_NS) ipn(n, 'link', 'set', 'lo', 'up');
    // The underlay: one veth pair between the two node namespaces. A default route (to a gateway that
    // does not exist) as real nodes have: proxy ARP for 169.254.1.1 needs a route that is not the pod's.
    ipn(N1, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', N2);
    for (const [n, a] of [
      [N1, '10.0.0.11/24'],
      [N2, '10.0.0.12/24'],
    ]) {
      must([IP, '-n', n, '-batch', '-'], `addr add ${a} dev eth0\nlink set eth0 up\nroute add default via 10.0.0.254 dev eth0\n`);
    }
    for (const [n, pod] of [
      [N1, pod1],
      [N2, pod2],
    ] as const) {
      const [k, w] = driver(n, [{ op: 'kernel' }, { op: 'wire', spec: pod }]);
      ok(k);
      ok(w);
    }
  });

  after(() => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
    for (const n of ALL_NS) run([IP, 'netns', 'del', n]);
  });

  it('ensureVxlanDevice creates vxlan.calico as Calico does (VNI 4096, port 4789, MTU underlay − 50), idempotently', () => {
    const [a] = driver(N1, [{ op: 'ensure', spec: dev1 }]);
    const r = ok<EnsureVxlanResult>(a);
    assert.equal(r.created, true);
    assert.equal(r.mac, MAC1);
    assert.equal(r.mtu, 1450);
    assert.equal(r.parent, 'eth0');
    const link = ipn(N1, '-d', 'addr', 'show', 'dev', 'vxlan.calico');
    assert.match(link, /mtu 1450 /);
    assert.match(link, new RegExp(`link/ether ${MAC1} `));
    assert.match(link, /vxlan id 4096 local 10\.0\.0\.11 dev eth0 .*dstport 4789 nolearning/);
    assert.match(link, /inet 10\.233\.64\.0\/32 scope global vxlan\.calico/);
    assert.match(link, /state UNKNOWN|,UP/);
    const [b, c] = driver(N1, [{ op: 'ensure', spec: dev1 }, { op: 'ensure', spec: dev1 }]);
    assert.deepEqual(ok<EnsureVxlanResult>(b).actions, []);
    assert.equal(b.execs, 1, 'a device in place costs one read');
    assert.deepEqual(ok<EnsureVxlanResult>(c).actions, []);
    // Node 2's device comes from its first reconcile pass.
  });

  it('reconcile programs Calico’s routes, neighbours and FDB; a second pass changes nothing', () => {
    const r1 = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.deepEqual(r1.device, []);
    assert.deepEqual(changeTexts(r1), [
      `neigh set 10.233.65.0 lladdr ${MAC2} dev vxlan.calico nud permanent`,
      'route set 10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink',
      'route set blackhole 10.233.64.0/24 proto 80',
      `fdb set ${MAC2} dev vxlan.calico dst 10.0.0.12 self permanent`,
    ]);
    const r2 = reconcileOn(N2, input2(), { vxlan: dev2 });
    assert.deepEqual(r2.device, ['created']);
    assert.equal(r2.changes.length, 4);

    const routes = ipn(N1, 'route', 'show');
    assert.match(routes, /^10\.233\.65\.0\/24 via 10\.233\.65\.0 dev vxlan\.calico proto 80 onlink $/m);
    assert.match(routes, /^blackhole 10\.233\.64\.0\/24 proto 80 $/m);
    assert.match(routes, /^10\.233\.64\.5 dev cali00000000001 scope link $/m);
    assert.match(ipn(N1, 'neigh', 'show', 'dev', 'vxlan.calico'), new RegExp(`^10\\.233\\.65\\.0 lladdr ${MAC2} PERMANENT`, 'm'));
    assert.equal(bridgen(N1, 'fdb', 'show', 'dev', 'vxlan.calico').trim(), `${MAC2} dst 10.0.0.12 self permanent`);
    assert.match(ipn(N2, 'route', 'show'), /^10\.233\.64\.0\/24 via 10\.233\.64\.0 dev vxlan\.calico proto 80 onlink $/m);

    const again = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.deepEqual(again.changes, []);
    assert.deepEqual(again.device, []);
    assert.equal(again.inPlace, 4);
  });

  it('pod→pod ping and TCP cross the nodes through VXLAN (UDP 4789, VNI 4096 on the underlay)', async () => {
    const before1 = vxlanCounters(N1);
    const cap = await capture(N1, ['udp', 'port', '4789']);
    assertPing(P1, '10.233.65.7');
    assertPing(P2, '10.233.64.5');
    assert.equal(await tcpAcross(), 'hello 10.233.64.5', 'no NAT on the way');
    // The largest unfragmentable packet the pod MTU allows (1450) still fits the underlay once wrapped.
    assertPing(P1, '10.233.65.7', ['-M', 'do', '-s', String(POD_MTU - 28)]);
    const out = await cap.stop();
    assert.match(out, /10\.0\.0\.11\.\d+ > 10\.0\.0\.12\.4789: VXLAN, flags \[I\] \(0x08\), vni 4096\s+IP 10\.233\.64\.5 > 10\.233\.65\.7: ICMP echo request/);
    assert.match(out, /10\.0\.0\.12\.\d+ > 10\.0\.0\.11\.4789: VXLAN, flags \[I\] \(0x08\), vni 4096\s+IP 10\.233\.65\.7 > 10\.233\.64\.5: ICMP echo reply/);
    assert.match(out, /vni 4096\s+IP 10\.233\.64\.5\.\d+ > 10\.233\.65\.7\.8080: Flags \[S\]/);
    assert.match(out, /length 1450: ICMP echo request|ICMP echo request, id \d+, seq \d+, length 1430/, 'the full-size packet went through the tunnel');
    const after1 = vxlanCounters(N1);
    assert.ok(after1.tx - before1.tx >= 7, `vxlan.calico TX grew by ${after1.tx - before1.tx}`);
    assert.ok(after1.rx - before1.rx >= 7, `vxlan.calico RX grew by ${after1.rx - before1.rx}`);
  });

  it('a route, an FDB entry or a neighbour deleted by hand comes back on the next pass', () => {
    ipn(N1, 'route', 'del', '10.233.65.0/24');
    assert.notEqual(pingOnce(P1, '10.233.65.7').status, 0, 'no route: no ping');
    let r = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.deepEqual(changeTexts(r), ['route set 10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink']);
    assertPing(P1, '10.233.65.7');

    bridgen(N1, 'fdb', 'del', MAC2, 'dev', 'vxlan.calico', 'self');
    assert.notEqual(pingOnce(P1, '10.233.65.7').status, 0, 'no FDB entry: no ping');
    r = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.deepEqual(changeTexts(r), [`fdb set ${MAC2} dev vxlan.calico dst 10.0.0.12 self permanent`]);
    assertPing(P1, '10.233.65.7');

    ipn(N1, 'neigh', 'del', '10.233.65.0', 'dev', 'vxlan.calico');
    bridgen(N1, 'fdb', 'replace', MAC2, 'dev', 'vxlan.calico', 'dst', '10.0.0.99', 'self', 'permanent');
    r = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.deepEqual(changeTexts(r), [
      `neigh set 10.233.65.0 lladdr ${MAC2} dev vxlan.calico nud permanent`,
      `fdb set ${MAC2} dev vxlan.calico dst 10.0.0.12 self permanent`,
    ]);
    assert.equal(bridgen(N1, 'fdb', 'show', 'dev', 'vxlan.calico').trim(), `${MAC2} dst 10.0.0.12 self permanent`);
    assertPing(P1, '10.233.65.7');
  });

  it('the periodic Reconciler restores hand-deleted state by itself', async () => {
    const srv = spawn(IP, ['netns', 'exec', N1, NODE, DRIVER, 'serve', JSON.stringify({ input: input1(), options: { vxlan: dev1 }, intervalMs: 500 })], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.push(srv);
    const lines: unknown[] = [];
    let buf = '';
    let onLine: (() => void) | undefined;
    srv.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        lines.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
        onLine?.();
      }
    });
    await new Promise<void>((resolve, reject) => {
      onLine = () => lines.some((l) => (l as { ready?: boolean }).ready) && resolve();
      srv.on('exit', (c) => reject(new Error(`serve exited ${c}`)));
    });
    const t0 = Date.now();
    ipn(N1, 'route', 'del', '10.233.65.0/24');
    bridgen(N1, 'fdb', 'del', MAC2, 'dev', 'vxlan.calico', 'self');
    ipn(N1, 'neigh', 'del', '10.233.65.0', 'dev', 'vxlan.calico');
    // Polled with a bound that only guards against a hang: how soon the repair comes is the
    // interval (500 ms here) plus one pass, whose cost the 'measures reconcile' test reports.
    let restoredAfter = -1;
    while (Date.now() - t0 < 30_000) {
      const route = ipn(N1, 'route', 'show', '10.233.65.0/24');
      const fdb = bridgen(N1, 'fdb', 'show', 'dev', 'vxlan.calico');
      const neigh = ipn(N1, 'neigh', 'show', 'dev', 'vxlan.calico');
      if (route.includes('via 10.233.65.0') && fdb.includes(MAC2) && neigh.includes(MAC2)) {
        restoredAfter = Date.now() - t0;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const exited = new Promise<number | null>((resolve) => srv.on('exit', (c) => resolve(c)));
    srv.stdin!.end();
    assert.equal(await exited, 0);
    assert.ok(restoredAfter >= 0, `not restored; driver said ${JSON.stringify(lines)}`);
    const repaired = lines.filter((l) => (l as { result?: ReconcileResult }).result).map((l) => changeTexts((l as { result: ReconcileResult }).result));
    assert.deepEqual(repaired.flat().sort(), [
      `fdb set ${MAC2} dev vxlan.calico dst 10.0.0.12 self permanent`,
      `neigh set 10.233.65.0 lladdr ${MAC2} dev vxlan.calico nud permanent`,
      'route set 10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink',
    ]);
    console.log(`periodic reconciler (500 ms interval): hand-deleted route+FDB+neighbour restored after ${restoredAfter} ms`);
    assertPing(P1, '10.233.65.7');
  });

  it('touches only what it owns: foreign routes stay, its own stale routes go; BIRD’s are BIRD’s', () => {
    const b = (s: string) => s.split(' ');
    must([IP, '-n', N1, '-batch', '-'], [
      'route add 192.168.5.0/24 via 10.0.0.12 dev eth0', // outside the pools
      'route add 10.233.100.0/24 via 10.0.0.12 dev eth0', // inside a pool, someone else's (proto boot)
      'route add 10.233.99.0/24 via 10.233.99.0 dev vxlan.calico onlink', // on our device
      'route add blackhole 10.233.70.0/24 proto 80', // our protocol
      'route add 10.233.88.0/24 via 10.0.0.12 dev eth0 proto bird', // a former BIRD's, inside a pool
    ].join('\n') + '\n');
    let r = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.deepEqual(changeTexts(r).sort(), [
      'route del 10.233.88.0/24 via 10.0.0.12 dev eth0 proto bird',
      'route del 10.233.99.0/24 via 10.233.99.0 dev vxlan.calico proto boot onlink',
      'route del blackhole 10.233.70.0/24 proto 80',
    ]);
    const routes = ipn(N1, 'route', 'show');
    assert.match(routes, /^192\.168\.5\.0\/24 via 10\.0\.0\.12 dev eth0 $/m);
    assert.match(routes, /^10\.233\.100\.0\/24 via 10\.0\.0\.12 dev eth0 $/m);
    assert.match(routes, /^10\.233\.64\.5 dev cali00000000001 scope link $/m);
    assert.match(routes, /^default via 10\.0\.0\.254 dev eth0 $/m);

    // With BIRD: its blackhole stays, ours goes (BIRD owns the blackholes).
    ipn(N1, ...b('route add blackhole 10.233.77.0/24 proto bird'));
    r = reconcileOn(N1, input1(), { vxlan: dev1, bird: true });
    assert.deepEqual(changeTexts(r), ['route del blackhole 10.233.64.0/24 proto 80']);
    assert.match(ipn(N1, 'route', 'show'), /^blackhole 10\.233\.77\.0\/24 proto bird $/m);
    // Without BIRD again: the blackhole is ours again and BIRD's leftover goes.
    r = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.deepEqual(changeTexts(r), ['route set blackhole 10.233.64.0/24 proto 80', 'route del blackhole 10.233.77.0/24 proto bird']);
    must([IP, '-n', N1, '-batch', '-'], 'route del 192.168.5.0/24\nroute del 10.233.100.0/24\n');
  });

  it('repairs the device: down, address removed, wrong MTU, wrong VNI (recreated, entries restored)', () => {
    ipn(N1, 'link', 'set', 'vxlan.calico', 'down');
    let r = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.deepEqual(r.device, ['fixed: down']);
    // Setting it down flushed the routes through it and its neighbours (not its permanent FDB
    // entries): they come back in the same pass.
    assert.deepEqual(changeTexts(r), [
      `neigh set 10.233.65.0 lladdr ${MAC2} dev vxlan.calico nud permanent`,
      'route set 10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink',
    ]);
    assertPing(P1, '10.233.65.7');

    ipn(N1, 'addr', 'del', '10.233.64.0/32', 'dev', 'vxlan.calico');
    ipn(N1, 'link', 'set', 'vxlan.calico', 'mtu', '1300');
    r = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.deepEqual(r.device, ['fixed: mtu 1300, want 1450', 'fixed: tunnel address 10.233.64.0/32 missing']);
    // Removing the device's last IPv4 address flushed its routes and neighbours too.
    assert.deepEqual(changeTexts(r), [
      `neigh set 10.233.65.0 lladdr ${MAC2} dev vxlan.calico nud permanent`,
      'route set 10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink',
    ]);
    assertPing(P1, '10.233.65.7');

    ipn(N1, 'link', 'del', 'vxlan.calico');
    ipn(N1, ...'link add vxlan.calico type vxlan id 42 local 10.0.0.11 dev eth0 dstport 4789'.split(' '));
    r = reconcileOn(N1, input1(), { vxlan: dev1 });
    assert.equal(r.device.length, 1);
    assert.match(r.device[0], /^recreated \(vni 42, want 4096, learning on, want off, mac [0-9a-f:]+, want 66:f9:37:c3:7e:94\)$/);
    assert.equal(r.changes.length, 3, 'route, neighbour and FDB entry programmed on the new device');
    assert.match(ipn(N1, '-d', 'link', 'show', 'vxlan.calico'), /vxlan id 4096 local 10\.0\.0\.11 dev eth0 .*dstport 4789 nolearning/);
    assertPing(P1, '10.233.65.7');
    // A device that cannot be made right is an error of the pass; the device and its entries stay.
    const [bad] = driver(N1, [{ op: 'reconcile', input: input1(), options: { vxlan: { ...dev1, parentIfName: 'eth9' } } }]);
    const rb = ok<ReconcileResult>(bad);
    assert.deepEqual(rb.errors, ['device vxlan.calico: parent device eth9 not found']);
    assert.deepEqual(rb.changes, []);
    assertPing(P1, '10.233.65.7');
  });

  it('CrossSubnet between nodes of one subnet: unencapsulated routes via the underlay, tunnel unused', async () => {
    const cs = [{ cidr: '10.233.64.0/18', vxlanMode: 'CrossSubnet' }];
    const r1 = reconcileOn(N1, input1(cs), { vxlan: dev1 });
    assert.deepEqual(changeTexts(r1), ['route set 10.233.65.0/24 via 10.0.0.12 dev eth0 proto 80']);
    assert.equal(r1.changes[0].reason, 'differs: was 10.233.65.0/24 via 10.233.65.0 dev vxlan.calico proto 80 onlink');
    reconcileOn(N2, input2(cs), { vxlan: dev2 });
    const before1 = vxlanCounters(N1);
    const cap = await capture(N1, ['icmp', 'or', 'udp', 'port', '4789']);
    assertPing(P1, '10.233.65.7');
    const out = await cap.stop();
    assert.match(out, /IP 10\.233\.64\.5 > 10\.233\.65\.7: ICMP echo request/);
    assert.doesNotMatch(out, /VXLAN/);
    assert.equal(vxlanCounters(N1).tx, before1.tx, 'nothing went through vxlan.calico');
    // The VTEP entries stay (other nodes may be in other subnets).
    assert.match(ipn(N1, 'neigh', 'show', 'dev', 'vxlan.calico'), new RegExp(MAC2));
  });

  it('no encapsulation: vxlan.calico removed, `<block> via <node IP> dev eth0`, pods still talk', async () => {
    const never = [{ cidr: '10.233.64.0/18', vxlanMode: 'Never', ipipMode: 'Never' }];
    const r1 = reconcileOn(N1, input1(never), { vxlan: false });
    assert.deepEqual(r1.device, ['removed']);
    assert.deepEqual(changeTexts(r1), []);
    const r2 = reconcileOn(N2, input2(never), { vxlan: false });
    assert.deepEqual(r2.device, ['removed']);
    assert.equal(run([IP, '-n', N1, 'link', 'show', 'vxlan.calico']).status, 1, 'device gone');
    assert.match(ipn(N1, 'route', 'show'), /^10\.233\.65\.0\/24 via 10\.0\.0\.12 dev eth0 proto 80 $/m);
    assert.match(ipn(N2, 'route', 'show'), /^10\.233\.64\.0\/24 via 10\.0\.0\.11 dev eth0 proto 80 $/m);
    const cap = await capture(N1, ['icmp', 'or', 'udp', 'port', '4789']);
    assertPing(P1, '10.233.65.7');
    assert.equal(await tcpAcross(), 'hello 10.233.64.5');
    const out = await cap.stop();
    assert.match(out, /IP 10\.233\.64\.5 > 10\.233\.65\.7: ICMP echo request/);
    assert.doesNotMatch(out, /VXLAN|\.4789:/);
    // With BIRD, the unencapsulated routes are BIRD's: ours go, its own stay.
    ipn(N1, ...'route replace 10.233.65.0/24 via 10.0.0.12 dev eth0 proto bird'.split(' '));
    const rb = reconcileOn(N1, input1(never), { vxlan: false, bird: true });
    assert.deepEqual(changeTexts(rb), ['route del blackhole 10.233.64.0/24 proto 80']);
    assert.match(ipn(N1, 'route', 'show'), /^10\.233\.65\.0\/24 via 10\.0\.0\.12 dev eth0 proto bird $/m);
    assertPing(P1, '10.233.65.7');
  });

  it('measures reconcile with 20 remote nodes (pure part and kernel round trips)', () => {
    const input: OverlayInput = {
      nodeName: 'node1',
      localAddress: '10.0.0.11',
      vteps: Array.from({ length: 20 }, (_, i) => ({ node: `bench-${i}`, underlayIP: `10.0.0.${100 + i}`, tunnelIP: `10.233.${80 + i}.0` })),
      remoteBlocks: Array.from({ length: 20 }, (_, i) => ({ cidr: `10.233.${80 + i}.0/24`, node: `bench-${i}` })),
      localBlocks: ['10.233.64.0/24'],
      pools: vxlanPools as OverlayInput['pools'],
    };
    const [a] = driver(N1, [{ op: 'bench', input, options: { vxlan: dev1 }, n: 20 }]);
    const v = ok<Record<string, unknown>>(a);
    console.log(`bench (20 remote nodes, inside a test namespace): ${JSON.stringify(v, null, 1)}`);
    assert.deepEqual(v.changesPerPass, { fromNothing: 61, noop: 0, repair: 1, teardown: 61 });
    assert.deepEqual(v.processesPerPass, { fromNothing: 4, noop: 2, repair: 3, teardown: 4 });
  });
});
