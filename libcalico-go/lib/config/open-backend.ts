// Opens the configured backend. Each backend is imported on demand so a short-lived CNI process
// loads only the code (and native module) it uses.
import type { Backend } from '../backend/api.js';
import { ConfigError, type DatastoreConfig } from './datastore-config.js';

/** How the derived kinds of the kubernetes datastore behave for this client (ignored by the others). */
export interface OpenBackendOptions {
  /** Host interface prefix of WorkloadEndpoints read from Pods (FELIX_INTERFACEPREFIX's first entry; default "cali"). */
  interfacePrefix?: string;
  /**
   * The client is the CNI path's (the agent, whose CNI handler writes WorkloadEndpoints): on
   * kubernetes a WorkloadEndpoint write is Calico's pod-status annotation patch. Default false:
   * tortiectl and tortie-ipam read WorkloadEndpoints only, as calicoctl does.
   */
  cniWrites?: boolean;
}

export async function openBackend(cfg: DatastoreConfig, opts: OpenBackendOptions = {}): Promise<Backend> {
  if (cfg.datastoreType === 'etcdv3') {
    const { openEtcdV3 } = await import('../backend/etcdv3/etcdv3.js');
    return openEtcdV3({
      endpoints: cfg.etcdEndpoints,
      caFile: cfg.etcdCACertFile,
      certFile: cfg.etcdCertFile,
      keyFile: cfg.etcdKeyFile,
    });
  }
  if (cfg.datastoreType === 'kubernetes') {
    const { openKubernetes } = await import('../backend/kubernetes/kubernetes.js');
    const { KubeConfigError } = await import('../backend/kubernetes/client.js');
    const { derivedHandlers } = await import('../backend/kubernetes/derived/index.js');
    try {
      return await openKubernetes({
        kubeconfig: cfg.kubeconfig,
        apiEndpoint: cfg.k8sAPIEndpoint,
        caFile: cfg.k8sCAFile,
        certFile: cfg.k8sCertFile,
        keyFile: cfg.k8sKeyFile,
        token: cfg.k8sAPIToken,
        // Node ← k8s Node, WorkloadEndpoint ← Pod, Profiles kns./ksa., knp.default.*.
        handlers: derivedHandlers({ interfacePrefix: opts.interfacePrefix, cniWrites: opts.cniWrites }),
      });
    } catch (e) {
      // A bad kubeconfig is a configuration error like any other datastore setting.
      if (e instanceof KubeConfigError) throw new ConfigError(e.message);
      throw e;
    }
  }
  const { openEmbedded } = await import('../backend/embedded/embedded.js');
  return openEmbedded(cfg.datastorePath);
}
