// bin/tortiectl end to end against a store of the test's own: calicoctl's output, and bad input
// refused with a message naming the field and value while the store stays unchanged.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { openEmbedded } from '../../libcalico-go/lib/backend/embedded/embedded.js';
import { runCtl } from '../../testing/ipam-plugin-fixture.js';

const SEED_POOL = `apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: default-pool
spec:
  blockSize: 24
  cidr: 10.233.64.0/18
  ipipMode: Always
  natOutgoing: true
  nodeSelector: all()
  vxlanMode: Never
`;

const pool = (name: string, spec: string) => `apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n  name: ${name}\nspec:\n${spec}`;

/** Malformed resources: each must be refused naming the field path and the value. */
const BAD: { what: string; yaml: string; msg: RegExp }[] = [
  { what: 'wrong apiVersion', yaml: SEED_POOL.replace('projectcalico.org/v3', 'projectcalico.org/v2'), msg: /apiVersion.*projectcalico\.org\/v2/ },
  { what: 'unknown kind', yaml: 'apiVersion: projectcalico.org/v3\nkind: IPPoool\nmetadata: {name: x}\n', msg: /IPPoool/ },
  { what: 'missing name', yaml: 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {}\nspec: {cidr: 10.1.0.0/16}\n', msg: /metadata\.name/ },
  { what: 'name with capitals', yaml: pool('Bad_Name', '  cidr: 10.1.0.0/16\n'), msg: /metadata\.name.*Bad_Name/ },
  { what: 'bad CIDR', yaml: pool('p', '  cidr: 10.1.0.0/33\n'), msg: /spec\.cidr.*10\.1\.0\.0\/33/ },
  { what: 'CIDR not an address', yaml: pool('p', '  cidr: banana\n'), msg: /spec\.cidr.*banana/ },
  { what: 'block size too small', yaml: pool('p', '  cidr: 10.1.0.0/16\n  blockSize: 19\n'), msg: /spec\.blockSize.*19/ },
  { what: 'block size too large for v4', yaml: pool('p', '  cidr: 10.1.0.0/16\n  blockSize: 33\n'), msg: /spec\.blockSize.*33/ },
  { what: 'block larger than pool', yaml: pool('p', '  cidr: 10.1.0.0/26\n  blockSize: 24\n'), msg: /spec\.blockSize.*24/ },
  { what: 'v6 block size out of range', yaml: pool('p', '  cidr: fd00::/64\n  blockSize: 100\n'), msg: /spec\.blockSize.*100/ },
  { what: 'bad ipipMode', yaml: pool('p', '  cidr: 10.1.0.0/16\n  ipipMode: Sometimes\n'), msg: /spec\.ipipMode.*Sometimes/ },
  { what: 'bad vxlanMode', yaml: pool('p', '  cidr: 10.1.0.0/16\n  vxlanMode: yes-please\n'), msg: /spec\.vxlanMode.*yes-please/ },
  { what: 'IPIP and VXLAN both on', yaml: pool('p', '  cidr: 10.1.0.0/16\n  ipipMode: Always\n  vxlanMode: Always\n'), msg: /ipipMode.*vxlanMode|vxlanMode.*ipipMode/ },
  { what: 'nodeSelector does not parse', yaml: pool('p', `  cidr: 10.1.0.0/16\n  nodeSelector: "rack == "\n`), msg: /spec\.nodeSelector/ },
  { what: 'natOutgoing not a boolean', yaml: pool('p', '  cidr: 10.1.0.0/16\n  natOutgoing: maybe\n'), msg: /spec\.natOutgoing.*maybe/ },
  { what: 'unknown spec field', yaml: pool('p', '  cidr: 10.1.0.0/16\n  colour: blue\n'), msg: /spec\.colour/ },
  { what: 'overlapping pool', yaml: pool('other', '  cidr: 10.233.100.0/24\n'), msg: /10\.233\.100\.0\/24.*default-pool|default-pool.*10\.233\.100\.0\/24/ },
  { what: 'IPReservation with a bad CIDR', yaml: 'apiVersion: projectcalico.org/v3\nkind: IPReservation\nmetadata: {name: r}\nspec: {reservedCIDRs: [10.0.0.300/32]}\n', msg: /reservedCIDRs.*10\.0\.0\.300/ },
  { what: 'BGPPeer with a bad peerIP', yaml: 'apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: b}\nspec: {peerIP: 10.0.0.256, asNumber: 64512}\n', msg: /peerIP.*10\.0\.0\.256/ },
  { what: 'BGPConfiguration with a bad port', yaml: 'apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {listenPort: 70000}\n', msg: /listenPort.*70000/ },
  { what: 'IPAMConfiguration not named default', yaml: 'apiVersion: projectcalico.org/v3\nkind: IPAMConfiguration\nmetadata: {name: other}\nspec: {strictAffinity: true}\n', msg: /metadata\.name.*other/ },
  { what: 'policy with a bad action', yaml: 'apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata: {name: g}\nspec: {ingress: [{action: Maybe}]}\n', msg: /action.*Maybe/ },
  { what: 'policy selector does not parse', yaml: 'apiVersion: projectcalico.org/v3\nkind: NetworkPolicy\nmetadata: {name: np, namespace: default}\nspec: {selector: "app == \'x\' &&"}\n', msg: /selector/ },
  { what: 'second document bad: nothing written', yaml: `${pool('good', '  cidr: 10.9.0.0/16\n')}---\n${pool('bad', '  cidr: 10.10.0.0/16\n  blockSize: 40\n')}`, msg: /spec\.blockSize.*40/ },
  { what: 'YAML syntax error', yaml: 'apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: [\n', msg: /stdin|line/i },
];

describe('tortiectl', () => {
  let dir: string;
  let env: Record<string, string>;
  let store: Backend;
  const ctl = (args: string[], stdin = '') => runCtl(args, env, stdin);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortiectl-test-'));
    env = { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: join(dir, 'ds.db') };
    const r = await ctl(['apply', '-f', '-'], SEED_POOL);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "Successfully applied 1 'IPPool' resource(s)\n");
    store = openEmbedded(env.DATASTORE_PATH);
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the seed pool as calicoctl did in the seed (get ippool -o wide)', async () => {
    const r = await ctl(['get', 'ippool', '-o', 'wide']);
    assert.equal(r.code, 0, r.stderr);
    // The seed article's output (shared/seed, lines 76–77), trailing spaces trimmed as there.
    const seed = [
      'NAME           CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR',
      'default-pool   10.233.64.0/18   true   Always     Never       false      false              all()',
    ];
    assert.deepEqual(r.stdout.split('\n').slice(0, 2).map((l) => l.trimEnd()), seed);
    assert.match(r.stdout, /^NAME {11}CIDR {13}NAT {4}IPIPMODE {3}VXLANMODE {3}DISABLED {3}DISABLEBGPEXPORT {3}SELECTOR {3}\n/);
  });

  it('prints YAML with sorted keys, canonical values and maintained metadata', async () => {
    const r = await ctl(['get', 'ippool', 'default-pool', '-o', 'yaml']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^apiVersion: projectcalico\.org\/v3\nkind: IPPool\nmetadata:\n {2}creationTimestamp: "?\d{4}-\d\d-\d\dT[\d:]+Z"?\n {2}name: default-pool\n {2}resourceVersion: "?\d+"?\n {2}uid: [0-9a-f-]{36}\nspec:\n/);
    assert.match(r.stdout, / {2}ipipMode: Always\n/);
    const json = JSON.parse((await ctl(['get', 'ippool', 'default-pool', '-o', 'json'])).stdout);
    assert.equal(json.spec.cidr, '10.233.64.0/18');
  });

  it('stores input aliases canonically (ipipMode: Off → Never)', async () => {
    const r = await ctl(['create', '-f', '-'], pool('off-pool', '  cidr: 10.250.0.0/16\n  ipipMode: "Off"\n'));
    assert.equal(r.code, 0, r.stderr);
    const y = await ctl(['get', 'ippool', 'off-pool', '-o', 'json']);
    assert.equal(JSON.parse(y.stdout).spec.ipipMode, 'Never');
    assert.equal((await ctl(['delete', 'ippool', 'off-pool'])).stdout, "Successfully deleted 1 'IPPool' resource(s)\n");
  });

  for (const c of BAD) {
    it(`refuses ${c.what} and writes nothing`, async () => {
      const before = await store.revision();
      const r = await ctl(['apply', '-f', '-'], c.yaml);
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stderr, c.msg);
      assert.equal(r.stderr.trim().split('\n').length >= 1, true);
      assert.equal(await store.revision(), before, 'store unchanged');
    });
  }

  it('refuses a stale resourceVersion on replace', async () => {
    const cur = JSON.parse((await ctl(['get', 'ippool', 'default-pool', '-o', 'json'])).stdout);
    // Someone else changes the pool after we read it.
    assert.equal((await ctl(['label', 'ippool', 'default-pool', 'owner=someone'])).code, 0);
    const stale = { ...cur, spec: { ...cur.spec, natOutgoing: false } };
    const r = await ctl(['replace', '-f', '-'], JSON.stringify(stale));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /update conflict: IPPool\(default-pool\)/);
    const cidr = { ...cur, spec: { ...cur.spec, cidr: '10.233.0.0/18' } };
    const r2 = await ctl(['replace', '-f', '-'], JSON.stringify(cidr));
    assert.match(r2.stderr, /spec\.cidr cannot be changed/);
  });

  it('labels and patches, and reports what does not exist', async () => {
    assert.equal((await ctl(['label', 'ippool', 'default-pool', 'zone=a'])).code, 0);
    const again = await ctl(['label', 'ippool', 'default-pool', 'zone=b']);
    assert.match(again.stderr, /already present.*--overwrite/);
    assert.equal((await ctl(['label', 'ippool', 'default-pool', 'zone=b', '--overwrite'])).code, 0);
    const before = JSON.parse((await ctl(['get', 'ippool', 'default-pool', '-o', 'json'])).stdout);
    assert.equal(before.spec.natOutgoing, true);
    const p = await ctl(['patch', 'ippool', 'default-pool', '-p', '{"spec":{"natOutgoing":false}}']);
    assert.equal(p.stdout, "Successfully patched 1 'IPPool' resource\n");
    const got = JSON.parse((await ctl(['get', 'ippool', 'default-pool', '-o', 'json'])).stdout);
    assert.equal(got.metadata.labels.zone, 'b');
    assert.equal(got.spec.natOutgoing ?? false, false, 'false is omitted, as Calico omits it');
    await ctl(['patch', 'ippool', 'default-pool', '-p', '{"spec":{"natOutgoing":true}}']);
    const missing = await ctl(['get', 'ippool', 'nope']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /resource does not exist: IPPool\(nope\)/);
    assert.match((await ctl(['get', 'frobs'])).stderr, /"frobs" is not supported/);
  });

  it('configures and shows IPAM settings', async () => {
    const show = await ctl(['ipam', 'show', '--show-configuration']);
    assert.equal(
      show.stdout,
      '+--------------------+-------+\n|      PROPERTY      | VALUE |\n+--------------------+-------+\n| StrictAffinity     | false |\n| AutoAllocateBlocks | true  |\n| MaxBlocksPerHost   |     0 |\n+--------------------+-------+\n',
    );
    assert.equal((await ctl(['ipam', 'configure', '--strictaffinity=true'])).stdout, 'Successfully set StrictAffinity to: true\n');
    assert.match((await ctl(['ipam', 'show', '--show-configuration'])).stdout, /\| StrictAffinity {5}\| true {2}\|/);
    assert.match((await ctl(['ipam', 'configure', '--strictaffinity=perhaps'])).stderr, /"perhaps"/);
    await ctl(['ipam', 'configure', '--strictaffinity=false']);
    const rel = await ctl(['ipam', 'release', '--ip=10.233.64.9']);
    assert.equal(rel.code, 1);
    assert.match(rel.stderr, /IP address 10\.233\.64\.9 is not assigned/);
    assert.equal((await ctl(['ipam', 'show', '--ip=10.233.64.9'])).stdout, '10.233.64.9 is not assigned\n');
  });

  it('selects the datastore from a CalicoAPIConfig file; kubernetes without a connection is refused plainly', async () => {
    const cfg = join(dir, 'tortiectl.cfg');
    writeFileSync(cfg, `apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreType: embedded\n  datastorePath: ${env.DATASTORE_PATH}\n`);
    const r = await runCtl(['get', 'ippool', '-c', cfg], {});
    assert.match(r.stdout, /default-pool/);
    const k = await runCtl(['get', 'ippool'], { DATASTORE_TYPE: 'kubernetes' });
    assert.equal(k.code, 1);
    assert.match(k.stderr, /no Kubernetes connection configured: set KUBECONFIG/);
    const kc = await runCtl(['get', 'ippool'], { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: join(dir, 'no-such-kubeconfig') });
    assert.equal(kc.code, 1);
    assert.match(kc.stderr, /kubeconfig .*no-such-kubeconfig: cannot read it/);
    writeFileSync(cfg, 'apiVersion: projectcalico.org/v3\nkind: CalicoAPIConfig\nspec:\n  datastoreTyp: etcdv3\n');
    assert.match((await runCtl(['get', 'ippool', '-c', cfg], {})).stderr, /spec\.datastoreTyp: unknown field/);
  });
});
