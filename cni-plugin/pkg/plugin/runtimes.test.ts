// Real runtimes drive the tortie plugin: containerd's `ctr run --cni` and podman's CNI backend, in
// a node host made by the runtime rig (its own network and mount namespaces), with tortie-node
// running in that node. Containers get their address from the node's block, reach each other,
// and removal (CNI DEL) leaves nothing behind.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../../libcalico-go/lib/backend/api.js';
import { openEmbedded } from '../../../libcalico-go/lib/backend/embedded/embedded.js';
import { resourcePrefix } from '../../../libcalico-go/lib/backend/keys.js';
import { IPAM } from '../../../libcalico-go/lib/ipam/ipam.js';
import { containerdUnavailableReason, withContainerd } from '../../../testing/runtimes/containerd.js';
import { canBuildImage } from '../../../testing/runtimes/image.js';
import { type NodeDaemon, NodeHost, nodeUnavailableReason } from '../../../testing/runtimes/node.js';
import { podmanUnavailableReason, withPodman } from '../../../testing/runtimes/podman.js';
import { BIN } from '../../../testing/node-fixture.js';

const baseSkip = nodeUnavailableReason() ?? canBuildImage() ?? null;
const NODE = 'rt-node';

describe('tortie through real container runtimes', { skip: baseSkip ?? false }, () => {
  let dir: string;
  let dsPath: string;
  let node: NodeHost;
  let agent: NodeDaemon;
  let store: Backend;
  const conflist = {
    cniVersion: '1.0.0',
    name: 'tortie-net',
    plugins: [{ type: 'tortie', nodename: NODE, agent_socket: '/run/tortie/cni.sock', ipam: { type: 'tortie-ipam' } }],
  };
  const allocated = async () =>
    (await new IPAM(store, { selects: () => true }).blocks(4)).reduce((s, b) => s + b.allocations.filter((a) => a !== null).length, 0);
  const weps = async () => (await store.list(resourcePrefix('WorkloadEndpoint'))).items.length;
  const caliLinks = async () => (await node.run(['/usr/sbin/ip', '-o', 'link'])).stdout.split('\n').filter((l) => l.includes('cali')).length;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-rt-'));
    dsPath = join(dir, 'datastore.db');
    node = await NodeHost.create({ extraShadows: ['/run/tortie'] });
    // An uplink with a default route: proxy ARP answers for 169.254.1.1 only when it is routable.
    await node.mustRun(['/usr/sbin/ip', 'link', 'add', 'up0', 'type', 'veth', 'peer', 'name', 'up1']);
    for (const dev of ['up0', 'up1']) await node.mustRun(['/usr/sbin/ip', 'link', 'set', dev, 'up']);
    await node.mustRun(['/usr/sbin/ip', 'addr', 'add', '10.0.0.21/24', 'dev', 'up0']);
    await node.mustRun(['/usr/sbin/ip', 'route', 'add', 'default', 'via', '10.0.0.1']);
    const sock = join(node.shadowDir('/run/tortie'), 'cni.sock');
    agent = await node.startDaemon([BIN('tortie-node')], {
      env: node.env({
        NODENAME: NODE,
        DATASTORE_TYPE: 'embedded',
        DATASTORE_PATH: dsPath,
        TORTIE_RUN_DIR: '/run/tortie',
        TORTIE_STATE_DIR: join(dir, 'state'),
        IP: '10.0.0.21/24',
        CALICO_IPV4POOL_CIDR: '10.240.0.0/16',
        CALICO_IPV4POOL_BLOCK_SIZE: '26',
        CALICO_IPV4POOL_IPIP: 'Never',
        FELIX_HEALTHHOST: '127.0.0.1',
      }),
      ready: async () => existsSync(sock),
    });
    store = openEmbedded(dsPath);
  });
  after(async () => {
    await store?.close();
    await agent?.stop();
    await node?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ctr run --cni: containers get addresses, reach each other, and removal cleans up', { skip: containerdUnavailableReason() ?? false }, async () => {
    await withContainerd({ node, conflist, binDirs: [join(BIN('tortie'), '..')] }, async (rt) => {
      await rt.run('c1');
      await rt.run('c2');
      const [ip1, ip2] = await Promise.all([rt.ip('c1'), rt.ip('c2')]).catch((e) => {
        throw new Error(`${(e as Error).message}\nagent log:\n${agent.logTail()}`);
      });
      assert.match(ip1, /^10\.240\./);
      assert.notEqual(ip1, ip2);
      assert.deepEqual(await rt.addrs('c1'), [`${ip1}/32`]);
      const ping = await rt.exec('c1', ['ping', '-c', '1', '-W', '2', ip2]);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
      assert.equal(await weps(), 2);
      for (const c of ['c1', 'c2']) {
        // ctr's task is SIGKILLed (exit 137); a failed DEL would show as "network review".
        const r = await rt.remove(c);
        assert.doesNotMatch(r.stderr, /network review/, r.stderr);
      }
    });
    assert.equal(await allocated(), 0, 'addresses released');
    assert.equal(await weps(), 0, 'workload endpoints deleted');
    assert.equal(await caliLinks(), 0, 'host veths gone');
  });

  it('podman (CNI backend): containers get addresses, reach each other, and removal cleans up', { skip: podmanUnavailableReason() ?? false }, async () => {
    await withPodman({ node, conflist, binDirs: [join(BIN('tortie'), '..')] }, async (rt) => {
      await rt.run('p1');
      await rt.run('p2');
      const [ip1, ip2] = [await rt.ip('p1'), await rt.ip('p2')];
      assert.match(ip1, /^10\.240\./);
      const ping = await rt.exec('p1', ['ping', '-c', '1', '-W', '2', ip2]);
      assert.equal(ping.code, 0, ping.stdout + ping.stderr);
      assert.equal(await weps(), 2);
      for (const c of ['p1', 'p2']) {
        const r = await rt.remove(c);
        assert.equal(r.code, 0, r.stderr);
      }
    });
    assert.equal(await allocated(), 0, 'addresses released');
    assert.equal(await weps(), 0, 'workload endpoints deleted');
    assert.equal(await caliLinks(), 0, 'host veths gone');
  });
});
