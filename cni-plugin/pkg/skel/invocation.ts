// Parsing one plugin invocation (environment + stdin) into a validated Invocation.
//
// Order of checks (first failure wins): CNI_COMMAND, required variables, CNI_CONTAINERID, CNI_IFNAME,
// CNI_ARGS, stdin JSON, network name, cniVersion, command-vs-version gating.
//
// Decisions:
// - Empty variables count as absent (libcni sets all six, with "" where unused).
// - CNI_PATH is never required (the spec makes it optional except for GC; Go's skel requires it, we are
//   lenient; a plugin that must delegate reports its own error when it cannot find the delegate).
// - CNI_NETNS is optional for DEL (ctr passes "" after the task exits).
// - STATUS and GC require nothing beyond the command; container ID / ifname are ignored for them.
// - VERSION ignores the environment besides CNI_COMMAND; stdin may be empty, otherwise it must be
//   JSON (code 6) and its cniVersion, if a string, is reported as `cniVersion` (possibly unsupported).
// - A missing or empty cniVersion is taken as "0.1.0" (Go's convention; Calico uses "0.2.0"); neither
//   is supported by Tortie, so such configs fail with code 1.
// - cniVersion ∪ cniVersions: the highest supported one is selected.
// - A cniVersion/cniVersions of the wrong JSON type is code 7 (invalid network config).
// - CHECK needs config version >= 0.4.0, STATUS and GC need >= 1.1.0 (code 1 otherwise), as Go's skel.

import { parseCniArgs, type ParseArgsOptions } from './args.js';
import { CniError, ErrCode } from './errors.js';
import { validateContainerId, validateIfName, validateNetworkName } from './validate.js';
import { incompatibleVersionError, selectVersion, sortedVersions, versionAtLeast } from './version.js';

export const COMMANDS = ['ADD', 'DEL', 'CHECK', 'VERSION', 'STATUS', 'GC'] as const;
export type CniCommand = (typeof COMMANDS)[number];

export interface Invocation {
  command: CniCommand;
  /** CNI_CONTAINERID ("" when not given, e.g. STATUS/GC/VERSION). */
  containerId: string;
  /** CNI_NETNS ("" when not given). */
  netns: string;
  /** CNI_IFNAME ("" when not given). */
  ifname: string;
  /** CNI_ARGS as a map. */
  args: Map<string, string>;
  /** CNI_PATH split on ":" (empty entries dropped). */
  path: string[];
  /** The parsed stdin configuration, unchanged ({} for VERSION with empty stdin). */
  config: Record<string, unknown>;
  /** The selected config version; for VERSION the requested one ("" when none). */
  cniVersion: string;
  /** The raw stdin text, e.g. to hand to a delegated IPAM plugin. */
  stdin: string;
}

/** Which variables each command requires (besides CNI_COMMAND). */
export const REQUIRED_ENV: Readonly<Record<CniCommand, readonly string[]>> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME'],
  VERSION: [],
  STATUS: [],
  GC: [],
};

/** Minimum config version per command. */
export const MIN_VERSION: Readonly<Partial<Record<CniCommand, string>>> = {
  CHECK: '0.4.0',
  STATUS: '1.1.0',
  GC: '1.1.0',
};

export type InvocationOptions = ParseArgsOptions;

type Env = Record<string, string | undefined>;

function envValue(env: Env, key: string): string {
  return env[key] ?? '';
}

function isCommand(s: string): s is CniCommand {
  return (COMMANDS as readonly string[]).includes(s);
}

function missingEnvError(names: string[]): CniError {
  return new CniError(ErrCode.InvalidEnvironment, `required env variables [${names.join(',')}] missing`);
}

function describeJsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return `a ${typeof v}`;
}

/** Parses stdin as a JSON object; code 6 on failure. */
export function parseConfigJson(stdin: string): Record<string, unknown> {
  if (stdin.trim() === '') {
    throw new CniError(ErrCode.DecodingFailure, 'failed to decode network configuration: stdin is empty');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdin);
  } catch (e) {
    throw new CniError(
      ErrCode.DecodingFailure,
      `failed to decode network configuration from stdin: ${(e as Error).message}`,
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new CniError(
      ErrCode.DecodingFailure,
      `failed to decode network configuration from stdin: expected a JSON object, got ${describeJsonType(parsed)}`,
    );
  }
  return parsed as Record<string, unknown>;
}

