// The network configuration of the `tortie` main plugin: Calico's NetConf fields (reference §1.12)
// plus Tortie's `agent_socket`. Pure: no file is read here (the nodename and MTU files are tortie-node's
// business), and nothing heavier than the skel's errors module is imported, because bin/tortie parses
// this on every invocation before it contacts the agent.
//
// Error codes:
// - 7 (invalid network config) when the structure is wrong: a section that must be an object is not
//   one, or `ipam` / `ipam.type` is missing;
// - 2 (unsupported field) for a field whose value is of the wrong type or out of range; the message
//   names the field (dotted path) and the value.
// Unknown keys are allowed at every level: runtimes add their own (runtimeConfig, prevResult, args,
// capabilities, cni.dev/*), and Calico conflists carry fields that only Calico reads.
//
// Decisions that differ from Calico:
// - An unknown `log_level` is refused (Calico silently falls back to info). Accepted: logrus' names,
//   case-insensitive: trace, debug, info, warn/warning, error, fatal, panic; "" means info.
// - `log_file_path` must be absolute (a runtime's working directory is not predictable).
// - `mtu` must be 0 (auto) or 68..65535; a JSON string is refused as Calico's Go decoder refuses it.
// - `nodename` must be a lower-case DNS subdomain, so an unrendered manifest placeholder such as
//   "__KUBERNETES_NODE_NAME__" fails here with a clear message instead of later.
// - `feature_control.floating_ips` set to true is refused: the pod annotation it enables is not
//   implemented.
// - Any other `ipam.type` than tortie-ipam / calico-ipam is delegated: tortie-node executes that
//   plugin from CNI_PATH (cni-plugin/pkg/plugin/delegate.ts), as Calico delegates to host-local.

import { type LogLevel, parseLogLevel as parseLevel } from '../../../libcalico-go/lib/logutils/index.js';
import { DEFAULT_AGENT_SOCKET } from '../agentapi/protocol.js';
import { CniError, ErrCode } from '../skel/errors.js';

export type { LogLevel };

export { DEFAULT_AGENT_SOCKET };
export const DEFAULT_NODENAME_FILE = '/var/lib/tortie/nodename';
/** IPAM types tortie-node serves in-process; any other type is delegated to a plugin on CNI_PATH. */
export const IN_PROCESS_IPAM_TYPES: readonly string[] = ['tortie-ipam', 'calico-ipam'];
export const DATASTORE_TYPES: readonly string[] = ['kubernetes', 'etcdv3', 'embedded'];
/** sun_path is 108 bytes including the terminating NUL. */
export const MAX_SOCKET_PATH_BYTES = 107;
export const MIN_MTU = 68;
export const MAX_MTU = 65535;
export const MAX_QUEUES = 1024;


export interface DatastoreSettings {
  /** `datastore_type`, when given. */
  datastoreType?: string;
  datastorePath?: string;
  /** `etcd_endpoints` split on ",", trimmed. */
  etcdEndpoints?: string[];
  etcdDiscoverySrv?: string;
  etcdScheme?: string;
  etcdKeyFile?: string;
  etcdCertFile?: string;
  etcdCaCertFile?: string;
}

export interface IpamSection {
  type: string;
  /** True for tortie-ipam / calico-ipam, which tortie-node runs in-process. */
  inProcess: boolean;
  /** The whole `ipam` object as given. */
  raw: Record<string, unknown>;
}

export interface PolicySection {
  /** "k8s" or "" (no Kubernetes policy: a profile named after the network). */
  type: '' | 'k8s';
  k8sApiRoot?: string;
  k8sAuthToken?: string;
  k8sClientCertificate?: string;
  k8sClientKey?: string;
  k8sCertificateAuthority?: string;
}

export interface KubernetesSection {
  kubeconfig?: string;
  k8sApiRoot?: string;
  nodeName?: string;
}

