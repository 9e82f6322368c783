// Bad input to bin/tortie-ipam: the spec's error JSON with the right code, and nothing written.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { resourceKey } from '../../libcalico-go/lib/backend/keys.js';
import { IPAM_BIN, type StoreFixture, makeStore, runCni } from '../../testing/ipam-plugin-fixture.js';

interface Case {
  what: string;
  env?: Record<string, string | undefined>;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: string;
  /** Config overrides; `null` removes the key. */
  conf?: Record<string, unknown>;
  stdin?: string;
  code: number;
  msg: RegExp;
}


const cases: Case[] = [
  { what: 'no CNI_COMMAND', env: { CNI_COMMAND: undefined }, code: 4, msg: /CNI_COMMAND/ },
  { what: 'unknown command', env: { CNI_COMMAND: 'FROB' }, code: 4, msg: /FROB/ },
  { what: 'ADD without container ID', containerId: '', code: 4, msg: /CNI_CONTAINERID/ },
  { what: 'ADD without netns', netns: '', code: 4, msg: /CNI_NETNS/ },
  { what: 'ADD without ifname', ifname: '', code: 4, msg: /CNI_IFNAME/ },
  { what: 'container ID starting with a dash', containerId: '-abc', code: 4, msg: /-abc/ },
  { what: 'container ID with a space', containerId: 'a b', code: 4, msg: /a b/ },
  { what: 'ifname longer than 15', ifname: 'abcdefghijklmnop', code: 4, msg: /abcdefghijklmnop/ },
  { what: 'ifname with a slash', ifname: 'eth/0', code: 4, msg: /eth\/0/ },
  { what: 'stdin not JSON', stdin: '{"cniVersion": "1.0.0",', code: 6, msg: /JSON|decode|parse/i },
  { what: 'stdin empty', stdin: '', code: 6, msg: /.+/ },
  { what: 'missing network name', conf: { name: null }, code: 7, msg: /name/ },
  { what: 'invalid network name', conf: { name: 'bad name!' }, code: 7, msg: /bad name!/ },
  { what: 'unsupported CNI version', conf: { cniVersion: '9.9.9' }, code: 1, msg: /9\.9\.9/ },
  { what: 'too-old CNI version', conf: { cniVersion: '0.2.0' }, code: 1, msg: /0\.2\.0/ },
  { what: 'kubernetes datastore, unreadable kubeconfig', conf: { datastore_type: 'kubernetes', kubernetes: { kubeconfig: '/nonexistent/calico-kubeconfig' } }, code: 2, msg: /kubeconfig \/nonexistent\/calico-kubeconfig: cannot read it/ },
  { what: 'unknown datastore', conf: { datastore_type: 'mysql' }, code: 2, msg: /"mysql"/ },
  { what: 'bad etcd endpoint', conf: { datastore_type: 'etcdv3', etcd_endpoints: 'not-a-url' }, code: 2, msg: /"not-a-url"/ },
  { what: 'etcd cert without key', conf: { datastore_type: 'etcdv3', etcd_endpoints: 'http://127.0.0.1:1', etcd_cert_file: '/x.pem' }, code: 2, msg: /ETCD_KEY_FILE/ },
  { what: 'assign_ipv4 not a boolean', conf: { ipam: { type: 'tortie-ipam', assign_ipv4: 'maybe' } }, code: 2, msg: /ipam\.assign_ipv4 "maybe"/ },
  { what: 'nothing to assign', conf: { ipam: { type: 'tortie-ipam', assign_ipv4: 'false' } }, code: 7, msg: /both false/ },
  { what: 'bad pool CIDR', conf: { ipam: { type: 'tortie-ipam', ipv4_pools: ['10.0.0.0/99'] } }, code: 2, msg: /ipam\.ipv4_pools\[0\] "10\.0\.0\.0\/99"/ },
  { what: 'IPv6 CIDR as IPv4 pool', conf: { ipam: { type: 'tortie-ipam', ipv4_pools: ['fd00::/64'] } }, code: 2, msg: /"fd00::\/64": is not an IPv4 CIDR/ },
  { what: 'unknown pool name', conf: { ipam: { type: 'tortie-ipam', ipv4_pools: ['nope'] } }, code: 100, msg: /IP pool "nope" does not exist/ },
  { what: 'ipam not an object', conf: { ipam: 'tortie-ipam' }, code: 2, msg: /invalid ipam "tortie-ipam"/ },
  { what: 'invalid nodename', conf: { nodename: 'Bad_Node' }, code: 2, msg: /"Bad_Node"/ },
  { what: 'no nodename and no nodename file', conf: { nodename: null, nodename_file: '/nonexistent/nodename' }, code: 7, msg: /\/nonexistent\/nodename/ },
  { what: 'malformed IP in CNI_ARGS', args: 'IP=999.1.1.1', code: 2, msg: /999\.1\.1\.1/ },
  { what: 'requested IP outside every pool', args: 'IP=192.168.7.7', code: 100, msg: /192\.168\.7\.7 is not in any configured pool/ },
];

describe('tortie-ipam refuses bad input and changes nothing', () => {
  let fx: StoreFixture;
  let store: Backend;
  before(async () => {
    fx = await makeStore('embedded');
    store = await fx.open();
    await store.apply(
      resourceKey('IPPool', 'p'),
      JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'p' }, spec: { cidr: '10.50.0.0/16', blockSize: 26 } }),
    );
  });
  after(async () => {
    await store?.close();
    await fx?.stop();
  });

  for (const c of cases) {
    it(`${c.what} → code ${c.code}`, async () => {
      const before = await store.revision();
      const base: Record<string, unknown> = {
        cniVersion: '1.0.0',
        name: 'net',
        type: 'tortie-ipam',
        nodename: 'n1',
        ...fx.confFields,
        ipam: { type: 'tortie-ipam' },
      };
      for (const [k, v] of Object.entries(c.conf ?? {})) {
        if (v === null) delete base[k];
        else base[k] = v;
      }
      const r = await runCni(IPAM_BIN, {
        command: 'ADD',
        containerId: c.containerId ?? 'ctr1',
        netns: c.netns ?? '/var/run/netns/x',
        ifname: c.ifname ?? 'eth0',
        args: c.args,
        env: c.env,
        config: c.stdin ?? JSON.stringify(base),
      });
      assert.notEqual(r.code, 0, 'non-zero exit');
      assert.ok(r.json, `error JSON on stdout, got ${JSON.stringify(r.stdout)}`);
      assert.equal(r.json.code, c.code, r.stdout);
      assert.match(r.json.msg, c.msg);
      assert.equal(await store.revision(), before, 'the datastore is unchanged');
    });
  }
});
