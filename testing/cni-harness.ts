// A test client that invokes CNI plugin executables the way libcni does: CNI_* environment plus the
// request configuration on stdin, conflists run in order (DEL in reverse), name/cniVersion injected,
// runtimeConfig = capabilities ∩ capability args, prevResult chained on ADD and taken from the result
// cache on DEL/CHECK, and the libcni result cache file `<cacheDir>/results/<net>-<containerID>-<ifname>`.
//
// It is written independently of cni-plugin/pkg/skel so that it can judge that code. The mechanics
// (exec, conflist versions, requests, the result cache, ADD and DEL) are the lab's CNI runner,
// lab/pkg/cni-runner.ts, a product module; this harness adds what only tests need: strict checks of
// every call (results and errors against the spec), CHECK, STATUS, GC, VERSION and test namespaces.
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

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import {
  type CallCheck,
  type ChainOutcome,
  type Conflist,
  type ExecOptions,
  type ExecResult,
  type RuntimeOptions,
  buildRequest,
  cacheFilePath,
  callPlugin,
  execPlugin,
  fail,
  loadList,
  outcome,
  readCache,
  runConflistAdd as runnerAdd,
  runConflistDel as runnerDel,
  sortKeysDeep,
  specBase,
  versionGte,
} from '../lab/pkg/cni-runner.js';

export {
  type CacheRecord,
  type CallCheck,
  type ChainError,
  type ChainOutcome,
  type CniArgsInput,
  type Conflist,
  type ExecOptions,
  type ExecResult,
  type PluginCall,
  type PluginConf,
  type RuntimeOptions,
  LIBCNI_VERSIONS,
  argsToPairs,
  argsToString,
  buildRequest,
  cacheFilePath,
  execPlugin,
  findInPath,
  readCache,
  selectConflistVersion,
  sortKeysDeep,
  versionGte,
} from '../lab/pkg/cni-runner.js';

// ---------------------------------------------------------------------------------------------------
// VERSION

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

// ---------------------------------------------------------------------------------------------------
// Result checks

function cidrFamily(s: string): 4 | 6 | null {
  const i = s.indexOf('/');
  if (i < 0) return null;
  const fam = isIP(s.slice(0, i));
  const p = s.slice(i + 1);
  if (fam === 0 || !/^\d{1,3}$/.test(p) || Number(p) > (fam === 4 ? 32 : 128)) return null;
  return fam as 4 | 6;
}

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
// Conflists: strict ADD and DEL, CHECK, STATUS, GC


/** The harness's strict checks of one call: error JSON shape, result shape, no stdout on DEL. */
export const strictCheck: CallCheck = (call, expect) => {
  const r = call.exec!;
  if (r.code !== 0) return r.spawnError || r.timedOut ? [] : validateErrorShape(r.stdout);
  if (expect) return validateResultShape(r.json, expect.version, { ifname: expect.ifname, netns: expect.netns });
  return r.stdout.trim() !== '' ? [`unexpected stdout on ${call.command}: ${JSON.stringify(r.stdout.slice(0, 200))}`] : [];
};

/** ADD through the list in order, chaining prevResult; writes the cache after full success. Strict checks. */
export function runConflistAdd(conflist: Conflist | string, rt: RuntimeOptions): Promise<ChainOutcome> {
  return runnerAdd(conflist, rt, strictCheck);
}

/** DEL through the list in reverse (prevResult from the cache for lists >= 0.4.0). Strict checks. */
export function runConflistDel(conflist: Conflist | string, rt: RuntimeOptions): Promise<ChainOutcome> {
  return runnerDel(conflist, rt, strictCheck);
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
    const { error } = await callPlugin(o, { ...specBase(rt), command: 'CHECK', plugin, request, check: strictCheck });
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
    const { error } = await callPlugin(o, { command: 'STATUS', plugin, request, containerId: '', netns: '', ifname: '', args: undefined, rt: opts, check: strictCheck });
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
      const { error } = await callPlugin(o, { command: 'GC', plugin, request, containerId: '', netns: '', ifname: '', args: undefined, rt: opts, check: strictCheck });
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
