// NAT outgoing (nat.ts): the pure rendering, `nft -c` on it, and real packets. Everything that
// touches nftables runs in namespaces created here (`tortie-t<hex>-*`), deleted in `after`: a "node"
// namespace (the agent's, running nat.ts and podnet.ts through testdata/nat-driver.js), a "lan"
// namespace on the far side of the node's underlay veth with a TCP server, and a pod namespace.
// The root namespace's ruleset is only listed (before and after) to show it was not touched.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { NatTable, natSets, parseNatTableJson, renderNatTable, type NatApplyResult, type NatTableState } from './nat.js';
import type { Exec } from './iproute.js';

const IP = '/usr/sbin/ip';
const NFT = '/usr/sbin/nft';
const NODE = '/usr/bin/node';
const DRIVER = fileURLToPath(new URL('./testdata/nat-driver.js', import.meta.url));
const isRoot = process.getuid?.() === 0;
const liveSkip = !isRoot ? 'needs root (network namespaces)' : !existsSync(NFT) ? `${NFT} is not installed (apt-get install nftables)` : !existsSync(DRIVER) ? 'testdata/nat-driver.js not built (npm run build)' : false;

const GOLDEN = `table ip tortie-nat {}
delete table ip tortie-nat
table ip tortie-nat {
\tset masq-ipam-pools {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 10.233.64.0/18, 10.250.0.0/24 }
\t}
\tset all-ipam-pools {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 10.233.64.0/18, 10.244.0.0/16, 10.250.0.0/24 }
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr @masq-ipam-pools ip daddr != @all-ipam-pools masquerade fully-random
\t}
}
`;

const GOLDEN_EMPTY = `table ip tortie-nat {}
delete table ip tortie-nat
table ip tortie-nat {
\tset masq-ipam-pools {
\t\ttype ipv4_addr
\t\tflags interval
\t}
\tset all-ipam-pools {
\t\ttype ipv4_addr
\t\tflags interval
\t}
\tchain postrouting {
\t\ttype nat hook postrouting priority srcnat; policy accept;
\t\tip saddr @masq-ipam-pools ip daddr != @all-ipam-pools masquerade fully-random
\t}
}
`;

const POOLS = [
  { cidr: '10.244.0.0/16', natOutgoing: false, disabled: false },
  { cidr: '10.233.64.0/18', natOutgoing: true, disabled: false },
  { cidr: 'fd00:10::/64', natOutgoing: true, disabled: false },
  // host bits are cleared; a disabled pool keeps its NAT (its pods still exist)
  { cidr: '10.250.0.7/24', natOutgoing: true, disabled: true },
];

describe('renderNatTable (pure)', () => {
  it('renders the golden script (IPv4 only, sorted, disabled pools kept)', () => {
    assert.equal(renderNatTable(POOLS), GOLDEN);
    assert.deepEqual(natSets(POOLS).ignored, ['fd00:10::/64']);
  });
  it('keeps the table with empty sets when no pool has natOutgoing (or there are no pools)', () => {
    assert.equal(renderNatTable([]), GOLDEN_EMPTY);
    const s = natSets([{ cidr: '10.244.0.0/16', natOutgoing: false, disabled: false }]);
    assert.deepEqual(s, { masq: [], all: ['10.244.0.0/16'], ignored: [] });
  });
  it('folds nested and duplicate CIDRs (an interval set refuses overlaps) and skips garbage', () => {
    const s = natSets([
      { cidr: '10.0.0.0/8', natOutgoing: true, disabled: false },
      { cidr: '10.1.0.0/16', natOutgoing: true, disabled: false },
      { cidr: '10.0.0.0/8', natOutgoing: false, disabled: false },
      { cidr: '11.0.0.0/24', natOutgoing: false, disabled: false },
      { cidr: 'nonsense', natOutgoing: true, disabled: false },
    ]);
    assert.deepEqual(s, { masq: ['10.0.0.0/8'], all: ['10.0.0.0/8', '11.0.0.0/24'], ignored: ['nonsense'] });
  });
  it('is stable: same pools in another order give the same script', () => {
    assert.equal(renderNatTable([...POOLS].reverse()), renderNatTable(POOLS));
  });
});

