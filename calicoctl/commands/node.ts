// `tortiectl node status` and `tortiectl node checksystem` (calicoctl's `node` verbs, run on the
// node itself, as root).
//
// node status
//   * "Is the agent running?" — which agent depends on how the run directory was chosen:
//       --run-dir DIR or env TORTIE_RUN_DIR: the agent whose CNI socket DIR/cni.sock accepts a
//         connection (one agent per run dir; this is how a lab with several agents on one host
//         picks one, and how tests stand in for an agent: a listener on DIR/cni.sock);
//       neither: any process whose command line runs `tortie-node` (found through
//         /proc/*/cmdline), or a live /var/run/tortie/cni.sock.
//     Not running → error `Calico process is not running.` (exit 1).
//   * BIRD: `show protocols` over DIR/bird.ctl. With TORTIE_RUN_DIR from the environment,
//     /var/run/tortie/bird.ctl is tried next (as calicoctl falls back from /var/run/calico to
//     /var/run/bird); an explicit --run-dir is that node only, no fallback. No socket that
//     answers → `The BGP backend process (BIRD) is not running.` One BIRD 2 daemon serves both
//     families: its BGP peers are split into the IPv4 and IPv6 tables by the address in the name.
// node checksystem
//   calicoctl's layout (`Checking kernel version...`, one tab-indented line per item, then
//   `System meets minimum system requirements to run Calico!` or an error), checking what Tortie
//   needs: kernel features probed by creating links in a throwaway network namespace (`unshare
//   --net`, or a named one deleted afterwards) — never in the root namespace, whose state is only
//   read (/proc, /sys); a feature whose module is not loaded but installed is reported from
//   modules.dep without probing (loading ipip would create tunl0 in every namespace); required
//   binaries; net.ipv4.ip_forward.
import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { hostname, release } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BirdcError, birdCommand } from '../../confd/pkg/index.js';
import { socketIsLive } from '../../cni-plugin/pkg/index.js';
import { bgpPeersFromRows, parseBirdShowProtocols, renderNodeStatus, type FamilyStatus, type NodeStatusView } from '../printers/node-status.js';
import { type ParsedArgs, flag } from './args.js';
import type { Io } from './resources.js';

export const DEFAULT_RUN_DIR = '/var/run/tortie';

export const NODE_USAGE = `Usage:
  tortiectl node status [--run-dir=<dir>]
  tortiectl node checksystem

Options:
  -h --help            Show this screen.
  --run-dir=<dir>      The node agent's run directory: its CNI socket <dir>/cni.sock must
                       answer, and BIRD is asked over <dir>/bird.ctl.
                       [default: $TORTIE_RUN_DIR, else /var/run/tortie]

Description:
  status       The BGP peers of this node's BIRD, as "calicoctl node status" prints them.
               Without --run-dir or TORTIE_RUN_DIR, any running tortie-node counts.
  checksystem  Checks this host for what Tortie needs (kernel features, probed in a
               throwaway network namespace; binaries; sysctls) and says what is missing.
  Both must run as root.
`;
export const NOT_ROOT = 'Need super user privileges: Operation not permitted';
export const NOT_RUNNING = 'Calico process is not running.';

export interface NodeDeps {
  env: Record<string, string | undefined>;
  getuid: () => number;
  /** Default /proc. */
  procDir: string;
  /** Default os.release(). */
  kernelRelease: string;
  /** Default /lib/modules. */
  modulesDir: string;
  /** Default /sys/module. */
  sysModuleDir: string;
}

function defaults(d: Partial<NodeDeps>): NodeDeps {
  return {
    env: d.env ?? process.env,
    getuid: d.getuid ?? (() => process.getuid?.() ?? 0),
    procDir: d.procDir ?? '/proc',
    kernelRelease: d.kernelRelease ?? release(),
    modulesDir: d.modulesDir ?? '/lib/modules',
    sysModuleDir: d.sysModuleDir ?? '/sys/module',
  };
}

