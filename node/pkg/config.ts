// The node agent's environment, read as calico-node reads its own (pure: no I/O apart from the
// optional hostname fallback, which callers may replace).
//
// Every refused value is reported as `VARIABLE=value: reason`; all problems are collected and
// thrown together as one AgentConfigError.
//
// Decisions:
// * Empty variables count as unset (calico-node reads them with os.Getenv == "").
// * NODENAME is taken as given; without it the OS hostname, trimmed and lower-cased. The
//   deprecated HOSTNAME variable is not read (shells and pods export it with unrelated values).
// * IP unset keeps an address already stored on the Node and autodetects only when there is
//   none; `autodetect` always re-detects; `none` leaves the Node's IPv4 address alone (calico-node
//   semantics). A bare address without `/prefix` takes the prefix of the matching local interface
//   at startup, else /32.
// * CALICO_IPV4POOL_IPIP / _VXLAN: unset means Never, exactly as calico-node's code reads them
//   (Calico's manifest sets IPIP=Always explicitly). `Off` is Never. Both enabled is refused.
// * Booleans: CALICO_* and NO_DEFAULT_POOLS use Go's strconv.ParseBool spellings; FELIX_* use
//   Felix's (true/false, 1/0, yes/no, y/n, t/f, any case).
// * FELIX_<NAME> is matched case-insensitively against Felix's parameter names (the v1 names of
//   the FelixConfiguration fields); typed ones are checked, unknown ones are ignored with a
//   warning as Felix does. A known one is then in force, refused (it asks for what Tortie lacks
//   and must not pretend to give: FELIX_WIREGUARDENABLED=true, FELIX_BPFENABLED=true, …), or
//   accepted with one warning saying Tortie does not support it (felix-support.ts decides).
// * FELIX_IPV6SUPPORT (default true, as Felix): false keeps the agent from writing any IPv6
//   sysctl and refuses pods that would get an IPv6 address.
// * TORTIE_BGP_SECRETS_DIR: where BGP passwords (BGPPeer password.secretKeyRef, BGPConfiguration
//   nodeMeshPassword.secretKeyRef) are read, as `<dir>/<secret name>/<key>` (a mounted
//   Kubernetes Secret per directory). Unset: such passwords cannot be resolved.
import { hostname as osHostname } from 'node:os';
import { isAbsolute, join } from 'node:path';
import {
  DEFAULT_DATASTORE_PATH,
  ConfigError,
  type DatastoreConfig,
  resolveDatastoreConfig,
  settingsFromEnv,
} from '../../libcalico-go/lib/config/datastore-config.js';
import { FELIX_FIELDS, type FelixFieldType } from '../../libcalico-go/lib/apis/v3/validate/felix-fields.js';
import { felixSupport, unsupportedText } from '../../libcalico-go/lib/apis/v3/validate/felix-support.js';
import { type EncapMode, normalizeEncapMode } from '../../libcalico-go/lib/apis/v3/validate/ippool.js';
import { isDNSSubdomain } from '../../libcalico-go/lib/apis/v3/validate/common.js';
import { cidrOverlaps, formatCIDR, hasHostBits, parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';
import { selectorError } from '../../libcalico-go/lib/selector/index.js';
import { type LogLevel, parseLogLevel } from '../../libcalico-go/lib/logutils/index.js';

export type Env = Record<string, string | undefined>;

export class AgentConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(
      problems.length === 1
        ? `invalid node agent configuration: ${problems[0]}`
        : `invalid node agent configuration (${problems.length} problems): ${problems.join('; ')}`,
    );
    this.name = 'AgentConfigError';
  }
}

/** How this node's IPv4 address is chosen. */
export type IPSetting =
  /** IP unset: keep the Node's stored address, autodetect when there is none. */
  | { mode: 'default' }
  | { mode: 'autodetect' }
  | { mode: 'none' }
  /** An explicit address; prefix undefined when given bare. */
  | { mode: 'address'; address: string; prefix?: number };

