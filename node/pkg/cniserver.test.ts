import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentRequest, AgentResponse } from '../../cni-plugin/pkg/agentapi/protocol.js';
import { CniServerError, CODE_DECODE, CODE_INTERNAL, startCniServer } from './cniserver.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function sockPath(): string {
  const d = mkdtempSync(join(tmpdir(), 'tortie-cni-'));
  dirs.push(d);
  return join(d, 'run', 'cni.sock');
}

const req = (containerId: string, command: AgentRequest['command'] = 'ADD'): AgentRequest => ({
  command,
  containerId,
  netns: '/var/run/netns/x',
  ifname: 'eth0',
  args: { K8S_POD_NAME: 'p' },
  path: ['/opt/cni/bin'],
  config: { cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tortie' },
  cniVersion: '1.0.0',
});

/** Sends raw bytes (optionally half-closing) and returns the raw answer. */
function exchange(path: string, payload: string | Buffer, opts: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let out = '';
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.on('connect', () => {
      if (opts.end ?? true) s.end(payload);
      else s.write(payload);
    });
  });
}

async function call(path: string, r: unknown): Promise<AgentResponse> {
  const out = await exchange(path, JSON.stringify(r) + '\n');
  assert.ok(out.endsWith('\n'), 'one line');
  assert.equal(out.indexOf('\n'), out.length - 1, 'exactly one line');
  return JSON.parse(out) as AgentResponse;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('serves concurrent requests, one line each; socket 0600 in a 0755 directory', async () => {
  const path = sockPath();
  let inFlight = 0;
  let maxInFlight = 0;
  const srv = await startCniServer(path, async (r) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await sleep(20 + Math.floor(Math.random() * 30));
    inFlight--;
    return { ok: true, result: { cniVersion: r.cniVersion, interfaces: [], ips: [], routes: [], dns: {}, note: r.containerId } as never };
  });
  try {
    assert.equal(statSync(join(path, '..')).mode & 0o777, 0o755);
    const st = lstatSync(path);
    assert.ok(st.isSocket());
    assert.equal(st.mode & 0o777, 0o600);

    const ids = Array.from({ length: 40 }, (_, i) => `container-${i}`);
    const answers = await Promise.all(ids.map((id) => call(path, req(id))));
    answers.forEach((a, i) => {
      assert.equal(a.ok, true);
      assert.equal((a as unknown as { result: { note: string } }).result.note, ids[i]);
    });
    assert.ok(maxInFlight > 1, `handled concurrently (max in flight ${maxInFlight})`);
  } finally {
    await srv.close();
  }
  assert.equal(existsSync(path), false, 'socket removed on close');
});

test('malformed requests get code 6; a throwing handler code 999', async () => {
  const path = sockPath();
  const seen: string[] = [];
  const srv = await startCniServer(
    path,
    async (r) => {
      if (r.containerId === 'boom') throw new Error('kaboom');
      return { ok: true };
    },
    {
      maxRequestBytes: 64 * 1024,
      readTimeoutMs: 300,
      onRequest: (i) => seen.push(`${i.command ?? '-'}:${i.response.ok ? 'ok' : (i.response as { code: number }).code}`),
    },
  );
  try {
    const notJson = JSON.parse(await exchange(path, '{"command": ADD}\n'));
    assert.equal(notJson.ok, false);
    assert.equal(notJson.code, CODE_DECODE);
    assert.match(notJson.msg, /^malformed request: not valid JSON/);

    const badCmd = await call(path, { ...req('x'), command: 'FROB' });
    assert.deepEqual(badCmd, { ok: false, code: CODE_DECODE, msg: 'malformed request: command "FROB" is not one of ADD, DEL, CHECK, STATUS, GC' });
    const badArgs = await call(path, { ...req('x'), args: { a: 1 } });
    assert.equal((badArgs as { msg: string }).msg, 'malformed request: args must be an object of strings');
    const noConfig = await call(path, { ...req('x'), config: undefined });
    assert.equal((noConfig as { msg: string }).msg, 'malformed request: config must be an object');
    const arr = await call(path, [1, 2]);
    assert.equal((arr as { msg: string }).msg, 'malformed request: request is not a JSON object');

    const huge = await exchange(path, JSON.stringify({ ...req('x'), config: { pad: 'x'.repeat(100_000) } }) + '\n');
    assert.deepEqual(JSON.parse(huge), { ok: false, code: CODE_DECODE, msg: 'malformed request: larger than 65536 bytes' });

    // A client that never finishes its line is answered after the read timeout.
    const slow = JSON.parse(await exchange(path, '{"command":"ADD"', { end: false }));
    assert.equal(slow.code, CODE_DECODE);
    assert.match(slow.msg, /no complete request line within 300 ms/);

    const boom = await call(path, req('boom'));
    assert.deepEqual(boom, { ok: false, code: CODE_INTERNAL, msg: 'internal error in the node agent: kaboom' });

    // A request without the trailing newline, ended by EOF, still counts.
    const noNl = JSON.parse(await exchange(path, JSON.stringify(req('y', 'DEL'))));
    assert.deepEqual(noNl, { ok: true });

    // The server is still fine after all that.
    assert.deepEqual(await call(path, req('z', 'CHECK')), { ok: true });
    assert.deepEqual(seen, ['-:6', 'FROB:6', 'ADD:6', 'ADD:6', '-:6', '-:6', '-:6', 'ADD:999', 'DEL:ok', 'CHECK:ok']);
  } finally {
    await srv.close();
  }
});

