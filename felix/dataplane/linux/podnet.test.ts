// Pod wiring with real packets. Everything lives in namespaces created here (`tortie-t<hex>-*`), none
// linked to the root namespace: a "host" namespace (the agent's, with an uplink veth pair of its own)
// and pod namespaces. The code under test runs inside the host namespace through a driver process
// (`ip netns exec <host> /usr/bin/node testdata/podnet-driver.js`), as the node agent would.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const IP = '/usr/sbin/ip';
const NODE = '/usr/bin/node';
const PING = '/usr/bin/ping';
const DRIVER = fileURLToPath(new URL('./testdata/podnet-driver.js', import.meta.url));
const isRoot = process.getuid?.() === 0;

// ---------------------------------------------------------------------------------------------------

const R = `tortie-t${randomBytes(4).toString('hex')}`;
const HOST = `${R}-host`;
const POD1 = `${R}-pod1`;
const POD2 = `${R}-pod2`;
const POD3 = `${R}-pod3`;
const ALL_NS = [HOST, POD1, POD2, POD3];
const nsPath = (n: string) => `/run/netns/${n}`;

const CALI1 = 'cali0123456789a';
const CALI2 = 'cali0123456789b';
const CALI3 = 'cali0123456789c';
const CALI4 = 'cali0123456789d';

const pod1 = { netns: nsPath(POD1), ifname: 'eth0', hostIfName: CALI1, addresses: ['10.233.64.5/32', 'fd00::5/128'], mtu: 1410 };
const pod2 = { netns: nsPath(POD2), ifname: 'eth0', hostIfName: CALI2, addresses: ['10.233.64.6/26', 'fd00::6/122'] };

interface DriverAnswer {
  ok: boolean;
  value?: unknown;
  error?: { name: string; step?: string; message: string };
  ms: number;
  execs?: number;
}