describe('NatTable with a fake nft', () => {
  function fake(): { exec: Exec; calls: string[][]; state: { listing: string | null } } {
    const calls: string[][] = [];
    const state = { listing: null as string | null };
    const exec: Exec = async (_file, args, input) => {
      calls.push([...args]);
      if (args[0] === '-f') {
        state.listing = `listing of ${input?.length}`;
        return { code: 0, signal: null, stdout: '', stderr: '' };
      }
      if (args[0] === 'list') {
        return state.listing === null
          ? { code: 1, signal: null, stdout: '', stderr: 'Error: No such file or directory\n' }
          : { code: 0, signal: null, stdout: state.listing, stderr: '' };
      }
      return { code: 1, signal: null, stdout: '', stderr: 'unexpected' };
    };
    return { exec, calls, state };
  }
  it('writes first, then only lists while nothing changed; rewrites on change, loss or edit', async () => {
    const f = fake();
    const t = new NatTable({ exec: f.exec });
    const a = await t.apply(POOLS);
    assert.deepEqual([a.changed, a.reason, a.execs], [true, 'first write', 2]);
    const b = await t.apply(POOLS);
    assert.deepEqual([b.changed, b.reason, b.execs], [false, 'unchanged', 1]);
    f.state.listing = null;
    assert.equal((await t.apply(POOLS)).reason, 'table missing');
    f.state.listing = 'edited';
    assert.equal((await t.apply(POOLS)).reason, 'table changed');
    assert.equal((await t.apply(POOLS.slice(1))).reason, 'pools changed');
    assert.equal((await t.apply(POOLS.slice(1))).reason, 'unchanged');
    assert.ok(f.calls.every((c) => c[0] === '-f' ? c.join(' ') === '-f -' : c.join(' ') === 'list table ip tortie-nat'), JSON.stringify(f.calls));
  });
  it('a failed write throws and the next apply tries again', async () => {
    const t = new NatTable({ exec: async () => ({ code: 1, signal: null, stdout: '', stderr: 'Error: Could not process rule: Operation not supported' }) });
    await assert.rejects(t.apply(POOLS), /Operation not supported/);
    await assert.rejects(t.apply(POOLS), /Operation not supported/);
  });
});

