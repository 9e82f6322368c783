// tortie-install-cni's pure part (Calico's cni-plugin/pkg/install): reading its environment, the CNI
// network configuration template with Calico's placeholders, and the CNI kubeconfig. No I/O: the
// command (cni-plugin/cmd/install.ts) reads files and the API and writes the results.
//
// Every refusal names the variable and its value; all problems are collected and thrown together.
//
// Differences from Calico's install, deliberate:
// * The kubeconfig's server is `https://<host>:<port>`, with brackets for IPv6 only (Calico writes
//   brackets even around an IPv4 address, which Node's URL parser, and so the plugin, refuses).
// * Placeholder values must be JSON-string-safe (no `"`, `\` or control characters): a node name
//   or path that would break the JSON is refused naming its variable instead of producing a bad file.
// * A placeholder left in the rendered configuration (e.g. a typo `__CNI_MTUU__`) is an error.
import { isAbsolute } from 'node:path';

export type Env = Record<string, string | undefined>;

export class InstallConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.length === 1 ? `invalid install-cni configuration: ${problems[0]}` : `invalid install-cni configuration (${problems.length} problems): ${problems.join('; ')}`);
    this.name = 'InstallConfigError';
  }
}

export const KUBECONFIG_NAME = 'tortie-kubeconfig';
export const DEFAULT_CONF_NAME = '10-tortie.conflist';
/** Calico's CALICO_CNI_SERVICE_ACCOUNT default (v3.26+ `calico-cni-plugin`), Tortie-named. */
export const DEFAULT_CNI_SERVICE_ACCOUNT = 'tortie-cni-plugin';
/** Lifetime asked for the CNI token (Calico: 24 h). */
export const CNI_TOKEN_SECONDS = 24 * 3600;

/** The built-in template (no CNI_NETWORK_CONFIG): the shape of Calico's, with Tortie's plugin types. */
export const DEFAULT_TEMPLATE = `{
  "name": "k8s-pod-network",
  "cniVersion": "0.3.1",
  "plugins": [
    {
      "type": "tortie",
      "log_level": "__LOG_LEVEL__",
      "log_file_path": "__LOG_FILE_PATH__",
      "datastore_type": "__DATASTORE_TYPE__",
      "nodename": "__KUBERNETES_NODE_NAME__",
      "mtu": __CNI_MTU__,
      "ipam": { "type": "tortie-ipam" },
      "policy": { "type": "k8s" },
      "kubernetes": { "kubeconfig": "__KUBECONFIG_FILEPATH__" }
    },
    { "type": "portmap", "snat": true, "capabilities": { "portMappings": true } }
  ]
}
`;

