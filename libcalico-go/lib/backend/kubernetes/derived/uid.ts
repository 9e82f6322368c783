// The v3 uid Calico (v3.28+) gives an object derived from a Kubernetes one: the k8s UID bit-reversed
// (../mapping.ts convertUID), so that the v3 and Kubernetes objects never share a UID.
import { convertUID } from '../mapping.js';

/** The converted UID; undefined when the Kubernetes object has none or it is not a UUID. */
export function derivedUID(uid: string | undefined): string | undefined {
  if (!uid) return undefined;
  try {
    return convertUID(uid);
  } catch {
    return undefined;
  }
}
