// Runs CNI plugins the way a container runtime does through libcni: CNI_* environment plus the
// request configuration on stdin, conflists run in order (DEL in reverse), name/cniVersion injected,
// runtimeConfig = capabilities ∩ capability args, prevResult chained on ADD and taken from the result
// cache on DEL, and the libcni result cache file `<cacheDir>/results/<net>-<containerID>-<ifname>`.
// tortie-lab wires its pods with it (ADD and DEL of the seed's conflist).
//
// Where it deliberately differs from libcni:
// - The plugin gets a clean environment: the six CNI_* variables plus PATH (and `env` if given).
//   libcni passes the runtime's whole environment; a clean one catches plugins that rely on more.
// - Results are not converted between versions (libcni converts each result to the list version).
// - The request JSON has its keys sorted at every level, as Go's map marshalling produces.
// - The cache file is removed after every successful DEL (libcni 1.1/1.3 observed behaviour).
//
// It checks nothing beyond what libcni refuses; a caller may add checks of each call (CallCheck):
// testing/cni-harness.ts adds strict spec checks and CHECK, STATUS and GC on top of this module.

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

// ---------------------------------------------------------------------------------------------------
// Small helpers

export type CniArgsInput = string | ReadonlyArray<readonly [string, string]> | Readonly<Record<string, string>>;

/** CNI_ARGS as pairs, in order. */
export function argsToPairs(args: CniArgsInput | undefined): [string, string][] {
  if (args === undefined) return [];
  if (typeof args === 'string') {
    return args
      .split(';')
      .filter((p) => p !== '')
      .map((p) => {
        const i = p.indexOf('=');
        return i < 0 ? [p, ''] : [p.slice(0, i), p.slice(i + 1)];
      });
  }
  if (Array.isArray(args)) return (args as ReadonlyArray<readonly [string, string]>).map(([k, v]) => [k, v]);
  return Object.entries(args as Record<string, string>);
}

/** CNI_ARGS as libcni builds it: "K=V" joined by ";". A string is passed through unchanged. */
export function argsToString(args: CniArgsInput | undefined): string {
  if (typeof args === 'string') return args;
  return argsToPairs(args)
    .map(([k, v]) => `${k}=${v}`)
    .join(';');
}

/** A deep copy with object keys sorted (Go's encoding of map[string]interface{}). */
export function sortKeysDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeysDeep);
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(o).sort()) out[k] = sortKeysDeep(o[k]);
    return out;
  }
  return v;
}

function parseVer(v: string): number[] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** a >= b for X.Y.Z versions (false if either does not parse). */
export function versionGte(a: string, b: string): boolean {
  const pa = parseVer(a);
  const pb = parseVer(b);
  if (!pa || !pb) return false;
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return pa[i]! > pb[i]!;
  return true;
}

/** Spec versions libcni knows. */
export const LIBCNI_VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function ifnameProblem(n: string): string | null {
  if (n === '') return 'is empty';
  if (n.length > 15) return 'is longer than 15 characters';
  if (n === '.' || n === '..') return 'is "." or ".."';
  if (/[/:\s]/.test(n)) return 'contains "/", ":" or whitespace';
  return null;
}

// ---------------------------------------------------------------------------------------------------
// Executing one plugin

export interface ExecOptions {
  command: string;
  containerId?: string;
  netns?: string;
  ifname?: string;
  args?: CniArgsInput;
  /** CNI_PATH: a list of directories or an already joined string. */
  cniPath?: string | readonly string[];
  /** The request configuration: an object (JSON-encoded as is) or raw text. */
  stdinConfig: unknown;
  /** Extra environment variables (override the defaults; undefined removes one). */
  env?: Record<string, string | undefined>;
  /** Kill the plugin after this long (default 30 s). */
  timeoutMs?: number;
  /** Run the plugin through this prefix, e.g. ['/usr/sbin/ip', 'netns', 'exec', 'host-ns']. */
  wrapper?: readonly string[];
  /** Called with the child right after it starts (e.g. to kill it mid-run in a test). */
  onSpawn?: (child: ChildProcess) => void;
}

