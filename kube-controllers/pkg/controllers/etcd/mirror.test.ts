// The etcd-mode controllers' reconciliation on a real (embedded, file-backed) Calico datastore with
// a scripted Kubernetes side: a full resync creates, updates and deletes only what the controller
// owns and rewrites nothing equal; the workloadendpoint controller never creates an endpoint and
// changes only labels and serviceAccountName; a Kubernetes side that cannot be read makes the
// controller not ready with the reason, deletes nothing, and it recovers by itself.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type KVPair, type ListResult, UnavailableError, type WatchEvent } from '../../../../libcalico-go/lib/backend/api.js';
import { openEmbedded, type EmbeddedBackend } from '../../../../libcalico-go/lib/backend/embedded/embedded.js';
import { resourceKey } from '../../../../libcalico-go/lib/backend/keys.js';
import { profileFromNamespace } from '../../../../libcalico-go/lib/backend/kubernetes/derived/profile.js';
import { wepFromPod } from '../../../../libcalico-go/lib/backend/kubernetes/derived/workloadendpoint.js';
import { encodeValue } from '../../../../libcalico-go/lib/backend/kubernetes/derived/source.js';
import { ResourceClient } from '../../../../libcalico-go/lib/clientv3/resources.js';
import { MirrorController, type MirrorSource, mirrorSpec } from './mirror.js';