export interface TortieNetConf {
  name: string;
  type: string;
  /** 0 = automatic: tortie-node uses its MTU file. */
  mtu: number;
  /** Calico's require_mtu_file: fail ADD when mtu is 0 and the MTU file is missing. */
  requireMtuFile: boolean;
  /** Transmit/receive queues of the pod's veth (default 1). */
  numQueues: number;
  logLevel: LogLevel;
  logFilePath?: string;
  logFileMaxSize?: number;
  logFileMaxAge?: number;
  logFileMaxCount?: number;
  nodename?: string;
  nodenameFile: string;
  nodenameFileOptional: boolean;
  datastore: DatastoreSettings;
  ipam: IpamSection;
  policy: PolicySection;
  kubernetes: KubernetesSection;
  featureControl: { ipAddrsNoIpam: boolean; floatingIps: boolean };
  containerSettings: { allowIpForwarding: boolean };
  /** The unix socket of tortie-node. */
  agentSocket: string;
  /** The configuration as given. */
  raw: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

const show = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 120 ? `${s.slice(0, 117)}...` : s;
};

function unsupported(field: string, value: unknown, why: string): CniError {
  return new CniError(ErrCode.UnsupportedField, `invalid ${field} ${show(value)} in network configuration: ${why}`);
}

function invalid(msg: string): CniError {
  return new CniError(ErrCode.InvalidNetworkConfig, `invalid network configuration: ${msg}`);
}

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const absent = (v: unknown): boolean => v === undefined || v === null;

/** A section that must be an object when present (code 7 otherwise); {} when absent. */
function section(o: Obj, key: string, path: string): Obj {
  const v = o[key];
  if (absent(v)) return {};
  if (!isObj(v)) throw invalid(`${path} must be an object, got ${show(v)}`);
  return v;
}

function optString(o: Obj, key: string, path: string): string | undefined {
  const v = o[key];
  if (absent(v)) return undefined;
  if (typeof v !== 'string') throw unsupported(path, v, 'must be a string');
  return v;
}

/** A non-empty string, or undefined when absent or "". */
function optNonEmpty(o: Obj, key: string, path: string): string | undefined {
  const v = optString(o, key, path);
  return v === '' ? undefined : v;
}

function optBool(o: Obj, key: string, path: string, dflt = false): boolean {
  const v = o[key];
  if (absent(v)) return dflt;
  if (typeof v !== 'boolean') throw unsupported(path, v, 'must be true or false');
  return v;
}

function optInt(o: Obj, key: string, path: string, min: number, max: number): number | undefined {
  const v = o[key];
  if (absent(v)) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw unsupported(path, v, 'must be an integer');
  if (v < min || v > max) throw unsupported(path, v, `must be between ${min} and ${max}`);
  return v;
}

function absPath(o: Obj, key: string, path: string): string | undefined {
  const v = optNonEmpty(o, key, path);
  if (v === undefined) return undefined;
  if (!v.startsWith('/')) throw unsupported(path, v, 'must be an absolute path');
  if (v.includes('\0')) throw unsupported(path, v, 'must not contain a NUL character');
  return v;
}