test('a stale socket left by a dead agent is replaced', async () => {
  const path = sockPath();
  // Another process listens on the path and is killed with SIGKILL: the socket file stays.
  const child = spawn(
    process.execPath,
    ['-e', `require('fs').mkdirSync(require('path').dirname(${JSON.stringify(path)}),{recursive:true});` +
      `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('listening'))`],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  process.kill(child.pid!, 'SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(lstatSync(path).isSocket(), 'stale socket file left behind');

  const srv = await startCniServer(path, async () => ({ ok: true }));
  try {
    assert.deepEqual(await call(path, req('a')), { ok: true });
  } finally {
    await srv.close();
  }
});

test('a live agent on the socket makes the second one refuse to start', async () => {
  const path = sockPath();
  const first = await startCniServer(path, async () => ({ ok: true }));
  try {
    await assert.rejects(
      startCniServer(path, async () => ({ ok: false, code: 1, msg: 'second' })),
      (e: unknown) => e instanceof CniServerError && /another agent is already listening on .*cni\.sock/.test(e.message),
    );
    // The first one is untouched, its socket still there and answering.
    assert.deepEqual(await call(path, req('a')), { ok: true });
  } finally {
    await first.close();
  }
});

test('something else at the socket path is left alone', async () => {
  const path = sockPath();
  await startCniServer(path, async () => ({ ok: true })).then((s) => s.close()); // creates the directory
  writeFileSync(path, 'precious');
  await assert.rejects(startCniServer(path, async () => ({ ok: true })), /exists and is not a socket/);
  assert.equal(readFileSync(path, 'utf8'), 'precious');
});

test('close lets a request in flight finish', async () => {
  const path = sockPath();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const begun = new Promise<void>((r) => (started = r));
  const srv = await startCniServer(path, async () => {
    started();
    await gate;
    return { ok: true };
  });
  const answer = call(path, req('slow'));
  await begun;
  const closed = srv.close();
  await sleep(50);
  release();
  assert.deepEqual(await answer, { ok: true });
  await closed;
});

test('the handler is told when its plugin goes away before the answer (killed, or its timeout passed)', async () => {
  const path = sockPath();
  let seen!: (s: AbortSignal) => void;
  const gotSignal = new Promise<AbortSignal>((r) => (seen = r));
  let aborted!: (reason: unknown) => void;
  const abortedP = new Promise<unknown>((r) => (aborted = r));
  const srv = await startCniServer(path, async (_r, signal) => {
    seen(signal);
    signal.addEventListener('abort', () => aborted(signal.reason));
    await new Promise((r) => setTimeout(r, 200));
    return { ok: true };
  });
  try {
    // A client that stays connected while waiting: the signal must not fire.
    const patient = exchange(path, JSON.stringify(req('patient')) + '\n', { end: false });
    const s1 = await gotSignal;
    assert.deepEqual(JSON.parse(await patient), { ok: true });
    assert.equal(s1.aborted, false, 'a client that waited for its answer was reported gone');
    // A client that sends its request and dies.
    const s = connect(path);
    await new Promise<void>((r) => s.on('connect', () => r()));
    s.write(JSON.stringify(req('doomed')) + '\n');
    await sleep(30);
    s.destroy();
    const reason = await Promise.race([abortedP, sleep(2000).then(() => 'no abort')]);
    assert.ok(reason instanceof Error && reason.name === 'PluginGoneError', `signal reason: ${String(reason)}`);
  } finally {
    await srv.close();
  }
});
