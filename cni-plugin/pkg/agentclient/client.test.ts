// callAgent against fake agents on unix sockets in temporary directories.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentRequest } from '../agentapi/protocol.js';
import { CniError } from '../skel/errors.js';
import { SAMPLE_RESULT, type FakeAgent, startFakeAgent } from './testdata/fake-agent.js';
import { COMMAND_TIMEOUTS, type CallOptions, callAgent, parseAgentResponse } from './index.js';

const FAST: CallOptions = { connectTimeoutMs: 2_000, totalTimeoutMs: 5_000 };

const req = (command: AgentRequest['command'] = 'ADD'): AgentRequest => ({
  command,
  containerId: 'c0ffee',
  netns: '/var/run/netns/test',
  ifname: 'eth0',
  args: { K8S_POD_NAMESPACE: 'ns', K8S_POD_NAME: 'pod' },
  path: ['/opt/cni/bin'],
  config: { cniVersion: '1.0.0', name: 'net', type: 'tortie', ipam: { type: 'tortie-ipam' } },
  cniVersion: '1.0.0',
});

async function cniError(p: Promise<unknown>): Promise<CniError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof CniError, `expected a CniError, got ${String(e)}`);
    return e;
  }
  assert.fail('expected a rejection');
}

describe('callAgent', () => {
  let agent: FakeAgent;
  before(async () => {
    agent = await startFakeAgent();
  });
  after(async () => {
    await agent.close();
  });

  it('sends one request line and returns the parsed answer', async () => {
    agent.set({});
    const before = agent.lines.length;
    const r = await callAgent(agent.socket, req(), FAST);
    assert.equal(r.ok, true);
    assert.ok(r.ok && r.result);
    assert.deepEqual(r.result!.ips, [{ address: '10.233.64.5/32', interface: 1 }]);
    assert.equal(agent.lines.length, before + 1);
    assert.deepEqual(JSON.parse(agent.lines.at(-1)!), req());
  });

  it('ok without a result (DEL)', async () => {
    agent.set({});
    assert.deepEqual(await callAgent(agent.socket, req('DEL'), FAST), { ok: true });
  });

  it('returns error answers as they are (the caller maps them)', async () => {
    agent.set({ reply: () => ({ ok: false, code: 11, msg: 'datastore locked', details: 'try later' }) });
    assert.deepEqual(await callAgent(agent.socket, req(), FAST), { ok: false, code: 11, msg: 'datastore locked', details: 'try later' });
    agent.set({ reply: () => ({ ok: false, code: 100, msg: 'no addresses' }) });
    assert.deepEqual(await callAgent(agent.socket, req(), FAST), { ok: false, code: 100, msg: 'no addresses' });
  });

  it('accepts a final answer without its newline', async () => {
    agent.set({ reply: () => ({ raw: JSON.stringify({ ok: true }) }) });
    assert.deepEqual(await callAgent(agent.socket, req('CHECK'), FAST), { ok: true });
  });

  it('a slow agent → code 11 when the bound passes, naming the time', async () => {
    agent.set({ delayMs: 5_000 });
    const t = Date.now();
    const e = await cniError(callAgent(agent.socket, req(), { connectTimeoutMs: 2_000, totalTimeoutMs: 300 }));
    const took = Date.now() - t;
    assert.equal(e.code, 11);
    assert.match(e.message, /did not answer the ADD request within 0\.3 s/);
    // It waited for the bound (the agent, 5 s away, did not answer first: the message says so).
    assert.ok(took >= 290, `took ${took} ms`);
  });

  it('garbage → 999 naming the problem', async () => {
    agent.set({ reply: () => ({ raw: 'hello there\n' }) });
    let e = await cniError(callAgent(agent.socket, req(), FAST));
    assert.equal(e.code, 999);
    assert.match(e.message, /malformed response from tortie-node: not JSON .*"hello there"/);

    agent.set({ reply: () => ({ raw: '[1,2]\n' }) });
    e = await cniError(callAgent(agent.socket, req(), FAST));
    assert.equal(e.code, 999);
    assert.match(e.message, /expected a JSON object, got an array/);

    agent.set({ reply: () => ({ raw: '{"result":{}}\n' }) });
    e = await cniError(callAgent(agent.socket, req(), FAST));
    assert.match(e.message, /"ok" must be true or false/);

    agent.set({ reply: () => ({ raw: '{"ok":false,"msg":"x"}\n' }) });
    e = await cniError(callAgent(agent.socket, req(), FAST));
    assert.equal(e.code, 999);
    assert.match(e.message, /error "code" must be a positive integer/);

    agent.set({ reply: () => ({ raw: '{"ok":true,"result":{"ips":[{"address":"10.1.2.3"}]}}\n' }) });
    e = await cniError(callAgent(agent.socket, req(), FAST));
    assert.equal(e.code, 999);
    assert.match(e.message, /ips\[0\]\.address "10\.1\.2\.3" is not IP\/prefix/);

    agent.set({ reply: () => ({ raw: '{"ok":tr' }) });
    e = await cniError(callAgent(agent.socket, req(), FAST));
    assert.equal(e.code, 999);
  });

  it('closed without an answer → 11', async () => {
    agent.set({ reply: () => null });
    const e = await cniError(callAgent(agent.socket, req('DEL'), FAST));
    assert.equal(e.code, 11);
    assert.match(e.message, /closed the connection without answering the DEL request/);
  });

  it('answers split over many writes are reassembled', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
    const path = join(dir, 's.sock');
    const text = JSON.stringify({ ok: true, result: SAMPLE_RESULT }) + '\n';
    const server = createServer((c) => {
      c.once('data', async () => {
        for (let i = 0; i < text.length; i += 7) {
          c.write(text.slice(i, i + 7));
          await new Promise((r) => setImmediate(r));
        }
        c.end();
      });
    });
    await new Promise<void>((r) => server.listen(path, r));
    try {
      const r = await callAgent(path, req(), FAST);
      assert.ok(r.ok && r.result?.interfaces?.length === 2);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('callAgent without an agent', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-noagent-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('no socket → 11 naming the socket path', async () => {
    const path = join(dir, 'missing.sock');
    const e = await cniError(callAgent(path, req(), FAST));
    assert.equal(e.code, 11);
    assert.equal(e.message.startsWith(`tortie-node is not running on this node (cannot connect to ${path}): ENOENT`), true, e.message);
  });

  it('a file that nobody listens on → 11', async () => {
    const path = join(dir, 'stale.sock');
    writeFileSync(path, '');
    const e = await cniError(callAgent(path, req(), FAST));
    assert.equal(e.code, 11);
    assert.match(e.message, /is not running on this node .*ECONNREFUSED/);
  });

  it('an agent that stopped accepting: busy → 11, accepted-but-silent → 11 at the deadline', async () => {
    const path = join(dir, 'wedged.sock');
    // A separate process listens with a backlog of 1 and then blocks its event loop.
    const child = spawn(
      process.execPath,
      [
        '-e',
        `require('net').createServer(() => {}).listen({ path: ${JSON.stringify(path)}, backlog: 1 }, () => {
           process.stdout.write('ready\\n');
           Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10000);
         });`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise((r) => child.stdout.once('data', r));
      const results = await Promise.allSettled(
        Array.from({ length: 5 }, () => callAgent(path, req(), { connectTimeoutMs: 500, totalTimeoutMs: 700 })),
      );
      const errs = results.map((r) => (r.status === 'rejected' ? (r.reason as CniError) : null));
      assert.ok(errs.every((e) => e instanceof CniError && e.code === 11), JSON.stringify(errs.map((e) => e?.message)));
      assert.ok(errs.some((e) => /busy/.test(e!.message)), 'some connections found the backlog full');
      assert.ok(errs.some((e) => /did not answer/.test(e!.message)), 'some connections were queued and timed out');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('parseAgentResponse and timeouts', () => {
  it('keeps details only when non-empty', () => {
    assert.deepEqual(parseAgentResponse('{"ok":false,"code":7,"msg":"m","details":""}'), { ok: false, code: 7, msg: 'm' });
    assert.throws(() => parseAgentResponse('{"ok":false,"code":7,"msg":"m","details":5}'), /details/);
  });

  it('every command has a bounded timeout, ADD the documented 60 s', () => {
    for (const c of ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC'] as const) {
      assert.ok(COMMAND_TIMEOUTS[c].connectTimeoutMs > 0 && COMMAND_TIMEOUTS[c].totalTimeoutMs <= 120_000);
    }
    assert.equal(COMMAND_TIMEOUTS.ADD.totalTimeoutMs, 60_000);
  });
});
