// Calico Profiles from Kubernetes Namespaces and ServiceAccounts (reference calico.md §4.5,
// calico-k8s.md §1.3). Pure: no I/O. Read-only kinds.
//
// `kns.<ns>`: allow all in and out, labelsToApply `pcns.<label>` for every namespace label plus
// `pcns.projectcalico.org/name: <ns>`. `ksa.<ns>.<sa>`: labelsToApply `pcsa.<label>` plus
// `pcsa.projectcalico.org/name: <sa>`, no rules. `projectcalico-default-allow`: synthetic, allow all.
// Revisions combine the two Kubernetes sources: "<namespaceRV>/<serviceAccountRV>". The uid is the
// Kubernetes object's converted as Calico v3.28+ does (uid.ts).
import { API_VERSION } from '../../../apis/v3/kinds.js';
import type { Resource } from '../../../apis/v3/resource.js';
import { InvalidDerivedValueError } from './errors.js';
import type { K8sNamespace, K8sServiceAccount } from './k8s-objects.js';
import { derivedUID } from './uid.js';

export const NAMESPACE_PROFILE_PREFIX = 'kns.';
export const SERVICE_ACCOUNT_PROFILE_PREFIX = 'ksa.';
export const NAMESPACE_LABEL_PREFIX = 'pcns.';
export const SERVICE_ACCOUNT_LABEL_PREFIX = 'pcsa.';
export const DEFAULT_ALLOW_PROFILE = 'projectcalico-default-allow';
const NAME_LABEL = 'projectcalico.org/name';

const allowAll = () => ({ ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }] });

function meta(name: string, obj: K8sNamespace, revision: string): Resource['metadata'] {
  const m: Resource['metadata'] = { name };
  const uid = derivedUID(obj.metadata?.uid);
  if (uid) m.uid = uid;
  if (obj.metadata?.creationTimestamp) m.creationTimestamp = obj.metadata.creationTimestamp;
  m.resourceVersion = revision;
  return m;
}

function prefixed(prefix: string, labels: Record<string, string> | undefined, name: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels ?? {})) out[prefix + k] = v;
  out[prefix + NAME_LABEL] = name;
  return out;
}

/** The `kns.<ns>` Profile of a Namespace; its revision is "<nsRV>/". */
export function profileFromNamespace(ns: K8sNamespace): Resource {
  const name = ns.metadata?.name ?? '';
  return {
    apiVersion: API_VERSION,
    kind: 'Profile',
    metadata: meta(NAMESPACE_PROFILE_PREFIX + name, ns, joinProfileRevisions(ns.metadata?.resourceVersion ?? '', '')),
    spec: { ...allowAll(), labelsToApply: prefixed(NAMESPACE_LABEL_PREFIX, ns.metadata?.labels, name) },
  };
}

/** The `ksa.<ns>.<sa>` Profile of a ServiceAccount; its revision is "/<saRV>". */
export function profileFromServiceAccount(sa: K8sServiceAccount): Resource {
  const name = sa.metadata?.name ?? '';
  const ns = sa.metadata?.namespace ?? 'default';
  return {
    apiVersion: API_VERSION,
    kind: 'Profile',
    metadata: meta(`${SERVICE_ACCOUNT_PROFILE_PREFIX}${ns}.${name}`, sa, joinProfileRevisions('', sa.metadata?.resourceVersion ?? '')),
    spec: { labelsToApply: prefixed(SERVICE_ACCOUNT_LABEL_PREFIX, sa.metadata?.labels, name) },
  };
}

/** The synthetic `projectcalico-default-allow` Profile (never stored; no revision). */
export function defaultAllowProfile(): Resource {
  return { apiVersion: API_VERSION, kind: 'Profile', metadata: { name: DEFAULT_ALLOW_PROFILE }, spec: allowAll() };
}

/** "<nsRV>/<saRV>"; either side may be empty. */
export function joinProfileRevisions(nsRev: string, saRev: string): string {
  return `${nsRev}/${saRev}`;
}

/**
 * The two halves of a combined Profile revision. "" and "0" mean "none" (both halves empty); anything
 * else without exactly one "/" is invalid.
 */
export function splitProfileRevision(rev: string): { nsRev: string; saRev: string } {
  if (rev === '' || rev === '0') return { nsRev: '', saRev: '' };
  const parts = rev.split('/');
  if (parts.length !== 2) {
    throw new InvalidDerivedValueError(`invalid profile revision ${JSON.stringify(rev)}: want "<namespace revision>/<service account revision>"`);
  }
  return { nsRev: parts[0]!, saRev: parts[1]! };
}

export type ProfileSource =
  | { kind: 'namespace'; namespace: string }
  | { kind: 'serviceaccount'; namespace: string; serviceAccount: string }
  | { kind: 'default-allow' };

/**
 * Which Kubernetes object a Profile name comes from; null for a name no Kubernetes object gives.
 * A namespace has no ".", so `ksa.<ns>.<sa>` splits at the first "." after the prefix.
 */
export function profileSource(name: string): ProfileSource | null {
  if (name === DEFAULT_ALLOW_PROFILE) return { kind: 'default-allow' };
  if (name.startsWith(NAMESPACE_PROFILE_PREFIX)) {
    const ns = name.slice(NAMESPACE_PROFILE_PREFIX.length);
    return ns !== '' && !ns.includes('.') ? { kind: 'namespace', namespace: ns } : null;
  }
  if (name.startsWith(SERVICE_ACCOUNT_PROFILE_PREFIX)) {
    const rest = name.slice(SERVICE_ACCOUNT_PROFILE_PREFIX.length);
    const dot = rest.indexOf('.');
    if (dot <= 0 || dot === rest.length - 1) return null;
    return { kind: 'serviceaccount', namespace: rest.slice(0, dot), serviceAccount: rest.slice(dot + 1) };
  }
  return null;
}
