// The CNI protocol layer: invocation parsing, results, errors, VERSION and GC helpers, plugin entry.

export { CniError, ErrCode, errorJson, formatError, toCniError, type CniErrorJson } from './errors.js';
export {
  DEFAULT_SUPPORTED_VERSIONS,
  RESULT_VERSIONS,
  compareVersions,
  highestVersion,
  incompatibleVersionError,
  parseVersion,
  selectVersion,
  sortedVersions,
  versionAtLeast,
  versionResponse,
  type VersionResponse,
} from './version.js';
export { IGNORE_UNKNOWN, formatCniArgs, ignoresUnknown, parseArgBool, parseCniArgs, type ParseArgsOptions } from './args.js';
export {
  ID_PATTERN,
  MAX_IFNAME_LEN,
  containerIdProblem,
  ifnameProblem,
  networkNameProblem,
  validateContainerId,
  validateIfName,
  validateNetworkName,
} from './validate.js';
export {
  COMMANDS,
  MIN_VERSION,
  REQUIRED_ENV,
  parseConfigJson,
  parseInvocation,
  selectConfigVersion,
  type CniCommand,
  type Invocation,
  type InvocationOptions,
} from './invocation.js';
export {
  cidrFamily,
  formatResult,
  parseResult,
  prevResultOf,
  type FormatOptions,
  type InternalResult,
  type ParsedResult,
  type ResultDNS,
  type ResultIP,
  type ResultInterface,
  type ResultRoute,
} from './result.js';
export {
  GC_LEGACY_ATTACHMENTS_KEY,
  GC_VALID_ATTACHMENTS_KEY,
  isValidAttachment,
  parseGcAttachments,
  type GcAttachment,
} from './gc.js';
export {
  executePlugin,
  redirectConsoleToStderr,
  runPlugin,
  writeAllSync,
  type PluginHandlers,
  type PluginOutput,
  type RunOptions,
  type RunPluginOptions,
} from './run.js';
