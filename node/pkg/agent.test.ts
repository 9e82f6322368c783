import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AgentRequest, AgentResponse } from '../../cni-plugin/pkg/agentapi/protocol.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { openEtcdV3 } from '../../libcalico-go/lib/backend/etcdv3/etcdv3.js';
import { freePort, startEtcd } from '../../testing/etcd.js';
import { parseIpAddrJson } from './autodetect.js';
import { type Agent, startAgent } from './agent.js';
import { createLogger } from '../../libcalico-go/lib/logutils/index.js';
import { Registry } from '../../libcalico-go/lib/metrics/index.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tortie-agent-'));
  dirs.push(d);
  return d;
}

const IFACES = parseIpAddrJson(
  JSON.stringify([{ ifindex: 2, ifname: 'eth0', mtu: 1500, operstate: 'UP', addr_info: [{ family: 'inet', local: '10.0.0.21', prefixlen: 16 }] }]),
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function httpGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}

function cni(path: string, r: AgentRequest): Promise<AgentResponse> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    let out = '';
    s.on('data', (d) => (out += d));
    s.on('end', () => resolve(JSON.parse(out)));
    s.on('error', reject);
    s.on('connect', () => s.end(JSON.stringify(r) + '\n'));
  });
}

const ADD: AgentRequest = {
  command: 'ADD',
  containerId: 'c0ffee0123456789',
  netns: '/var/run/netns/pod',
  ifname: 'eth0',
  args: {},
  path: [],
  config: { cniVersion: '1.0.0', name: 'k8s-pod-network', type: 'tortie' },
  cniVersion: '1.0.0',
};

