// The agent's Felix settings with the real tortie-node in a network namespace of its own: a refused
// variable stops it before it touches the kernel; FELIX_IPV6SUPPORT=false is in force (no IPv6
// sysctl written, a pod asking for IPv6 refused and undone, IPv4 pods unaffected); a variable
// Tortie does not implement is logged once. Nothing touches the root namespace; the agent is ended
// by PID and the namespaces deleted afterwards.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { openEmbedded } from '../../libcalico-go/lib/backend/embedded/embedded.js';
import { resourcePrefix } from '../../libcalico-go/lib/backend/keys.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';
import { type Conflist, runConflistAdd } from '../../testing/cni-harness.js';
import { BIN, TestNode, inNs, ip } from '../../testing/node-fixture.js';

const skip =
  process.getuid?.() !== 0 ? 'needs root (network namespaces)' : !existsSync(BIN('tortie-node')) ? 'bin/tortie-node not built (npm run build)' : false;

const sysctl = (ns: string, path: string) => inNs(ns, ['/usr/bin/cat', `/proc/sys/${path}`]).trim();

describe('tortie-node: refused Felix settings', { skip }, () => {
  const nodes: TestNode[] = [];
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-cfg-agent-'));
  });
  after(async () => {
    for (const n of nodes) await n.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  for (const [variable, value, reason] of [
    ['FELIX_WIREGUARDENABLED', 'true', 'is not supported: Tortie has no WireGuard encryption (and this kernel has no WireGuard)'],
    ['FELIX_BPFENABLED', 'True', 'is not supported: Tortie has no eBPF dataplane'],
  ] as const) {
    it(`${variable}=${value}: exits 1 naming the variable and the reason, before touching the kernel`, async () => {
      const node = new TestNode({
        datastoreEnv: { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: join(dir, `${variable}.db`) },
        env: { [variable]: value },
      });
      nodes.push(node);
      node.setUp();
      const before4 = sysctl(node.hostNs, 'net/ipv4/ip_forward');
      await assert.rejects(node.startAgent(), /tortie-node exited \(1\)/);
      assert.ok(node.agentLog.includes(`${variable}="${value}": ${reason}`), node.agentLog);
      assert.equal(sysctl(node.hostNs, 'net/ipv4/ip_forward'), before4, 'no kernel setting written');
      assert.ok(!existsSync(join(dir, `${variable}.db`)), 'the datastore was not even opened');
    });
  }
});

