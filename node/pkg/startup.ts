// What calico-node does against the datastore when it starts, for this node:
//
// 1. ClusterInformation "default": created when absent (random clusterGUID, clusterType from
//    CLUSTER_TYPE, calicoVersion = Tortie's version, datastoreReady true); when present its GUID
//    is kept, CLUSTER_TYPE tokens missing from clusterType are appended, calicoVersion is set to
//    ours, and datastoreReady is only filled in when unset (an operator's `false` is respected).
// 2. IP pools: `default-ipv4-ippool` is seeded from CALICO_IPV4POOL_* only when no IPv4 pool
//    exists (and NO_DEFAULT_POOLS is not set). When pools exist, the pool the environment talks
//    about is compared with the CALICO_IPV4POOL_* variables that are set; every disagreement is a
//    drift finding (the environment only seeds a pool at first start, so it silently stops
//    mattering — the seed cluster's `CALICO_IPV4POOL_IPIP=Off` next to `ipipMode: Always`).
// 3. Node <nodename>: created or updated with compare-and-swap, keeping labels and fields others
//    wrote. spec.bgp.ipv4Address per IP / IP_AUTODETECTION_METHOD, spec.bgp.asNumber from AS,
//    label kubernetes.io/hostname added when absent, and the drift findings in
//    status.tortie.configDrift (Node status is stored as given; Calico's readers ignore fields
//    they do not know). Another Node already holding the address is an error, as in calico-node.
//    On kubernetes (as calico-node on KDD) the Node is the k8s Node: it must exist (kubelet
//    registers it); start-up only updates it (the projectcalico.org/* annotations, no label) and
//    stays not ready, retrying, while it is missing; IP_AUTODETECTION_METHOD=kubernetes-internal-ip
//    takes its InternalIP; "kdd" is added to ClusterInformation's clusterType.
// 4. $TORTIE_STATE_DIR/nodename (for the CNI plugin) and $TORTIE_STATE_DIR/mtu (the pod MTU as
//    Felix computes it: smallest oper-up host interface matching MTUIfacePattern, minus the
//    overhead of the encapsulations the pools use).
// 5. The stored FelixConfigurations that concern this node (`default`, `node.<nodename>`): every
//    field Tortie does not put in force is logged once per start-up and listed on the Node in
//    status.tortie.unsupportedSettings (felix-support.ts decides; e.g. wireguardEnabled true written
//    by Calico before Tortie refused it at apply). Selector-scoped FelixConfigurations are not read
//    by Tortie at all and not reported here.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { ResourceClient, ResourceError } from '../../libcalico-go/lib/clientv3/resources.js';
import { API_VERSION } from '../../libcalico-go/lib/apis/v3/kinds.js';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { normalizeEncapMode } from '../../libcalico-go/lib/apis/v3/validate/ippool.js';
import { felixSupport, unsupportedText } from '../../libcalico-go/lib/apis/v3/validate/felix-support.js';
import { cidrOverlaps, formatCIDR, parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';
import { parseSelector } from '../../libcalico-go/lib/selector/index.js';
import {
  addressWithPrefix,
  autodetectIPv4,
  computePodMTU,
  readInterfaces,
  type HostInterface,
  type MTUResult,
} from './autodetect.js';
import { type AgentConfig, DEFAULT_POOL_NAME, type DefaultPoolSettings, type PoolEnvVar } from './config.js';
import { type Logger, silentLogger } from '../../libcalico-go/lib/logutils/index.js';

export const HOSTNAME_LABEL = 'kubernetes.io/hostname';

type Obj = Record<string, unknown>;

export interface DriftFinding {
  variable: PoolEnvVar;
  /** The variable's text as set. */
  envValue: string;
  /** The IPPool compared with (absent when no pool matched the CIDR at all). */
  pool?: string;
  /** The IPPool spec field. */
  field: string;
  /** What the environment asks for, normalised (e.g. "Never" for "Off"). */
  expected: unknown;
  /** What the pool has. */
  actual: unknown;
  message: string;
}

/** A stored FelixConfiguration field Tortie does not put in force. */
export interface UnsupportedSetting {
  /** `FelixConfiguration <name>`. */
  resource: string;
  /** `spec.<field>`. */
  field: string;
  value: unknown;
  /** A value Tortie refuses at apply (stored before that, e.g. by Calico). */
  refused: boolean;
  message: string;
}

export interface StartupDeps {
  log?: Logger;
  /** Interfaces of this netns (default: `ip -j addr show`). */
  interfaces?: () => Promise<HostInterface[]>;
  routeSource?: (dest: string) => Promise<string | undefined>;
  resolveHost?: (host: string) => Promise<string>;
  /** calicoVersion to write (default: dist/build-info.json, else package.json). */
  version?: string;
}

export interface StartupResult {
  nodeName: string;
  node: Resource;
  clusterInformation: Resource;
  /** The default pool was created by this run. */
  poolCreated: boolean;
  drift: DriftFinding[];
  ipv4Address?: string;
  /** Undefined when the interfaces could not be read. */
  mtu?: MTUResult;
  unsupported: UnsupportedSetting[];
}

export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

// ---------------------------------------------------------------------------------------------
// Version

let cachedVersion: string | null | undefined;

/** Tortie's version as the build recorded it (dist/build-info.json), else package.json's. */
export function tortieVersion(): string | undefined {
  if (cachedVersion !== undefined) return cachedVersion ?? undefined;
  const tries: Array<[URL, (d: Obj) => unknown]> = [
    [new URL('../../build-info.json', import.meta.url), (d) => d.version],
    [new URL('../../../package.json', import.meta.url), (d) => (typeof d.version === 'string' ? `v${d.version}` : undefined)],
  ];
  for (const [url, pick] of tries) {
    try {
      const v = pick(JSON.parse(readFileSync(url, 'utf8')) as Obj);
      if (typeof v === 'string' && v !== '') return (cachedVersion = v);
    } catch {
      // try the next
    }
  }
  cachedVersion = null;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Helpers

const isConflict = (e: unknown) => e instanceof ResourceError && /update conflict|already exists|does not exist/.test(e.message);

/** Runs a read-modify-write until it does not lose a race (5 tries). */
async function withCAS<T>(what: string, fn: () => Promise<T>): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 5; i++) {
    try {
      return await fn();
    } catch (e) {
      if (!isConflict(e)) throw e;
      last = e;
    }
  }
  throw new StartupError(`${what}: kept conflicting with other writers: ${(last as Error).message}`);
}

