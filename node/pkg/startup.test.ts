import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbedded } from '../../libcalico-go/lib/backend/embedded/embedded.js';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { parseIpAddrJson, type HostInterface } from './autodetect.js';
import { type Env, parseAgentConfig } from './config.js';
import { createLogger } from '../../libcalico-go/lib/logutils/index.js';
import { type DriftFinding, findPoolDrift, HOSTNAME_LABEL, runStartup, StartupError } from './startup.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'tortie-startup-'));
  dirs.push(d);
  return d;
}

const IFACES: HostInterface[] = parseIpAddrJson(
  JSON.stringify([
    { ifindex: 1, ifname: 'lo', mtu: 65536, operstate: 'UNKNOWN', addr_info: [{ family: 'inet', local: '127.0.0.1', prefixlen: 8 }] },
    { ifindex: 2, ifname: 'eth0', mtu: 1500, operstate: 'UP', addr_info: [{ family: 'inet', local: '10.0.0.21', prefixlen: 16 }] },
    { ifindex: 3, ifname: 'docker0', mtu: 1500, operstate: 'UP', addr_info: [{ family: 'inet', local: '172.17.0.1', prefixlen: 16 }] },
  ]),
);

interface Fixture {
  dir: string;
  store: Backend;
  client: ResourceClient;
  env: (extra: Env) => Env;
}

function fixture(): Fixture {
  const dir = tmp();
  const store = openEmbedded(join(dir, 'datastore.db'));
  after(() => store.close());
  return {
    dir,
    store,
    client: new ResourceClient(store),
    env: (extra) => ({ DATASTORE_PATH: join(dir, 'datastore.db'), TORTIE_STATE_DIR: join(dir, 'state'), ...extra }),
  };
}

function run(f: Fixture, extra: Env, lines: string[] = [], interfaces = async () => IFACES) {
  const cfg = parseAgentConfig(f.env(extra), { hostname: () => 'unused' });
  return runStartup(f.store, cfg, {
    log: createLogger('startup.ts', { sink: (l) => lines.push(l), level: 'DEBUG' }),
    interfaces,
    version: 'v9.9.9',
  });
}

test('first start on an empty store: ClusterInformation, default pool, Node, state files', async () => {
  const f = fixture();
  const lines: string[] = [];
  const r = await run(
    f,
    {
      NODENAME: 'node-a',
      IP: 'autodetect',
      AS: '64512',
      CLUSTER_TYPE: 'k8s,bgp',
      CALICO_IPV4POOL_CIDR: '10.233.64.0/18',
      CALICO_IPV4POOL_IPIP: 'Always',
    },
    lines,
  );
  assert.equal(r.poolCreated, true);
  assert.deepEqual(r.drift, []);
  assert.equal(r.ipv4Address, '10.0.0.21/16');

  const ci = await f.client.get('ClusterInformation', 'default');
  const cis = ci!.spec as Record<string, unknown>;
  assert.match(cis.clusterGUID as string, /^[0-9a-f]{32}$/);
  assert.equal(cis.clusterType, 'k8s,bgp');
  assert.equal(cis.calicoVersion, 'v9.9.9');
  assert.equal(cis.datastoreReady, true);

  const pools = await f.client.list('IPPool');
  assert.equal(pools.length, 1);
  assert.equal(pools[0].metadata.name, 'default-ipv4-ippool');
  assert.deepEqual(
    { ...(pools[0].spec as object) },
    {
      allowedUses: ['Workload', 'Tunnel'],
      assignmentMode: 'Automatic',
      blockSize: 26,
      cidr: '10.233.64.0/18',
      ipipMode: 'Always',
      natOutgoing: true,
      nodeSelector: 'all()',
      vxlanMode: 'Never',
    },
  );

  const node = await f.client.get('Node', 'node-a');
  assert.deepEqual(node!.spec, { bgp: { asNumber: 64512, ipv4Address: '10.0.0.21/16' } });
  assert.equal(node!.metadata.labels?.[HOSTNAME_LABEL], 'node-a');
  assert.equal(node!.status, undefined);

  assert.equal(readFileSync(join(f.dir, 'state', 'nodename'), 'utf8'), 'node-a');
  // eth0 1500, the pool uses IPIP: 1480.
  assert.equal(readFileSync(join(f.dir, 'state', 'mtu'), 'utf8'), '1480');
  assert.ok(lines.some((l) => /\[INFO\]\[\d+\] startup\.ts: Created default IPv4 pool default-ipv4-ippool \(10\.233\.64\.0\/18\)/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => /Using autodetected IPv4 address on interface eth0: 10\.0\.0\.21\/16/.test(l)));

  // A restart changes nothing but what the environment asks for, and keeps the GUID.
  const rev = node!.metadata.resourceVersion;
  const r2 = await run(f, { NODENAME: 'node-a', CLUSTER_TYPE: 'k8s,kubeadm', CALICO_IPV4POOL_CIDR: '10.233.64.0/18', CALICO_IPV4POOL_IPIP: 'Always' });
  assert.equal(r2.poolCreated, false);
  assert.deepEqual(r2.drift, []);
  const ci2 = (await f.client.get('ClusterInformation', 'default'))!.spec as Record<string, unknown>;
  assert.equal(ci2.clusterGUID, cis.clusterGUID);
  assert.equal(ci2.clusterType, 'k8s,bgp,kubeadm');
  assert.equal((await f.client.get('Node', 'node-a'))!.metadata.resourceVersion, rev, 'Node not rewritten');
  assert.equal((await f.client.list('IPPool')).length, 1);
});

