// A whole cluster in tortie-lab, through bin/tortie-lab as an operator runs it: five nodes in BGP
// mode (BIRD node-to-node mesh) and in VXLAN mode, every pod reaching every other pod; a node
// joining a running lab; BIRD and the agent killed by PID and coming back; a route deleted by hand
// repaired; an external BGP router (Debian's BIRD 2 in a "tor" namespace on the underlay) learning
// the pod blocks through a global BGPPeer; and `down` leaving nothing behind. Everything runs in
// the lab's own namespaces (tl-<lab>-*); every wait is a bounded poll.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabState } from './pkg/state.js';
import { IP, ipSync, netnsList, pidAlive } from './pkg/sys.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const BIRD = '/usr/sbin/bird';
const BIRDC = '/usr/sbin/birdc';
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !existsSync(LAB)
      ? 'bin/tortie-lab not built (npm run build)'
      : !existsSync(BIRD) || !existsSync(BIRDC)
        ? '/usr/sbin/bird is not installed (apt-get install bird2)'
        : false;
const dir = mkdtempSync(join(tmpdir(), 'tortie-cluster-test-'));
const env = { ...process.env, TORTIE_LAB_DIR: dir };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const esc = (s: string) => s.replace(/[.]/g, '\\.');

function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return lab$(undefined, ...args);
}

function lab$(input: string | undefined, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(LAB, args, { env, timeout: 90_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(input ?? '');
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await lab(...args);
  assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, ms: number, step = 100, detail?: () => string | Promise<string>): Promise<T> {
  const t0 = Date.now();
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() - t0 > ms) {
      const more = detail ? `\n${await detail()}` : '';
      throw new Error(`timed out after ${ms} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}${more}`);
    }
    await sleep(step);
  }
}

const note = (msg: string) => process.stdout.write(`# ${msg}\n`);
const state = (name: string) => JSON.parse(readFileSync(join(dir, name, 'state.json'), 'utf8')) as LabState;
const allProcs = (s: LabState) => [...s.processes, ...Object.values(s.pods).flatMap((p) => p.servers)];
const nodeNs = (s: LabState, node: string) => s.plan.nodes.find((n) => n.name === node)!.ns;
const nodeAddr = (s: LabState, node: string) => s.plan.nodes.find((n) => n.name === node)!.address;
const runDir = (name: string, node: string) => join(dir, name, 'nodes', node, 'run');
const routes = (s: LabState, node: string) => ipSync(['-n', nodeNs(s, node), 'route', 'show']);

/** The block (pool block size) holding a pod's address. */
function blockOf(s: LabState, addr: string): string {
  const size = s.plan.pool.blockSize;
  const n = addr.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const base = n - (n % 2 ** (32 - size));
  return `${[24, 16, 8, 0].map((sh) => Math.floor(base / 2 ** sh) % 256).join('.')}/${size}`;
}

type Matrix = Record<string, Record<string, boolean>>;

async function matrix(name: string): Promise<Matrix> {
  const r = await lab('probe', name, '--port', '80', '--json', '--timeout', '700');
  return JSON.parse(r.stdout) as Matrix;
}

const failing = (m: Matrix) => Object.entries(m).flatMap(([from, row]) => Object.entries(row).filter(([, v]) => v !== true).map(([to]) => `${from}→${to}`));

/** Every ordered pair of the lab's pods answers on port 80 (polled until it does, bounded). */
async function fullMatrix(name: string, pods: number, ms = 20_000): Promise<Matrix> {
  let last: Matrix = {};
  const m = await waitFor(`every pair of ${pods} pods answering on 80`, async () => {
    last = await matrix(name);
    return Object.keys(last).length === pods && failing(last).length === 0 && last;
  }, ms, 250, () => `last probe: ${JSON.stringify(last)}\nfailing: ${failing(last).join(', ')}`);
  const pairs = Object.values(m).reduce((a, row) => a + Object.keys(row).length, 0);
  assert.equal(pairs, pods * (pods - 1), 'every ordered pair probed');
  return m;
}

/** `node status` rows of a node: [peer, type, state, info]. */
async function bgpRows(name: string, node: string): Promise<string[][]> {
  const out = await ok('ctl', name, '--node', node, '--', 'node', 'status');
  return out
    .split('\n')
    .filter((l) => /^\|\s*\d+\.\d+\.\d+\.\d+\s*\|/.test(l))
    .map((l) => l.split('|').slice(1, -1).map((c) => c.trim()))
    .map((c) => [c[0]!, c[1]!, c[2]!, c[4]!]);
}

