// Splits a selector into tokens, each with its position, for the parser.
//
// The lexical rules follow Calico's selector language:
// * whitespace is space or tab only;
// * strings are in "…" or '…' with no escapes (a string ends at the next matching quote);
// * a label is a run of [a-zA-Z0-9_./-], at most 512 characters;
// * `has(<label>)`, `all()` and `global()` are single tokens (whitespace allowed inside the
//   parentheses, none between the word and "(");
// * the word operators `in`, `not in` (also `notin`), `contains`, `starts with`, `ends with`
//   (also `startswith`, `endswith`) are recognised only straight after a label, and must end at a
//   word boundary; anywhere else the same words are labels.

import { SelectorError } from './errors.js';

export const MAX_LABEL_LENGTH = 512;

export type TokenKind =
  | 'label'
  | 'string'
  | 'lbrace'
  | 'rbrace'
  | 'comma'
  | 'eq'
  | 'ne'
  | 'in'
  | 'notin'
  | 'contains'
  | 'startswith'
  | 'endswith'
  | 'not'
  | 'and'
  | 'or'
  | 'lparen'
  | 'rparen'
  | 'has'
  | 'all'
  | 'global'
  | 'eof';

export interface Token {
  kind: TokenKind;
  /** Label name (label, has) or string contents (string); '' otherwise. */
  value: string;
  /** Index of the token's first character. */
  pos: number;
  /** Index just past the token. */
  end: number;
}

export function isLabelChar(c: number): boolean {
  return (
    (c >= 97 && c <= 122) || // a-z
    (c >= 65 && c <= 90) || // A-Z
    (c >= 48 && c <= 57) || // 0-9
    c === 95 || // _
    c === 46 || // .
    c === 47 || // /
    c === 45 // -
  );
}

/** True when `s` is a whole, valid selector label (non-empty, allowed characters, ≤ 512). */
export function isValidLabel(s: string): boolean {
  if (s.length === 0 || s.length > MAX_LABEL_LENGTH) return false;
  for (let i = 0; i < s.length; i++) if (!isLabelChar(s.charCodeAt(i))) return false;
  return true;
}

/** Describes a token for an error message: `"&&"`, `label "app"`, `string "x"`, `end of selector`. */
export function describeToken(src: string, t: Token): string {
  switch (t.kind) {
    case 'eof':
      return 'end of selector';
    case 'label':
      return `label ${JSON.stringify(t.value)}`;
    case 'string':
      return `string ${JSON.stringify(t.value)}`;
    default:
      return JSON.stringify(src.slice(t.pos, t.end));
  }
}

/** Word operators allowed after a label; multi-word ones may have whitespace (or none) between words. */
const WORD_OPERATORS: ReadonlyArray<readonly [TokenKind, readonly string[]]> = [
  ['contains', ['contains']],
  ['startswith', ['starts', 'with']],
  ['endswith', ['ends', 'with']],
  ['notin', ['not', 'in']],
  ['in', ['in']],
];

class Scanner {
  i = 0;
  readonly tokens: Token[] = [];
  constructor(readonly src: string) {}

  fail(pos: number, detail: string): never {
    throw new SelectorError(this.src, pos, detail);
  }