export interface ExecResult {
  /** Exit code; null when killed by a signal or not started. */
  code: number | null;
  signal: string | null;
  timedOut: boolean;
  /** Set when the process could not be started (ENOENT, EACCES...). */
  spawnError?: string;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, or null when empty or not JSON. */
  json: unknown;
  /** The environment the plugin got. */
  env: Record<string, string>;
  /** The exact stdin text. */
  stdin: string;
  argv: string[];
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function joinPath(p: string | readonly string[] | undefined): string {
  if (p === undefined) return '';
  return typeof p === 'string' ? p : p.join(':');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function execOnce(
  argv: string[],
  env: Record<string, string>,
  stdin: string,
  timeoutMs: number,
  onSpawn?: (child: ChildProcess) => void,
): Promise<ExecResult> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    let spawnError: string | undefined;
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'] });
    onSpawn?.(child);
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => {
      /* the plugin may exit without reading stdin */
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      spawnError = `${e.code ?? ''} ${e.message}`.trim();
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      let json: unknown = null;
      if (stdout.trim() !== '') {
        try {
          json = JSON.parse(stdout);
        } catch {
          json = null;
        }
      }
      const r: ExecResult = {
        code: spawnError ? null : code,
        signal: signal ?? null,
        timedOut,
        stdout,
        stderr: Buffer.concat(err).toString('utf8'),
        json,
        env,
        stdin,
        argv,
      };
      if (spawnError) r.spawnError = spawnError;
      resolve(r);
    });
    child.stdin.end(stdin);
  });
}

/** Runs a plugin once with libcni's environment and stdin. Retries "text file busy" like libcni. */
export async function execPlugin(path: string, opts: ExecOptions): Promise<ExecResult> {
  const merged: Record<string, string | undefined> = {
    CNI_COMMAND: opts.command,
    CNI_CONTAINERID: opts.containerId ?? '',
    CNI_NETNS: opts.netns ?? '',
    CNI_ARGS: argsToString(opts.args),
    CNI_IFNAME: opts.ifname ?? '',
    CNI_PATH: joinPath(opts.cniPath),
    PATH: process.env.PATH || DEFAULT_PATH,
    ...opts.env,
  };
  const env = Object.fromEntries(
    Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const stdin = typeof opts.stdinConfig === 'string' ? opts.stdinConfig : JSON.stringify(opts.stdinConfig);
  const argv = [...(opts.wrapper ?? []), path];
  let r = await execOnce(argv, env, stdin, opts.timeoutMs ?? 30_000, opts.onSpawn);
  for (let i = 0; i < 5 && r.spawnError?.startsWith('ETXTBSY'); i++) {
    await sleep(1000);
    r = await execOnce(argv, env, stdin, opts.timeoutMs ?? 30_000, opts.onSpawn);
  }
  return r;
}

/** libcni's FindInPath: the first regular file named `type` in the directories. */
export function findInPath(type: string, dirs: string | readonly string[]): string {
  const list = typeof dirs === 'string' ? dirs.split(':').filter((d) => d !== '') : [...dirs];
  if (type === '') throw new Error('no plugin name provided');
  if (type.includes('/')) throw new Error(`invalid plugin name: ${type}`);
  if (list.length === 0) throw new Error(`no paths provided`);
  for (const d of list) {
    const p = join(d, type);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      /* try the next directory */
    }
  }
  throw new Error(`failed to find plugin ${JSON.stringify(type)} in path [${list.join(' ')}]`);
}

// ---------------------------------------------------------------------------------------------------
// Conflists

export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface Conflist {
  cniVersion?: string;
  cniVersions?: string[];
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: PluginConf[];
  [key: string]: unknown;
}

export interface RuntimeOptions {
  containerId: string;
  netns: string;
  ifname: string;
  args?: CniArgsInput;
  capabilityArgs?: Record<string, unknown>;
  /** Holds results/<net>-<containerID>-<ifname> (libcni default /var/lib/cni). */
  cacheDir: string;
  cniPath: string | readonly string[];
  wrapper?: readonly string[];
  timeoutMs?: number;
  env?: Record<string, string>;
  /** Highest spec version of the emulated libcni (default 1.1.0; Debian's libcni 1.1.2 is 1.0.0). */
  maxVersion?: string;
}

