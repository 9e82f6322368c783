// An expired revision on a real kube-apiserver: etcd compacted with the real etcdctl, the API
// server's watch cache off (with it on, a young server answers old revisions from its cache, which
// still holds every event since it started). The server also ends every watch after 1–2 s
// (--min-request-timeout=1), so watches here live through many server-side closes. Every derived kind's list at, and watch from, the
// compacted revision fails with CompactedError; the caller's recovery (re-list, watch from the new
// revision) then sees new changes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { CompactedError, type WatchEvent } from '../../api.js';
import { missingKubernetesBinaries, startKubeApiserver, type TestKubeApiserver } from '../../../../../testing/kube-apiserver.js';
import { loadKubeClient, type KubeClient } from '../client.js';
import type { KindHandler } from '../handler.js';
import { KubernetesNetworkPolicyHandler } from './knp-handler.js';
import { NodeHandler } from './node-handler.js';
import { ProfileHandler } from './profile-handler.js';
import { WorkloadEndpointHandler } from './wep-handler.js';

const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd', 'etcdctl']);
const skip = missing.length > 0 ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built` : false;
const R = '/calico/resources/v3/projectcalico.org';

describe('derived kinds at a compacted revision', { skip, timeout: 300_000 }, () => {
  let api: TestKubeApiserver;
  let client: KubeClient;

  before(async () => {
    api = await startKubeApiserver({ extraArgs: ['--watch-cache=false', '--min-request-timeout=1'] });
    client = await loadKubeClient({ kubeconfig: api.kubeconfig });
    await api.kubectl(['create', 'namespace', 'web']);
    await api.kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } }));
    await api.kubectl(['create', 'serviceaccount', 'sa1', '-n', 'web']);
    const list = (await client.request<{ metadata: { resourceVersion: string } }>('GET', '/api/v1/namespaces', { query: { limit: '1' } })).metadata.resourceVersion;
    const { stdout } = await promisify(execFile)(api.binaries.etcdctl, ['--endpoints', api.etcdEndpoint, 'compact', list]);
    assert.match(stdout, new RegExp(`compacted revision ${list}`));
  });
  after(async () => {
    await client?.close();
    await api?.stop();
  });

  const kinds: [string, () => KindHandler, string, string[]][] = [
    ['Node', () => new NodeHandler(client), `${R}/nodes/`, ['label', 'node', 'n1', 'x=1']],
    ['WorkloadEndpoint', () => new WorkloadEndpointHandler(client), `${R}/workloadendpoints/`, []],
    ['Profile', () => new ProfileHandler(client), `${R}/profiles/`, ['label', 'namespace', 'web', 'x=1']],
    ['Profile (combined revisions)', () => new ProfileHandler(client, { revisions: 'combined' }), `${R}/profiles/`, ['label', 'serviceaccount', 'sa1', '-n', 'web', 'x=1']],
    ['Kubernetes NetworkPolicy', () => new KubernetesNetworkPolicyHandler(client), `${R}/networkpolicies/`, []],
  ];

  for (const [name, make, prefix, change] of kinds) {
    test(`${name}: list at and watch from a compacted revision → CompactedError; re-list and watch recover`, async () => {
      const h = make();
      await assert.rejects(h.list(prefix, { revision: '2' }), CompactedError);
      const old = name.includes('combined') ? '2/2' : '2';
      await assert.rejects(async () => {
        for await (const _ of h.watch(prefix, { afterRevision: old })) break;
      }, CompactedError);
      // Recovery as a syncer does it: re-list, then watch from the list's revision.
      const list = await h.list(prefix);
      assert.notEqual(list.revision, '');
      if (change.length === 0) return;
      const ac = new AbortController();
      const it = h.watch(prefix, { afterRevision: list.revision, signal: ac.signal })[Symbol.asyncIterator]();
      await api.kubectl(change);
      const guard = setTimeout(() => ac.abort(), 60_000);
      const r = await it.next();
      clearTimeout(guard);
      assert.equal(r.done, false, 'an event after the re-list');
      const e = r.value as WatchEvent;
      assert.equal(e.type, 'put');
      assert.match(e.value!, /"x":"1"|"pcns\.x":"1"|"pcsa\.x":"1"/);
      ac.abort();
    });
  }

  test('a watch outlives the server ending it: re-watched from the last revision, nothing lost or repeated', async () => {
    const h = new NodeHandler(client);
    const list = await h.list(`${R}/nodes/`);
    const ac = new AbortController();
    const guard = setTimeout(() => ac.abort(), 120_000);
    const it = h.watch(`${R}/nodes/`, { afterRevision: list.revision, signal: ac.signal })[Symbol.asyncIterator]();
    const first = it.next();
    /** Waits until the server has ended the watch `n` more times (each re-watch is one more request). */
    const rewatches = async (n: number) => {
      const start = client.requests;
      while (client.requests < start + n && !ac.signal.aborted) await new Promise((r) => setTimeout(r, 100));
    };
    await rewatches(3);
    await api.kubectl(['label', 'node', 'n1', 'round=1']);
    const e1 = await first;
    await rewatches(3);
    await api.kubectl(['label', 'node', 'n1', 'round=2', '--overwrite']);
    const e2 = await it.next();
    clearTimeout(guard);
    assert.equal(e1.done, false);
    assert.equal(e2.done, false);
    assert.match(e1.value!.value!, /"round":"1"/);
    assert.match(e2.value!.value!, /"round":"2"/);
    assert.ok(BigInt(e2.value!.revision) > BigInt(e1.value!.revision));
    assert.equal(e2.value!.prevValue, e1.value!.value, 'the second event follows the first directly');
    ac.abort();
  });
});
