// The upstream Kubernetes e2e suite (the e2e.test binary of the cluster's own release, built by
// scripts/build-kubernetes.sh) run against a lab cluster: ginkgo and e2e.test in the master
// node's network namespace (where 10.0.0.11:6443 is reachable), the lab's admin kubeconfig,
// --provider=local. The JUnit report the framework writes is read back into passed / failed /
// skipped spec names.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { labDir, mustReadState, type LabState } from './state.js';
import { NSENTER, kubeBinaries } from './kube/cluster.js';
import { run } from './sys.js';

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface E2EOptions {
  /** --ginkgo.focus (a regular expression over the full spec text). */
  focus: string;
  /** --ginkgo.skip; undefined for none. */
  skip?: string;
  /** ginkgo --procs (1: e2e.test alone, no ginkgo CLI). */
  procs: number;
  /** Where the log, junit_01.xml and summary.json go. */
  reportDir: string;
  /** Extra arguments for e2e.test (after the ones made here). */
  extra?: string[];
  /** Whole-suite timeout (ginkgo --timeout), e.g. '2h'. */
  timeout?: string;
}

export interface SpecResult {
  name: string;
  status: 'passed' | 'failed' | 'skipped';
  seconds: number;
  /** The failure (or skip) message, first lines. */
  message?: string;
}

export interface E2ESummary {
  lab: string;
  cni: string;
  focus: string;
  skip?: string;
  procs: number;
  command: string[];
  startedAt: string;
  seconds: number;
  exitCode: number;
  loadBefore: number[];
  loadAfter: number[];
  passed: SpecResult[];
  failed: SpecResult[];
  /** Specs that matched the focus but were skipped (in the spec or by --ginkgo.skip). */
  skipped: SpecResult[];
  /** The agents' policy passes that wrote the table during the run (all nodes), when their logs exist. */
  passes?: PassStats;
}

export interface PassStats {
  count: number;
  /** read + compile + diff + nft of each pass, milliseconds. */
  p50Ms: number;
  p90Ms: number;
  maxMs: number;
  /** Medians of each phase. */
  readP50Ms: number;
  nftP50Ms: number;
}

