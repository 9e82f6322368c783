// GC (spec 1.1.0): the list of still-valid attachments passed in the config.
//
// Decisions:
// - The key is `cni.dev/valid-attachments` (spec HEAD) or `cni.dev/attachments` (spec-v1.1.0 tag);
//   libcni >= 1.2 sends both. When both are present the union is returned (keeping more is the safe
//   side of a disagreement), deduplicated, first occurrence order.
// - Neither key present, or every present key `null` → null ("no list given"; cnitool gc sends none).
//   A null list must not be read as "nothing is valid": the caller decides what to do.
// - A wrongly typed list or entry is code 7; refusing to GC is safer than misreading the list.

import { CniError, ErrCode } from './errors.js';

export const GC_VALID_ATTACHMENTS_KEY = 'cni.dev/valid-attachments';
export const GC_LEGACY_ATTACHMENTS_KEY = 'cni.dev/attachments';

export interface GcAttachment {
  containerID: string;
  ifname: string;
}

function parseList(raw: unknown, key: string): GcAttachment[] {
  if (!Array.isArray(raw)) {
    throw new CniError(ErrCode.InvalidNetworkConfig, `invalid ${key}: must be an array of {containerID, ifname}`);
  }
  return raw.map((e, i) => {
    const where = `${key}[${i}]`;
    if (e === null || typeof e !== 'object' || Array.isArray(e)) {
      throw new CniError(ErrCode.InvalidNetworkConfig, `invalid ${where}: must be an object`);
    }
    const o = e as Record<string, unknown>;
    if (typeof o.containerID !== 'string' || o.containerID === '') {
      throw new CniError(ErrCode.InvalidNetworkConfig, `invalid ${where}.containerID ${JSON.stringify(o.containerID)}: must be a non-empty string`);
    }
    if (typeof o.ifname !== 'string') {
      throw new CniError(ErrCode.InvalidNetworkConfig, `invalid ${where}.ifname ${JSON.stringify(o.ifname)}: must be a string`);
    }
    return { containerID: o.containerID, ifname: o.ifname };
  });
}

export function parseGcAttachments(config: Record<string, unknown>): GcAttachment[] | null {
  let out: GcAttachment[] | null = null;
  const seen = new Set<string>();
  for (const key of [GC_VALID_ATTACHMENTS_KEY, GC_LEGACY_ATTACHMENTS_KEY]) {
    const raw = config[key];
    if (raw === undefined || raw === null) continue;
    const list = parseList(raw, key);
    out ??= [];
    for (const a of list) {
      const k = `${a.containerID}\u0000${a.ifname}`;
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(a);
    }
  }
  return out;
}

/** Whether (containerID, ifname) is in the list. */
export function isValidAttachment(list: readonly GcAttachment[], containerID: string, ifname: string): boolean {
  return list.some((a) => a.containerID === containerID && a.ifname === ifname);
}