describe('parseNatTableJson', () => {
  it('reads sets, chain and the masquerade rule', () => {
    const doc = {
      nftables: [
        { metainfo: {} },
        { table: { family: 'ip', name: 'tortie-nat', handle: 4 } },
        { set: { family: 'ip', name: 'masq-ipam-pools', table: 'tortie-nat', type: 'ipv4_addr', flags: ['interval'], elem: [{ prefix: { addr: '10.233.64.0', len: 18 } }, '10.9.9.9'] } },
        { set: { family: 'ip', name: 'all-ipam-pools', table: 'tortie-nat', type: 'ipv4_addr', flags: ['interval'] } },
        { chain: { family: 'ip', table: 'tortie-nat', name: 'postrouting', type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' } },
        {
          rule: {
            family: 'ip',
            table: 'tortie-nat',
            chain: 'postrouting',
            expr: [
              { match: { op: '==', left: { payload: { protocol: 'ip', field: 'saddr' } }, right: '@masq-ipam-pools' } },
              { match: { op: '!=', left: { payload: { protocol: 'ip', field: 'daddr' } }, right: '@all-ipam-pools' } },
              { masquerade: { flags: 'fully-random' } },
            ],
          },
        },
      ],
    };
    assert.deepEqual(parseNatTableJson(JSON.stringify(doc)), {
      masq: ['10.233.64.0/18', '10.9.9.9/32'],
      all: [],
      chain: { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' },
      rules: 1,
      masqueradeRule: true,
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// Live

const R = `tortie-t${randomBytes(4).toString('hex')}`;
const NODE_NS = `${R}-node`;
const LAN_NS = `${R}-lan`;
const POD_NS = `${R}-pod`;
const CHECK_NS = `${R}-check`;
const ALL_NS = [NODE_NS, LAN_NS, POD_NS, CHECK_NS];

const POD_IP = '10.244.1.5';
const LAN_IP = '192.168.77.1';
const NODE_IP = '192.168.77.2';
const OTHER_POOL_IP = '10.245.0.1'; // the lan server's second address, inside a (non-NAT) pool
const PORT = 7777;
const podPool = (natOutgoing: boolean) => [
  { cidr: '10.244.0.0/16', natOutgoing, disabled: false },
  { cidr: '10.245.0.0/16', natOutgoing: false, disabled: false },
];

function run(argv: string[], input?: string, timeout = 30_000): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', input, timeout, env: { LC_ALL: 'C' } });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? String(r.error ?? '') };
}
function must(argv: string[], input?: string): string {
  const r = run(argv, input);
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const batch = (ns: string, lines: string[]) => must([IP, '-n', ns, '-batch', '-'], lines.join('\n') + '\n');

interface Answer {
  ok: boolean;
  value?: unknown;
  error?: { name: string; message: string };
}
function driver(ops: object[]): Answer[] {
  const r = run([IP, 'netns', 'exec', NODE_NS, NODE, DRIVER, JSON.stringify(ops)]);
  assert.equal(r.status, 0, `driver failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Answer[];
}
function ok<T>(a: Answer | undefined): T {
  assert.ok(a?.ok, `operation failed: ${JSON.stringify(a?.error)}`);
  return a.value as T;
}

const SERVER = `
const net = require('node:net');
const s = net.createServer((c) => { c.on('error', () => {}); c.end(c.remoteAddress + '\\n'); });
s.listen(${PORT}, '0.0.0.0', () => process.stdout.write('ready\\n'));
`;
const CLIENT = `
const net = require('node:net');
const c = net.connect({ host: process.argv[1], port: ${PORT}, timeout: 1500 });
let d = '';
c.on('data', (x) => { d += x; });
c.on('end', () => { process.stdout.write(d); process.exit(0); });
c.on('timeout', () => { process.stdout.write('TIMEOUT'); process.exit(2); });
c.on('error', (e) => { process.stdout.write('ERROR ' + e.message); process.exit(3); });
`;
/** Connects from the pod; returns the source address the server saw, or null when no connection. */
function connectFromPod(dst: string): string | null {
  const r = run([IP, 'netns', 'exec', POD_NS, NODE, '-e', CLIENT, dst], undefined, 10_000);
  return r.status === 0 ? r.stdout.trim() : null;
}

const rootRuleset = () => (isRoot && existsSync(NFT) ? run([NFT, 'list', 'ruleset']).stdout : '');

describe('NAT outgoing with real packets', { skip: liveSkip }, () => {
  const children: ChildProcess[] = [];
  let rootBefore = '';

  before(async () => {
    rootBefore = rootRuleset();
    for (const n of ALL_NS) must([IP, 'netns', 'add', n]);
    batch(NODE_NS, [
      'link set lo up',
      `link add eth0 type veth peer name lan0 netns ${LAN_NS}`,
      'link set eth0 up',
      `addr add ${NODE_IP}/24 dev eth0`,
      `route add default via ${LAN_IP} dev eth0`,
    ]);
    // The lan: no route to the pod CIDR, except (policy routing) for replies from the other-pool
    // address, so that "not masqueraded towards another pool" can be seen working.
    batch(LAN_NS, [
      'link set lo up',
      'link set lan0 up',
      `addr add ${LAN_IP}/24 dev lan0`,
      `addr add ${OTHER_POOL_IP}/32 dev lan0`,
      `rule add from ${OTHER_POOL_IP} lookup 100`,
      `route add 10.244.0.0/16 via ${NODE_IP} dev lan0 table 100`,
    ]);
    must([IP, 'netns', 'exec', NODE_NS, '/usr/sbin/sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    must([IP, '-n', POD_NS, 'link', 'set', 'lo', 'up']);
    const w = driver([
      { op: 'wire', spec: { netns: `/run/netns/${POD_NS}`, ifname: 'eth0', hostIfName: 'cali0123456789e', addresses: [`${POD_IP}/32`] } },
    ]);
    ok(w[0]);
    const srv = spawn(IP, ['netns', 'exec', LAN_NS, NODE, '-e', SERVER], { stdio: ['ignore', 'pipe', 'pipe'], env: { LC_ALL: 'C' } });
    children.push(srv);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('lan server did not start')), 10_000);
      srv.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) {
          clearTimeout(t);
          resolve();
        }
      });
      srv.on('exit', (c) => reject(new Error(`lan server exited ${c}`)));
    });
  });

  after(() => {
    for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) process.kill(c.pid, 'SIGKILL');
    for (const n of ALL_NS) run([IP, 'netns', 'del', n]);
  });

  it('the rendered scripts pass `nft -c -f` (in a namespace of their own)', () => {
    for (const s of [GOLDEN, GOLDEN_EMPTY, renderNatTable(podPool(true))]) {
      const r = run([IP, 'netns', 'exec', CHECK_NS, NFT, '-c', '-f', '-'], s);
      assert.equal(r.status, 0, r.stderr);
    }
    // a check leaves nothing behind
    assert.equal(run([IP, 'netns', 'exec', CHECK_NS, NFT, 'list', 'ruleset']).stdout.trim(), '');
  });

  it('the lan has no route back to the pod', () => {
    assert.notEqual(run([IP, '-n', LAN_NS, 'route', 'get', POD_IP]).status, 0);
  });

  it('natOutgoing true: the pod reaches the lan server, which sees the node address', () => {
    const [a, b] = driver([{ op: 'apply', pools: podPool(true) }, { op: 'read' }]);
    assert.equal(ok<NatApplyResult>(a).changed, true);
    const st = ok<NatTableState>(b);
    assert.deepEqual(st.masq, ['10.244.0.0/16']);
    assert.deepEqual(st.all, ['10.244.0.0/16', '10.245.0.0/16']);
    assert.deepEqual(st.chain, { type: 'nat', hook: 'postrouting', prio: 100, policy: 'accept' });
    assert.equal(st.masqueradeRule, true);
    assert.equal(connectFromPod(LAN_IP), NODE_IP);
  });

  it('traffic to another pool is not masqueraded', () => {
    assert.equal(connectFromPod(OTHER_POOL_IP), POD_IP);
  });

  it('natOutgoing false: the pod does not reach the lan server (no return route)', () => {
    const [a, b] = driver([{ op: 'apply', pools: podPool(false) }, { op: 'read' }]);
    assert.equal(ok<NatApplyResult>(a).changed, true);
    const st = ok<NatTableState>(b);
    assert.deepEqual(st.masq, []);
    assert.equal(st.masqueradeRule, true);
    assert.equal(connectFromPod(LAN_IP), null);
  });

  it('only lists when unchanged; a table deleted or edited by hand comes back on the next apply', () => {
    const pools = podPool(true);
    const ans = driver([
      { op: 'apply', pools },
      { op: 'apply', pools },
      { op: 'nft', args: ['delete', 'table', 'ip', 'tortie-nat'] },
      { op: 'read' },
      { op: 'apply', pools },
      { op: 'nft', args: ['flush', 'chain', 'ip', 'tortie-nat', 'postrouting'] },
      { op: 'apply', pools },
      { op: 'nft', args: ['add', 'element', 'ip', 'tortie-nat', 'all-ipam-pools', '{ 192.168.77.0/24 }'] },
      { op: 'apply', pools },
      { op: 'apply', pools },
      { op: 'read' },
    ]);
    const r = (i: number) => ok<NatApplyResult>(ans[i]);
    assert.deepEqual([r(0).changed, r(0).reason], [true, 'first write']);
    assert.deepEqual([r(1).changed, r(1).reason, r(1).execs], [false, 'unchanged', 1]);
    ok(ans[2]);
    assert.equal(ok(ans[3]), null);
    assert.deepEqual([r(4).changed, r(4).reason], [true, 'table missing']);
    ok(ans[5]);
    assert.deepEqual([r(6).changed, r(6).reason], [true, 'table changed']);
    ok(ans[7]);
    assert.deepEqual([r(8).changed, r(8).reason], [true, 'table changed']);
    assert.deepEqual([r(9).changed, r(9).reason], [false, 'unchanged']);
    const st = ok<NatTableState>(ans[10]);
    assert.deepEqual(st.all, ['10.244.0.0/16', '10.245.0.0/16']);
    assert.equal(st.masqueradeRule, true);
    assert.equal(connectFromPod(LAN_IP), NODE_IP);
  });

  it('remove deletes only the table, and says when it was not there', () => {
    const ans = driver([{ op: 'remove' }, { op: 'remove' }, { op: 'read' }, { op: 'nft', args: ['list', 'ruleset'] }]);
    assert.equal(ok(ans[0]), true);
    assert.equal(ok(ans[1]), false);
    assert.equal(ok(ans[2]), null);
    assert.doesNotMatch(ok<string>(ans[3]), /tortie-nat/);
    assert.equal(connectFromPod(LAN_IP), null);
  });

  it("the root namespace's ruleset is untouched", () => {
    const now = rootRuleset();
    assert.doesNotMatch(now, /tortie-nat/);
    assert.equal(now, rootBefore);
  });
});
