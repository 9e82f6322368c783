// IPAM delegation, as Calico's plugin does it for any `ipam.type` other than calico-ipam (e.g.
// `host-local` with a node's pod CIDR): the IPAM plugin is found on CNI_PATH and executed by the
// agent with the runtime's CNI environment and the network configuration on stdin; its result's
// addresses become the pod's. `CNI_ARGS` gets `IgnoreUnknown=1` first, as Calico does, so that an
// IPAM plugin that does not know K8S_POD_* keys accepts them.
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { AgentRequest } from '../agentapi/protocol.js';
import { CniError, ErrCode } from '../skel/errors.js';
import { parseResult } from '../skel/result.js';

/** Time allowed for one delegated call (Calico gives its IPAM 90 s; the plugin's own ADD has 60 s). */
export const DELEGATE_TIMEOUT_MS = 50_000;

/** The IPAM plugin executable named `type` in the first CNI_PATH directory holding one. */
export function findIpamPlugin(type: string, path: readonly string[]): string {
  if (type === '' || type.includes('/') || type === '.' || type === '..') {
    throw new CniError(ErrCode.UnsupportedField, `invalid ipam.type ${JSON.stringify(type)}: must be a plugin name`);
  }
  for (const dir of path) {
    if (dir === '') continue;
    const p = join(dir, type);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next directory
    }
  }
  throw new CniError(
    ErrCode.InvalidEnvironment,
    `IPAM plugin ${JSON.stringify(type)} (ipam.type) not found in CNI_PATH ${JSON.stringify(path.join(':'))}`,
  );
}

function cniArgsText(args: Record<string, string>): string {
  const pairs = Object.entries(args).filter(([k]) => k !== 'IgnoreUnknown');
  return ['IgnoreUnknown=1', ...pairs.map(([k, v]) => `${k}=${v}`)].join(';');
}

/**
 * Runs the delegated IPAM plugin for `command` and returns the addresses of its ADD result (CIDRs
 * as given, e.g. "10.244.1.5/24"); [] for DEL and GC (whose stdin carries the runtime's
 * cni.dev/valid-attachments as given). A failure is the plugin's own CNI error when it
 * printed one, otherwise code 999 naming the plugin and what happened.
 */
export async function execIpam(req: AgentRequest, command: 'ADD' | 'DEL' | 'GC'): Promise<string[]> {
  const ipam = req.config.ipam as { type?: unknown } | undefined;
  const type = typeof ipam?.type === 'string' ? ipam.type : '';
  const bin = findIpamPlugin(type, req.path);
  const env: Record<string, string> = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: req.containerId,
    CNI_NETNS: req.netns,
    CNI_IFNAME: req.ifname,
    CNI_ARGS: cniArgsText(req.args),
    CNI_PATH: req.path.join(':'),
    PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
  };
  const { prevResult: _drop, ...config } = req.config;
  const stdin = JSON.stringify({ ...config, cniVersion: req.config.cniVersion ?? req.cniVersion });
  const { code, stdout, stderr } = await run(bin, env, stdin);
  let out: unknown = null;
  try {
    out = stdout.trim() === '' ? null : JSON.parse(stdout);
  } catch {
    out = null;
  }
  if (code !== 0) {
    const e = out as { code?: unknown; msg?: unknown; details?: unknown } | null;
    if (e && typeof e.code === 'number' && typeof e.msg === 'string') {
      throw new CniError(e.code, `IPAM plugin ${type}: ${e.msg}`, typeof e.details === 'string' ? e.details : undefined);
    }
    throw new CniError(ErrCode.Internal, `IPAM plugin ${type} ${command} failed (exit ${code}): ${(stderr || stdout).trim().slice(0, 500)}`);
  }
  if (command !== 'ADD') return [];
  if (out === null) throw new CniError(ErrCode.Internal, `IPAM plugin ${type} printed no result for ADD`);
  const ips = (parseResult(out, `result of IPAM plugin ${type}`).result.ips ?? []).map((i) => i.address);
  if (ips.length === 0) throw new CniError(ErrCode.Internal, `IPAM plugin ${type} returned no address`);
  return ips;
}

/**
 * Runs the plugin to its end: it is never killed on a cancelled request (an IPAM plugin killed in
 * the middle of writing its store could corrupt it); the caller checks for cancellation after.
 */
function run(bin: string, env: Record<string, string>, stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, [], { env, stdio: ['pipe', 'pipe', 'pipe'], timeout: DELEGATE_TIMEOUT_MS });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.stdin.on('error', () => undefined);
    child.on('error', (e) => reject(new CniError(ErrCode.Internal, `cannot run IPAM plugin ${bin}: ${e.message}`)));
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
    child.stdin.end(stdin);
  });
}