export type AutodetectMethod =
  | { kind: 'first-found' }
  | { kind: 'can-reach'; dest: string }
  /** Interface names matching any of the regular expressions (unanchored, as Go's MatchString). */
  | { kind: 'interface'; patterns: string[] }
  /** first-found, also skipping interfaces matching any of these. */
  | { kind: 'skip-interface'; patterns: string[] }
  | { kind: 'cidr'; cidrs: string[] }
  /** The k8s Node's InternalIP (status.addresses); kubernetes datastore only. */
  | { kind: 'kubernetes-internal-ip' };

/** The CALICO_IPV4POOL_* variables the default pool is seeded from (and drift is checked for). */
export const POOL_ENV_VARS = [
  'CALICO_IPV4POOL_CIDR',
  'CALICO_IPV4POOL_BLOCK_SIZE',
  'CALICO_IPV4POOL_IPIP',
  'CALICO_IPV4POOL_VXLAN',
  'CALICO_IPV4POOL_NAT_OUTGOING',
  'CALICO_IPV4POOL_NODE_SELECTOR',
  'CALICO_IPV4POOL_DISABLE_BGP_EXPORT',
] as const;
export type PoolEnvVar = (typeof POOL_ENV_VARS)[number];

export interface DefaultPoolSettings {
  cidr: string;
  blockSize: number;
  ipipMode: EncapMode;
  vxlanMode: EncapMode;
  natOutgoing: boolean;
  /** Empty means all(). */
  nodeSelector: string;
  disableBGPExport: boolean;
  /** The variables that were set, with their text as given (drift is only reported for these). */
  fromEnv: Partial<Record<PoolEnvVar, string>>;
}

export interface FelixSettings {
  healthEnabled: boolean;
  healthHost: string;
  healthPort: number;
  prometheusMetricsEnabled: boolean;
  /** "" = all interfaces. */
  prometheusMetricsHost: string;
  prometheusMetricsPort: number;
  logSeverityScreen: LogLevel;
  /** Regular expression source of the interfaces whose MTU counts (MTUIfacePattern). */
  mtuIfacePattern: string;
  /** 0 = auto. */
  ipipMTU: number;
  vxlanMTU: number;
  /** Explicit IpInIpEnabled / VXLANEnabled; undefined = follow the IP pools. */
  ipipEnabled?: boolean;
  vxlanEnabled?: boolean;
  /** FELIX_IPV6SUPPORT (default true): false = no IPv6 sysctls, no pods with IPv6 addresses. */
  ipv6Support: boolean;
  /** Every recognised FELIX_* setting, keyed by FelixConfiguration field (or Felix-only name). */
  params: Record<string, string | number | boolean>;
}

export interface AgentConfig {
  nodeName: string;
  nodeNameSource: 'NODENAME' | 'hostname';
  datastore: DatastoreConfig;
  ip: IPSetting;
  autodetection: AutodetectMethod;
  /** AS number for spec.bgp.asNumber; undefined = use the global one. */
  asNumber?: number;
  defaultPool: DefaultPoolSettings;
  noDefaultPools: boolean;
  /** CLUSTER_TYPE tokens, in order, without duplicates; [] when unset. */
  clusterType: string[];
  felix: FelixSettings;
  runDir: string;
  stateDir: string;
  /** `$TORTIE_RUN_DIR/cni.sock` */
  cniSocket: string;
  /** `$TORTIE_STATE_DIR/nodename` */
  nodenameFile: string;
  /** `$TORTIE_STATE_DIR/mtu` */
  mtuFile: string;
  /** TORTIE_BGP_SECRETS_DIR: BGP passwords as `<dir>/<secret>/<key>`; undefined when unset. */
  bgpSecretsDir?: string;
  /** Accepted with a remark (e.g. unknown FELIX_* variables, a CIDR with host bits). */
  warnings: string[];
}

export const DEFAULTS = {
  runDir: '/var/run/tortie',
  stateDir: '/var/lib/tortie',
  poolCIDR: '192.168.0.0/16',
  blockSize: 26,
  healthHost: 'localhost',
  healthPort: 9099,
  metricsPort: 9091,
  /** Felix's MTUIfacePattern default. */
  mtuIfacePattern: '^((en|wl|ww|sl|ib)[Pcopsvx].*|(eth|wlan|wwan).*)',
} as const;

export const DEFAULT_POOL_NAME = 'default-ipv4-ippool';

const show = (v: string) => JSON.stringify(v);

// ---------------------------------------------------------------------------------------------
// Small parsers. Each returns undefined after recording a problem.

