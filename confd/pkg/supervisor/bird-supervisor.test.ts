// BirdSupervisor: its pure parts, then the real BIRD 2 run inside a network namespace this test
// creates (never the root one), with its socket, pid file and configuration in a temp dir.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseBirdShowProtocols } from './bird-protocols.js';
import { birdAnswers, birdCommand, replyFromLines } from './birdc.js';
import {
  BirdConfigError,
  BirdSupervisor,
  BirdSupervisorError,
  backoffDelay,
  birdCommandLine,
  describeExit,
  interpretConfigureReply,
  isBirdForSocket,
  nextFailureCount,
  planUpdate,
  type SupervisorLogger,
} from './bird-supervisor.js';
import { birdTestSkipReason, deleteNetns, killIfRunning, makeNetns, pidAlive, waitFor } from '../../../testing/bird-netns.js';

describe('pure parts', () => {
  it('backs off from 0.5 s doubling to 10 s', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffDelay(n)), [500, 1000, 2000, 4000, 8000, 10000, 10000, 10000]);
    assert.equal(backoffDelay(0), 500);
    assert.deepEqual([1, 2, 3].map((n) => backoffDelay(n, { initialMs: 100, maxMs: 250 })), [100, 200, 250]);
  });
  it('starts the failure count over after a long run', () => {
    assert.equal(nextFailureCount(0, 100), 1);
    assert.equal(nextFailureCount(3, 100), 4);
    assert.equal(nextFailureCount(5, 30_000), 1);
    assert.equal(nextFailureCount(5, 2_000, { stableMs: 1_000 }), 1);
  });
  it('plans an update', () => {
    assert.equal(planUpdate('a', 'a', true), 'unchanged');
    assert.equal(planUpdate('a', 'a', false), 'unchanged');
    assert.equal(planUpdate('a', 'b', true), 'reconfigure');
    assert.equal(planUpdate('a', 'b', false), 'replace-file');
    assert.equal(planUpdate(null, 'b', true), 'reconfigure');
  });
  it("reads BIRD's answer to configure", () => {
    const r = (...l: string[]) => interpretConfigureReply(replyFromLines(l));
    assert.deepEqual(r('0002-Reading configuration from /r/bird.cfg', '0003 Reconfigured'), { ok: true, message: 'Reconfigured' });
    assert.deepEqual(r('0004 Reconfiguration in progress'), { ok: true, message: 'Reconfiguration in progress' });
    assert.deepEqual(r('0019 Nothing to do'), { ok: true, message: 'Nothing to do' });
    assert.deepEqual(r('0006 Reconfiguration ignored, shutting down'), { ok: false, message: 'Reconfiguration ignored, shutting down' });
    assert.deepEqual(r('0002-Reading configuration from /r/bird.cfg', '8002 /r/bird.cfg:5:1 syntax error, unexpected CF_SYM_UNDEFINED'), {
      ok: false,
      message: '/r/bird.cfg:5:1 syntax error, unexpected CF_SYM_UNDEFINED',
    });
  });
  it('describes exits and builds the command line', () => {
    assert.equal(describeExit(1, null), 'exit code 1');
    assert.equal(describeExit(null, 'SIGKILL'), 'signal SIGKILL');
    assert.deepEqual(birdCommandLine('/usr/sbin/bird', ['/usr/sbin/ip', 'netns', 'exec', 'n1'], { config: '/r/bird.cfg', socket: '/r/bird.ctl', pid: '/r/bird.pid' }), [
      '/usr/sbin/ip', 'netns', 'exec', 'n1', '/usr/sbin/bird', '-f', '-c', '/r/bird.cfg', '-s', '/r/bird.ctl', '-P', '/r/bird.pid',
    ]);
  });
  it('recognises a BIRD on a given socket by its command line', () => {
    const cl = ['/usr/sbin/bird', '-f', '-c', '/r/bird.cfg', '-s', '/r/bird.ctl', '-P', '/r/bird.pid', ''].join('\0');
    assert.equal(isBirdForSocket(cl, '/r/bird.ctl'), true);
    assert.equal(isBirdForSocket(cl, '/other/bird.ctl'), false);
    assert.equal(isBirdForSocket(['/usr/bin/node', 'x.js', '-s', '/r/bird.ctl'].join('\0'), '/r/bird.ctl'), false);
  });
  it('reports a BIRD that dies while starting, with its last output', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tortie-fakebird-'));
    try {
      // Passes the `-p` check, then fails the way BIRD does when it cannot make its socket.
      const fake = join(d, 'bird');
      writeFileSync(fake, '#!/bin/sh\n[ "$1" = -p ] && exit 0\necho "bird: Cannot create control socket: Permission denied" >&2\nexit 1\n', { mode: 0o755 });
      const s = new BirdSupervisor({ runDir: join(d, 'run'), birdPath: fake });
      await assert.rejects(s.start('router id 192.0.2.1;\n'), (e: unknown) => {
        assert.ok(e instanceof BirdSupervisorError);
        assert.match(e.message, /^BIRD did not start: BIRD \(pid \d+\) exited with exit code 1 while starting; its last output: bird: Cannot create control socket: Permission denied$/);
        return true;
      });
      assert.equal(s.status().state, 'stopped');
      assert.equal(s.status().lastExit?.code, 1);
      const missing = new BirdSupervisor({ runDir: join(d, 'run2'), birdPath: join(d, 'no-such-bird') });
      await assert.rejects(missing.start('router id 192.0.2.1;\n'), /^BirdSupervisorError: cannot run .*no-such-bird -p -c .*bird\.cfg\.candidate: spawn .*ENOENT/);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
  it('refuses a run dir whose socket path is too long', () => {
    assert.throws(() => new BirdSupervisor({ runDir: '/' + 'x'.repeat(120) }), /longer than a unix socket address allows/);
  });
});

