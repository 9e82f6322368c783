// What the agent does on the Kubernetes datastore besides the datastore itself:
// * the k8s Node's NetworkUnavailable condition set False once the agent has started (calico-node's
//   last start-up step, node/pkg/lifecycle/utils: reason CalicoIsUp, here TortieIsUp), so the
//   node controller's taint goes and pods are scheduled;
// * the CNI kubeconfig's token kept fresh (calico-node -monitor-token): a TokenRequest for
//   ServiceAccount tortie-cni-plugin before the one on disk expires, written atomically (0600).
//
// Settings (environment, Calico's names where Calico has one):
//   CALICO_MANAGE_CNI          false: do not refresh the CNI token (default true)
//   CALICO_CNI_SERVICE_ACCOUNT the CNI plugin's ServiceAccount (default tortie-cni-plugin)
//   TORTIE_CNI_KUBECONFIG      the CNI kubeconfig as mounted in the agent's container
//                              (default /host/etc/cni/net.d/tortie-kubeconfig)
//   the ServiceAccount's namespace is the agent pod's own (its service-account `namespace` file),
//   else kube-system.
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CniTokenRefresher, DEFAULT_CNI_SERVICE_ACCOUNT, KUBECONFIG_NAME, requestToken } from '../../cni-plugin/pkg/index.js';
import type { KubeClient } from '../../libcalico-go/lib/backend/kubernetes/client.js';
import type { DatastoreConfig } from '../../libcalico-go/lib/config/datastore-config.js';
import type { Env } from './config.js';
import type { Logger } from '../../libcalico-go/lib/logutils/index.js';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface CniCredentialsSettings {
  manage: boolean;
  kubeconfigFile: string;
  serviceAccount: string;
  namespace: string;
}

/** The CNI token settings from the agent's environment (pure apart from reading the pod's namespace file). */
export function cniCredentialsSettings(env: Env, saDir = SERVICE_ACCOUNT_DIR): CniCredentialsSettings {
  const get = (k: string) => (env[k] === undefined || env[k] === '' ? undefined : env[k]);
  let namespace = 'kube-system';
  try {
    namespace = readFileSync(`${saDir}/namespace`, 'utf8').trim() || namespace;
  } catch {
    // not in a pod
  }
  const manage = get('CALICO_MANAGE_CNI');
  return {
    manage: manage === undefined ? true : !['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(manage),
    kubeconfigFile: get('TORTIE_CNI_KUBECONFIG') ?? `/host/etc/cni/net.d/${KUBECONFIG_NAME}`,
    serviceAccount: get('CALICO_CNI_SERVICE_ACCOUNT') ?? DEFAULT_CNI_SERVICE_ACCOUNT,
    namespace,
  };
}

/** Opens a client on the agent's own Kubernetes credentials (the datastore's settings). */
export async function agentKubeClient(ds: DatastoreConfig): Promise<KubeClient> {
  const { loadKubeClient } = await import('../../libcalico-go/lib/backend/kubernetes/client.js');
  return loadKubeClient({
    kubeconfig: ds.kubeconfig,
    apiEndpoint: ds.k8sAPIEndpoint,
    caFile: ds.k8sCAFile,
    certFile: ds.k8sCertFile,
    keyFile: ds.k8sKeyFile,
    token: ds.k8sAPIToken,
  });
}

export const NETWORK_UP = { reason: 'TortieIsUp', message: 'Tortie is running on this node' } as const;
export const NETWORK_DOWN = { reason: 'TortieIsDown', message: 'Tortie is shutting down on this node' } as const;

/** The strategic-merge patch of nodes/<name>/status setting NetworkUnavailable (calico-node's shape). */
export function networkUnavailablePatch(unavailable: boolean, now: Date): Record<string, unknown> {
  const t = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const r = unavailable ? NETWORK_DOWN : NETWORK_UP;
  return {
    status: {
      conditions: [{ type: 'NetworkUnavailable', status: unavailable ? 'True' : 'False', reason: r.reason, message: r.message, lastTransitionTime: t, lastHeartbeatTime: t }],
    },
  };
}

/** Sets the k8s Node's NetworkUnavailable condition. */
export async function setNetworkUnavailable(client: KubeClient, nodeName: string, unavailable: boolean, now = new Date()): Promise<void> {
  await client.request('PATCH', `/api/v1/nodes/${encodeURIComponent(nodeName)}/status`, {
    body: networkUnavailablePatch(unavailable, now),
    contentType: 'application/strategic-merge-patch+json',
    resource: 'nodes/status',
  });
}

/**
 * Runs the agent's Kubernetes-only duties once the agent is ready: NetworkUnavailable=False once
 * `networkUp` resolves (retried every 5 s until it sticks) and, when the CNI kubeconfig's directory
 * exists, the token refresher.
 * Returns a stop function.
 */
export function startKubeNodeDuties(opts: { nodeName: string; datastore: DatastoreConfig; env: Env; log: Logger; networkUp?: () => Promise<unknown> }): () => Promise<void> {
  const { log } = opts;
  const ac = new AbortController();
  let client: KubeClient | undefined;
  let refresher: CniTokenRefresher | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((r) => {
      const t = setTimeout(r, ms);
      ac.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(t);
          r();
        },
        { once: true },
      );
    });
  const run = (async () => {
    try {
      client = await agentKubeClient(opts.datastore);
    } catch (e) {
      log.error(`Cannot open a Kubernetes client for the Node condition and the CNI token: ${(e as Error).message}`);
      return;
    }
    const cni = cniCredentialsSettings(opts.env);
    if (cni.manage && existsSync(dirname(cni.kubeconfigFile))) {
      const c = client;
      refresher = new CniTokenRefresher({
        kubeconfigFile: cni.kubeconfigFile,
        namespace: cni.namespace,
        serviceAccount: cni.serviceAccount,
        issue: () => requestToken(c, cni.namespace, cni.serviceAccount),
        log,
      });
      refresher.start();
      log.info(`Keeping the CNI token in ${cni.kubeconfigFile} fresh (ServiceAccount ${cni.namespace}/${cni.serviceAccount})`);
    } else if (cni.manage) {
      log.info(`No ${dirname(cni.kubeconfigFile)} (TORTIE_CNI_KUBECONFIG): the CNI token is not managed by this agent`);
    }
    for (let attempt = 1; !ac.signal.aborted; attempt++) {
      try {
        // Only once the dataplane is programmed (the first policy pass), as its name promises.
        // (Given up when the agent stops first: a stop never waits for a dataplane that will not come.)
        const aborted = new Promise<void>((r) => ac.signal.addEventListener('abort', () => r(), { once: true }));
        await Promise.race([opts.networkUp?.(), aborted]);
        if (ac.signal.aborted) return;
        await setNetworkUnavailable(client, opts.nodeName, false);
        log.info(`Set NetworkUnavailable=False (${NETWORK_UP.reason}) on Node ${opts.nodeName}`);
        return;
      } catch (e) {
        if (attempt === 1 || attempt % 12 === 0) log.warn(`Cannot set NetworkUnavailable=False on Node ${opts.nodeName}: ${(e as Error).message}; retrying every 5 s`);
        await sleep(5000);
      }
    }
  })();
  return async () => {
    ac.abort();
    await run;
    await refresher?.stop();
    await client?.close();
  };
}