  skipSpace(): void {
    const s = this.src;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c !== 32 && c !== 9) break;
      this.i++;
    }
  }

  push(kind: TokenKind, pos: number, end: number, value = ''): void {
    this.tokens.push({ kind, value, pos, end });
    this.i = end;
  }

  startsWithAt(word: string, at: number): boolean {
    return this.src.startsWith(word, at);
  }

  /** Index just past the label run starting at `at` (== at when there is none). */
  labelEnd(at: number): number {
    let j = at;
    while (j < this.src.length && isLabelChar(this.src.charCodeAt(j))) j++;
    return j;
  }

  atWordBoundary(at: number): boolean {
    return at >= this.src.length || !isLabelChar(this.src.charCodeAt(at));
  }

  /** Index after whitespace from `at`. */
  spaceEnd(at: number): number {
    let j = at;
    while (j < this.src.length && (this.src[j] === ' ' || this.src[j] === '\t')) j++;
    return j;
  }

  /** Matches words separated by optional whitespace and ending at a word boundary; returns the end or -1. */
  matchWords(at: number, words: readonly string[]): number {
    let j = at;
    for (let w = 0; w < words.length; w++) {
      if (w > 0) j = this.spaceEnd(j);
      if (!this.startsWithAt(words[w]!, j)) return -1;
      j += words[w]!.length;
    }
    return this.atWordBoundary(j) ? j : -1;
  }

  label(at: number): { name: string; end: number } {
    const end = this.labelEnd(at);
    if (end === at) {
      const c = this.src[at];
      this.fail(at, c === undefined ? 'expected a label but found end of selector' : `expected a label but found ${JSON.stringify(c)}`);
    }
    if (end - at > MAX_LABEL_LENGTH) this.fail(at, `label is longer than ${MAX_LABEL_LENGTH} characters`);
    return { name: this.src.slice(at, end), end };
  }

  /** `word(` … `)` with nothing (all, global) or a label (has) inside. */
  call(kind: 'has' | 'all' | 'global', start: number): void {
    const word = kind + '(';
    let j = this.spaceEnd(start + word.length);
    let value = '';
    if (kind === 'has') {
      const l = this.label(j);
      value = l.name;
      j = this.spaceEnd(l.end);
    }
    if (this.src[j] !== ')') {
      const what = kind === 'has' ? 'after the label in has(' : `after ${kind}(`;
      const found = j >= this.src.length ? 'end of selector' : JSON.stringify(this.src[j]);
      this.fail(j, `expected ")" ${what} but found ${found}`);
    }
    this.push(kind, start, j + 1, value);
  }

  /** After a label only an operator may follow. */
  operatorAfterLabel(start: number): void {
    for (const [kind, words] of WORD_OPERATORS) {
      const end = this.matchWords(start, words);
      if (end >= 0) {
        this.push(kind, start, end);
        return;
      }
    }
    const prev = this.tokens[this.tokens.length - 1]!;
    if (!isLabelChar(this.src.charCodeAt(start))) {
      this.fail(
        start,
        `unexpected character ${JSON.stringify(this.src[start])} (expected an operator after label ${JSON.stringify(prev.value)})`,
      );
    }
    const wordEnd = Math.max(this.labelEnd(start), start + 1);
    this.fail(
      start,
      `expected an operator (==, !=, in, not in, contains, starts with, ends with) after label ${JSON.stringify(prev.value)} but found ${JSON.stringify(this.src.slice(start, wordEnd))}`,
    );
  }

  run(): Token[] {
    const s = this.src;
    for (;;) {
      this.skipSpace();
      const start = this.i;
      if (start >= s.length) {
        this.tokens.push({ kind: 'eof', value: '', pos: s.length, end: s.length });
        return this.tokens;
      }
      const c = s[start];
      switch (c) {
        case '(':
          this.push('lparen', start, start + 1);
          continue;
        case ')':
          this.push('rparen', start, start + 1);
          continue;
        case '{':
          this.push('lbrace', start, start + 1);
          continue;
        case '}':
          this.push('rbrace', start, start + 1);
          continue;
        case ',':
          this.push('comma', start, start + 1);
          continue;
        case '"':
        case "'": {
          const close = s.indexOf(c, start + 1);
          if (close < 0) this.fail(start, 'unterminated string');
          this.push('string', start, close + 1, s.slice(start + 1, close));
          continue;
        }
        case '=':
          if (s[start + 1] !== '=') this.fail(start, 'expected "==" but found a single "="');
          this.push('eq', start, start + 2);
          continue;
        case '!':
          if (s[start + 1] === '=') this.push('ne', start, start + 2);
          else this.push('not', start, start + 1);
          continue;
        case '&':
          if (s[start + 1] !== '&') this.fail(start, 'expected "&&" but found a single "&"');
          this.push('and', start, start + 2);
          continue;
        case '|':
          if (s[start + 1] !== '|') this.fail(start, 'expected "||" but found a single "|"');
          this.push('or', start, start + 2);
          continue;
      }
      const prev = this.tokens.length > 0 ? this.tokens.at(-1)?.kind : undefined;
      if (prev === 'label') {
        this.operatorAfterLabel(start);
        continue;
      }
      if (this.startsWithAt('has(', start)) {
        this.call('has', start);
        continue;
      }
      if (this.startsWithAt('all(', start)) {
        this.call('all', start);
        continue;
      }
      if (this.startsWithAt('global(', start)) {
        this.call('global', start);
        continue;
      }
      if (isLabelChar(s.charCodeAt(start))) {
        const l = this.label(start);
        this.push('label', start, l.end, l.name);
        continue;
      }
      this.fail(start, `unexpected character ${JSON.stringify(c)}`);
    }
  }
}

/** Tokenizes a selector; the last token is always `eof`. Throws SelectorError. */
export function tokenize(selector: string): Token[] {
  return new Scanner(selector).run();
}
