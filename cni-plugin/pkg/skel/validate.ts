// Validation of container IDs, interface names and network names (CNI spec §2 and §1).

import { CniError, ErrCode } from './errors.js';

/** Container IDs and network names share this rule. */
export const ID_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
export const MAX_IFNAME_LEN = 15;

/** null when valid, otherwise the reason. */
export function containerIdProblem(id: string): string | null {
  if (id === '') return 'must not be empty';
  if (!ID_PATTERN.test(id)) return `must match ${ID_PATTERN.source}`;
  return null;
}

/** null when valid, otherwise the reason. */
export function ifnameProblem(name: string): string | null {
  if (name === '') return 'must not be empty';
  if (name.length > MAX_IFNAME_LEN) return `is ${name.length} characters, at most ${MAX_IFNAME_LEN} allowed`;
  if (name === '.' || name === '..') return 'must not be "." or ".."';
  if (name.includes('/')) return 'must not contain "/"';
  if (name.includes(':')) return 'must not contain ":"';
  if (/\s/.test(name)) return 'must not contain whitespace';
  return null;
}

/** null when valid, otherwise the reason. */
export function networkNameProblem(name: string): string | null {
  return containerIdProblem(name);
}

/** Throws code 4 naming CNI_CONTAINERID and the value. */
export function validateContainerId(id: string): void {
  const p = containerIdProblem(id);
  if (p) throw new CniError(ErrCode.InvalidEnvironment, `invalid CNI_CONTAINERID ${JSON.stringify(id)}: ${p}`);
}

/** Throws code 4 naming CNI_IFNAME and the value. */
export function validateIfName(name: string): void {
  const p = ifnameProblem(name);
  if (p) throw new CniError(ErrCode.InvalidEnvironment, `invalid CNI_IFNAME ${JSON.stringify(name)}: ${p}`);
}

/** Throws code 7 naming the network name. */
export function validateNetworkName(name: string): void {
  const p = networkNameProblem(name);
  if (p) throw new CniError(ErrCode.InvalidNetworkConfig, `invalid network name ${JSON.stringify(name)}: ${p}`);
}