/** Writes a file atomically (temp file + rename), creating its directory. */
export function writeStateFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, content, { mode: 0o644 });
  renameSync(tmp, path);
}

function readFileOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** JSON with object keys sorted at every level (for "did anything change" comparisons). */
export function stableJSON(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Obj).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

const spec = (r: Resource | null | undefined): Obj => (r?.spec ?? {}) as Obj;

function v4Pools(pools: readonly Resource[]): Resource[] {
  return pools.filter((p) => {
    const c = typeof spec(p).cidr === 'string' ? parseCIDR(spec(p).cidr as string) : null;
    return c?.version === 4;
  });
}

// ---------------------------------------------------------------------------------------------
// 1. ClusterInformation

export async function ensureClusterInformation(
  client: ResourceClient,
  cfg: Pick<AgentConfig, 'clusterType'>,
  version: string | undefined,
  log: Logger = silentLogger,
): Promise<Resource> {
  return withCAS('ClusterInformation default', async () => {
    const cur = await client.get('ClusterInformation', 'default');
    if (!cur) {
      const s: Obj = { clusterGUID: randomBytes(16).toString('hex'), datastoreReady: true };
      if (cfg.clusterType.length > 0) s.clusterType = cfg.clusterType.join(',');
      if (version) s.calicoVersion = version;
      const r = await client.create({ apiVersion: API_VERSION, kind: 'ClusterInformation', metadata: { name: 'default' }, spec: s });
      log.info(`Created ClusterInformation default (clusterGUID ${s.clusterGUID}, clusterType ${s.clusterType ?? '(none)'})`);
      return r;
    }
    const old = spec(cur);
    const s: Obj = { ...old };
    if (typeof s.clusterGUID !== 'string' || s.clusterGUID === '') s.clusterGUID = randomBytes(16).toString('hex');
    const types = typeof old.clusterType === 'string' && old.clusterType !== '' ? old.clusterType.split(',') : [];
    for (const t of cfg.clusterType) if (!types.includes(t)) types.push(t);
    if (types.length > 0) s.clusterType = types.join(',');
    if (version) s.calicoVersion = version;
    if (s.datastoreReady === undefined) s.datastoreReady = true;
    else if (s.datastoreReady === false) {
      log.warn('ClusterInformation default has datastoreReady false (set by an operator?); leaving it as it is');
    }
    if (stableJSON(s) === stableJSON(old)) return cur;
    const r = await client.update({ ...cur, spec: s });
    log.info(`Updated ClusterInformation default (clusterType ${s.clusterType ?? '(none)'}, calicoVersion ${s.calicoVersion ?? '(none)'})`);
    return r;
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Pools and drift

function defaultPoolResource(p: DefaultPoolSettings): Obj {
  return {
    apiVersion: API_VERSION,
    kind: 'IPPool',
    metadata: { name: DEFAULT_POOL_NAME },
    spec: {
      cidr: p.cidr,
      blockSize: p.blockSize,
      ipipMode: p.ipipMode,
      vxlanMode: p.vxlanMode,
      natOutgoing: p.natOutgoing,
      nodeSelector: p.nodeSelector === '' ? 'all()' : p.nodeSelector,
      disableBGPExport: p.disableBGPExport,
    },
  };
}

/** The pool the CALICO_IPV4POOL_* variables describe: same CIDR, else the default name, else one overlapping it, else the only IPv4 pool. */
export function poolForEnv(p: DefaultPoolSettings, pools: readonly Resource[]): { pool?: Resource; exact: boolean } {
  const v4 = v4Pools(pools);
  const want = parseCIDR(p.cidr)!;
  const exact = v4.find((x) => formatCIDR(parseCIDR(spec(x).cidr as string)!) === formatCIDR(want));
  if (exact) return { pool: exact, exact: true };
  const byName = v4.find((x) => x.metadata.name === DEFAULT_POOL_NAME);
  if (byName) return { pool: byName, exact: false };
  const overlapping = v4.find((x) => cidrOverlaps(parseCIDR(spec(x).cidr as string)!, want));
  if (overlapping) return { pool: overlapping, exact: false };
  if (v4.length === 1) return { pool: v4[0], exact: false };
  return { exact: false };
}

function canonicalSelector(s: string): string {
  try {
    return parseSelector(s.trim() === '' ? 'all()' : s).canonical();
  } catch {
    return s;
  }
}

const SEED_NOTE = 'the environment only seeds a pool at first start';

/**
 * Compares the CALICO_IPV4POOL_* variables that are set with the pool they describe. Pure.
 * `pools` are the stored pools; an empty list gives no findings (the pool would be seeded).
 */
export function findPoolDrift(p: DefaultPoolSettings, pools: readonly Resource[]): DriftFinding[] {
  const env = p.fromEnv;
  if (v4Pools(pools).length === 0 || Object.keys(env).length === 0) return [];
  const { pool, exact } = poolForEnv(p, pools);
  const out: DriftFinding[] = [];
  if (!pool) {
    if (env.CALICO_IPV4POOL_CIDR !== undefined) {
      const names = v4Pools(pools).map((x) => `${x.metadata.name} (${spec(x).cidr})`).join(', ');
      out.push({
        variable: 'CALICO_IPV4POOL_CIDR',
        envValue: env.CALICO_IPV4POOL_CIDR,
        field: 'cidr',
        expected: p.cidr,
        actual: null,
        message: `CALICO_IPV4POOL_CIDR=${env.CALICO_IPV4POOL_CIDR} but no IPPool has that CIDR (IPv4 pools: ${names}); ${SEED_NOTE}`,
      });
    }
    return out;
  }
  const name = pool.metadata.name;
  const s = spec(pool);
  const add = (variable: PoolEnvVar, field: string, expected: unknown, actual: unknown, shownEnv?: string) => {
    const raw = env[variable]!;
    const arrow = shownEnv !== undefined && shownEnv !== raw ? ` (→ ${shownEnv})` : '';
    const shownActual = actual === undefined ? '(unset)' : String(actual);
    out.push({
      variable,
      envValue: raw,
      pool: name,
      field,
      expected,
      actual: actual ?? null,
      message: `${variable}=${raw}${arrow} but IPPool ${name} has ${field} ${shownActual}; ${SEED_NOTE}`,
    });
  };
  if (env.CALICO_IPV4POOL_CIDR !== undefined && !exact) add('CALICO_IPV4POOL_CIDR', 'cidr', p.cidr, s.cidr, p.cidr);
  if (env.CALICO_IPV4POOL_BLOCK_SIZE !== undefined && s.blockSize !== p.blockSize) {
    add('CALICO_IPV4POOL_BLOCK_SIZE', 'blockSize', p.blockSize, s.blockSize, String(p.blockSize));
  }
  const ipip = normalizeEncapMode(s.ipipMode) ?? s.ipipMode;
  if (env.CALICO_IPV4POOL_IPIP !== undefined && ipip !== p.ipipMode) add('CALICO_IPV4POOL_IPIP', 'ipipMode', p.ipipMode, ipip, p.ipipMode);
  const vxlan = normalizeEncapMode(s.vxlanMode) ?? s.vxlanMode;
  if (env.CALICO_IPV4POOL_VXLAN !== undefined && vxlan !== p.vxlanMode) {
    add('CALICO_IPV4POOL_VXLAN', 'vxlanMode', p.vxlanMode, vxlan, p.vxlanMode);
  }
  const nat = s.natOutgoing === true;
  if (env.CALICO_IPV4POOL_NAT_OUTGOING !== undefined && nat !== p.natOutgoing) {
    add('CALICO_IPV4POOL_NAT_OUTGOING', 'natOutgoing', p.natOutgoing, nat, String(p.natOutgoing));
  }
  const noExport = s.disableBGPExport === true;
  if (env.CALICO_IPV4POOL_DISABLE_BGP_EXPORT !== undefined && noExport !== p.disableBGPExport) {
    add('CALICO_IPV4POOL_DISABLE_BGP_EXPORT', 'disableBGPExport', p.disableBGPExport, noExport, String(p.disableBGPExport));
  }
  const sel = typeof s.nodeSelector === 'string' ? s.nodeSelector : 'all()';
  if (env.CALICO_IPV4POOL_NODE_SELECTOR !== undefined && canonicalSelector(sel) !== canonicalSelector(p.nodeSelector)) {
    add('CALICO_IPV4POOL_NODE_SELECTOR', 'nodeSelector', p.nodeSelector, sel);
  }
  return out;
}

/** Seeds the default pool when no IPv4 pool exists; returns the pools afterwards. */
export async function ensureDefaultPool(
  client: ResourceClient,
  cfg: Pick<AgentConfig, 'defaultPool' | 'noDefaultPools'>,
  log: Logger = silentLogger,
): Promise<{ created: boolean; pools: Resource[] }> {
  const pools = await client.list('IPPool');
  if (cfg.noDefaultPools) {
    log.info('NO_DEFAULT_POOLS is set: skipping IP pool configuration');
    return { created: false, pools };
  }
  if (v4Pools(pools).length > 0) return { created: false, pools };
  const p = cfg.defaultPool;
  try {
    await client.create(defaultPoolResource(p));
    log.info(
      `Created default IPv4 pool ${DEFAULT_POOL_NAME} (${p.cidr}) with NAT outgoing ${p.natOutgoing}. IPIP mode: ${p.ipipMode}, VXLAN mode: ${p.vxlanMode}, block size ${p.blockSize}`,
    );
    return { created: true, pools: await client.list('IPPool') };
  } catch (e) {
    if (e instanceof ResourceError && /already exists/.test(e.message)) {
      log.info(`Default IPv4 pool ${DEFAULT_POOL_NAME} was created by another node meanwhile`);
      return { created: false, pools: await client.list('IPPool') };
    }
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// FelixConfiguration fields not in force

/** The fields of this node's stored FelixConfigurations (`node.<name>`, `default`) that Tortie does not put in force. Pure. */
export function findUnsupportedFelixSettings(configs: readonly Resource[], nodeName: string): UnsupportedSetting[] {
  const out: UnsupportedSetting[] = [];
  for (const name of [`node.${nodeName}`, 'default']) {
    const fc = configs.find((c) => c.metadata.name === name);
    if (!fc) continue;
    const resource = `FelixConfiguration ${name}`;
    for (const [k, v] of Object.entries(spec(fc)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (v === undefined || v === null) continue;
      const s = felixSupport(k, v, 'resource');
      if (s.kind === 'inForce') continue;
      const head = `${resource} spec.${k} ${JSON.stringify(v)}`;
      out.push(
        s.kind === 'refused'
          ? { resource, field: `spec.${k}`, value: v, refused: true, message: `${head}: not supported by Tortie (${s.reason}); not in force (Tortie refuses it at apply; this one was stored before)` }
          : { resource, field: `spec.${k}`, value: v, refused: false, message: `${head}: ${unsupportedText(s)}` },
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 3. Node

/** The IPv4 address (with prefix) this node should have, or undefined to leave it unset. */
async function decideIPv4(
  cfg: AgentConfig,
  existing: Resource | null,
  current: string | undefined,
  interfaces: () => Promise<HostInterface[]>,
  deps: StartupDeps,
  log: Logger,
): Promise<string | undefined> {
  switch (cfg.ip.mode) {
    case 'none':
      return current;
    case 'address': {
      const needIfaces = cfg.ip.prefix === undefined;
      const addr = addressWithPrefix(cfg.ip.address, cfg.ip.prefix, needIfaces ? await interfaces() : []);
      log.info(`Using IPv4 address from the environment: IP=${addr}`);
      return addr;
    }
    case 'default':
    case 'autodetect': {
      if (cfg.ip.mode === 'default' && current) {
        log.info(`Using IPv4 address ${current} configured in the Node resource`);
        return current;
      }
      if (cfg.autodetection.kind === 'kubernetes-internal-ip') {
        // As calico-node: the k8s Node's first IPv4 InternalIP, with the prefix of the local
        // interface holding it (else /32).
        const addrs = (spec(existing).addresses as { address?: string; type?: string }[] | undefined) ?? [];
        const internal = addrs.find((a) => a.type === 'InternalIP' && typeof a.address === 'string' && parseIP(a.address)?.version === 4);
        if (!internal) {
          throw new StartupError(
            `IP_AUTODETECTION_METHOD=kubernetes-internal-ip: Kubernetes Node ${cfg.nodeName} has no IPv4 InternalIP in status.addresses (kubelet sets it)`,
          );
        }
        const cidr = addressWithPrefix(internal.address!, undefined, await interfaces());
        log.info(`Using the Kubernetes Node's InternalIP: ${cidr}`);
        return cidr;
      }
      const d = await autodetectIPv4(cfg.autodetection, {
        interfaces,
        routeSource: deps.routeSource,
        resolveHost: deps.resolveHost,
      });
      log.info(`Using autodetected IPv4 address on interface ${d.iface}: ${d.cidr}`);
      return d.cidr;
    }
  }
}

function bareIP(cidr: string): string {
  const ip = parseIP(cidr.split('/')[0]!);
  return ip ? ip.value.toString() : cidr;
}

/** Builds the node resource from the stored one (or nothing) and this run's decisions. */
export function desiredNode(
  existing: Resource | null,
  nodeName: string,
  ipv4Address: string | undefined,
  asNumber: number | undefined,
  drift: readonly DriftFinding[],
  unsupported: readonly UnsupportedSetting[] = [],
  opts: { hostnameLabel?: boolean } = {},
): Obj {
  const base: Resource = existing
    ? structuredClone(existing)
    : { apiVersion: API_VERSION, kind: 'Node', metadata: { name: nodeName }, spec: {} };
  const s = (base.spec ?? {}) as Obj;
  const bgp = { ...((s.bgp as Obj | undefined) ?? {}) };
  if (ipv4Address) bgp.ipv4Address = ipv4Address;
  else delete bgp.ipv4Address;
  if (asNumber !== undefined) bgp.asNumber = asNumber;
  if (Object.keys(bgp).length > 0) s.bgp = bgp;
  else delete s.bgp;
  base.spec = s;
  base.metadata = { ...base.metadata, labels: { ...(base.metadata.labels ?? {}) } };
  // Not on kubernetes: the k8s Node's labels are kubelet's (calico-node adds none there).
  if (opts.hostnameLabel !== false && base.metadata.labels![HOSTNAME_LABEL] === undefined) base.metadata.labels![HOSTNAME_LABEL] = nodeName;
  const status: Obj = { ...(base.status ?? {}) };
  const tortie: Obj = { ...((status.tortie as Obj | undefined) ?? {}) };
  if (drift.length > 0) tortie.configDrift = drift.map((d) => ({ ...d }));
  else delete tortie.configDrift;
  if (unsupported.length > 0) tortie.unsupportedSettings = unsupported.map((u) => u.message);
  else delete tortie.unsupportedSettings;
  if (Object.keys(tortie).length > 0) status.tortie = tortie;
  else delete status.tortie;
  if (Object.keys(status).length > 0) base.status = status;
  else delete base.status;
  return base as unknown as Obj;
}

export async function configureNode(
  client: ResourceClient,
  cfg: AgentConfig,
  drift: readonly DriftFinding[],
  interfaces: () => Promise<HostInterface[]>,
  deps: StartupDeps,
  log: Logger = silentLogger,
  unsupported: readonly UnsupportedSetting[] = [],
): Promise<Resource> {
  let decided: { for: string | undefined; ip: string | undefined } | undefined;
  const kdd = cfg.datastore.datastoreType === 'kubernetes';
  return withCAS(`Node ${cfg.nodeName}`, async () => {
    const existing = await client.get('Node', cfg.nodeName);
    if (!existing && kdd) {
      // On kubernetes the Node is the k8s Node, which kubelet registers: calico-node only updates
      // it (its annotations), never creates it. Not ready until it exists; the supervisor retries.
      throw new StartupError(
        `Kubernetes Node ${cfg.nodeName} does not exist: on the kubernetes datastore the Node is the k8s Node that kubelet registers ` +
          '(tortie-node only adds its annotations); waiting for it. Check NODENAME matches the kubelet\'s node name',
      );
    }
    const current = (spec(existing).bgp as Obj | undefined)?.ipv4Address as string | undefined;
    // Decide once per stored value (a CAS retry must not re-run autodetection needlessly).
    if (!decided || decided.for !== current) decided = { for: current, ip: await decideIPv4(cfg, existing, current, interfaces, deps, log) };
    const ipv4 = decided.ip;
    if (ipv4 && ipv4 !== current && current) log.info(`Node IPv4 address changes from ${current} to ${ipv4}`);
    if (!ipv4) log.warn(`Node ${cfg.nodeName} has no IPv4 address (IP=none and none stored)`);
    if (ipv4) {
      for (const other of await client.list('Node')) {
        if (other.metadata.name === cfg.nodeName) continue;
        const theirs = (spec(other).bgp as Obj | undefined)?.ipv4Address;
        if (typeof theirs === 'string' && bareIP(theirs) === bareIP(ipv4)) {
          throw new StartupError(
            `Node ${other.metadata.name} is already using the IPv4 address ${theirs}; this node (${cfg.nodeName}) would take ${ipv4}. ` +
              'Check IP / IP_AUTODETECTION_METHOD, or remove the stale Node',
          );
        }
      }
    }
    const want = desiredNode(existing, cfg.nodeName, ipv4, cfg.asNumber, drift, unsupported, { hostnameLabel: !kdd });
    if (!existing) {
      const r = await client.create(want);
      log.info(`Created Node ${cfg.nodeName}${ipv4 ? ` with IPv4 address ${ipv4}` : ''}`);
      return r;
    }
    const strip = (o: Obj) => stableJSON({ ...o, metadata: { ...(o.metadata as Obj), resourceVersion: undefined } });
    if (strip(want) === strip(existing as unknown as Obj)) return existing;
    const r = await client.update(want);
    log.info(`Updated Node ${cfg.nodeName}${ipv4 ? ` (IPv4 address ${ipv4})` : ''}`);
    return r;
  });
}

// ---------------------------------------------------------------------------------------------
// Everything

/** One pass of the startup work; throws on any failure (the supervisor retries). */
export async function runStartup(store: Backend, cfg: AgentConfig, deps: StartupDeps = {}): Promise<StartupResult> {
  const log = deps.log ?? silentLogger;
  const client = new ResourceClient(store);
  let ifaces: Promise<HostInterface[]> | undefined;
  const interfaces = () => (ifaces ??= (deps.interfaces ?? (() => readInterfaces()))());

  const version = deps.version ?? tortieVersion();
  // As calico-node on KDD: "kdd" joins CLUSTER_TYPE's tokens in ClusterInformation's clusterType.
  const clusterType = cfg.datastore.datastoreType === 'kubernetes' && !cfg.clusterType.includes('kdd') ? [...cfg.clusterType, 'kdd'] : cfg.clusterType;
  const clusterInformation = await ensureClusterInformation(client, { clusterType }, version, log);

  const { created, pools } = await ensureDefaultPool(client, cfg, log);
  const drift = created || cfg.noDefaultPools ? [] : findPoolDrift(cfg.defaultPool, pools);
  for (const d of drift) log.warn(`Configuration drift: ${d.message}`);

  const unsupported = findUnsupportedFelixSettings(await client.list('FelixConfiguration'), cfg.nodeName);
  for (const u of unsupported) log.warn(u.message);

  const node = await configureNode(client, cfg, drift, interfaces, deps, log, unsupported);
  const ipv4Address = ((node.spec as Obj | undefined)?.bgp as Obj | undefined)?.ipv4Address as string | undefined;

  if (readFileOrNull(cfg.nodenameFile) !== cfg.nodeName) {
    writeStateFile(cfg.nodenameFile, cfg.nodeName);
    log.info(`Wrote node name ${cfg.nodeName} to ${cfg.nodenameFile}`);
  }

  let mtu: MTUResult | undefined;
  try {
    const list = await interfaces();
    const v4 = v4Pools(pools).filter((p) => spec(p).disabled !== true);
    const ipipEnabled = cfg.felix.ipipEnabled ?? v4.some((p) => (normalizeEncapMode(spec(p).ipipMode) ?? 'Never') !== 'Never');
    const vxlanEnabled = cfg.felix.vxlanEnabled ?? v4.some((p) => (normalizeEncapMode(spec(p).vxlanMode) ?? 'Never') !== 'Never');
    mtu = computePodMTU(list, {
      ifacePattern: cfg.felix.mtuIfacePattern,
      ipipEnabled,
      vxlanEnabled,
      ipipMTU: cfg.felix.ipipMTU,
      vxlanMTU: cfg.felix.vxlanMTU,
    });
    if (readFileOrNull(cfg.mtuFile) !== String(mtu.podMTU)) {
      writeStateFile(cfg.mtuFile, String(mtu.podMTU));
      const from = mtu.hostInterfaces.length > 0 ? mtu.hostInterfaces.join(', ') : 'no matching interface, fallback';
      log.info(
        `Wrote pod MTU ${mtu.podMTU} to ${cfg.mtuFile} (host MTU ${mtu.hostMTU} from ${from}; IPIP ${ipipEnabled ? 'on' : 'off'}, VXLAN ${vxlanEnabled ? 'on' : 'off'})`,
      );
    }
  } catch (e) {
    log.warn(`Could not work out the pod MTU (${(e as Error).message}); ${cfg.mtuFile} not written`);
  }

  return { nodeName: cfg.nodeName, node, clusterInformation, poolCreated: created, drift, ipv4Address, mtu, unsupported };
}