class Problems {
  readonly list: string[] = [];
  add(name: string, value: string, reason: string): undefined {
    this.list.push(`${name}=${show(value)}: ${reason}`);
    return undefined;
  }
}

/** Go's strconv.ParseBool. */
function goBool(p: Problems, name: string, v: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  return p.add(name, v, 'is not a boolean (use true or false)');
}

/** Felix's BoolParam spellings. */
function felixBool(p: Problems, name: string, v: string): boolean | undefined {
  const l = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'y', 't'].includes(l)) return true;
  if (['false', '0', 'no', 'n', 'f'].includes(l)) return false;
  return p.add(name, v, 'is not a boolean (use true or false)');
}

function int(p: Problems, name: string, v: string, min: number, max: number, what = 'an integer'): number | undefined {
  const t = v.trim();
  if (!/^[+-]?\d+$/.test(t)) return p.add(name, v, `is not ${what}`);
  const n = Number(t);
  if (!Number.isSafeInteger(n) || n < min || n > max) return p.add(name, v, `is out of range (${min}–${max})`);
  return n;
}

function port(p: Problems, name: string, v: string): number | undefined {
  return int(p, name, v, 0, 65535, 'a port number');
}

function host(p: Problems, name: string, v: string): string | undefined {
  const t = v.trim();
  if (/^[A-Za-z0-9._:-]+$/.test(t) || /^\[[0-9A-Fa-f:.]+\]$/.test(t)) return t.replace(/^\[(.*)\]$/, '$1');
  return p.add(name, v, 'is not a host name or IP address');
}

function absDir(p: Problems, name: string, v: string): string | undefined {
  if (!isAbsolute(v)) return p.add(name, v, 'must be an absolute path');
  if (v.includes('\0')) return p.add(name, v, 'contains a NUL byte');
  return v.length > 1 ? v.replace(/\/+$/, '') : v;
}

/** AS number: 1–4294967295 or dotted `a.b` (16 bits each), as Calico's numorstring accepts. */
export function parseASNumber(v: string): number | undefined {
  const t = v.trim();
  if (/^\d+$/.test(t)) {
    const n = Number(t);
    return n >= 1 && n <= 4294967295 ? n : undefined;
  }
  const m = /^(\d+)\.(\d+)$/.exec(t);
  if (m && Number(m[1]) <= 65535 && Number(m[2]) <= 65535) {
    const n = Number(m[1]) * 65536 + Number(m[2]);
    return n >= 1 ? n : undefined;
  }
  return undefined;
}

function regexList(p: Problems, name: string, whole: string, list: string): string[] | undefined {
  const parts = list.split(/\s*,\s*/);
  const out: string[] = [];
  for (const r of parts) {
    if (r === '') return p.add(name, whole, 'has an empty regular expression in its list');
    try {
      new RegExp(r);
    } catch (e) {
      return p.add(name, whole, `${show(r)} is not a valid regular expression (${(e as Error).message})`);
    }
    out.push(r);
  }
  return out;
}

/** Parses IP_AUTODETECTION_METHOD's value. */
function readAutodetectMethod(p: Problems, name: string, v: string | undefined): AutodetectMethod | undefined {
  const t = (v ?? '').trim();
  if (t === '' || t === 'first-found') return { kind: 'first-found' };
  const prefixed = (prefix: string) => (t.startsWith(prefix) ? t.slice(prefix.length) : undefined);
  let rest: string | undefined;
  if ((rest = prefixed('can-reach=')) !== undefined) {
    const dest = rest.trim();
    if (dest === '') return p.add(name, t, 'can-reach= needs a destination address or host name');
    const ip = parseIP(dest);
    if (ip && ip.version !== 4) return p.add(name, t, `${show(dest)} is not an IPv4 address (IPv4 autodetection)`);
    if (!ip && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(dest)) {
      return p.add(name, t, `${show(dest)} is neither an IPv4 address nor a host name`);
    }
    return { kind: 'can-reach', dest };
  }
  if ((rest = prefixed('interface=')) !== undefined) {
    const patterns = regexList(p, name, t, rest);
    return patterns && { kind: 'interface', patterns };
  }
  if ((rest = prefixed('skip-interface=')) !== undefined) {
    const patterns = regexList(p, name, t, rest);
    return patterns && { kind: 'skip-interface', patterns };
  }
  if ((rest = prefixed('cidr=')) !== undefined) {
    const cidrs: string[] = [];
    for (const c of rest.split(/\s*,\s*/)) {
      const parsed = parseCIDR(c);
      if (!parsed) return p.add(name, t, `${show(c)} is not a CIDR`);
      if (parsed.version !== 4) return p.add(name, t, `${show(c)} is not an IPv4 CIDR (IPv4 autodetection)`);
      cidrs.push(formatCIDR(parsed));
    }
    return { kind: 'cidr', cidrs };
  }
  if (t === 'kubernetes-internal-ip') return { kind: 'kubernetes-internal-ip' };
  return p.add(
    name,
    t,
    'is not a valid method (first-found, can-reach=DEST, interface=REGEX, skip-interface=REGEX, cidr=CIDR[,CIDR])',
  );
}

