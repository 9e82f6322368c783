// The Kubernetes backend against a real kube-apiserver with manifests/crds.yaml applied by the real
// kubectl: every CRD-backed kind round-trips whole (nothing pruned), objects look in the API as
// Calico stores them, and Tortie's IPAM allocates on it unchanged from several hosts at once.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { resourceKey, blockPrefix, affinityPrefix, HANDLE_PREFIX, parseAffinityKey } from '../keys.js';
import { missingKubernetesBinaries, startKubeApiserver, type TestKubeApiserver } from '../../../../testing/kube-apiserver.js';
import { fullSamples } from '../../../../testing/kdd-samples.js';
import { IPAM } from '../../ipam/ipam.js';
import { parseSelector } from '../../selector/index.js';
import { cidrContainsIP, formatCIDR, parseCIDR, parseIP } from '../../net/ip.js';
import { nodeHandler } from './derived/index.js';
import { convertUID } from './mapping.js';
import { runCtl } from '../../../../testing/ipam-plugin-fixture.js';
import { openKubernetes, type KubernetesBackend } from './kubernetes.js';

const root = new URL('../../../../..', import.meta.url).pathname;
const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd']);
const skip = missing.length > 0 ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built` : false;

type Obj = Record<string, unknown>;

describe('kubernetes datastore: Calico objects in a real API server', { skip, timeout: 600_000 }, () => {
  let api: TestKubeApiserver;
  let b: KubernetesBackend;
  before(async () => {
    api = await startKubeApiserver();
    await api.kubectl(['apply', '-f', `${root}manifests/crds.yaml`]);
    await api.kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
    await api.kubectl(['create', 'namespace', 'prod']);
    // IPAM reads the host's Node for pool nodeSelectors: the derived Node handler serves it.
    b = await openKubernetes({ kubeconfig: api.kubeconfig, handlers: [nodeHandler] });
  });
  after(async () => {
    await b?.close();
    await api?.stop();
  });

  it('manifests/crds.yaml defines the 19 v3.29 CRDs, all established, structural', async () => {
    const { stdout } = await api.kubectl(['get', 'crd', '-o', 'json']);
    const crds = (JSON.parse(stdout) as { items: { metadata: { name: string }; status: { conditions: { type: string; status: string }[] } }[] }).items;
    assert.deepEqual(crds.map((c) => c.metadata.name).sort(), [
      'bgpconfigurations', 'bgpfilters', 'bgppeers', 'blockaffinities', 'caliconodestatuses', 'clusterinformations',
      'felixconfigurations', 'globalnetworkpolicies', 'globalnetworksets', 'hostendpoints', 'ipamblocks', 'ipamconfigs',
      'ipamhandles', 'ippools', 'ipreservations', 'kubecontrollersconfigurations', 'networkpolicies', 'networksets', 'tiers',
    ].map((p) => `${p}.crd.projectcalico.org`));
    for (const c of crds) {
      const cond = Object.fromEntries(c.status.conditions.map((x) => [x.type, x.status]));
      assert.equal(cond.Established, 'True', c.metadata.name);
      assert.notEqual(cond.NonStructuralSchema, 'True', c.metadata.name);
    }
  });

  it('a full object of every CRD-backed kind round-trips whole; the CR is Calico\'s', async () => {
    for (const sample of fullSamples('prod') as { kind: string; metadata: Obj & { name: string; namespace?: string }; spec: Obj; status?: Obj }[]) {
      const key = resourceKey(sample.kind, sample.metadata.name, sample.metadata.namespace);
      const value = { ...sample, metadata: { ...sample.metadata, uid: '00000000-0000-4000-8000-000000000000', creationTimestamp: '2026-01-02T03:04:05Z' } };
      const c = await b.create(key, JSON.stringify(value));
      const got = await b.get(key);
      assert.deepEqual(got, c);
      const v = JSON.parse(got!.value) as { spec: Obj; status?: Obj; metadata: Obj };
      assert.deepEqual(v.spec, sample.spec, `${sample.kind} spec came back whole (nothing pruned)`);
      assert.deepEqual(v.status, sample.status, `${sample.kind} status`);
      const tiered = /NetworkPolicy$/.test(sample.kind);
      // Policies come back with their tier label, as Calico v3.29 reads them.
      assert.deepEqual(v.metadata.labels, tiered ? { ...(sample.metadata.labels as Obj), 'projectcalico.org/tier': 'default' } : sample.metadata.labels);
      assert.deepEqual(v.metadata.annotations, sample.metadata.annotations);
      assert.equal(v.metadata.creationTimestamp, '2026-01-02T03:04:05Z');
      // The CR as kubectl sees it: crd.projectcalico.org/v1, the tiered name, metadata in the annotation.
      const crName = /NetworkPolicy$/.test(sample.kind) ? `default.${sample.metadata.name}` : sample.metadata.name;
      const resource = { IPAMConfiguration: 'ipamconfigs' }[sample.kind as 'IPAMConfiguration'] ?? `${sample.kind.toLowerCase()}`;
      const args = ['get', `${resource}.crd.projectcalico.org`, crName, '-o', 'json', ...(sample.metadata.namespace ? ['-n', sample.metadata.namespace] : [])];
      const cr = JSON.parse((await api.kubectl(args)).stdout) as { apiVersion: string; kind: string; spec: Obj; metadata: { uid: string; labels?: Obj; annotations: Record<string, string> } };
      assert.equal(cr.apiVersion, 'crd.projectcalico.org/v1');
      assert.equal(cr.kind, sample.kind === 'IPAMConfiguration' ? 'IPAMConfig' : sample.kind);
      assert.deepEqual(cr.spec, sample.spec, `${sample.kind}: the API server kept every spec field`);
      assert.deepEqual(JSON.parse(cr.metadata.annotations['projectcalico.org/metadata']), {
        creationTimestamp: '2026-01-02T03:04:05Z',
        labels: sample.metadata.labels,
        annotations: sample.metadata.annotations,
      });
      assert.deepEqual(cr.metadata.labels, { 'projectcalico.org/owner': 'tortie' });
      assert.equal(v.metadata.uid, convertUID(cr.metadata.uid), 'v3 uid = CR UID bit-reversed');
    }
  });

  it('reads a CR written in the pre-3.28 form (labels on the CR, uid in the JSON)', async () => {
    const cr = {
      apiVersion: 'crd.projectcalico.org/v1',
      kind: 'IPPool',
      metadata: {
        name: 'old-pool',
        labels: { zone: 'a' },
        annotations: { 'projectcalico.org/metadata': '{"uid":"11111111-2222-4333-8444-555555555555","creationTimestamp":"2021-03-01T00:00:00Z"}' },
      },
      spec: { cidr: '10.201.0.0/16', ipipMode: 'Always', natOutgoing: true, blockSize: 26 },
    };
    await api.kubectl(['apply', '-f', '-'], JSON.stringify(cr));
    const v = JSON.parse((await b.get(resourceKey('IPPool', 'old-pool')))!.value) as { metadata: Obj; spec: Obj };
    assert.equal(v.metadata.uid, '11111111-2222-4333-8444-555555555555');
    assert.deepEqual(v.metadata.labels, { zone: 'a' });
    assert.equal(v.metadata.creationTimestamp, '2021-03-01T00:00:00Z');
    assert.deepEqual(v.spec, cr.spec);
    await b.delete(resourceKey('IPPool', 'old-pool'));
  });

  it('IPAM unchanged on it: 5 hosts x 20 concurrent allocations, distinct, in affine blocks; Calico names in kubectl; all released', { timeout: 300_000 }, async () => {
    await b.create(resourceKey('IPPool', 'default-pool'), JSON.stringify({
      apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'default-pool' },
      spec: { cidr: '10.233.64.0/18', blockSize: 26, ipipMode: 'Never', vxlanMode: 'Never', natOutgoing: true, nodeSelector: 'all()', allowedUses: ['Workload', 'Tunnel'], assignmentMode: 'Automatic' },
    }));
    // The full sample above left IPAMConfiguration default with strictAffinity and no auto-allocation,
    // which IPAM reads from the API (it refused every allocation): back to Calico's defaults.
    await b.apply(resourceKey('IPAMConfiguration', 'default'), JSON.stringify({
      apiVersion: 'projectcalico.org/v3', kind: 'IPAMConfiguration', metadata: { name: 'default' },
      spec: { strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0 },
    }));
    const hosts = ['playcekube-master01', 'playcekube-master02', 'playcekube-worker01', 'playcekube-worker02', 'playcekube-worker03'];
    const perHost = 20;
    const stores = await Promise.all(hosts.map(() => openKubernetes({ kubeconfig: api.kubeconfig, handlers: [nodeHandler] })));
    try {
      const selects = (sel: string, labels: Record<string, string>) => parseSelector(sel).evaluate(labels);
      const results = await Promise.all(hosts.flatMap((host, h) => Array.from({ length: perHost }, async (_, i) => {
        const ipam = new IPAM(stores[h], { selects });
        const r = await ipam.autoAssign({ handleId: `k8s-pod-network.${host}-${i}`, attrs: { node: host }, hostname: host, num4: 1, num6: 0 });
        return { host, handle: `k8s-pod-network.${host}-${i}`, ip: r.ipv4[0].ip };
      })));
      const ips = results.map((r) => r.ip);
      assert.equal(new Set(ips).size, hosts.length * perHost, 'every address distinct');
      // Each address sits in a block affine to the host that asked.
      const affs = (await b.list(affinityPrefix())).items.map((kv) => ({ ...parseAffinityKey(kv.key)!, state: JSON.parse(kv.value).state }));
      for (const r of results) {
        const mine = affs.filter((a) => a.host === r.host && a.state === 'confirmed').map((a) => parseCIDR(a.cidr)!);
        assert.ok(mine.some((c) => cidrContainsIP(c, parseIP(r.ip)!)), `${r.ip} of ${r.host} is in one of its blocks ${mine.map(formatCIDR)}`);
      }
      // As Calico names them.
      const { stdout } = await api.kubectl(['get', 'ipamblocks,blockaffinities,ipamhandles', '-o', 'name']);
      const names = stdout.trim().split('\n');
      for (const a of affs) {
        const cidrName = a.cidr.replace(/[./]/g, '-');
        assert.ok(names.includes(`ipamblock.crd.projectcalico.org/${cidrName}`), `block ${cidrName}`);
        assert.ok(names.includes(`blockaffinity.crd.projectcalico.org/${a.host}-${cidrName}`), `affinity ${a.host}-${cidrName}`);
      }
      assert.ok(names.includes('ipamhandle.crd.projectcalico.org/k8s-pod-network.playcekube-worker01-7'));
      const aff = JSON.parse((await api.kubectl(['get', 'blockaffinities.crd.projectcalico.org', `${affs[0].host}-${affs[0].cidr.replace(/[./]/g, '-')}`, '-o', 'json'])).stdout) as { spec: Obj; metadata: { labels: Obj } };
      assert.deepEqual(aff.spec, { state: 'confirmed', node: affs[0].host, type: 'host', cidr: affs[0].cidr, deleted: 'false' });
      assert.equal(aff.metadata.labels['projectcalico.org/ip-version'], '4');
      // Release everything concurrently: handles go (soft delete, then delete), blocks empty.
      await Promise.all(results.map((r, i) => new IPAM(stores[i % hosts.length], { selects }).releaseByHandle(r.handle)));
      assert.deepEqual((await b.list(HANDLE_PREFIX)).items, []);
      assert.equal((await api.kubectl(['get', 'ipamhandles', '-o', 'name'])).stdout.trim(), '');
      for (const kv of (await b.list(blockPrefix(4))).items) {
        const blk = JSON.parse(kv.value) as { allocations: (number | null)[] };
        assert.ok(blk.allocations.every((a) => a === null), `${kv.key} has no allocation left`);
      }
      // A second release of a handle is a no-op, as Calico's.
      assert.deepEqual(await new IPAM(b, { selects }).releaseByHandle(results[0].handle), []);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('a prefix spanning several kinds: one snapshot list, and a watch multiplexed over the kinds from its revision', async () => {
    const before = '/calico/ipam/v2/handle/multi-before';
    await b.create(before, JSON.stringify({ block: { '10.77.0.0/26': 1 }, deleted: false }));
    const l = await b.list('/calico/ipam/v2/');
    assert.ok(l.items.some((kv) => kv.key === before));
    assert.ok(l.items.every((kv) => BigInt(kv.revision) <= BigInt(l.revision)));
    const keys = [
      '/calico/ipam/v2/handle/multi-after',
      '/calico/ipam/v2/host/multi-host/ipv4/block/10.77.0.0-26',
      '/calico/ipam/v2/assignment/ipv4/block/10.77.0.0-26',
    ];
    const values = [
      JSON.stringify({ block: { '10.77.0.0/26': 1 }, deleted: false }),
      JSON.stringify({ state: 'confirmed', deleted: false }),
      JSON.stringify({ cidr: '10.77.0.0/26', affinity: 'host:multi-host', allocations: [0, ...Array(63).fill(null)], unallocated: Array.from({ length: 63 }, (_, i) => i + 1), attributes: [{ handle_id: 'multi-after' }], deleted: false, sequenceNumber: 1, sequenceNumberForAllocation: { '0': 1 } }),
    ];
    const ac = new AbortController();
    const seen: { type: string; key: string; revision: string }[] = [];
    const w = (async () => {
      for await (const e of b.watch('/calico/ipam/v2/', { afterRevision: l.revision, signal: ac.signal })) {
        seen.push(e);
        if (seen.length === 4) ac.abort();
      }
    })();
    const revs: string[] = [];
    for (const [i, k] of keys.entries()) revs.push((await b.create(k, values[i])).revision);
    const d = await b.delete(before);
    const guard = setTimeout(() => ac.abort(), 20_000);
    await w;
    clearTimeout(guard);
    // Every kind delivered its events (order is per kind), none from before the list.
    assert.deepEqual(seen.map((e) => [e.type, e.key]).sort(), [...keys.map((k) => ['put', k]), ['delete', before]].sort());
    assert.deepEqual(seen.filter((e) => e.type === 'put').map((e) => e.revision).sort(), [...revs].sort());
    assert.equal(JSON.parse(d.value).block['10.77.0.0/26'], 1);
    for (const k of keys) await b.delete(k);
  });

  it('deleting an affinity soft-deletes then deletes; readers never see the soft-deleted one', async () => {
    const key = '/calico/ipam/v2/host/solo/ipv4/block/10.250.0.0-26';
    const c = await b.create(key, JSON.stringify({ state: 'confirmed', deleted: false }));
    const w = (async () => {
      const seen: string[] = [];
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 10_000);
      for await (const e of b.watch('/calico/ipam/v2/host/solo/', { afterRevision: c.revision, signal: ac.signal })) {
        seen.push(e.type);
        ac.abort();
      }
      return seen;
    })();
    await b.delete(key, c.revision);
    assert.deepEqual(await w, ['delete'], 'one delete event for soft + hard delete');
    assert.equal(await b.get(key), null);
    assert.equal((await api.kubectl(['get', 'blockaffinities', '-o', 'name'])).stdout.includes('solo-10-250-0-0-26'), false);
    // A soft-deleted leftover (a delete interrupted between its two steps) does not block a create.
    await api.kubectl(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'crd.projectcalico.org/v1', kind: 'BlockAffinity', metadata: { name: 'solo-10-250-0-0-26' },
      spec: { state: 'confirmed', node: 'solo', type: 'host', cidr: '10.250.0.0/26', deleted: 'true' },
    }));
    assert.equal(await b.get(key), null);
    assert.deepEqual((await b.list('/calico/ipam/v2/host/solo/')).items, []);
    const again = await b.create(key, JSON.stringify({ state: 'pending', deleted: false }));
    assert.equal(JSON.parse(again.value).state, 'pending');
  });

  it('the real tortiectl on DATASTORE_TYPE=kubernetes: apply, get, ipam show; kubectl sees Calico\'s objects', async () => {
    const env = { DATASTORE_TYPE: 'kubernetes', KUBECONFIG: api.kubeconfig };
    const ctl = (args: string[], stdin = '') => runCtl(args, env, stdin);
    const gnp = 'apiVersion: projectcalico.org/v3\nkind: GlobalNetworkPolicy\nmetadata:\n  name: ctl-deny\nspec:\n  selector: all()\n  types: [Ingress]\n';
    const a = await ctl(['apply', '-f', '-'], gnp);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /Successfully applied 1 'GlobalNetworkPolicy' resource\(s\)/);
    const g = await ctl(['get', 'globalnetworkpolicy', 'ctl-deny', '-o', 'yaml']);
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, /name: ctl-deny/);
    assert.match(g.stdout, /projectcalico.org\/tier: default/);
    const crs = (await api.kubectl(['get', 'globalnetworkpolicies.crd.projectcalico.org', '-o', 'name'])).stdout;
    assert.match(crs, /globalnetworkpolicy.crd.projectcalico.org\/default.ctl-deny/);
    const pools = await ctl(['get', 'ippool', '-o', 'wide']);
    assert.equal(pools.code, 0, pools.stderr);
    assert.match(pools.stdout, /^NAME +CIDR +NAT +IPIPMODE +VXLANMODE +DISABLED +DISABLEBGPEXPORT +SELECTOR/);
    assert.match(pools.stdout, /\ndefault-pool +10\.233\.64\.0\/18 +true +Never +Never +false +false +all\(\)/);
    const show = await ctl(['ipam', 'show']);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /\| IP Pool +\| 10\.233\.64\.0\/18 \| +16384 \|/);
    const d = await ctl(['delete', 'globalnetworkpolicy', 'ctl-deny']);
    assert.equal(d.code, 0, d.stderr);
    assert.doesNotMatch((await api.kubectl(['get', 'globalnetworkpolicies.crd.projectcalico.org', '-o', 'name'])).stdout, /ctl-deny/);
  });

  it('derived kinds without a handler answer a clear error, never an empty result', async () => {
    const plain = await openKubernetes({ kubeconfig: api.kubeconfig });
    try {
      await assert.rejects(plain.list('/calico/resources/v3/projectcalico.org/workloadendpoints/'), /WorkloadEndpoint is derived from Kubernetes Pods in the Kubernetes datastore; not implemented yet/);
      await assert.rejects(plain.get(resourceKey('Profile', 'kns.default')), /Profile is derived from Kubernetes Namespaces and ServiceAccounts/);
      await assert.rejects(plain.get(resourceKey('NetworkPolicy', 'knp.default.x', 'prod')), /Kubernetes NetworkPolicy \(knp\.default\.\*\) is derived/);
      await assert.rejects(plain.list('/calico/'), /derived from Kubernetes/);
      // Calico's own NetworkPolicies in the same prefix are not derived.
      assert.ok(await plain.get(resourceKey('NetworkPolicy', 'full-np', 'prod')));
    } finally {
      await plain.close();
    }
  });
});