const CONFIG_1 = `router id 192.0.2.1;
protocol device { scan time 2; }
protocol static static1 { ipv4; route 10.233.10.0/24 blackhole; }
`;
const CONFIG_2 = CONFIG_1 + 'protocol static static2 { ipv4; route 10.233.11.0/24 blackhole; }\n';
const CONFIG_BAD = CONFIG_2 + 'protocol frobnicate { }\n';

async function protocols(sock: string): Promise<string[]> {
  return parseBirdShowProtocols((await birdCommand(sock, 'show protocols')).raw).map((r) => `${r.name} ${r.proto} ${r.state}`);
}

function memoryLog(): SupervisorLogger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    debug: (m) => lines.push(`DEBUG ${m}`),
    info: (m) => lines.push(`INFO ${m}`),
    warn: (m) => lines.push(`WARN ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
  };
}

const skip = birdTestSkipReason();

describe('BirdSupervisor with a real BIRD in a test namespace', { skip: skip ?? false }, () => {
  let ns = '';
  let dir = '';
  let sup: BirdSupervisor | undefined;
  const log = memoryLog();
  const seenPids: number[] = [];
  const extraPids: number[] = [];

  before(() => {
    ns = makeNetns('sup');
    dir = mkdtempSync(join(tmpdir(), 'tortie-birdsup-'));
  });
  after(async () => {
    try {
      await sup?.stop();
    } finally {
      for (const p of [...seenPids, ...extraPids]) killIfRunning(p);
      deleteNetns(ns);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an invalid configuration at start with BIRD’s message and runs nothing', async () => {
    const s = new BirdSupervisor({ runDir: join(dir, 'bad'), netns: ns });
    await assert.rejects(s.start(CONFIG_BAD), (e: unknown) => {
      assert.ok(e instanceof BirdConfigError);
      assert.match(e.birdMessage, /bird\.cfg\.candidate:5:\d+ syntax error/);
      assert.match(e.message, /^BIRD refused the configuration \(kept at .*bird\.cfg\.candidate\): bird: /);
      return true;
    });
    assert.equal(s.status().state, 'stopped');
    assert.equal(s.status().pid, null);
    assert.equal(existsSync(join(dir, 'bad', 'bird.cfg')), false);
    assert.equal(existsSync(join(dir, 'bad', 'bird.ctl')), false);
  });

  it('starts BIRD; show protocols over the socket lists the configured protocols', async () => {
    sup = new BirdSupervisor({ runDir: join(dir, 'run'), netns: ns, log, backoff: { initialMs: 200 } });
    await sup.start(CONFIG_1);
    const st = sup.status();
    assert.equal(st.state, 'running');
    assert.ok(st.pid && pidAlive(st.pid));
    seenPids.push(st.pid!);
    assert.equal(st.ready, true);
    assert.equal(st.restarts, 0);
    assert.ok(st.lastConfiguredAt instanceof Date);
    assert.equal(st.socketPath, join(dir, 'run', 'bird.ctl'));
    // BIRD is our child, in the test namespace, with the files we gave it.
    assert.equal(readFileSync(join(dir, 'run', 'bird.pid'), 'utf8').trim(), String(st.pid));
    assert.match(readFileSync(`/proc/${st.pid}/cmdline`, 'utf8').split('\0').join(' '), new RegExp(`^/usr/sbin/bird -f -c ${dir}/run/bird.cfg -s ${dir}/run/bird.ctl -P ${dir}/run/bird.pid`));
    assert.equal(readFileSync(join(dir, 'run', 'bird.cfg'), 'utf8'), CONFIG_1);
    assert.deepEqual(await protocols(st.socketPath), ['device1 Device up', 'static1 Static up']);
  });

  it('runs BIRD in the test namespace, not the root one', () => {
    const pid = sup!.status().pid!;
    assert.notEqual(readlinkSync(`/proc/${pid}/ns/net`), readlinkSync('/proc/self/ns/net'));
    assert.equal(readlinkSync(`/proc/${pid}/ns/net`), `net:[${statSync(`/var/run/netns/${ns}`).ino}]`);
  });

  it('update with the same text does nothing; a changed one is loaded by configure', async () => {
    const pid = sup!.status().pid;
    assert.deepEqual(await sup!.update(CONFIG_1), { outcome: 'unchanged', message: 'configuration unchanged' });
    const r = await sup!.update(CONFIG_2);
    assert.equal(r.outcome, 'reconfigured', r.message);
    assert.equal(r.message, 'Reconfigured');
    assert.match(r.reply!.raw, /^0002-Reading configuration from .*\/run\/bird\.cfg\n0003 Reconfigured\n$/);
    assert.equal(sup!.status().pid, pid, 'same BIRD, reconfigured in place');
    await waitFor('static2 up', async () => (await protocols(sup!.socketPath)).includes('static2 Static up'), 5000);
    assert.deepEqual(await protocols(sup!.socketPath), ['device1 Device up', 'static1 Static up', 'static2 Static up']);
    assert.equal(readFileSync(sup!.configPath, 'utf8'), CONFIG_2);
  });

  it('refuses an invalid configuration with BIRD’s message; the previous one keeps running', async () => {
    const pid = sup!.status().pid;
    const r = await sup!.update(CONFIG_BAD);
    assert.equal(r.outcome, 'refused');
    assert.match(r.message, /^BIRD refused the new configuration \(kept at .*bird\.cfg\.candidate\): bird: .*bird\.cfg\.candidate:5:\d+ syntax error.*; still running the previous configuration$/);
    assert.equal(sup!.status().lastError, r.message);
    assert.equal(sup!.status().pid, pid);
    assert.equal(readFileSync(sup!.configPath, 'utf8'), CONFIG_2);
    assert.equal(readFileSync(sup!.candidatePath, 'utf8'), CONFIG_BAD);
    assert.deepEqual(await protocols(sup!.socketPath), ['device1 Device up', 'static1 Static up', 'static2 Static up']);
  });

  it('restarts BIRD after kill -9, logging the signal; the socket answers again', async () => {
    const before = sup!.status();
    process.kill(before.pid!, 'SIGKILL');
    await waitFor('a new BIRD answering', async () => {
      const s = sup!.status();
      return s.pid !== null && s.pid !== before.pid && s.ready && (await birdAnswers(s.socketPath, 500));
    });
    const st = sup!.status();
    seenPids.push(st.pid!);
    assert.equal(st.restarts, 1);
    assert.equal(st.lastExit?.signal, 'SIGKILL');
    assert.equal(st.lastExit?.pid, before.pid);
    assert.match(st.lastError!, new RegExp(`^BIRD \\(pid ${before.pid}\\) exited with signal SIGKILL after `));
    assert.ok(log.lines.some((l) => new RegExp(`^WARN BIRD \\(pid ${before.pid}\\) exited with signal SIGKILL after [\\d.]+ s; restarting it in 200 ms \\(restart #1\\)$`).test(l)), log.lines.join('\n'));
    assert.ok(log.lines.some((l) => l.startsWith(`INFO BIRD restarted (pid ${st.pid})`)));
    assert.ok(st.lastConfiguredAt! >= st.lastExit!.at);
    // It runs the last accepted configuration.
    assert.deepEqual(await protocols(st.socketPath), ['device1 Device up', 'static1 Static up', 'static2 Static up']);
    assert.equal(pidAlive(before.pid!), false);
  });

  it('an update while BIRD is down (restart pending) goes into the file its restart loads', async () => {
    const before = sup!.status().pid!;
    process.kill(before, 'SIGKILL');
    await waitFor('the supervisor to notice', () => sup!.status().pid === null, 5000, 5);
    const CONFIG_3 = CONFIG_2 + 'protocol static static3 { ipv4; route 10.233.12.0/24 blackhole; }\n';
    const r = await sup!.update(CONFIG_3);
    assert.equal(r.outcome, 'deferred', r.message);
    assert.match(r.message, /^BIRD is not running at the moment \(restart pending\); the new configuration is in .*\/run\/bird\.cfg for its next start$/);
    await waitFor('the restart', () => sup!.status().ready, 15_000);
    seenPids.push(sup!.status().pid!);
    assert.equal(sup!.status().restarts, 2);
    assert.ok(log.lines.some((l) => l.includes(`restarting it in 400 ms (restart #2)`)), 'second failure in a row: twice the delay');
    assert.deepEqual(await protocols(sup!.socketPath), ['device1 Device up', 'static1 Static up', 'static2 Static up', 'static3 Static up']);
    assert.deepEqual(await sup!.update(CONFIG_3), { outcome: 'unchanged', message: 'configuration unchanged' });
  });

  it('refuses a second supervisor on the same run dir while BIRD answers there', async () => {
    const other = new BirdSupervisor({ runDir: join(dir, 'run'), netns: ns });
    await assert.rejects(other.start(CONFIG_1), (e: unknown) => {
      assert.ok(e instanceof BirdSupervisorError);
      assert.match(e.message, /a BIRD already answers on .*\/run\/bird\.ctl \(pid \d+ in .*bird\.pid\); refusing to start a second one/);
      return true;
    });
    assert.ok(await birdAnswers(sup!.socketPath), 'the first one is untouched');
  });

  it('stop() ends BIRD by PID and leaves no process, socket or pid file', async () => {
    const pid = sup!.status().pid!;
    await sup!.stop();
    assert.equal(pidAlive(pid), false);
    assert.equal(existsSync(sup!.socketPath), false);
    assert.equal(existsSync(sup!.pidPath), false);
    const st = sup!.status();
    assert.equal(st.state, 'stopped');
    assert.equal(st.pid, null);
    // Stopping is not a death: no restart follows.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(sup!.status().pid, null);
    assert.equal(sup!.status().restarts, 2);
    await assert.rejects(sup!.update(CONFIG_1), /is stopped: start it first/);
  });

  it('takeOver stops a BIRD left running on the run dir (an agent restarting after a crash)', async () => {
    const runDir = join(dir, 'orphan');
    mkdirSync(runDir);
    writeFileSync(join(runDir, 'bird.cfg'), CONFIG_1);
    // A BIRD this test starts itself, as a crashed agent's supervisor would have left it.
    const argv = birdCommandLine('/usr/sbin/bird', ['/usr/sbin/ip', 'netns', 'exec', ns], {
      config: join(runDir, 'bird.cfg'),
      socket: join(runDir, 'bird.ctl'),
      pid: join(runDir, 'bird.pid'),
    });
    const orphan = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    extraPids.push(orphan.pid!);
    await waitFor('the left-over BIRD to answer', () => birdAnswers(join(runDir, 'bird.ctl'), 500));
    const second = new BirdSupervisor({ runDir, netns: ns, takeOver: true, log });
    try {
      await second.start(CONFIG_2);
      seenPids.push(second.status().pid!);
      assert.equal(pidAlive(orphan.pid!), false);
      assert.notEqual(second.status().pid, orphan.pid);
      assert.ok(log.lines.includes(`WARN Stopping the BIRD left running on ${runDir}/bird.ctl (pid ${orphan.pid}) before starting a new one`));
      assert.deepEqual(await protocols(second.socketPath), ['device1 Device up', 'static1 Static up', 'static2 Static up']);
    } finally {
      await second.stop();
    }
  });

  it("stop({ graceful: true }) asks BIRD for `graceful restart` (no Cease to its peers; lab/kube-manifest.test.ts shows the peers' routes kept): BIRD exits by itself, nothing left", async () => {
    const runDir = join(dir, 'graceful');
    mkdirSync(runDir);
    const g = new BirdSupervisor({ runDir, netns: ns, log });
    await g.start(CONFIG_1);
    const pid = g.status().pid!;
    seenPids.push(pid);
    const t0 = Date.now();
    await g.stop({ graceful: true });
    assert.equal(pidAlive(pid), false);
    assert.ok(Date.now() - t0 < 5_000, 'BIRD left within the stop timeout (no SIGTERM/SIGKILL needed)');
    assert.ok(log.lines.includes(`INFO Asked BIRD (pid ${pid}) for a graceful restart: peers keep this node's routes until it is back`), log.lines.join('\n'));
    assert.ok(!log.lines.some((l) => l.includes(`BIRD (pid ${pid}) did not`)), log.lines.join('\n'));
    assert.equal(existsSync(g.socketPath), false);
    assert.equal(g.status().state, 'stopped');
  });
});
