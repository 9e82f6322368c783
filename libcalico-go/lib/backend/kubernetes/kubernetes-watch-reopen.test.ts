// Watches on the Kubernetes backend while the API server closes every watch stream after 1–2 s
// (--min-request-timeout=1; by default it does so every 30–60 min), against a real kube-apiserver.
// * The whole datastore contract, its watch tests included, holds with streams closing under it.
// * A resume point that expires while the stream is closed (etcd compacted past it; 410 Gone on
//   re-open) makes the watch re-list and report the differences, as Calico's watcher cache does,
//   instead of failing the consumer's watch: the consumer's view stays equal to the store.
// The API server runs with --watch-cache=false so watches reach etcd and its compaction.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { WatchEvent } from '../api.js';
import { backendContract } from '../../../../testing/backend-contract.js';
import { missingKubernetesBinaries, startKubeApiserver, type TestKubeApiserver } from '../../../../testing/kube-apiserver.js';
import { openAdapted, type ContractAdapter } from '../../../../testing/kdd-contract-adapter.js';

const root = new URL('../../../../..', import.meta.url).pathname;
const ADAPTER = new URL('../../../../testing/kdd-contract-adapter.js', import.meta.url).href;
const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd', 'etcdctl']);
const skip = missing.length > 0 ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built` : false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('kubernetes backend with watch streams closed every 1-2 s', { skip, timeout: 600_000 }, () => {
  let api: TestKubeApiserver;
  before(async () => {
    api = await startKubeApiserver({ minRequestTimeoutSeconds: 1, extraArgs: ['--watch-cache=false', '--feature-gates=APIServerIdentity=false'] });
    await api.kubectl(['apply', '-f', `${root}manifests/crds.yaml`]);
    await api.kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
  });
  after(async () => {
    await api?.stop();
  });
  const compact = (revision: string) => execFileSync(api.binaries.etcdctl, ['--endpoints', api.etcdEndpoint, 'compact', revision], { stdio: 'pipe' });

  backendContract('kubernetes, watch streams closed every 1-2 s', () => openAdapted({ kubeconfig: api.kubeconfig }), {
    child: () => ({ module: ADAPTER, exportName: 'openAdapted', args: [{ kubeconfig: api.kubeconfig }] }),
    compact: async (_b, revision) => {
      compact(revision);
    },
  });

  it('a resume point compacted while the stream was closed: the watch re-lists and its view stays equal to the store', { timeout: 120_000 }, async () => {
    const b: ContractAdapter = await openAdapted({ kubeconfig: api.kubeconfig });
    const p = `/reopen/${randomBytes(4).toString('hex')}/`;
    const view = new Map<string, string>();
    const lastRev = new Map<string, bigint>();
    const ac = new AbortController();
    let events = 0;
    const start = await b.revision();
    const watching = (async () => {
      for await (const e of b.watch(p, { afterRevision: start, signal: ac.signal }) as AsyncIterable<WatchEvent>) {
        events++;
        // Each event continues what the watcher was told before: prevValue is the value it had.
        assert.equal(e.prevValue, view.get(e.key), `${e.type} ${e.key} at ${e.revision}: prevValue`);
        const r = BigInt(e.revision);
        assert.ok(r > (lastRev.get(e.key) ?? 0n), `${e.key}: revision ${e.revision} after ${lastRev.get(e.key)}`);
        lastRev.set(e.key, r);
        if (e.type === 'put') view.set(e.key, e.value!);
        else view.delete(e.key);
      }
    })();
    try {
      let n = 0;
      for (let cycle = 0; cycle < 6; cycle++) {
        // Writes the watch sees on its live stream…
        for (let i = 0; i < 5; i++, n++) {
          if (n % 7 === 6) await b.delete(`${p}k${(n * 3) % 10}`).catch(() => undefined);
          else await b.apply(`${p}k${n % 10}`, `v${n}`);
        }
        // …then a write of another kind (the etcd revision moves past the watch's resume point),
        // compaction up to it, and a pause longer than the stream lives: the re-open gets 410 Gone.
        // (Two: a watch from revision r resumes at r+1, which must be compacted too.)
        for (let j = 0; j < 2; j++) {
          await b.inner.client.request('POST', '/api/v1/namespaces/default/configmaps', {
            body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `reopen-${randomBytes(4).toString('hex')}` }, data: { n: String(n) } },
          });
        }
        compact(await b.revision());
        // A write inside the gap is found by the re-list, or by the live stream if it was open.
        if (cycle % 2 === 1) await b.apply(`${p}gap${cycle}`, `g${cycle}`);
        await sleep(2500);
      }
      const want = new Map((await b.list(p)).items.map((kv) => [kv.key, kv.value]));
      for (let t = 0; t < 100 && JSON.stringify([...view].sort()) !== JSON.stringify([...want].sort()); t++) await sleep(100);
      assert.deepEqual(new Map([...view].sort()), new Map([...want].sort()), `the watcher's view after ${events} events`);
      assert.ok(b.inner.resyncs >= 1, `the resume point expired at least once (${b.inner.resyncs} re-lists), so the test exercised the re-list`);
      console.log(`# ${events} events, ${b.inner.resyncs} re-lists after 410 Gone`);
    } finally {
      ac.abort();
      await watching;
      await b.close();
    }
  });
});
