// The process's health checks, as calico-kube-controllers' are: both APIs probed every
// HEALTH_CHECK_INTERVAL, whatever controllers run, so readiness follows an outage and its end
// between syncs: GET /version on the Kubernetes API, a read of the KubeControllersConfiguration
// `default` on the Calico datastore (which also hands the configuration on, so its edits apply
// without a restart).
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import type { KubeClient } from '../../libcalico-go/lib/backend/kubernetes/client.js';
import type { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';

export const KUBE_API = 'KubeAPIServer';
export const DATASTORE = 'CalicoDatastore';

export interface HealthDeps {
  kube: KubeClient;
  resources: ResourceClient;
  setReady: (component: string, ready: boolean, reason?: string) => void;
  /** The KubeControllersConfiguration `default` (null when absent) after each successful read. */
  onConfig?: (kcc: Resource | null) => void;
}

/** Probes both APIs every `intervalMs` until `signal` aborts; never throws. */
export async function healthChecks(deps: HealthDeps, signal: AbortSignal, intervalMs: number): Promise<void> {
  while (!signal.aborted) {
    await Promise.all([
      deps.kube.request('GET', '/version').then(
        () => deps.setReady(KUBE_API, true),
        (e: Error) => deps.setReady(KUBE_API, false, e.message),
      ),
      deps.resources.get('KubeControllersConfiguration', 'default').then(
        (kcc) => {
          deps.setReady(DATASTORE, true);
          deps.onConfig?.(kcc);
        },
        (e: Error) => deps.setReady(DATASTORE, false, e.message),
      ),
    ]);
    await new Promise<void>((resolve) => {
      const t = setTimeout(done, intervalMs);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
    });
  }
}
