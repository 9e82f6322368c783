// The derived kinds against a real kube-apiserver (built by scripts/build-kubernetes.sh): objects
// are made with the real kubectl, read through the handlers over the real API, and writes are
// checked with kubectl again. One apiserver for the file, always stopped.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ConflictError, type WatchEvent } from '../../api.js';
import { missingKubernetesBinaries, startKubeApiserver, type TestKubeApiserver } from '../../../../../testing/kube-apiserver.js';
import { hostVethName } from '../../../../../cni-plugin/pkg/naming/index.js';
import { loadKubeClient, type KubeClient } from '../client.js';
import { KubernetesBackend } from '../kubernetes.js';
import { ResourceClient } from '../../../clientv3/resources.js';
import { convertUID } from '../mapping.js';
import { derivedHandlers, OperationNotSupportedError } from './index.js';
import { KubernetesNetworkPolicyHandler } from './knp-handler.js';
import { NodeHandler } from './node-handler.js';
import { ProfileHandler } from './profile-handler.js';
import { WorkloadEndpointHandler } from './wep-handler.js';

const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd']);
const skip = missing.length > 0 ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built` : false;

const R = '/calico/resources/v3/projectcalico.org';
const KEY = 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=';
type Obj = Record<string, any>;

/** Pulls events until one matches; a 60 s guard against hanging (not a timing assertion). */
async function until(it: AsyncIterator<WatchEvent>, seen: WatchEvent[], pred: (e: WatchEvent) => boolean): Promise<WatchEvent> {
  for (const e of seen) if (pred(e)) return e;
  let timer: NodeJS.Timeout | undefined;
  const guard = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`no matching event; saw ${JSON.stringify(seen.map((e) => [e.type, e.key, e.revision]))}`)), 60_000);
  });
  try {
    for (;;) {
      const r = await Promise.race([it.next(), guard]);
      if (r.done) throw new Error('watch ended');
      seen.push(r.value);
      if (pred(r.value)) return r.value;
    }
  } finally {
    clearTimeout(timer);
  }
}

describe('derived kinds on a real kube-apiserver', { skip, timeout: 600_000 }, () => {
  let api: TestKubeApiserver;
  let client: KubeClient;
  const kubectl = (args: string[], input?: unknown) => api.kubectl(args, input === undefined ? undefined : JSON.stringify(input));
  const getJSON = async (args: string[]): Promise<Obj> => JSON.parse((await kubectl([...args, '-o', 'json'])).stdout) as Obj;

  before(async () => {
    api = await startKubeApiserver();
    client = await loadKubeClient({ kubeconfig: api.kubeconfig });
    await kubectl(['apply', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web', labels: { team: 'blue' } } },
        { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'web-sa', namespace: 'web', labels: { role: 'frontend' } } },
      ],
    });
  });
  after(async () => {
    await client?.close();
    await api?.stop();
  });

  describe('Node', () => {
    const h = () => new NodeHandler(client);
    const key = `${R}/nodes/kind-worker`;

    test('a k8s Node made with kubectl reads as its Calico Node, invalid annotations ignored', async () => {
      await kubectl(['create', '-f', '-'], {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: {
          name: 'kind-worker',
          labels: { 'kubernetes.io/hostname': 'kind-worker' },
          annotations: {
            'projectcalico.org/IPv4Address': '192.168.64.6/24',
            'projectcalico.org/IPv4VXLANTunnelAddr': '10.233.72.128',
            'projectcalico.org/ASNumber': 'not-a-number',
            'projectcalico.org/labels': '{"rack":"r1"}',
          },
        },
        spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] },
      });
      await kubectl(['patch', 'node', 'kind-worker', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { addresses: [{ type: 'InternalIP', address: '192.168.64.6' }, { type: 'Hostname', address: 'kind-worker' }] } })]);
      const k8s = await getJSON(['get', 'node', 'kind-worker']);
      const kv = (await h().get(key))!;
      assert.equal(kv.key, key);
      assert.equal(kv.revision, k8s.metadata.resourceVersion);
      const v = JSON.parse(kv.value) as Obj;
      assert.equal(v.metadata.resourceVersion, undefined, 'the revision is not in the value');
      assert.equal(v.metadata.uid, k8s.metadata.uid);
      assert.deepEqual(v.metadata.labels, { rack: 'r1', 'kubernetes.io/hostname': 'kind-worker' });
      assert.deepEqual(v.spec, {
        bgp: { ipv4Address: '192.168.64.6/24' },
        ipv4VXLANTunnelAddr: '10.233.72.128',
        orchRefs: [{ nodeName: 'kind-worker', orchestrator: 'k8s' }],
        addresses: [
          { address: '192.168.64.6/24', type: 'CalicoNodeIP' },
          { address: '192.168.64.6', type: 'InternalIP' },
        ],
      });
      assert.deepEqual(v.status, { podCIDRs: ['10.244.1.0/24'] });
      assert.equal(await h().get(`${R}/nodes/no-such-node`), null);
      const list = await h().list(`${R}/nodes/`);
      assert.deepEqual(list.items.map((i) => i.key), [key]);
      assert.match(list.revision, /^\d+$/);
    });

    test('update writes the Calico fields as annotations on the k8s Node through nodes/status', async () => {
      const cur = (await h().get(key))!;
      const v = JSON.parse(cur.value) as Obj;
      v.spec.bgp = { ipv4Address: '192.168.64.7/24', asNumber: 65001, ipv4IPIPTunnelAddr: '10.233.106.0' };
      delete v.spec.ipv4VXLANTunnelAddr;
      v.status = { wireguardPublicKey: KEY, tortie: { configDrift: [{ variable: 'CALICO_IPV4POOL_IPIP' }] } };
      v.metadata.labels.rack = 'r2';
      // A stale revision is no precondition (Calico re-reads the Node).
      const out = await h().update(key, JSON.stringify(v), '1');
      const k8s = await getJSON(['get', 'node', 'kind-worker']);
      assert.equal(out.revision, k8s.metadata.resourceVersion);
      const a = k8s.metadata.annotations as Record<string, string>;
      assert.equal(a['projectcalico.org/IPv4Address'], '192.168.64.7/24');
      assert.equal(a['projectcalico.org/ASNumber'], '65001');
      assert.equal(a['projectcalico.org/IPv4IPIPTunnelAddr'], '10.233.106.0');
      assert.equal(a['projectcalico.org/IPv4VXLANTunnelAddr'], undefined, 'an absent field deletes its annotation');
      assert.equal(a['projectcalico.org/WireguardPublicKey'], KEY);
      assert.equal(a['tortie.dev/status'], '{"configDrift":[{"variable":"CALICO_IPV4POOL_IPIP"}]}');
      assert.deepEqual((JSON.parse(out.value) as Obj).status.tortie, { configDrift: [{ variable: 'CALICO_IPV4POOL_IPIP' }] });
      assert.equal(a['projectcalico.org/labels'], '{"rack":"r2"}');
      assert.equal(a['projectcalico.org/kube-labels'], undefined);
      assert.deepEqual(k8s.metadata.labels, { 'kubernetes.io/hostname': 'kind-worker' }, 'k8s labels untouched');
      assert.deepEqual(k8s.spec.podCIDRs, ['10.244.1.0/24']);
      // spec.bgp absent: every BGP annotation goes.
      delete v.spec.bgp;
      await h().apply(key, JSON.stringify(v));
      const after = (await getJSON(['get', 'node', 'kind-worker'])).metadata.annotations as Record<string, string>;
      for (const k of ['IPv4Address', 'ASNumber', 'IPv4IPIPTunnelAddr']) assert.equal(after[`projectcalico.org/${k}`], undefined, k);
      assert.equal(after['projectcalico.org/WireguardPublicKey'], KEY);
    });

    test('create and delete are not supported, as in Calico', async () => {
      const v = (await h().get(key))!.value;
      await assert.rejects(h().create(`${R}/nodes/other`, v), (e: Error) => e instanceof OperationNotSupportedError && /^operation Create is not supported on /.test(e.message));
      await assert.rejects(h().delete(key), (e: Error) => e instanceof OperationNotSupportedError && /operation Delete is not supported/.test(e.message));
      await getJSON(['get', 'node', 'kind-worker']);
    });

    test('watch sees a label change and the Node deleted with kubectl', async () => {
      const list = await h().list(`${R}/nodes/`);
      const ac = new AbortController();
      const it = h().watch(`${R}/nodes/`, { afterRevision: list.revision, signal: ac.signal })[Symbol.asyncIterator]();
      const seen: WatchEvent[] = [];
      await kubectl(['label', 'node', 'kind-worker', 'zone=z1']);
      const put = await until(it, seen, (e) => e.type === 'put' && (JSON.parse(e.value!) as Obj).metadata.labels.zone === 'z1');
      assert.equal(put.key, key);
      assert.ok(put.prevValue, 'prevValue from the values at the start revision');
      assert.equal(put.revision, (await getJSON(['get', 'node', 'kind-worker'])).metadata.resourceVersion);
      await kubectl(['delete', 'node', 'kind-worker']);
      const del = await until(it, seen, (e) => e.type === 'delete');
      assert.equal(del.key, key);
      assert.equal((JSON.parse(del.prevValue!) as Obj).metadata.labels.zone, 'z1');
      ac.abort();
      assert.equal((await it.next()).done, true, 'abort ends the watch without error');
    });
  });

  describe('WorkloadEndpoint', () => {
    const reader = () => new WorkloadEndpointHandler(client);
    const cni = () => new WorkloadEndpointHandler(client, { cniWrites: true });
    const key = `${R}/workloadendpoints/web/kind--worker-k8s-nginx--abc-eth0`;
    const pod = (name: string, extra: Obj = {}) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'web', labels: { app: 'nginx' } },
      spec: {
        nodeName: 'kind-worker',
        serviceAccountName: 'web-sa',
        containers: [{ name: 'nginx', image: 'nginx', ports: [{ name: 'http', containerPort: 80 }, { containerPort: 81 }] }],
        ...extra,
      },
    });

    test('pods made with kubectl: a scheduled one is an endpoint, hostNetwork and unscheduled ones are not', async () => {
      await kubectl(['create', '-f', '-'], { apiVersion: 'v1', kind: 'List', items: [pod('nginx-abc'), pod('host-pod', { hostNetwork: true }), { ...pod('pending'), spec: { ...pod('pending').spec, nodeName: undefined } }] });
      await kubectl(['patch', 'pod', 'nginx-abc', '-n', 'web', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { phase: 'Running', podIP: '10.233.64.9', podIPs: [{ ip: '10.233.64.9' }] } })]);
      const k8s = await getJSON(['get', 'pod', 'nginx-abc', '-n', 'web']);
      const kv = (await reader().get(key))!;
      assert.equal(kv.revision, k8s.metadata.resourceVersion);
      const v = JSON.parse(kv.value) as Obj;
      assert.deepEqual(v.metadata.labels, {
        app: 'nginx',
        'projectcalico.org/namespace': 'web',
        'projectcalico.org/orchestrator': 'k8s',
        'projectcalico.org/serviceaccount': 'web-sa',
      });
      assert.deepEqual(v.spec, {
        orchestrator: 'k8s',
        node: 'kind-worker',
        pod: 'nginx-abc',
        endpoint: 'eth0',
        serviceAccountName: 'web-sa',
        ipNetworks: ['10.233.64.9/32'],
        profiles: ['kns.web', 'ksa.web.web-sa'],
        interfaceName: hostVethName({ namespace: 'web', pod: 'nginx-abc' }, ''),
        ports: [{ name: 'http', protocol: 'TCP', port: 80 }],
      });
      const list = await reader().list(`${R}/workloadendpoints/`);
      assert.deepEqual(list.items.map((i) => i.key), [key]);
      assert.deepEqual((await reader().list(`${R}/workloadendpoints/web/kind--worker-k8s-`)).items.map((i) => i.key), [key]);
      assert.deepEqual((await reader().list(`${R}/workloadendpoints/other/`)).items, []);
      assert.equal(await reader().get(`${R}/workloadendpoints/web/other--node-k8s-nginx--abc-eth0`), null, 'same pod, other node');
      assert.equal(await reader().get(`${R}/workloadendpoints/web/kind--worker-k8s-host--pod-eth0`), null);
    });

    test('only the CNI writes: others get "operation not supported"; the CNI\'s write is the pod-status annotation patch', async () => {
      const cur = (await reader().get(key))!;
      const v = JSON.parse(cur.value) as Obj;
      v.spec.containerID = 'c'.repeat(64);
      v.spec.ipNetworks = ['10.233.64.9/32', 'fd00:10::9/128'];
      for (const [op, call] of [
        ['Create', () => reader().create(key, JSON.stringify(v))],
        ['Update', () => reader().update(key, JSON.stringify(v), cur.revision)],
        ['Apply', () => reader().apply(key, JSON.stringify(v))],
        ['Delete', () => reader().delete(key)],
      ] as const) {
        await assert.rejects(call(), (e: Error) => e instanceof OperationNotSupportedError && e.message.startsWith(`operation ${op} is not supported on ${key}`), op);
      }
      assert.equal((await getJSON(['get', 'pod', 'nginx-abc', '-n', 'web'])).metadata.annotations?.['cni.projectcalico.org/podIP'], undefined);

      const out = await cni().update(key, JSON.stringify(v), cur.revision);
      const k8s = await getJSON(['get', 'pod', 'nginx-abc', '-n', 'web']);
      assert.equal(out.revision, k8s.metadata.resourceVersion);
      assert.deepEqual(
        Object.fromEntries(Object.entries(k8s.metadata.annotations as Record<string, string>).filter(([k]) => k.startsWith('cni.projectcalico.org/'))),
        { 'cni.projectcalico.org/podIP': '10.233.64.9/32', 'cni.projectcalico.org/podIPs': '10.233.64.9/32,fd00:10::9/128', 'cni.projectcalico.org/containerID': 'c'.repeat(64) },
      );
      assert.equal((JSON.parse(out.value) as Obj).spec.containerID, 'c'.repeat(64));
      // The revision written against is a precondition: the old one now conflicts.
      await assert.rejects(cni().update(key, JSON.stringify(v), cur.revision), ConflictError);

      await cni().delete(key, out.revision);
      const gone = (await getJSON(['get', 'pod', 'nginx-abc', '-n', 'web'])).metadata.annotations as Record<string, string>;
      assert.equal(gone['cni.projectcalico.org/podIP'], '');
      assert.equal(gone['cni.projectcalico.org/podIPs'], '');
      assert.equal(gone['cni.projectcalico.org/containerID'], 'c'.repeat(64), 'containerID stays');
    });

    test('watch sees a pod added, its address set, and deleted', async () => {
      const list = await reader().list(`${R}/workloadendpoints/web/`);
      const ac = new AbortController();
      const it = reader().watch(`${R}/workloadendpoints/web/`, { afterRevision: list.revision, signal: ac.signal })[Symbol.asyncIterator]();
      const seen: WatchEvent[] = [];
      const k2 = `${R}/workloadendpoints/web/kind--worker-k8s-web--1-eth0`;
      await kubectl(['create', '-f', '-'], pod('web-1'));
      const added = await until(it, seen, (e) => e.key === k2 && e.type === 'put');
      assert.equal(added.prevValue, undefined);
      assert.equal((JSON.parse(added.value!) as Obj).spec.ipNetworks, undefined);
      await kubectl(['patch', 'pod', 'web-1', '-n', 'web', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { podIPs: [{ ip: '10.233.64.10' }], podIP: '10.233.64.10' } })]);
      const addr = await until(it, seen, (e) => e.key === k2 && e.type === 'put' && !!e.value?.includes('10.233.64.10/32'));
      assert.ok(addr.prevValue);
      await kubectl(['delete', 'pod', 'web-1', '-n', 'web', '--grace-period=0', '--force']);
      const del = await until(it, seen, (e) => e.key === k2 && e.type === 'delete');
      assert.ok(del.prevValue?.includes('10.233.64.10/32'));
      assert.ok(!seen.some((e) => e.key.includes('host--pod') || e.key.includes('pending')), 'no events for non-endpoints');
      ac.abort();
    });
  });

  describe('Profile', () => {
    test('kns.<ns> from a Namespace, ksa.<ns>.<sa> from a ServiceAccount, default-allow; combined revisions', async () => {
      const h = new ProfileHandler(client);
      const ns = await getJSON(['get', 'namespace', 'web']);
      const sa = await getJSON(['get', 'serviceaccount', 'web-sa', '-n', 'web']);
      const kns = (await h.get(`${R}/profiles/kns.web`))!;
      assert.equal(kns.revision, `${ns.metadata.resourceVersion}/`);
      assert.equal((JSON.parse(kns.value) as Obj).metadata.uid, convertUID(ns.metadata.uid), 'uid converted as Calico does');
      assert.deepEqual((JSON.parse(kns.value) as Obj).spec, {
        ingress: [{ action: 'Allow' }],
        egress: [{ action: 'Allow' }],
        labelsToApply: { 'pcns.team': 'blue', 'pcns.kubernetes.io/metadata.name': 'web', 'pcns.projectcalico.org/name': 'web' },
      });
      const ksa = (await h.get(`${R}/profiles/ksa.web.web-sa`))!;
      assert.equal(ksa.revision, `/${sa.metadata.resourceVersion}`);
      assert.deepEqual((JSON.parse(ksa.value) as Obj).spec, { labelsToApply: { 'pcsa.role': 'frontend', 'pcsa.projectcalico.org/name': 'web-sa' } });
      assert.equal(JSON.parse((await h.get(`${R}/profiles/projectcalico-default-allow`))!.value).spec.ingress[0].action, 'Allow');
      assert.equal(await h.get(`${R}/profiles/kns.nope`), null);
      assert.equal(await h.get(`${R}/profiles/ksa.web.nope`), null);

      const list = await h.list(`${R}/profiles/`);
      const names = list.items.map((i) => i.key.slice(`${R}/profiles/`.length));
      for (const n of ['kns.web', 'kns.default', 'kns.kube-system', 'ksa.web.web-sa', 'projectcalico-default-allow']) assert.ok(names.includes(n), n);
      assert.match(list.revision, /^\d+$/);
      const combined = await new ProfileHandler(client, { revisions: 'combined' }).list(`${R}/profiles/`);
      assert.match(combined.revision, /^\d+\/\d+$/);
      assert.deepEqual((await h.list(`${R}/profiles/ksa.`)).items.map((i) => i.key), [`${R}/profiles/ksa.web.web-sa`]);

      for (const [op, call] of [
        ['Create', () => h.create(`${R}/profiles/kns.x`)],
        ['Update', () => h.update(`${R}/profiles/kns.web`)],
        ['Apply', () => h.apply(`${R}/profiles/kns.web`)],
        ['Delete', () => h.delete(`${R}/profiles/kns.web`)],
      ] as const) {
        await assert.rejects(call(), (e: Error) => e instanceof OperationNotSupportedError && e.message.startsWith(`operation ${op} is not supported`), op);
      }
    });

    test('two watches, events stamped with the latest "<nsRV>/<saRV>" pair, resumable from it', async () => {
      const h = new ProfileHandler(client, { revisions: 'combined' });
      const list = await h.list(`${R}/profiles/`);
      const ac = new AbortController();
      const it = h.watch(`${R}/profiles/`, { afterRevision: list.revision, signal: ac.signal })[Symbol.asyncIterator]();
      const seen: WatchEvent[] = [];
      await kubectl(['label', 'namespace', 'web', 'tier=gold']);
      const nsEv = await until(it, seen, (e) => e.key === `${R}/profiles/kns.web` && !!e.value?.includes('pcns.tier'));
      const nsRV = (await getJSON(['get', 'namespace', 'web'])).metadata.resourceVersion as string;
      assert.equal(nsEv.revision, `${nsRV}/${list.revision.split('/')[1]}`);
      await kubectl(['label', 'serviceaccount', 'web-sa', '-n', 'web', 'tier=gold']);
      const saEv = await until(it, seen, (e) => e.key === `${R}/profiles/ksa.web.web-sa` && !!e.value?.includes('pcsa.tier'));
      const saRV = (await getJSON(['get', 'serviceaccount', 'web-sa', '-n', 'web'])).metadata.resourceVersion as string;
      assert.equal(saEv.revision, `${nsRV}/${saRV}`);
      await kubectl(['delete', 'serviceaccount', 'web-sa', '-n', 'web']);
      const del = await until(it, seen, (e) => e.type === 'delete');
      assert.equal(del.key, `${R}/profiles/ksa.web.web-sa`);
      ac.abort();

      // Resuming from the pair sees only what came after it.
      await kubectl(['label', 'namespace', 'web', 'tier=silver', '--overwrite']);
      const ac2 = new AbortController();
      const it2 = h.watch(`${R}/profiles/`, { afterRevision: del.revision, signal: ac2.signal })[Symbol.asyncIterator]();
      const seen2: WatchEvent[] = [];
      const resumed = await until(it2, seen2, (e) => e.key === `${R}/profiles/kns.web`);
      assert.match(resumed.value!, /"pcns.tier":"silver"/);
      assert.equal(seen2.length, 1, 'nothing from before the revision');
      ac2.abort();
    });
  });

  describe('Kubernetes NetworkPolicy', () => {
    const np = {
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'allow-kube-system', namespace: 'web' },
      spec: {
        podSelector: { matchLabels: { app: 'nginx' } },
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } } }], ports: [{ port: 80, protocol: 'TCP' }] }],
      },
    };
    const key = `${R}/networkpolicies/web/knp.default.allow-kube-system`;

    test('a NetworkPolicy applied with kubectl reads as knp.default.<name>; writes are refused; watch follows it', async () => {
      const h = new KubernetesNetworkPolicyHandler(client);
      assert.equal(h.owns(key), true);
      assert.equal(h.owns(`${R}/networkpolicies/web/default.mine`), false);
      const before = await h.list(`${R}/networkpolicies/`);
      assert.deepEqual(before.items, []);
      const ac = new AbortController();
      const it = h.watch(`${R}/networkpolicies/web/`, { afterRevision: before.revision, signal: ac.signal })[Symbol.asyncIterator]();
      const seen: WatchEvent[] = [];
      await kubectl(['apply', '-f', '-'], np);
      const k8s = await getJSON(['get', 'networkpolicy', 'allow-kube-system', '-n', 'web']);
      const kv = (await h.get(key))!;
      assert.equal(kv.revision, k8s.metadata.resourceVersion);
      const v = JSON.parse(kv.value) as Obj;
      assert.equal(v.metadata.name, 'knp.default.allow-kube-system');
      assert.equal(v.metadata.namespace, 'web');
      assert.equal(v.spec.selector, "projectcalico.org/orchestrator == 'k8s' && app == 'nginx'");
      assert.deepEqual(v.spec.types, ['Ingress']);
      assert.deepEqual((await h.list(`${R}/networkpolicies/web/`)).items.map((i) => i.key), [key]);
      const added = await until(it, seen, (e) => e.type === 'put');
      assert.equal(added.key, key);
      assert.equal(added.value, kv.value);
      await assert.rejects(h.create(key), (e: Error) => e instanceof OperationNotSupportedError && /operation Create is not supported/.test(e.message));
      await assert.rejects(h.delete(key), OperationNotSupportedError);
      await kubectl(['delete', 'networkpolicy', 'allow-kube-system', '-n', 'web']);
      const del = await until(it, seen, (e) => e.type === 'delete');
      assert.equal(del.key, key);
      ac.abort();
      assert.equal(await h.get(key), null);
    });
  });

  test('lists page through the API (2 per page) and stay one snapshot', async () => {
    const items = Array.from({ length: 5 }, (_, i) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `paged-${i}`, namespace: 'paged' },
      spec: { nodeName: 'kind-worker', serviceAccountName: 'paged-sa', containers: [{ name: 'c', image: 'x' }] },
    }));
    await kubectl(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'paged' } },
        ...['paged-sa', 'sa-2', 'sa-3'].map((name) => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace: 'paged' } })),
      ],
    });
    await kubectl(['create', '-f', '-'], { apiVersion: 'v1', kind: 'List', items });
    const before = client.requests;
    const paged = await new WorkloadEndpointHandler(client, { pageSize: 2 }).list(`${R}/workloadendpoints/paged/`);
    assert.equal(client.requests - before, 3, '5 pods in pages of 2');
    assert.deepEqual(paged.items.map((i) => i.key.split('/').pop()), [0, 1, 2, 3, 4].map((i) => `kind--worker-k8s-paged--${i}-eth0`));
    const whole = await new WorkloadEndpointHandler(client).list(`${R}/workloadendpoints/paged/`);
    assert.deepEqual(paged.items, whole.items);

    // At a given revision every page is of that snapshot: a pod made afterwards is not in it.
    await kubectl(['create', '-f', '-'], { ...items[0], metadata: { name: 'paged-late', namespace: 'paged' } });
    const atOld = await new WorkloadEndpointHandler(client, { pageSize: 2 }).list(`${R}/workloadendpoints/paged/`, { revision: whole.revision });
    assert.deepEqual(atOld.items.map((i) => i.key), whole.items.map((i) => i.key));
    assert.equal(atOld.revision, whole.revision);
    const profiles = await new ProfileHandler(client, { pageSize: 2 }).list(`${R}/profiles/ksa.paged.`);
    assert.deepEqual(profiles.items.map((i) => i.key.split('/').pop()), ['ksa.paged.paged-sa', 'ksa.paged.sa-2', 'ksa.paged.sa-3']);
    assert.deepEqual(profiles, await new ProfileHandler(client).list(`${R}/profiles/ksa.paged.`, { revision: profiles.revision }));
  });

  test('the CNI path\'s client calls (ResourceClient apply/get/delete of its WorkloadEndpoint) work on the backend with cniWrites', async () => {
    const resources = new ResourceClient(new KubernetesBackend(client, derivedHandlers({ cniWrites: true })));
    await kubectl(['create', 'serviceaccount', 'cni-sa', '-n', 'web']);
    await kubectl(['create', '-f', '-'], {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'cni-pod', namespace: 'web', labels: { app: 'cni' } },
      spec: { nodeName: 'kind-worker', serviceAccountName: 'cni-sa', containers: [{ name: 'c', image: 'x' }] },
    });
    const name = 'kind--worker-k8s-cni--pod-eth0';
    const cid = 'd'.repeat(64);
    // The endpoint as cni-plugin/pkg/plugin/handler.ts builds it on ADD.
    const wep = {
      apiVersion: 'projectcalico.org/v3',
      kind: 'WorkloadEndpoint',
      metadata: { name, namespace: 'web', labels: { app: 'cni' } },
      spec: {
        orchestrator: 'k8s',
        node: 'kind-worker',
        pod: 'cni-pod',
        endpoint: 'eth0',
        containerID: cid,
        interfaceName: hostVethName({ namespace: 'web', pod: 'cni-pod' }, cid),
        mac: '0a:58:0a:e9:40:0b',
        ipNetworks: ['10.233.64.11/32'],
        profiles: ['kns.web'],
      },
    };
    const before = await resources.get('WorkloadEndpoint', name, 'web');
    assert.ok(before, 'the pod is an endpoint before ADD (no addresses yet)');
    assert.equal((before.spec as Obj).ipNetworks, undefined);
    const applied = await resources.apply(wep);
    const pod = await getJSON(['get', 'pod', 'cni-pod', '-n', 'web']);
    assert.equal(pod.metadata.annotations['cni.projectcalico.org/podIP'], '10.233.64.11/32');
    assert.equal(pod.metadata.annotations['cni.projectcalico.org/containerID'], cid);
    assert.equal(applied.metadata.resourceVersion, pod.metadata.resourceVersion);
    const got = (await resources.get('WorkloadEndpoint', name, 'web'))!;
    assert.deepEqual((got.spec as Obj).ipNetworks, ['10.233.64.11/32']);
    assert.equal((got.spec as Obj).containerID, cid);
    assert.equal((got.spec as Obj).interfaceName, wep.spec.interfaceName, 'the CNI path and the pod agree on the host interface');
    await resources.delete('WorkloadEndpoint', name, 'web', got.metadata.resourceVersion);
    const after = (await getJSON(['get', 'pod', 'cni-pod', '-n', 'web'])).metadata.annotations as Record<string, string>;
    assert.equal(after['cni.projectcalico.org/podIPs'], '');
    assert.equal((await resources.get('WorkloadEndpoint', name, 'web'))!.spec!.ipNetworks, undefined);
    // Without cniWrites the same client is refused.
    const other = new ResourceClient(new KubernetesBackend(client, derivedHandlers()));
    await assert.rejects(other.apply(wep), /operation Update is not supported/);
    await kubectl(['delete', 'pod', 'cni-pod', '-n', 'web', '--grace-period=0', '--force']);
  });

  test('through the Kubernetes backend: derived keys dispatch to the handlers', async () => {
    const backend = new KubernetesBackend(client, derivedHandlers());
    await kubectl(['create', '-f', '-'], { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'api-sa', namespace: 'web' } });
    const kns = await backend.get(`${R}/profiles/kns.web`);
    assert.match(kns!.revision, /^\d+\/$/);
    const weps = await backend.list(`${R}/workloadendpoints/web/`);
    assert.deepEqual(weps.items.map((i) => i.key), [`${R}/workloadendpoints/web/kind--worker-k8s-nginx--abc-eth0`]);
    const profiles = await backend.list(`${R}/profiles/`);
    assert.ok(profiles.items.some((i) => i.key === `${R}/profiles/ksa.web.api-sa`));
    await assert.rejects(backend.create(`${R}/nodes/x`, '{}'), OperationNotSupportedError);
    const ac = new AbortController();
    const it = backend.watch(`${R}/workloadendpoints/`, { afterRevision: weps.revision, signal: ac.signal })[Symbol.asyncIterator]();
    await kubectl(['label', 'pod', 'nginx-abc', '-n', 'web', 'version=2']);
    const ev = await until(it, [], (e) => e.type === 'put');
    assert.match(ev.value!, /"version":"2"/);
    ac.abort();
  });
});
