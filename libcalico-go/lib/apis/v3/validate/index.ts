// validateResource: checks a decoded projectcalico.org/v3 object the way Calico's client and
// API server would, fills in the defaults Calico fills in, and returns the canonical object.
//
// Canonical form: object keys sorted at every level (which is how calicoctl prints resources),
// values normalised (CIDR text, enum spelling, AS numbers as numbers, ports/protocols as in
// rules.ts), false values of Calico's omitempty booleans dropped. Server-owned metadata (uid,
// creationTimestamp, resourceVersion, …) is passed through untouched: the client layer owns it.
// All problems are collected and thrown together as one ValidationError.

import { API_VERSION, KINDS, kindInfo } from '../kinds.js';
import { type Issue, ValidationError } from '../errors.js';
import type { ObjectMeta, Resource } from '../resource.js';
import { validateBGPConfigurationSpec, validateBGPPeerSpec } from './bgp.js';
import { validateCalicoNodeStatusSpec } from './caliconodestatus.js';
import { validateClusterInformationSpec } from './clusterinfo.js';
import { type Obj, Ctx, checkKnown, isObj, readObj, sortKeysDeep } from './context.js';
import { validateHostEndpointSpec, validateWorkloadEndpointSpec } from './endpoints.js';
import { validateFelixConfigurationSpec } from './felix.js';
import { validateIPAMConfigurationSpec } from './ipamconfig.js';
import { type IPPoolExisting, validateIPPoolSpec } from './ippool.js';
import { validateIPReservationSpec } from './ipreservation.js';
import { validateKubeControllersConfigurationSpec } from './kubecontrollers.js';
import { checkMetadata } from './metadata.js';
import { validateNetworkSetSpec } from './networkset.js';
import { validateNodeSpec } from './node.js';
import {
  validateGlobalNetworkPolicySpec,
  validateNetworkPolicySpec,
  validateProfileSpec,
  validateTierSpec,
} from './policy.js';

/** Other stored resources some checks need (IPPool overlap). */
export interface ExistingResources extends IPPoolExisting {
  pools?: readonly Resource[];
}

interface SpecArgs {
  ctx: Ctx;
  spec: Obj;
  meta: Obj;
  name: string | undefined;
  namespace: string | undefined;
  labels: Record<string, string>;
  existing: ExistingResources;
}

const specValidators: Record<string, (a: SpecArgs) => Obj> = {
  IPPool: (a) => validateIPPoolSpec(a.ctx, a.spec, a.existing),
  IPReservation: (a) => validateIPReservationSpec(a.ctx, a.spec),
  IPAMConfiguration: (a) => validateIPAMConfigurationSpec(a.ctx, a.spec),
  Node: (a) => validateNodeSpec(a.ctx, a.spec),
  WorkloadEndpoint: (a) => validateWorkloadEndpointSpec(a.ctx, a.spec, a),
  HostEndpoint: (a) => validateHostEndpointSpec(a.ctx, a.spec),
  Profile: (a) => validateProfileSpec(a.ctx, a.spec),
  NetworkPolicy: (a) => validateNetworkPolicySpec(a.ctx, a.spec, a),
  GlobalNetworkPolicy: (a) => validateGlobalNetworkPolicySpec(a.ctx, a.spec, a),
  NetworkSet: (a) => validateNetworkSetSpec(a.ctx, a.spec, a.labels),
  GlobalNetworkSet: (a) => validateNetworkSetSpec(a.ctx, a.spec, a.labels),
  Tier: (a) => validateTierSpec(a.ctx, a.spec),
  BGPConfiguration: (a) => validateBGPConfigurationSpec(a.ctx, a.spec),
  BGPPeer: (a) => validateBGPPeerSpec(a.ctx, a.spec),
  FelixConfiguration: (a) => validateFelixConfigurationSpec(a.ctx, a.spec),
  ClusterInformation: (a) => validateClusterInformationSpec(a.ctx, a.spec),
  KubeControllersConfiguration: (a) => validateKubeControllersConfigurationSpec(a.ctx, a.spec),
  CalicoNodeStatus: (a) => validateCalicoNodeStatusSpec(a.ctx, a.spec),
};

