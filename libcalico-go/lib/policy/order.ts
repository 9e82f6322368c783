// How Calico orders and reads policy, shared by the evaluator (evaluate.ts) and the nftables
// compiler (felix/calc/policy-compiler.ts): tiers by order (unset last, ties by name; `default` at
// 1,000,000 and implied when absent), policies within a tier by order then name/namespace/kind,
// protocol names, and which lists constrain a rule.
import type { Resource } from '../apis/v3/resource.js';
import type { PolicyModel } from './model.js';

type Obj = Record<string, unknown>;

export const DEFAULT_TIER_ORDER = 1000000;

export interface TierInfo {
  name: string;
  order?: number;
  defaultAction: 'Deny' | 'Pass';
}

/** The policy's tier (`default` when unset). */
export function tierName(p: Resource): string {
  const t = (p.spec as Obj | undefined)?.tier;
  return typeof t === 'string' && t !== '' ? t : 'default';
}

/** Every tier that has a resource or a policy, in evaluation order. */
export function tiersOf(model: PolicyModel): TierInfo[] {
  const out = new Map<string, TierInfo>();
  for (const t of model.tiers) {
    const spec = (t.spec ?? {}) as Obj;
    out.set(t.metadata.name, {
      name: t.metadata.name,
      order: typeof spec.order === 'number' ? spec.order : t.metadata.name === 'default' ? DEFAULT_TIER_ORDER : undefined,
      defaultAction: spec.defaultAction === 'Pass' ? 'Pass' : 'Deny',
    });
  }
  if (!out.has('default')) out.set('default', { name: 'default', order: DEFAULT_TIER_ORDER, defaultAction: 'Deny' });
  for (const p of model.policies) {
    const t = tierName(p);
    if (!out.has(t)) out.set(t, { name: t, defaultAction: 'Deny' });
  }
  return [...out.values()].sort((a, b) => (a.order ?? Infinity) - (b.order ?? Infinity) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Order of policies within a tier: `order` ascending (unset last), then name/namespace/kind. */
export function comparePolicies(a: Resource, b: Resource): number {
  const oa = (a.spec as Obj | undefined)?.order;
  const ob = (b.spec as Obj | undefined)?.order;
  const na = typeof oa === 'number' ? oa : Infinity;
  const nb = typeof ob === 'number' ? ob : Infinity;
  if (na !== nb) return na - nb;
  const ka = `${a.metadata.name}/${a.metadata.namespace ?? ''}/${a.kind}`;
  const kb = `${b.metadata.name}/${b.metadata.namespace ?? ''}/${b.kind}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

/** "NS/NAME" for a NetworkPolicy, "NAME" for a global one. */
export function policyId(p: Resource): string {
  return p.kind === 'NetworkPolicy' ? `${p.metadata.namespace ?? 'default'}/${p.metadata.name}` : p.metadata.name;
}

const PROTO_NUM: Record<string, number> = { TCP: 6, UDP: 17, ICMP: 1, SCTP: 132, ICMPV6: 58, UDPLITE: 136 };

/** A rule's protocol (name or number) as its number; undefined when unknown. */
export function protoNumber(p: unknown): number | undefined {
  if (typeof p === 'number') return p;
  if (typeof p === 'string') return /^\d+$/.test(p) ? Number(p) : PROTO_NUM[p.toUpperCase()];
  return undefined;
}

/** A list that constrains: Calico treats an empty `nets`/`ports` list like an absent one. */
export const nonEmpty = (l: unknown): l is unknown[] => Array.isArray(l) && l.length > 0;
