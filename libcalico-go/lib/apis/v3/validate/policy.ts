// NetworkPolicy, GlobalNetworkPolicy, Profile and Tier.
//
// Defaults, as Calico applies them on create: `tier` "default"; `types` from the rules present
// ([Ingress] when there are no egress rules, [Egress] when only egress rules, both when both);
// the label `projectcalico.org/tier: <tier>` on the policy. Tier `defaultAction` defaults to Deny;
// the built-in tiers must keep their fixed order and action (default 1000000/Deny,
// kube-admin 1000/Pass, kube-baseline 10000000/Pass), which are filled in when omitted.

import { checkDNSLabel, checkLabels, readSelector } from './common.js';
import {
  type Ctx,
  type Obj,
  checkEnum,
  checkKnown,
  put,
  readBool,
  readNumber,
  readString,
  readStringList,
  readStringMap,
} from './context.js';
import { readRules } from './rules.js';

export const POLICY_TYPES = ['Ingress', 'Egress'] as const;
export const DEFAULT_TIER = 'default';
export const TIER_LABEL = 'projectcalico.org/tier';

const NP_FIELDS = ['tier', 'order', 'ingress', 'egress', 'selector', 'types', 'serviceAccountSelector', 'performanceHints'];
const GNP_FIELDS = [...NP_FIELDS, 'doNotTrack', 'preDNAT', 'applyOnForward', 'namespaceSelector'];

export interface PolicyMeta {
  meta: Obj;
}

function commonPolicy(ctx: Ctx, spec: Obj, global: boolean, m: PolicyMeta): Obj {
  checkKnown(ctx, spec, 'spec', global ? GNP_FIELDS : NP_FIELDS, `${ctx.kind} spec`);
  const out: Obj = {};

  const tierText = readString(ctx, spec, 'tier', 'spec');
  const tier = tierText === undefined || tierText === '' ? DEFAULT_TIER : checkDNSLabel(ctx, tierText, 'spec.tier');
  put(out, 'tier', tier);
  put(out, 'order', readNumber(ctx, spec, 'order', 'spec'));
  const what = `a ${ctx.kind} selector`;
  put(out, 'selector', readSelector(ctx, spec, 'selector', 'spec', { what }));
  put(out, 'serviceAccountSelector', readSelector(ctx, spec, 'serviceAccountSelector', 'spec', { what }));
  if (global) put(out, 'namespaceSelector', readSelector(ctx, spec, 'namespaceSelector', 'spec', { what }));

  const ingress = readRules(ctx, spec, 'ingress', global);
  const egress = readRules(ctx, spec, 'egress', global);
  if (ingress && ingress.length > 0) out.ingress = ingress;
  if (egress && egress.length > 0) out.egress = egress;

  const types = readStringList(ctx, spec, 'types', 'spec', (s, p) => checkEnum(ctx, s, p, POLICY_TYPES));
  if (types && types.length > 0) {
    if (new Set(types).size !== types.length) ctx.invalid('spec.types', spec.types, 'lists a type more than once');
    out.types = [...new Set(types)];
  } else {
    const hasIn = Array.isArray(spec.ingress) && spec.ingress.length > 0;
    const hasEg = Array.isArray(spec.egress) && spec.egress.length > 0;
    out.types = !hasEg ? ['Ingress'] : !hasIn ? ['Egress'] : ['Ingress', 'Egress'];
  }

  const hints = readStringList(ctx, spec, 'performanceHints', 'spec', (s, p) => checkEnum(ctx, s, p, ['AssumeNeededOnEveryNode']));
  if (hints && hints.length > 0) {
    if (new Set(hints).size !== hints.length) ctx.invalid('spec.performanceHints', spec.performanceHints, 'lists a hint more than once');
    out.performanceHints = [...new Set(hints)];
  }

  if (tier !== undefined) {
    const labels = { ...((m.meta.labels as Record<string, string> | undefined) ?? {}) };
    labels[TIER_LABEL] = tier;
    m.meta.labels = labels;
  }
  return out;
}

export function validateNetworkPolicySpec(ctx: Ctx, spec: Obj, m: PolicyMeta): Obj {
  return commonPolicy(ctx, spec, false, m);
}

/** Why the host endpoint flags of a GlobalNetworkPolicy are refused. */
export const HOST_ENDPOINT_POLICY_REASON = 'host endpoint policy is not enforced by Tortie';

const HEP_FLAG_DETAIL: Record<string, string> = {
  doNotTrack: 'untracked policy applies to host endpoints only, so this policy would police nothing',
  preDNAT: 'pre-DNAT policy applies to host endpoints only, so this policy would police nothing',
  applyOnForward: 'it only changes how the policy applies to host endpoints; remove it, pods are policed the same without it',
};

export function validateGlobalNetworkPolicySpec(ctx: Ctx, spec: Obj, m: PolicyMeta): Obj {
  const out = commonPolicy(ctx, spec, true, m);
  // Calico's host endpoint flags: Tortie polices pods only, so `true` is refused (false is the
  // default and dropped). Calico's checks of their combinations are moot and not made.
  for (const flag of ['doNotTrack', 'preDNAT', 'applyOnForward'] as const) {
    if (readBool(ctx, spec, flag, 'spec')) {
      ctx.invalid(`spec.${flag}`, true, `is not supported: ${HOST_ENDPOINT_POLICY_REASON} (${HEP_FLAG_DETAIL[flag]})`);
    }
  }
  return out;
}

export function validateProfileSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(ctx, spec, 'spec', ['ingress', 'egress', 'labelsToApply'], 'Profile spec');
  const out: Obj = {};
  const ingress = readRules(ctx, spec, 'ingress', false);
  const egress = readRules(ctx, spec, 'egress', false);
  if (ingress && ingress.length > 0) out.ingress = ingress;
  if (egress && egress.length > 0) out.egress = egress;
  const lta = readStringMap(ctx, spec, 'labelsToApply', 'spec');
  if (lta && Object.keys(lta).length > 0) out.labelsToApply = checkLabels(ctx, lta, 'spec.labelsToApply');
  return out;
}

/** The tiers Calico creates itself, with the order and default action they must keep. */
export const BUILTIN_TIERS: Readonly<Record<string, { order: number; defaultAction: 'Deny' | 'Pass' }>> = {
  default: { order: 1000000, defaultAction: 'Deny' },
  'kube-admin': { order: 1000, defaultAction: 'Pass' },
  'kube-baseline': { order: 10000000, defaultAction: 'Pass' },
};

export function validateTierSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(ctx, spec, 'spec', ['order', 'defaultAction'], 'Tier spec');
  const out: Obj = {};
  const builtin = ctx.name !== undefined ? BUILTIN_TIERS[ctx.name] : undefined;
  const order = readNumber(ctx, spec, 'order', 'spec');
  const action = readString(ctx, spec, 'defaultAction', 'spec');
  const act = action === undefined || action === '' ? (builtin?.defaultAction ?? 'Deny') : checkEnum(ctx, action, 'spec.defaultAction', ['Deny', 'Pass']);
  put(out, 'order', order ?? builtin?.order);
  put(out, 'defaultAction', act);
  if (builtin) {
    if (order !== undefined && order !== builtin.order) {
      ctx.invalid('spec.order', order, `is not allowed: the ${ctx.name} tier's order must be ${builtin.order}`);
    }
    if (act !== undefined && act !== builtin.defaultAction) {
      ctx.invalid('spec.defaultAction', act, `is not allowed: the ${ctx.name} tier's defaultAction must be ${builtin.defaultAction}`);
    }
  }
  return out;
}