/** Kinds whose Calico type has a status block (passed through unchecked; the owner writes it). */
const WITH_STATUS = new Set(['IPPool', 'Tier', 'NetworkPolicy', 'GlobalNetworkPolicy', 'Node', 'KubeControllersConfiguration', 'CalicoNodeStatus']);

function fail(kind: string, name: string | undefined, path: string, value: unknown, message: string): never {
  const issue: Issue = { path, value, message: `${path}: ${message}` };
  throw new ValidationError(kind, name, undefined, [issue]);
}

/**
 * Validates one resource and returns its canonical, defaulted form; throws ValidationError naming
 * the resource, each offending field path and value. `existing.pools` are the stored IPPools (a
 * new pool may not overlap any of them other than one with its own name).
 */
export function validateResource(r: unknown, existing: ExistingResources = {}): Resource {
  if (!isObj(r)) fail('', undefined, 'resource', r, `expected an object with apiVersion, kind, metadata and spec, not ${JSON.stringify(r)}`);
  const rawName = isObj(r.metadata) && typeof r.metadata.name === 'string' && r.metadata.name !== '' ? r.metadata.name : undefined;

  const kind = r.kind;
  if (kind === undefined || kind === null || kind === '') fail('', rawName, 'kind', kind, 'required field is missing');
  if (typeof kind !== 'string') fail('', rawName, 'kind', kind, `${JSON.stringify(kind)} is not a kind name`);
  const info = kindInfo(kind);
  if (!info) {
    const near = KINDS.find((k) => k.kind.toLowerCase() === kind.toLowerCase() || k.plural === kind.toLowerCase());
    fail(
      kind,
      rawName,
      'kind',
      kind,
      `${JSON.stringify(kind)} is not a known projectcalico.org/v3 kind${near ? ` (did you mean ${JSON.stringify(near.kind)}?)` : ''}; known kinds: ${KINDS.map((k) => k.kind).join(', ')}`,
    );
  }

  const rawNs = info.namespaced && isObj(r.metadata) && typeof r.metadata.namespace === 'string' && r.metadata.namespace !== '' ? r.metadata.namespace : info.namespaced ? 'default' : undefined;
  const ctx = new Ctx(kind, rawName, rawNs);

  if (r.apiVersion === undefined || r.apiVersion === null || r.apiVersion === '') ctx.missing('apiVersion', API_VERSION);
  else if (r.apiVersion !== API_VERSION) ctx.invalid('apiVersion', r.apiVersion, `is not supported (expected ${JSON.stringify(API_VERSION)})`);

  checkKnown(ctx, r, '', WITH_STATUS.has(kind) ? ['apiVersion', 'kind', 'metadata', 'spec', 'status'] : ['apiVersion', 'kind', 'metadata', 'spec'], 'a resource');

  const m = checkMetadata(ctx, r, info, kind === 'WorkloadEndpoint');
  if (m.namespace !== undefined) ctx.namespace = m.namespace;

  const spec = readObj(ctx, r, 'spec', '') ?? {};
  const args: SpecArgs = { ctx, spec, meta: m.meta, name: m.name, namespace: m.namespace, labels: m.labels, existing };
  const validateSpec = specValidators[kind];
  if (!validateSpec) throw new Error(`no spec validator for kind ${kind}`);
  const outSpec = validateSpec(args);

  if (ctx.failed) throw ctx.error();

  const out: Resource = {
    apiVersion: API_VERSION,
    kind,
    metadata: args.meta as ObjectMeta,
    spec: outSpec,
  };
  if (WITH_STATUS.has(kind) && isObj(r.status)) out.status = r.status;
  return sortKeysDeep(out);
}

/** Validates many resources; returns the canonical ones and the errors, in input order. */
export function validateResources(
  rs: readonly unknown[],
  existing: ExistingResources = {},
): Array<{ resource: Resource; error?: undefined } | { resource?: undefined; error: ValidationError }> {
  return rs.map((r) => {
    try {
      return { resource: validateResource(r, existing) };
    } catch (e) {
      if (e instanceof ValidationError) return { error: e };
      throw e;
    }
  });
}
