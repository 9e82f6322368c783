// Recursive-descent parser for Calico selectors.
//
//   selector := <empty> | or
//   or       := and ( "||" and )*
//   and      := unary ( "&&" unary )*
//   unary    := "!"* term            (an even number of "!" cancels out)
//   term     := "all()" | "global()" | "has(" label ")" | "(" or ")"
//             | label ( "==" | "!=" | "contains" | "starts with" | "ends with" ) string
//             | label ( "in" | "not in" ) "{" [ string ( "," string )* [","] ] "}"
//
// Groups in parentheses are kept as written: `(a && b) && c` is an AND whose first operand is
// itself an AND, and renders as `((a && b) && c)` — as Calico does.

import type { CompareOp, SelectorNode } from './ast.js';
import { SelectorError } from './errors.js';
import { type Token, describeToken, tokenize } from './tokenizer.js';

const compareOps: Partial<Record<Token['kind'], CompareOp>> = {
  eq: '==',
  ne: '!=',
  contains: 'contains',
  startswith: 'starts with',
  endswith: 'ends with',
};

class Parser {
  private k = 0;
  constructor(
    private readonly src: string,
    private readonly toks: Token[],
  ) {}

  private peek(): Token {
    return this.toks[this.k]!;
  }

  private next(): Token {
    const t = this.toks[this.k]!;
    if (t.kind !== 'eof') this.k++;
    return t;
  }

  private fail(t: Token, detail: string): never {
    throw new SelectorError(this.src, t.pos, detail);
  }

  private unexpected(t: Token, expected: string): never {
    if (t.kind === 'eof') this.fail(t, `unexpected end of selector (expected ${expected})`);
    this.fail(t, `unexpected token ${describeToken(this.src, t)} (expected ${expected})`);
  }

  parseRoot(): SelectorNode {
    if (this.peek().kind === 'eof') return { type: 'all' };
    const node = this.parseOr();
    const t = this.peek();
    if (t.kind !== 'eof') {
      if (t.kind === 'rparen') this.fail(t, 'unexpected token ")" with no matching "("');
      this.unexpected(t, '"&&", "||" or end of selector');
    }
    return node;
  }

  private parseOr(): SelectorNode {
    const first = this.parseAnd();
    if (this.peek().kind !== 'or') return first;
    const operands = [first];
    while (this.peek().kind === 'or') {
      this.next();
      operands.push(this.parseAnd());
    }
    return { type: 'or', operands };
  }

  private parseAnd(): SelectorNode {
    const first = this.parseUnary();
    if (this.peek().kind !== 'and') return first;
    const operands = [first];
    while (this.peek().kind === 'and') {
      this.next();
      operands.push(this.parseUnary());
    }
    return { type: 'and', operands };
  }

  private parseUnary(): SelectorNode {
    let negated = false;
    while (this.peek().kind === 'not') {
      this.next();
      negated = !negated;
    }
    const term = this.parseTerm();
    return negated ? { type: 'not', operand: term } : term;
  }

  private parseTerm(): SelectorNode {
    const t = this.next();
    switch (t.kind) {
      case 'all':
        return { type: 'all' };
      case 'global':
        return { type: 'global' };
      case 'has':
        return { type: 'has', label: t.value };
      case 'lparen': {
        const inner = this.parseOr();
        const close = this.peek();
        if (close.kind !== 'rparen') {
          if (close.kind === 'eof') this.fail(close, `missing ")" to close the "(" at position ${t.pos}`);
          this.unexpected(close, '"&&", "||" or ")"');
        }
        this.next();
        return inner;
      }
      case 'label':
        return this.parseComparison(t);
      default:
        this.unexpected(t, 'a label, "has(", "all()", "global()", "!" or "("');
    }
  }

  private parseComparison(label: Token): SelectorNode {
    const op = this.next();
    const cmp = compareOps[op.kind];
    if (cmp !== undefined) {
      const v = this.next();
      if (v.kind !== 'string') this.unexpected(v, `a quoted string after ${JSON.stringify(cmp)}`);
      return { type: 'compare', op: cmp, label: label.value, value: v.value };
    }
    if (op.kind === 'in' || op.kind === 'notin') {
      const opText = op.kind === 'in' ? 'in' : 'not in';
      const open = this.next();
      if (open.kind !== 'lbrace') this.unexpected(open, `"{" after "${opText}"`);
      const values: string[] = [];
      for (;;) {
        const v = this.peek();
        if (v.kind === 'rbrace') break;
        if (v.kind !== 'string') this.unexpected(v, values.length === 0 ? 'a quoted string or "}"' : 'a quoted string');
        this.next();
        values.push(v.value);
        const sep = this.peek();
        if (sep.kind === 'comma') {
          this.next();
          continue;
        }
        if (sep.kind !== 'rbrace') this.unexpected(sep, '"," or "}"');
      }
      this.next(); // "}"
      const sorted = [...new Set(values)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return { type: 'set', op: opText, label: label.value, values: sorted, set: new Set(sorted) };
    }
    this.unexpected(op, `an operator after label ${JSON.stringify(label.value)}`);
  }
}

/** Parses selector text into a tree. Throws SelectorError. */
export function parseTree(selector: string): SelectorNode {
  if (typeof selector !== 'string') throw new SelectorError(String(selector), 0, 'selector must be a string');
  return new Parser(selector, tokenize(selector)).parseRoot();
}
