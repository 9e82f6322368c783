// Which endpoints and network sets a rule's selector part reaches (selector, notSelector,
// namespaceSelector, serviceAccounts), with Calico's scoping: a namespaced policy's selector only
// reaches its own namespace, a namespaceSelector picks namespaces by their labels (`global()`
// picks global network sets), serviceAccounts only match endpoints. One definition for the
// evaluator (evaluate.ts) and the nftables compiler (felix/calc/policy-compiler.ts).
import { type Selector, parseSelector } from '../selector/index.js';
import type { Labels } from './model.js';

/** Something a selector part may match: an endpoint or a network set. */
export interface Candidate {
  labels: Labels;
  /** Undefined for global network sets. */
  namespace?: string;
  isEndpoint: boolean;
  /** The endpoint's service account. */
  sa?: string;
}

const cache = new Map<string, Selector>();

/** The parsed selector (empty = all()), parsed once per text. */
export function cachedSelector(text: string | undefined): Selector {
  const t = text ?? '';
  let s = cache.get(t);
  if (!s) {
    s = parseSelector(t);
    cache.set(t, s);
  }
  return s;
}

/**
 * Does the selector part `e` of a rule (its source or destination) reach candidate `c`?
 * `namespace` is the policy's namespace (undefined for global policies).
 */
export function selectorPartMatches(e: Record<string, unknown>, namespace: string | undefined, c: Candidate, nsLabels: (ns: string) => Labels): boolean {
  const hasSel = typeof e.selector === 'string';
  const hasNotSel = typeof e.notSelector === 'string';
  const hasNs = typeof e.namespaceSelector === 'string';
  const sa = e.serviceAccounts as { names?: string[]; selector?: string } | undefined;
  if (hasNs) {
    const nsSel = cachedSelector(e.namespaceSelector as string);
    if (c.namespace === undefined) {
      if (!nsSel.usesGlobal()) return false;
    } else if (nsSel.usesGlobal() || !nsSel.evaluate(nsLabels(c.namespace))) return false;
  } else if (namespace !== undefined && (hasSel || sa)) {
    if (c.namespace !== namespace) return false;
  } else if (!hasSel && !sa && c.namespace === undefined && namespace !== undefined) {
    return false;
  }
  if (hasSel && !cachedSelector(e.selector as string).evaluate(c.labels)) return false;
  if (hasNotSel && cachedSelector(e.notSelector as string).evaluate(c.labels)) return false;
  if (sa) {
    if (!c.isEndpoint || c.sa === undefined) return false;
    if (sa.names && sa.names.length > 0 && !sa.names.includes(c.sa)) return false;
    if (sa.selector !== undefined && !cachedSelector(sa.selector).evaluate({})) return false;
  }
  return true;
}