test("the seed's drift: pool ipipMode Always, env CALICO_IPV4POOL_IPIP=Off", async () => {
  const f = fixture();
  await f.client.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: 'default-pool' },
    spec: { cidr: '10.233.64.0/18', blockSize: 24, ipipMode: 'Always', natOutgoing: true, nodeSelector: 'all()', vxlanMode: 'Never' },
  });
  const lines: string[] = [];
  const env = {
    NODENAME: 'playcekube-worker01',
    IP: '10.0.0.21/16',
    CALICO_IPV4POOL_CIDR: '10.233.64.0/18',
    CALICO_IPV4POOL_IPIP: 'Off',
    CALICO_IPV4POOL_VXLAN: 'Never',
    CLUSTER_TYPE: 'kubespray,bgp',
  };
  const r = await run(f, env, lines);
  const expected =
    'CALICO_IPV4POOL_IPIP=Off (→ Never) but IPPool default-pool has ipipMode Always; the environment only seeds a pool at first start';
  assert.equal(r.poolCreated, false);
  assert.deepEqual(
    r.drift.map((d) => d.message),
    [expected],
  );
  assert.deepEqual(
    (await f.client.list('IPPool')).map((p) => p.metadata.name),
    ['default-pool'],
    'no default-ipv4-ippool when a pool exists',
  );
  assert.ok(lines.some((l) => l.includes(`[WARNING]`) && l.endsWith(`startup.ts: Configuration drift: ${expected}`)), lines.join('\n'));

  const node = await f.client.get('Node', 'playcekube-worker01');
  const drift = (node!.status as { tortie: { configDrift: DriftFinding[] } }).tortie.configDrift;
  assert.deepEqual(drift, [
    {
      variable: 'CALICO_IPV4POOL_IPIP',
      envValue: 'Off',
      pool: 'default-pool',
      field: 'ipipMode',
      expected: 'Never',
      actual: 'Always',
      message: expected,
    },
  ]);
  // The pool uses IPIP, so the pod MTU is 1500 - 20 whatever the environment says.
  assert.equal(readFileSync(join(f.dir, 'state', 'mtu'), 'utf8'), '1480');

  // Once the environment agrees, the finding goes away from the Node's status.
  const r2 = await run(f, { ...env, CALICO_IPV4POOL_IPIP: 'Always' });
  assert.deepEqual(r2.drift, []);
  assert.equal((await f.client.get('Node', 'playcekube-worker01'))!.status, undefined);
});

