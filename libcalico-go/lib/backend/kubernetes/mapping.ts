// Pure mapping between Tortie's datastore keys/values (Calico's etcd layout, keys.ts) and the
// `crd.projectcalico.org/v1` objects Calico v3.29 keeps in the Kubernetes API. No I/O here: the
// backend (kubernetes.ts) does the requests, this module says which object a key is and what goes
// into and comes out of it.
//
// Facts followed (shared reference calico-k8s.md §1, calico.md §4.4):
// * a v3 resource is its v1 custom resource with the same kind (IPAMConfiguration → IPAMConfig)
//   and the same spec JSON; metadata other than name/namespace/resourceVersion/uid is JSON in the
//   annotation `projectcalico.org/metadata` (v3.28+ form); only labels/annotations whose key
//   contains `projectcalico.org/` or `operator.tigera.io/` are also kept on the CR itself;
// * the v3 uid is the CR's UID bit-reversed (bytes 6 and 8 kept);
// * tiered policy names: a policy without a dot is stored as `default.<name>`;
// * IPAM objects: IPAMBlock named by its CIDR with `.`, `:`, `/` → `-`; BlockAffinity
//   `<host>-<cidrname>`; IPAMHandle the lower-cased handle ID; soft delete through `deleted`.
import { createHash } from 'node:crypto';
import { DatastoreError } from '../api.js';

export const GROUP = 'crd.projectcalico.org';
export const VERSION = 'v1';
export const API_VERSION_V1 = `${GROUP}/${VERSION}`;
export const API_VERSION_V3 = 'projectcalico.org/v3';
export const METADATA_ANNOTATION = 'projectcalico.org/metadata';
export const TIER_LABEL = 'projectcalico.org/tier';

const RESOURCES = '/calico/resources/v3/projectcalico.org/';
const IPAM = '/calico/ipam/v2/';

/** How a CRD kind's objects are encoded as datastore values. */
export type Codec = 'resource' | 'block' | 'affinity' | 'handle';

export interface CRDKind {
  /** Kind of the custom resource (crd.projectcalico.org/v1). */
  crKind: string;
  /** Resource plural in the API path, e.g. `ipamblocks`. */
  crPlural: string;
  namespaced: boolean;
  /** Key prefix of this kind in the datastore, ending in `/`. */
  keyPrefix: string;
  codec: Codec;
  /** The projectcalico.org/v3 kind for `resource` codecs. */
  v3Kind?: string;
  /** Policy kinds whose names get the `default.` tier prefix. */
  tiered?: boolean;
}

const res = (v3Kind: string, plural: string, namespaced = false, crKind = v3Kind, crPlural = plural): CRDKind => ({
  crKind,
  crPlural,
  namespaced,
  keyPrefix: `${RESOURCES}${plural}/`,
  codec: 'resource',
  v3Kind,
  tiered: v3Kind === 'NetworkPolicy' || v3Kind === 'GlobalNetworkPolicy' ? true : undefined,
});

/** Every CRD-backed kind, by key prefix. */
export const CRD_KINDS: readonly CRDKind[] = [
  res('BGPConfiguration', 'bgpconfigurations'),
  res('BGPFilter', 'bgpfilters'),
  res('BGPPeer', 'bgppeers'),
  res('CalicoNodeStatus', 'caliconodestatuses'),
  res('ClusterInformation', 'clusterinformations'),
  res('FelixConfiguration', 'felixconfigurations'),
  res('GlobalNetworkPolicy', 'globalnetworkpolicies'),
  res('GlobalNetworkSet', 'globalnetworksets'),
  res('HostEndpoint', 'hostendpoints'),
  res('IPAMConfiguration', 'ipamconfigurations', false, 'IPAMConfig', 'ipamconfigs'),
  res('IPPool', 'ippools'),
  res('IPReservation', 'ipreservations'),
  res('KubeControllersConfiguration', 'kubecontrollersconfigurations'),
  res('NetworkPolicy', 'networkpolicies', true),
  res('NetworkSet', 'networksets', true),
  res('Tier', 'tiers'),
  { crKind: 'IPAMBlock', crPlural: 'ipamblocks', namespaced: false, keyPrefix: `${IPAM}assignment/`, codec: 'block' },
  { crKind: 'BlockAffinity', crPlural: 'blockaffinities', namespaced: false, keyPrefix: `${IPAM}host/`, codec: 'affinity' },
  { crKind: 'IPAMHandle', crPlural: 'ipamhandles', namespaced: false, keyPrefix: `${IPAM}handle/`, codec: 'handle' },
];

