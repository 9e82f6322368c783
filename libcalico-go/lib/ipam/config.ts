// The cluster's IPAM settings: the v3 IPAMConfiguration resource named `default`, or Calico's
// defaults when it does not exist (Calico does not persist defaults either).
import type { Backend } from '../backend/api.js';
import { resourceKey } from '../backend/keys.js';

export interface IPAMConfig {
  strictAffinity: boolean;
  autoAllocateBlocks: boolean;
  /** 0 means the default limit of 20. */
  maxBlocksPerHost: number;
}

export const DEFAULT_MAX_BLOCKS_PER_HOST = 20;

export const DEFAULT_IPAM_CONFIG: IPAMConfig = { strictAffinity: false, autoAllocateBlocks: true, maxBlocksPerHost: 0 };

export async function readIPAMConfig(store: Backend): Promise<IPAMConfig> {
  const kv = await store.get(resourceKey('IPAMConfiguration', 'default'));
  if (!kv) return { ...DEFAULT_IPAM_CONFIG };
  const spec = (JSON.parse(kv.value).spec ?? {}) as Partial<IPAMConfig>;
  return {
    strictAffinity: spec.strictAffinity === true,
    autoAllocateBlocks: spec.autoAllocateBlocks !== false,
    maxBlocksPerHost: typeof spec.maxBlocksPerHost === 'number' ? spec.maxBlocksPerHost : 0,
  };
}

export function effectiveMaxBlocks(cfg: IPAMConfig, perRequest?: number): number {
  const limits = [cfg.maxBlocksPerHost, perRequest ?? 0].filter((n) => n > 0);
  return limits.length ? Math.min(...limits) : DEFAULT_MAX_BLOCKS_PER_HOST;
}