/** Parses an IP_AUTODETECTION_METHOD value alone; throws AgentConfigError when it is bad. */
export function parseAutodetectionMethod(v: string | undefined): AutodetectMethod {
  const p = new Problems();
  const m = readAutodetectMethod(p, 'IP_AUTODETECTION_METHOD', v);
  if (!m) throw new AgentConfigError(p.list);
  return m;
}

function parseIPSetting(p: Problems, v: string | undefined): IPSetting | undefined {
  const t = (v ?? '').trim();
  if (t === '') return { mode: 'default' };
  if (t === 'autodetect') return { mode: 'autodetect' };
  if (t === 'none') return { mode: 'none' };
  const slash = t.indexOf('/');
  const addrText = slash < 0 ? t : t.slice(0, slash);
  const ip = parseIP(addrText);
  if (!ip) return p.add('IP', t, 'is not an IPv4 address (expected address/prefix, "autodetect" or "none")');
  if (ip.version !== 4) return p.add('IP', t, 'is an IPv6 address; IP takes the IPv4 address');
  if (slash < 0) return { mode: 'address', address: addrText };
  const pre = t.slice(slash + 1);
  if (!/^\d{1,2}$/.test(pre) || Number(pre) > 32) return p.add('IP', t, `has an invalid prefix length ${show(pre)} (0–32)`);
  return { mode: 'address', address: addrText, prefix: Number(pre) };
}

function encap(p: Problems, name: string, v: string): EncapMode | undefined {
  // calico-node's own spellings (any case): "", off, never, always, crosssubnet, cross-subnet.
  const l = v.trim().toLowerCase();
  if (!['', 'off', 'never', 'always', 'crosssubnet', 'cross-subnet'].includes(l)) {
    return p.add(name, v, 'is not a valid mode (Always, CrossSubnet or Never; "Off" means Never)');
  }
  return normalizeEncapMode(l);
}

// ---------------------------------------------------------------------------------------------
// FELIX_* parameters.

/** FelixConfiguration fields whose Felix (v1) parameter name is not the capitalised field name. */
const FELIX_V1_OVERRIDES: Record<string, string> = {
  ipv6Support: 'Ipv6Support',
  ipipEnabled: 'IpInIpEnabled',
  ipipMTU: 'IpInIpMtu',
  vxlanEnabled: 'VXLANEnabled',
  iptablesPostWriteCheckInterval: 'IptablesPostWriteCheckIntervalSecs',
  iptablesLockTimeout: 'IptablesLockTimeoutSecs',
  iptablesLockProbeInterval: 'IptablesLockProbeIntervalMillis',
  netlinkTimeout: 'NetlinkTimeoutSecs',
  reportingInterval: 'ReportingIntervalSecs',
  reportingTTL: 'ReportingTTLSecs',
  endpointReportingDelay: 'EndpointReportingDelaySecs',
  usageReportingInitialDelay: 'UsageReportingInitialDelaySecs',
  usageReportingInterval: 'UsageReportingIntervalSecs',
  xdpEnabled: 'XDPEnabled',
  genericXDPEnabled: 'GenericXDPEnabled',
  bpfKubeProxyHealthzPort: 'BPFKubeProxyHealthzPort',
};

