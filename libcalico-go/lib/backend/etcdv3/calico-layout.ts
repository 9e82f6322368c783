// Where Calico's etcdv3 backend keeps the few objects whose etcd key or value is not simply
// "the v3 object at resourceKey(kind, name)". Tortie's layers above the backend use resourceKey for
// everything; the etcd backend translates, both ways, so that Calico's calicoctl and Tortie read
// each other's writes (libcalico-go/lib/backend/calico-interop.test.ts runs both against one etcd):
//
// * Tiered policies (GlobalNetworkPolicy, NetworkPolicy): Calico v3.29's clientv3 addresses them by
//   the tiered name, so a policy `foo` in tier `default` is stored at `.../default.foo` with
//   `metadata.name: default.foo` (v3.30 keeps that key and adds the original name in the
//   `projectcalico.org/metadata` annotation). Reads give the name back without `default.` (or the
//   annotation's), add the `projectcalico.org/tier` label and fill `spec.tier`, as Calico's reads do.
// * IPAM configuration: Calico's IPAM keeps it at `/calico/ipam/v2/config` as its model
//   (`{"strict_affinity":…, "auto_allocate_blocks":…, "maxBlocksPerHost":…}`, omitempty), not as a v3
//   IPAMConfiguration; Tortie's resourceKey('IPAMConfiguration', 'default') maps there.
// * Profile `projectcalico-default-allow`: never stored; Calico's get and list of profiles return it.
import type { KVPair } from '../api.js';
import { DEFAULT_ALLOW_PROFILE, defaultAllowProfile } from '../kubernetes/derived/profile.js';
import { TIER_LABEL, tieredName, tierOf, untieredName } from '../kubernetes/mapping.js';

const RESOURCES = '/calico/resources/v3/projectcalico.org/';
const POLICY_PLURALS = new Set(['globalnetworkpolicies', 'networkpolicies']);
const METADATA_ANNOTATION = 'projectcalico.org/metadata';

export const IPAM_CONFIG_RESOURCE_KEY = `${RESOURCES}ipamconfigurations/default`;
export const CALICO_IPAM_CONFIG_KEY = '/calico/ipam/v2/config';
export const PROFILES_PREFIX = `${RESOURCES}profiles/`;
export const DEFAULT_ALLOW_KEY = `${PROFILES_PREFIX}${DEFAULT_ALLOW_PROFILE}`;

type Obj = Record<string, unknown>;

/** A policy key's parts: the text before the name, and the name. */
function policyKey(key: string): { head: string; name: string } | null {
  if (!key.startsWith(RESOURCES)) return null;
  const parts = key.slice(RESOURCES.length).split('/');
  const plural = parts[0] ?? '';
  if (!POLICY_PLURALS.has(plural)) return null;
  if (parts.length !== (plural === 'networkpolicies' ? 3 : 2)) return null;
  const name = parts.at(-1) ?? '';
  if (name === '') return null;
  return { head: key.slice(0, key.length - name.length), name };
}

/** The etcd key Calico uses for Tortie's key. */
export function storedKey(key: string): string {
  if (key === IPAM_CONFIG_RESOURCE_KEY) return CALICO_IPAM_CONFIG_KEY;
  const p = policyKey(key);
  return p ? p.head + tieredName(p.name) : key;
}

/** The etcd prefix to list or watch for Tortie's prefix. */
export function storedPrefix(prefix: string): string {
  if (prefix === `${RESOURCES}ipamconfigurations/` || prefix === IPAM_CONFIG_RESOURCE_KEY) return CALICO_IPAM_CONFIG_KEY;
  return storedKey(prefix);
}

function parse(value: string): Obj | null {
  try {
    const v = JSON.parse(value) as unknown;
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : null;
  } catch {
    return null;
  }
}

/** The value Calico stores for Tortie's value at Tortie's key. */
export function storedValue(key: string, value: string): string {
  if (key === IPAM_CONFIG_RESOURCE_KEY) {
    const spec = (parse(value)?.spec ?? {}) as Obj;
    const model: Obj = {};
    if (spec.strictAffinity === true) model.strict_affinity = true;
    if (spec.autoAllocateBlocks !== false) model.auto_allocate_blocks = true;
    if (typeof spec.maxBlocksPerHost === 'number' && spec.maxBlocksPerHost !== 0) model.maxBlocksPerHost = spec.maxBlocksPerHost;
    return JSON.stringify(model);
  }
  const p = policyKey(key);
  const v = p ? parse(value) : null;
  if (!p || !v) return value;
  const meta = { ...((v.metadata ?? {}) as Obj), name: tieredName(p.name) };
  return JSON.stringify({ ...v, metadata: meta });
}

/** Calico's stored pair in Tortie's form: key, name, tier label and spec.tier as Calico's reads give them. */
export function tortiePair(kv: KVPair): KVPair {
  if (kv.key === CALICO_IPAM_CONFIG_KEY) return { ...kv, key: IPAM_CONFIG_RESOURCE_KEY, value: ipamConfigResource(kv.value) };
  const p = policyKey(kv.key);
  if (!p) return kv;
  const name = untieredName(p.name);
  const v = parse(kv.value);
  return { ...kv, key: p.head + name, value: v ? JSON.stringify(policyResource(v, name, p.name)) : kv.value };
}

/** A value read at a stored key, in Tortie's form (for watch events' previous values). */
export function tortieValue(storedKeyText: string, value: string): string {
  return tortiePair({ key: storedKeyText, value, revision: '0' }).value;
}

function policyResource(v: Obj, keyName: string, storedName: string): Obj {
  const meta = { ...((v.metadata ?? {}) as Obj) };
  let name = keyName;
  const annotations = meta.annotations as Record<string, string> | undefined;
  if (annotations?.[METADATA_ANNOTATION] !== undefined) {
    // Calico v3.30+ keeps the name the user gave in this annotation.
    const saved = parse(annotations[METADATA_ANNOTATION]);
    if (typeof saved?.name === 'string') name = saved.name;
    const rest = { ...annotations };
    delete rest[METADATA_ANNOTATION];
    if (Object.keys(rest).length > 0) meta.annotations = rest;
    else delete meta.annotations;
  }
  meta.name = name;
  const tier = tierOf(storedName);
  const labels = { ...((meta.labels ?? {}) as Record<string, string>) };
  if (labels[TIER_LABEL] === undefined) labels[TIER_LABEL] = tier;
  meta.labels = labels;
  const spec = { ...((v.spec ?? {}) as Obj) };
  if (spec.tier === undefined || spec.tier === '') spec.tier = tier;
  return { ...v, metadata: meta, spec };
}

function ipamConfigResource(value: string): string {
  const m = parse(value) ?? {};
  const spec: Obj = { strictAffinity: m.strict_affinity === true, autoAllocateBlocks: m.auto_allocate_blocks === true };
  if (typeof m.maxBlocksPerHost === 'number') spec.maxBlocksPerHost = m.maxBlocksPerHost;
  return JSON.stringify({ apiVersion: 'projectcalico.org/v3', kind: 'IPAMConfiguration', metadata: { name: 'default' }, spec });
}

/** The synthetic default-allow Profile as a pair (revision 0: never stored). */
export function defaultAllowPair(): KVPair {
  return { key: DEFAULT_ALLOW_KEY, value: JSON.stringify(defaultAllowProfile()), revision: '0' };
}