describe('tortie-node: FELIX_IPV6SUPPORT', { skip }, () => {
  let dir: string;
  let store: Backend;
  let off: TestNode;
  let on: TestNode;
  let conflist: Conflist;
  const cniPath = [join(BIN('tortie'), '..'), '/usr/lib/cni'];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-ipv6-'));
    const dsPath = join(dir, 'datastore.db');
    const datastoreEnv = { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: dsPath };
    off = new TestNode({
      nodeName: 'v6off',
      datastoreEnv,
      env: { FELIX_IPV6SUPPORT: 'false', FELIX_FAILSAFEINBOUNDHOSTPORTS: 'tcp:22' },
    });
    on = new TestNode({ nodeName: 'v6on', datastoreEnv, address: '10.0.0.12/24' });
    off.setUp();
    on.setUp();
    await off.startAgent();
    await on.startAgent();
    store = openEmbedded(dsPath);
    await new ResourceClient(store).create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'IPPool',
      metadata: { name: 'v6-pool' },
      spec: { cidr: 'fd00:10::/64', natOutgoing: false },
    });
    conflist = {
      name: 'k8s-pod-network',
      cniVersion: '1.0.0',
      plugins: [
        {
          type: 'tortie',
          datastore_type: 'embedded',
          datastore_path: dsPath,
          nodename_file: join(off.stateDir, 'nodename'),
          agent_socket: off.socket,
          ipam: { type: 'tortie-ipam', assign_ipv4: 'true', assign_ipv6: 'true' },
          policy: { type: 'k8s' },
        },
      ],
    };
  });
  after(async () => {
    await store?.close();
    await off?.stop();
    await on?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const rt = (id: string, netns: string, pod: string) => ({
    containerId: id,
    netns: `/run/netns/${netns}`,
    ifname: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}`,
    cacheDir: join(dir, 'cni-cache'),
    cniPath,
    wrapper: ['/usr/sbin/ip', 'netns', 'exec', off.hostNs],
  });
  const allocated = async () => {
    const ipam = new IPAM(store, { selects: () => true });
    let n = 0;
    for (const v of [4, 6] as const) for (const b of await ipam.blocks(v)) n += b.allocations.filter((a) => a !== null).length;
    return n;
  };
  const caliLinks = () => ip('-n', off.hostNs, '-o', 'link', 'show').split('\n').filter((l) => /: cali/.test(l));

  it('default (true): IPv6 forwarding on, as Felix; false: no IPv6 sysctl written, IPv4 forwarding on', () => {
    assert.equal(sysctl(on.hostNs, 'net/ipv6/conf/all/forwarding'), '1');
    assert.equal(sysctl(off.hostNs, 'net/ipv6/conf/all/forwarding'), '0');
    assert.equal(sysctl(off.hostNs, 'net/ipv4/ip_forward'), '1');
  });

  it('a variable Tortie does not implement is logged once, naming it', () => {
    const lines = off.agentLog.split('\n').filter((l) => l.includes('FELIX_FAILSAFEINBOUNDHOSTPORTS'));
    assert.equal(lines.length, 1, off.agentLog);
    assert.match(lines[0], /FELIX_FAILSAFEINBOUNDHOSTPORTS="tcp:22": not supported by Tortie \(host endpoints are not enforced by Tortie, so failsafe ports have no meaning\); ignored/);
  });

  it('a pod that would get an IPv6 address is refused, and nothing is left behind', async () => {
    const ns = off.makePodNs('dual');
    const r = await runConflistAdd(conflist, rt('ctr-dual', ns, 'dual'));
    assert.ok(!r.ok, 'ADD must fail');
    assert.match(r.error!.msg, /IPv6 support is off on this node \(FELIX_IPV6SUPPORT=false\)/, JSON.stringify(r.error));
    assert.match(r.error!.msg, /fd00:10::/);
    assert.deepEqual(caliLinks(), [], 'no host veth');
    assert.doesNotMatch(ip('-n', ns, 'link', 'show'), /eth0/, 'no pod interface');
    assert.equal(await allocated(), 0, 'addresses released');
    assert.equal((await store.list(resourcePrefix('WorkloadEndpoint'))).items.length, 0, 'no workload endpoint');
    assert.equal(sysctl(off.hostNs, 'net/ipv6/conf/all/forwarding'), '0');
  });

  it('IPv4 pods are wired as usual, without IPv6 forwarding or proxy NDP on their veth', async () => {
    const ns = off.makePodNs('v4');
    const v4 = { ...conflist, plugins: [{ ...conflist.plugins[0], ipam: { type: 'tortie-ipam', assign_ipv4: 'true', assign_ipv6: 'false' } }] };
    const r = await runConflistAdd(v4, rt('ctr-v4', ns, 'v4'));
    assert.ok(r.ok, JSON.stringify(r.error) + off.agentLog);
    const res = r.result as { ips: { address: string }[]; interfaces: { name: string }[] };
    assert.equal(res.ips.length, 1);
    assert.match(res.ips[0].address, /^10\.233\.\d+\.\d+\/32$/);
    const host = res.interfaces[0].name;
    assert.equal(sysctl(off.hostNs, `net/ipv6/conf/${host}/forwarding`), '0');
    assert.equal(sysctl(off.hostNs, `net/ipv6/conf/${host}/proxy_ndp`), '0');
    inNs(off.hostNs, ['ping', '-c', '1', '-W', '2', res.ips[0].address.split('/')[0]]);
    assert.ok(existsSync(join(off.stateDir, 'nodename')) && readFileSync(join(off.stateDir, 'nodename'), 'utf8') === 'v6off');
  });
});
