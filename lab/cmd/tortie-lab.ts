// tortie-lab: a throwaway Tortie cluster in network namespaces (nodes, underlay, datastore, pods
// through the real CNI path), for trying things and for tests. See USAGE.
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseExpectation } from '../../libcalico-go/lib/policy/matrix.js';
import { caseFiles } from '../../libcalico-go/lib/policy/truth-table.js';
import { runConnectivity } from '../../libcalico-go/lib/connectivity/plan.js';
import { LabDriver } from '../pkg/connectivity.js';
import { liveTrace } from '../pkg/trace-live.js';
import { formatSummary, runE2E, sctpMissing } from '../pkg/e2e.js';
import { FAULTS, breakFault, healFault, parseFault } from '../pkg/faults.js';
import * as lab from '../pkg/lab.js';
import { mustReadState } from '../pkg/state.js';
import { parseDuration } from '../pkg/readiness.js';
import { formatCase, formatTotals, runTruth, truthJson } from '../pkg/truth.js';
import type { CniKind } from '../pkg/kube/configs.js';
import { type DatastoreKind, type Mode, type Preset, parseLabels, parseServe } from '../pkg/topology.js';

const USAGE = `Usage:
  tortie-lab up [--name N] [--nodes K | --preset seed] [--mode bgp|vxlan|crosssubnet] [--datastore embedded|etcd|kubernetes] [--wait D | --no-wait]
  tortie-lab up --kubernetes [--cni none|tortie|manifest|bridge] [--name N] [--nodes K | --preset seed] [--mode bgp|vxlan] [--wait D | --no-wait]
  tortie-lab kubectl N -- KUBECTL-ARGS...       (the real kubectl, admin kubeconfig, in the master's network namespace; --datastore kubernetes: in tl-N-api)
  tortie-lab e2e N [--focus RE] [--skip RE] [--procs K] [--report-dir D] [-- E2E-TEST-ARGS...]
                                                (the upstream e2e suite against the cluster; default focus Netpol)
  tortie-lab kubelet restart N NODE [--wait D | --no-wait]      (stops the node's kubelet by its recorded PID, starts a new one)
  tortie-lab containerd restart N NODE [--wait D | --no-wait]   (the same for containerd; its shims and containers keep running)
  tortie-lab pod add N NODE NS/POD [--labels k=v,...] [--serve PORT[/tcp|/udp],...] [--wait D | --no-wait]
  tortie-lab pod del N NS/POD
  tortie-lab ns add N NAME [--labels k=v,...]   (the namespace's kns.<NAME> profile, labels as pcns.<k>)
  tortie-lab truth N (CASE_FILE | DIR)... [--json] [--settle MS] [--timeout MS] [--keep] [--no-retry]
  tortie-lab node add N NAME [--wait D | --no-wait]       (joins: next underlay address, agent started)
  tortie-lab node restart N NODE [--wait D | --no-wait]   (stops the node's agent by its recorded PID if alive, starts a new one)
  tortie-lab node del N NODE        (its pods, agent, namespace and Node resource go)
  tortie-lab exec N (NODE | NS/POD) -- CMD...
  tortie-lab probe N [--port P] [--proto tcp|udp|icmp] [--timeout MS] [--json] [--expect FILE]
  tortie-lab ctl N [--node NODE] [--wait D | --no-wait] -- TORTIECTL-ARGS...
  tortie-lab break N FAULT [--node NODE]   (FAULT: ${FAULTS.join(', ')}; default node: the last)
  tortie-lab heal N FAULT                  (undoes exactly what break did)
  tortie-lab connectivity N [--json]        (probe pods on every node: pod↔pod, host↔pod, full-size DF packets, policy deny/allow; all removed after)
  tortie-lab trace N SRC DST [PORT/PROTO]  (tortiectl trace's prediction, then a real packet: the interfaces it was seen on)
  tortie-lab down N
  tortie-lab list

Commands return when what they made works: up, node add and node restart wait until every
agent involved answers ready on /readiness (BGP sessions Established, or VXLAN routes to every
node; policy programmed), pod add until every other node routes the pod's address, ctl after a
write (apply, create, replace, delete, patch, label) until every node's policy loop has run a pass
that started after it (the policy is enforced). --wait D
(e.g. 90s, 3m; default 3m) bounds the wait; on timeout the command exits 1 naming each node and
what is not ready. --no-wait returns as soon as things are started.
Everything lives in network namespaces named tl-<N>-*; nothing touches the root namespace.
State: $TORTIE_LAB_DIR/<N>/state.json (default /var/lib/tortie-lab). Node names may be given
short (master01 for playcekube-master01). --expect FILE holds {"NS/POD": {"NS/POD": true|false|"any"}}
("*" matches any pod); pairs not listed are expected to answer. probe exits 0 only if every pair
is as expected.
Pods carry projectcalico.org/namespace, projectcalico.org/orchestrator=k8s, their --labels and a
named port serve-<port>-<proto> per --serve item on their WorkloadEndpoint from the CNI ADD on.
truth builds the Kubernetes e2e model (namespaces x, y, z; pods a, b, c in each serving 80, 81
TCP and UDP) in the lab, then runs each truth-table case (libcalico-go/lib/policy/testdata/cases):
its policies applied (the previous case's deleted), every pair probed; exits 0 only if every case
is as expected. --settle MS (1500) is the wait after applying a case; a probe that does not match
is probed once more after another settle (--no-retry: not). --keep leaves the last case's
policies in place.
`;

