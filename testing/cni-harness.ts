// A test client that invokes CNI plugin executables the way libcni does: CNI_* environment plus the
// request configuration on stdin, conflists run in order (DEL in reverse), name/cniVersion injected,
// runtimeConfig = capabilities ∩ capability args, prevResult chained on ADD and taken from the result
// cache on DEL/CHECK, and the libcni result cache file `<cacheDir>/results/<net>-<containerID>-<ifname>`.
//
// It is written independently of cni-plugin/pkg/skel so that it can judge that code.
//
// Where it deliberately differs from libcni:
// - The plugin gets a clean environment: the six CNI_* variables plus PATH (and `env` if given).
//   libcni passes the runtime's whole environment; a clean one catches plugins that rely on more.
// - Results are not converted between versions. libcni converts each result to the list version; this
//   harness instead reports a mismatch as a problem (see `problems`), so strict tests can fail on it.
// - The request JSON has its keys sorted at every level, as Go's map marshalling produces.
// - The cache file is removed after every successful DEL (libcni 1.1/1.3 observed behaviour).
//
// Netns helpers create uniquely named namespaces and delete them, also at process exit.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
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

function cidrFamily(s: string): 4 | 6 | null {
  const i = s.indexOf('/');
  if (i < 0) return null;
  const fam = isIP(s.slice(0, i));
  const p = s.slice(i + 1);
  if (fam === 0 || !/^\d{1,3}$/.test(p) || Number(p) > (fam === 4 ? 32 : 128)) return null;
  return fam as 4 | 6;
}

const ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$/;

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

export interface VersionProbeOptions {
  /** cniVersion sent on stdin (libcni sends its own current version). */
  requested?: string;
  wrapper?: readonly string[];
  timeoutMs?: number;
}

/** The VERSION probe exactly as libcni's GetVersionInfo sends it. */
export function execVersion(path: string, opts: VersionProbeOptions = {}): Promise<ExecResult> {
  const o: ExecOptions = {
    command: 'VERSION',
    netns: 'dummy',
    ifname: 'dummy',
    cniPath: 'dummy',
    stdinConfig: { cniVersion: opts.requested ?? '1.1.0' },
  };
  if (opts.wrapper) o.wrapper = opts.wrapper;
  if (opts.timeoutMs !== undefined) o.timeoutMs = opts.timeoutMs;
  return execPlugin(path, o);
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
// Result checks

export interface ShapeExpectations {
  /** CNI_IFNAME / CNI_NETNS: when given, some interface must be {name: ifname, sandbox: netns}. */
  ifname?: string;
  netns?: string;
}

/** Problems with a result object for spec version `version` (empty = conformant). */
export function validateResultShape(result: unknown, version: string, expect: ShapeExpectations = {}): string[] {
  const p: string[] = [];
  if (result === null || typeof result !== 'object' || Array.isArray(result)) return ['result is not a JSON object'];
  const r = result as Record<string, unknown>;
  if (r.cniVersion !== version) p.push(`result cniVersion ${JSON.stringify(r.cniVersion)} != requested ${JSON.stringify(version)}`);
  const v1 = versionGte(version, '1.0.0');
  const v11 = versionGte(version, '1.1.0');
  let ifaceCount = 0;
  if (r.interfaces !== undefined) {
    if (!Array.isArray(r.interfaces)) p.push('interfaces is not an array');
    else {
      ifaceCount = r.interfaces.length;
      r.interfaces.forEach((i: unknown, idx) => {
        const o = (i ?? {}) as Record<string, unknown>;
        if (typeof o.name !== 'string' || o.name === '') p.push(`interfaces[${idx}].name missing`);
        for (const k of ['mac', 'sandbox']) if (o[k] !== undefined && typeof o[k] !== 'string') p.push(`interfaces[${idx}].${k} not a string`);
        if (!v11) for (const k of ['mtu', 'socketPath', 'pciID']) if (o[k] !== undefined) p.push(`interfaces[${idx}].${k} is a 1.1.0 field`);
      });
      if (expect.ifname !== undefined) {
        const found = r.interfaces.some((i: unknown) => {
          const o = (i ?? {}) as Record<string, unknown>;
          return o.name === expect.ifname && (expect.netns === undefined || o.sandbox === expect.netns);
        });
        if (!found) p.push(`no interface {name: ${JSON.stringify(expect.ifname)}, sandbox: ${JSON.stringify(expect.netns)}}`);
      }
    }
  }
  if (r.ips !== undefined) {
    if (!Array.isArray(r.ips)) p.push('ips is not an array');
    else {
      r.ips.forEach((i: unknown, idx) => {
        const o = (i ?? {}) as Record<string, unknown>;
        const fam = typeof o.address === 'string' ? cidrFamily(o.address) : null;
        if (fam === null) p.push(`ips[${idx}].address ${JSON.stringify(o.address)} is not IP/prefix`);
        if (o.gateway !== undefined && (typeof o.gateway !== 'string' || isIP(o.gateway) === 0)) p.push(`ips[${idx}].gateway is not an IP`);
        if (v1) {
          if (o.version !== undefined) p.push(`ips[${idx}].version present in a ${version} result`);
        } else if (o.version !== '4' && o.version !== '6') {
          p.push(`ips[${idx}].version ${JSON.stringify(o.version)} (must be "4" or "6" in ${version})`);
        } else if (fam !== null && o.version !== String(fam)) {
          p.push(`ips[${idx}].version ${o.version} does not match the address`);
        }
        if (o.interface !== undefined) {
          const n = o.interface;
          if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= ifaceCount) {
            p.push(`ips[${idx}].interface ${JSON.stringify(n)} out of range (${ifaceCount} interfaces)`);
          }
        }
      });
    }
  }
  if (r.routes !== undefined) {
    if (!Array.isArray(r.routes)) p.push('routes is not an array');
    else {
      r.routes.forEach((i: unknown, idx) => {
        const o = (i ?? {}) as Record<string, unknown>;
        if (typeof o.dst !== 'string' || cidrFamily(o.dst) === null) p.push(`routes[${idx}].dst is not a CIDR`);
        if (o.gw !== undefined && (typeof o.gw !== 'string' || isIP(o.gw) === 0)) p.push(`routes[${idx}].gw is not an IP`);
        if (!v11) for (const k of ['mtu', 'advmss', 'priority', 'table', 'scope']) if (o[k] !== undefined) p.push(`routes[${idx}].${k} is a 1.1.0 field`);
      });
    }
  }
  if (r.dns !== undefined && (r.dns === null || typeof r.dns !== 'object' || Array.isArray(r.dns))) p.push('dns is not an object');
  return p;
}