/** Felix parameters with no FelixConfiguration field (environment / config file only). */
const FELIX_ONLY_PARAMS = [
  'DatastoreType',
  'FelixHostname',
  'NodeName',
  'EtcdAddr',
  'EtcdScheme',
  'EtcdKeyFile',
  'EtcdCertFile',
  'EtcdCaFile',
  'EtcdEndpoints',
  'TyphaAddr',
  'TyphaK8sServiceName',
  'TyphaK8sNamespace',
  'TyphaReadTimeout',
  'TyphaWriteTimeout',
  'TyphaKeyFile',
  'TyphaCertFile',
  'TyphaCAFile',
  'TyphaCN',
  'TyphaURISAN',
  'ConfigFile',
  'StatsDumpFilePath',
  'DebugMemoryProfilePath',
  'DebugCPUProfilePath',
  'DebugDisableLogDropping',
  'DebugPanicAfter',
  'DebugSimulateDataRace',
  'IgnoreLooseRPF',
];

interface FelixParam {
  /** FelixConfiguration field name, or the Felix-only parameter name. */
  key: string;
  type: FelixFieldType | undefined;
  /** v1 name ends in Secs/Millis: a plain number in the environment. */
  numeric: boolean;
}

const felixByLower = new Map<string, FelixParam>();
for (const [field, type] of Object.entries(FELIX_FIELDS)) {
  if (field === 'nodeSelector') continue;
  const v1 = FELIX_V1_OVERRIDES[field] ?? field.charAt(0).toUpperCase() + field.slice(1);
  felixByLower.set(v1.toLowerCase(), { key: field, type, numeric: /(Secs|Millis)$/.test(v1) });
}
for (const name of FELIX_ONLY_PARAMS) felixByLower.set(name.toLowerCase(), { key: name, type: undefined, numeric: false });

function felixValue(p: Problems, name: string, param: FelixParam, v: string): string | number | boolean | undefined {
  const ft = param.type;
  if (param.numeric || ft?.t === 'duration') {
    // Felix reads durations from the environment as (fractional) seconds / milliseconds.
    if (!/^\d+(\.\d+)?$/.test(v.trim())) return p.add(name, v, 'is not a non-negative number');
    return Number(v.trim());
  }
  if (!ft) return v;
  switch (ft.t) {
    case 'bool':
      return felixBool(p, name, v);
    case 'int':
      return int(p, name, v, ft.min ?? Number.MIN_SAFE_INTEGER, ft.max ?? Number.MAX_SAFE_INTEGER);
    case 'port':
      return port(p, name, v);
    case 'enum': {
      const hit = ft.values.find((x) => (ft.ci ? x.toLowerCase() === v.trim().toLowerCase() : x === v.trim()));
      if (hit === undefined) return p.add(name, v, `is not one of ${ft.values.filter((x) => x !== '').join(', ')}`);
      return v.trim();
    }
    case 'regexp':
      try {
        new RegExp(v);
        return v;
      } catch (e) {
        return p.add(name, v, `is not a valid regular expression (${(e as Error).message})`);
      }
    case 'pattern':
      if (!ft.re.test(v)) return p.add(name, v, `is not ${ft.what}`);
      return v;
    default:
      return v;
  }
}

