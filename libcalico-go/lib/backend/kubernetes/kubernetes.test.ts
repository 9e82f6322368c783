// The datastore contract on the Kubernetes backend against a real kube-apiserver (and its etcd)
// built by scripts/build-kubernetes.sh, with manifests/crds.yaml applied by the real kubectl.
//
// The contract's arbitrary keys and values travel as GlobalNetworkSets (testing/kdd-contract-adapter.ts).
// The API server runs with --watch-cache=false so a watch from a compacted revision reaches etcd
// (the compaction hook is `etcdctl compact`), and without its identity lease
// (APIServerIdentity=false), whose renewals every 10 s would otherwise advance the shared etcd
// revision between a write and the contract's revision() check — as another writer would on etcd.
import { execFileSync } from 'node:child_process';
import { after, before, describe } from 'node:test';
import { backendContract } from '../../../../testing/backend-contract.js';
import { missingKubernetesBinaries, startKubeApiserver, type TestKubeApiserver } from '../../../../testing/kube-apiserver.js';
import { openAdapted } from '../../../../testing/kdd-contract-adapter.js';

const root = new URL('../../../../..', import.meta.url).pathname;
const ADAPTER = new URL('../../../../testing/kdd-contract-adapter.js', import.meta.url).href;
const missing = missingKubernetesBinaries(['kubeApiserver', 'kubectl', 'etcd', 'etcdctl']);
const skip = missing.length > 0 ? `needs the Kubernetes build (scripts/build-kubernetes.sh): ${missing.join(', ')} not built` : false;

describe('kubernetes backend on a real kube-apiserver', { skip, timeout: 600_000 }, () => {
  let api: TestKubeApiserver;
  before(async () => {
    api = await startKubeApiserver({ extraArgs: ['--watch-cache=false', '--feature-gates=APIServerIdentity=false'] });
    await api.kubectl(['apply', '-f', `${root}manifests/crds.yaml`]);
    await api.kubectl(['wait', '--for=condition=Established', '--all', 'crd', '--timeout=120s']);
  });
  after(async () => {
    await api?.stop();
  });

  backendContract('kubernetes', () => openAdapted({ kubeconfig: api.kubeconfig }), {
    child: () => ({ module: ADAPTER, exportName: 'openAdapted', args: [{ kubeconfig: api.kubeconfig }] }),
    compact: async (_b, revision) => {
      execFileSync(api.binaries.etcdctl, ['--endpoints', api.etcdEndpoint, 'compact', revision], { stdio: 'pipe' });
    },
  });
});
