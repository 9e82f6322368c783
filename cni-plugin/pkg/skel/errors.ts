// CNI error codes and the error JSON a plugin prints on stdout (CNI spec §5 "Error").

/** Well-known CNI error codes. 0–99 are reserved by the spec; 100+ are plugin-specific. */
export const ErrCode = {
  /** Incompatible CNI version. */
  IncompatibleVersion: 1,
  /** Unsupported field in the network configuration (msg names key and value). */
  UnsupportedField: 2,
  /** Container unknown or does not exist. */
  UnknownContainer: 3,
  /** Invalid necessary environment variables (msg names them). */
  InvalidEnvironment: 4,
  /** I/O failure, e.g. reading stdin. */
  IOFailure: 5,
  /** Failed to decode content (config or version JSON). */
  DecodingFailure: 6,
  /** Invalid network configuration. */
  InvalidNetworkConfig: 7,
  /** Go-only: CNI_NETNS is the plugin's own namespace. */
  InvalidNetNS: 8,
  /** Try again later (transient). */
  TryAgainLater: 11,
  /** STATUS: plugin not available. */
  PluginNotAvailable: 50,
  /** STATUS: not available, existing containers may have limited connectivity. */
  PluginNotAvailableLimitedConnectivity: 51,
  /** Any error that is not a CniError (Go's ErrInternal). */
  Internal: 999,
} as const;

export class CniError extends Error {
  readonly code: number;
  readonly details: string | undefined;

  constructor(code: number, msg: string, details?: string) {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details === '' ? undefined : details;
  }

  /** The spec's `msg` field. */
  get msg(): string {
    return this.message;
  }
}

/** Converts anything thrown into a CniError; non-CniErrors become code 999 with their message. */
export function toCniError(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof Error) return new CniError(ErrCode.Internal, e.message || e.name);
  return new CniError(ErrCode.Internal, String(e));
}

/** The spec's error object. `cniVersion` is included only when given. */
export interface CniErrorJson {
  cniVersion?: string;
  code: number;
  msg: string;
  details?: string;
}

export function errorJson(err: CniError, cniVersion?: string): CniErrorJson {
  const out: CniErrorJson = cniVersion
    ? { cniVersion, code: err.code, msg: err.message }
    : { code: err.code, msg: err.message };
  if (err.details !== undefined && err.details !== '') out.details = err.details;
  return out;
}

/** The error JSON text for stdout: `{"cniVersion","code","msg","details"}` (no trailing newline). */
export function formatError(err: CniError, cniVersion?: string): string {
  return JSON.stringify(errorJson(err, cniVersion));
}