/** A Kubernetes side whose list is what the test says (or fails), and whose watch waits for the end. */
class ScriptedSource implements MirrorSource {
  items: KVPair[] = [];
  fail: Error | undefined;
  lists = 0;
  async list(): Promise<ListResult> {
    this.lists++;
    if (this.fail) throw this.fail;
    return { items: this.items, revision: '1' };
  }
  async *watch(_prefix: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<WatchEvent> {
    if (this.fail) throw this.fail;
    await new Promise<void>((r) => opts.signal?.addEventListener('abort', () => r(), { once: true }));
  }
}

const nsProfile = (name: string, labels: Record<string, string> = {}) => {
  const p = profileFromNamespace({ metadata: { name, labels, uid: '6f1c4a52-0e8c-4d3a-9a55-0f6f4f0e0c11', resourceVersion: '7' } });
  return { key: resourceKey('Profile', p.metadata.name), value: encodeValue(p), revision: '7' };
};

describe('etcd-mode controllers: reconciliation', () => {
  let dir: string;
  let store: EmbeddedBackend;
  let resources: ResourceClient;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tortie-kc-mirror-'));
    store = openEmbedded(join(dir, 'store.db'));
    resources = new ResourceClient(store);
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a full resync creates, updates and deletes only kns.* profiles, and rewrites nothing equal', async () => {
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'kns.shop' }, spec: { labelsToApply: { 'pcns.old': 'x' } } });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'kns.gone' }, spec: {} });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'ksa.shop.default' }, spec: {} });
    await resources.create({ apiVersion: 'projectcalico.org/v3', kind: 'Profile', metadata: { name: 'mine' }, spec: {} });
    const source = new ScriptedSource();
    source.items = [nsProfile('shop', { team: 'a' }), nsProfile('web')];
    const m = new MirrorController(mirrorSpec('namespace', source), { store, resyncPeriodMs: () => 60_000 });
    const ac = new AbortController();
    const running = m.run(ac.signal);
    const deadline = Date.now() + 5000;
    while (m.fullSyncs < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const names = (await resources.list('Profile')).map((p) => p.metadata.name).sort();
    assert.deepEqual(names, ['kns.shop', 'kns.web', 'ksa.shop.default', 'mine'], 'kns.gone deleted; ksa.* and mine are not the namespace controller\'s');
    assert.deepEqual((await resources.get('Profile', 'kns.shop'))!.spec, {
      ingress: [{ action: 'Allow' }],
      egress: [{ action: 'Allow' }],
      labelsToApply: { 'pcns.team': 'a', 'pcns.projectcalico.org/name': 'shop' },
    });
    assert.equal(m.writes, 3, 'one update, one create, one delete');
    await m.fullResync();
    assert.equal(m.writes, 3, 'a second resync with nothing changed writes nothing');
    ac.abort();
    await running;
  });

  it('workloadendpoint: updates labels and serviceAccountName of an existing endpoint only; never creates one', async () => {
    const pod = (name: string, labels: Record<string, string>) =>
      wepFromPod({ metadata: { name, namespace: 'shop', labels }, spec: { nodeName: 'n1', serviceAccountName: 'robot', containers: [] } })!;
    const withWep = pod('web-0', { app: 'api' });
    const without = pod('web-1', { app: 'api' });
    await resources.create({
      apiVersion: 'projectcalico.org/v3',
      kind: 'WorkloadEndpoint',
      metadata: { name: withWep.metadata.name, namespace: 'shop', labels: { app: 'web' } },
      spec: { orchestrator: 'k8s', node: 'n1', pod: 'web-0', endpoint: 'eth0', interfaceName: 'caliabc', ipNetworks: ['10.0.0.1/32'], profiles: ['kns.shop'] },
    });
    const source = new ScriptedSource();
    const kv = (r: typeof withWep) => ({ key: resourceKey('WorkloadEndpoint', r.metadata.name, 'shop'), value: encodeValue(r), revision: '9' });
    source.items = [kv(withWep), kv(without)];
    const m = new MirrorController(mirrorSpec('workloadendpoint', source), { store, resyncPeriodMs: () => 60_000 });
    const ac = new AbortController();
    const running = m.run(ac.signal);
    const deadline = Date.now() + 5000;
    while (m.fullSyncs < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    await running;
    const weps = await resources.list('WorkloadEndpoint');
    assert.deepEqual(weps.map((w) => w.metadata.name), [withWep.metadata.name], 'no endpoint created for web-1');
    assert.deepEqual(weps[0].metadata.labels, { app: 'api', 'projectcalico.org/namespace': 'shop', 'projectcalico.org/orchestrator': 'k8s', 'projectcalico.org/serviceaccount': 'robot' });
    const spec = weps[0].spec as Record<string, unknown>;
    assert.equal(spec.serviceAccountName, 'robot');
    assert.deepEqual([spec.interfaceName, spec.ipNetworks, spec.profiles], ['caliabc', ['10.0.0.1/32'], ['kns.shop']], 'the CNI plugin\'s fields are untouched');
  });

  it('a Kubernetes side that cannot be read: not ready with the reason, nothing deleted, ready again by itself', async () => {
    const source = new ScriptedSource();
    source.fail = new UnavailableError('Kubernetes API server https://127.0.0.1:1 unreachable: ECONNREFUSED');
    const ready: [boolean, string][] = [];
    let failures = 0;
    const m = new MirrorController(mirrorSpec('namespace', source), {
      store,
      resyncPeriodMs: () => 60_000,
      setReady: (_c, ok, reason) => ready.push([ok, reason ?? '']),
      counters: { failure: () => failures++, fullSync: () => {}, write: () => {} },
    });
    const ac = new AbortController();
    const running = m.run(ac.signal);
    await new Promise((r) => setTimeout(r, 1200)); // backoff 0.5 s, then 1 s
    assert.ok(failures >= 2, `failures ${failures}`);
    assert.deepEqual(ready[0], [false, 'Kubernetes API server https://127.0.0.1:1 unreachable: ECONNREFUSED']);
    assert.ok((await resources.get('Profile', 'kns.shop')) !== null, 'nothing deleted while Kubernetes cannot be read');
    source.fail = undefined;
    source.items = [nsProfile('shop', { team: 'a' }), nsProfile('web')];
    const deadline = Date.now() + 5000;
    while (!ready.at(-1)?.[0] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(ready.at(-1), [true, '']);
    ac.abort();
    await running;
  });
});