export interface PluginCall {
  pluginType: string;
  command: string;
  pluginPath?: string;
  /** The request configuration as sent. */
  request: Record<string, unknown>;
  exec?: ExecResult;
  /** Spec violations seen in this call (only with a CallCheck, e.g. the test harness's strict checks). */
  problems: string[];
}

export interface ChainError {
  /** "" when the runner itself refused (e.g. an invalid container ID). */
  pluginType: string;
  /** The plugin's CNI error code; 0 when it gave none (as libcni's types.Error). */
  code: number;
  msg: string;
  details?: string;
  exitCode?: number | null;
  stderr?: string;
}

export interface ChainOutcome {
  ok: boolean;
  /** The list version used. */
  cniVersion: string;
  /** ADD: the final result. */
  result?: Record<string, unknown>;
  error?: ChainError;
  /** GC: every error (GC continues past errors). */
  errors: ChainError[];
  calls: PluginCall[];
  /** All problems of all calls (only with a CallCheck). */
  problems: string[];
  cacheFile?: string;
}

export interface LoadedList {
  list: Conflist;
  bytes: string;
  version: string;
}

/** The list version libcni would use: the highest of cniVersion ∪ cniVersions it knows. */
export function selectConflistVersion(list: Conflist, maxVersion = '1.1.0'): string {
  const known = LIBCNI_VERSIONS.filter((v) => versionGte(maxVersion, v)) as string[];
  if (Array.isArray(list.cniVersions) && list.cniVersions.length > 0) {
    const cands = [...list.cniVersions, ...(list.cniVersion ? [list.cniVersion] : [])].filter((v) => known.includes(v));
    if (cands.length === 0) throw new Error(`no supported cniVersion in ${JSON.stringify(list.cniVersions)}`);
    return cands.reduce((a, b) => (versionGte(a, b) ? a : b));
  }
  return list.cniVersion ?? '';
}

export function loadList(conflist: Conflist | string, maxVersion: string | undefined): LoadedList {
  const bytes = typeof conflist === 'string' ? conflist : JSON.stringify(conflist);
  const list = (typeof conflist === 'string' ? JSON.parse(conflist) : conflist) as Conflist;
  if (typeof list.name !== 'string' || list.name === '') throw new Error('conflist has no name');
  if (!Array.isArray(list.plugins) || list.plugins.length === 0) throw new Error(`conflist ${list.name} has no plugins`);
  for (const p of list.plugins) if (typeof p.type !== 'string' || p.type === '') throw new Error(`conflist ${list.name}: plugin without type`);
  return { list, bytes, version: selectConflistVersion(list, maxVersion) };
}

/** libcni's request: plugin config + name + cniVersion (+ prevResult) (+ runtimeConfig), keys sorted. */
export function buildRequest(
  plugin: PluginConf,
  name: string,
  cniVersion: string,
  prevResult: unknown,
  capabilityArgs: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const req: Record<string, unknown> = { ...plugin, name, cniVersion };
  if (prevResult !== undefined && prevResult !== null) req.prevResult = prevResult;
  if (capabilityArgs) {
    const rc: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
      if (on === true && Object.hasOwn(capabilityArgs, cap)) rc[cap] = capabilityArgs[cap];
    }
    if (Object.keys(rc).length > 0) req.runtimeConfig = rc;
  }
  return sortKeysDeep(req) as Record<string, unknown>;
}

export function cacheFilePath(cacheDir: string, netName: string, containerId: string, ifname: string): string {
  return join(cacheDir, 'results', `${netName}-${containerId}-${ifname}`);
}

/** libcni's cache record (cniCacheV1). */
export interface CacheRecord {
  kind: 'cniCacheV1';
  containerId: string;
  /** base64 of the conflist bytes. */
  config: string;
  ifName: string;
  networkName: string;
  netns?: string;
  cniArgs?: [string, string][];
  capabilityArgs?: Record<string, unknown>;
  result?: Record<string, unknown>;
}

export function readCache(file: string): CacheRecord | null {
  if (!existsSync(file)) return null;
  try {
    const r = JSON.parse(readFileSync(file, 'utf8')) as CacheRecord;
    return r.kind === 'cniCacheV1' ? r : null;
  } catch {
    return null;
  }
}

