// Calico's label-selector language: parse once, evaluate many times.
//
//   const sel = parseSelector('role == "db" && !has(canary)');
//   sel.evaluate({ role: 'db' })   // true
//   sel.canonical()                // '(role == "db" && !has(canary))'
//
// Semantics for a label that is absent: `!=` and `not in` are true, every other comparison is
// false. An empty (or all-whitespace) selector means `all()`.

import { createHash } from 'node:crypto';

import { type Labels, type SelectorNode, containsGlobal, evaluateNode, labelsOf, renderNode } from './ast.js';
import { SelectorError } from './errors.js';
import { parseTree } from './parser.js';

export { SelectorError } from './errors.js';
export { MAX_LABEL_LENGTH, isValidLabel } from './tokenizer.js';
export type { Labels, SelectorNode, CompareOp } from './ast.js';

export class Selector {
  private canon: string | undefined;

  constructor(
    /** The text as given. */
    readonly text: string,
    readonly root: SelectorNode,
  ) {}

  /** True when the labels satisfy the selector. */
  evaluate(labels: Labels): boolean {
    return evaluateNode(this.root, labels);
  }

  /** Calico's canonical rendering, e.g. `(a == "x" && has(b))`; `all()` for the empty selector. */
  canonical(): string {
    return (this.canon ??= renderNode(this.root));
  }

  /**
   * Calico's selector ID: `s:` + base64url(SHA-224(`s:` + canonical())), 40 characters. Felix
   * names a selector's IP set after it.
   */
  uniqueId(): string {
    return 's:' + createHash('sha224').update('s:' + this.canonical()).digest('base64url');
  }

  /** Label names the selector refers to, sorted. */
  labelNames(): string[] {
    return [...labelsOf(this.root)].sort();
  }

  /** True when the selector uses `global()` anywhere. */
  usesGlobal(): boolean {
    return containsGlobal(this.root);
  }

  /** True when the selector is exactly `all()` (or empty). */
  isAll(): boolean {
    return this.root.type === 'all';
  }

  toString(): string {
    return this.canonical();
  }
}

/** Parses a selector. Throws SelectorError naming the position of the problem. */
export function parseSelector(text: string): Selector {
  return new Selector(text, parseTree(text));
}

/** Returns the parse error, or null when the selector is valid. Never throws. */
export function selectorError(text: string): SelectorError | null {
  try {
    parseTree(text);
    return null;
  } catch (e) {
    if (e instanceof SelectorError) return e;
    throw e;
  }
}

/** True when the selector parses. */
export function isValidSelector(text: string): boolean {
  return selectorError(text) === null;
}