async function meshEstablished(name: string, node: string, peers: number, ms: number): Promise<string[][]> {
  let last: string[][] = [];
  return waitFor(`${peers} node-to-node mesh sessions Established on ${node}`, async () => {
    last = await bgpRows(name, node);
    const mesh = last.filter((r) => r[1] === 'node-to-node mesh');
    return mesh.length === peers && mesh.every((r) => r[2] === 'up' && r[3] === 'Established') && last;
  }, ms, 200, () => `last rows: ${JSON.stringify(last)}`);
}

function birdPid(name: string, node: string): number | null {
  try {
    const pid = Number.parseInt(readFileSync(join(runDir(name, node), 'bird.pid'), 'utf8').trim(), 10);
    if (!pid || !pidAlive(pid)) return null;
    // Ours: BIRD with this node's config.
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes('bird') && cmd.includes(runDir(name, node)) ? pid : null;
  } catch {
    return null;
  }
}

function agentOf(name: string, node: string) {
  const rec = state(name).processes.find((p) => p.role === `agent:${node}`);
  assert.ok(rec, `agent of ${node} recorded`);
  return rec;
}

function assertGone(name: string, s: LabState, extraPids: number[]): void {
  assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), [], 'no tl-<lab>-* namespace left');
  for (const p of allProcs(s)) assert.equal(pidAlive(p.pid, p.startTime), false, `${p.role} (PID ${p.pid}) still running`);
  for (const pid of extraPids) {
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      // gone
    }
    assert.equal(pidAlive(pid) && cmd.includes(join(dir, name)), false, `BIRD PID ${pid} still running`);
  }
  assert.equal(existsSync(join(dir, name)), false, 'lab directory removed');
}

const made: string[] = [];
function labName(): string {
  const n = `c${randomBytes(3).toString('hex')}`;
  made.push(n);
  return n;
}

after(async () => {
  if (skip) return;
  for (const n of made) if (existsSync(join(dir, n, 'state.json'))) await lab('down', n);
  rmSync(dir, { recursive: true, force: true });
});