function enforceRoot(deps: NodeDeps): void {
  if (deps.getuid() !== 0) throw new Error(NOT_ROOT);
}

// ---------------------------------------------------------------------------------------------
// node status

export type RunDirSource = 'flag' | 'env' | 'default';

export function resolveRunDir(flagValue: string | undefined, env: Record<string, string | undefined>): { runDir: string; source: RunDirSource } {
  if (flagValue !== undefined && flagValue !== '') return { runDir: resolve(flagValue), source: 'flag' };
  const e = env.TORTIE_RUN_DIR;
  if (e !== undefined && e !== '') return { runDir: resolve(e), source: 'env' };
  return { runDir: DEFAULT_RUN_DIR, source: 'default' };
}

/** The BIRD control sockets to try, in order. */
export function birdSockets(runDir: string, source: RunDirSource): string[] {
  const own = join(runDir, 'bird.ctl');
  const fallback = join(DEFAULT_RUN_DIR, 'bird.ctl');
  return source === 'env' && own !== fallback ? [own, fallback] : [own];
}

/** Whether a command line (argv) runs the node agent: an argument (program or script) named `tortie-node[.js]`. */
export function isTortieNodeArgv(argv: readonly string[]): boolean {
  return argv.slice(0, 2).some((a) => /(^|\/)tortie-node(\.js)?$/.test(a));
}

/** PIDs of the processes running tortie-node (other than this one). */
export function findTortieNodePids(procDir = '/proc', selfPid = process.pid): number[] {
  const pids: number[] = [];
  let entries: string[];
  try {
    entries = readdirSync(procDir);
  } catch {
    return pids;
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e) || Number(e) === selfPid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(join(procDir, e, 'cmdline'), 'utf8');
    } catch {
      continue; // gone meanwhile, or not readable
    }
    if (isTortieNodeArgv(cmdline.split('\0').filter((a) => a !== ''))) pids.push(Number(e));
  }
  return pids.sort((a, b) => a - b);
}

/** The two family sections from one BIRD 2 `show protocols` reply. */
export function nodeStatusViewFromReply(raw: string): NodeStatusView {
  const rows = parseBirdShowProtocols(raw);
  return {
    ipv4: { running: true, peers: bgpPeersFromRows(rows, 4, { strictFamily: true }) },
    ipv6: { running: true, peers: bgpPeersFromRows(rows, 6, { strictFamily: true }) },
  };
}

async function agentRunning(runDir: string, source: RunDirSource, deps: NodeDeps): Promise<boolean> {
  const cniSock = join(runDir, 'cni.sock');
  const live = async () => {
    try {
      return await socketIsLive(cniSock);
    } catch {
      return false;
    }
  };
  if (source !== 'default') return live();
  return findTortieNodePids(deps.procDir).length > 0 || (await live());
}

/** Asks BIRD; null when no candidate socket answers (BIRD not running). */
async function queryBird(sockets: readonly string[]): Promise<NodeStatusView | null> {
  for (const sock of sockets) {
    let raw: string;
    try {
      raw = (await birdCommand(sock, 'show protocols')).raw;
    } catch (e) {
      if (e instanceof BirdcError && (e.errno === 'ENOENT' || e.errno === 'ECONNREFUSED')) continue;
      const err: FamilyStatus = { running: true, connectError: `${(e as Error).message}\n` };
      return { ipv4: err, ipv6: err };
    }
    try {
      return nodeStatusViewFromReply(raw);
    } catch (e) {
      const err: FamilyStatus = { running: true, connectError: `${sock}: ${(e as Error).message}\n` };
      return { ipv4: err, ipv6: err };
    }
  }
  return null;
}

export async function cmdNodeStatus(p: ParsedArgs, io: Io, d: Partial<NodeDeps> = {}): Promise<void> {
  const deps = defaults(d);
  enforceRoot(deps);
  const { runDir, source } = resolveRunDir(flag(p, 'run-dir'), deps.env);
  if (!(await agentRunning(runDir, source, deps))) throw new Error(NOT_RUNNING);
  const view = (await queryBird(birdSockets(runDir, source))) ?? { ipv4: { running: false }, ipv6: { running: false } };
  io.out(renderNodeStatus(view) + selfNote(view, localNodeName(deps.env)));
}

