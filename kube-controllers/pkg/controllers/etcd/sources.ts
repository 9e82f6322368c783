// The Kubernetes side of each etcd-mode controller, as datastore keys: one Kubernetes resource
// each, so that a controller reads (and needs RBAC for) only its own resource. Namespaces and
// ServiceAccounts use the Kubernetes datastore's conversions (profile.ts) through its paged,
// resuming Source; Kubernetes NetworkPolicies and pods are the derived kinds' own handlers.
import { resourceKey } from '../../../../libcalico-go/lib/backend/keys.js';
import type { KubeClient } from '../../../../libcalico-go/lib/backend/kubernetes/client.js';
import { KubernetesNetworkPolicyHandler, WorkloadEndpointHandler } from '../../../../libcalico-go/lib/backend/kubernetes/derived/index.js';
import type { K8sNamespace, K8sServiceAccount } from '../../../../libcalico-go/lib/backend/kubernetes/derived/k8s-objects.js';
import { profileFromNamespace, profileFromServiceAccount } from '../../../../libcalico-go/lib/backend/kubernetes/derived/profile.js';
import { encodeValue, Source, watchSource } from '../../../../libcalico-go/lib/backend/kubernetes/derived/source.js';
import type { EtcdControllerName, MirrorSource } from './mirror.js';

function profiles<T extends K8sNamespace | K8sServiceAccount>(client: KubeClient, resource: string, convert: (o: T) => ReturnType<typeof profileFromNamespace>): MirrorSource {
  const source = new Source<T>(client, {
    resource,
    path: () => `/api/v1/${resource}`,
    convert: (o) => {
      const p = convert(o);
      return { key: resourceKey('Profile', p.metadata.name), value: encodeValue(p) };
    },
  });
  return {
    list: async (prefix) => {
      const { items, revision } = await source.list(prefix, undefined);
      return { items, revision };
    },
    watch: (prefix, opts = {}) => watchSource(source, prefix, undefined, opts),
  };
}

/** The Kubernetes side of an etcd-mode controller. */
export function kubernetesSource(client: KubeClient, controller: EtcdControllerName): MirrorSource {
  switch (controller) {
    case 'namespace':
      return profiles<K8sNamespace>(client, 'namespaces', profileFromNamespace);
    case 'serviceaccount':
      return profiles<K8sServiceAccount>(client, 'serviceaccounts', profileFromServiceAccount);
    case 'policy':
      return new KubernetesNetworkPolicyHandler(client);
    case 'workloadendpoint':
      return new WorkloadEndpointHandler(client);
  }
}
