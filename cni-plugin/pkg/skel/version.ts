// CNI spec versions: parsing, comparison, selection, and the VERSION command's answer.

import { CniError, ErrCode } from './errors.js';

/** Versions whose result shape this package can produce (0.3.0 and later). */
export const RESULT_VERSIONS: readonly string[] = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

/** The versions Tortie's plugins declare by default. */
export const DEFAULT_SUPPORTED_VERSIONS: readonly string[] = RESULT_VERSIONS;

/** Parses `X.Y.Z` (digits only). Returns null for anything else. */
export function parseVersion(v: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  if (!m) return null;
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

/** Compares two `X.Y.Z` versions; throws a plain Error if either does not parse. */
export function compareVersions(a: string, b: string): number {
  const pa = parseVersion(a);
  const pb = parseVersion(b);
  if (!pa || !pb) throw new Error(`cannot compare versions ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
  for (let i = 0; i < 3; i++) {
    if (pa[i] !== pb[i]) return pa[i]! < pb[i]! ? -1 : 1;
  }
  return 0;
}

/** True when `v` parses and is >= `min`. */
export function versionAtLeast(v: string, min: string): boolean {
  return parseVersion(v) !== null && compareVersions(v, min) >= 0;
}

/** The highest parseable version of a list, or undefined. */
export function highestVersion(list: readonly string[]): string | undefined {
  let best: string | undefined;
  for (const v of list) {
    if (parseVersion(v) === null) continue;
    if (best === undefined || compareVersions(v, best) > 0) best = v;
  }
  return best;
}

/** The highest of `candidates` that is in `supported`, or undefined. */
export function selectVersion(candidates: readonly string[], supported: readonly string[]): string | undefined {
  return highestVersion(candidates.filter((v) => supported.includes(v)));
}

/** Supported versions, deduplicated and sorted ascending (unparseable ones dropped). */
export function sortedVersions(supported: readonly string[]): string[] {
  return [...new Set(supported)].filter((v) => parseVersion(v) !== null).sort(compareVersions);
}

export interface VersionResponse {
  cniVersion: string;
  supportedVersions: string[];
}

/**
 * The VERSION command's output: echoes `requested` when it is supported, otherwise reports the highest
 * supported version; `supportedVersions` is the sorted supported list.
 */
export function versionResponse(requested: string | undefined, supported: readonly string[]): VersionResponse {
  const list = sortedVersions(supported);
  if (list.length === 0) throw new CniError(ErrCode.Internal, 'plugin declares no supported CNI versions');
  const cniVersion = requested !== undefined && list.includes(requested) ? requested : list[list.length - 1]!;
  return { cniVersion, supportedVersions: list };
}

/** The code-1 error for a config version the plugin does not support. */
export function incompatibleVersionError(version: string, supported: readonly string[], what = 'config'): CniError {
  const list = sortedVersions(supported);
  const shown = JSON.stringify(version);
  return new CniError(
    ErrCode.IncompatibleVersion,
    `incompatible CNI versions: ${what} is ${shown}, plugin supports ${JSON.stringify(list)}`,
    `${what} cniVersion ${shown} is not one of the supported versions ${list.join(', ')}`,
  );
}