/** Key prefixes of kinds that are not CRDs in the Kubernetes datastore, with what they come from. */
export const DERIVED_PREFIXES: readonly { prefix: string; what: string; from: string }[] = [
  { prefix: `${RESOURCES}nodes/`, what: 'Node', from: 'Kubernetes Nodes' },
  { prefix: `${RESOURCES}workloadendpoints/`, what: 'WorkloadEndpoint', from: 'Kubernetes Pods' },
  { prefix: `${RESOURCES}profiles/`, what: 'Profile', from: 'Kubernetes Namespaces and ServiceAccounts' },
  // Kubernetes NetworkPolicies live among the Calico ones, as <namespace>/knp.default.<name>.
  { prefix: `${RESOURCES}networkpolicies/`, what: 'Kubernetes NetworkPolicy (knp.default.*)', from: 'Kubernetes NetworkPolicies (networking.k8s.io)' },
];

/** Name prefix that marks a Kubernetes NetworkPolicy among the v3 NetworkPolicies. */
export const KNP_PREFIX = 'knp.default.';

export function crdName(k: CRDKind): string {
  return `${k.crPlural}.${GROUP}`;
}

/** The CRD kind a key belongs to (by its prefix), or undefined. */
export function kindOfKey(key: string): CRDKind | undefined {
  return CRD_KINDS.find((k) => key.startsWith(k.keyPrefix));
}

/** True when some key under `prefix` could belong to a kind whose keys start with `kindPrefix`. */
export function prefixOverlaps(prefix: string, kindPrefix: string): boolean {
  return prefix.startsWith(kindPrefix) || kindPrefix.startsWith(prefix);
}

/** Where one key lives: its kind, the CR's namespace and name. */
export interface ObjectRef {
  kind: CRDKind;
  namespace?: string;
  name: string;
}

function bad(key: string, why: string): DatastoreError {
  return new DatastoreError(`key ${JSON.stringify(key)} ${why}`, key);
}

/** CIDR text → the object name Calico uses: `10.0.0.0/26` → `10-0-0-0-26`. */
export function cidrName(cidr: string): string {
  return cidr.replace(/[.:/]/g, '-');
}

/** `10.0.0.0-26` (the key's form) → `10.0.0.0/26`. */
function keyCIDR(part: string): string {
  const i = part.lastIndexOf('-');
  return i < 0 ? part : `${part.slice(0, i)}/${part.slice(i + 1)}`;
}

/** The v1 name of a tiered policy: dot-less names belong to tier `default`. */
export function tieredName(name: string): string {
  return name.includes('.') ? name : `default.${name}`;
}

/** The Tortie (key) name of a stored tiered policy: `default.` is dropped again. */
export function untieredName(crName: string): string {
  return crName.startsWith('default.') && !crName.startsWith(KNP_PREFIX) ? crName.slice('default.'.length) : crName;
}

/** The tier a v1 policy name belongs to. */
export function tierOf(crName: string): string {
  const i = crName.indexOf('.');
  return i < 0 ? 'default' : crName.slice(0, i);
}

/**
 * BlockAffinity object name: `<host>-<cidrname>`. Names of 253 characters or more (the Kubernetes
 * limit) keep the CIDR part and a shortened host followed by 11 hex characters of
 * sha256(host + cidrname), so distinct hosts still get distinct names.
 */
export function affinityName(host: string, cidr: string): string {
  const c = cidrName(cidr);
  const full = `${host}-${c}`;
  if (full.length < 253) return full;
  const hash = createHash('sha256').update(host + c).digest('hex').slice(0, 11);
  const keep = 253 - 1 - c.length - 1 - hash.length - 1;
  return `${host.slice(0, keep)}-${hash}-${c}`;
}

/** The value of label `projectcalico.org/hostname-hash`: base32 (RFC 4648, no padding) of sha3-256(host). */
export function hostnameHash(host: string): string {
  const bytes = createHash('sha3-256').update(host).digest();
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  if (bits > 0) out += alphabet[(acc << (5 - bits)) & 31];
  return out;
}

