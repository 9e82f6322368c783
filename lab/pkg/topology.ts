// Pure planning of a lab: names of namespaces and links, underlay addresses, the node list of a
// preset, the agents' environment and the IP pool. Nothing here touches the system.
import { createHash } from 'node:crypto';

export type Mode = 'bgp' | 'vxlan' | 'crosssubnet';
export type DatastoreKind = 'embedded' | 'etcd' | 'kubernetes';

export const MODES: readonly Mode[] = ['bgp', 'vxlan', 'crosssubnet'];
export const DATASTORES: readonly DatastoreKind[] = ['embedded', 'etcd', 'kubernetes'];
export const PRESETS = ['seed'] as const;
export type Preset = (typeof PRESETS)[number];

/** Every namespace of a lab starts with this. */
export const NS_PREFIX = 'tl-';
export const MAX_NODES = 200;

export interface PoolPlan {
  name: string;
  cidr: string;
  blockSize: number;
  ipipMode: 'Never' | 'Always' | 'CrossSubnet';
  vxlanMode: 'Never' | 'Always' | 'CrossSubnet';
  natOutgoing: boolean;
}

export interface SubnetPlan {
  /** 0 or 1. */
  index: number;
  cidr: string;
  /** The router's address on it (the nodes' default gateway). */
  gateway: string;
  prefixLen: number;
  /** Bridge in the LAN namespace. */
  bridge: string;
}

export interface NodePlan {
  name: string;
  /** Network namespace of the node's "host". */
  ns: string;
  /** Underlay address without prefix. */
  address: string;
  subnet: number;
  /** The node's end of the underlay veth is eth0; this is the LAN end. */
  lanIf: string;
}

export interface LabPlan {
  name: string;
  prefix: string;
  mode: Mode;
  datastore: DatastoreKind;
  preset?: Preset;
  lanNs: string;
  routerNs: string;
  /** Set when datastore is etcd (`<prefix>etcd`: etcd) or kubernetes (`<prefix>api`: kube-apiserver and its etcd). */
  etcdNs?: string;
  etcdAddress?: string;
  subnets: SubnetPlan[];
  nodes: NodePlan[];
  pool: PoolPlan;
  /** Human notes printed while building (e.g. a seed setting the kernel cannot do). */
  notes: string[];
}

export interface PlanOptions {
  name: string;
  nodes?: number;
  preset?: Preset;
  mode?: Mode;
  datastore?: DatastoreKind;
}

const LAB_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,14}[a-z0-9])?$/;
const NODE_NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;
const K8S_NS_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const POD_NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/;

export function validateLabName(name: string): void {
  if (!LAB_NAME_RE.test(name)) {
    throw new Error(`invalid lab name ${JSON.stringify(name)}: 1-16 characters, lower-case letters, digits and '-', not starting or ending with '-'`);
  }
}

export function labPrefix(name: string): string {
  return `${NS_PREFIX}${name}-`;
}

/** The seed cluster's nodes (/work/shared/seed/SUMMARY.md). */
export const SEED_NODES = [
  'playcekube-master01',
  'playcekube-master02',
  'playcekube-master03',
  'playcekube-worker01',
  'playcekube-worker02',
];

/** The node names of a lab: a preset's, or node1..nodeK. */
export function nodeNames(opts: { nodes?: number; preset?: Preset }): string[] {
  if (opts.preset === 'seed') return [...SEED_NODES];
  const k = opts.nodes ?? 2;
  if (!Number.isInteger(k) || k < 1 || k > MAX_NODES) throw new Error(`--nodes must be an integer from 1 to ${MAX_NODES}, got ${k}`);
  return Array.from({ length: k }, (_, i) => `node${i + 1}`);
}

/** Short node labels accepted on the command line: `master01` for `playcekube-master01`. */
export function resolveNodeName(plan: Pick<LabPlan, 'nodes'>, want: string): NodePlan | undefined {
  return plan.nodes.find((n) => n.name === want) ?? plan.nodes.find((n) => n.name.endsWith(`-${want}`));
}

