// Which datastore to talk to, chosen as calicoctl chooses: a CalicoAPIConfig file when one is
// given or present, else the environment (DATASTORE_TYPE, ETCD_*, DATASTORE_PATH, KUBECONFIG,
// K8S_*). For `kubernetes` the connection is: the kubeconfig file when given, else the API endpoint
// with its CA/certificate/token settings, else in-cluster configuration (checked when the backend
// is opened: backend/kubernetes/client.ts).

export type DatastoreType = 'embedded' | 'etcdv3' | 'kubernetes';

export interface DatastoreConfig {
  datastoreType: DatastoreType;
  /** Embedded store file. */
  datastorePath: string;
  etcdEndpoints: string[];
  etcdCACertFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
  /** Kubernetes datastore: kubeconfig file (KUBECONFIG / kubeconfig). */
  kubeconfig?: string;
  k8sAPIEndpoint?: string;
  k8sCAFile?: string;
  k8sCertFile?: string;
  k8sKeyFile?: string;
  k8sAPIToken?: string;
}

export const DEFAULT_DATASTORE_PATH = '/var/lib/tortie/datastore.db';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Raw settings, keyed by CalicoAPIConfig's camelCase spec names. */
export interface RawDatastoreSettings {
  datastoreType?: string;
  datastorePath?: string;
  etcdEndpoints?: string;
  etcdCACertFile?: string;
  etcdCertFile?: string;
  etcdKeyFile?: string;
  kubeconfig?: string;
  k8sAPIEndpoint?: string;
  k8sCAFile?: string;
  k8sCertFile?: string;
  k8sKeyFile?: string;
  k8sAPIToken?: string;
}

const K8S_SETTINGS = ['kubeconfig', 'k8sAPIEndpoint', 'k8sCAFile', 'k8sCertFile', 'k8sKeyFile', 'k8sAPIToken'] as const;

export function settingsFromEnv(env: Record<string, string | undefined>): RawDatastoreSettings {
  const pick = (k: string) => (env[k] !== undefined && env[k] !== '' ? env[k] : undefined);
  return {
    datastoreType: pick('DATASTORE_TYPE'),
    datastorePath: pick('DATASTORE_PATH'),
    etcdEndpoints: pick('ETCD_ENDPOINTS'),
    etcdCACertFile: pick('ETCD_CA_CERT_FILE'),
    etcdCertFile: pick('ETCD_CERT_FILE'),
    etcdKeyFile: pick('ETCD_KEY_FILE'),
    kubeconfig: pick('KUBECONFIG'),
    k8sAPIEndpoint: pick('K8S_API_ENDPOINT'),
    k8sCAFile: pick('K8S_CA_FILE'),
    k8sCertFile: pick('K8S_CERT_FILE'),
    k8sKeyFile: pick('K8S_KEY_FILE'),
    k8sAPIToken: pick('K8S_API_TOKEN'),
  };
}

/** Reads the spec of a parsed CalicoAPIConfig document, refusing anything else by name. */
export function settingsFromAPIConfig(doc: unknown, source: string): RawDatastoreSettings {
  if (typeof doc !== 'object' || doc === null) throw new ConfigError(`${source}: not a CalicoAPIConfig document`);
  const d = doc as Record<string, unknown>;
  if (d.kind !== 'CalicoAPIConfig') {
    throw new ConfigError(`${source}: kind must be CalicoAPIConfig, got ${JSON.stringify(d.kind)}`);
  }
  if (d.apiVersion !== undefined && d.apiVersion !== 'projectcalico.org/v3') {
    throw new ConfigError(`${source}: apiVersion must be projectcalico.org/v3, got ${JSON.stringify(d.apiVersion)}`);
  }
  const spec = (d.spec ?? {}) as Record<string, unknown>;
  const known = ['datastoreType', 'datastorePath', 'etcdEndpoints', 'etcdCACertFile', 'etcdCertFile', 'etcdKeyFile', ...K8S_SETTINGS];
  const out: RawDatastoreSettings = {};
  for (const [k, v] of Object.entries(spec)) {
    if (!known.includes(k)) throw new ConfigError(`${source}: spec.${k}: unknown field`);
    if (typeof v !== 'string') throw new ConfigError(`${source}: spec.${k}: must be a string, got ${JSON.stringify(v)}`);
    (out as Record<string, string>)[k] = v;
  }
  return out;
}

/** Validates raw settings into a config; every refusal names the setting and its value. */
export function resolveDatastoreConfig(raw: RawDatastoreSettings): DatastoreConfig {
  const type = raw.datastoreType ?? 'embedded';
  if (type !== 'embedded' && type !== 'etcdv3' && type !== 'kubernetes') {
    throw new ConfigError(`invalid datastore type ${JSON.stringify(type)}: must be "embedded", "etcdv3" or "kubernetes"`);
  }
  if (type === 'kubernetes') {
    if (raw.k8sAPIEndpoint !== undefined && !/^https?:\/\/[^/\s]+/.test(raw.k8sAPIEndpoint)) {
      throw new ConfigError(`invalid Kubernetes API endpoint ${JSON.stringify(raw.k8sAPIEndpoint)} (K8S_API_ENDPOINT / k8sAPIEndpoint): expected https://host:port`);
    }
    if ((raw.k8sCertFile === undefined) !== (raw.k8sKeyFile === undefined)) {
      throw new ConfigError('Kubernetes client certificate and key must be given together (K8S_CERT_FILE and K8S_KEY_FILE)');
    }
  }
  const endpoints = (raw.etcdEndpoints ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const e of endpoints) {
    if (!/^https?:\/\/[^/\s]+\/?$/.test(e)) {
      throw new ConfigError(`invalid etcd endpoint ${JSON.stringify(e)}: expected http(s)://host:port`);
    }
  }
  if (type === 'etcdv3' && endpoints.length === 0) {
    throw new ConfigError('datastore type "etcdv3" needs etcd endpoints (ETCD_ENDPOINTS / etcdEndpoints)');
  }
  if ((raw.etcdCertFile === undefined) !== (raw.etcdKeyFile === undefined)) {
    throw new ConfigError('etcd client certificate and key must be given together (ETCD_CERT_FILE and ETCD_KEY_FILE)');
  }
  return {
    datastoreType: type,
    datastorePath: raw.datastorePath ?? DEFAULT_DATASTORE_PATH,
    etcdEndpoints: endpoints.map((e) => e.replace(/\/$/, '')),
    etcdCACertFile: raw.etcdCACertFile,
    etcdCertFile: raw.etcdCertFile,
    etcdKeyFile: raw.etcdKeyFile,
    ...Object.fromEntries(K8S_SETTINGS.filter((k) => raw[k] !== undefined).map((k) => [k, raw[k]])),
  };
}