/** Problems with a failed plugin's stdout (the spec's error JSON is required there). */
export function validateErrorShape(stdout: string): string[] {
  let j: unknown;
  try {
    j = JSON.parse(stdout);
  } catch {
    return [`error not reported as JSON on stdout: ${JSON.stringify(stdout.slice(0, 200))}`];
  }
  const o = (j ?? {}) as Record<string, unknown>;
  const p: string[] = [];
  if (typeof o.code !== 'number' || !Number.isInteger(o.code)) p.push('error JSON has no integer code');
  if (typeof o.msg !== 'string') p.push('error JSON has no msg string');
  if (o.details !== undefined && typeof o.details !== 'string') p.push('error JSON details is not a string');
  return p;
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
  /** Spec violations seen in this call (strict checks). */
  problems: string[];
}

export interface ChainError {
  /** "" when the harness itself refused (e.g. CHECK on a 0.3.1 list). */
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
  /** All problems of all calls. */
  problems: string[];
  cacheFile?: string;
}

interface LoadedList {
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

function loadList(conflist: Conflist | string, maxVersion: string | undefined): LoadedList {
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
      if (on === true && Object.prototype.hasOwnProperty.call(capabilityArgs, cap)) rc[cap] = capabilityArgs[cap];
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

function outcome(version: string): ChainOutcome {
  return { ok: true, cniVersion: version, errors: [], calls: [], problems: [] };
}

function fail(o: ChainOutcome, e: ChainError): ChainOutcome {
  o.ok = false;
  o.error ??= e;
  o.errors.push(e);
  return o;
}

interface CallSpec {
  command: string;
  plugin: PluginConf;
  request: Record<string, unknown>;
  containerId: string;
  netns: string;
  ifname: string;
  args: CniArgsInput | undefined;
  rt: Pick<RuntimeOptions, 'cniPath' | 'wrapper' | 'timeoutMs' | 'env'>;
  /** For ADD: what the result must look like. */
  expect?: { version: string; ifname: string; netns: string };
}

/** One plugin invocation with strict checks; returns the call and a failure, if any. */
async function callPlugin(o: ChainOutcome, spec: CallSpec): Promise<{ call: PluginCall; error?: ChainError }> {
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
  if (r.code !== 0) {
    if (!r.spawnError && !r.timedOut) call.problems.push(...validateErrorShape(r.stdout));
    o.problems.push(...call.problems.map((p) => `${spec.plugin.type} ${spec.command}: ${p}`));
    return { call, error: failureFrom(spec.plugin.type, r) };
  }
  if (spec.expect) {
    if (r.json === null || typeof r.json !== 'object' || Array.isArray(r.json)) {
      return {
        call,
        error: { pluginType: spec.plugin.type, code: 0, msg: `failed to unmarshal raw result: ${JSON.stringify(r.stdout.slice(0, 200))}`, exitCode: 0, stderr: r.stderr },
      };
    }
    call.problems.push(...validateResultShape(r.json, spec.expect.version, { ifname: spec.expect.ifname, netns: spec.expect.netns }));
  } else if (r.stdout.trim() !== '') {
    call.problems.push(`unexpected stdout on ${spec.command}: ${JSON.stringify(r.stdout.slice(0, 200))}`);
  }
  o.problems.push(...call.problems.map((p) => `${spec.plugin.type} ${spec.command}: ${p}`));
  return { call };
}

function validateRuntime(rt: RuntimeOptions, name: string): string | null {
  if (!ID_RE.test(rt.containerId)) return `invalid container ID ${JSON.stringify(rt.containerId)}`;
  if (!ID_RE.test(name)) return `invalid network name ${JSON.stringify(name)}`;
  const p = ifnameProblem(rt.ifname);
  if (p) return `invalid interface name ${JSON.stringify(rt.ifname)}: ${p}`;
  return null;
}

function specBase(rt: RuntimeOptions) {
  return { containerId: rt.containerId, netns: rt.netns, ifname: rt.ifname, args: rt.args, rt };
}

/** ADD through the list in order, chaining prevResult; writes the cache after full success. */
export async function runConflistAdd(conflist: Conflist | string, rt: RuntimeOptions): Promise<ChainOutcome> {
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
export async function runConflistDel(conflist: Conflist | string, rt: RuntimeOptions): Promise<ChainOutcome> {
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
    const { error } = await callPlugin(o, { ...specBase(rt), command: 'DEL', plugin, request });
    if (error) return fail(o, error);
  }
  rmSync(file, { force: true });
  return o;
}

/** CHECK in list order with the cached result as prevResult; refused for lists < 0.4.0. */
export async function runConflistCheck(conflist: Conflist | string, rt: RuntimeOptions): Promise<ChainOutcome> {
  const { list, version } = loadList(conflist, rt.maxVersion);
  const o = outcome(version);
  if (!versionGte(version, '0.4.0')) {
    return fail(o, { pluginType: '', code: 0, msg: `configuration version ${JSON.stringify(version)} does not support the CHECK command` });
  }
  if (list.disableCheck === true) return o;
  const file = cacheFilePath(rt.cacheDir, list.name, rt.containerId, rt.ifname);
  o.cacheFile = file;
  const cached = readCache(file)?.result;
  for (const plugin of list.plugins) {
    const request = buildRequest(plugin, list.name, version, cached, rt.capabilityArgs);
    const { error } = await callPlugin(o, { ...specBase(rt), command: 'CHECK', plugin, request });
    if (error) return fail(o, error);
  }
  return o;
}

export interface ListOptions {
  cniPath: string | readonly string[];
  wrapper?: readonly string[];
  timeoutMs?: number;
  env?: Record<string, string>;
  maxVersion?: string;
}

/** STATUS (lists >= 1.1.0 only; otherwise nothing is run): empty CONTAINERID/NETNS/IFNAME, stops at the first error. */
export async function runConflistStatus(conflist: Conflist | string, opts: ListOptions): Promise<ChainOutcome> {
  const { list, version } = loadList(conflist, opts.maxVersion);
  const o = outcome(version);
  if (!versionGte(version, '1.1.0')) return o;
  for (const plugin of list.plugins) {
    const request = sortKeysDeep({ ...plugin, name: list.name, cniVersion: version }) as Record<string, unknown>;
    const { error } = await callPlugin(o, { command: 'STATUS', plugin, request, containerId: '', netns: '', ifname: '', args: undefined, rt: opts });
    if (error) return fail(o, error);
  }
  return o;
}

export interface GcAttachment {
  containerID: string;
  ifname: string;
}

export interface GcOptions extends ListOptions {
  cacheDir: string;
  /** The still-valid attachments; null = none given (cnitool gc): every cached attachment is DELed and GC gets no key. */
  validAttachments: GcAttachment[] | null;
  /** Which key(s) carry the list: both (libcni >= 1.2, default), the spec HEAD key, or the spec-v1.1.0 key. */
  gcKeys?: 'both' | 'valid' | 'legacy';
}

/**
 * libcni's GCNetworkList: DEL every cached attachment of this network that is not valid, then (lists
 * >= 1.1.0) GC each plugin, continuing past errors. Nothing at all when disableGC is true.
 */
export async function runConflistGc(conflist: Conflist | string, opts: GcOptions): Promise<ChainOutcome & { deleted: GcAttachment[] }> {
  const { list, version } = loadList(conflist, opts.maxVersion);
  const o = { ...outcome(version), deleted: [] as GcAttachment[] };
  if (list.disableGC === true) return o;
  const dir = join(opts.cacheDir, 'results');
  const names = existsSync(dir) ? readdirSync(dir).sort() : [];
  const valid = opts.validAttachments ?? [];
  for (const n of names) {
    const rec = readCache(join(dir, n));
    if (!rec || rec.networkName !== list.name || !rec.ifName) continue;
    if (valid.some((a) => a.containerID === rec.containerId && a.ifname === rec.ifName)) continue;
    const rt: RuntimeOptions = { containerId: rec.containerId, netns: rec.netns ?? '', ifname: rec.ifName, cacheDir: opts.cacheDir, cniPath: opts.cniPath };
    if (rec.cniArgs) rt.args = rec.cniArgs;
    if (rec.capabilityArgs) rt.capabilityArgs = rec.capabilityArgs;
    if (opts.wrapper) rt.wrapper = opts.wrapper;
    if (opts.timeoutMs !== undefined) rt.timeoutMs = opts.timeoutMs;
    if (opts.env) rt.env = opts.env;
    if (opts.maxVersion) rt.maxVersion = opts.maxVersion;
    const d = await runConflistDel(typeof conflist === 'string' ? conflist : list, rt);
    o.calls.push(...d.calls);
    o.problems.push(...d.problems);
    if (d.ok) o.deleted.push({ containerID: rec.containerId, ifname: rec.ifName });
    else fail(o, { ...d.error!, msg: `failed to delete stale attachment ${rec.containerId} ${rec.ifName}: ${d.error!.msg}` });
  }
  if (versionGte(version, '1.1.0')) {
    const keys = opts.gcKeys ?? 'both';
    for (const plugin of list.plugins) {
      const req: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: version };
      if (opts.validAttachments !== null) {
        if (keys !== 'legacy') req['cni.dev/valid-attachments'] = opts.validAttachments;
        if (keys !== 'valid') req['cni.dev/attachments'] = opts.validAttachments;
      }
      const request = sortKeysDeep(req) as Record<string, unknown>;
      const { error } = await callPlugin(o, { command: 'GC', plugin, request, containerId: '', netns: '', ifname: '', args: undefined, rt: opts });
      if (error) fail(o, error);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------------
// Network namespaces for tests

export const IP_BIN = '/usr/sbin/ip';
const liveNetns = new Set<string>();
let exitHookInstalled = false;

export interface TestNetns {
  name: string;
  /** /run/netns/<name>, usable as CNI_NETNS. */
  path: string;
  /** Runs a command inside, e.g. ['ip', 'netns', 'exec', name]. */
  wrapper: string[];
  /** Deletes the namespace (idempotent). */
  delete(): void;
}

/** Whether this process can create namespaces (root, `ip` present). */
export function canUseNetns(): boolean {
  return process.getuid?.() === 0 && existsSync(IP_BIN);
}

function ipCmd(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(IP_BIN, args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Deletes a namespace this process created. Refuses others. */
export function deleteNetns(name: string): void {
  if (!liveNetns.has(name)) return;
  ipCmd(['netns', 'del', name]);
  liveNetns.delete(name);
}

/** Creates `<prefix>-<random>` with lo up. Deleted by delete(), or at process exit as a last resort. */
export function createNetns(prefix = 'tortie-test'): TestNetns {
  const name = `${prefix}-${randomBytes(5).toString('hex')}`;
  const r = ipCmd(['netns', 'add', name]);
  if (r.status !== 0) throw new Error(`ip netns add ${name} failed: ${r.stderr.trim()}`);
  liveNetns.add(name);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const n of [...liveNetns]) deleteNetns(n);
    });
  }
  const up = ipCmd(['-n', name, 'link', 'set', 'lo', 'up']);
  if (up.status !== 0) {
    deleteNetns(name);
    throw new Error(`ip -n ${name} link set lo up failed: ${up.stderr.trim()}`);
  }
  return { name, path: `/run/netns/${name}`, wrapper: [IP_BIN, 'netns', 'exec', name], delete: () => deleteNetns(name) };
}

/** `ip -n <ns> <args...>` output (throws on failure). */
export function ipIn(ns: string, args: string[]): string {
  const r = ipCmd(['-n', ns, ...args]);
  if (r.status !== 0) throw new Error(`ip -n ${ns} ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Link names in a namespace (undefined = the caller's own). */
export function linkNames(ns?: string): string[] {
  const r = ipCmd([...(ns ? ['-n', ns] : []), '-o', 'link', 'show']);
  if (r.status !== 0) throw new Error(`ip link show failed: ${r.stderr.trim()}`);
  return r.stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}