/** This node's name: NODENAME, else the agent's nodename file ($TORTIE_STATE_DIR, /var/lib/tortie), else the hostname. */
export function localNodeName(env: Record<string, string | undefined>): string {
  if (env.NODENAME) return env.NODENAME;
  try {
    const n = readFileSync(join(env.TORTIE_STATE_DIR ?? '/var/lib/tortie', 'nodename'), 'utf8').trim();
    if (n) return n;
  } catch {
    // no agent state here
  }
  return hostname();
}

/**
 * The line that answers "why is this node not in the table" (after calicoctl's own output): the
 * table lists this node's BGP peers, and a node is never its own peer.
 */
export function selfNote(view: NodeStatusView, node: string): string {
  if (!view.ipv4.running || !('peers' in view.ipv4) || view.ipv4.peers.length === 0) return '';
  return `Note: the table lists the BGP peers of this node (${node}); the node itself is not listed because a node is not its own peer.\n`;
}

// ---------------------------------------------------------------------------------------------
// node checksystem

export type CheckResult = 'OK' | 'FAIL';

export interface CheckItem {
  item: string;
  result: CheckResult;
  /** FAIL that does not make the system unfit (printed as WARNING). */
  optional?: boolean;
  /** Printed before the item's line: `WARNING: …` (optional or OK) or `ERROR: …` (required FAIL). */
  note?: string;
}

export interface CheckSection {
  heading: string;
  items: CheckItem[];
}

/** calicoctl's item line: two tabs, the item padded to 20, five tabs, the result. */
export function checkLine(item: string, result: string): string {
  return `\t\t${item.padEnd(20)}\t\t\t\t\t${result}\n`;
}

export function renderCheckSystem(sections: readonly CheckSection[]): { text: string; ok: boolean } {
  let text = '';
  let ok = true;
  for (const s of sections) {
    text += `${s.heading}\n`;
    for (const i of s.items) {
      if (i.note) text += `${i.result === 'FAIL' && !i.optional ? 'ERROR' : i.result === 'FAIL' ? 'WARNING' : 'INFO'}: ${i.note}\n`;
      text += checkLine(i.item, i.result);
      if (i.result === 'FAIL' && !i.optional) ok = false;
    }
  }
  if (ok) text += 'System meets minimum system requirements to run Calico!\n';
  return { text, ok };
}

export const SYSTEM_NOT_OK = "System doesn't meet one or more minimum systems requirements to run Calico";

/** Tortie needs VXLAN's UDP port option and veth peers in other namespaces: 3.10 has both. */
export const MIN_KERNEL = [3, 10] as const;

export function kernelVersionOk(rel: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(rel);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > MIN_KERNEL[0] || (maj === MIN_KERNEL[0] && min >= MIN_KERNEL[1]);
}

interface Feature {
  name: string;
  module: string;
  /** `ip link` arguments creating a test device of this kind. */
  probe: string;
  optional: boolean;
  /** What cannot work without it. */
  missing: string;
}

export const FEATURES: readonly Feature[] = [
  { name: 'veth', module: 'veth', probe: 'link add tortie-cs-v0 type veth peer name tortie-cs-v1', optional: false, missing: 'veth is not supported by this kernel: pods cannot be wired to the host' },
  { name: 'bridge', module: 'bridge', probe: 'link add tortie-cs-br type bridge', optional: true, missing: 'bridge devices are not supported by this kernel: the lab and some CNI chains need them' },
  {
    name: 'vxlan',
    module: 'vxlan',
    probe: 'link add tortie-cs-vx type vxlan id 4096 dstport 4789 nolearning',
    optional: true,
    missing: 'VXLAN (vxlan.calico) is not supported by this kernel: pools with vxlanMode Always/CrossSubnet cannot work here; use ipipMode or no encapsulation',
  },
  {
    name: 'ipip',
    module: 'ipip',
    probe: 'link add tortie-cs-ipip type ipip',
    optional: true,
    missing: 'IPIP (tunl0) is not supported by this kernel: pools with ipipMode Always/CrossSubnet cannot work here; use vxlanMode',
  },
];

