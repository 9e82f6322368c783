// tortiectl policy explain over an embedded datastore, and apply of a Kubernetes NetworkPolicy.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCtl } from '../../testing/ipam-plugin-fixture.js';
import { parsePortProto } from './policy.js';

const wep = (ns: string, pod: string, ip: string, iface: string) => `apiVersion: projectcalico.org/v3
kind: WorkloadEndpoint
metadata:
  namespace: ${ns}
  labels: {app: ${pod}, projectcalico.org/namespace: ${ns}, projectcalico.org/orchestrator: k8s}
spec:
  node: n1
  orchestrator: k8s
  pod: ${pod}
  endpoint: eth0
  interfaceName: ${iface}
  ipNetworks: [${ip}/32]
  profiles: [kns.${ns}]
  ports:
    - {name: http, port: 8080, protocol: TCP}
`;
const profile = (ns: string, team: string) => `apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: kns.${ns}}
spec:
  ingress: [{action: Allow}]
  egress: [{action: Allow}]
  labelsToApply: {pcns.team: ${team}, pcns.projectcalico.org/name: ${ns}}
`;

const SEED = [profile('shop', 'red'), profile('bank', 'blue'), wep('shop', 'web', '10.9.0.1', 'cali1111111'), wep('bank', 'vault', '10.9.1.1', 'cali2222222')].join('---\n');

const K8S_NP = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: vault-from-red, namespace: bank}
spec:
  podSelector: {matchLabels: {app: vault}}
  ingress:
    - from:
        - namespaceSelector: {matchLabels: {team: red}}
      ports:
        - {port: http}
`;

describe('tortiectl policy explain', () => {
  let dir: string;
  let env: Record<string, string>;
  const ctl = (args: string[], stdin = '') => runCtl(args, env, stdin);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tortiectl-policy-'));
    env = { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: join(dir, 'ds.db') };
    const r = await ctl(['apply', '-f', '-'], SEED);
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('allows through the namespace profiles when no policy applies', async () => {
    const r = await ctl(['policy', 'explain', 'shop/web', 'bank/vault', '8080/TCP']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stdout,
      'shop/web (10.9.0.1) -> bank/vault (10.9.1.1) 8080/TCP: ALLOWED\n' +
        '  egress  of shop/web: allow by profile kns.shop, egress rule 0: Allow\n' +
        '  ingress of bank/vault: allow by profile kns.bank, ingress rule 0: Allow\n',
    );
  });

  it('applies a Kubernetes NetworkPolicy as knp.default.<name> and explains it', async () => {
    const a = await ctl(['apply', '-f', '-'], K8S_NP);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(a.stdout, "Successfully applied 1 'NetworkPolicy' resource(s)\n");
    const got = JSON.parse((await ctl(['get', 'networkpolicy', 'knp.default.vault-from-red', '-n', 'bank', '-o', 'json'])).stdout);
    assert.equal(got.spec.order, 1000);
    assert.equal(got.spec.tier, 'default');

    const ok = await ctl(['policy', 'explain', 'shop/web', 'bank/vault', '8080/tcp']);
    assert.match(ok.stdout, /: ALLOWED\n/);
    assert.match(ok.stdout, /ingress of bank\/vault: allow by tier default, NetworkPolicy bank\/knp\.default\.vault-from-red, ingress rule 0: Allow\n/);

    const port = await ctl(['policy', 'explain', 'shop/web', 'bank/vault', '80/TCP']);
    assert.match(port.stdout, /: DENIED\n/);
    assert.match(port.stdout, /ingress of bank\/vault: deny by tier default: end of tier/);

    const byIp = await ctl(['policy', 'explain', '10.1.2.3', '10.9.1.1', '8080/TCP']);
    assert.match(byIp.stdout, /^10\.1\.2\.3 -> 10\.9\.1\.1 \(bank\/vault\) 8080\/TCP: DENIED\n/);
    assert.match(byIp.stdout, /ingress of bank\/vault: deny by tier default: end of tier/);
    assert.match(byIp.stdout, /egress {2}of 10\.1\.2\.3: allow by 10\.1\.2\.3 is not a workload endpoint/);

    const back = await ctl(['policy', 'explain', 'bank/vault', 'shop/web', 'icmp']);
    assert.match(back.stdout, / ICMP: ALLOWED\n/);

    const del = await ctl(['delete', '-f', '-'], K8S_NP);
    assert.equal(del.stdout, "Successfully deleted 1 'NetworkPolicy' resource(s)\n", del.stderr);
  });

  it('refuses a malformed Kubernetes NetworkPolicy naming the field', async () => {
    const r = await ctl(['apply', '-f', '-'], K8S_NP.replace('{port: http}', '{port: 80, endPort: 70}'));
    assert.equal(r.code, 1);
    assert.match(r.stderr, /spec\.ingress\[0\]\.ports\[0\]\.endPort: 70 is less than port 80/);
  });

  it('reports bad arguments', async () => {
    assert.match((await ctl(['policy', 'explain', 'shop/web'])).stderr, /Usage:/);
    assert.match((await ctl(['policy', 'explain', 'shop/web', 'nope/x'])).stderr, /unknown endpoint "nope\/x"/);
    assert.match((await ctl(['policy', 'explain', 'shop', 'bank/vault'])).stderr, /source "shop" is neither NS\/POD nor an IP/);
    assert.match((await ctl(['policy', 'frob'])).stderr, /policy needs: explain/);
    assert.throws(() => parsePortProto('80/GRE'), /PORT\/PROTO/);
    assert.deepEqual(parsePortProto('53/udp'), { protocol: 'UDP', port: 53 });
    assert.deepEqual(parsePortProto('443'), { protocol: 'TCP', port: 443 });
  });
});
