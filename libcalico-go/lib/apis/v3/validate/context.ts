// The validation context (collects issues for one resource) and typed field readers.
//
// Readers take the parent object, the key and the parent's path; they return the value when it
// has the right JSON type, and otherwise record an issue and return undefined. A missing field
// (undefined or null) is not an issue unless the reader is told it is required.

import { type Issue, ValidationError, showValue } from '../errors.js';

export type Obj = Record<string, unknown>;

export class Ctx {
  readonly issues: Issue[] = [];

  constructor(
    readonly kind: string,
    public name: string | undefined,
    public namespace: string | undefined,
  ) {}

  /** `<path>: <value> <reason>`; the reason starts with a verb ("is not a valid CIDR"). */
  invalid(path: string, value: unknown, reason: string): void {
    this.issues.push({ path, value, message: `${path}: ${showValue(value)} ${reason}` });
  }

  /** `<path>: <message>` for a message that already names the value. */
  say(path: string, value: unknown, message: string): void {
    this.issues.push({ path, value, message: `${path}: ${message}` });
  }

  missing(path: string, hint = ''): void {
    this.issues.push({ path, value: undefined, message: `${path}: required field is missing${hint ? ` (${hint})` : ''}` });
  }

  get failed(): boolean {
    return this.issues.length > 0;
  }

  error(): ValidationError {
    return new ValidationError(this.kind, this.name, this.namespace, this.issues);
  }
}

export function join(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path ? `${path}.${key}` : key;
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function present(v: unknown): boolean {
  return v !== undefined && v !== null;
}

function typeName(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'an object';
  return `a ${typeof v}`;
}

/** Reports every key of `o` not in `known`, suggesting a near spelling. */
export function checkKnown(ctx: Ctx, o: Obj, path: string, known: readonly string[], what: string): void {
  const set = new Set(known);
  for (const k of Object.keys(o)) {
    if (set.has(k)) continue;
    const hint = suggest(k, known);
    ctx.say(
      join(path, k),
      o[k],
      `unknown field ${JSON.stringify(k)} in ${what} (value ${showValue(o[k])})${hint ? `; did you mean ${JSON.stringify(hint)}?` : ''}`,
    );
  }
}

/** The known name closest to `k` (same letters ignoring case, or within edit distance 2). */
export function suggest(k: string, known: readonly string[]): string | undefined {
  const lower = k.toLowerCase().replace(/[-_]/g, '');
  for (const n of known) if (n.toLowerCase() === lower) return n;
  let best: string | undefined;
  let bestD = 3;
  for (const n of known) {
    const d = editDistance(lower, n.toLowerCase(), bestD);
    if (d < bestD) {
      bestD = d;
      best = n;
    }
  }
  return best;
}

function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) >= cap) return cap;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const v = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      cur.push(v);
      rowMin = Math.min(rowMin, v);
    }
    if (rowMin >= cap) return cap;
    prev = cur;
  }
  return prev[b.length]!;
}

export interface ReadOpts {
  required?: boolean;
  hint?: string;
}

function need(ctx: Ctx, path: string, opts?: ReadOpts): undefined {
  if (opts?.required) ctx.missing(path, opts.hint);
  return undefined;
}

export function readObj(ctx: Ctx, o: Obj, key: string, path: string, opts?: ReadOpts): Obj | undefined {
  const v = o[key];
  const p = join(path, key);
  if (!present(v)) return need(ctx, p, opts);
  if (!isObj(v)) {
    ctx.invalid(p, v, `must be an object, not ${typeName(v)}`);
    return undefined;
  }
  return v;
}

export function readString(ctx: Ctx, o: Obj, key: string, path: string, opts?: ReadOpts): string | undefined {
  const v = o[key];
  const p = join(path, key);
  if (!present(v)) return need(ctx, p, opts);
  if (typeof v !== 'string') {
    ctx.invalid(p, v, `must be a string, not ${typeName(v)}`);
    return undefined;
  }
  if (v === '' && opts?.required) {
    ctx.missing(p, opts.hint);
    return undefined;
  }
  return v;
}

export function readBool(ctx: Ctx, o: Obj, key: string, path: string, opts?: ReadOpts): boolean | undefined {
  const v = o[key];
  const p = join(path, key);
  if (!present(v)) return need(ctx, p, opts);
  if (typeof v !== 'boolean') {
    ctx.invalid(p, v, `must be true or false, not ${typeName(v)}`);
    return undefined;
  }
  return v;
}

export interface IntOpts extends ReadOpts {
  min?: number;
  max?: number;
  /** Extra words for the out-of-range message, e.g. "IPv4 block size must be 20–32". */
  rangeHint?: string;
}