/** Which object a key names. Throws a DatastoreError naming the key when it maps to none. */
export function refOfKey(key: string): ObjectRef {
  const kind = kindOfKey(key);
  if (!kind) throw bad(key, 'is not stored in the Kubernetes datastore');
  const rest = key.slice(kind.keyPrefix.length);
  const parts = rest.split('/');
  switch (kind.codec) {
    case 'resource': {
      if (kind.namespaced) {
        if (parts.length !== 2 || !parts[0] || !parts[1]) throw bad(key, `is not <namespace>/<name> under ${kind.keyPrefix}`);
        const name = kind.tiered ? tieredName(parts[1]) : parts[1];
        return { kind, namespace: parts[0], name };
      }
      if (parts.length !== 1 || !parts[0]) throw bad(key, `is not <name> under ${kind.keyPrefix}`);
      return { kind, name: kind.tiered ? tieredName(parts[0]) : parts[0] };
    }
    case 'block': {
      // ipv4/block/10.0.0.0-26
      if (parts.length !== 3 || !/^ipv[46]$/.test(parts[0] ?? '') || parts[1] !== 'block' || !parts[2]) {
        throw bad(key, `is not an IPAM block key (${kind.keyPrefix}ipv4/block/<cidr>)`);
      }
      return { kind, name: cidrName(keyCIDR(parts[2])) };
    }
    case 'affinity': {
      // <host>/ipv4/block/10.0.0.0-26
      if (parts.length !== 4 || !parts[0] || !/^ipv[46]$/.test(parts[1] ?? '') || parts[2] !== 'block' || !parts[3]) {
        throw bad(key, `is not a block affinity key (${kind.keyPrefix}<host>/ipv4/block/<cidr>)`);
      }
      return { kind, name: affinityName(parts[0], keyCIDR(parts[3])) };
    }
    case 'handle': {
      if (parts.length !== 1 || !parts[0]) throw bad(key, `is not an IPAM handle key (${kind.keyPrefix}<handle>)`);
      return { kind, name: parts[0].toLowerCase() };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// UIDs

/** Reverses the bit order of one byte. */
function reverseByte(b: number): number {
  let r = 0;
  for (let i = 0; i < 8; i++) r |= ((b >> i) & 1) << (7 - i);
  return r;
}

/**
 * The v3 uid of an object whose CR has UID `uid` (and the other way round: the conversion is its
 * own inverse). Every byte is bit-reversed except bytes 6 and 8, which carry the UUID version and
 * variant, so the result is still a valid UUID.
 */
export function convertUID(uid: string): string {
  const hex = uid.replace(/-/g, '');
  if (!/^[0-9a-fA-F]{32}$/.test(hex)) throw new DatastoreError(`invalid UID ${JSON.stringify(uid)}: not a UUID`);
  const bytes = Buffer.from(hex, 'hex');
  for (let i = 0; i < 16; i++) if (i !== 6 && i !== 8) bytes[i] = reverseByte(bytes[i]!);
  const h = bytes.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Objects

export interface K8sMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [k: string]: unknown;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: K8sMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

/** Labels and annotations kept on the CR itself besides the metadata JSON. */
function keptOnCR(key: string): boolean {
  return key.includes('projectcalico.org/') || key.includes('operator.tigera.io/');
}

function filterMap(m: Record<string, string> | undefined, keep: (k: string) => boolean): Record<string, string> | undefined {
  if (!m) return undefined;
  const out = Object.fromEntries(Object.entries(m).filter(([k]) => keep(k)));
  return Object.keys(out).length ? out : undefined;
}

function parseValue(key: string, value: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(value);
  } catch (e) {
    throw bad(key, `has a value that is not JSON (${(e as Error).message}); the Kubernetes datastore stores objects`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(key, 'has a value that is not a JSON object');
  return v as Record<string, unknown>;
}

/**
 * The custom resource for `value` stored at `ref`. `resourceVersion` is set for updates (it is the
 * compare-and-swap precondition).
 */
export function toObject(key: string, ref: ObjectRef, value: string, resourceVersion?: string): K8sObject {
  const v = parseValue(key, value);
  const k = ref.kind;
  const metadata: K8sMeta = { name: ref.name };
  if (ref.namespace !== undefined) metadata.namespace = ref.namespace;
  if (resourceVersion !== undefined) metadata.resourceVersion = resourceVersion;
  const obj: K8sObject = { apiVersion: API_VERSION_V1, kind: k.crKind, metadata };
  switch (k.codec) {
    case 'resource': {
      if (v.kind !== undefined && v.kind !== k.v3Kind) {
        throw bad(key, `holds kind ${JSON.stringify(v.kind)}, expected ${k.v3Kind}`);
      }
      const m = (v.metadata ?? {}) as Record<string, unknown>;
      const { name: _n, namespace: _ns, resourceVersion: _rv, uid: _uid, ...rest } = m;
      const tier = k.tiered ? tierOf(ref.name) : undefined;
      if (tier === 'default' && (rest.labels as Record<string, string> | undefined)?.[TIER_LABEL] !== undefined) {
        // Calico stores the tier label only for other tiers (and adds it back on read).
        const { [TIER_LABEL]: _t, ...others } = rest.labels as Record<string, string>;
        if (Object.keys(others).length) rest.labels = others;
        else delete rest.labels;
      }
      const labels = rest.labels as Record<string, string> | undefined;
      const annotations = rest.annotations as Record<string, string> | undefined;
      const crLabels = filterMap(labels, keptOnCR) ?? {};
      if (tier !== undefined && tier !== 'default') crLabels[TIER_LABEL] = tier;
      if (Object.keys(crLabels).length) metadata.labels = crLabels;
      metadata.annotations = { ...(filterMap(annotations, keptOnCR) ?? {}), [METADATA_ANNOTATION]: JSON.stringify(rest) };
      if (v.spec !== undefined) obj.spec = v.spec as Record<string, unknown>;
      if (v.status !== undefined) obj.status = v.status as Record<string, unknown>;
      return obj;
    }
    case 'block': {
      // strictAffinity is a required field of the CRD (Calico's model always writes it).
      const { affinity, ...spec } = v;
      const withStrict = { ...spec, strictAffinity: spec.strictAffinity === true };
      obj.spec = affinity === null || affinity === undefined ? withStrict : { affinity, ...withStrict };
      return obj;
    }
    case 'affinity': {
      const m = /^\/calico\/ipam\/v2\/host\/([^/]+)\/ipv([46])\/block\/(.+)$/.exec(key)!;
      const cidr = keyCIDR(m[3]!);
      metadata.labels = {
        'projectcalico.org/hostname-hash': hostnameHash(m[1]!),
        'projectcalico.org/affinity-type': 'host',
        'projectcalico.org/ip-version': m[2]!,
      };
      obj.spec = {
        state: typeof v.state === 'string' ? v.state : 'confirmed',
        node: m[1],
        type: 'host',
        cidr,
        deleted: v.deleted === true ? 'true' : 'false',
      };
      return obj;
    }
    case 'handle': {
      const handleID = key.slice(k.keyPrefix.length);
      obj.spec = { handleID, block: v.block ?? {}, deleted: v.deleted === true };
      return obj;
    }
  }
}

/** True for an IPAM object left soft-deleted (`deleted` set): readers treat it as absent. */
export function isSoftDeleted(k: CRDKind, obj: K8sObject): boolean {
  const d = obj.spec?.deleted;
  if (k.codec === 'affinity') return d === 'true' || d === true;
  if (k.codec === 'block' || k.codec === 'handle') return d === true;
  return false;
}

/** The same object with its soft-delete mark set. */
export function softDeleted(k: CRDKind, obj: K8sObject): K8sObject {
  return { ...obj, spec: { ...obj.spec, deleted: k.codec === 'affinity' ? 'true' : true } };
}

/** v3 metadata of a stored CR: either form Calico has written (v3.28+ or older). */
export function v3Metadata(k: CRDKind, obj: K8sObject, keyName: string): Record<string, unknown> {
  const cr = obj.metadata;
  const ann = cr.annotations ?? {};
  let stored: Record<string, unknown> = {};
  if (ann[METADATA_ANNOTATION] !== undefined) {
    try {
      const p = JSON.parse(ann[METADATA_ANNOTATION]) as unknown;
      if (typeof p === 'object' && p !== null && !Array.isArray(p)) stored = p as Record<string, unknown>;
    } catch {
      // an unreadable annotation leaves only the CR's own metadata
    }
  }
  const out: Record<string, unknown> = { name: keyName };
  if (cr.namespace !== undefined) out.namespace = cr.namespace;
  // Pre-3.28 objects carry the v3 uid in the JSON; 3.28+ derive it from the CR's UID.
  const uid = typeof stored.uid === 'string' ? stored.uid : cr.uid ? convertUID(cr.uid) : undefined;
  const { uid: _u, labels: jl, annotations: ja, ...rest } = stored;
  if (uid !== undefined) out.uid = uid;
  if (rest.creationTimestamp === undefined && cr.creationTimestamp !== undefined) rest.creationTimestamp = cr.creationTimestamp;
  Object.assign(out, rest);
  // Labels/annotations: the JSON's (3.28+) merged with those on the CR (before 3.28 all were there).
  const crAnn = { ...ann };
  delete crAnn[METADATA_ANNOTATION];
  const labels = { ...(cr.labels ?? {}), ...((jl as Record<string, string>) ?? {}) };
  // As Calico v3.29 on read: a tiered policy always carries its tier label.
  if (k.tiered && labels[TIER_LABEL] === undefined) labels[TIER_LABEL] = tierOf(cr.name);
  const annotations = { ...crAnn, ...((ja as Record<string, string>) ?? {}) };
  if (Object.keys(labels).length) out.labels = labels;
  if (Object.keys(annotations).length) out.annotations = annotations;
  return out;
}

/**
 * IPPools written by Calico v1-era tools may still carry `spec.ipip` ({enabled, mode}) and
 * `spec.nat-outgoing`; Calico folds them into `ipipMode` / `natOutgoing` on read, and so does Tortie
 * (an explicit ipipMode wins; mode "cross-subnet" → CrossSubnet, other enabled modes → Always,
 * disabled → Never).
 */
export function foldIPPoolV1(spec: Record<string, unknown>): Record<string, unknown> {
  if (spec.ipip === undefined && spec['nat-outgoing'] === undefined) return spec;
  const { ipip, 'nat-outgoing': nat, ...out } = spec;
  if (ipip && typeof ipip === 'object' && out.ipipMode === undefined) {
    const i = ipip as { enabled?: boolean; mode?: string };
    out.ipipMode = i.enabled ? (String(i.mode ?? '').toLowerCase() === 'cross-subnet' ? 'CrossSubnet' : 'Always') : 'Never';
  }
  if (nat === true) out.natOutgoing = true;
  return out;
}

/** The datastore key and value of a stored custom resource; null for one no key maps to. */
export function fromObject(k: CRDKind, obj: K8sObject): { key: string; value: string } | null {
  const name = obj.metadata.name;
  switch (k.codec) {
    case 'resource': {
      const keyName = k.tiered ? untieredName(name) : name;
      if (k.tiered && name.startsWith(KNP_PREFIX)) return null;
      const key = k.namespaced ? `${k.keyPrefix}${obj.metadata.namespace}/${keyName}` : `${k.keyPrefix}${keyName}`;
      const v: Record<string, unknown> = { kind: k.v3Kind, apiVersion: API_VERSION_V3, metadata: v3Metadata(k, obj, keyName) };
      if (obj.spec !== undefined) v.spec = k.v3Kind === 'IPPool' ? foldIPPoolV1(obj.spec) : obj.spec;
      // … and its spec.tier, from the name's prefix when unset.
      if (k.tiered && (obj.spec === undefined || obj.spec.tier === undefined || obj.spec.tier === '')) v.spec = { ...(obj.spec ?? {}), tier: tierOf(name) };
      if (obj.status !== undefined) v.status = obj.status;
      return { key, value: JSON.stringify(v) };
    }
    case 'block': {
      const spec = obj.spec ?? {};
      const cidr = String(spec.cidr ?? '');
      if (!cidr.includes('/')) return null;
      const fam = cidr.includes(':') ? 'ipv6' : 'ipv4';
      const { affinity, strictAffinity, ...rest } = spec;
      // Tortie's block model has no strictAffinity: kept in the value only when set.
      const value = { cidr, affinity: affinity ?? null, ...rest, deleted: spec.deleted === true, ...(strictAffinity === true ? { strictAffinity } : {}) };
      return { key: `${k.keyPrefix}${fam}/block/${cidr.replace('/', '-')}`, value: JSON.stringify(value) };
    }
    case 'affinity': {
      const spec = obj.spec ?? {};
      const cidr = String(spec.cidr ?? '');
      const node = String(spec.node ?? '');
      if (!cidr.includes('/') || !node) return null;
      const fam = cidr.includes(':') ? 'ipv6' : 'ipv4';
      const value = { state: String(spec.state ?? 'confirmed'), deleted: spec.deleted === 'true' || spec.deleted === true };
      return { key: `${k.keyPrefix}${node}/${fam}/block/${cidr.replace('/', '-')}`, value: JSON.stringify(value) };
    }
    case 'handle': {
      const spec = obj.spec ?? {};
      const id = typeof spec.handleID === 'string' && spec.handleID ? spec.handleID : name;
      const value = { block: spec.block ?? {}, deleted: spec.deleted === true };
      return { key: `${k.keyPrefix}${id}`, value: JSON.stringify(value) };
    }
  }
}

/** The API path of a kind's collection (optionally in one namespace) or of one object. */
export function apiPath(k: CRDKind, namespace?: string, name?: string): string {
  const ns = k.namespaced && namespace !== undefined ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  const n = name !== undefined ? `/${encodeURIComponent(name)}` : '';
  return `/apis/${GROUP}/${VERSION}${ns}/${k.crPlural}${n}`;
}