export interface InstallSettings {
  /** CNI_NET_DIR: the host's CNI configuration directory as the conflist names it (default /etc/cni/net.d). */
  cniNetDir: string;
  confName: string;
  /** CNI_OLD_CONF_NAME: removed when it differs from confName. */
  oldConfName: string;
  /** CNI_NETWORK_CONFIG (the ConfigMap's template); undefined = CNI_NETWORK_CONFIG_FILE or the built-in one. */
  networkConfig?: string;
  networkConfigFile?: string;
  mtu: number;
  nodeName: string;
  datastoreType: string;
  serviceHost?: string;
  servicePort?: string;
  serviceProtocol: string;
  skipTLSVerify: boolean;
  logLevel: string;
  logFilePath: string;
  logFileMaxSize: number;
  logFileMaxAge: number;
  logFileMaxCount: number;
  updateBinaries: boolean;
  skipBinaries: string[];
  sleep: boolean;
  cniServiceAccount: string;
  etcdEndpoints: string;
  etcdDiscoverySrv: string;
  /** Where the host's directories are mounted in the container (Calico: /host/opt/cni/bin, /host/etc/cni/net.d). */
  hostBinDir: string;
  hostNetDir: string;
  /** The pod's service-account directory (token, ca.crt, namespace). */
  serviceAccountDir: string;
  /** Tortie's files in the image (/opt/tortie: dist, node_modules, host-runtime.json). */
  appDir: string;
  /** The image's CNI plugins (/opt/cni/bin). */
  imageBinDir: string;
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warning', 'warn', 'error', 'fatal', 'panic'];

/** Go's strconv.ParseBool. */
function goBool(problems: string[], name: string, v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  problems.push(`${name}=${JSON.stringify(v)}: is not a boolean (use true or false)`);
  return undefined;
}

/** A value that goes into the JSON text: refused when it would break it. */
function jsonSafe(problems: string[], name: string, v: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/["\\\u0000-\u001f]/.test(v)) problems.push(`${name}=${JSON.stringify(v)}: contains a quote, backslash or control character, which the CNI configuration cannot carry`);
  return v;
}

/** Reads install-cni's environment (Calico's names). Throws InstallConfigError listing every bad value. */
export function parseInstallEnv(env: Env, opts: { hostname?: () => string } = {}): InstallSettings {
  const problems: string[] = [];
  const get = (k: string): string | undefined => (env[k] === undefined || env[k] === '' ? undefined : env[k]);
  const int = (k: string, dflt: number, min: number, max: number): number => {
    const v = get(k);
    if (v === undefined) return dflt;
    if (!/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) {
      problems.push(`${k}=${JSON.stringify(v)}: must be an integer ${min}–${max}`);
      return dflt;
    }
    return Number(v);
  };
  const absDir = (k: string, dflt: string): string => {
    const v = get(k) ?? dflt;
    if (!isAbsolute(v)) problems.push(`${k}=${JSON.stringify(v)}: must be an absolute path`);
    return jsonSafe(problems, k, v.replace(/\/+$/, '') || '/');
  };
  const fileName = (k: string, dflt: string): string => {
    const v = get(k) ?? dflt;
    if (v.includes('/') || v === '.' || v === '..' || !/\.(conf|conflist|json)$/.test(v)) {
      problems.push(`${k}=${JSON.stringify(v)}: must be a file name (no "/") ending in .conflist, .conf or .json`);
    }
    return v;
  };

  const cniNetDir = absDir('CNI_NET_DIR', '/etc/cni/net.d');
  const confName = fileName('CNI_CONF_NAME', DEFAULT_CONF_NAME);
  const oldConfName = get('CNI_OLD_CONF_NAME') !== undefined ? fileName('CNI_OLD_CONF_NAME', confName) : confName;
  // veth_mtu "0" (the manifest's default) means: the agent's detected MTU.
  const mtu = int('CNI_MTU', 1500, 0, 65535);
  if (mtu !== 0 && mtu < 68) problems.push(`CNI_MTU=${JSON.stringify(get('CNI_MTU'))}: must be 0 (auto) or at least 68`);

  let nodeName = get('KUBERNETES_NODE_NAME');
  if (nodeName === undefined) nodeName = (opts.hostname?.() ?? '').trim().toLowerCase();
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(nodeName) || nodeName.length > 253) {
    problems.push(`KUBERNETES_NODE_NAME=${JSON.stringify(nodeName)}: is not a valid node name (lower-case DNS subdomain)`);
  }

  const datastoreType = get('DATASTORE_TYPE') ?? 'kubernetes';
  if (!['kubernetes', 'etcdv3'].includes(datastoreType)) problems.push(`DATASTORE_TYPE=${JSON.stringify(datastoreType)}: must be "kubernetes" or "etcdv3"`);

  const serviceHost = get('KUBERNETES_SERVICE_HOST');
  const servicePort = get('KUBERNETES_SERVICE_PORT');
  if (serviceHost !== undefined) jsonSafe(problems, 'KUBERNETES_SERVICE_HOST', serviceHost);
  if (servicePort !== undefined && (!/^\d+$/.test(servicePort) || Number(servicePort) < 1 || Number(servicePort) > 65535)) {
    problems.push(`KUBERNETES_SERVICE_PORT=${JSON.stringify(servicePort)}: must be a port number 1–65535`);
  }
  const serviceProtocol = get('KUBERNETES_SERVICE_PROTOCOL') ?? 'https';
  if (!['https', 'http'].includes(serviceProtocol)) problems.push(`KUBERNETES_SERVICE_PROTOCOL=${JSON.stringify(serviceProtocol)}: must be https or http`);

  const logLevel = (get('LOG_LEVEL') ?? 'info').toLowerCase();
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL=${JSON.stringify(get('LOG_LEVEL'))}: must be one of ${LOG_LEVELS.join(', ')}`);
  const logFilePath = jsonSafe(problems, 'LOG_FILE_PATH', get('LOG_FILE_PATH') ?? '/var/log/tortie/cni/cni.log');
  if (!isAbsolute(logFilePath)) problems.push(`LOG_FILE_PATH=${JSON.stringify(logFilePath)}: must be an absolute path`);

  const networkConfig = get('CNI_NETWORK_CONFIG');
  const networkConfigFile = get('CNI_NETWORK_CONFIG_FILE');
  if (networkConfigFile !== undefined && !isAbsolute(networkConfigFile)) problems.push(`CNI_NETWORK_CONFIG_FILE=${JSON.stringify(networkConfigFile)}: must be an absolute path`);

  const cniServiceAccount = get('CALICO_CNI_SERVICE_ACCOUNT') ?? get('TORTIE_CNI_SERVICE_ACCOUNT') ?? DEFAULT_CNI_SERVICE_ACCOUNT;
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(cniServiceAccount)) problems.push(`CALICO_CNI_SERVICE_ACCOUNT=${JSON.stringify(cniServiceAccount)}: is not a ServiceAccount name`);

  const s: InstallSettings = {
    cniNetDir,
    confName,
    oldConfName,
    ...(networkConfig !== undefined ? { networkConfig } : {}),
    ...(networkConfigFile !== undefined ? { networkConfigFile } : {}),
    mtu,
    nodeName,
    datastoreType,
    ...(serviceHost !== undefined ? { serviceHost } : {}),
    ...(servicePort !== undefined ? { servicePort } : {}),
    serviceProtocol,
    skipTLSVerify: goBool(problems, 'SKIP_TLS_VERIFY', get('SKIP_TLS_VERIFY') ?? 'false') ?? false,
    logLevel,
    logFilePath,
    logFileMaxSize: int('LOG_FILE_MAX_SIZE', 100, 1, 1 << 20),
    logFileMaxAge: int('LOG_FILE_MAX_AGE', 30, 0, 36500),
    logFileMaxCount: int('LOG_FILE_MAX_COUNT', 10, 0, 10000),
    updateBinaries: goBool(problems, 'UPDATE_CNI_BINARIES', get('UPDATE_CNI_BINARIES') ?? 'true') ?? true,
    skipBinaries: (get('SKIP_CNI_BINARIES') ?? '').split(',').map((x) => x.trim()).filter(Boolean),
    sleep: goBool(problems, 'SLEEP', get('SLEEP') ?? 'true') ?? true,
    cniServiceAccount,
    etcdEndpoints: jsonSafe(problems, 'ETCD_ENDPOINTS', get('ETCD_ENDPOINTS') ?? ''),
    etcdDiscoverySrv: jsonSafe(problems, 'ETCD_DISCOVERY_SRV', get('ETCD_DISCOVERY_SRV') ?? ''),
    hostBinDir: absDir('TORTIE_HOST_CNI_BIN_DIR', '/host/opt/cni/bin'),
    hostNetDir: absDir('TORTIE_HOST_CNI_NET_DIR', '/host/etc/cni/net.d'),
    serviceAccountDir: absDir('TORTIE_SERVICEACCOUNT_DIR', '/var/run/secrets/kubernetes.io/serviceaccount'),
    appDir: absDir('TORTIE_APP_DIR', '/opt/tortie'),
    imageBinDir: absDir('TORTIE_IMAGE_CNI_BIN_DIR', '/opt/cni/bin'),
  };
  const known = ['tortie', 'tortie-ipam', 'portmap', 'bandwidth', 'loopback', 'host-local'];
  for (const b of s.skipBinaries) if (!known.includes(b)) problems.push(`SKIP_CNI_BINARIES=${JSON.stringify(get('SKIP_CNI_BINARIES'))}: ${JSON.stringify(b)} is not one of the image's plugins (${known.join(', ')})`);
  if (problems.length > 0) throw new InstallConfigError(problems);
  return s;
}

/** The kubeconfig path the conflist names (on the host). */
export function kubeconfigPath(s: InstallSettings): string {
  return `${s.cniNetDir === '/' ? '' : s.cniNetDir}/${KUBECONFIG_NAME}`;
}

/** The API server URL for the CNI kubeconfig; undefined when KUBERNETES_SERVICE_HOST/PORT are unset. */
export function serverURL(s: Pick<InstallSettings, 'serviceHost' | 'servicePort' | 'serviceProtocol'>): string | undefined {
  if (!s.serviceHost || !s.servicePort) return undefined;
  const host = s.serviceHost.includes(':') ? `[${s.serviceHost}]` : s.serviceHost;
  return `${s.serviceProtocol}://${host}:${s.servicePort}`;
}

/**
 * Substitutes Calico's placeholders in `template` and checks the result: valid JSON, a network
 * configuration (a conflist with `plugins`, or a single `.conf` with `type`), no placeholder left.
 * `source` names where the template came from (for errors).
 */
export function renderConflist(template: string, s: InstallSettings, token: string, source = 'CNI_NETWORK_CONFIG'): string {
  const values: Record<string, string> = {
    __LOG_LEVEL__: s.logLevel,
    __LOG_FILE_PATH__: s.logFilePath,
    __LOG_FILE_MAX_SIZE__: String(s.logFileMaxSize),
    __LOG_FILE_MAX_AGE__: String(s.logFileMaxAge),
    __LOG_FILE_MAX_COUNT__: String(s.logFileMaxCount),
    __DATASTORE_TYPE__: s.datastoreType,
    __KUBERNETES_NODE_NAME__: s.nodeName,
    __KUBECONFIG_FILEPATH__: kubeconfigPath(s),
    __CNI_MTU__: String(s.mtu),
    __KUBERNETES_SERVICE_HOST__: s.serviceHost ?? '',
    __KUBERNETES_SERVICE_PORT__: s.servicePort ?? '',
    __SERVICEACCOUNT_TOKEN__: token,
    __ETCD_CERT_FILE__: '',
    __ETCD_CA_CERT_FILE__: '',
    __ETCD_KEY_FILE__: '',
    __ETCD_ENDPOINTS__: s.etcdEndpoints,
    __ETCD_DISCOVERY_SRV__: s.etcdDiscoverySrv,
  };
  let text = template;
  for (const [k, v] of Object.entries(values)) text = text.split(k).join(v);
  const left = [...new Set(text.match(/__[A-Z0-9_]+__/g) ?? [])];
  if (left.length > 0) throw new InstallConfigError([`${source}: unknown placeholder(s) ${left.join(', ')} (known: ${Object.keys(values).join(', ')})`]);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new InstallConfigError([`${source}: the rendered network configuration is not valid JSON: ${(e as Error).message}`]);
  }
  const o = doc as Record<string, unknown>;
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new InstallConfigError([`${source}: the network configuration must be a JSON object`]);
  if (typeof o.name !== 'string' || o.name === '') throw new InstallConfigError([`${source}: the network configuration has no "name"`]);
  if (s.confName.endsWith('.conflist')) {
    if (!Array.isArray(o.plugins) || o.plugins.length === 0) throw new InstallConfigError([`${source}: CNI_CONF_NAME=${JSON.stringify(s.confName)} is a .conflist but the configuration has no "plugins" list`]);
    for (const [i, p] of (o.plugins as unknown[]).entries()) {
      if (typeof p !== 'object' || p === null || typeof (p as { type?: unknown }).type !== 'string') throw new InstallConfigError([`${source}: plugins[${i}] has no "type"`]);
    }
  } else if (typeof o.type !== 'string') {
    throw new InstallConfigError([`${source}: CNI_CONF_NAME=${JSON.stringify(s.confName)} is a single-plugin .conf but the configuration has no "type"`]);
  }
  return JSON.stringify(doc, null, 2) + '\n';
}