function writeCache(file: string, rec: CacheRecord): void {
  mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(file, JSON.stringify(rec), { mode: 0o600 });
}

function failureFrom(pluginType: string, r: ExecResult): ChainError {
  const base = { pluginType, exitCode: r.code, stderr: r.stderr };
  if (r.spawnError) return { ...base, code: 0, msg: `failed to run plugin: ${r.spawnError}` };
  if (r.timedOut) return { ...base, code: 0, msg: 'plugin timed out and was killed' };
  if (r.stdout.trim() === '') {
    return r.stderr === ''
      ? { ...base, code: 0, msg: `netplugin failed with no error message: exit ${r.code ?? r.signal}` }
      : { ...base, code: 0, msg: `netplugin failed: ${JSON.stringify(r.stderr)}` };
  }
  const j = r.json as Record<string, unknown> | null;
  if (j === null || typeof j !== 'object') {
    return { ...base, code: 0, msg: `netplugin failed but error parsing its diagnostic message ${JSON.stringify(r.stdout)}` };
  }
  const e: ChainError = { ...base, code: typeof j.code === 'number' ? j.code : 0, msg: typeof j.msg === 'string' ? j.msg : '' };
  if (typeof j.details === 'string' && j.details !== '') e.details = j.details;
  return e;
}

export function outcome(version: string): ChainOutcome {
  return { ok: true, cniVersion: version, errors: [], calls: [], problems: [] };
}

export function fail(o: ChainOutcome, e: ChainError): ChainOutcome {
  o.ok = false;
  o.error ??= e;
  o.errors.push(e);
  return o;
}

/** What the result of an ADD must look like. */
export interface ResultExpectation {
  version: string;
  ifname: string;
  netns: string;
}

/**
 * Extra checks of one finished plugin call (call.exec is set), e.g. a test harness's strict spec
 * checks: the problems found. They are recorded (call.problems, outcome.problems) and change nothing
 * else. `expect` is given for ADD.
 */
export type CallCheck = (call: PluginCall, expect?: ResultExpectation) => string[];

export interface CallSpec {
  command: string;
  plugin: PluginConf;
  request: Record<string, unknown>;
  containerId: string;
  netns: string;
  ifname: string;
  args: CniArgsInput | undefined;
  rt: Pick<RuntimeOptions, 'cniPath' | 'wrapper' | 'timeoutMs' | 'env'>;
  /** For ADD: what the result must look like. */
  expect?: ResultExpectation;
  check?: CallCheck;
}

/** One plugin invocation (and its CallCheck, if any); returns the call and a failure, if any. */
export async function callPlugin(o: ChainOutcome, spec: CallSpec): Promise<{ call: PluginCall; error?: ChainError }> {
  const call: PluginCall = { pluginType: spec.plugin.type, command: spec.command, request: spec.request, problems: [] };
  o.calls.push(call);
  let path: string;
  try {
    path = findInPath(spec.plugin.type, spec.rt.cniPath);
  } catch (e) {
    return { call, error: { pluginType: spec.plugin.type, code: 0, msg: (e as Error).message } };
  }
  call.pluginPath = path;
  const ex: ExecOptions = {
    command: spec.command,
    containerId: spec.containerId,
    netns: spec.netns,
    ifname: spec.ifname,
    cniPath: spec.rt.cniPath,
    stdinConfig: JSON.stringify(spec.request),
  };
  if (spec.args !== undefined) ex.args = spec.args;
  if (spec.rt.wrapper) ex.wrapper = spec.rt.wrapper;
  if (spec.rt.timeoutMs !== undefined) ex.timeoutMs = spec.rt.timeoutMs;
  if (spec.rt.env) ex.env = spec.rt.env;
  const r = await execPlugin(path, ex);
  call.exec = r;
  const unreadable = spec.expect !== undefined && r.code === 0 && (r.json === null || typeof r.json !== 'object' || Array.isArray(r.json));
  if (spec.check && !unreadable) {
    call.problems.push(...spec.check(call, spec.expect));
    o.problems.push(...call.problems.map((p) => `${spec.plugin.type} ${spec.command}: ${p}`));
  }
  if (r.code !== 0) return { call, error: failureFrom(spec.plugin.type, r) };
  if (unreadable) {
    return {
      call,
      error: { pluginType: spec.plugin.type, code: 0, msg: `failed to unmarshal raw result: ${JSON.stringify(r.stdout.slice(0, 200))}`, exitCode: 0, stderr: r.stderr },
    };
  }
  return { call };
}

