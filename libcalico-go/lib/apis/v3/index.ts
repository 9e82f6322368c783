// The projectcalico.org/v3 resource model: kinds, the resource shape, reading resource files,
// and validation with Calico's defaults.

export { API_VERSION, KINDS, type KindInfo, kindFromArg, kindInfo } from './kinds.js';
export type { ObjectMeta, Resource } from './resource.js';
export { type Issue, ParseError, ValidationError } from './errors.js';
export { parseDocuments } from './parse.js';
export { type ExistingResources, validateResource, validateResources } from './validate/index.js';
export {
  ALLOWED_USES,
  ASSIGNMENT_MODES,
  DEFAULT_BLOCK_SIZE_V4,
  DEFAULT_BLOCK_SIZE_V6,
  ENCAP_MODES,
  type EncapMode,
  normalizeEncapMode,
} from './validate/ippool.js';
export { BGP_DEFAULTS, DEFAULT_AS_NUMBER, effectiveBGPConfiguration } from './validate/bgp.js';
export { BUILTIN_TIERS, DEFAULT_TIER, POLICY_TYPES, TIER_LABEL } from './validate/policy.js';
export { type WorkloadEndpointIds, workloadEndpointName } from './validate/endpoints.js';
export { FELIX_FIELDS, type FelixFieldType } from './validate/felix-fields.js';
