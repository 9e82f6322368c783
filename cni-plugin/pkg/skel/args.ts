// CNI_ARGS: "K=V;K2=V2" into a map.
//
// Decisions:
// - Empty or absent CNI_ARGS gives an empty map (libcni always sets it, often to "").
// - Empty segments (";;", a trailing ";") are skipped.
// - A segment without "=" or with an empty key is malformed: code 4 (CNI_ARGS is an environment
//   variable and the spec's code 4 requires naming it); the message quotes the bad pair.
// - The value is everything after the first "=", so values may contain "=" (Go's parser rejects those;
//   we are more lenient). Empty values ("IP=") are kept as "".
// - Later duplicates override earlier ones.
// - Unknown keys are only checked when the caller passes the keys it knows; then an unknown key is
//   code 2 ("unsupported field", message names key and value) unless IgnoreUnknown is true.

import { CniError, ErrCode } from './errors.js';

export const IGNORE_UNKNOWN = 'IgnoreUnknown';

/** Parses a Go-style boolean as used by IgnoreUnknown ("1", "true", "t", "0", "false", "f", any case). */
export function parseArgBool(value: string): boolean | null {
  const v = value.toLowerCase();
  if (v === '1' || v === 't' || v === 'true') return true;
  if (v === '0' || v === 'f' || v === 'false' || v === '') return false;
  return null;
}

export interface ParseArgsOptions {
  /** Keys the plugin understands; when given, other keys are rejected unless IgnoreUnknown is true. */
  knownArgs?: readonly string[];
}

export function parseCniArgs(raw: string | undefined, opts: ParseArgsOptions = {}): Map<string, string> {
  const out = new Map<string, string>();
  if (raw === undefined || raw === '') return out;
  for (const pair of raw.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new CniError(
        ErrCode.InvalidEnvironment,
        `invalid CNI_ARGS: malformed pair ${JSON.stringify(pair)} (want KEY=VALUE)`,
        `CNI_ARGS=${JSON.stringify(raw)}`,
      );
    }
    out.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  const ignoreRaw = out.get(IGNORE_UNKNOWN);
  let ignoreUnknown = false;
  if (ignoreRaw !== undefined) {
    const b = parseArgBool(ignoreRaw);
    if (b === null) {
      throw new CniError(
        ErrCode.InvalidEnvironment,
        `invalid CNI_ARGS: ${IGNORE_UNKNOWN}=${JSON.stringify(ignoreRaw)} is not a boolean`,
      );
    }
    ignoreUnknown = b;
  }
  if (opts.knownArgs && !ignoreUnknown) {
    for (const [k, v] of out) {
      if (k === IGNORE_UNKNOWN || opts.knownArgs.includes(k)) continue;
      throw new CniError(
        ErrCode.UnsupportedField,
        `unsupported CNI_ARGS key ${JSON.stringify(k)} (value ${JSON.stringify(v)})`,
        `known keys: ${[...opts.knownArgs].join(', ')}; set ${IGNORE_UNKNOWN}=1 to ignore unknown keys`,
      );
    }
  }
  return out;
}

/** Whether the parsed args carry IgnoreUnknown=true. */
export function ignoresUnknown(args: ReadonlyMap<string, string>): boolean {
  const v = args.get(IGNORE_UNKNOWN);
  return v !== undefined && parseArgBool(v) === true;
}

/** The inverse of parseCniArgs (insertion order). */
export function formatCniArgs(args: ReadonlyMap<string, string> | Iterable<readonly [string, string]>): string {
  const parts: string[] = [];
  for (const [k, v] of args) parts.push(`${k}=${v}`);
  return parts.join(';');
}