describe('tortie-lab cluster, BGP mode: 5 nodes, join, failures, external router', { skip, timeout: 150_000 }, () => {
  const name = labName();
  const pods = new Map<string, string>(); // node → pod key
  const birds = new Set<number>();
  const torNs = `tl-${name}-tor`;
  const torDir = join(dir, `${name}-tor`);
  const torSock = join(torDir, 'bird.ctl');
  let tor: ChildProcess | null = null;

  const stopTor = async () => {
    const t = tor;
    tor = null;
    if (t && t.exitCode === null && t.signalCode === null) {
      const gone = new Promise((r) => t.once('exit', r));
      t.kill('SIGTERM');
      await Promise.race([gone, sleep(3000)]);
      if (t.exitCode === null && t.signalCode === null) {
        t.kill('SIGKILL');
        await gone;
      }
    }
    if (netnsList().includes(torNs)) ipSync(['netns', 'del', torNs]);
  };

  before(async () => {
    const t0 = Date.now();
    await ok('up', '--name', name, '--nodes', '5', '--mode', 'bgp');
    for (let i = 1; i <= 5; i++) {
      await ok('pod', 'add', name, `node${i}`, `default/p${i}`, '--serve', '80');
      pods.set(`node${i}`, `default/p${i}`);
    }
    note(`BGP lab: up + 5 pods in ${Date.now() - t0} ms`);
  });

  after(async () => {
    await stopTor().catch(() => undefined);
    if (existsSync(join(dir, name, 'state.json'))) await lab('down', name);
  });

  const podBlock = (s: LabState, node: string) => blockOf(s, s.pods[pods.get(node)!]!.ip!);

  it('every pod reaches every other pod; 4 mesh sessions Established; proto bird routes and blackholes', async () => {
    const t0 = Date.now();
    await fullMatrix(name, 5);
    note(`BGP: full 5×5 matrix ${Date.now() - t0} ms after the last pod`);
    const rows = await meshEstablished(name, 'node1', 4, 15_000);
    assert.deepEqual(rows.map((r) => r[0]).sort(), ['10.0.0.12', '10.0.0.13', '10.0.0.14', '10.0.0.15']);
    const s = state(name);
    for (const node of ['node1', 'node3']) {
      const rt = routes(s, node);
      assert.match(rt, new RegExp(`^blackhole ${esc(podBlock(s, node))} proto bird`, 'm'), `own block blackholed on ${node}:\n${rt}`);
      for (const other of s.plan.nodes.filter((n) => n.name !== node)) {
        const re = new RegExp(`^${esc(podBlock(s, other.name))} via ${esc(other.address)} dev eth0 proto bird`, 'm');
        assert.match(rt, re, `${other.name}'s block on ${node}:\n${rt}`);
      }
    }
  });

  it('node add: a sixth node joins, every other node learns its block, the matrix is full again', async () => {
    const out = await ok('node', 'add', name, 'node6');
    assert.match(out, /node node6 joined lab .*: 10\.0\.0\.16 \(netns tl-\S+-node6\)/);
    const s0 = state(name);
    assert.ok(s0.plan.nodes.some((n) => n.name === 'node6' && n.address === '10.0.0.16'));
    assert.ok(s0.namespaces.includes(`tl-${name}-node6`));
    assert.ok(pidAlive(agentOf(name, 'node6').pid, agentOf(name, 'node6').startTime));
    // A second add of the same node is refused.
    assert.equal((await lab('node', 'add', name, 'node6')).code, 1);
    const t0 = Date.now();
    await ok('pod', 'add', name, 'node6', 'default/p6', '--serve', '80');
    pods.set('node6', 'default/p6');
    const s = state(name);
    const block6 = podBlock(s, 'node6');
    await Promise.all(
      ['node1', 'node2', 'node3', 'node4', 'node5'].map((node) =>
        waitFor(`${block6} via 10.0.0.16 proto bird on ${node}`, () => new RegExp(`^${esc(block6)} via 10\\.0\\.0\\.16 dev eth0 proto bird`, 'm').test(routes(s, node)), 10_000, 50, () => routes(s, node)),
      ),
    );
    note(`node add: node6's block ${block6} on all 5 other nodes ${Date.now() - t0} ms after its pod ADD began`);
    await fullMatrix(name, 6);
    await meshEstablished(name, 'node6', 5, 15_000);
  });

  // Bounds in waits are hang guards, not speed claims: the measured times are printed (note) and
  // benchmarked in bench/convergence.ts (routes) and bench/lab-up.ts (up).
  it('BIRD killed (-9) on a node: a new BIRD comes back with every mesh session Established, matrix full', async () => {
    const old = birdPid(name, 'node2');
    assert.ok(old, 'BIRD of node2 found by its pid file');
    birds.add(old);
    process.kill(old, 'SIGKILL');
    const t0 = Date.now();
    await waitFor('the old BIRD gone', () => !pidAlive(old), 5000, 20);
    const fresh = await waitFor('a new BIRD on node2', () => {
      const p = birdPid(name, 'node2');
      return p !== null && p !== old && p;
    }, 15_000, 100);
    birds.add(fresh);
    await meshEstablished(name, 'node2', 5, 60_000);
    note(`BIRD restart: new BIRD (pid ${fresh}) with 5 mesh sessions Established ${Date.now() - t0} ms after kill -9`);
    await fullMatrix(name, 6);
  });

  it('agent killed (-9): pods keep connectivity while it is down; node restart reconciles a route deleted meanwhile', async () => {
    const rec = agentOf(name, 'node3');
    const bird = birdPid(name, 'node3');
    if (bird) birds.add(bird);
    assert.ok(pidAlive(rec.pid, rec.startTime));
    process.kill(rec.pid, 'SIGKILL');
    await waitFor('agent of node3 gone', () => !pidAlive(rec.pid, rec.startTime), 5000, 20);
    // Its BIRD goes with it (parent-death signal); the kernel routes stay, and the peers keep
    // node3's routes (graceful restart).
    if (bird) await waitFor('the BIRD of node3 gone with its agent', () => !pidAlive(bird), 5000, 20);
    await fullMatrix(name, 6, 5000);
    const s = state(name);
    const block1 = podBlock(s, 'node1');
    ipSync(['-n', nodeNs(s, 'node3'), 'route', 'del', block1]);
    await sleep(300);
    assert.doesNotMatch(routes(s, 'node3'), new RegExp(`^${esc(block1)} `, 'm'), 'nothing repairs the route while the agent is down');
    const t0 = Date.now();
    const out = await ok('node', 'restart', name, 'node3');
    assert.match(out, /node node3: tortie-node (re)?started \(pid \d+/);
    const fresh = agentOf(name, 'node3');
    assert.notEqual(fresh.pid, rec.pid);
    assert.ok(pidAlive(fresh.pid, fresh.startTime));
    assert.equal(state(name).processes.filter((p) => p.role === 'agent:node3').length, 1, 'one agent recorded for node3');
    await waitFor(`${block1} back on node3`, () => new RegExp(`^${esc(block1)} via ${esc(nodeAddr(s, 'node1'))} dev eth0 proto bird`, 'm').test(routes(s, 'node3')), 20_000, 50, () => routes(s, 'node3'));
    note(`agent restart: deleted route back on node3 ${Date.now() - t0} ms after node restart began`);
    const nb = birdPid(name, 'node3');
    if (nb) birds.add(nb);
    await meshEstablished(name, 'node3', 5, 15_000);
    await fullMatrix(name, 6);
  });

  it('a route deleted by hand is restored', async () => {
    const s = state(name);
    const block5 = podBlock(s, 'node5');
    ipSync(['-n', nodeNs(s, 'node4'), 'route', 'del', block5]);
    assert.doesNotMatch(routes(s, 'node4'), new RegExp(`^${esc(block5)} `, 'm'));
    const t0 = Date.now();
    await waitFor(`${block5} back on node4`, () => new RegExp(`^${esc(block5)} via 10\\.0\\.0\\.15 dev eth0 proto bird`, 'm').test(routes(s, 'node4')), 60_000, 50, () => routes(s, 'node4'));
    note(`repair: route deleted on node4 back in ${Date.now() - t0} ms`);
    await fullMatrix(name, 6);
  });

  it('external BGP router (BIRD 2, AS 65000) learns the pod blocks through a global BGPPeer', async () => {
    const s = state(name);
    const torIp = '10.0.0.250';
    mkdirSync(torDir, { recursive: true });
    ipSync(['netns', 'add', torNs]);
    ipSync(['-n', s.plan.lanNs, 'link', 'add', 'tor0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', torNs]);
    ipSync(['-n', s.plan.lanNs, 'link', 'set', 'tor0', 'master', 'br0']);
    ipSync(['-n', s.plan.lanNs, 'link', 'set', 'tor0', 'up']);
    ipSync(['-n', torNs, 'link', 'set', 'lo', 'up']);
    ipSync(['-n', torNs, 'addr', 'add', `${torIp}/24`, 'dev', 'eth0']);
    ipSync(['-n', torNs, 'link', 'set', 'eth0', 'up']);
    const cfg = [
      `router id ${torIp};`,
      'protocol device {}',
      ...s.plan.nodes.map((n, i) => `protocol bgp node_${i + 1} {\n  local ${torIp} as 65000;\n  neighbor ${n.address} as 64512;\n  ipv4 { import all; export none; };\n}`),
    ].join('\n') + '\n';
    writeFileSync(join(torDir, 'bird.conf'), cfg);
    const fd = openSync(join(torDir, 'bird.log'), 'a');
    try {
      // `ip netns exec` execs in place: the child's PID is BIRD's.
      tor = spawn(IP, ['netns', 'exec', torNs, BIRD, '-f', '-c', join(torDir, 'bird.conf'), '-s', torSock], { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const torc = (...cmd: string[]) => ipSync(['netns', 'exec', torNs, BIRDC, '-s', torSock, ...cmd]);
    await waitFor('ToR BIRD control socket', () => existsSync(torSock) && /BIRD/.test(torc('show', 'status')), 10_000, 50, () => readFileSync(join(torDir, 'bird.log'), 'utf8'));
    const peer = { apiVersion: 'projectcalico.org/v3', kind: 'BGPPeer', metadata: { name: 'tor' }, spec: { peerIP: torIp, asNumber: 65000 } };
    const r = await lab$(JSON.stringify(peer), 'ctl', name, '--', 'apply', '-f', '-');
    assert.equal(r.code, 0, r.stderr);
    const t0 = Date.now();
    const blocks = [...pods.keys()].map((node) => podBlock(s, node));
    await waitFor('ToR sessions Established with every node', () => {
      const out = torc('show', 'protocols');
      return s.plan.nodes.every((_, i) => new RegExp(`^node_${i + 1}\\s+BGP\\s+\\S+\\s+up\\s+\\S+\\s+Established`, 'm').test(out));
    }, 20_000, 200, () => torc('show', 'protocols'));
    // Sessions come up one by one and each then sends its routes: wait until every owner's route is in.
    const fromOwners = (out: string) => [...pods.keys()].every((node) => new RegExp(`via ${esc(nodeAddr(s, node))} on eth0`).test(out));
    const learned = await waitFor('ToR learns every pod block, each from its owner', () => {
      const out = torc('show', 'route');
      return blocks.every((b) => new RegExp(`^${esc(b)}\\s+unicast`, 'm').test(out)) && fromOwners(out) && out;
    }, 15_000, 100, () => torc('show', 'route'));
    // Each block is learnt from (at least) the node that owns it.
    for (const node of pods.keys()) assert.match(learned, new RegExp(`via ${esc(nodeAddr(s, node))} on eth0`));
    note(`ToR: all ${blocks.length} blocks learnt ${Date.now() - t0} ms after the BGPPeer was applied`);
    for (const node of ['node1', 'node6']) {
      let last: string[][] = [];
      await waitFor(`global peer ${torIp} Established on ${node}`, async () => {
        last = await bgpRows(name, node);
        return last.some((row) => row[0] === torIp && row[1] === 'global' && row[2] === 'up' && row[3] === 'Established');
      }, 10_000, 200, () => JSON.stringify(last));
      assert.equal(last.filter((row) => row[1] === 'node-to-node mesh' && row[3] === 'Established').length, 5, `mesh kept on ${node}`);
    }
  });

  it('node del: the node, its pod and agent go; the others drop it from the mesh', async () => {
    const s0 = state(name);
    const agent = agentOf(name, 'node6');
    const bird = birdPid(name, 'node6');
    if (bird) birds.add(bird);
    const podNs = s0.pods['default/p6']!.netns;
    const out = await ok('node', 'del', name, 'node6');
    assert.match(out, /node node6 removed from lab/);
    pods.delete('node6');
    const s = state(name);
    assert.equal(s.plan.nodes.some((n) => n.name === 'node6'), false);
    assert.equal(s.pods['default/p6'], undefined);
    assert.equal(s.processes.some((p) => p.role === 'agent:node6'), false);
    assert.equal(pidAlive(agent.pid, agent.startTime), false, 'agent of node6 stopped');
    if (bird) assert.equal(pidAlive(bird), false, 'BIRD of node6 stopped');
    const left = netnsList();
    assert.equal(left.includes(`tl-${name}-node6`), false);
    assert.equal(left.includes(podNs), false);
    assert.doesNotMatch(await ok('ctl', name, '--', 'get', 'nodes'), /^node6\b/m);
    let last: string[][] = [];
    await waitFor('node1 back to 4 mesh peers', async () => {
      last = await bgpRows(name, 'node1');
      const mesh = last.filter((r) => r[1] === 'node-to-node mesh');
      return mesh.length === 4 && mesh.every((r) => r[3] === 'Established') && !mesh.some((r) => r[0] === '10.0.0.16');
    }, 15_000, 200, () => JSON.stringify(last));
    await fullMatrix(name, 5);
  });

  it('down leaves no tl-<lab>-* namespace and no recorded process', async () => {
    const s = state(name);
    for (const n of s.plan.nodes) {
      const p = birdPid(name, n.name);
      if (p) birds.add(p);
    }
    await stopTor();
    await ok('down', name);
    assertGone(name, s, [...birds]);
  });
});

describe('tortie-lab cluster, VXLAN mode: 5 nodes', { skip, timeout: 90_000 }, () => {
  const name = labName();

  before(async () => {
    await ok('up', '--name', name, '--nodes', '5', '--mode', 'vxlan');
    for (let i = 1; i <= 5; i++) await ok('pod', 'add', name, `node${i}`, `default/v${i}`, '--serve', '80');
  });
  after(async () => {
    if (existsSync(join(dir, name, 'state.json'))) await lab('down', name);
  });

  it('every pod reaches every other pod over vxlan.calico; down leaves nothing', async () => {
    const t0 = Date.now();
    await fullMatrix(name, 5);
    note(`VXLAN: full 5×5 matrix ${Date.now() - t0} ms after the last pod`);
    const s = state(name);
    for (const n of s.plan.nodes) {
      const link = ipSync(['-n', n.ns, '-d', 'link', 'show', 'dev', 'vxlan.calico']);
      assert.match(link, /vxlan id 4096/, `vxlan.calico on ${n.name}`);
      const rt = routes(s, n.name);
      for (const [key, pod] of Object.entries(s.pods)) {
        if (pod.node === n.name) continue;
        assert.match(rt, new RegExp(`^${esc(blockOf(s, pod.ip!))} via \\S+ dev vxlan\\.calico .*onlink`, 'm'), `${key}'s block over vxlan.calico on ${n.name}:\n${rt}`);
      }
      assert.doesNotMatch(rt, /proto bird/, `no BGP routes in VXLAN mode on ${n.name}`);
    }
    await ok('down', name);
    assertGone(name, s, []);
  });
});
