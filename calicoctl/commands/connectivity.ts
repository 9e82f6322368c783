// `tortiectl connectivity test`: the connectivity test (libcalico-go/lib/connectivity/plan.ts) on
// a Kubernetes cluster, its probes as Pods through the API (connectivity-kube.ts). Exit 1 when a
// check fails; what it made is removed whatever happens (also on SIGINT/SIGTERM).
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { runConnectivity } from '../../libcalico-go/lib/connectivity/plan.js';
import { type ParsedArgs, UsageError, flag, flagBool } from './args.js';
import { loadDatastoreConfig } from './client.js';
import type { Io } from './resources.js';

export const CONNECTIVITY_USAGE = `Usage:
  tortiectl connectivity test [--json] [--image=<image>] [--config=<config>]

Deploys probe Pods (agnhost netexec) on every Ready node in namespace tortie-connectivity, plus a
hostNetwork probe per node, and checks: pod→pod on one node and across nodes, host→pod, pod→host,
pod→Service, full-size packets with DF set (pod MTU − 28 bytes of ICMP payload), and a policy
scenario (default deny, then an allow from role=client). One ✔/✖ line per check, diagnostics
under a failure (what was sent and from where, the path and routes tortiectl trace predicts,
the policy verdict), a summary. Everything it created is removed at the end (also on Ctrl-C).
Needs DATASTORE_TYPE=kubernetes (on a tortie-lab without Kubernetes: tortie-lab connectivity <lab>).
Exit 0 when every check passes, 1 otherwise.

Options:
  --json             The report as JSON.
  --image=<image>    The probe image [default: registry.k8s.io/e2e-test-images/agnhost:2.56].
`;

export async function cmdConnectivity(p: ParsedArgs, io: Io, open: () => Promise<Backend>): Promise<void> {
  const sub = p.positional.shift();
  if (sub !== 'test') throw new UsageError(`connectivity needs: test${sub ? ` (got ${JSON.stringify(sub)})` : ''}`);
  if (p.positional.length > 0) throw new UsageError(CONNECTIVITY_USAGE);
  const cfg = loadDatastoreConfig(flag(p, 'config'), process.env);
  if (cfg.datastoreType !== 'kubernetes') {
    throw new UsageError(`connectivity test deploys Pods through the Kubernetes API: it needs DATASTORE_TYPE=kubernetes (the datastore is ${cfg.datastoreType}); on a tortie-lab without Kubernetes, run: tortie-lab connectivity <lab>`);
  }
  const { loadKubeClient } = await import('../../libcalico-go/lib/backend/kubernetes/client.js');
  const { KubeDriver } = await import('./connectivity-kube.js');
  const kube = await loadKubeClient({ kubeconfig: cfg.kubeconfig, apiEndpoint: cfg.k8sAPIEndpoint, caFile: cfg.k8sCAFile, certFile: cfg.k8sCertFile, keyFile: cfg.k8sKeyFile, token: cfg.k8sAPIToken });
  const store = await open();
  const json = flagBool(p, 'json');
  const ac = new AbortController();
  const onSignal = () => {
    process.stderr.write('tortiectl: interrupted; removing the probes after the current check\n');
    ac.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const driver = new KubeDriver(kube, store, { image: flag(p, 'image'), log: json ? undefined : (l) => io.out(l + '\n') });
    const r = await runConnectivity(driver, { out: io.out, json, signal: ac.signal });
    if (!r.ok) process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await kube.close();
    await store.close();
  }
}