/** The CNI kubeconfig (Calico's calico-kubeconfig layout, Tortie-named), as YAML. */
export function renderKubeconfig(opts: { server: string; caData?: string; skipTLSVerify?: boolean; token: string }): string {
  if (!opts.token || /\s/.test(opts.token)) throw new InstallConfigError(['service-account token: empty or contains whitespace']);
  const q = (v: string) => JSON.stringify(v);
  const tls = opts.skipTLSVerify || !opts.caData ? '    insecure-skip-tls-verify: true\n' : `    certificate-authority-data: ${q(opts.caData)}\n`;
  return (
    '# Kubeconfig file for the Tortie CNI plugin. Written by tortie-install-cni; the token is refreshed by tortie-node.\n' +
    'apiVersion: v1\n' +
    'kind: Config\n' +
    'clusters:\n' +
    '- name: local\n' +
    '  cluster:\n' +
    `    server: ${q(opts.server)}\n` +
    tls +
    'users:\n' +
    '- name: tortie\n' +
    '  user:\n' +
    `    token: ${q(opts.token)}\n` +
    'contexts:\n' +
    '- name: tortie-context\n' +
    '  context:\n' +
    '    cluster: local\n' +
    '    user: tortie\n' +
    'current-context: tortie-context\n'
  );
}