export function planLab(opts: PlanOptions): LabPlan {
  validateLabName(opts.name);
  const mode = opts.mode ?? 'bgp';
  if (!MODES.includes(mode)) throw new Error(`--mode must be one of ${MODES.join(', ')}, got ${mode}`);
  const datastore = opts.datastore ?? 'embedded';
  if (!DATASTORES.includes(datastore)) throw new Error(`--datastore must be one of ${DATASTORES.join(', ')}, got ${datastore}`);
  if (opts.preset !== undefined && !PRESETS.includes(opts.preset)) throw new Error(`unknown preset ${opts.preset} (known: ${PRESETS.join(', ')})`);
  if (opts.preset !== undefined && opts.nodes !== undefined) throw new Error('--nodes and --preset are exclusive');
  const prefix = labPrefix(opts.name);
  const names = nodeNames(opts);
  const subnetCount = mode === 'crosssubnet' ? 2 : 1;
  const subnets: SubnetPlan[] = Array.from({ length: subnetCount }, (_, i) => ({
    index: i,
    cidr: `10.0.${i}.0/24`,
    gateway: `10.0.${i}.1`,
    prefixLen: 24,
    bridge: `br${i}`,
  }));
  // crosssubnet: the first half of the nodes on 10.0.0.0/24, the rest on 10.0.1.0/24
  // (for the seed preset: masters on one, workers on the other).
  const firstHalf = subnetCount === 1 ? names.length : Math.ceil(names.length / 2);
  const nodes: NodePlan[] = names.map((name, i) => {
    const subnet = i < firstHalf ? 0 : 1;
    const host = 11 + (subnet === 0 ? i : i - firstHalf);
    return { name, ns: `${prefix}${name}`, address: `10.0.${subnet}.${host}`, subnet, lanIf: `n${i}` };
  });
  const notes: string[] = [];
  const pool: PoolPlan = {
    name: opts.preset === 'seed' ? 'default-pool' : 'default-ipv4-ippool',
    cidr: '10.233.64.0/18',
    blockSize: 24,
    ipipMode: 'Never',
    vxlanMode: mode === 'vxlan' ? 'Always' : mode === 'crosssubnet' ? 'CrossSubnet' : 'Never',
    natOutgoing: true,
  };
  if (opts.preset === 'seed' && mode === 'bgp') {
    notes.push('seed pool has ipipMode: Always; this kernel has no IPIP, so the lab uses ipipMode: Never (plain BGP routes, node-to-node mesh kept)');
  }
  return {
    name: opts.name,
    prefix,
    mode,
    datastore,
    preset: opts.preset,
    lanNs: `${prefix}lan`,
    routerNs: `${prefix}rtr`,
    etcdNs: datastore === 'etcd' ? `${prefix}etcd` : datastore === 'kubernetes' ? `${prefix}api` : undefined,
    etcdAddress: datastore === 'embedded' ? undefined : '10.0.0.2',
    subnets,
    nodes,
    pool,
    notes,
  };
}

/** Namespaces of the plan in creation order (pods excluded). */
export function planNamespaces(plan: LabPlan): string[] {
  return [plan.lanNs, plan.routerNs, ...(plan.etcdNs ? [plan.etcdNs] : []), ...plan.nodes.map((n) => n.ns)];
}

export interface PodRef {
  namespace: string;
  name: string;
}

export function parsePodRef(text: string): PodRef {
  const i = text.indexOf('/');
  if (i <= 0 || i === text.length - 1) throw new Error(`expected NAMESPACE/POD, got ${JSON.stringify(text)}`);
  const ref = { namespace: text.slice(0, i), name: text.slice(i + 1) };
  if (!K8S_NS_RE.test(ref.namespace)) throw new Error(`invalid namespace ${JSON.stringify(ref.namespace)}`);
  if (!POD_NAME_RE.test(ref.name)) throw new Error(`invalid pod name ${JSON.stringify(ref.name)}`);
  return ref;
}