class UsageError extends Error {}

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
  rest: string[];
}

const VALUE_FLAGS = new Set(['cni', 'name', 'nodes', 'preset', 'mode', 'datastore', 'labels', 'serve', 'port', 'proto', 'expect', 'node', 'timeout', 'settle', 'wait', 'focus', 'skip', 'procs', 'report-dir']);

function parse(argv: string[]): Parsed {
  const dd = argv.indexOf('--');
  const head = dd >= 0 ? argv.slice(0, dd) : argv;
  const rest = dd >= 0 ? argv.slice(dd + 1) : [];
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < head.length; i++) {
    const a = head[i]!;
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = a.slice(2, eq >= 0 ? eq : undefined);
    if (eq >= 0) flags.set(name, a.slice(eq + 1));
    else if (VALUE_FLAGS.has(name)) {
      const v = head[++i];
      if (v === undefined) throw new UsageError(`--${name} needs a value`);
      flags.set(name, v);
    } else flags.set(name, true);
  }
  return { positional, flags, rest };
}

function str(p: Parsed, name: string): string | undefined {
  const v = p.flags.get(name);
  if (v === true) throw new UsageError(`--${name} needs a value`);
  return v;
}

function int(p: Parsed, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`--${name} must be a number, got ${v}`);
  return Number(v);
}

/** --wait DURATION (90s, 3m, 1m30s, or seconds) / --no-wait → milliseconds, 0 for no wait. */
function waitMs(p: Parsed): number {
  if (p.flags.has('no-wait')) {
    if (p.flags.has('wait')) throw new UsageError('--wait and --no-wait together');
    return 0;
  }
  const v = str(p, 'wait');
  if (v === undefined) return lab.DEFAULT_WAIT_MS;
  const ms = parseDuration(v);
  if (ms === null || ms <= 0) throw new UsageError(`--wait must be a duration such as 90s or 3m, got ${v}`);
  return ms;
}

function allowOnly(p: Parsed, ...names: string[]): void {
  for (const k of p.flags.keys()) if (!names.includes(k)) throw new UsageError(`unknown flag --${k}`);
}

function need(p: Parsed, n: number, what: string): string[] {
  if (p.positional.length !== n) throw new UsageError(`expected ${what}`);
  return p.positional;
}

const log = (line: string) => process.stdout.write(line + '\n');