/** The `exp` claim of a JWT (seconds since the epoch), or undefined when it has none or is not a JWT. */
export function tokenExpiry(token: string): number | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof claims.exp === 'number' ? claims.exp : undefined;
  } catch {
    return undefined;
  }
}

/** The `token:` of a kubeconfig written by renderKubeconfig (undefined when there is none). */
export function kubeconfigToken(text: string): string | undefined {
  const m = /^\s*token:\s*"?([^"\s]+)"?\s*$/m.exec(text);
  return m?.[1];
}

/** Replaces the token in a kubeconfig written by renderKubeconfig, keeping everything else. */
export function withToken(text: string, token: string): string {
  if (kubeconfigToken(text) === undefined) throw new Error('the kubeconfig has no token line');
  return text.replace(/^(\s*token:\s*).*$/m, (_m, p: string) => `${p}${JSON.stringify(token)}`);
}

/**
 * When to refresh a token expiring at `exp` (Calico: after a quarter of the remaining lifetime plus
 * a random jitter of up to as much again), in ms from `now` (ms); at least `minMs`.
 */
export function refreshDelayMs(exp: number, now: number, random: () => number = Math.random, minMs = 5000): number {
  const remaining = exp * 1000 - now;
  const quarter = remaining / 4;
  return Math.max(minMs, Math.floor(quarter + random() * quarter));
}

/** The POST body of a TokenRequest (authentication.k8s.io/v1) for `seconds`. */
export function tokenRequestBody(seconds: number): Record<string, unknown> {
  return { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { expirationSeconds: seconds } };
}

/** API path of the TokenRequest subresource for ServiceAccount `name` in `namespace`. */
export function tokenRequestPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`;
}
