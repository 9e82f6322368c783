// Which calicoctl release tortiectl's tables imitate: a 3.2x release, the seed cluster's era, by
// default (no ASSIGNMENTMODE column; `ipam show --ip` with `Attributes:`). TORTIECTL_COMPAT_VERSION
// selects another, e.g. v3.32.0.
export const DEFAULT_COMPAT_VERSION = 'v3.29.0';

export function compatVersion(env: Record<string, string | undefined> = process.env): string {
  return env.TORTIECTL_COMPAT_VERSION || DEFAULT_COMPAT_VERSION;
}
