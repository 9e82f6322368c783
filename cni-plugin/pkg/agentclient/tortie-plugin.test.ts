// bin/tortie exec'd as a runtime execs it (testing/cni-harness.ts), against a fake tortie-node on a
// temporary socket named by `agent_socket` in the configuration. Needs the build (bin/tortie).
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { type ExecOptions, type ExecResult, execPlugin, validateErrorShape, validateResultShape } from '../../../testing/cni-harness.js';
import { type FakeAgent, SAMPLE_RESULT, startFakeAgent } from './testdata/fake-agent.js';

const ROOT = new URL('../../../../', import.meta.url).pathname;
const BIN = join(ROOT, 'bin/tortie');
const NETNS = '/var/run/netns/test';
const K8S_ARGS = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=nginx-abc;K8S_POD_INFRA_CONTAINER_ID=c0ffee';

let agent: FakeAgent;

function conf(version: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    cniVersion: version,
    name: 'k8s-pod-network',
    type: 'tortie',
    log_level: 'info',
    datastore_type: 'kubernetes',
    nodename: 'node-1',
    mtu: 0,
    ipam: { type: 'calico-ipam' },
    policy: { type: 'k8s' },
    kubernetes: { kubeconfig: '/etc/cni/net.d/calico-kubeconfig' },
    agent_socket: agent.socket,
    ...extra,
  };
}

function run(command: string, config: unknown, more: Partial<ExecOptions> = {}): Promise<ExecResult> {
  return execPlugin(BIN, {
    command,
    containerId: 'c0ffee',
    netns: NETNS,
    ifname: 'eth0',
    args: K8S_ARGS,
    cniPath: ['/opt/cni/bin', '/usr/lib/cni'],
    stdinConfig: config,
    timeoutMs: 20_000,
    ...more,
  });
}

function expectError(r: ExecResult, code: number, msg?: RegExp): Record<string, unknown> {
  assert.notEqual(r.code, 0, `exit code: ${r.stdout} ${r.stderr}`);
  assert.deepEqual(validateErrorShape(r.stdout), [], r.stdout);
  const j = r.json as Record<string, unknown>;
  assert.equal(j.code, code, r.stdout);
  if (msg) assert.match(String(j.msg), msg);
  return j;
}

before(async () => {
  assert.ok(existsSync(BIN), `${BIN} is missing: run the build (tsc + scripts/make-bins.mjs)`);
  agent = await startFakeAgent();
});
after(async () => {
  await agent?.close();
});
beforeEach(() => {
  agent.set({});
  agent.requests.length = 0;
  agent.lines.length = 0;
});