/** Whether modules.dep lists `<module>.ko[.xz|.zst|.gz]` (installed, loadable on first use). */
export function moduleInstalled(modulesDep: string, module: string): boolean {
  const re = new RegExp(`(^|/)${module.replace(/[-_]/g, '[-_]')}\\.ko(\\.[a-z]+)?:`, 'm');
  return re.test(modulesDep);
}

/** Maps `ip -force -batch` stderr (`Error: …` lines then `Command failed -:N`) to messages by line number. */
export function parseBatchErrors(stderr: string): Map<number, string> {
  const out = new Map<number, string>();
  let pending: string[] = [];
  for (const line of stderr.split('\n')) {
    const m = /^Command failed -:(\d+)$/.exec(line.trim());
    if (m) {
      out.set(Number(m[1]), pending.join(' ').trim() || 'failed');
      pending = [];
    } else if (line.trim()) pending.push(line.trim());
  }
  return out;
}

function run(argv: readonly string[], stdin: string, timeoutMs = 20_000): Promise<{ code: number | null; stdout: string; stderr: string; error?: Error }> {
  return new Promise((resolveRun) => {
    const c = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (error) => {
      clearTimeout(t);
      resolveRun({ code: null, stdout, stderr, error });
    });
    c.on('close', (code) => {
      clearTimeout(t);
      resolveRun({ code, stdout, stderr });
    });
    c.stdin.on('error', () => {});
    c.stdin.end(stdin);
  });
}

const IP = '/usr/sbin/ip';
const UNSHARE = ['/usr/bin/unshare', '/bin/unshare'].find((p) => existsSync(p));

/**
 * Creates the probe devices in a network namespace of its own and reports, per probe line
 * (1-based), the error or nothing. `unshare --net` gives an unnamed namespace that disappears
 * with the process; without unshare a named `tortie-cs<random>` namespace is added and deleted.
 */
export async function probeLinks(lines: readonly string[]): Promise<Map<number, string>> {
  const script = lines.join('\n') + '\n';
  if (UNSHARE) {
    const r = await run([UNSHARE, '--net', '--', IP, '-force', '-batch', '-'], script);
    if (r.error) throw new Error(`cannot run ${UNSHARE}: ${r.error.message}`);
    return parseBatchErrors(r.stderr);
  }
  const ns = `tortie-cs${randomBytes(4).toString('hex')}`;
  const add = await run([IP, 'netns', 'add', ns], '');
  if (add.code !== 0) throw new Error(`cannot create a throwaway network namespace: ${add.stderr.trim() || add.error?.message}`);
  try {
    const r = await run([IP, '-n', ns, '-force', '-batch', '-'], script);
    return parseBatchErrors(r.stderr);
  } finally {
    await run([IP, 'netns', 'del', ns], '');
  }
}

async function kernelModuleItems(deps: NodeDeps): Promise<CheckItem[]> {
  let modulesDep = '';
  try {
    modulesDep = readFileSync(join(deps.modulesDir, deps.kernelRelease, 'modules.dep'), 'utf8');
  } catch {
    // no module tree (a kernel with everything built in, or a container)
  }
  const items = new Map<string, CheckItem>();
  const toProbe: Feature[] = [];
  for (const f of FEATURES) {
    const loaded = existsSync(join(deps.sysModuleDir, f.module));
    if (!loaded && moduleInstalled(modulesDep, f.module)) {
      // Probing would load it (and ipip would put tunl0 into every namespace, the root one too).
      items.set(f.name, { item: f.name, result: 'OK', note: `${f.name}: module ${f.module} is installed but not loaded; the kernel loads it on first use` });
    } else toProbe.push(f);
  }
  if (toProbe.length) {
    let errors: Map<number, string> | null = null;
    let why = '';
    try {
      errors = await probeLinks(toProbe.map((f) => f.probe));
    } catch (e) {
      why = (e as Error).message;
    }
    toProbe.forEach((f, i) => {
      if (!errors) {
        items.set(f.name, { item: f.name, result: 'FAIL', optional: f.optional, note: `could not probe ${f.name}: ${why}` });
        return;
      }
      const err = errors.get(i + 1);
      items.set(f.name, err === undefined ? { item: f.name, result: 'OK' } : { item: f.name, result: 'FAIL', optional: f.optional, note: `${f.missing} (ip: ${err})` });
    });
  }
  return FEATURES.map((f) => items.get(f.name)!);
}