function run(argv: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', input, timeout: 30_000, env: { LC_ALL: 'C' } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}

function must(argv: string[]): string {
  const r = run(argv);
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const ipn = (ns: string, ...args: string[]) => must([IP, '-n', ns, ...args]);
const inNs = (ns: string, ...argv: string[]) => run([IP, 'netns', 'exec', ns, ...argv]);

/** Runs podnet operations inside the host namespace. */
function driver(ops: object[]): DriverAnswer[] {
  const r = run([IP, 'netns', 'exec', HOST, NODE, DRIVER, JSON.stringify(ops)]);
  assert.equal(r.status, 0, `driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as DriverAnswer[];
}

function ok<T>(a: DriverAnswer): T {
  assert.ok(a.ok, `operation failed: ${JSON.stringify(a.error)}`);
  return a.value as T;
}

const hostSysctl = (key: string) => inNs(HOST, '/usr/bin/cat', `/proc/sys/${key}`).stdout.trim();
const hostLinks = () => ipn(HOST, '-o', 'link', 'show');
const ping = (ns: string, dst: string, v6 = false) => inNs(ns, PING, ...(v6 ? ['-6'] : []), '-c', '2', '-i', '0.2', '-W', '2', dst);

describe('wirePod / unwirePod / checkPod with real packets', { skip: !isRoot ? 'needs root (network namespaces)' : !existsSync(DRIVER) ? 'testdata/podnet-driver.js not built (npm run build)' : false }, () => {
  const children: ChildProcess[] = [];

  before(() => {
    for (const n of ALL_NS) must([IP, 'netns', 'add', n]);
    // The host namespace looks like a node: lo, an uplink "eth0" (a veth whose peer stays in the same
    // namespace: no link to the real root namespace) with an address and a default route, so proxy ARP
    // for 169.254.1.1 has a route that is not the cali interface. Forwarding on, as Felix sets it.
    const hostSetup = [
      'link set lo up',
      'link add eth0 mtu 1450 type veth peer name up0peer',
      'link add eth1 mtu 9000 type veth peer name up1peer',
      'link add ens9 mtu 1000 type veth peer name dn0peer',
      'link set eth0 up',
      'link set up0peer up',
      'link set eth1 up',
      'link set up1peer up',
      'addr add 10.99.0.1/24 dev eth0',
      'route add default via 10.99.0.254 dev eth0',
    ].join('\n');
    const r = run([IP, '-n', HOST, '-batch', '-'], hostSetup + '\n');
    assert.equal(r.status, 0, r.stderr);
    must([IP, 'netns', 'exec', HOST, '/usr/sbin/sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const n of [POD1, POD2, POD3]) ipn(n, 'link', 'set', 'lo', 'up');
  });

  after(() => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
    for (const n of ALL_NS) run([IP, 'netns', 'del', n]);
  });

  it('wires two pods (IPv4 + IPv6; MTU 1410 on pod1)', () => {
    const [a, b] = driver([
      { op: 'wire', spec: pod1 },
      { op: 'wire', spec: pod2 },
    ]);
    const r1 = ok<{ containerMac: string; hostMac: string; mtu: number; warnings: string[] }>(a);
    const r2 = ok<{ containerMac: string; hostMac: string; mtu: number }>(b);
    assert.equal(r1.hostMac, 'ee:ee:ee:ee:ee:ee');
    assert.match(r1.containerMac, /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    assert.notEqual(r1.containerMac, 'ee:ee:ee:ee:ee:ee');
    assert.equal(r1.mtu, 1410);
    assert.equal(r2.mtu, 1500);
    assert.deepEqual(r1.warnings, []);
    // The MAC reported is the one in the pod.
    assert.match(ipn(POD1, 'link', 'show', 'dev', 'eth0'), new RegExp(`link/ether ${r1.containerMac} `));
  });

  it('container side is exactly Calico’s', () => {
    const routes = ipn(POD1, 'route', 'show');
    assert.match(routes, /^default via 169\.254\.1\.1 dev eth0 $/m);
    assert.match(routes, /^169\.254\.1\.1 dev eth0 scope link $/m);
    assert.equal(routes.trim().split('\n').length, 2, routes);
    assert.match(ipn(POD1, '-6', 'route', 'show'), /^default via fe80::ecee:eeff:feee:eeee dev eth0 metric 1024 /m);
    const addrs = ipn(POD2, 'addr', 'show', 'dev', 'eth0');
    assert.match(addrs, /inet 10\.233\.64\.6\/32 scope global eth0/);
    assert.match(addrs, /inet6 fd00::6\/128 scope global/);
    assert.match(ipn(POD1, 'link', 'show', 'dev', 'eth0'), /mtu 1410 /);
    assert.equal(inNs(POD1, '/usr/bin/cat', '/proc/sys/net/ipv4/ip_forward').stdout.trim(), '0');
    assert.equal(inNs(POD1, '/usr/bin/cat', '/proc/sys/net/ipv6/conf/eth0/accept_dad').stdout.trim(), '0');
    // No static neighbour entries in the pod.
    assert.equal(ipn(POD1, 'neigh', 'show', 'nud', 'permanent').trim(), '');
  });

  it('host side is exactly Calico’s', () => {
    const routes = ipn(HOST, 'route', 'show');
    assert.match(routes, new RegExp(`^10\\.233\\.64\\.5 dev ${CALI1} scope link $`, 'm'));
    assert.match(routes, new RegExp(`^10\\.233\\.64\\.6 dev ${CALI2} scope link $`, 'm'));
    assert.match(ipn(HOST, '-6', 'route', 'show'), new RegExp(`^fd00::5 dev ${CALI1} metric 1024 `, 'm'));
    const l1 = ipn(HOST, 'addr', 'show', 'dev', CALI1);
    assert.match(l1, /link\/ether ee:ee:ee:ee:ee:ee /);
    assert.match(l1, /mtu 1410 /);
    assert.match(l1, /state UP/);
    assert.doesNotMatch(l1, /inet /, 'the host veth has no IPv4 address');
    assert.match(l1, /inet6 fe80::ecee:eeff:feee:eeee\/64 scope link/);
    assert.doesNotMatch(l1, /tentative/);
    for (const [k, v] of [
      [`net/ipv4/conf/${CALI1}/proxy_arp`, '1'],
      [`net/ipv4/neigh/${CALI1}/proxy_delay`, '0'],
      [`net/ipv4/conf/${CALI1}/route_localnet`, '1'],
      [`net/ipv4/conf/${CALI1}/forwarding`, '1'],
      [`net/ipv6/conf/${CALI1}/accept_ra`, '0'],
      [`net/ipv6/conf/${CALI1}/accept_dad`, '0'],
      [`net/ipv6/conf/${CALI1}/proxy_ndp`, '1'],
      [`net/ipv6/conf/${CALI1}/forwarding`, '1'],
      [`net/ipv4/conf/${CALI2}/proxy_arp`, '1'],
    ]) {
      assert.equal(hostSysctl(k), v, k);
    }
    const [exists, missing, mac] = driver([
      { op: 'exists', name: CALI1 },
      { op: 'exists', name: 'cali-nope' },
      { op: 'mac', netns: nsPath(POD1), ifname: 'eth0' },
    ]);
    assert.equal(ok(exists), true);
    assert.equal(ok(missing), false);
    assert.match(String(ok(mac)), /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
  });

  it('real packets: ping pod→pod and host→pod (IPv4, IPv6), TCP pod→pod without NAT', async () => {
    let r = ping(POD1, '10.233.64.6');
    assert.equal(r.status, 0, `pod1→pod2: ${r.stdout}${r.stderr}`);
    r = ping(HOST, '10.233.64.5');
    assert.equal(r.status, 0, `host→pod1: ${r.stdout}${r.stderr}`);
    r = ping(POD2, 'fd00::5', true);
    assert.equal(r.status, 0, `pod2→pod1 (IPv6): ${r.stdout}${r.stderr}`);
    // Pod 1 learnt the host veth's MAC for its gateway through proxy ARP.
    assert.match(ipn(POD1, 'neigh', 'show', '169.254.1.1'), /lladdr ee:ee:ee:ee:ee:ee/);

    const server = spawn(
      IP,
      [
        'netns', 'exec', POD2, NODE, '-e',
        `const s = require('net').createServer((c) => c.end('hello ' + c.remoteAddress)).listen(8080, '::', () => console.log('ready'));
         setTimeout(() => process.exit(0), 20000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    children.push(server);
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
      server.on('exit', (c) => reject(new Error(`server exited ${c}`)));
    });
    const client = (host: string) =>
      inNs(
        POD1,
        NODE,
        '-e',
        `const c = require('net').connect(8080, ${JSON.stringify(host)}); let d = ''; c.on('data', (x) => d += x);
         c.on('end', () => { console.log(d); }); c.on('error', (e) => { console.error(e.message); process.exit(1); });
         setTimeout(() => { console.error('timeout'); process.exit(1); }, 5000).unref();`,
      );
    let c = client('10.233.64.6');
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout.trim(), 'hello ::ffff:10.233.64.5');
    c = client('fd00::6');
    assert.equal(c.status, 0, c.stderr);
    assert.equal(c.stdout.trim(), 'hello fd00::5');
    process.kill(server.pid!, 'SIGKILL');
  });

  it('checkPod: clean when wired, names what is missing', () => {
    const [a, b] = driver([
      { op: 'check', spec: pod1 },
      { op: 'check', spec: pod2 },
    ]);
    assert.deepEqual(ok(a), []);
    assert.deepEqual(ok(b), []);
    ipn(POD1, 'route', 'del', 'default');
    ipn(HOST, 'route', 'del', '10.233.64.5/32', 'dev', CALI1);
    ipn(POD1, 'addr', 'del', 'fd00::5/128', 'dev', 'eth0');
    const [c] = driver([{ op: 'check', spec: pod1 }]);
    assert.deepEqual(ok(c), [
      `host route 10.233.64.5/32 dev ${CALI1} scope link missing`,
      'address fd00::5/128 missing on eth0',
      'route 0.0.0.0/0 via 169.254.1.1 dev eth0 missing',
    ]);
    ipn(POD1, 'route', 'add', 'default', 'via', '169.254.1.1', 'dev', 'eth0');
    ipn(HOST, 'route', 'add', '10.233.64.5/32', 'dev', CALI1, 'scope', 'link');
    ipn(POD1, 'addr', 'add', 'fd00::5/128', 'dev', 'eth0');
    const [d, e] = driver([
      { op: 'check', spec: pod1 },
      { op: 'check', spec: { ...pod1, mtu: 1400, addresses: ['10.233.64.9'] } },
    ]);
    assert.deepEqual(ok(d), []);
    assert.deepEqual(ok(e), [
      `host interface ${CALI1} has MTU 1410, want 1400`,
      `host route 10.233.64.9/32 dev ${CALI1} scope link missing`,
      'container interface eth0 has MTU 1410, want 1400',
      'address 10.233.64.9/32 missing on eth0',
    ]);
  });

  it('fails when the address is routed to another interface, naming both, and leaves nothing behind', () => {
    ipn(HOST, 'route', 'add', '10.233.64.99/32', 'dev', 'eth0', 'scope', 'link');
    const spec = { netns: nsPath(POD3), ifname: 'eth0', hostIfName: CALI3, addresses: ['10.233.64.99/32'] };
    const [a] = driver([{ op: 'wire', spec }]);
    assert.equal(a.ok, false);
    assert.equal(a.error?.step, 'host route');
    assert.match(a.error!.message, new RegExp(`already exists for an interface other than '${CALI3}': 'eth0'`));
    assert.doesNotMatch(hostLinks(), new RegExp(CALI3));
    assert.deepEqual(
      ipn(POD3, '-o', 'link', 'show').trim().split('\n').map((l) => l.split(':')[1].trim()),
      ['lo'],
    );
    assert.match(ipn(HOST, 'route', 'show', '10.233.64.99'), /dev eth0 scope link/, 'the other route is untouched');
    ipn(HOST, 'route', 'del', '10.233.64.99/32', 'dev', 'eth0');
  });

  it('accepts an identical host route programmed first (as by Felix)', () => {
    // The driver's "felixFirst" hook adds `<ip> dev <cali> scope link` right after the veth is created,
    // before wirePod adds its own routes, so wirePod meets EEXIST on its own interface.
    const spec = { netns: nsPath(POD3), ifname: 'eth0', hostIfName: CALI3, addresses: ['10.233.64.7/32', '10.233.64.77/32'] };
    const [a, b, c] = driver([
      { op: 'wire', spec, felixFirst: ['10.233.64.7/32'] },
      { op: 'check', spec },
      // CNI DEL without a netns: the host veth goes, and its container end with it.
      { op: 'unwire', spec: { netns: '', ifname: 'eth0', hostIfName: CALI3 } },
    ]);
    ok(a);
    assert.deepEqual(ok(b), []);
    ok(c);
    assert.doesNotMatch(ipn(HOST, 'route', 'show'), /10\.233\.64\.77?/);
    assert.doesNotMatch(hostLinks(), new RegExp(CALI3));
    assert.deepEqual(
      ipn(POD3, '-o', 'link', 'show').trim().split('\n').map((l) => l.split(':')[1].trim()),
      ['lo'],
    );
  });

  it('fails when the container interface name is taken, leaving the pod’s own interface alone', () => {
    ipn(POD3, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'other0');
    const spec = { netns: nsPath(POD3), ifname: 'eth0', hostIfName: CALI3, addresses: ['10.233.64.7/32'] };
    const [a] = driver([{ op: 'wire', spec }]);
    assert.equal(a.ok, false);
    assert.equal(a.error?.step, 'create veth');
    assert.match(a.error!.message, /File exists/);
    assert.doesNotMatch(hostLinks(), new RegExp(CALI3));
    assert.match(ipn(POD3, 'link', 'show', 'dev', 'eth0'), /eth0@other0/);
    ipn(POD3, 'link', 'del', 'eth0');
  });

  it('replaces a stale host veth; refuses to delete a host interface that is not a veth', () => {
    ipn(HOST, 'link', 'add', CALI3, 'type', 'veth', 'peer', 'name', 'stalepeer');
    const spec = { netns: nsPath(POD3), ifname: 'eth0', hostIfName: CALI3, addresses: ['10.233.64.7/32'] };
    const [a, b] = driver([{ op: 'wire', spec }, { op: 'check', spec }]);
    ok(a);
    assert.deepEqual(ok(b), []);
    assert.doesNotMatch(hostLinks(), /stalepeer/);
    ok(driver([{ op: 'unwire', spec }])[0]);

    ipn(HOST, 'link', 'add', CALI3, 'type', 'bridge');
    const [c, d] = driver([{ op: 'wire', spec }, { op: 'unwire', spec }]);
    assert.equal(c.ok, false);
    assert.equal(c.error?.step, 'delete stale host interface');
    assert.match(c.error!.message, /is a bridge; refusing/);
    assert.equal(d.ok, false);
    assert.equal(d.error?.step, 'delete host interface');
    assert.match(hostLinks(), new RegExp(`${CALI3}: `), 'the bridge is still there');
    assert.deepEqual(
      ipn(POD3, '-o', 'link', 'show').trim().split('\n').map((l) => l.split(':')[1].trim()),
      ['lo'],
    );
    ipn(HOST, 'link', 'del', CALI3);
  });

  it('never touches its own namespace as a container namespace', () => {
    const [a, b, c] = driver([
      { op: 'wire', spec: { netns: '/proc/self/ns/net', ifname: 'eth9', hostIfName: CALI3, addresses: ['10.233.64.8/32'] } },
      // eth0 is the host's uplink: an unwire with a recycled netns path must not delete it.
      { op: 'unwire', spec: { netns: '/proc/self/ns/net', ifname: 'eth0', hostIfName: CALI3 } },
      { op: 'wire', spec: { netns: `/run/netns/${R}-missing`, ifname: 'eth0', hostIfName: CALI3, addresses: ['10.233.64.8/32'] } },
    ]);
    assert.equal(a.ok, false);
    assert.equal(a.error?.step, 'validate');
    assert.match(a.error!.message, /host's own network namespace/);
    ok(b);
    assert.equal(c.ok, false);
    assert.match(c.error!.message, /^validate: netns \S+ does not exist$/);
    assert.match(hostLinks(), /eth0@up0peer/);
    assert.doesNotMatch(hostLinks(), new RegExp(CALI3));
  });

  it('wires a netns given as /proc/<pid>/ns/net; unwires it after the process (and netns) is gone', async () => {
    const sleeper = spawn('/usr/bin/unshare', ['--net', '/usr/bin/sleep', '60'], { stdio: 'ignore' });
    children.push(sleeper);
    const path = `/proc/${sleeper.pid}/ns/net`;
    // Wait until unshare has its own namespace.
    const hostIno = () => run(['/usr/bin/stat', '-L', '-c', '%i', '/proc/self/ns/net']).stdout.trim();
    for (let i = 0; i < 100 && run(['/usr/bin/stat', '-L', '-c', '%i', path]).stdout.trim() === hostIno(); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    must(['/usr/bin/nsenter', `--net=${path}`, IP, 'link', 'set', 'lo', 'up']);
    const spec = { netns: path, ifname: 'eth0', hostIfName: CALI4, addresses: ['10.233.64.10/32'] };
    const [a, b] = driver([{ op: 'wire', spec }, { op: 'check', spec }]);
    ok(a);
    assert.deepEqual(ok(b), []);
    assert.match(must(['/usr/bin/nsenter', `--net=${path}`, IP, 'route']), /^default via 169\.254\.1\.1 dev eth0 $/m);
    const r = ping(HOST, '10.233.64.10');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    process.kill(sleeper.pid!, 'SIGKILL');
    await new Promise((res) => (sleeper.exitCode !== null || sleeper.signalCode !== null ? res(null) : sleeper.once('exit', res)));
    assert.ok(!existsSync(path));
    ok(driver([{ op: 'unwire', spec }])[0]);
    assert.doesNotMatch(hostLinks(), new RegExp(CALI4));
    assert.doesNotMatch(ipn(HOST, 'route', 'show'), /10\.233\.64\.10/);
  });

  it('unwirePod is idempotent and works after the pod netns was deleted', () => {
    const u1 = { netns: pod1.netns, ifname: 'eth0', hostIfName: CALI1 };
    const [a, b] = driver([
      { op: 'unwire', spec: u1 },
      { op: 'unwire', spec: u1 },
    ]);
    ok(a);
    ok(b);
    assert.doesNotMatch(hostLinks(), new RegExp(CALI1));
    assert.doesNotMatch(ipn(HOST, 'route', 'show'), /10\.233\.64\.5/);
    assert.doesNotMatch(ipn(HOST, '-6', 'route', 'show'), /fd00::5/);
    assert.deepEqual(
      ipn(POD1, '-o', 'link', 'show').trim().split('\n').map((l) => l.split(':')[1].trim()),
      ['lo'],
    );
    assert.equal(ipn(POD1, 'route', 'show').trim(), '');

    must([IP, 'netns', 'del', POD2]);
    const u2 = { netns: pod2.netns, ifname: 'eth0', hostIfName: CALI2 };
    const [c, d, e] = driver([
      { op: 'unwire', spec: u2 },
      { op: 'unwire', spec: { ...u2, netns: '' } },
      { op: 'check', spec: pod1 },
    ]);
    ok(c);
    ok(d);
    assert.doesNotMatch(hostLinks(), new RegExp(CALI2));
    assert.doesNotMatch(ipn(HOST, 'route', 'show'), /10\.233\.64\.6/);
    assert.deepEqual(ok(e), [`host interface ${CALI1} missing`, 'container interface eth0 missing in ' + pod1.netns]);
  });

  // Their speed is measured in bench/pod-wiring.ts (this test asserted "a cycle < 100 ms").
  it('repeated wire + unwire cycles (IPv4, dual stack) leave nothing behind', () => {
    const v4 = { netns: nsPath(POD3), ifname: 'eth0', hostIfName: CALI3, addresses: ['10.233.64.7/32'], mtu: 1410 };
    const dual = { ...v4, addresses: ['10.233.64.7/32', 'fd00::7/128'] };
    const [a, b] = driver([
      { op: 'bench', spec: v4, n: 20 },
      { op: 'bench', spec: dual, n: 10 },
    ]);
    ok(a);
    ok(b);
    assert.doesNotMatch(hostLinks(), new RegExp(CALI3));
    assert.doesNotMatch(ipn(HOST, 'route', 'show'), /10\.233\.64\.7/);
    assert.doesNotMatch(ipn(HOST, '-6', 'route', 'show'), /fd00::7/);
    assert.deepEqual(
      ipn(POD3, '-o', 'link', 'show').trim().split('\n').map((l) => l.split(':')[1].trim()),
      ['lo'],
    );
  });
});