export function podKey(ref: PodRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/**
 * The pod's network namespace: `<prefix>pod-<ns>.<pod>` (a k8s namespace has no '.', so this is
 * unique), or a hash when that would be too long for a comfortable file name.
 */
export function podNsName(lab: string, ref: PodRef): string {
  const plain = `${labPrefix(lab)}pod-${ref.namespace}.${ref.name}`;
  if (plain.length <= 64) return plain;
  return `${labPrefix(lab)}pod-${sha(podKey(ref)).slice(0, 16)}`;
}

/** The container ID the lab's "runtime" passes to CNI. */
export function containerId(lab: string, ref: PodRef): string {
  return `tl${sha(`${lab}\0${podKey(ref)}`).slice(0, 30)}`;
}

function sha(s: string): string {
  return createHash('sha1').update(s).digest('hex');
}

export function validateNodeName(name: string): void {
  if (!NODE_NAME_RE.test(name)) throw new Error(`invalid node name ${JSON.stringify(name)}`);
}

export interface ServeSpec {
  port: number;
  proto: 'tcp' | 'udp';
}

/** `80,53/udp,8080/tcp` → specs. */
export function parseServe(text: string): ServeSpec[] {
  return text
    .split(',')
    .filter((s) => s !== '')
    .map((item) => {
      const m = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(item.trim());
      const port = m ? Number(m[1]) : NaN;
      if (!m || port < 1 || port > 65535) throw new Error(`invalid --serve item ${JSON.stringify(item)}: PORT[/tcp|/udp]`);
      return { port, proto: (m[2] as 'tcp' | 'udp' | undefined) ?? 'tcp' };
    });
}

/** `k=v,k2=v2` → labels. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of text.split(',')) {
    if (item === '') continue;
    const i = item.indexOf('=');
    if (i <= 0) throw new Error(`invalid label ${JSON.stringify(item)}: expected key=value`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** The environment of one node's tortie-node (the datastore variables are added by the caller). */
export function agentEnv(plan: LabPlan, node: NodePlan, dirs: { runDir: string; stateDir: string }): Record<string, string> {
  const subnet = plan.subnets[node.subnet]!;
  return {
    NODENAME: node.name,
    TORTIE_RUN_DIR: dirs.runDir,
    TORTIE_STATE_DIR: dirs.stateDir,
    IP: `${node.address}/${subnet.prefixLen}`,
    CALICO_IPV4POOL_CIDR: plan.pool.cidr,
    CALICO_IPV4POOL_BLOCK_SIZE: String(plan.pool.blockSize),
    CALICO_IPV4POOL_IPIP: plan.pool.ipipMode,
    CALICO_IPV4POOL_VXLAN: plan.pool.vxlanMode,
    CALICO_IPV4POOL_NAT_OUTGOING: String(plan.pool.natOutgoing),
    CALICO_NETWORKING_BACKEND: plan.mode === 'bgp' ? 'bird' : 'vxlan',
    CLUSTER_TYPE: 'tortie-lab,' + (plan.mode === 'bgp' ? 'bgp' : 'vxlan'),
    // As Calico's manifests set it: the lab waits on /readiness.
    FELIX_HEALTHENABLED: 'true',
    FELIX_HEALTHHOST: '127.0.0.1',
  };
}

/** The IP pool as a v3 resource for `tortiectl apply`. */
export function poolResource(pool: PoolPlan): Record<string, unknown> {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'IPPool',
    metadata: { name: pool.name },
    spec: {
      cidr: pool.cidr,
      blockSize: pool.blockSize,
      ipipMode: pool.ipipMode,
      vxlanMode: pool.vxlanMode,
      natOutgoing: pool.natOutgoing,
      nodeSelector: 'all()',
    },
  };
}