/** Checks an integer already read; reports and returns undefined when it is not one in range. */
export function checkInt(ctx: Ctx, v: unknown, p: string, opts?: IntOpts): number | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    ctx.invalid(p, v, `must be an integer, not ${typeName(v)}`);
    return undefined;
  }
  if (!Number.isInteger(v)) {
    ctx.invalid(p, v, 'must be an integer');
    return undefined;
  }
  const { min, max } = opts ?? {};
  if ((min !== undefined && v < min) || (max !== undefined && v > max)) {
    const range =
      opts?.rangeHint ??
      (min !== undefined && max !== undefined ? `must be ${min}–${max}` : min !== undefined ? `must be ≥ ${min}` : `must be ≤ ${max}`);
    ctx.invalid(p, v, `is out of range (${range})`);
    return undefined;
  }
  return v;
}

export function readInt(ctx: Ctx, o: Obj, key: string, path: string, opts?: IntOpts): number | undefined {
  const v = o[key];
  const p = join(path, key);
  if (!present(v)) return need(ctx, p, opts);
  return checkInt(ctx, v, p, opts);
}

export function readNumber(ctx: Ctx, o: Obj, key: string, path: string, opts?: ReadOpts): number | undefined {
  const v = o[key];
  const p = join(path, key);
  if (!present(v)) return need(ctx, p, opts);
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    ctx.invalid(p, v, `must be a number, not ${typeName(v)}`);
    return undefined;
  }
  return v;
}

export function readList(ctx: Ctx, o: Obj, key: string, path: string, opts?: ReadOpts): unknown[] | undefined {
  const v = o[key];
  const p = join(path, key);
  if (!present(v)) return need(ctx, p, opts);
  if (!Array.isArray(v)) {
    ctx.invalid(p, v, `must be a list, not ${typeName(v)}`);
    return undefined;
  }
  return v;
}

/** A list of strings; each element is passed to `each` (if given) which returns its canonical form. */
export function readStringList(
  ctx: Ctx,
  o: Obj,
  key: string,
  path: string,
  each?: (s: string, p: string) => string | undefined,
  opts?: ReadOpts,
): string[] | undefined {
  const list = readList(ctx, o, key, path, opts);
  if (!list) return undefined;
  const out: string[] = [];
  list.forEach((v, i) => {
    const p = join(join(path, key), i);
    if (typeof v !== 'string') {
      ctx.invalid(p, v, `must be a string, not ${typeName(v)}`);
      return;
    }
    const c = each ? each(v, p) : v;
    if (c !== undefined) out.push(c);
  });
  return out;
}

/** Objects in a list, each passed to `each` with its path. */
export function readObjList<T>(ctx: Ctx, o: Obj, key: string, path: string, each: (item: Obj, p: string) => T | undefined, opts?: ReadOpts): T[] | undefined {
  const list = readList(ctx, o, key, path, opts);
  if (!list) return undefined;
  const out: T[] = [];
  list.forEach((v, i) => {
    const p = join(join(path, key), i);
    if (!isObj(v)) {
      ctx.invalid(p, v, `must be an object, not ${typeName(v)}`);
      return;
    }
    const r = each(v, p);
    if (r !== undefined) out.push(r);
  });
  return out;
}

/** A map of string to string (labels, annotations). */
export function readStringMap(ctx: Ctx, o: Obj, key: string, path: string): Record<string, string> | undefined {
  const m = readObj(ctx, o, key, path);
  if (!m) return undefined;
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(m)) {
    if (typeof v !== 'string') {
      ctx.invalid(join(join(path, key), k), v, `must be a string (quote it in YAML), not ${typeName(v)}`);
      continue;
    }
    out[k] = v;
  }
  return out;
}

/** A string that must be one of `allowed` (exactly); suggests the right spelling when only case differs. */
export function readEnum<T extends string>(ctx: Ctx, o: Obj, key: string, path: string, allowed: readonly T[], opts?: ReadOpts): T | undefined {
  const v = readString(ctx, o, key, path, opts);
  if (v === undefined) return undefined;
  return checkEnum(ctx, v, join(path, key), allowed);
}

export function checkEnum<T extends string>(ctx: Ctx, v: string, p: string, allowed: readonly T[]): T | undefined {
  if ((allowed as readonly string[]).includes(v)) return v as T;
  const near = allowed.find((a) => a.toLowerCase() === v.toLowerCase());
  ctx.invalid(p, v, `is not one of ${allowed.join(', ')}${near ? ` (did you mean ${JSON.stringify(near)}?)` : ''}`);
  return undefined;
}

/** Sets `out[key]` only when `v` is defined. */
export function put(out: Obj, key: string, v: unknown): void {
  if (v !== undefined) out[key] = v;
}

/** Returns a copy with object keys sorted at every level (arrays keep their order). */
export function sortKeysDeep<T>(v: T): T {
  if (Array.isArray(v)) return v.map(sortKeysDeep) as T;
  if (isObj(v)) {
    const out: Obj = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeysDeep(v[k]);
    return out as T;
  }
  return v;
}