function validateRuntime(rt: RuntimeOptions, name: string): string | null {
  if (!ID_RE.test(rt.containerId)) return `invalid container ID ${JSON.stringify(rt.containerId)}`;
  if (!ID_RE.test(name)) return `invalid network name ${JSON.stringify(name)}`;
  const p = ifnameProblem(rt.ifname);
  if (p) return `invalid interface name ${JSON.stringify(rt.ifname)}: ${p}`;
  return null;
}

export function specBase(rt: RuntimeOptions) {
  return { containerId: rt.containerId, netns: rt.netns, ifname: rt.ifname, args: rt.args, rt };
}

/** ADD through the list in order, chaining prevResult; writes the cache after full success. */
export async function runConflistAdd(conflist: Conflist | string, rt: RuntimeOptions, check?: CallCheck): Promise<ChainOutcome> {
  const { list, bytes, version } = loadList(conflist, rt.maxVersion);
  const o = outcome(version);
  const bad = validateRuntime(rt, list.name);
  if (bad) return fail(o, { pluginType: '', code: 0, msg: bad });
  let prev: Record<string, unknown> | undefined;
  for (const plugin of list.plugins) {
    const request = buildRequest(plugin, list.name, version, prev, rt.capabilityArgs);
    const { call, error } = await callPlugin(o, {
      ...specBase(rt),
      command: 'ADD',
      plugin,
      request,
      expect: { version, ifname: rt.ifname, netns: rt.netns },
      check,
    });
    if (error) return fail(o, error);
    const res = { ...(call.exec!.json as Record<string, unknown>) };
    if (res.cniVersion === undefined) res.cniVersion = version; // libcni's fixupResultVersion
    prev = res;
  }
  o.result = prev!;
  const file = cacheFilePath(rt.cacheDir, list.name, rt.containerId, rt.ifname);
  const rec: CacheRecord = {
    kind: 'cniCacheV1',
    containerId: rt.containerId,
    config: Buffer.from(bytes, 'utf8').toString('base64'),
    ifName: rt.ifname,
    networkName: list.name,
  };
  if (rt.netns) rec.netns = rt.netns;
  const pairs = argsToPairs(rt.args);
  if (pairs.length > 0) rec.cniArgs = pairs;
  if (rt.capabilityArgs && Object.keys(rt.capabilityArgs).length > 0) rec.capabilityArgs = rt.capabilityArgs;
  rec.result = prev!;
  writeCache(file, rec);
  o.cacheFile = file;
  return o;
}

/**
 * DEL through the list in reverse. prevResult (every plugin) is the cached final ADD result, only for
 * lists >= 0.4.0. The cache file is removed after success.
 */
export async function runConflistDel(conflist: Conflist | string, rt: RuntimeOptions, check?: CallCheck): Promise<ChainOutcome> {
  const { list, version } = loadList(conflist, rt.maxVersion);
  const o = outcome(version);
  const file = cacheFilePath(rt.cacheDir, list.name, rt.containerId, rt.ifname);
  o.cacheFile = file;
  let cached: Record<string, unknown> | undefined;
  if (versionGte(version, '0.4.0')) {
    const rec = readCache(file);
    if (rec?.result && typeof rec.result === 'object') cached = rec.result;
    else if (existsSync(file)) rmSync(file, { force: true }); // unreadable cache: dropped, as libcni
  }
  for (let i = list.plugins.length - 1; i >= 0; i--) {
    const plugin = list.plugins[i]!;
    const request = buildRequest(plugin, list.name, version, cached, rt.capabilityArgs);
    const { error } = await callPlugin(o, { ...specBase(rt), command: 'DEL', plugin, request, check });
    if (error) return fail(o, error);
  }
  rmSync(file, { force: true });
  return o;
}