function parseFelix(p: Problems, env: Env, warnings: string[]): FelixSettings {
  const params: Record<string, string | number | boolean> = {};
  const names = Object.keys(env).filter((k) => /^felix_/i.test(k)).sort();
  const rawOf: Record<string, string> = {};
  for (const name of names) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const param = felixByLower.get(name.slice(6).toLowerCase());
    if (!param) {
      warnings.push(`${name}=${show(v)}: not a Felix parameter Tortie knows; ignored`);
      continue;
    }
    const parsed = felixValue(p, name, param, v);
    rawOf[param.key] = name;
    if (parsed === undefined) continue;
    params[param.key] = parsed;
    const support = felixSupport(param.key, parsed, 'env');
    if (support.kind === 'refused') p.add(name, v, `is not supported: ${support.reason}; unset it or set it to ${parsed === true ? 'false' : 'true'}`);
    else if (support.kind === 'unsupported') warnings.push(`${name}=${show(v)}: ${unsupportedText(support)}`);
  }
  const num = (k: string, d: number) => (typeof params[k] === 'number' ? (params[k] as number) : d);
  const bool = (k: string) => (typeof params[k] === 'boolean' ? (params[k] as boolean) : undefined);
  const str = (k: string) => (typeof params[k] === 'string' ? (params[k] as string) : undefined);

  let healthHost: string = DEFAULTS.healthHost;
  if (str('healthHost') !== undefined) healthHost = host(p, rawOf.healthHost ?? 'FELIX_HEALTHHOST', str('healthHost')!) ?? healthHost;
  let metricsHost = '';
  if (str('prometheusMetricsHost') !== undefined) metricsHost = host(p, rawOf.prometheusMetricsHost ?? 'FELIX_PROMETHEUSMETRICSHOST', str('prometheusMetricsHost')!) ?? '';
  let level: LogLevel = 'INFO';
  const sev = str('logSeverityScreen');
  if (sev !== undefined && sev !== '') level = parseLogLevel(sev) ?? level;

  return {
    healthEnabled: bool('healthEnabled') ?? false,
    healthHost,
    healthPort: num('healthPort', DEFAULTS.healthPort),
    prometheusMetricsEnabled: bool('prometheusMetricsEnabled') ?? false,
    prometheusMetricsHost: metricsHost,
    prometheusMetricsPort: num('prometheusMetricsPort', DEFAULTS.metricsPort),
    logSeverityScreen: level,
    mtuIfacePattern: str('mtuIfacePattern') ?? DEFAULTS.mtuIfacePattern,
    ipipMTU: num('ipipMTU', 0),
    vxlanMTU: num('vxlanMTU', 0),
    ipipEnabled: bool('ipipEnabled'),
    vxlanEnabled: bool('vxlanEnabled'),
    ipv6Support: bool('ipv6Support') ?? true,
    params,
  };
}

// ---------------------------------------------------------------------------------------------

export interface ParseOptions {
  /** OS hostname source (default os.hostname). */
  hostname?: () => string;
}