/** Parses `log_level` (any case, "warn" = warning, "" = info); null when unknown. */
export function parseLogLevel(s: string): LogLevel | null {
  return s.trim() === '' ? 'INFO' : (parseLevel(s) ?? null);
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function parseMtu(raw: Obj): number {
  const v = raw.mtu;
  if (absent(v)) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw unsupported('mtu', v, 'must be an integer (0 = use the MTU tortie-node detects)');
  if (v === 0) return 0;
  if (v < 0) throw unsupported('mtu', v, 'must not be negative (0 = use the MTU tortie-node detects)');
  if (v < MIN_MTU || v > MAX_MTU) throw unsupported('mtu', v, `must be 0 (auto) or between ${MIN_MTU} and ${MAX_MTU}`);
  return v;
}

function parseDatastore(raw: Obj): DatastoreSettings {
  const d: DatastoreSettings = {};
  const type = optNonEmpty(raw, 'datastore_type', 'datastore_type');
  if (type !== undefined) {
    if (!DATASTORE_TYPES.includes(type)) throw unsupported('datastore_type', type, `must be one of ${DATASTORE_TYPES.join(', ')}`);
    d.datastoreType = type;
  }
  const path = absPath(raw, 'datastore_path', 'datastore_path');
  if (path !== undefined) d.datastorePath = path;
  const endpoints = optNonEmpty(raw, 'etcd_endpoints', 'etcd_endpoints');
  if (endpoints !== undefined) {
    const list = endpoints.split(',').map((s) => s.trim()).filter((s) => s !== '');
    for (const e of list) {
      let u: URL | null = null;
      try {
        u = new URL(e);
      } catch {
        u = null;
      }
      if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.host === '') {
        throw unsupported('etcd_endpoints', endpoints, `${show(e)} is not an http:// or https:// URL`);
      }
    }
    if (list.length > 0) d.etcdEndpoints = list;
  }
  const srv = optNonEmpty(raw, 'etcd_discovery_srv', 'etcd_discovery_srv');
  if (srv !== undefined) d.etcdDiscoverySrv = srv;
  const scheme = optNonEmpty(raw, 'etcd_scheme', 'etcd_scheme');
  if (scheme !== undefined) {
    if (scheme !== 'http' && scheme !== 'https') throw unsupported('etcd_scheme', scheme, 'must be "http" or "https"');
    d.etcdScheme = scheme;
  }
  const key = absPath(raw, 'etcd_key_file', 'etcd_key_file');
  if (key !== undefined) d.etcdKeyFile = key;
  const cert = absPath(raw, 'etcd_cert_file', 'etcd_cert_file');
  if (cert !== undefined) d.etcdCertFile = cert;
  const ca = absPath(raw, 'etcd_ca_cert_file', 'etcd_ca_cert_file');
  if (ca !== undefined) d.etcdCaCertFile = ca;
  if ((d.etcdKeyFile === undefined) !== (d.etcdCertFile === undefined)) {
    throw unsupported(
      d.etcdKeyFile === undefined ? 'etcd_cert_file' : 'etcd_key_file',
      d.etcdKeyFile ?? d.etcdCertFile,
      'etcd_key_file and etcd_cert_file must be given together',
    );
  }
  return d;
}

function parseIpam(raw: Obj): IpamSection {
  const v = raw.ipam;
  if (absent(v)) throw invalid('"ipam" is missing (e.g. "ipam": {"type": "tortie-ipam"})');
  if (!isObj(v)) throw invalid(`ipam must be an object, got ${show(v)}`);
  const type = v.type;
  if (absent(type) || type === '') throw invalid('ipam.type is missing (e.g. "tortie-ipam" or "calico-ipam")');
  if (typeof type !== 'string') throw unsupported('ipam.type', type, 'must be a string naming an IPAM plugin');
  if (type.includes('/') || type === '.' || type === '..' || type.includes('\0')) {
    throw unsupported('ipam.type', type, 'must be a plugin name, not a path');
  }
  return { type, inProcess: IN_PROCESS_IPAM_TYPES.includes(type), raw: v };
}

function parsePolicy(raw: Obj): PolicySection {
  const o = section(raw, 'policy', 'policy');
  const type = optString(o, 'type', 'policy.type') ?? '';
  if (type !== '' && type !== 'k8s') throw unsupported('policy.type', type, 'must be "k8s" or empty');
  const p: PolicySection = { type };
  const fields: Array<[string, keyof Omit<PolicySection, 'type'>]> = [
    ['k8s_api_root', 'k8sApiRoot'],
    ['k8s_auth_token', 'k8sAuthToken'],
    ['k8s_client_certificate', 'k8sClientCertificate'],
    ['k8s_client_key', 'k8sClientKey'],
    ['k8s_certificate_authority', 'k8sCertificateAuthority'],
  ];
  for (const [json, key] of fields) {
    const s = optNonEmpty(o, json, `policy.${json}`);
    if (s !== undefined) p[key] = s;
  }
  return p;
}

function parseKubernetes(raw: Obj): KubernetesSection {
  const o = section(raw, 'kubernetes', 'kubernetes');
  const k: KubernetesSection = {};
  const kubeconfig = absPath(o, 'kubeconfig', 'kubernetes.kubeconfig');
  if (kubeconfig !== undefined) k.kubeconfig = kubeconfig;
  const root = optNonEmpty(o, 'k8s_api_root', 'kubernetes.k8s_api_root');
  if (root !== undefined) k.k8sApiRoot = root;
  const node = optNonEmpty(o, 'node_name', 'kubernetes.node_name');
  if (node !== undefined) k.nodeName = node;
  return k;
}

