// NetworkPolicy truth tables (libcalico-go/lib/policy/testdata/cases/*.yaml) against real packets
// in a running lab: the Kubernetes e2e model (namespaces x, y, z; pods a, b, c in each, serving
// TCP and UDP on 80 and 81 with named ports serve-<port>-<proto>), then for each case: the
// previous case's policies deleted, this case's applied with its ${ip:…}/${cidr:…} placeholders
// replaced by the pods' real addresses, a short wait for enforcement, every ordered pair probed
// for each probe of the case and compared with the case's expectation.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import {
  NAMESPACES,
  PODS,
  POD_KEYS,
  type Probe,
  type TruthCase,
  expectationOf,
  parseCase,
  probeLabel,
} from '../../libcalico-go/lib/policy/truth-table.js';
import { type Log, ctlCapture, nsAdd, podAdd, probe } from './lab.js';
import { type Expectation, type Matrix, type Mismatch, formatMatrix, matrixJson, mismatches, summary } from '../../libcalico-go/lib/policy/matrix.js';
import { kddKubectl, isKdd, kubectlDocumentsText } from './kdd.js';
import { mustReadState } from './state.js';
import type { ServeSpec } from './topology.js';

/** What every e2e pod serves: TCP and UDP on 80 and 81. */
export const E2E_SERVE: readonly ServeSpec[] = [
  { port: 80, proto: 'tcp' },
  { port: 81, proto: 'tcp' },
  { port: 80, proto: 'udp' },
  { port: 81, proto: 'udp' },
];

export function e2eNamespaceLabels(ns: string): Record<string, string> {
  return { ns, 'kubernetes.io/metadata.name': ns };
}

export interface TruthOptions {
  /** Wait after applying a case's policies, before probing (ms). */
  settleMs?: number;
  /** Per-pair probe timeout (ms). */
  timeoutMs?: number;
  /** Leave the last case's policies in place. */
  keep?: boolean;
  /** Probe a mismatching probe once more after another settle (default true). */
  retry?: boolean;
}

export interface ProbeOutcome {
  probe: Probe;
  label: string;
  matrix: Matrix;
  expectation: Expectation;
  mismatches: Mismatch[];
  /** The matrix is from the second try (the first did not match). */
  retried?: boolean;
}

