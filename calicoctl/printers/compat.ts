// Which calicoctl release tortiectl's tables imitate. Output details changed between releases
// (`get ippool -o wide` gained ASSIGNMENTMODE in v3.30, policies gained a TIER column in v3.29,
// `ipam show --ip` changed its attribute lines in v3.32). The default is the release Tortie
// targets (v3.29, the Kubernetes-datastore layout it stores); TORTIECTL_COMPAT_VERSION selects
// another, e.g. v3.20.3 for the seed cluster's output or v3.32.0 for the newest.

export const DEFAULT_CALICO_VERSION = 'v3.29.0';

/** The release to imitate: TORTIECTL_COMPAT_VERSION, else DEFAULT_CALICO_VERSION. */
export function compatVersion(env: Record<string, string | undefined> = process.env): string {
  return env.TORTIECTL_COMPAT_VERSION || DEFAULT_CALICO_VERSION;
}

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
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}