test('an existing Node keeps its labels and other fields; IP unset keeps the stored address', async () => {
  const f = fixture();
  await f.client.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name: 'node-b', labels: { rack: 'r1', [HOSTNAME_LABEL]: 'node-b.example' } },
    spec: {
      bgp: { ipv4Address: '10.0.0.99/16', ipv4IPIPTunnelAddr: '10.233.77.0', asNumber: 65001 },
      orchRefs: [{ nodeName: 'node-b', orchestrator: 'k8s' }],
    },
    status: { podCIDRs: ['10.244.1.0/24'] },
  });
  let asked = 0;
  const r = await run(f, { NODENAME: 'node-b' }, [], async () => {
    asked++;
    return IFACES;
  });
  assert.equal(r.ipv4Address, '10.0.0.99/16', 'stored address kept, not autodetected (10.0.0.21)');
  const node = (await f.client.get('Node', 'node-b'))!;
  assert.deepEqual(node.metadata.labels, { rack: 'r1', [HOSTNAME_LABEL]: 'node-b.example' });
  assert.deepEqual(node.spec, {
    bgp: { asNumber: 65001, ipv4Address: '10.0.0.99/16', ipv4IPIPTunnelAddr: '10.233.77.0' },
    orchRefs: [{ nodeName: 'node-b', orchestrator: 'k8s' }],
  });
  assert.deepEqual(node.status, { podCIDRs: ['10.244.1.0/24'] });
  assert.equal(asked, 1, 'interfaces read once (for the MTU only)');

  // IP=autodetect re-detects and overwrites; a bare IP takes the interface prefix.
  assert.equal((await run(f, { NODENAME: 'node-b', IP: 'autodetect' })).ipv4Address, '10.0.0.21/16');
  assert.equal((await run(f, { NODENAME: 'node-b', IP: '10.0.0.21' })).ipv4Address, '10.0.0.21/16');
  assert.equal((await run(f, { NODENAME: 'node-b', IP: '192.0.2.7' })).ipv4Address, '192.0.2.7/32');
  assert.equal((await run(f, { NODENAME: 'node-b', IP: 'none' })).ipv4Address, '192.0.2.7/32', 'none leaves it alone');
});

test('another Node holding the address stops startup with a clear error', async () => {
  const f = fixture();
  await f.client.create({
    apiVersion: 'projectcalico.org/v3',
    kind: 'Node',
    metadata: { name: 'node-old' },
    spec: { bgp: { ipv4Address: '10.0.0.21/24' } },
  });
  await assert.rejects(
    run(f, { NODENAME: 'node-new', IP: 'autodetect' }),
    (e: unknown) => e instanceof StartupError && /Node node-old is already using the IPv4 address 10\.0\.0\.21\/24/.test(e.message),
  );
  assert.equal(await f.client.get('Node', 'node-new'), null);
});

test('NO_DEFAULT_POOLS creates no pool; a failing interface read only costs the MTU file', async () => {
  const f = fixture();
  const lines: string[] = [];
  const r = await run(f, { NODENAME: 'node-c', IP: '10.0.0.5/24', NO_DEFAULT_POOLS: 'true' }, lines, async () => {
    throw new Error('ip not available');
  });
  assert.equal(r.poolCreated, false);
  assert.deepEqual(await f.client.list('IPPool'), []);
  assert.equal(r.mtu, undefined);
  assert.ok(lines.some((l) => /\[WARNING\].*Could not work out the pod MTU \(ip not available\)/.test(l)));
  assert.equal(readFileSync(join(f.dir, 'state', 'nodename'), 'utf8'), 'node-c');
});

