// The parts of Kubernetes objects the derived kinds read, as the API server sends them (plain JSON).
// Only the fields used here are typed; everything else passes through untouched.

export interface K8sObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [extra: string]: unknown;
}

export interface K8sObject {
  apiVersion?: string;
  kind?: string;
  metadata?: K8sObjectMeta;
  [extra: string]: unknown;
}

export interface K8sNodeAddress {
  type: string;
  address: string;
}

export interface K8sNode extends K8sObject {
  spec?: { podCIDR?: string; podCIDRs?: string[]; [extra: string]: unknown };
  status?: { addresses?: K8sNodeAddress[]; [extra: string]: unknown };
}

export interface K8sContainerPort {
  name?: string;
  containerPort?: number;
  hostPort?: number;
  hostIP?: string;
  protocol?: string;
}

export interface K8sPod extends K8sObject {
  spec?: {
    nodeName?: string;
    hostNetwork?: boolean;
    serviceAccountName?: string;
    containers?: { name?: string; ports?: K8sContainerPort[] }[];
    [extra: string]: unknown;
  };
  status?: { phase?: string; podIP?: string; podIPs?: { ip: string }[]; [extra: string]: unknown };
}

/** A Namespace or a ServiceAccount: only metadata matters. */
export type K8sNamespace = K8sObject;
export type K8sServiceAccount = K8sObject;

export interface K8sList<T extends K8sObject = K8sObject> {
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

/** One line of a Kubernetes watch stream. */
export interface K8sWatchEvent<T extends K8sObject = K8sObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}
