// Errors raised while reading and validating projectcalico.org/v3 resources.

/** One problem with one field. */
export interface Issue {
  /** Dotted path from the resource root, e.g. `spec.ingress[0].destination.ports[1]`. */
  path: string;
  /** The offending value (undefined when the field is missing). */
  value: unknown;
  /** `<path>: <what is wrong>`, naming the value. */
  message: string;
}

/**
 * A resource that Calico would refuse. `message` is
 * `<Kind> "<name>": <path>: <value> <reason>` — or, with several problems,
 * `<Kind> "<name>": <n> problems: <issue>; <issue>…`. Namespaced resources are named
 * `"<namespace>/<name>"`.
 */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    readonly kind: string,
    readonly resourceName: string | undefined,
    readonly namespace: string | undefined,
    readonly issues: readonly Issue[],
  ) {
    super(ValidationError.format(kind, resourceName, namespace, issues));
  }

  static describe(kind: string, name: string | undefined, namespace: string | undefined): string {
    const k = kind || 'resource';
    if (name === undefined || name === '') return `${k} (unnamed)`;
    return namespace ? `${k} "${namespace}/${name}"` : `${k} "${name}"`;
  }

  static format(kind: string, name: string | undefined, namespace: string | undefined, issues: readonly Issue[]): string {
    const who = ValidationError.describe(kind, name, namespace);
    if (issues.length === 1) return `${who}: ${issues[0]!.message}`;
    return `${who}: ${issues.length} problems: ${issues.map((i) => i.message).join('; ')}`;
  }
}

/** Text that is not valid YAML/JSON, or a document that is not a resource. */
export class ParseError extends Error {
  override readonly name = 'ParseError';
  constructor(
    readonly source: string,
    /** 1-based; 0 when unknown. */
    readonly line: number,
    /** 1-based; 0 when unknown. */
    readonly column: number,
    readonly detail: string,
  ) {
    super(`${source}${line > 0 ? `:${line}${column > 0 ? `:${column}` : ''}` : ''}: ${detail}`);
  }
}

/** Renders a value for an error message: strings quoted, objects as compact JSON (shortened). */
export function showValue(v: unknown): string {
  if (v === undefined) return '(missing)';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null || typeof v === 'bigint') return String(v);
  let s: string;
  try {
    s = JSON.stringify(v) ?? String(v);
  } catch {
    s = String(v);
  }
  return s.length > 120 ? s.slice(0, 117) + '...' : s;
}
