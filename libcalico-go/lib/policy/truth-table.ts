// NetworkPolicy truth tables as data. A case (testdata/cases/*.yaml) is a set of policies plus the
// expected reachability for some port/protocol probes over the Kubernetes e2e model: namespaces
// x, y, z (labels ns=<name>, kubernetes.io/metadata.name=<name>) × pods a, b, c (label pod=<name>),
// every pod serving TCP and UDP on 80 and 81 (named ports serve-80-tcp, serve-80-udp, serve-81-tcp,
// serve-81-udp).
//
// Case format:
//   name: <string>                      # defaults to the file name
//   description: <string>
//   policies:                           # applied in order with `tortiectl apply -f`; k8s
//     - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, ...}   # NetworkPolicy and/or
//     - {apiVersion: projectcalico.org/v3, kind: GlobalNetworkPolicy, ...}  # Calico v3 resources
//   probes:
//     - port: 80                        # omitted for ICMP
//       protocol: TCP                   # TCP | UDP | ICMP
//       default: true                   # reachability of pairs no exception names
//       exceptions:                     # later entries win; NS/POD, NS/*, */POD or *
//         - {from: "*", to: x/a, reachable: false}
// Policy text may say ${ip:x/a} or ${cidr:x/a} (the pod's address, /32) so a runner on a real
// cluster substitutes its own addresses.
import { readFileSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { Resource } from '../apis/v3/resource.js';
import { validateResource } from '../apis/v3/validate.js';
import { type Expectation, type Matrix, formatMatrix, mismatches, summary } from './matrix.js';
import { convertK8sNetworkPolicy, isK8sNetworkPolicy } from './k8s.js';
import { type PolicyModel, emptyModel, makeEndpoint } from './model.js';
import { type Protocol, verdict } from './evaluate.js';

export const NAMESPACES = ['x', 'y', 'z'] as const;
export const PODS = ['a', 'b', 'c'] as const;
export const PORTS = [80, 81] as const;

/** Every pod key in the matrix's order: x/a, x/b, x/c, y/a, … */
export const POD_KEYS: readonly string[] = NAMESPACES.flatMap((n) => PODS.map((p) => `${n}/${p}`));

export interface ProbeException {
  from: string;
  to: string;
  reachable: boolean;
}

export interface Probe {
  port?: number;
  protocol: Protocol;
  default: boolean;
  exceptions: ProbeException[];
}

export interface TruthCase {
  name: string;
  description?: string;
  /** The documents as written (after address substitution). */
  policies: Record<string, unknown>[];
  probes: Probe[];
}

/** The evaluator's addresses for the e2e pods: 10.200.<ns index>.<pod index + 10>. */
export function defaultAddresses(): Record<string, string> {
  const out: Record<string, string> = {};
  NAMESPACES.forEach((n, i) => {
    PODS.forEach((p, j) => {
      out[`${n}/${p}`] = `10.200.${i}.${j + 10}`;
    });
  });
  return out;
}

export function substituteAddresses(text: string, addrs: Record<string, string>): string {
  return text.replace(/\$\{(ip|cidr):([a-z0-9-]+\/[a-z0-9-]+)\}/g, (_, kind: string, key: string) => {
    const a = addrs[key];
    if (!a) throw new Error(`unknown pod ${key} in \${${kind}:${key}}`);
    return kind === 'ip' ? a : `${a}/${a.includes(':') ? 128 : 32}`;
  });
}

function fail(where: string, msg: string): never {
  throw new Error(`${where}: ${msg}`);
}

const KEY_PATTERN = /^(\*|(\*|[a-z0-9-]+)\/(\*|[a-z0-9-]+))$/;

export function parseCase(text: string, name: string, addrs = defaultAddresses()): TruthCase {
  const doc = parseYaml(substituteAddresses(text, addrs)) as Record<string, unknown> | null;
  if (!doc || typeof doc !== 'object') fail(name, 'a case must be a YAML object');
  const policies = doc.policies ?? [];
  if (!Array.isArray(policies)) fail(name, 'policies must be a list');
  const probesRaw = doc.probes;
  if (!Array.isArray(probesRaw) || probesRaw.length === 0) fail(name, 'probes must be a non-empty list');
  const probes = probesRaw.map((pr, i): Probe => {
    const w = `${name}: probes[${i}]`;
    const o = pr as Record<string, unknown>;
    const protocol = String(o.protocol ?? 'TCP').toUpperCase();
    if (!['TCP', 'UDP', 'ICMP', 'SCTP'].includes(protocol)) fail(w, `protocol ${JSON.stringify(o.protocol)} is not TCP, UDP or ICMP`);
    if (protocol !== 'ICMP' && typeof o.port !== 'number') fail(w, 'port must be a number');
    if (typeof o.default !== 'boolean') fail(w, 'default must be true or false');
    const ex = (o.exceptions ?? []) as unknown[];
    if (!Array.isArray(ex)) fail(w, 'exceptions must be a list');
    return {
      port: typeof o.port === 'number' ? o.port : undefined,
      protocol: protocol as Protocol,
      default: o.default,
      exceptions: ex.map((e, j) => {
        const x = e as Record<string, unknown>;
        const from = String(x.from);
        const to = String(x.to);
        if (!KEY_PATTERN.test(from) || !KEY_PATTERN.test(to)) fail(`${w}.exceptions[${j}]`, `from/to must be NS/POD, NS/*, */POD or *`);
        if (typeof x.reachable !== 'boolean') fail(`${w}.exceptions[${j}]`, 'reachable must be true or false');
        return { from, to, reachable: x.reachable };
      }),
    };
  });
  return {
    name: typeof doc.name === 'string' ? doc.name : name,
    description: typeof doc.description === 'string' ? doc.description : undefined,
    policies: policies as Record<string, unknown>[],
    probes,
  };
}

export function loadCase(file: string, addrs?: Record<string, string>): TruthCase {
  return parseCase(readFileSync(file, 'utf8'), basename(file).replace(/\.ya?ml$/, ''), addrs);
}

/** Case files in a directory, sorted by name. */
export function caseFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
}