/**
 * Selects the config version from `cniVersion` ∪ `cniVersions`: the highest one in `supported`.
 * Throws code 7 for wrongly typed fields and code 1 when none is supported.
 */
export function selectConfigVersion(config: Record<string, unknown>, supported: readonly string[]): string {
  const single = config.cniVersion;
  if (single !== undefined && typeof single !== 'string') {
    throw new CniError(
      ErrCode.InvalidNetworkConfig,
      `invalid cniVersion ${JSON.stringify(single)}: must be a string`,
    );
  }
  const multi = config.cniVersions;
  let list: string[] = [];
  if (multi !== undefined) {
    if (!Array.isArray(multi) || !multi.every((v) => typeof v === 'string')) {
      throw new CniError(
        ErrCode.InvalidNetworkConfig,
        `invalid cniVersions ${JSON.stringify(multi)}: must be an array of strings`,
      );
    }
    list = multi as string[];
  }
  const candidates = [...list];
  if (single) candidates.push(single);
  if (candidates.length === 0) {
    const chosen = selectVersion(['0.1.0'], supported);
    if (chosen) return chosen;
    throw new CniError(
      ErrCode.IncompatibleVersion,
      `incompatible CNI versions: config has no cniVersion (taken as "0.1.0"), plugin supports ${JSON.stringify(sortedVersions(supported))}`,
    );
  }
  const chosen = selectVersion(candidates, supported);
  if (chosen) return chosen;
  if (candidates.length === 1) throw incompatibleVersionError(candidates[0]!, supported);
  throw new CniError(
    ErrCode.IncompatibleVersion,
    `incompatible CNI versions: config offers ${JSON.stringify([...new Set(candidates)])}, plugin supports ${JSON.stringify(sortedVersions(supported))}`,
  );
}

export function parseInvocation(
  env: Env,
  stdin: string,
  supported: readonly string[],
  opts: InvocationOptions = {},
): Invocation {
  const rawCommand = envValue(env, 'CNI_COMMAND');
  if (rawCommand === '') throw missingEnvError(['CNI_COMMAND']);
  if (!isCommand(rawCommand)) {
    throw new CniError(
      ErrCode.InvalidEnvironment,
      `unknown CNI_COMMAND ${JSON.stringify(rawCommand)} (expected one of ${COMMANDS.join(', ')})`,
    );
  }
  const command = rawCommand;

  const missing = REQUIRED_ENV[command].filter((k) => envValue(env, k) === '');
  if (missing.length > 0) throw missingEnvError(missing);

  const containerId = envValue(env, 'CNI_CONTAINERID');
  const ifname = envValue(env, 'CNI_IFNAME');
  const netns = envValue(env, 'CNI_NETNS');
  const path = envValue(env, 'CNI_PATH')
    .split(':')
    .filter((p) => p !== '');

  if (command === 'VERSION') {
    let config: Record<string, unknown> = {};
    if (stdin.trim() !== '') config = parseConfigJson(stdin);
    const requested = typeof config.cniVersion === 'string' ? config.cniVersion : '';
    return { command, containerId, netns, ifname, args: new Map(), path, config, cniVersion: requested, stdin };
  }

  if (command === 'ADD' || command === 'CHECK' || command === 'DEL') {
    validateContainerId(containerId);
    validateIfName(ifname);
  }

  const args = parseCniArgs(env.CNI_ARGS, opts);
  const config = parseConfigJson(stdin);

  const name = config.name;
  if (name === undefined || name === null || name === '') {
    throw new CniError(ErrCode.InvalidNetworkConfig, 'missing network name: config key "name" is absent or empty');
  }
  if (typeof name !== 'string') {
    throw new CniError(
      ErrCode.InvalidNetworkConfig,
      `invalid network name ${JSON.stringify(name)}: must be a string`,
    );
  }
  validateNetworkName(name);

  const cniVersion = selectConfigVersion(config, supported);
  const min = MIN_VERSION[command];
  if (min !== undefined && !versionAtLeast(cniVersion, min)) {
    throw new CniError(
      ErrCode.IncompatibleVersion,
      `config version ${JSON.stringify(cniVersion)} does not allow ${command} (requires ${min} or later)`,
    );
  }

  return { command, containerId, netns, ifname, args, path, config, cniVersion, stdin };
}