const SEARCH_DIRS = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** The executable's path: an absolute path as given, else the first hit in PATH then the system dirs. */
export function findExecutable(name: string, env: Record<string, string | undefined>): string | null {
  const isExec = (p: string) => {
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (isAbsolute(name)) return isExec(name) ? name : null;
  const dirs = [...(env.PATH ?? '').split(delimiter).filter((d) => d !== ''), ...SEARCH_DIRS];
  for (const d of dirs) if (isExec(join(d, name))) return join(d, name);
  return null;
}

export const BINARIES: readonly { name: string; why: string }[] = [
  { name: '/usr/sbin/ip', why: 'tortie-node wires pods and routes with it (Debian package iproute2)' },
  { name: '/usr/sbin/bird', why: 'the BGP daemon (Debian package bird2)' },
  { name: '/usr/sbin/birdc', why: "BIRD's client (Debian package bird2)" },
  { name: 'nft', why: "Felix's nftables dataplane needs it (Debian package nftables)" },
  { name: 'iptables', why: 'the portmap CNI plugin (hostPort) needs it (Debian package iptables)' },
];

export async function checkSystem(d: Partial<NodeDeps> = {}): Promise<CheckSection[]> {
  const deps = defaults(d);
  const rel = deps.kernelRelease;
  const sections: CheckSection[] = [];
  sections.push({
    heading: 'Checking kernel version...',
    items: [
      kernelVersionOk(rel)
        ? { item: rel, result: 'OK' }
        : { item: rel, result: 'FAIL', note: `Minimum kernel version to run Tortie is ${MIN_KERNEL.join('.')}. Detected kernel version: ${rel}` },
    ],
  });
  sections.push({ heading: 'Checking kernel modules...', items: await kernelModuleItems(deps) });
  sections.push({
    heading: 'Checking binaries...',
    items: BINARIES.map(({ name, why }) => {
      const at = findExecutable(name, deps.env);
      return at ? { item: name, result: 'OK' as const } : { item: name, result: 'FAIL' as const, note: `${name} is missing${isAbsolute(name) ? '' : ' (searched PATH and ' + SEARCH_DIRS.join(', ') + ')'}: ${why}` };
    }),
  });
  let fwd: CheckItem;
  try {
    const v = readFileSync(join(deps.procDir, 'sys/net/ipv4/ip_forward'), 'utf8').trim();
    fwd = v === '1' ? { item: 'net.ipv4.ip_forward', result: 'OK' } : { item: 'net.ipv4.ip_forward', result: 'OK', note: `net.ipv4.ip_forward is ${v}; tortie-node sets it to 1 when it starts` };
  } catch (e) {
    fwd = { item: 'net.ipv4.ip_forward', result: 'FAIL', note: `cannot read ${join(deps.procDir, 'sys/net/ipv4/ip_forward')}: ${(e as Error).message}` };
  }
  sections.push({ heading: 'Checking sysctls...', items: [fwd] });
  return sections;
}

export async function cmdNodeChecksystem(_p: ParsedArgs, io: Io, d: Partial<NodeDeps> = {}): Promise<void> {
  const deps = defaults(d);
  enforceRoot(deps);
  const { text, ok } = renderCheckSystem(await checkSystem(deps));
  io.out(text);
  if (!ok) throw new Error(SYSTEM_NOT_OK);
}