function keyMatches(pattern: string, key: string): boolean {
  if (pattern === '*') return true;
  const [pn, pp] = pattern.split('/');
  const [kn, kp] = key.split('/');
  return (pn === '*' || pn === kn) && (pp === '*' || pp === kp);
}

/** The full expectation for one probe, in matrix.ts's form. */
export function expectationOf(p: Probe, keys: readonly string[] = POD_KEYS): Expectation {
  const exp: Expectation = {};
  for (const from of keys) {
    exp[from] = {};
    for (const to of keys) {
      if (from === to) continue;
      let v = p.default;
      for (const e of p.exceptions) if (keyMatches(e.from, from) && keyMatches(e.to, to)) v = e.reachable;
      exp[from]![to] = v;
    }
  }
  return exp;
}

/** Policies as Calico stores them: k8s NetworkPolicies converted, everything validated. */
export function calicoResources(docs: readonly Record<string, unknown>[]): Resource[] {
  return docs.map((d) => validateResource(isK8sNetworkPolicy(d) ? convertK8sNetworkPolicy(d) : d, {}));
}

/** The e2e model with the case's policies. */
export function e2eModel(resources: readonly Resource[], addrs = defaultAddresses()): PolicyModel {
  const m = emptyModel();
  for (const n of NAMESPACES) {
    const nsLabels = { ns: n, 'kubernetes.io/metadata.name': n };
    m.namespaces.push({ name: n, labels: nsLabels });
    for (const p of PODS) {
      m.endpoints.push(
        makeEndpoint({
          namespace: n,
          name: p,
          labels: { pod: p },
          ips: [addrs[`${n}/${p}`]!],
          namespaceLabels: nsLabels,
          namedPorts: PORTS.flatMap((port) =>
            (['TCP', 'UDP'] as const).map((proto) => ({ name: `serve-${port}-${proto.toLowerCase()}`, port, protocol: proto })),
          ),
        }),
      );
    }
  }
  for (const r of resources) {
    if (r.kind === 'NetworkPolicy' || r.kind === 'GlobalNetworkPolicy') m.policies.push(r);
    else if (r.kind === 'Tier') m.tiers.push(r);
    else if (r.kind === 'Profile') m.profiles.push(r);
    else if (r.kind === 'NetworkSet' || r.kind === 'GlobalNetworkSet') m.networkSets.push(r);
    else throw new Error(`${r.kind} ${r.metadata.name}: not a policy resource`);
  }
  return m;
}

export function evaluateMatrix(model: PolicyModel, probe: Probe, keys: readonly string[] = POD_KEYS): Matrix {
  const m: Matrix = {};
  for (const from of keys) {
    m[from] = {};
    for (const to of keys) {
      if (from === to) continue;
      m[from]![to] = verdict(model, { src: from, dst: to, protocol: probe.protocol, port: probe.port }).allowed;
    }
  }
  return m;
}

export interface ProbeResult {
  probe: Probe;
  matrix: Matrix;
  expectation: Expectation;
  /** Exactly as `tortie-lab probe --expect` prints: matrix then summary. */
  text: string;
  ok: boolean;
}

export function probeLabel(p: Probe): string {
  return p.protocol === 'ICMP' ? 'ICMP' : `${p.port}/${p.protocol}`;
}

export function runCase(c: TruthCase, addrs = defaultAddresses()): ProbeResult[] {
  const model = e2eModel(calicoResources(c.policies), addrs);
  return c.probes.map((probe) => {
    const matrix = evaluateMatrix(model, probe);
    const expectation = expectationOf(probe);
    const text = formatMatrix(POD_KEYS, matrix, expectation) + summary(POD_KEYS, matrix, expectation);
    return { probe, matrix, expectation, text, ok: mismatches(POD_KEYS, matrix, expectation).length === 0 };
  });
}
