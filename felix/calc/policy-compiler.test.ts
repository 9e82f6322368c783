// The policy compiler (pure): golden snippets, determinism, and `nft -c -f` on every truth-table
// case's script inside a namespace created here (`tortie-t<hex>-pcc`), deleted in `after`.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compilePolicy, FILTER_TABLE } from './policy-compiler.js';
import { POD_KEYS, calicoResources, caseFiles, e2eModel, loadCase } from '../../libcalico-go/lib/policy/truth-table.js';
import { emptyModel, makeEndpoint } from '../../libcalico-go/lib/policy/model.js';
import { localEndpointsOf } from './policy-inputs.js';

const IP = '/usr/sbin/ip';
const NFT = '/usr/sbin/nft';
const CASES = fileURLToPath(new URL('../../../libcalico-go/lib/policy/testdata/cases', import.meta.url));
const isRoot = process.getuid?.() === 0;
const liveSkip = !isRoot ? 'needs root (network namespaces)' : !existsSync(NFT) ? 'nft is not installed' : false;
const local9 = POD_KEYS.map((k, i) => ({ key: k, interfaceName: `cali${i}` }));

function modelOf(file: string) {
  return e2eModel(calicoResources(loadCase(file).policies));
}

describe('compilePolicy (pure)', () => {
  it('recreates one table atomically and starts each hook with conntrack', () => {
    const m = emptyModel();
    m.endpoints.push(makeEndpoint({ namespace: 'x', name: 'a', ips: ['10.0.0.1'] }));
    const r = compilePolicy(m, [{ key: 'x/a', interfaceName: 'caliaaa' }]);
    const lines = r.script.split('\n');
    assert.deepEqual(lines.slice(0, 3), [`table inet ${FILTER_TABLE} {}`, `delete table inet ${FILTER_TABLE}`, `table inet ${FILTER_TABLE} {`]);
    assert.match(r.script, /chain forward \{\n\t\ttype filter hook forward priority filter; policy accept;\n\t\tct state established,related accept\n\t\tiifname \{ "caliaaa" \} ct state invalid drop\n/);
    assert.match(r.script, /\t\tiifname "caliaaa" jump ee-[0-9a-f]{12}\n/);
    assert.match(r.script, /\t\toifname "caliaaa" jump ei-[0-9a-f]{12}\n/);
    // no policy, no kns.x Profile resource: allowed by the (absent) profile
    assert.match(r.script, /# egress of x\/a\n\t\tmeta mark set meta mark & 0xfcffffff\n\t\t# profile kns.x is absent: allow\n\t\treturn\n/);
    assert.deepEqual(r.unknown, []);
    assert.deepEqual(compilePolicy(m, [{ key: 'x/zz', interfaceName: 'calizz' }]).unknown, ['x/zz']);
  });

  it('default deny ingress: a tier chain that drops at its end', () => {
    const r = compilePolicy(modelOf(`${CASES}/02-default-deny-ingress.yaml`), local9);
    assert.match(r.script, /# tier default, ingress of x\/a\n\t\tjump ri-[0-9a-f]{12}\n\t\tmeta mark & 0x03000000 != 0x00000000 return\n\t\tdrop\n/);
  });

  it('selectors become named sets of endpoint addresses; ports an anonymous set', () => {
    const r = compilePolicy(modelOf(`${CASES}/22-tier-pass-to-default.yaml`), local9);
    assert.match(r.script, /# namespaceSelector ns == 'y'\n\tset s-[0-9a-f]{12} \{\n\t\ttype ipv4_addr\n\t\tflags interval\n\t\tauto-merge\n\t\telements = \{ 10\.200\.1\.10\/32, 10\.200\.1\.11\/32, 10\.200\.1\.12\/32 \}\n/);
    assert.match(r.script, /ip saddr @s-[0-9a-f]{12} meta mark set meta mark \| 0x02000000 return\n/);
    const p = compilePolicy(modelOf(`${CASES}/10-ports.yaml`), local9);
    assert.match(p.script, /\t\tmeta l4proto 6 th dport \{ 81 \} meta mark set meta mark \| 0x01000000 return\n/);
    const n = compilePolicy(modelOf(`${CASES}/11-named-port.yaml`), local9);
    assert.match(n.script, /type ipv4_addr \. inet_proto \. inet_service/);
    assert.match(n.script, /ip daddr \. meta l4proto \. th dport @np-[0-9a-f]{12}/);
  });

  it('is deterministic and independent of the order of local endpoints', () => {
    const m = modelOf(`${CASES}/22-tier-pass-to-default.yaml`);
    assert.equal(compilePolicy(m, local9).script, compilePolicy(m, [...local9].reverse()).script);
  });
});

describe('compilePolicy scripts pass `nft -c -f`', { skip: liveSkip }, () => {
  const NS = `tortie-t${randomBytes(3).toString('hex')}-pcc`;
  before(() => {
    assert.equal(spawnSync(IP, ['netns', 'add', NS]).status, 0);
  });
  after(() => {
    spawnSync(IP, ['netns', 'del', NS]);
  });
  it('every truth-table case, all nine e2e pods local', () => {
    const files = caseFiles(CASES);
    assert.ok(files.length >= 20);
    for (const f of files) {
      const r = compilePolicy(modelOf(f), local9, { endpointToHostAction: 'Drop' });
      const c = spawnSync(IP, ['netns', 'exec', NS, NFT, '-c', '-f', '-'], { input: r.script, encoding: 'utf8' });
      assert.equal(c.status, 0, `${f}: ${c.stderr}`);
    }
    assert.equal(spawnSync(IP, ['netns', 'exec', NS, NFT, 'list', 'ruleset'], { encoding: 'utf8' }).stdout.trim(), '');
  });
});

describe('localEndpointsOf (pure)', () => {
  it('keeps this node\'s endpoints with an interface, keyed NS/POD', () => {
    const wep = (name: string, ns: string, spec: Record<string, unknown>) => ({ apiVersion: 'projectcalico.org/v3', kind: 'WorkloadEndpoint', metadata: { name, namespace: ns }, spec });
    const got = localEndpointsOf(
      [
        wep('n1-k8s-a-eth0', 'x', { node: 'n1', pod: 'a', interfaceName: 'calib' }),
        wep('n2-k8s-b-eth0', 'x', { node: 'n2', pod: 'b', interfaceName: 'calic' }),
        wep('n1-k8s-c-eth0', 'y', { node: 'n1', pod: 'c' }),
        wep('w', 'z', { node: 'n1', interfaceName: 'calia' }),
      ],
      'n1',
    );
    assert.deepEqual(got, [
      { key: 'z/w', interfaceName: 'calia' },
      { key: 'x/a', interfaceName: 'calib' },
    ]);
  });
});
