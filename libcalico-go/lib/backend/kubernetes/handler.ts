// Kinds that are not custom resources in the Kubernetes datastore (Node, WorkloadEndpoint,
// Profile, Kubernetes NetworkPolicy as `knp.default.*`) are derived from core Kubernetes objects.
// The Kubernetes backend (kubernetes.ts) owns the CRD-backed kinds itself and hands every key of a
// derived kind to a KindHandler; this file is the whole contract between the two.
//
// How the backend uses a handler
// * Dispatch is by key: a key is the handler's when it starts with `prefix` and, if the handler
//   has `owns`, `owns(key)` is true. `owns` exists for Kubernetes NetworkPolicies, which share the
//   prefix `/calico/resources/v3/projectcalico.org/networkpolicies/` with Calico's own (their keys
//   are `<prefix><namespace>/knp.default.<name>`): the backend asks the handler first and keeps
//   the other NetworkPolicy keys for the `networkpolicies.crd.projectcalico.org` objects.
// * Single-key calls (get/create/update/apply/delete) are forwarded unchanged, with the exact key
//   and value strings of the etcd layout (libcalico-go/lib/backend/keys.ts; the value is the JSON of
//   the projectcalico.org/v3 object without metadata.resourceVersion, as every backend stores it).
// * list(prefix): the backend calls `list` of every handler whose key space overlaps the prefix
//   (prefix starts with handler.prefix, or handler.prefix starts with prefix) and merges the items
//   with its own, sorted by key. The handler returns only keys it owns that start with `prefix`.
//   `opts.revision`, when given, asks for the list at exactly that resourceVersion (Kubernetes
//   `resourceVersion=<r>&resourceVersionMatch=Exact`), so that a list spanning several kinds is one
//   snapshot; a handler that cannot honour it (e.g. a revision joined from two resources) may
//   list at its own latest and return that revision instead. The merged list's revision is the
//   largest of the parts.
// * watch(prefix, opts): as Backend.watch, limited to the handler's keys under `prefix`. The
//   backend merges the events of all overlapping handlers and its own CRD watches into one stream;
//   order is guaranteed per handler only. A too-old `afterRevision` (Kubernetes 410 Gone / "too old
//   resource version") must make the iterator throw CompactedError; `opts.signal` ends it without
//   error.
// * Errors: throw the classes of ../api.ts (NotFoundError, AlreadyExistsError, ConflictError,
//   CompactedError, UnavailableError, DatastoreError) with `key` set and a message naming the key;
//   `KubeClient.request` already maps HTTP statuses to them (see kubernetes.ts). Writes Calico does
//   not support for a kind (e.g. creating a Node) throw a DatastoreError saying so.
// * Revisions are the Kubernetes objects' resourceVersions (decimal strings). Within one cluster
//   they all come from one etcd, so the backend compares them as integers (kubernetes.ts,
//   `maxRevision`), although Kubernetes calls them opaque.
//
// Construction: `(client: KubeClient) => KindHandler`. Register factories in the backend's
// options (`KubernetesBackendOptions.handlers`); a derived prefix without a handler answers every
// call with a DatastoreError saying the kind is derived and not implemented yet — never an empty
// result.
import type { KVPair, ListResult, WatchEvent, WatchOptions } from '../api.js';
import type { KubeClient } from './client.js';

export interface KindHandler {
  /** Key prefix of the handler's keys, ending in `/`, e.g. `/calico/resources/v3/projectcalico.org/nodes/`. */
  readonly prefix: string;
  /** Claims a subset of `prefix` (Kubernetes NetworkPolicies among NetworkPolicies); absent = all of it. */
  owns?(key: string): boolean;
  get(key: string): Promise<KVPair | null>;
  list(prefix: string, opts?: { revision?: string }): Promise<ListResult>;
  create(key: string, value: string): Promise<KVPair>;
  update(key: string, value: string, revision: string): Promise<KVPair>;
  apply(key: string, value: string): Promise<KVPair>;
  delete(key: string, revision?: string): Promise<KVPair>;
  watch(prefix: string, opts?: WatchOptions): AsyncIterable<WatchEvent>;
}

export type KindHandlerFactory = (client: KubeClient) => KindHandler;
