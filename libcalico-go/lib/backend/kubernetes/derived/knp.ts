// Kubernetes NetworkPolicy → Calico `knp.default.<name>` (reference calico-k8s.md §1.1, §1.3). Pure.
// The translation itself is libcalico-go/lib/policy/k8s.ts (shared with `tortiectl apply`); this adds
// what the datastore gives: the k8s object's namespace, creationTimestamp, resourceVersion and uid
// (converted, uid.ts).
import type { Resource } from '../../../apis/v3/resource.js';
import { convertK8sNetworkPolicy, K8S_NP_API_VERSION, KNP_PREFIX } from '../../../policy/k8s.js';
import type { K8sObject } from './k8s-objects.js';
import { derivedUID } from './uid.js';

export { KNP_PREFIX };

/** The v3 NetworkPolicy of a networking.k8s.io/v1 NetworkPolicy read from the API. Throws K8sPolicyError. */
export function knpFromK8s(np: K8sObject): Resource {
  // Objects in a list come without apiVersion/kind.
  const doc = { ...np, apiVersion: np.apiVersion ?? K8S_NP_API_VERSION, kind: np.kind ?? 'NetworkPolicy' };
  const out = convertK8sNetworkPolicy(doc);
  const m = np.metadata ?? {};
  const uid = derivedUID(m.uid);
  if (uid) out.metadata.uid = uid;
  if (m.creationTimestamp) out.metadata.creationTimestamp = m.creationTimestamp;
  if (m.resourceVersion) out.metadata.resourceVersion = m.resourceVersion;
  return out;
}

/** The k8s NetworkPolicy name behind a `knp.default.<name>` policy name; null for other names. */
export function knpK8sName(name: string): string | null {
  return name.startsWith(KNP_PREFIX) && name.length > KNP_PREFIX.length ? name.slice(KNP_PREFIX.length) : null;
}