export interface CaseOutcome {
  name: string;
  file: string;
  description?: string;
  probes: ProbeOutcome[];
  ok: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Namespaces x, y, z (kns profiles with their labels) and pods a, b, c in each, spread over the
 * nodes. Pods already there are kept when they serve what the model needs; returns their addresses.
 */
export async function ensureE2eModel(lab: string, log: Log): Promise<Record<string, string>> {
  const s = mustReadState(lab);
  const nodes = s.plan.nodes.map((n) => n.name);
  if (nodes.length === 0) throw new Error(`lab ${lab} has no nodes`);
  for (const ns of NAMESPACES) {
    const labels = e2eNamespaceLabels(ns);
    const have = s.k8sNamespaces?.[ns];
    if (!have || JSON.stringify(have) !== JSON.stringify(labels)) await nsAdd(lab, ns, labels, log);
  }
  let i = 0;
  for (const ns of NAMESPACES) {
    for (const name of PODS) {
      const key = `${ns}/${name}`;
      const node = nodes[i++ % nodes.length]!;
      const existing = mustReadState(lab).pods[key];
      if (existing) {
        const serves = E2E_SERVE.every((w) => existing.serve.some((x) => x.port === w.port && x.proto === w.proto));
        if (existing.phase !== 'up' || !existing.ip || !serves || existing.labels.pod !== name) {
          throw new Error(`pod ${key} exists but is not an e2e pod (label pod=${name}, --serve 80,81,80/udp,81/udp); tortie-lab pod del ${lab} ${key}`);
        }
        continue;
      }
      await podAdd(lab, node, key, { labels: { pod: name }, serve: [...E2E_SERVE] }, log);
    }
  }
  const pods = mustReadState(lab).pods;
  const addrs: Record<string, string> = {};
  for (const key of POD_KEYS) addrs[key] = pods[key]!.ip!;
  return addrs;
}

/** The documents of a case as `tortiectl apply -f -` / `delete -f -` input (YAML documents). */
export function documentsText(docs: readonly Record<string, unknown>[]): string {
  return docs.map((d) => JSON.stringify(d)).join('\n---\n') + '\n';
}

function probeProto(p: Probe): { proto: 'tcp' | 'udp' | 'icmp'; port?: number } {
  if (p.protocol === 'ICMP') return { proto: 'icmp' };
  if (p.protocol === 'TCP' || p.protocol === 'UDP') return { proto: p.protocol === 'TCP' ? 'tcp' : 'udp', port: p.port };
  throw new Error(`probe ${probeLabel(p)}: the lab probes TCP, UDP and ICMP only`);
}

async function removePolicies(lab: string, docs: readonly Record<string, unknown>[]): Promise<void> {
  if (docs.length === 0) return;
  // Reverse order: policies before the tiers they live in.
  const s = mustReadState(lab);
  if (isKdd(s)) await kddKubectl(s, ['delete', '--ignore-not-found', '-f', '-'], kubectlDocumentsText([...docs].reverse()));
  else await ctlCapture(s, ['delete', '--skip-not-exists', '-f', '-'], documentsText([...docs].reverse()));
}

/**
 * Applies a case's policies: with tortiectl, or on the kubernetes datastore with the real kubectl
 * (Kubernetes NetworkPolicies as they are, Calico kinds as their crd.projectcalico.org/v1 objects).
 */
async function applyPolicies(lab: string, docs: readonly Record<string, unknown>[]): Promise<void> {
  const s = mustReadState(lab);
  if (isKdd(s)) await kddKubectl(s, ['apply', '-f', '-'], kubectlDocumentsText(docs));
  else await ctlCapture(s, ['apply', '-f', '-'], documentsText(docs));
}

/** Runs case files in order against the lab; builds the e2e model first. */
export async function runTruth(lab: string, files: readonly string[], opts: TruthOptions, log: Log, onCase?: (c: CaseOutcome) => void): Promise<CaseOutcome[]> {
  if (files.length === 0) throw new Error('no case files');
  const texts = files.map((f) => ({ file: f, text: readFileSync(f, 'utf8'), name: basename(f).replace(/\.ya?ml$/, '') }));
  // Parse every case before touching the lab (with placeholder addresses), so a typo fails fast.
  for (const t of texts) parseCase(t.text, t.name);
  const addrs = await ensureE2eModel(lab, log);
  const out: CaseOutcome[] = [];
  let previous: Record<string, unknown>[] = [];
  try {
    for (const t of texts) {
      const c: TruthCase = parseCase(t.text, t.name, addrs);
      await removePolicies(lab, previous);
      previous = [];
      if (c.policies.length > 0) {
        previous = c.policies;
        await applyPolicies(lab, c.policies);
        await sleep(opts.settleMs ?? 1500);
      }
      const probes: ProbeOutcome[] = [];
      for (const p of c.probes) {
        const { proto, port } = probeProto(p);
        const expectation = expectationOf(p, POD_KEYS);
        const once = async (): Promise<ProbeOutcome> => {
          const r = await probe(lab, { proto, port, timeoutMs: opts.timeoutMs ?? 1000, pods: POD_KEYS });
          return { probe: p, label: probeLabel(p), matrix: r.matrix, expectation, mismatches: mismatches(POD_KEYS, r.matrix, expectation) };
        };
        let o = await once();
        // Slow enforcement is not wrong enforcement: a mismatch is probed once more after another settle.
        if (o.mismatches.length > 0 && (opts.retry ?? true)) {
          await sleep(opts.settleMs ?? 1500);
          o = { ...(await once()), retried: true };
        }
        probes.push(o);
      }
      const outcome: CaseOutcome = { name: c.name, file: t.file, description: c.description, probes, ok: probes.every((p) => p.mismatches.length === 0) };
      out.push(outcome);
      onCase?.(outcome);
    }
  } finally {
    if (!opts.keep) await removePolicies(lab, previous).catch((e: Error) => log(`warning: removing the last case's policies: ${e.message}`));
  }
  return out;
}

/** `probe`'s text form per probe, under a line naming the case. */
export function formatCase(c: CaseOutcome): string {
  let text = `case ${c.name}${c.description ? `: ${c.description}` : ''}\n`;
  for (const p of c.probes) {
    text += `probe ${p.label}${p.retried ? ' (probed again after the settle time)' : ''}\n` + formatMatrix(POD_KEYS, p.matrix, p.expectation) + summary(POD_KEYS, p.matrix, p.expectation);
  }
  return text + `${c.ok ? 'PASS' : 'FAIL'} ${c.name}\n\n`;
}

export function formatTotals(cases: readonly CaseOutcome[]): string {
  const failed = cases.filter((c) => !c.ok);
  return `${cases.length - failed.length}/${cases.length} cases as expected${failed.length ? `; failed: ${failed.map((c) => c.name).join(', ')}` : ''}\n`;
}

export function truthJson(cases: readonly CaseOutcome[]): unknown {
  return {
    ok: cases.every((c) => c.ok),
    cases: cases.map((c) => ({
      name: c.name,
      file: c.file,
      ok: c.ok,
      probes: c.probes.map((p) => ({ probe: p.label, ok: p.mismatches.length === 0, retried: p.retried === true, matrix: matrixJson(POD_KEYS, p.matrix), mismatches: p.mismatches })),
    })),
  };
}
