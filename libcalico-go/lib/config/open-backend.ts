// Opens the configured backend. Each backend is imported on demand so a short-lived CNI process
// loads only the code (and native module) it uses.
import type { Backend } from '../backend/api.js';
import type { DatastoreConfig } from './datastore-config.js';

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
  const { openEmbedded } = await import('../backend/embedded/embedded.js');
  return openEmbedded(cfg.datastorePath);
}
