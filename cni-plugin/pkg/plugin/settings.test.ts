// Conflist and agent settings are in force or refused, never accepted and ignored: each case runs
// through the real plugin binary and a real tortie-node in its own namespaces, and is judged by the
// kernel state it leaves (interface names, queues, sysctls, MTU, addresses) and real packets.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../../libcalico-go/lib/backend/api.js';
import { openEmbedded } from '../../../libcalico-go/lib/backend/embedded/embedded.js';
import { resourcePrefix } from '../../../libcalico-go/lib/backend/keys.js';
import { IPAM } from '../../../libcalico-go/lib/ipam/ipam.js';
import { type ExecResult, execPlugin } from '../../../testing/cni-harness.js';
import { BIN, TestNode, inNs, ip } from '../../../testing/node-fixture.js';

const HOST_LOCAL = '/usr/lib/cni/host-local';
const skip =
  process.getuid?.() !== 0
    ? 'needs root (network namespaces)'
    : !existsSync(HOST_LOCAL)
      ? `${HOST_LOCAL} is not installed (apt-get install containernetworking-plugins)`
      : !existsSync(BIN('tortie'))
        ? `${BIN('tortie')} not built (npm run build)`
        : false;

describe('settings are enforced or refused (real agent, FELIX_INTERFACEPREFIX=tap)', { skip }, () => {
  let dir: string;
  let store: Backend;
  let node: TestNode;
  let n = 0;

  const base = (): Record<string, unknown> => ({
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    type: 'tortie',
    agent_socket: node.socket,
    ipam: { type: 'tortie-ipam', ipv4_pools: ['10.233.64.0/18'] },
    policy: { type: 'k8s' },
  });
  const call = (command: 'ADD' | 'DEL', conf: Record<string, unknown>, id: string, ns: string): Promise<ExecResult> =>
    execPlugin(BIN('tortie'), {
      command,
      containerId: id,
      netns: `/run/netns/${ns}`,
      ifname: 'eth0',
      args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${id}`,
      cniPath: [join(BIN('tortie'), '..'), '/usr/lib/cni'],
      stdinConfig: conf,
      wrapper: ['/usr/sbin/ip', 'netns', 'exec', node.hostNs],
    });
  const okAdd = (r: ExecResult) => {
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}\n${node.agentLog.slice(-2000)}`);
    return r.json as { interfaces: { name: string; mtu?: number }[]; ips: { address: string }[] };
  };
  const link = (ns: string, dev: string) =>
    (JSON.parse(ip('-n', ns, '-j', '-d', 'link', 'show', 'dev', dev)) as { mtu: number; num_tx_queues: number; num_rx_queues: number }[])[0]!;
  const allocated = async () => (await new IPAM(store, { selects: () => true }).blocks(4)).reduce((s, b) => s + b.allocations.filter((a) => a !== null).length, 0);
  const weps = async () => (await store.list(resourcePrefix('WorkloadEndpoint'))).items.length;
  const hasEth0 = (ns: string) => /eth0/.test(ip('-n', ns, 'link'));
  const pod = () => {
    n++;
    return { id: `set-${n}`, ns: node.makePodNs(`s${n}`) };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-settings-'));
    const dsPath = join(dir, 'datastore.db');
    node = new TestNode({ nodeName: 'settings', datastoreEnv: { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: dsPath }, env: { FELIX_INTERFACEPREFIX: 'tap' } });
    node.setUp();
    await node.startAgent();
    store = openEmbedded(dsPath);
  });
  after(async () => {
    await store?.close();
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('FELIX_INTERFACEPREFIX names the host veths (so the fail-closed rule covers them); the pod is reachable', async () => {
    const { id, ns } = pod();
    const res = okAdd(await call('ADD', base(), id, ns));
    assert.match(res.interfaces[0]!.name, /^tap[0-9a-f]{11}$/);
    assert.doesNotMatch(ip('-n', node.hostNs, 'link'), /cali/);
    inNs(node.hostNs, ['ping', '-c', '1', '-W', '2', res.ips[0]!.address.split('/')[0]!]);
    assert.equal((await call('DEL', base(), id, ns)).code, 0);
    assert.doesNotMatch(ip('-n', node.hostNs, 'link'), /tap[0-9a-f]{11}/);
  });

  it('num_queues and container_settings.allow_ip_forwarding reach the kernel; defaults stay 1 and 0', async () => {
    const a = pod();
    const b = pod();
    const res = okAdd(await call('ADD', { ...base(), num_queues: 4, container_settings: { allow_ip_forwarding: true } }, a.id, a.ns));
    okAdd(await call('ADD', base(), b.id, b.ns));
    const ctr = link(a.ns, 'eth0');
    const host = link(node.hostNs, res.interfaces[0]!.name);
    assert.deepEqual([ctr.num_tx_queues, ctr.num_rx_queues, host.num_tx_queues, host.num_rx_queues], [4, 4, 4, 4]);
    assert.equal(inNs(a.ns, ['sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '1');
    assert.deepEqual([link(b.ns, 'eth0').num_tx_queues, link(b.ns, 'eth0').num_rx_queues], [1, 1]);
    assert.equal(inNs(b.ns, ['sysctl', '-n', 'net.ipv4.ip_forward']).trim(), '0');
    for (const p of [a, b]) assert.equal((await call('DEL', base(), p.id, p.ns)).code, 0);
  });

  it('require_mtu_file: the MTU file is used; without it ADD fails with code 11 and leaves nothing', async () => {
    const mtuFile = join(node.stateDir, 'mtu');
    const original = readFileSync(mtuFile, 'utf8');
    const conf = { ...base(), require_mtu_file: true };
    try {
      writeFileSync(mtuFile, '1400\n');
      const a = pod();
      const res = okAdd(await call('ADD', conf, a.id, a.ns));
      assert.equal(link(a.ns, 'eth0').mtu, 1400);
      assert.equal(link(node.hostNs, res.interfaces[0]!.name).mtu, 1400);
      assert.equal((await call('DEL', conf, a.id, a.ns)).code, 0);
      unlinkSync(mtuFile);
      const before = [await allocated(), await weps()];
      const b = pod();
      const r = await call('ADD', conf, b.id, b.ns);
      assert.equal(r.code, 1 /* exit status */, r.stdout);
      assert.equal((r.json as { code: number }).code, 11);
      assert.match((r.json as { msg: string }).msg, /require_mtu_file/);
      assert.equal(hasEth0(b.ns), false);
      assert.deepEqual([await allocated(), await weps()], before);
      // Without require_mtu_file the agent's detected MTU is used instead.
      okAdd(await call('ADD', base(), b.id, b.ns));
      assert.equal((await call('DEL', base(), b.id, b.ns)).code, 0);
    } finally {
      writeFileSync(mtuFile, original);
    }
  });

  it('another ipam.type is delegated through CNI_PATH (host-local): its address on the pod, released on DEL', async () => {
    const dataDir = join(dir, 'host-local');
    const conf = { ...base(), ipam: { type: 'host-local', ranges: [[{ subnet: '10.250.7.0/24' }]], dataDir } };
    const a = pod();
    const before = await allocated();
    const res = okAdd(await call('ADD', conf, a.id, a.ns));
    const addr = res.ips[0]!.address;
    assert.match(addr, /^10\.250\.7\.\d+\/32$/);
    assert.match(ip('-n', a.ns, 'addr', 'show', 'eth0'), new RegExp(`inet ${addr.replace(/\./g, '\\.')}`));
    inNs(node.hostNs, ['ping', '-c', '1', '-W', '2', addr.split('/')[0]!]);
    const weps = (await store.list(resourcePrefix('WorkloadEndpoint'))).items.map((kv) => JSON.parse(kv.value) as { spec: { containerID: string; ipNetworks: string[] } });
    assert.deepEqual(weps.find((w) => w.spec.containerID === a.id)?.spec.ipNetworks, [addr]);
    assert.equal(await allocated(), before, 'tortie-ipam must not allocate for a delegated network');
    assert.ok(readdirSync(join(dataDir, 'k8s-pod-network')).includes(addr.split('/')[0]!), 'host-local recorded the address');
    assert.equal((await call('DEL', conf, a.id, a.ns)).code, 0);
    assert.ok(!readdirSync(join(dataDir, 'k8s-pod-network')).includes(addr.split('/')[0]!), 'host-local released the address');
    assert.equal(hasEth0(a.ns), false);
  });

  it('an IPAM plugin missing from CNI_PATH fails ADD naming it, leaving nothing', async () => {
    const a = pod();
    const before = await weps();
    const r = await call('ADD', { ...base(), ipam: { type: 'no-such-ipam' } }, a.id, a.ns);
    assert.notEqual(r.code, 0);
    assert.match((r.json as { msg: string }).msg, /IPAM plugin "no-such-ipam" \(ipam.type\) not found in CNI_PATH/);
    assert.equal(hasEth0(a.ns), false);
    assert.equal(await weps(), before);
    assert.doesNotMatch(ip('-n', node.hostNs, 'link'), /tap[0-9a-f]{11}/);
  });

  it('feature_control switches Tortie does not implement are refused by the plugin (code 2)', async () => {
    const a = pod();
    const r = await call('ADD', { ...base(), feature_control: { floating_ips: true } }, a.id, a.ns);
    assert.equal((r.json as { code: number }).code, 2);
    assert.match((r.json as { msg: string }).msg, /feature_control\.floating_ips true/);
    assert.equal(hasEth0(a.ns), false);
    assert.equal(execFileSync('/usr/sbin/ip', ['-n', node.hostNs, 'route'], { encoding: 'utf8' }).includes('tap'), false);
  });
});