describe('bin/tortie forwards to tortie-node', () => {
  it('VERSION answers locally', async () => {
    const r = await execPlugin(BIN, { command: 'VERSION', stdinConfig: { cniVersion: '1.0.0' } });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.json, { cniVersion: '1.0.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
    assert.equal(agent.requests.length, 0);
  });

  it('ADD 0.3.1: the request carries the invocation; the result is printed in 0.3.1 shape', async () => {
    const c = conf('0.3.1');
    const r = await run('ADD', c);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(validateResultShape(r.json, '0.3.1', { ifname: 'eth0', netns: NETNS }), []);
    assert.deepEqual(r.json, {
      cniVersion: '0.3.1',
      interfaces: SAMPLE_RESULT.interfaces,
      ips: [{ version: '4', interface: 1, address: '10.233.64.5/32' }],
      routes: [{ dst: '0.0.0.0/0' }],
      dns: {},
    });
    assert.equal(agent.requests.length, 1);
    assert.deepEqual(agent.requests[0], {
      command: 'ADD',
      containerId: 'c0ffee',
      netns: NETNS,
      ifname: 'eth0',
      args: { IgnoreUnknown: '1', K8S_POD_NAMESPACE: 'default', K8S_POD_NAME: 'nginx-abc', K8S_POD_INFRA_CONTAINER_ID: 'c0ffee' },
      path: ['/opt/cni/bin', '/usr/lib/cni'],
      config: c,
      cniVersion: '0.3.1',
    });
  });

  it('ADD 1.0.0: 1.0.0 shape (no ips[].version); runtimeConfig and extra keys reach the agent', async () => {
    const c = conf('1.0.0', { runtimeConfig: { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }] }, extraKey: 1 });
    const r = await run('ADD', c);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.deepEqual(validateResultShape(r.json, '1.0.0', { ifname: 'eth0', netns: NETNS }), []);
    assert.deepEqual((r.json as { ips: unknown }).ips, [{ interface: 1, address: '10.233.64.5/32' }]);
    assert.deepEqual(agent.requests[0]!.config, c);
    assert.equal(agent.requests[0]!.cniVersion, '1.0.0');
  });

  it('ADD: an error answer becomes the error JSON with its code and details', async () => {
    agent.set({ reply: () => ({ ok: false, code: 100, msg: 'no free addresses in pool default-pool', details: 'pool 10.0.0.0/30 full' }) });
    const r = await run('ADD', conf('1.0.0'));
    assert.deepEqual(expectError(r, 100), {
      cniVersion: '1.0.0',
      code: 100,
      msg: 'no free addresses in pool default-pool',
      details: 'pool 10.0.0.0/30 full',
    });
  });

  it('ADD: success without a result, or a bad result → 999', async () => {
    agent.set({ reply: () => ({ ok: true }) });
    expectError(await run('ADD', conf('1.0.0')), 999, /without a result/);
    agent.set({ reply: () => ({ raw: '{"ok":true,"result":{"ips":[{"address":"nope/32"}]}}\n' }) });
    expectError(await run('ADD', conf('1.0.0')), 999, /malformed response/);
    agent.set({ reply: () => ({ raw: 'garbage\n' }) });
    expectError(await run('ADD', conf('1.0.0')), 999, /malformed response from tortie-node: not JSON/);
  });

  it('DEL (netns already gone) is forwarded and prints nothing', async () => {
    const r = await run('DEL', conf('1.0.0'), { netns: '' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(agent.requests.length, 1);
    assert.equal(agent.requests[0]!.command, 'DEL');
    assert.equal(agent.requests[0]!.netns, '');
    assert.equal(agent.requests[0]!.containerId, 'c0ffee');
    assert.equal('validAttachments' in agent.requests[0]!, false);
  });

  it('CHECK is forwarded with prevResult', async () => {
    const prevResult = { cniVersion: '1.0.0', ...SAMPLE_RESULT };
    const r = await run('CHECK', conf('1.0.0', { prevResult }));
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(r.stdout, '');
    assert.equal(agent.requests[0]!.command, 'CHECK');
    assert.deepEqual(agent.requests[0]!.config.prevResult, prevResult);
  });

  it('STATUS is forwarded; the agent’s 50 is passed on', async () => {
    let r = await run('STATUS', conf('1.1.0'), { containerId: '', netns: '', ifname: '', args: '' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(agent.requests[0]!.command, 'STATUS');
    agent.set({ reply: () => ({ ok: false, code: 50, msg: 'datastore not ready' }) });
    r = await run('STATUS', conf('1.1.0'), { containerId: '', netns: '', ifname: '', args: '' });
    expectError(r, 50, /datastore not ready/);
  });

  it('GC is forwarded with the valid attachments (union of both keys), or null without a list', async () => {
    const c = conf('1.1.0', {
      'cni.dev/valid-attachments': [{ containerID: 'a1', ifname: 'eth0' }],
      'cni.dev/attachments': [
        { containerID: 'a1', ifname: 'eth0' },
        { containerID: 'b2', ifname: 'eth0' },
      ],
    });
    let r = await run('GC', c, { containerId: '', netns: '', ifname: '', args: '' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(agent.requests[0]!.command, 'GC');
    assert.deepEqual(agent.requests[0]!.validAttachments, [
      { containerID: 'a1', ifname: 'eth0' },
      { containerID: 'b2', ifname: 'eth0' },
    ]);
    r = await run('GC', conf('1.1.0'), { containerId: '', netns: '', ifname: '', args: '' });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(agent.requests[1]!.validAttachments, null);
  });

  it('logs to log_file_path (directories created, appended), never to stdout', async () => {
    const logFile = join(agent.dir, 'log/sub/cni.log');
    const c = conf('1.0.0', { log_file_path: logFile, log_level: 'DEBUG' });
    const r1 = await run('ADD', c);
    const r2 = await run('DEL', c);
    assert.equal(r1.code, 0);
    assert.equal(r2.code, 0);
    assert.doesNotThrow(() => JSON.parse(r1.stdout));
    assert.equal(r2.stdout, '');
    assert.equal(r1.stderr + r2.stderr, '');
    const log = readFileSync(logFile, 'utf8');
    assert.match(log, /\[INFO\]\[\d+\] tortie: ADD request ContainerID=c0ffee Namespace=default Pod=nginx-abc IfName=eth0/);
    assert.match(log, /\[DEBUG\]\[\d+\] tortie: forwarding to tortie-node/);
    assert.match(log, /ADD done .*IPs=10\.233\.64\.5\/32/);
    assert.match(log, /DEL done/);
  });
});

describe('bin/tortie without tortie-node', () => {
  it('agent down → code 11 JSON on stdout naming the socket, non-zero exit', async () => {
    const socket = join(agent.dir, 'nobody-home.sock');
    for (const cmd of ['ADD', 'DEL', 'CHECK'] as const) {
      const extra = cmd === 'CHECK' ? { prevResult: { cniVersion: '1.0.0', ...SAMPLE_RESULT } } : {};
      const r = await run(cmd, conf('1.0.0', { agent_socket: socket, ...extra }));
      const j = expectError(r, 11);
      assert.equal(j.cniVersion, '1.0.0');
      assert.equal(String(j.msg).startsWith(`tortie-node is not running on this node (cannot connect to ${socket})`), true, String(j.msg));
    }
  });

  it('STATUS with the agent down → 50 (plugin not available)', async () => {
    const socket = join(agent.dir, 'nobody-home.sock');
    const r = await run('STATUS', conf('1.1.0', { agent_socket: socket }), { containerId: '', netns: '', ifname: '', args: '' });
    expectError(r, 50, /tortie-node is not running/);
  });
});

describe('bin/tortie refuses bad input without contacting the agent', () => {
  const cases: Array<[string, () => unknown, number, RegExp]> = [
    ['stdin not JSON', () => '{"cniVersion": "1.0.0", ', 6, /decode/],
    ['stdin an array', () => '[]', 6, /expected a JSON object/],
    ['mtu a string', () => conf('1.0.0', { mtu: '1440' }), 2, /mtu "1440"/],
    ['unknown log_level', () => conf('1.0.0', { log_level: 'loud' }), 2, /log_level "loud"/],
    ['nodename placeholder', () => conf('1.0.0', { nodename: '__KUBERNETES_NODE_NAME__' }), 2, /nodename/],
    ['relative agent_socket', () => conf('1.0.0', { agent_socket: 'cni.sock' }), 2, /agent_socket "cni\.sock"/],
    ['no ipam', () => ({ ...conf('1.0.0'), ipam: undefined }), 7, /"ipam" is missing/],
    ['policy not an object', () => conf('1.0.0', { policy: 'k8s' }), 7, /policy must be an object/],
    ['no network name', () => ({ ...conf('1.0.0'), name: undefined }), 7, /network name/],
  ];
  for (const [what, make, code, msg] of cases) {
    it(`${what} → ${code}`, async () => {
      for (const cmd of ['ADD', 'DEL'] as const) {
        const r = await run(cmd, make());
        expectError(r, code, msg);
      }
      assert.equal(agent.requests.length, 0, 'the agent received no request');
    });
  }
});

describe('bin/tortie import graph', () => {
  it('loads only the skel, netconf, the agent client and protocol, and the logger (no datastore/IPAM/YAML/selector)', () => {
    const seen = new Set<string>();
    const walk = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith('.')) walk(join(dirname(file), spec));
        else assert.ok(spec.startsWith('node:'), `${relative(ROOT, file)} imports the package ${spec}`);
      }
    };
    walk(join(ROOT, 'dist/cni-plugin/cmd/tortie.js'));
    const files = [...seen].map((f) => relative(join(ROOT, 'dist'), f)).sort();
    for (const f of files) {
      assert.match(f, /^(cni-plugin\/(cmd\/tortie|pkg\/(skel|netconf|agentclient|agentapi|logrotate)\/)|libcalico-go\/lib\/logutils\/index\.js$)/, `unexpected module ${f}`);
      assert.doesNotMatch(f, /fake-agent/);
    }
  });
});
