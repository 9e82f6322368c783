// Opens the configured backend. Each backend is imported on demand so a short-lived CNI process
// loads only the code (and native module) it uses.
import type { Backend } from '../backend/api.js';
import { ConfigError, type DatastoreConfig } from './datastore-config.js';

export async function openBackend(cfg: DatastoreConfig): Promise<Backend> {
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
    try {
      return await openKubernetes({
        kubeconfig: cfg.kubeconfig,
        apiEndpoint: cfg.k8sAPIEndpoint,
        caFile: cfg.k8sCAFile,
        certFile: cfg.k8sCertFile,
        keyFile: cfg.k8sKeyFile,
        token: cfg.k8sAPIToken,
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