const PASS_RE = /Policy: wrote table [^(]+\(.*\): read ([\d.]+) ms, compile ([\d.]+) ms, diff ([\d.]+) ms, nft ([\d.]+) ms/;

function quantile(sorted: number[], q: number): number {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** The policy passes logged by tortie-node (node/pkg/policy/loop.ts) between two instants; undefined if none. */
export function passStats(logs: string[], from: Date, to: Date): PassStats | undefined {
  const total: number[] = [];
  const read: number[] = [];
  const nft: number[] = [];
  for (const text of logs) {
    for (const line of text.split('\n')) {
      const m = PASS_RE.exec(line);
      if (!m) continue;
      const at = new Date(line.slice(0, 23).replace(' ', 'T') + 'Z');
      if (!(at >= from && at <= to)) continue;
      const [r, c, d, n] = [m[1], m[2], m[3], m[4]].map(Number) as [number, number, number, number];
      total.push(r + c + d + n);
      read.push(r);
      nft.push(n);
    }
  }
  if (total.length === 0) return undefined;
  for (const a of [total, read, nft]) a.sort((x, y) => x - y);
  const round = (x: number) => Math.round(x * 10) / 10;
  return { count: total.length, p50Ms: round(quantile(total, 0.5)), p90Ms: round(quantile(total, 0.9)), maxMs: round(total.at(-1)!), readP50Ms: round(quantile(read, 0.5)), nftP50Ms: round(quantile(nft, 0.5)) };
}

export function e2eBinaries(env: NodeJS.ProcessEnv = process.env): { e2eTest: string; ginkgo: string } {
  const dir = join(env.TORTIE_CACHE || '/var/cache/tortie', 'k8s', env.TORTIE_K8S_VERSION || 'v1.34.4', 'bin');
  return { e2eTest: join(dir, 'e2e.test'), ginkgo: join(dir, 'ginkgo') };
}

function masterNs(s: LabState): string {
  if (!s.kube) throw new Error(`lab ${s.name} is not a Kubernetes cluster (tortie-lab up --kubernetes)`);
  const m = s.plan.nodes.find((n) => n.name === s.kube!.master);
  if (!m) throw new Error(`lab ${s.name}: master ${s.kube.master} is not in the plan`);
  return m.ns;
}

/**
 * Why SCTP cannot be used in this kernel, or undefined if it can: an SCTP socket is created in the
 * lab's master namespace (python3's socket module; the kernel may autoload its module), and, without
 * python3, the kernel's config is read.
 */
export async function sctpMissing(s: LabState): Promise<string | undefined> {
  const py = '/usr/bin/python3';
  if (existsSync(py)) {
    const r = await run([NSENTER, `--net=/run/netns/${masterNs(s)}`, '--', py, '-c', 'import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM, 132).close()'], { env: { PATH } });
    if (r.code === 0) return undefined;
    const why = (r.stderr.trim().split('\n').pop() ?? '').trim();
    return `socket(AF_INET, SOCK_STREAM, IPPROTO_SCTP) fails in a lab namespace: ${why}`;
  }
  try {
    const config = gunzipSync(readFileSync('/proc/config.gz')).toString('utf8');
    if (/^CONFIG_IP_SCTP=[ym]$/m.test(config)) return undefined;
    return 'CONFIG_IP_SCTP is not set in /proc/config.gz';
  } catch {
    return undefined;
  }
}

/** The argv that runs the suite (ginkgo -p when procs > 1) in the master's network namespace. */
export function e2eArgv(s: LabState, o: E2EOptions): string[] {
  const b = e2eBinaries();
  const ns = masterNs(s);
  const suiteArgs = [
    `--kubeconfig=${s.kube!.adminKubeconfig}`,
    '--provider=local',
    `--kubectl-path=${kubeBinaries().kubectl}`,
    `--report-dir=${o.reportDir}`,
    '--disable-log-dump',
    ...(o.extra ?? []),
  ];
  const ginkgoArgs = [`--ginkgo.focus=${o.focus}`, ...(o.skip ? [`--ginkgo.skip=${o.skip}`] : []), '--ginkgo.no-color', '--ginkgo.succinct', `--ginkgo.timeout=${o.timeout ?? '3h'}`];
  const pre = [NSENTER, `--net=/run/netns/${ns}`, '--'];
  if (o.procs <= 1) return [...pre, b.e2eTest, ...suiteArgs, ...ginkgoArgs];
  // The ginkgo CLI runs procs copies of e2e.test; its flags are ginkgo's own (without the ginkgo. prefix).
  const cli = ginkgoArgs.map((a) => a.replace(/^--ginkgo\./, '--'));
  return [...pre, b.ginkgo, `--procs=${o.procs}`, ...cli, b.e2eTest, '--', ...suiteArgs];
}

function loadavg(): number[] {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

function unescapeXml(s: string): string {
  return s
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&#x([0-9a-fA-F]+);/g, (_, h: string) => String.fromCodePoint(parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replace(/&amp;/g, '&');
}

function attr(tag: string, name: string): string | undefined {
  const m = new RegExp(`\\s${name}="([^"]*)"`).exec(tag);
  return m ? unescapeXml(m[1]!) : undefined;
}

/**
 * The test cases of a Ginkgo JUnit report whose name matches `keep` (the framework lists every
 * spec of the binary, thousands skipped by the focus; `keep` picks the ones asked for).
 */
export function parseJUnit(xml: string, keep: (name: string) => boolean): SpecResult[] {
  const out: SpecResult[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) {
    const head = m[1]!;
    const body = m[3] ?? '';
    // Ginkgo names a spec "[It] <container texts> <spec text>"; the focus sees it without "[It] ".
    const name = (attr(head, 'name') ?? '').replace(/^\[It\] /, '');
    if (!keep(name)) continue;
    const st = attr(head, 'status');
    const failure = /<(failure|error)\b([^>]*)>([\s\S]*?)<\/\1>|<(failure|error)\b([^>]*)\/>/.exec(body);
    const skipped = /<skipped\b([^>]*)/.exec(body);
    let status: SpecResult['status'];
    if (failure || st === 'failed' || st === 'panicked' || st === 'timedout' || st === 'interrupted' || st === 'aborted') status = 'failed';
    else if (skipped || st === 'skipped' || st === 'pending') status = 'skipped';
    else status = 'passed';
    const r: SpecResult = { name, status, seconds: Number(attr(head, 'time') ?? '0') };
    if (failure) {
      const msg = attr(failure[2] ?? failure[5] ?? '', 'message') || unescapeXml(failure[3] ?? '');
      r.message = msg.split('\n').slice(0, 12).join('\n');
    } else if (skipped) r.message = attr(skipped[1]!, 'message');
    out.push(r);
  }
  return out;
}

/**
 * Runs the suite against a lab; writes <reportDir>/e2e.log, junit_01.xml (the framework's),
 * summary.json and a copy of each node's agent.log (with --cni tortie).
 */
export async function runE2E(labName: string, o: E2EOptions, log: (l: string) => void): Promise<E2ESummary> {
  const s = mustReadState(labName);
  const b = e2eBinaries();
  for (const f of [b.e2eTest, ...(o.procs > 1 ? [b.ginkgo] : [])]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: build it with scripts/build-kubernetes.sh`);
  }
  mkdirSync(o.reportDir, { recursive: true });
  const argv = e2eArgv(s, o);
  const logFile = join(o.reportDir, 'e2e.log');
  const loadBefore = loadavg();
  const startedAt = new Date().toISOString();
  const t0 = Date.now();
  log(`e2e: ${argv.slice(3).join(' ')}`);
  log(`e2e: log ${logFile}`);
  const fd = openSync(logFile, 'w');
  const exitCode = await new Promise<number>((resolve, reject) => {
    // HOME: kubectl's discovery cache goes to the report directory.
    const child = spawn(argv[0]!, argv.slice(1), { env: { PATH, HOME: o.reportDir }, stdio: ['ignore', fd, fd] });
    child.once('error', reject);
    child.once('exit', (code, sig) => resolve(code ?? (sig ? 128 : 1)));
  }).finally(() => closeSync(fd));
  const seconds = (Date.now() - t0) / 1000;
  // The agents' logs (each policy pass with its timings) outlive the lab in the report.
  const agentLogs: string[] = [];
  for (const n of s.plan.nodes) {
    const agentLog = join(labDir(labName), 'nodes', n.name, 'agent.log');
    if (!existsSync(agentLog)) continue;
    copyFileSync(agentLog, join(o.reportDir, `agent-${n.name}.log`));
    agentLogs.push(readFileSync(agentLog, 'utf8'));
  }
  const junit = join(o.reportDir, 'junit_01.xml');
  if (!existsSync(junit)) throw new Error(`e2e exited ${exitCode} without ${junit}; see ${logFile}:\n${readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n')}`);
  const focus = new RegExp(o.focus);
  const specs = parseJUnit(readFileSync(junit, 'utf8'), (n) => focus.test(n));
  const summary: E2ESummary = {
    lab: labName,
    cni: s.kube!.cni,
    focus: o.focus,
    skip: o.skip,
    procs: o.procs,
    command: argv,
    startedAt,
    seconds,
    exitCode,
    loadBefore,
    loadAfter: loadavg(),
    passed: specs.filter((r) => r.status === 'passed'),
    failed: specs.filter((r) => r.status === 'failed'),
    skipped: specs.filter((r) => r.status === 'skipped'),
    passes: passStats(agentLogs, new Date(startedAt), new Date()),
  };
  writeFileSync(join(o.reportDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

/** A human summary: counts, then each failed spec with its message, each skipped spec. */
export function formatSummary(r: E2ESummary): string {
  const lines = [
    `e2e on lab ${r.lab} (cni ${r.cni}), focus ${JSON.stringify(r.focus)}${r.skip ? `, skip ${JSON.stringify(r.skip)}` : ''}, procs ${r.procs}`,
    `${r.passed.length} passed, ${r.failed.length} failed, ${r.skipped.length} skipped in ${r.seconds.toFixed(0)}s (load ${r.loadBefore.join(' ')} → ${r.loadAfter.join(' ')}); exit ${r.exitCode}`,
  ];
  if (r.passes) {
    const p = r.passes;
    lines.push(`agents: ${p.count} policy passes wrote the table; pass p50 ${p.p50Ms} ms, p90 ${p.p90Ms} ms, max ${p.maxMs} ms (read p50 ${p.readP50Ms} ms, nft p50 ${p.nftP50Ms} ms)`);
  }
  for (const f of r.failed) lines.push(`FAIL ${f.name} (${f.seconds.toFixed(1)}s)`, ...(f.message ? f.message.split('\n').map((l) => `    ${l}`) : []));
  for (const k of r.skipped) lines.push(`SKIP ${k.name}${k.message ? `: ${k.message.split('\n')[0]}` : ''}`);
  for (const p of r.passed) lines.push(`PASS ${p.name} (${p.seconds.toFixed(1)}s)`);
  return lines.join('\n') + '\n';
}
