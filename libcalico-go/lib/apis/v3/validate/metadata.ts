// metadata: name (per-kind rules), namespace (by kind scope), labels, annotations, and the
// server-set fields the client layer owns (accepted and passed through untouched).

import type { KindInfo } from '../kinds.js';
import { checkDNSLabel, checkLabels, checkSubdomain, qualifiedNameProblem } from './common.js';
import { type Ctx, type Obj, checkKnown, join, put, readObj, readString, readStringMap } from './context.js';

/** Kubernetes ObjectMeta fields: the name/namespace/labels/annotations we check and the rest we pass. */
const PASSTHROUGH = [
  'uid',
  'creationTimestamp',
  'resourceVersion',
  'generation',
  'generateName',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'ownerReferences',
  'finalizers',
  'managedFields',
  'selfLink',
] as const;
const KNOWN = ['name', 'namespace', 'labels', 'annotations', ...PASSTHROUGH];

const ANNOTATIONS_MAX_BYTES = 256 * 1024;

/** Name rules that differ from the DNS-1123 subdomain default. */
export type NameRule = (ctx: Ctx, name: string, path: string) => string | undefined;

const labelFmt = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const subdomainFmt = `${labelFmt}(\\.${labelFmt})*`;
const gnpNameRe = new RegExp(`^(${labelFmt}\\.)?${labelFmt}$`);
const npNameRe = new RegExp(`^((${labelFmt})(\\.${labelFmt})?|((knp|ossg)\\.default\\.(${subdomainFmt})))$`);

function tooLong(ctx: Ctx, name: string, p: string, max: number): boolean {
  if (name.length <= max) return false;
  ctx.invalid(p, name, `is too long (${name.length} characters; at most ${max})`);
  return true;
}

export const nameRules: Record<string, NameRule> = {
  Tier: (ctx, n, p) => checkDNSLabel(ctx, n, p),
  GlobalNetworkPolicy: (ctx, n, p) => {
    if (tooLong(ctx, n, p, 253)) return undefined;
    if (!gnpNameRe.test(n)) {
      ctx.invalid(p, n, 'is not a valid policy name (a DNS label, optionally prefixed by "<tier>."; lower-case letters, digits and "-")');
      return undefined;
    }
    return n;
  },
  NetworkPolicy: (ctx, n, p) => {
    if (tooLong(ctx, n, p, 253)) return undefined;
    if (!npNameRe.test(n)) {
      ctx.invalid(p, n, 'is not a valid policy name (a DNS label, optionally prefixed by "<tier>."; lower-case letters, digits and "-")');
      return undefined;
    }
    return n;
  },
};

/** Kinds that exist once, named `default`. */
export const SINGLETON_KINDS = new Set(['IPAMConfiguration', 'ClusterInformation', 'KubeControllersConfiguration']);

export interface MetaResult {
  meta: Obj;
  name: string | undefined;
  namespace: string | undefined;
  labels: Record<string, string>;
}

/**
 * Checks `metadata`. When `nameOptional` (WorkloadEndpoint: the name is derived from the spec)
 * a missing name is not an issue.
 */
export function checkMetadata(ctx: Ctx, input: Obj, info: KindInfo, nameOptional = false): MetaResult {
  const out: Obj = {};
  const m = readObj(ctx, input, 'metadata', '', { required: !nameOptional });
  if (!m) return { meta: out, name: undefined, namespace: info.namespaced ? 'default' : undefined, labels: {} };
  checkKnown(ctx, m, 'metadata', KNOWN, 'metadata');

  // name
  let name: string | undefined;
  const rawName = readString(ctx, m, 'name', 'metadata', { required: !nameOptional });
  if (rawName !== undefined && rawName !== '') {
    const rule = nameRules[info.kind];
    name = rule ? rule(ctx, rawName, 'metadata.name') : checkSubdomain(ctx, rawName, 'metadata.name');
    if (name !== undefined && SINGLETON_KINDS.has(info.kind) && name !== 'default') {
      ctx.invalid('metadata.name', rawName, `is not allowed: a ${info.kind} must be named "default"`);
      name = undefined;
    }
    put(out, 'name', name ?? rawName);
  }

  // namespace
  let namespace: string | undefined;
  const rawNs = readString(ctx, m, 'namespace', 'metadata');
  if (info.namespaced) {
    namespace = rawNs === undefined || rawNs === '' ? 'default' : checkDNSLabel(ctx, rawNs, 'metadata.namespace');
    out.namespace = namespace ?? rawNs;
  } else if (rawNs !== undefined && rawNs !== '') {
    ctx.invalid('metadata.namespace', rawNs, `is not allowed: ${info.kind} is not a namespaced resource`);
  }

  // labels
  let labels: Record<string, string> = {};
  const rawLabels = readStringMap(ctx, m, 'labels', 'metadata');
  if (rawLabels) {
    labels = checkLabels(ctx, rawLabels, 'metadata.labels');
    if (Object.keys(rawLabels).length > 0) out.labels = labels;
  }

  // annotations
  const ann = readStringMap(ctx, m, 'annotations', 'metadata');
  if (ann) {
    let size = 0;
    for (const [k, v] of Object.entries(ann)) {
      const prob = qualifiedNameProblem(k.toLowerCase());
      if (prob) ctx.say(join('metadata.annotations', k), k, `annotation key ${JSON.stringify(k)} ${prob}`);
      size += k.length + v.length;
    }
    if (size > ANNOTATIONS_MAX_BYTES) {
      ctx.say('metadata.annotations', undefined, `annotations total ${size} bytes; at most ${ANNOTATIONS_MAX_BYTES}`);
    }
    if (Object.keys(ann).length > 0) out.annotations = ann;
  }

  for (const k of PASSTHROUGH) if (m[k] !== undefined && m[k] !== null) out[k] = m[k];
  return { meta: out, name, namespace, labels };
}