const pool = (name: string, spec: Record<string, unknown>): Resource => ({
  apiVersion: 'projectcalico.org/v3',
  kind: 'IPPool',
  metadata: { name },
  spec: { blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', nodeSelector: 'all()', ...spec },
});

test('findPoolDrift: which pool, which variables', () => {
  const cfg = (env: Env) => parseAgentConfig(env, { hostname: () => 'h' }).defaultPool;
  const pools = [pool('a', { cidr: '10.10.0.0/16' }), pool('b', { cidr: '10.233.64.0/18', blockSize: 24, ipipMode: 'Always', natOutgoing: true })];

  // Only variables that are set are compared.
  assert.deepEqual(findPoolDrift(cfg({}), pools), []);
  // The pool with the same CIDR is the one compared.
  const d = findPoolDrift(
    cfg({
      CALICO_IPV4POOL_CIDR: '10.233.64.0/18',
      CALICO_IPV4POOL_BLOCK_SIZE: '26',
      CALICO_IPV4POOL_NAT_OUTGOING: 'false',
      CALICO_IPV4POOL_VXLAN: 'CrossSubnet',
      CALICO_IPV4POOL_NODE_SELECTOR: 'all()',
    }),
    pools,
  );
  assert.deepEqual(
    d.map((x) => x.message),
    [
      'CALICO_IPV4POOL_BLOCK_SIZE=26 but IPPool b has blockSize 24; the environment only seeds a pool at first start',
      'CALICO_IPV4POOL_VXLAN=CrossSubnet but IPPool b has vxlanMode Never; the environment only seeds a pool at first start',
      'CALICO_IPV4POOL_NAT_OUTGOING=false but IPPool b has natOutgoing true; the environment only seeds a pool at first start',
    ],
  );
  // No pool with that CIDR and several pools: the CIDR itself is the finding.
  assert.deepEqual(
    findPoolDrift(cfg({ CALICO_IPV4POOL_CIDR: '172.16.0.0/16' }), pools).map((x) => x.message),
    [
      'CALICO_IPV4POOL_CIDR=172.16.0.0/16 but no IPPool has that CIDR (IPv4 pools: a (10.10.0.0/16), b (10.233.64.0/18)); the environment only seeds a pool at first start',
    ],
  );
  // A single pool is the one the environment meant.
  assert.deepEqual(
    findPoolDrift(cfg({ CALICO_IPV4POOL_CIDR: '172.16.0.0/16', CALICO_IPV4POOL_IPIP: 'Never' }), [pools[1]]).map((x) => x.message),
    [
      'CALICO_IPV4POOL_CIDR=172.16.0.0/16 but IPPool b has cidr 10.233.64.0/18; the environment only seeds a pool at first start',
      'CALICO_IPV4POOL_IPIP=Never but IPPool b has ipipMode Always; the environment only seeds a pool at first start',
    ],
  );
  // Selectors compare by meaning.
  assert.deepEqual(findPoolDrift(cfg({ CALICO_IPV4POOL_NODE_SELECTOR: 'all()' }), [pool('c', { cidr: '10.0.0.0/16', nodeSelector: 'all()' })]), []);
  assert.equal(
    findPoolDrift(cfg({ CALICO_IPV4POOL_NODE_SELECTOR: "zone == 'a'" }), [pool('c', { cidr: '10.0.0.0/16' })])[0].message,
    "CALICO_IPV4POOL_NODE_SELECTOR=zone == 'a' but IPPool c has nodeSelector all(); the environment only seeds a pool at first start",
  );
  // No IPv4 pool at all: nothing to compare (the pool gets seeded instead).
  assert.deepEqual(findPoolDrift(cfg({ CALICO_IPV4POOL_IPIP: 'Off' }), [pool('v6', { cidr: 'fd00::/48' })]), []);
});

test('kubernetes: the Node must exist (never created); IP_AUTODETECTION_METHOD=kubernetes-internal-ip takes its InternalIP; kdd in clusterType; no label added', async () => {
  // The start-up logic with DATASTORE_TYPE=kubernetes over a store holding what the derived Node
  // handler gives (the live path is node/pkg/agent-kdd.test.ts).
  const f = fixture();
  const env = { NODENAME: 'kw1', DATASTORE_TYPE: 'kubernetes', KUBECONFIG: '/unused', CLUSTER_TYPE: 'k8s,bgp', IP: 'autodetect', IP_AUTODETECTION_METHOD: 'kubernetes-internal-ip' };
  await assert.rejects(run(f, env), /Kubernetes Node kw1 does not exist: on the kubernetes datastore the Node is the k8s Node that kubelet registers/);
  assert.equal(await f.client.get('Node', 'kw1'), null, 'not created');

  await f.client.create({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'kw1' }, spec: { addresses: [{ address: '10.0.0.21', type: 'InternalIP' }] } });
  const lines: string[] = [];
  const r = await run(f, env, lines);
  assert.equal(r.ipv4Address, '10.0.0.21/16', 'the InternalIP with the prefix of eth0 holding it');
  assert.ok(lines.some((l) => /Using the Kubernetes Node's InternalIP: 10\.0\.0\.21\/16/.test(l)), lines.join('\n'));
  assert.deepEqual(r.node.metadata.labels ?? {}, {}, 'no kubernetes.io/hostname label added on kubernetes');
  assert.deepEqual(String((r.clusterInformation.spec as Record<string, unknown>).clusterType).split(','), ['k8s', 'bgp', 'kdd']);

  await f.client.create({ apiVersion: 'projectcalico.org/v3', kind: 'Node', metadata: { name: 'kw2' }, spec: { addresses: [{ address: '10.0.0.99', type: 'ExternalIP' }] } });
  await assert.rejects(run(f, { ...env, NODENAME: 'kw2' }), /kubernetes-internal-ip: Kubernetes Node kw2 has no IPv4 InternalIP/);
});