/** Reads the agent's configuration from `env`; throws AgentConfigError listing every bad value. */
export function parseAgentConfig(env: Env, opts: ParseOptions = {}): AgentConfig {
  const p = new Problems();
  const warnings: string[] = [];
  const get = (k: string): string | undefined => (env[k] === undefined || env[k] === '' ? undefined : env[k]);

  // Node name.
  let nodeName: string;
  let nodeNameSource: AgentConfig['nodeNameSource'];
  const nn = get('NODENAME');
  if (nn !== undefined) {
    nodeName = nn.trim();
    nodeNameSource = 'NODENAME';
    if (!isDNSSubdomain(nodeName)) {
      p.add('NODENAME', nn, 'is not a valid node name (lower-case DNS subdomain: a-z, 0-9, "-", ".", at most 253 characters)');
    }
  } else {
    const h = (opts.hostname ?? osHostname)();
    nodeName = h.trim().toLowerCase();
    nodeNameSource = 'hostname';
    if (!isDNSSubdomain(nodeName)) {
      p.add('NODENAME', '', `is unset and the hostname ${show(h)} is not a valid node name; set NODENAME`);
    }
  }

  // Datastore: check the variables one by one first so the refusal names the variable.
  let datastore: DatastoreConfig = {
    datastoreType: 'embedded',
    datastorePath: DEFAULT_DATASTORE_PATH,
    etcdEndpoints: [],
  };
  const dsType = get('DATASTORE_TYPE');
  let dsOk = true;
  if (dsType !== undefined && dsType !== 'embedded' && dsType !== 'etcdv3' && dsType !== 'kubernetes') {
    dsOk = false;
    p.add('DATASTORE_TYPE', dsType, 'must be "embedded", "etcdv3" or "kubernetes"');
  }
  const eps = get('ETCD_ENDPOINTS');
  if (eps !== undefined) {
    for (const e of eps.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
      if (!/^https?:\/\/[^/\s]+\/?$/.test(e)) {
        dsOk = false;
        p.add('ETCD_ENDPOINTS', eps, `${show(e)} is not an etcd endpoint (expected http(s)://host:port)`);
      }
    }
  }
  const dsPath = get('DATASTORE_PATH');
  if (dsPath !== undefined && !isAbsolute(dsPath)) {
    dsOk = false;
    p.add('DATASTORE_PATH', dsPath, 'must be an absolute path');
  }
  if (dsOk) {
    try {
      datastore = resolveDatastoreConfig(settingsFromEnv(env));
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      const t = dsType ?? '';
      if (/needs etcd endpoints/.test(e.message)) p.add('DATASTORE_TYPE', t, 'etcdv3 needs ETCD_ENDPOINTS');
      else if (/certificate and key/.test(e.message)) {
        const which = get('ETCD_CERT_FILE') !== undefined ? 'ETCD_CERT_FILE' : 'ETCD_KEY_FILE';
        p.add(which, get(which) ?? '', 'ETCD_CERT_FILE and ETCD_KEY_FILE must be given together');
      } else p.list.push(`datastore settings: ${e.message}`);
    }
  }

  // Address.
  const ip = parseIPSetting(p, get('IP')) ?? { mode: 'default' };
  const autodetection = readAutodetectMethod(p, 'IP_AUTODETECTION_METHOD', get('IP_AUTODETECTION_METHOD')) ?? {
    kind: 'first-found',
  };
  if (autodetection.kind === 'kubernetes-internal-ip' && datastore.datastoreType !== 'kubernetes') {
    p.add(
      'IP_AUTODETECTION_METHOD',
      get('IP_AUTODETECTION_METHOD') ?? '',
      "kubernetes-internal-ip reads the k8s Node's InternalIP and needs DATASTORE_TYPE=kubernetes; choose another method",
    );
  }

  let asNumber: number | undefined;
  const as = get('AS');
  if (as !== undefined) {
    asNumber = parseASNumber(as);
    if (asNumber === undefined) p.add('AS', as, 'is not a valid AS number (1–4294967295, or dotted "<0–65535>.<0–65535>")');
  }

  // Default pool.
  const fromEnv: Partial<Record<PoolEnvVar, string>> = {};
  for (const k of POOL_ENV_VARS) {
    const v = get(k);
    if (v !== undefined) fromEnv[k] = v;
  }
  let blockSize: number = DEFAULTS.blockSize;
  if (fromEnv.CALICO_IPV4POOL_BLOCK_SIZE !== undefined) {
    blockSize = int(p, 'CALICO_IPV4POOL_BLOCK_SIZE', fromEnv.CALICO_IPV4POOL_BLOCK_SIZE, 20, 32) ?? blockSize;
  }
  let cidr: string = DEFAULTS.poolCIDR;
  const cidrText = fromEnv.CALICO_IPV4POOL_CIDR;
  if (cidrText !== undefined) {
    const c = parseCIDR(cidrText.trim());
    if (!c) p.add('CALICO_IPV4POOL_CIDR', cidrText, 'is not a CIDR (address/prefix)');
    else if (c.version !== 4) p.add('CALICO_IPV4POOL_CIDR', cidrText, 'is not an IPv4 CIDR');
    else {
      cidr = formatCIDR(c);
      if (hasHostBits(cidrText.trim())) {
        warnings.push(`CALICO_IPV4POOL_CIDR=${show(cidrText)} has host bits set; using the network ${cidr}`);
      }
      if (cidrOverlaps(c, parseCIDR('169.254.0.0/16')!)) {
        p.add('CALICO_IPV4POOL_CIDR', cidrText, 'overlaps the link-local range 169.254.0.0/16');
      } else if (c.prefix > blockSize) {
        p.add(
          'CALICO_IPV4POOL_CIDR',
          cidrText,
          `is smaller than one block (/${c.prefix} pool, CALICO_IPV4POOL_BLOCK_SIZE ${blockSize}): the block prefix must be ≥ the pool prefix`,
        );
      }
    }
  }
  const ipipMode =
    fromEnv.CALICO_IPV4POOL_IPIP !== undefined ? encap(p, 'CALICO_IPV4POOL_IPIP', fromEnv.CALICO_IPV4POOL_IPIP) ?? 'Never' : 'Never';
  const vxlanMode =
    fromEnv.CALICO_IPV4POOL_VXLAN !== undefined ? encap(p, 'CALICO_IPV4POOL_VXLAN', fromEnv.CALICO_IPV4POOL_VXLAN) ?? 'Never' : 'Never';
  if (ipipMode !== 'Never' && vxlanMode !== 'Never') {
    p.list.push(
      `CALICO_IPV4POOL_IPIP=${show(fromEnv.CALICO_IPV4POOL_IPIP!)} and CALICO_IPV4POOL_VXLAN=${show(fromEnv.CALICO_IPV4POOL_VXLAN!)}: ` +
        'IPIP and VXLAN cannot both be enabled on the default pool',
    );
  }
  const natOutgoing =
    fromEnv.CALICO_IPV4POOL_NAT_OUTGOING !== undefined
      ? goBool(p, 'CALICO_IPV4POOL_NAT_OUTGOING', fromEnv.CALICO_IPV4POOL_NAT_OUTGOING) ?? true
      : true;
  const disableBGPExport =
    fromEnv.CALICO_IPV4POOL_DISABLE_BGP_EXPORT !== undefined
      ? goBool(p, 'CALICO_IPV4POOL_DISABLE_BGP_EXPORT', fromEnv.CALICO_IPV4POOL_DISABLE_BGP_EXPORT) ?? false
      : false;
  const nodeSelector = fromEnv.CALICO_IPV4POOL_NODE_SELECTOR ?? '';
  if (nodeSelector !== '') {
    const err = selectorError(nodeSelector);
    if (err) p.add('CALICO_IPV4POOL_NODE_SELECTOR', nodeSelector, `is not a valid selector (${err.message.split('\n')[0]})`);
  }

  let noDefaultPools = false;
  const ndp = get('NO_DEFAULT_POOLS');
  if (ndp !== undefined) noDefaultPools = goBool(p, 'NO_DEFAULT_POOLS', ndp) ?? false;
  if (noDefaultPools && cidrText !== undefined) {
    p.list.push(
      `NO_DEFAULT_POOLS=${show(ndp!)} and CALICO_IPV4POOL_CIDR=${show(cidrText)}: a default pool CIDR makes no sense with NO_DEFAULT_POOLS (calico-node refuses this too)`,
    );
  }

  // Cluster type.
  const clusterType: string[] = [];
  const ct = get('CLUSTER_TYPE');
  if (ct !== undefined) {
    for (const tok of ct.split(',').map((s) => s.trim())) {
      if (tok === '') continue;
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(tok)) {
        p.add('CLUSTER_TYPE', ct, `${show(tok)} is not a valid cluster type (letters, digits, ".", "_", "-")`);
        continue;
      }
      if (!clusterType.includes(tok)) clusterType.push(tok);
    }
  }

  const felix = parseFelix(p, env, warnings);

  const runDir = (get('TORTIE_RUN_DIR') !== undefined ? absDir(p, 'TORTIE_RUN_DIR', get('TORTIE_RUN_DIR')!) : undefined) ?? DEFAULTS.runDir;
  const stateDir =
    (get('TORTIE_STATE_DIR') !== undefined ? absDir(p, 'TORTIE_STATE_DIR', get('TORTIE_STATE_DIR')!) : undefined) ?? DEFAULTS.stateDir;
  const bgpSecretsDir = get('TORTIE_BGP_SECRETS_DIR') !== undefined ? absDir(p, 'TORTIE_BGP_SECRETS_DIR', get('TORTIE_BGP_SECRETS_DIR')!) : undefined;
  const cniSocket = join(runDir, 'cni.sock');
  if (Buffer.byteLength(cniSocket) > 107) {
    p.add('TORTIE_RUN_DIR', runDir, `makes the socket path ${cniSocket} longer than a unix socket address allows (107 bytes)`);
  }

  if (p.list.length > 0) throw new AgentConfigError(p.list);
  return {
    nodeName,
    nodeNameSource,
    datastore,
    ip,
    autodetection,
    asNumber,
    defaultPool: { cidr, blockSize, ipipMode, vxlanMode, natOutgoing, nodeSelector, disableBGPExport, fromEnv },
    noDefaultPools,
    clusterType,
    felix,
    runDir,
    stateDir,
    cniSocket,
    nodenameFile: join(stateDir, 'nodename'),
    mtuFile: join(stateDir, 'mtu'),
    ...(bgpSecretsDir !== undefined ? { bgpSecretsDir } : {}),
    warnings,
  };
}
