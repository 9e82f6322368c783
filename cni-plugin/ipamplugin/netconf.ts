// The parts of a Calico-style network configuration that the IPAM plugin reads: datastore
// settings at the top level (as Calico's conflist has them) and the `ipam` object.
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CniError, ErrCode } from '../pkg/skel/errors.js';
import {
  ConfigError,
  type DatastoreConfig,
  resolveDatastoreConfig,
  settingsFromEnv,
} from '../../libcalico-go/lib/config/datastore-config.js';
import { parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';

export const DEFAULT_NODENAME_FILE = '/var/lib/tortie/nodename';

/** What the `ipam` object asks for: families, pools, extra result routes. */
export interface IPAMOptions {
  assignIPv4: boolean;
  assignIPv6: boolean;
  ipv4Pools: string[];
  ipv6Pools: string[];
  /** Routes handed back in the result (host-local style), for main plugins such as ptp. */
  routes: { dst: string; gw?: string }[];
}

export interface IPAMNetConf extends IPAMOptions {
  name: string;
  datastore: DatastoreConfig;
  nodename?: string;
  nodenameFile: string;
  nodenameFileOptional: boolean;
}

const bad = (field: string, value: unknown, why: string) =>
  new CniError(ErrCode.UnsupportedField, `invalid ${field} ${JSON.stringify(value)}: ${why}`);

function optString(conf: Record<string, unknown>, field: string, prefix = ''): string | undefined {
  const v = conf[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw bad(prefix + field, v, 'must be a string');
  return v;
}

/** Calico writes these as strings ("true"/"false"); booleans are accepted too. */
function flag(ipam: Record<string, unknown>, field: string, dflt: boolean): boolean {
  const v = ipam[field];
  if (v === undefined || v === null || v === '') return dflt;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw bad(`ipam.${field}`, v, 'must be "true" or "false"');
}

function poolList(ipam: Record<string, unknown>, field: string, version: 4 | 6): string[] {
  const v = ipam[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(`ipam.${field}`, v, 'must be a list of pool names or CIDRs');
  return v.map((p, i) => {
    if (typeof p !== 'string' || p === '') throw bad(`ipam.${field}[${i}]`, p, 'must be a pool name or CIDR');
    if (p.includes('/')) {
      const c = parseCIDR(p);
      if (!c) throw bad(`ipam.${field}[${i}]`, p, 'is not a valid CIDR');
      if (c.version !== version) throw bad(`ipam.${field}[${i}]`, p, `is not an IPv${version} CIDR`);
    }
    return p;
  });
}

function routeList(ipam: Record<string, unknown>): { dst: string; gw?: string }[] {
  const v = ipam.routes;
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad('ipam.routes', v, 'must be a list of {"dst": CIDR, "gw": IP}');
  return v.map((r, i) => {
    const o = (r ?? {}) as Record<string, unknown>;
    if (typeof o.dst !== 'string' || !parseCIDR(o.dst)) throw bad(`ipam.routes[${i}].dst`, o.dst, 'is not a valid CIDR');
    if (o.gw !== undefined && (typeof o.gw !== 'string' || !parseIP(o.gw))) {
      throw bad(`ipam.routes[${i}].gw`, o.gw, 'is not a valid IP address');
    }
    return o.gw === undefined ? { dst: o.dst } : { dst: o.dst, gw: o.gw as string };
  });
}

/** Parses the `ipam` object of a network configuration (shared by tortie-ipam and tortie-node). */
export function parseIPAMOptions(ipam: unknown): IPAMOptions {
  if (ipam !== undefined && (typeof ipam !== 'object' || ipam === null || Array.isArray(ipam))) {
    throw bad('ipam', ipam, 'must be an object');
  }
  const ip = (ipam ?? {}) as Record<string, unknown>;
  const assignIPv4 = flag(ip, 'assign_ipv4', true);
  const assignIPv6 = flag(ip, 'assign_ipv6', false);
  if (!assignIPv4 && !assignIPv6) {
    throw new CniError(ErrCode.InvalidNetworkConfig, 'ipam.assign_ipv4 and ipam.assign_ipv6 are both false: nothing to assign');
  }
  return {
    assignIPv4,
    assignIPv6,
    ipv4Pools: poolList(ip, 'ipv4_pools', 4),
    ipv6Pools: poolList(ip, 'ipv6_pools', 6),
    routes: routeList(ip),
  };
}

/**
 * Parses the configuration. Datastore settings in the configuration override the environment
 * (as Calico maps etcd_endpoints to ETCD_ENDPOINTS and so on).
 */
export function parseIPAMNetConf(raw: Record<string, unknown>, env: Record<string, string | undefined>): IPAMNetConf {
  const options = parseIPAMOptions(raw.ipam);
  const fromEnv = settingsFromEnv(env);
  // Calico's conflist `kubernetes` section: kubeconfig (→ KUBECONFIG), k8s_api_root (→ K8S_API_ENDPOINT).
  const k8s = raw.kubernetes;
  if (k8s !== undefined && k8s !== null && (typeof k8s !== 'object' || Array.isArray(k8s))) throw bad('kubernetes', k8s, 'must be an object');
  const k8sSection = (k8s ?? {}) as Record<string, unknown>;
  let datastore: DatastoreConfig;
  try {
    datastore = resolveDatastoreConfig({
      ...fromEnv,
      kubeconfig: optString(k8sSection, 'kubeconfig', 'kubernetes.') || fromEnv.kubeconfig,
      k8sAPIEndpoint: optString(k8sSection, 'k8s_api_root', 'kubernetes.') || fromEnv.k8sAPIEndpoint,
      datastoreType: optString(raw, 'datastore_type') ?? fromEnv.datastoreType,
      datastorePath: optString(raw, 'datastore_path') ?? fromEnv.datastorePath,
      etcdEndpoints: optString(raw, 'etcd_endpoints') ?? fromEnv.etcdEndpoints,
      etcdCACertFile: optString(raw, 'etcd_ca_cert_file') ?? fromEnv.etcdCACertFile,
      etcdCertFile: optString(raw, 'etcd_cert_file') ?? fromEnv.etcdCertFile,
      etcdKeyFile: optString(raw, 'etcd_key_file') ?? fromEnv.etcdKeyFile,
    });
  } catch (e) {
    if (e instanceof ConfigError) throw new CniError(ErrCode.UnsupportedField, e.message);
    throw e;
  }
  const nodename = optString(raw, 'nodename');
  if (nodename !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(nodename)) {
    throw bad('nodename', nodename, 'must be a lower-case DNS name');
  }
  const optional = raw.nodename_file_optional;
  if (optional !== undefined && typeof optional !== 'boolean') throw bad('nodename_file_optional', optional, 'must be a boolean');
  return {
    ...options,
    name: String(raw.name),
    datastore,
    nodename,
    nodenameFile: optString(raw, 'nodename_file') ?? DEFAULT_NODENAME_FILE,
    nodenameFileOptional: optional === true,
  };
}

/** Calico's order: `nodename`, then the nodename file, then (only if allowed) the host name. */
export function determineNodename(conf: IPAMNetConf): string {
  if (conf.nodename) return conf.nodename;
  try {
    const n = readFileSync(conf.nodenameFile, 'utf8').trim();
    if (n) return n;
  } catch (e) {
    if (!conf.nodenameFileOptional) {
      throw new CniError(
        ErrCode.InvalidNetworkConfig,
        `cannot read nodename file ${conf.nodenameFile} (${(e as NodeJS.ErrnoException).code ?? e}): ` +
          'set "nodename" in the network configuration, or check that tortie-node is running and has written it',
      );
    }
  }
  return hostname().toLowerCase();
}
