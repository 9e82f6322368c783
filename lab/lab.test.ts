// tortie-lab end to end, through bin/tortie-lab as an operator runs it: labs in their own
// namespaces (tl-<unique>-*), state in a temporary TORTIE_LAB_DIR, and after `down` no namespace
// and no recorded process is left.
import { after, describe, it } from 'node:test';
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
const dir = mkdtempSync(join(tmpdir(), 'tortie-lab-test-'));
const env = { ...process.env, TORTIE_LAB_DIR: dir };
const made: string[] = [];

function labName(): string {
  const n = `t${randomBytes(3).toString('hex')}`;
  made.push(n);
  return n;
}

function lab(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout: 90_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(...args: string[]): Promise<string> {
  const r = await lab(...args);
  assert.equal(r.code, 0, `tortie-lab ${args.join(' ')} → ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const state = (name: string) => JSON.parse(readFileSync(join(dir, name, 'state.json'), 'utf8')) as LabState;
const allPids = (s: LabState) => [...s.processes, ...Object.values(s.pods).flatMap((p) => p.servers)];

function assertGone(name: string, s: LabState): void {
  assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), [], 'no namespace left');
  for (const p of allPids(s)) assert.equal(pidAlive(p.pid, p.startTime), false, `${p.role} (PID ${p.pid}) still running`);
  assert.equal(existsSync(join(dir, name)), false, 'lab directory removed');
}

describe('tortie-lab', { skip }, () => {
  after(async () => {
    for (const n of made) if (existsSync(join(dir, n, 'state.json'))) await lab('down', n);
    rmSync(dir, { recursive: true, force: true });
  });

  it('up (embedded), pods through CNI, probe, exec, ctl, pod del, down', async () => {
    const name = labName();
    const upOut = await ok('up', '--name', name, '--nodes', '2');
    assert.match(upOut, /namespaces: 4 created/);
    assert.match(upOut, /agents: 2 tortie-node running/);
    assert.match(upOut, new RegExp(`lab ${name} is up`));
    const s0 = state(name);
    assert.equal(s0.status, 'up');
    assert.equal(s0.processes.length, 2);
    for (const p of s0.processes) assert.ok(pidAlive(p.pid, p.startTime), p.role);
    assert.match(await ok('list'), new RegExp(`^${name} +up +bgp +embedded +2 +0 +2/2 running`, 'm'));

    // Two pods on ONE node (same-node routing), one on the other node.
    assert.match(await ok('pod', 'add', name, 'node1', 'default/a', '--serve', '80,53/udp', '--labels', 'app=web'), /pod default\/a on node1: 10\.233\.\d+\.\d+ \(cali[0-9a-f]{11}/);
    await ok('pod', 'add', name, 'node1', 'default/b', '--serve', '80');
    await ok('pod', 'add', name, 'node2', 'other/c', '--serve', '80');
    const r = await lab('pod', 'add', name, 'node1', 'default/a');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists/);

    // Same-node pairs answer at once. Cross-node pairs answer once the agents' BIRD mesh has
    // exchanged the blocks: "any" in the expectation until then (probe exits 0 either way), then
    // every pair must answer (polled, bounded: a hang guard, not a speed claim).
    const exp = join(dir, `${name}-expect.json`);
    writeFileSync(exp, JSON.stringify({ 'other/c': { '*': 'any' }, 'default/a': { 'other/c': 'any' }, 'default/b': { 'other/c': 'any' } }));
    type Matrix = Record<string, Record<string, boolean>>;
    const all = { 'default/a': { 'default/b': true, 'other/c': true }, 'default/b': { 'default/a': true, 'other/c': true }, 'other/c': { 'default/a': true, 'default/b': true } };
    let j: Matrix = {};
    for (const deadline = Date.now() + 60_000; ; ) {
      j = JSON.parse(await ok('probe', name, '--port', '80', '--json', '--expect', exp)) as Matrix;
      assert.equal(j['default/a']!['default/b'], true, 'same node: a → b at once');
      assert.equal(j['default/b']!['default/a'], true, 'same node: b → a at once');
      if (JSON.stringify(j) === JSON.stringify(all) || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(j, all, 'every pair answers, across the two nodes too');
    const text = await ok('probe', name, '--port', '80', '--expect', exp);
    assert.match(text, /^FROM \\ TO +default\/a +default\/b +other\/c$/m);
    assert.match(text, /^default\/a +- +ok +ok\?$/m, 'an "any" cell is marked ?');
    assert.match(text, /^other\/c +ok\? +ok\? +-$/m);
    assert.match(text, /6\/6 pairs answered; all as expected/);
    // UDP echo: only default/a serves 53/udp, so from b it answers, towards b it does not.
    const udp = JSON.parse((await lab('probe', name, '--port', '53', '--proto', 'udp', '--json')).stdout) as Record<string, Record<string, boolean>>;
    assert.equal(udp['default/b']!['default/a'], true);
    assert.equal(udp['default/a']!['default/b'], false);
    // Nothing listens on 81: exit 1 unless expected.
    assert.equal((await lab('probe', name, '--port', '81', '--timeout', '300')).code, 1);

    // exec in a pod and on a node.
    const s1 = state(name);
    const a = s1.pods['default/a']!;
    assert.match(await ok('exec', name, 'default/a', '--', 'ip', '-4', 'addr', 'show', 'eth0'), new RegExp(`inet ${a.ip!.replace(/\./g, '\\.')}/32`));
    assert.match(await ok('exec', name, 'node1', '--', 'ip', 'route'), new RegExp(`${a.ip!.replace(/\./g, '\\.')} dev ${a.hostIf}`));
    assert.equal((await lab('exec', name, 'default/a', '--', 'false')).code, 1);

    // tortiectl against the lab's datastore.
    const weps = await ok('ctl', name, '--', 'get', 'workloadendpoints', '-A');
    assert.match(weps, /^default +a +node1 +10\.233\.\d+\.\d+\/32 +cali/m);
    assert.match(weps, /^default +b +node1 /m);
    assert.match(weps, /^other +c +node2 /m);
    assert.match(await ok('ctl', name, '--', 'get', 'workloadendpoints', '-n', 'default', '-o', 'yaml'), /app: web/);

    // pod del: the endpoint, the namespace and the server go.
    const bServer = s1.pods['default/b']!.servers[0]!;
    await ok('pod', 'del', name, 'default/b');
    assert.doesNotMatch(await ok('ctl', name, '--', 'get', 'workloadendpoints', '-A'), /^default +b /m);
    assert.equal(netnsList().includes(s1.pods['default/b']!.netns), false);
    assert.equal(pidAlive(bServer.pid, bServer.startTime), false);

    const s2 = state(name);
    await ok('down', name);
    assertGone(name, s2);
  });

  it('up --datastore etcd runs etcd by PID in the lab; down stops it', { skip: !existsSync('/usr/bin/etcd') && '/usr/bin/etcd is not installed (apt-get install etcd-server)' }, async () => {
    const name = labName();
    const out = await ok('up', '--name', name, '--nodes', '1', '--datastore', 'etcd');
    assert.match(out, /etcd: http:\/\/10\.0\.0\.2:2379/);
    const s = state(name);
    const etcd = s.processes.find((p) => p.role === 'etcd')!;
    assert.ok(etcd && pidAlive(etcd.pid, etcd.startTime));
    assert.match(readFileSync(`/proc/${etcd.pid}/cmdline`, 'utf8'), /etcd/);
    assert.equal(s.datastore.endpoints, 'http://10.0.0.2:2379');
    await ok('pod', 'add', name, 'node1', 'default/x');
    assert.match(await ok('ctl', name, '--', 'get', 'ippool', '-o', 'wide'), /default-ipv4-ippool +10\.233\.64\.0\/18/);
    assert.match(await ok('ctl', name, '--', 'get', 'workloadendpoints', '-A'), /^default +x +node1 /m);
    const s2 = state(name);
    await ok('down', name);
    assertGone(name, s2);
  });

  it('down cleans up after the CLI is killed in the middle of up', async () => {
    const name = labName();
    const child = spawn(LAB, ['up', '--name', name, '--nodes', '3'], { env, stdio: 'ignore' });
    const stateFile = join(dir, name, 'state.json');
    const deadline = Date.now() + 20_000;
    for (;;) {
      const s = existsSync(stateFile) ? (() => { try { return state(name); } catch { return null; } })() : null;
      if (s && s.processes.length > 0) break;
      assert.ok(Date.now() < deadline, 'agents never recorded');
      await new Promise((r) => setTimeout(r, 5));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const s = state(name);
    assert.notEqual(s.status, 'up');
    await ok('down', name);
    assertGone(name, s);
  });

  it('preset seed: the seed nodes and pool', async () => {
    const name = labName();
    const out = await ok('up', '--name', name, '--preset', 'seed');
    assert.match(out, /note: seed pool has ipipMode: Always/);
    assert.match(out, /playcekube-worker02=10\.0\.0\.15/);
    assert.match(await ok('ctl', name, '--', 'get', 'ippool', '-o', 'wide'), /^default-pool +10\.233\.64\.0\/18 +true +Never +Never/m);
    await ok('pod', 'add', name, 'worker01', 'default/w1');
    assert.match(await ok('ctl', name, '--', 'get', 'workloadendpoints', '-A'), /^default +w1 +playcekube-worker01 /m);
    assert.match(await ok('ctl', name, '--node', 'worker01', '--', 'node', 'status'), /Calico process is running/);
    const s = state(name);
    await ok('down', name);
    assertGone(name, s);
  });

  it('refuses bad input without leaving anything', async () => {
    const name = labName();
    assert.equal((await lab('up', '--name', 'Bad_Name')).code, 1);
    assert.equal((await lab('up', '--name', name, '--mode', 'ipip')).code, 1);
    assert.equal((await lab('down', name)).code, 1);
    assert.equal((await lab('frobnicate')).code, 2);
    assert.deepEqual(netnsList().filter((n) => n.startsWith(`tl-${name}-`)), []);
  });
});