function parseAgentSocket(raw: Obj): string {
  const v = absPath(raw, 'agent_socket', 'agent_socket');
  if (v === undefined) return DEFAULT_AGENT_SOCKET;
  const bytes = Buffer.byteLength(v, 'utf8');
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw unsupported('agent_socket', v, `is ${bytes} bytes, a unix socket path may have at most ${MAX_SOCKET_PATH_BYTES}`);
  }
  return v;
}

/**
 * Validates the main plugin's network configuration (the parsed stdin object; `name`, `cniVersion`
 * are checked by the skel). Throws CniError code 2 or 7 as described at the top of this file.
 */
export function parseNetConf(raw: Record<string, unknown>): TortieNetConf {
  const name = typeof raw.name === 'string' ? raw.name : '';
  const type = optString(raw, 'type', 'type') ?? '';

  const rawLevel = optString(raw, 'log_level', 'log_level') ?? '';
  const logLevel = parseLogLevel(rawLevel);
  if (logLevel === null) {
    throw unsupported('log_level', rawLevel, 'must be one of trace, debug, info, warning, error (any case)');
  }

  const nodename = optNonEmpty(raw, 'nodename', 'nodename');
  if (nodename !== undefined && (nodename.length > 253 || !DNS_SUBDOMAIN.test(nodename))) {
    throw unsupported('nodename', nodename, 'must be a lower-case DNS name (the Kubernetes node name)');
  }

  const conf: TortieNetConf = {
    name,
    type,
    mtu: parseMtu(raw),
    requireMtuFile: optBool(raw, 'require_mtu_file', 'require_mtu_file'),
    numQueues: optInt(raw, 'num_queues', 'num_queues', 0, MAX_QUEUES) || 1,
    logLevel,
    nodenameFile: absPath(raw, 'nodename_file', 'nodename_file') ?? DEFAULT_NODENAME_FILE,
    nodenameFileOptional: optBool(raw, 'nodename_file_optional', 'nodename_file_optional'),
    datastore: parseDatastore(raw),
    ipam: parseIpam(raw),
    policy: parsePolicy(raw),
    kubernetes: parseKubernetes(raw),
    featureControl: { ipAddrsNoIpam: false, floatingIps: false },
    containerSettings: { allowIpForwarding: false },
    agentSocket: parseAgentSocket(raw),
    raw,
  };
  if (nodename !== undefined) conf.nodename = nodename;

  const logFile = absPath(raw, 'log_file_path', 'log_file_path');
  if (logFile !== undefined) conf.logFilePath = logFile;
  const maxSize = optInt(raw, 'log_file_max_size', 'log_file_max_size', 0, Number.MAX_SAFE_INTEGER);
  if (maxSize !== undefined) conf.logFileMaxSize = maxSize;
  const maxAge = optInt(raw, 'log_file_max_age', 'log_file_max_age', 0, Number.MAX_SAFE_INTEGER);
  if (maxAge !== undefined) conf.logFileMaxAge = maxAge;
  const maxCount = optInt(raw, 'log_file_max_count', 'log_file_max_count', 0, Number.MAX_SAFE_INTEGER);
  if (maxCount !== undefined) conf.logFileMaxCount = maxCount;

  const fc = section(raw, 'feature_control', 'feature_control');
  conf.featureControl = {
    ipAddrsNoIpam: optBool(fc, 'ip_addrs_no_ipam', 'feature_control.ip_addrs_no_ipam'),
    floatingIps: optBool(fc, 'floating_ips', 'feature_control.floating_ips'),
  };
  // ip_addrs_no_ipam lets a pod's cni.projectcalico.org/ipAddrsNoIpam annotation take effect (the
  // Kubernetes datastore; plugin/annotations.ts). floating_ips switches on an annotation Tortie does
  // not read: refused rather than accepted and ignored.
  if (conf.featureControl.floatingIps) {
    throw unsupported('feature_control.floating_ips', true, 'is not supported by Tortie (floating IPs / IP NAT are not implemented); remove it or set it to false');
  }
  const cs = section(raw, 'container_settings', 'container_settings');
  conf.containerSettings = {
    allowIpForwarding: optBool(cs, 'allow_ip_forwarding', 'container_settings.allow_ip_forwarding'),
  };
  return conf;
}
