// What Tortie does not enforce is refused at apply — through the real tortiectl over an embedded
// datastore — while the same resources, stored by Calico before, stay readable and deletable.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCtl } from '../../../../testing/ipam-plugin-fixture.js';
import { openEmbedded } from '../../backend/embedded/embedded.js';
import { resourceKey } from '../../backend/keys.js';

const ROOT = new URL('../../../../../', import.meta.url).pathname;
const skip = existsSync(join(ROOT, 'bin', 'tortiectl')) ? false : 'bin/tortiectl not built (npm run build)';

const cases: Array<{ what: string; yaml: string; message: string }> = [
  {
    what: 'HostEndpoint',
    yaml: 'apiVersion: projectcalico.org/v3\nkind: HostEndpoint\nmetadata: {name: n1-eth0}\nspec: {node: n1, interfaceName: eth0}\n',
    message:
      'HostEndpoint "n1-eth0": kind: "HostEndpoint" is not supported: host endpoint policy is not enforced by Tortie (it polices pods only), so a HostEndpoint would protect nothing',
  },
  {
    what: 'GlobalNetworkPolicy preDNAT',
    yaml:
      'apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: block-nodeports}\n' +
      'spec: {preDNAT: true, applyOnForward: true, selector: has(host), ingress: [{action: Deny}]}\n',
    message: 'spec.preDNAT: true is not supported: host endpoint policy is not enforced by Tortie (pre-DNAT policy applies to host endpoints only',
  },
  {
    what: 'GlobalNetworkPolicy doNotTrack',
    yaml: 'apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: untracked}\nspec: {doNotTrack: true, applyOnForward: true}\n',
    message: 'spec.doNotTrack: true is not supported: host endpoint policy is not enforced by Tortie',
  },
  {
    what: 'NetworkPolicy with an HTTP match',
    yaml:
      'apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: get-only, namespace: shop}\n' +
      'spec: {selector: app == "web", ingress: [{action: Allow, protocol: TCP, http: {methods: [GET]}}]}\n',
    message:
      'spec.ingress[0].http: {"methods":["GET"]} is not supported: Tortie has no L7 (HTTP) enforcement, so the rule would allow every request on its connections',
  },
  {
    what: 'FelixConfiguration wireguardEnabled',
    yaml: 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: default}\nspec: {wireguardEnabled: true}\n',
    message:
      'FelixConfiguration "default": spec.wireguardEnabled: true is not supported by Tortie: Tortie has no WireGuard encryption (and this kernel has no WireGuard), so pod traffic would cross the network unencrypted',
  },
  {
    what: 'FelixConfiguration bpfEnabled',
    yaml: 'apiVersion: projectcalico.org/v3\nkind: FelixConfiguration\nmetadata: {name: node.n1}\nspec: {bpfEnabled: true}\n',
    message: 'FelixConfiguration "node.n1": spec.bpfEnabled: true is not supported by Tortie: Tortie has no eBPF dataplane (it programs nftables)',
  },
];

describe('refused at apply, readable when stored', { skip }, () => {
  let dir: string;
  let env: Record<string, string>;
  const ctl = (args: string[], stdin = '') => runCtl(args, env, stdin);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-unsupported-'));
    env = { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: join(dir, 'ds.db') };
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const c of cases) {
    it(`tortiectl apply refuses ${c.what}, naming the field, the value and why; nothing is stored`, async () => {
      for (const verb of ['apply', 'create']) {
        const r = await ctl([verb, '-f', '-'], c.yaml);
        assert.notEqual(r.code, 0, `${verb} must fail: ${r.stdout}`);
        assert.ok(r.stderr.includes(c.message), `${verb} stderr should include ${JSON.stringify(c.message)}:\n${r.stderr}`);
      }
      const kind = /kind: (\w+)/.exec(c.yaml)![1].toLowerCase();
      const got = await ctl(['get', kind, '-A', '-o', 'json']);
      assert.equal(got.code, 0, got.stderr);
      assert.deepEqual(JSON.parse(got.stdout).items, [], 'nothing stored');
    });
  }

  it('the same resources written by Calico stay readable and deletable', async () => {
    const store = openEmbedded(env.DATASTORE_PATH);
    const put = (kind: string, name: string, spec: Record<string, unknown>, namespace?: string) =>
      store.create(
        resourceKey(kind, name, namespace),
        JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind, metadata: { name, ...(namespace ? { namespace } : {}) }, spec }),
      );
    try {
      await put('HostEndpoint', 'n1-eth0', { node: 'n1', interfaceName: 'eth0' });
      await put('FelixConfiguration', 'default', { wireguardEnabled: true, bpfEnabled: true });
      await put('GlobalNetworkPolicy', 'block-nodeports', { preDNAT: true, applyOnForward: true, selector: 'has(host)', ingress: [{ action: 'Deny' }] });
      await put('NetworkPolicy', 'get-only', { selector: 'app == "web"', ingress: [{ action: 'Allow', protocol: 'TCP', http: { methods: ['GET'] } }] }, 'shop');
    } finally {
      await store.close();
    }
    const hep = await ctl(['get', 'hostendpoints', '-o', 'wide']);
    assert.equal(hep.code, 0, hep.stderr);
    assert.match(hep.stdout, /^n1-eth0 +n1 +eth0 /m);
    const fc = JSON.parse((await ctl(['get', 'felixconfiguration', 'default', '-o', 'json'])).stdout);
    assert.equal(fc.spec.wireguardEnabled, true);
    const gnp = JSON.parse((await ctl(['get', 'globalnetworkpolicy', 'block-nodeports', '-o', 'json'])).stdout);
    assert.equal(gnp.spec.preDNAT, true);
    const np = JSON.parse((await ctl(['get', 'networkpolicy', 'get-only', '-n', 'shop', '-o', 'json'])).stdout);
    assert.deepEqual(np.spec.ingress[0].http, { methods: ['GET'] });
    // Changing them goes through validation (so it is refused); deleting does not.
    const relabel = await ctl(['label', 'hostendpoint', 'n1-eth0', 'a=b']);
    assert.notEqual(relabel.code, 0);
    assert.match(relabel.stderr, /host endpoint policy is not enforced by Tortie/);
    for (const args of [
      ['delete', 'hostendpoint', 'n1-eth0'],
      ['delete', 'felixconfiguration', 'default'],
      ['delete', 'globalnetworkpolicy', 'block-nodeports'],
      ['delete', 'networkpolicy', 'get-only', '-n', 'shop'],
    ]) {
      const d = await ctl(args);
      assert.equal(d.code, 0, `${args.join(' ')}: ${d.stderr}`);
    }
  });
});
