// The node controller's I/O around the collector, on a real (embedded) datastore with Tortie's IPAM
// and a scripted Kubernetes API: the re-read of the pod just before a release stops it when the pod
// carries the address by then (a CNI ADD that finished between the list and the release), and the
// release happens once the re-read confirms the leak. The clock is injected.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { NotFoundError } from '../../../../libcalico-go/lib/backend/api.js';
import { openEmbedded } from '../../../../libcalico-go/lib/backend/embedded/embedded.js';
import type { KubeClient } from '../../../../libcalico-go/lib/backend/kubernetes/client.js';
import type { K8sPod } from '../../../../libcalico-go/lib/backend/kubernetes/derived/k8s-objects.js';
import { ResourceClient } from '../../../../libcalico-go/lib/clientv3/resources.js';
import { IPAM } from '../../../../libcalico-go/lib/ipam/ipam.js';
import { NodeController } from './controller.js';

const dir = mkdtempSync(join(tmpdir(), 'tortie-kc-controller-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A Kubernetes API that answers from `state` (lists) and `reread` (single-pod GETs), counting calls. */
function fakeKube(state: { nodes: string[]; pods: K8sPod[]; reread?: (ns: string, name: string) => K8sPod | undefined | Promise<K8sPod | undefined> }) {
  const calls: string[] = [];
  const kube = {
    async request(method: string, path: string) {
      calls.push(`${method} ${path}`);
      if (path === '/api/v1/nodes') return { metadata: {}, items: state.nodes.map((name) => ({ metadata: { name } })) };
      if (path === '/api/v1/pods') return { metadata: {}, items: state.pods };
      let m = /^\/api\/v1\/nodes\/([^/]+)$/.exec(path);
      if (m) {
        if (state.nodes.includes(m[1])) return { metadata: { name: m[1] } };
        throw new NotFoundError(`node ${m[1]} not found`);
      }
      m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(path);
      if (m) {
        const p = await (state.reread ?? ((ns, n) => state.pods.find((x) => x.metadata?.namespace === ns && x.metadata?.name === n)))(m[1], m[2]);
        if (p) return p;
        throw new NotFoundError(`pod ${m[1]}/${m[2]} not found`);
      }
      throw new Error(`unexpected request ${method} ${path}`);
    },
  };
  return { kube: kube as unknown as KubeClient, calls };
}

const podObj = (name: string, node: string, ip?: string): K8sPod => ({
  metadata: { name, namespace: 'ns' },
  spec: { nodeName: node },
  status: ip ? { phase: 'Running', podIP: ip, podIPs: [{ ip }] } : { phase: 'Pending' },
});

describe('node controller: re-validation before release', () => {
  it('a confirmed leak whose pod carries the address on re-read is not released; released once the re-read confirms it', async () => {
    const store = openEmbedded(join(dir, 'a.db'));
    const resources = new ResourceClient(store);
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'pool' }, spec: { cidr: '10.9.0.0/24', blockSize: 28 } });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'KubeControllersConfiguration', metadata: { name: 'default' }, spec: { controllers: { node: { leakGracePeriod: '1m' } } } });
    const ipam = new IPAM(store, { selects: () => true });
    const ip = (await ipam.autoAssign({ handleId: 'k8s-pod-network.c1', attrs: { node: 'n1', namespace: 'ns', pod: 'p' }, hostname: 'n1', num4: 1, num6: 0 })).ipv4[0].ip;

    // The list shows the pod without its address (the ADD has not patched it).
    let now = 0;
    let rereadIP: string | undefined = ip;
    const { kube, calls } = fakeKube({ nodes: ['n1'], pods: [podObj('p', 'n1')], reread: () => podObj('p', 'n1', rereadIP) });
    const c = new NodeController({ store, kube, now: () => now });
    let r = await c.syncOnce();
    assert.equal(r.candidates, 1);
    assert.deepEqual(r.released, []);
    assert.ok(!calls.some((x) => x.includes('/pods/p')), 'no re-read before the grace period');

    // A minute later the list still shows no address, but the pod read just before the release has it.
    now = 60_000;
    r = await c.syncOnce();
    assert.deepEqual(r.revalidated, ['k8s-pod-network.c1']);
    assert.deepEqual(r.released, []);
    assert.ok(calls.includes('GET /api/v1/namespaces/ns/pods/p'));
    assert.equal((await ipam.assignment(ip))?.handleId, 'k8s-pod-network.c1');

    // Its candidacy starts over at the next observation: another full grace period before a release.
    rereadIP = undefined;
    now = 90_000;
    r = await c.syncOnce();
    assert.equal(r.candidates, 1);
    now = 149_999;
    r = await c.syncOnce();
    assert.deepEqual(r.released, [], 'one millisecond short of a grace period since the new candidacy');
    now = 150_000;
    r = await c.syncOnce();
    assert.deepEqual(r.released, [ip]);
    assert.equal(await ipam.assignment(ip), null);
    assert.deepEqual(await ipam.releaseByHandle('k8s-pod-network.c1'), [], 'the handle is gone too');
    await store.close();
  });

  it('an address re-allocated between the list and the release is not freed (sequence-number guard)', async () => {
    const store = openEmbedded(join(dir, 'b.db'));
    const resources = new ResourceClient(store);
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'pool' }, spec: { cidr: '10.8.0.0/24', blockSize: 28 } });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'KubeControllersConfiguration', metadata: { name: 'default' }, spec: { controllers: { node: { leakGracePeriod: '1m' } } } });
    const ipam = new IPAM(store, { selects: () => true });
    const attrs = { node: 'n1', namespace: 'ns', pod: 'old' };
    const ip = (await ipam.autoAssign({ handleId: 'h', attrs, hostname: 'n1', num4: 1, num6: 0 })).ipv4[0].ip;
    let now = 0;
    // While the controller re-reads the (gone) pod, the address is freed and allocated again under
    // the same handle: a new allocation the controller's list never saw.
    let raced = false;
    const { kube } = fakeKube({
      nodes: ['n1'],
      pods: [],
      reread: async () => {
        if (now > 0 && !raced) {
          raced = true;
          await ipam.releaseByHandle('h');
          await ipam.assignIP({ ip, handleId: 'h', attrs, hostname: 'n1' });
        }
        return undefined;
      },
    });
    const c = new NodeController({ store, kube, now: () => now });
    await c.syncOnce();
    now = 60_000;
    const r = await c.syncOnce();
    assert.equal(raced, true);
    assert.deepEqual(r.released, [], 'the release named the old allocation (sequence number): refused');
    assert.equal((await ipam.assignment(ip))?.handleId, 'h', 'the new allocation keeps the address');
    await store.close();
  });

  it('releases nothing while the datastore is locked (ClusterInformation datastoreReady=false), then resumes', async () => {
    const store = openEmbedded(join(dir, 'c.db'));
    const resources = new ResourceClient(store);
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'IPPool', metadata: { name: 'pool' }, spec: { cidr: '10.7.0.0/24', blockSize: 28 } });
    const ci = await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'ClusterInformation', metadata: { name: 'default' }, spec: { datastoreReady: false } });
    const ipam = new IPAM(store, { selects: () => true });
    const ip = (await ipam.autoAssign({ handleId: 'h', attrs: { node: 'gone', namespace: 'ns', pod: 'p' }, hostname: 'gone', num4: 1, num6: 0 })).ipv4[0].ip;
    const { kube } = fakeKube({ nodes: ['n1'], pods: [] });
    const c = new NodeController({ store, kube, now: () => 0 });
    let r = await c.syncOnce();
    assert.equal(r.locked, true);
    assert.deepEqual(r.released, []);
    assert.equal((await ipam.assignment(ip))?.handleId, 'h');
    await resources.update({ ...ci, spec: { datastoreReady: true } });
    r = await c.syncOnce();
    assert.deepEqual(r.released, [ip], "a deleted node's address goes once unlocked");
    assert.deepEqual(r.affinitiesReleased.map((a) => a.split(' ')[0]), ['gone']);
    await store.close();
  });
});
