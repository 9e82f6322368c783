// Which calicoctl release the printers imitate. Output details changed between releases
// (e.g. `get ippool -o wide` gained ASSIGNMENTMODE in v3.30, policies gained a TIER column in
// v3.29, `ipam show --ip` changed its attribute lines in v3.32). The default is the newest
// release the reference describes; pass e.g. 'v3.20.3' to get the seed cluster's output.

export const DEFAULT_CALICO_VERSION = 'v3.32.0';

function parts(v: string): [number, number, number] {
  const m = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(v.trim());
  if (!m) return [Number.MAX_SAFE_INTEGER, 0, 0]; // unparsable (e.g. a dev build) → newest behaviour
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

/** True when `version` (e.g. "v3.20.3", default DEFAULT_CALICO_VERSION) is at least `min`. */
export function versionAtLeast(version: string | undefined, min: string): boolean {
  const a = parts(version ?? DEFAULT_CALICO_VERSION);
  const b = parts(min);
  for (let i = 0; i < 3; i++) {
    if (a[i] !== b[i]) return a[i] > b[i];
  }
  return true;
}