async function waitFor(what: string, fn: () => Promise<boolean>, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (await fn()) return Date.now() - t0;
    await sleep(100);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

function baseEnv(dir: string): Record<string, string> {
  return {
    NODENAME: 'node-a',
    IP: '10.0.0.21/16',
    TORTIE_RUN_DIR: join(dir, 'run'),
    TORTIE_STATE_DIR: join(dir, 'state'),
    DATASTORE_PATH: join(dir, 'datastore.db'),
    FELIX_HEALTHENABLED: 'true',
    FELIX_HEALTHHOST: '127.0.0.1',
    FELIX_HEALTHPORT: '0',
    FELIX_PROMETHEUSMETRICSENABLED: 'true',
    FELIX_PROMETHEUSMETRICSHOST: '127.0.0.1',
    FELIX_PROMETHEUSMETRICSPORT: '0',
    CALICO_IPV4POOL_IPIP: 'Always',
  };
}

test('embedded store: ready, CNI requests reach the handler with context, metrics, clean stop', async () => {
  const dir = tmp();
  const lines: string[] = [];
  const seen: string[] = [];
  const agent: Agent = await startAgent(baseEnv(dir), {
    cniHandler: async (req, ctx) => {
      seen.push(`${req.command} ${req.containerId} on ${ctx.nodeName} ready=${ctx.isReady()} store=${ctx.store()?.type}`);
      return { ok: true };
    },
    log: createLogger('agent.ts', { sink: (l) => lines.push(l) }),
    registry: new Registry(),
    handleSignals: false,
    startupDeps: { interfaces: async () => IFACES, version: 'v0.0.0-test' },
  });
  const health = `http://127.0.0.1:${agent.healthAddress!.port}`;
  const metrics = `http://127.0.0.1:${agent.metricsAddress!.port}/metrics`;
  try {
    await agent.ready;
    assert.equal(agent.nodeName, 'node-a');
    assert.equal((await httpGet(`${health}/readiness`)).status, 200);
    assert.equal((await httpGet(`${health}/liveness`)).status, 200);
    assert.deepEqual(await cni(agent.cniSocket, ADD), { ok: true });
    assert.deepEqual(seen, ['ADD c0ffee0123456789 on node-a ready=true store=embedded']);
    const m = (await httpGet(metrics)).body;
    assert.match(m, /^tortie_cni_requests_total\{command="ADD",result="ok"\} 1$/m);
    assert.match(m, /^tortie_cni_request_duration_seconds_count\{command="ADD"\} 1$/m);
    assert.match(m, /^tortie_datastore_up 1$/m);
    assert.match(m, /^tortie_config_drift_findings 0$/m);
    assert.match(m, /^process_resident_memory_bytes \d+$/m);
    assert.equal(readFileSync(join(dir, 'state', 'nodename'), 'utf8'), 'node-a');
    assert.equal(readFileSync(join(dir, 'state', 'mtu'), 'utf8'), '1480');
    // Felix-like lines.
    assert.ok(lines.every((l) => /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \[(INFO|WARNING|ERROR|DEBUG)\]\[\d+\] [\w.-]+: /.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => / startup\.ts: Created Node node-a with IPv4 address 10\.0\.0\.21\/16$/.test(l)), lines.join('\n'));
    assert.ok(lines.some((l) => / cniserver\.ts: CNI ADD container c0ffee012345: ok \(/.test(l)));

    // A second agent for the same socket refuses to start and leaves the first one alone.
    await assert.rejects(
      startAgent(baseEnv(dir), {
        cniHandler: async () => ({ ok: false, code: 1, msg: 'second' }),
        log: createLogger('agent.ts', { sink: () => {} }),
        registry: new Registry(),
        handleSignals: false,
      }),
      /another agent is already listening on .*cni\.sock/,
    );
    assert.deepEqual(await cni(agent.cniSocket, ADD), { ok: true });
  } finally {
    await agent.stop();
  }
  assert.equal(existsSync(agent.cniSocket), false, 'socket removed');
  await assert.rejects(httpGet(`${health}/readiness`), /ECONNREFUSED/);
});

/** A TCP forwarder to etcd that the test can cut and restore on the same port. */
class Cable {
  private server: Server | undefined;
  private readonly socks = new Set<Socket>();
  constructor(
    readonly port: number,
    private readonly target: number,
  ) {}
  plug(): Promise<void> {
    this.server = createServer((c) => {
      const u = connect(this.target, '127.0.0.1');
      for (const s of [c, u]) {
        this.socks.add(s);
        s.on('close', () => this.socks.delete(s));
        s.on('error', () => {});
      }
      c.pipe(u).pipe(c);
    });
    return new Promise((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.port, '127.0.0.1', () => resolve());
    });
  }
  unplug(): Promise<void> {
    for (const s of this.socks) s.destroy();
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

test('etcd: down at start → not ready but serving; up → ready; down again → 503 within seconds', async (t) => {
  const etcd = await startEtcd();
  t.after(() => etcd.stop());
  const target = Number(new URL(etcd.endpoints[0]).port);
  const cable = new Cable(await freePort(), target);
  t.after(() => cable.unplug());

  const dir = tmp();
  const lines: string[] = [];
  const agent = await startAgent(
    { ...baseEnv(dir), DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: `http://127.0.0.1:${cable.port}`, CLUSTER_TYPE: 'k8s,bgp' },
    {
      cniHandler: async (req, ctx) => ({ ok: false, code: 11, msg: `not yet (${req.command}, ready=${ctx.isReady()})` }),
      log: createLogger('agent.ts', { sink: (l) => lines.push(l), level: 'DEBUG' }),
      registry: new Registry(),
      handleSignals: false,
      startupDeps: { interfaces: async () => IFACES, version: 'v0.0.0-test' },
      supervisor: { intervalMs: 200, checkTimeoutMs: 1000, backoffInitialMs: 200, backoffMaxMs: 1000 },
    },
  );
  t.after(() => agent.stop());
  const readiness = async () => (await httpGet(`http://127.0.0.1:${agent.healthAddress!.port}/readiness`)).status;
  const liveness = async () => (await httpGet(`http://127.0.0.1:${agent.healthAddress!.port}/liveness`)).status;

  // Datastore unreachable from the start: the agent runs, answers, and says not ready.
  await sleep(800);
  assert.equal(await readiness(), 503);
  assert.equal(await liveness(), 200, 'an unreachable datastore must not fail liveness (no restart loop)');
  assert.deepEqual(await cni(agent.cniSocket, ADD), { ok: false, code: 11, msg: 'not yet (ADD, ready=false)' });
  const down = lines.filter((l) => /Cannot reach the datastore/.test(l));
  assert.equal(down.length, 1, `logged once, not per check: ${lines.join('\n')}`);
  assert.match(down[0], /\[WARNING\]\[\d+\] datastore-supervisor\.ts: Cannot reach the datastore: /);

  // The datastore appears: startup runs, the agent becomes ready.
  await cable.plug();
  await agent.ready;
  await waitFor('readiness 200', async () => (await readiness()) === 200, 5000);
  const store = openEtcdV3({ endpoints: etcd.endpoints });
  try {
    const client = new ResourceClient(store);
    assert.equal(((await client.get('Node', 'node-a'))!.spec as { bgp: { ipv4Address: string } }).bgp.ipv4Address, '10.0.0.21/16');
    assert.equal(((await client.get('ClusterInformation', 'default'))!.spec as { clusterType: string }).clusterType, 'k8s,bgp');
    assert.equal((await client.list('IPPool'))[0].metadata.name, 'default-ipv4-ippool');
  } finally {
    await store.close();
  }

  // Cut it: readiness flips to 503 (30 s is a hang guard, not a limit), the agent keeps serving.
  await cable.unplug();
  await waitFor('readiness 503', async () => (await readiness()) === 503, 30_000);
  assert.equal(await liveness(), 200);
  assert.deepEqual(await cni(agent.cniSocket, ADD), { ok: false, code: 11, msg: 'not yet (ADD, ready=true)' });
  assert.equal(lines.filter((l) => /Lost the datastore/.test(l)).length, 1);

  // Back again: ready again, and the startup work is redone (a returning store may be empty).
  await cable.plug();
  await waitFor('readiness 200 again', async () => (await readiness()) === 200, 5000);
  assert.ok(lines.some((l) => /Datastore is reachable again/.test(l)));

  // The real etcd goes away for good.
  await etcd.stop();
  await waitFor('readiness 503 after etcd stopped', async () => (await readiness()) === 503, 5000);
  assert.equal(await liveness(), 200);
});

test('as a process: stays up with no datastore, SIGTERM stops it cleanly', async (t) => {
  const dir = tmp();
  const port = await freePort();
  const healthPort = await freePort();
  const agentUrl = new URL('./agent.js', import.meta.url).href;
  const script =
    `import(${JSON.stringify(agentUrl)}).then((m) => m.startAgent(process.env, { cniHandler: async () => ({ ok: true }),` +
    ` supervisor: { intervalMs: 200, checkTimeoutMs: 1000 } }))` +
    `.catch((e) => { console.error(e); process.exit(3); });`;
  const env = {
    ...baseEnv(dir),
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    DATASTORE_TYPE: 'etcdv3',
    ETCD_ENDPOINTS: `http://127.0.0.1:${port}`, // nothing listens there
    FELIX_HEALTHPORT: String(healthPort),
    FELIX_PROMETHEUSMETRICSENABLED: 'false',
  };
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  let exited: number | string | null | undefined;
  const exit = new Promise<void>((r) =>
    child.on('exit', (code, sig) => {
      exited = code ?? sig;
      r();
    }),
  );
  t.after(() => {
    if (exited === undefined) process.kill(child.pid!, 'SIGKILL');
  });

  const sock = join(dir, 'run', 'cni.sock');
  await waitFor('the CNI socket', async () => existsSync(sock), 10_000);
  await sleep(1500);
  assert.equal(exited, undefined, `still running: ${stderr}`);
  assert.equal((await httpGet(`http://127.0.0.1:${healthPort}/readiness`)).status, 503);
  assert.equal((await httpGet(`http://127.0.0.1:${healthPort}/liveness`)).status, 200);
  assert.deepEqual(await cni(sock, ADD), { ok: true });

  process.kill(child.pid!, 'SIGTERM');
  await Promise.race([exit, new Promise((r) => setTimeout(r, 10_000).unref())]);
  assert.equal(exited, 0, stderr);
  assert.equal(existsSync(sock), false, 'socket removed on SIGTERM');
  assert.match(stderr, /\[INFO\]\[\d+\] agent\.ts: Received SIGTERM: shutting down/);
  assert.match(stderr, /\[WARNING\]\[\d+\] datastore-supervisor\.ts: Cannot reach the datastore/);
});
