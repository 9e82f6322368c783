// tortie-ipam's other commands and result versions: CHECK, VERSION, STATUS, GC, IP=, dual stack.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { resourceKey } from '../../libcalico-go/lib/backend/keys.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';
import { IPAM_BIN, type StoreFixture, makeStore, runCni } from '../../testing/ipam-plugin-fixture.js';

describe('tortie-ipam commands', () => {
  let fx: StoreFixture;
  let store: Backend;
  let ipam: IPAM;
  const conf = (extra: Record<string, unknown> = {}, node = 'n1') =>
    JSON.stringify({ cniVersion: '1.1.0', name: 'net', type: 'tortie-ipam', nodename: node, ...fx.confFields, ipam: { type: 'tortie-ipam' }, ...extra });
  const add = (id: string, config: string, args = '') =>
    runCni(IPAM_BIN, { command: 'ADD', containerId: id, netns: '/var/run/netns/x', ifname: 'eth0', args, config });

  before(async () => {
    fx = await makeStore('embedded');
    store = await fx.open();
    ipam = new IPAM(store, { selects: () => true });
    for (const [name, cidr, blockSize] of [['v4', '10.60.0.0/16', 26], ['v6', 'fd00:60::/112', 122]] as const) {
      await store.apply(
        resourceKey('IPPool', name),
        JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name }, spec: { cidr, blockSize } }),
      );
    }
  });
  after(async () => {
    await store?.close();
    await fx?.stop();
  });

  it('answers VERSION with every supported spec version', async () => {
    const r = await runCni(IPAM_BIN, { command: 'VERSION', config: '{"cniVersion":"0.4.0"}' });
    assert.equal(r.code, 0);
    assert.deepEqual(r.json, { cniVersion: '0.4.0', supportedVersions: ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] });
  });

  it('prints the result in the requested version', async () => {
    for (const v of ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
      const r = await add(`ver-${v}`, conf({ cniVersion: v }));
      assert.equal(r.code, 0, r.stdout);
      assert.equal(r.json.cniVersion, v);
      assert.equal(r.json.interfaces, undefined, 'IPAM results carry no interfaces');
      const ip = r.json.ips[0];
      assert.match(ip.address, /^10\.60\.\d+\.\d+\/26$/);
      assert.equal(ip.gateway, '169.254.1.1');
      if (v.startsWith('0.')) assert.equal(ip.version, '4');
      else assert.equal(ip.version, undefined);
    }
  });

  it('assigns dual stack and a requested address', async () => {
    const r = await add('dual', conf({ ipam: { type: 'tortie-ipam', assign_ipv6: 'true' } }));
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.json.ips.length, 2);
    assert.match(r.json.ips[1].address, /^fd00:60::[0-9a-f:]*\/122$/);
    const s = await add('fixed', conf(), 'IgnoreUnknown=1;IP=10.60.200.7');
    assert.equal(r.code, 0, s.stdout);
    assert.equal(s.json.ips[0].address, '10.60.200.7/32');
    const again = await add('fixed2', conf(), 'IP=10.60.200.7');
    assert.equal(again.json.code, 101);
    assert.match(again.json.msg, /10\.60\.200\.7/);
  });

  it('CHECK passes after ADD and fails once the address is gone', async () => {
    const r = await add('chk', conf());
    const prevResult = r.json;
    const check = (id: string) =>
      runCni(IPAM_BIN, { command: 'CHECK', containerId: id, netns: '/var/run/netns/x', ifname: 'eth0', config: conf({ prevResult }) });
    assert.equal((await check('chk')).code, 0);
    const wrong = await check('someone-else');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.json.msg, /allocated to net\.chk, not net\.someone-else/);
    await runCni(IPAM_BIN, { command: 'DEL', containerId: 'chk', ifname: 'eth0', config: conf() });
    const gone = await check('chk');
    assert.notEqual(gone.code, 0);
    assert.match(gone.json.msg, /not allocated/);
  });

  it('STATUS is ready with a datastore and says why not without one', async () => {
    assert.equal((await runCni(IPAM_BIN, { command: 'STATUS', config: conf() })).code, 0);
    const down = await runCni(IPAM_BIN, {
      command: 'STATUS',
      config: conf({ datastore_type: 'etcdv3', etcd_endpoints: 'http://127.0.0.1:1', datastore_path: undefined }),
    });
    assert.notEqual(down.code, 0);
    assert.equal(down.json.code, 50);
    assert.match(down.json.msg, /127\.0\.0\.1:1/);
  });

  it('GC frees only this node’s stale allocations of this network', async () => {
    for (const id of ['keep', 'stale']) assert.equal((await add(`gc-${id}`, conf())).code, 0);
    assert.equal((await add('gc-other-node', conf({}, 'n2'))).code, 0);
    const keepIP = (await ipam.blocks(4)).length; // touch the store before GC
    assert.ok(keepIP > 0);
    const gc = await runCni(IPAM_BIN, {
      command: 'GC',
      config: conf({ 'cni.dev/valid-attachments': [{ containerID: 'gc-keep', ifname: 'eth0' }] }),
    });
    assert.equal(gc.code, 0, gc.stdout);
    const handles = (await store.list('/calico/ipam/v2/handle/net.gc-')).items.map((kv) => kv.key.split('/').at(-1));
    assert.deepEqual(handles.sort(), ['net.gc-keep', 'net.gc-other-node']);
  });
});