/** `e2e`: the upstream suite; SCTP-connectivity specs skipped only when this kernel has no SCTP. */
async function e2eVerb(name: string, p: Parsed): Promise<number> {
  const focus = str(p, 'focus') ?? 'Netpol';
  const procs = int(p, 'procs') ?? 1;
  if (procs < 1 || procs > 8) throw new UsageError(`--procs must be 1–8, got ${procs}`);
  try {
    new RegExp(focus);
  } catch {
    throw new UsageError(`--focus is not a regular expression: ${focus}`);
  }
  let skip = str(p, 'skip');
  const noSctp = await sctpMissing(mustReadState(name));
  if (noSctp) {
    log(`e2e: this kernel lacks SCTP (${noSctp}): specs tagged [Feature:SCTPConnectivity] are skipped`);
    skip = skip ? `${skip}|SCTPConnectivity` : 'SCTPConnectivity';
  }
  const reportDir = resolve(str(p, 'report-dir') ?? `e2e-${name}-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const r = await runE2E(name, { focus, skip, procs, reportDir, extra: p.rest }, log);
  const text = formatSummary(r);
  writeFileSync(join(reportDir, 'summary.txt'), text);
  process.stdout.write(text);
  log(`e2e: report in ${reportDir} (summary.txt, summary.json, junit_01.xml, e2e.log)`);
  return r.failed.length === 0 && r.passed.length > 0 && r.exitCode === 0 ? 0 : 1;
}

async function main(argv: string[]): Promise<number> {
  const [verb, ...args] = argv;
  if (!verb || verb === '-h' || verb === '--help' || verb === 'help') {
    process.stdout.write(USAGE);
    return verb ? 0 : 2;
  }
  const p = parse(args);
  switch (verb) {
    case 'up': {
      allowOnly(p, 'name', 'nodes', 'preset', 'mode', 'datastore', 'wait', 'no-wait', 'kubernetes', 'cni');
      need(p, 0, 'no positional arguments');
      const preset = str(p, 'preset') as Preset | undefined;
      await lab.up(
        {
          name: str(p, 'name') ?? (preset ?? 'lab'),
          nodes: int(p, 'nodes'),
          preset,
          mode: str(p, 'mode') as Mode | undefined,
          datastore: str(p, 'datastore') as DatastoreKind | undefined,
          waitMs: waitMs(p),
          kubernetes: p.flags.has('kubernetes'),
          cni: str(p, 'cni') as CniKind | undefined,
        },
        log,
      );
      return 0;
    }
    case 'pod': {
      const [sub, ...pos] = p.positional;
      const q = { ...p, positional: pos };
      if (sub === 'add') {
        allowOnly(p, 'labels', 'serve', 'wait', 'no-wait');
        const [name, node, ref] = need(q, 3, 'pod add N NODE NS/POD');
        const labels = str(p, 'labels');
        const serve = str(p, 'serve');
        await lab.podAdd(
          name!,
          node!,
          ref!,
          { labels: labels ? parseLabels(labels) : undefined, serve: serve ? parseServe(serve) : undefined, waitMs: waitMs(p) },
          log,
        );
        return 0;
      }
      if (sub === 'del' || sub === 'delete') {
        allowOnly(p);
        const [name, ref] = need(q, 2, 'pod del N NS/POD');
        await lab.podDel(name!, ref!, log);
        return 0;
      }
      throw new UsageError('pod add | pod del');
    }
    case 'ns': {
      const [sub, ...pos] = p.positional;
      if (sub !== 'add') throw new UsageError('ns add');
      allowOnly(p, 'labels');
      const [name, ns] = need({ ...p, positional: pos }, 2, 'ns add N NAME');
      const labels = str(p, 'labels');
      await lab.nsAdd(name!, ns!, labels ? parseLabels(labels) : {}, log);
      return 0;
    }
    case 'truth': {
      allowOnly(p, 'json', 'settle', 'timeout', 'keep', 'no-retry');
      const [name, ...paths] = p.positional;
      if (!name || paths.length === 0) throw new UsageError('truth N CASE_FILE...');
      const files = paths.flatMap((f) => (statSync(f).isDirectory() ? caseFiles(f) : [f]));
      const json = p.flags.has('json');
      // Progress and the matrices go to stdout as cases finish; with --json only the result does.
      const quiet = (line: string) => (json ? process.stderr.write(line + '\n') : log(line));
      const cases = await runTruth(
        name,
        files,
        { settleMs: int(p, 'settle'), timeoutMs: int(p, 'timeout'), keep: p.flags.has('keep'), retry: !p.flags.has('no-retry') },
        quiet,
        json ? undefined : (c) => process.stdout.write(formatCase(c)),
      );
      process.stdout.write(json ? JSON.stringify(truthJson(cases)) + '\n' : formatTotals(cases));
      return cases.every((c) => c.ok) ? 0 : 1;
    }
    case 'node': {
      allowOnly(p, 'wait', 'no-wait');
      const [sub, ...pos] = p.positional;
      const q = { ...p, positional: pos };
      if (sub === 'add') {
        const [name, node] = need(q, 2, 'node add N NAME');
        await lab.nodeAdd(name!, node!, log, waitMs(p));
        return 0;
      }
      if (sub === 'restart') {
        const [name, node] = need(q, 2, 'node restart N NODE');
        await lab.nodeRestart(name!, node!, log, waitMs(p));
        return 0;
      }
      if (sub === 'del' || sub === 'delete') {
        if (p.flags.size > 0) throw new UsageError('node del takes no --wait');
        const [name, node] = need(q, 2, 'node del N NODE');
        await lab.nodeDel(name!, node!, log);
        return 0;
      }
      throw new UsageError('node add | node restart | node del');
    }
    case 'exec': {
      allowOnly(p);
      const [name, target] = need(p, 2, 'exec N (NODE | NS/POD) -- CMD...');
      return lab.exec(name!, target!, p.rest);
    }
    case 'ctl': {
      allowOnly(p, 'node', 'wait', 'no-wait');
      const [name] = need(p, 1, 'ctl N [--node NODE] [--wait D | --no-wait] -- ARGS...');
      return lab.ctl(name!, str(p, 'node'), p.rest, waitMs(p));
    }
    case 'probe': {
      allowOnly(p, 'port', 'proto', 'json', 'expect', 'timeout');
      const [name] = need(p, 1, 'probe N');
      const proto = str(p, 'proto');
      if (proto !== undefined && !['tcp', 'udp', 'icmp'].includes(proto)) throw new UsageError('--proto tcp|udp|icmp');
      const expectFile = str(p, 'expect');
      const expect = expectFile ? parseExpectation(readFileSync(expectFile, 'utf8')) : undefined;
      const r = await lab.probe(name!, { port: int(p, 'port'), proto: proto as 'tcp' | 'udp' | 'icmp' | undefined, timeoutMs: int(p, 'timeout') });
      const out = lab.renderProbe(r, { json: p.flags.has('json'), expect });
      process.stdout.write(out.text);
      return out.ok ? 0 : 1;
    }
    case 'break':
    case 'heal': {
      allowOnly(p, ...(verb === 'break' ? ['node'] : []));
      const [name, fault] = need(p, 2, `${verb} N FAULT`);
      if (verb === 'break') await breakFault(name!, parseFault(fault!), { node: str(p, 'node') }, log);
      else await healFault(name!, parseFault(fault!), log);
      return 0;
    }
    case 'connectivity': {
      allowOnly(p, 'json');
      const [name] = need(p, 1, 'connectivity N');
      const ac = new AbortController();
      const onInt = () => {
        process.stderr.write('tortie-lab: interrupted; removing the probes after the current check\n');
        ac.abort();
      };
      process.on('SIGINT', onInt);
      process.on('SIGTERM', onInt);
      try {
        const json = p.flags.has('json');
        const r = await runConnectivity(new LabDriver(name!, json ? () => undefined : log), { out: (t) => process.stdout.write(t), json, signal: ac.signal });
        return r.ok ? 0 : 1;
      } finally {
        process.off('SIGINT', onInt);
        process.off('SIGTERM', onInt);
      }
    }
    case 'trace': {
      allowOnly(p);
      const [name, src, dst, pp, ...extra] = p.positional;
      if (!name || !src || !dst || extra.length > 0) throw new UsageError('trace N SRC DST [PORT/PROTO]');
      const r = await liveTrace(name, src, dst, pp);
      process.stdout.write(r.text);
      return r.agrees ? 0 : 1;
    }
    case 'kubectl': {
      allowOnly(p);
      const [name] = need(p, 1, 'kubectl N -- ARGS...');
      return lab.kubectlVerb(name!, p.rest);
    }
    case 'e2e': {
      allowOnly(p, 'focus', 'skip', 'procs', 'report-dir');
      const [name] = need(p, 1, 'e2e N');
      return e2eVerb(name!, p);
    }
    case 'kubelet':
    case 'containerd': {
      allowOnly(p, 'wait', 'no-wait');
      const [sub, ...pos] = p.positional;
      if (sub !== 'restart') throw new UsageError(`${verb} restart N NODE`);
      const [name, node] = need({ ...p, positional: pos }, 2, `${verb} restart N NODE`);
      await lab.kubeRestart(name!, verb, node!, log, waitMs(p));
      return 0;
    }
    case 'down': {
      allowOnly(p);
      const [name] = need(p, 1, 'down N');
      await lab.down(name!, log);
      return 0;
    }
    case 'list': {
      allowOnly(p);
      process.stdout.write(lab.list());
      return 0;
    }
    default:
      throw new UsageError(`unknown verb ${verb}`);
  }
}

if (process.getuid?.() !== 0) {
  process.stderr.write('tortie-lab: needs root (network namespaces)\n');
  process.exit(1);
}
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    if (e instanceof UsageError) process.stderr.write(`tortie-lab: ${e.message}\n\n${USAGE}`);
    else process.stderr.write(`tortie-lab: ${e.message}\n`);
    process.exit(e instanceof UsageError ? 2 : 1);
  },
);
