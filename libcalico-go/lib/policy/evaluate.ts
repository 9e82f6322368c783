// Calico's policy semantics as a pure function: which tier, policy and rule decides a packet.
//
// For each direction (egress of the source endpoint, then ingress of the destination endpoint):
// tiers in order (order ascending, unset last, ties by name); in a tier, the policies that select
// the endpoint for that direction, by order (unset last) then name; the first matching rule with
// action Allow, Deny or Pass decides (Log only records). A tier in which some policy selected the
// endpoint but no rule allowed or passed ends in its defaultAction (Deny, or Pass for tiers such as
// kube-baseline). After the tiers (or when no tier had a policy for the endpoint), the endpoint's
// profiles run: `kns.<ns>` allows everything unless a Profile resource of that name says otherwise.
import { type CIDR, type IP, cidrContainsIP, parseCIDR, parseIP } from '../net/ip.js';
import type { Resource } from '../apis/v3/resource.js';
import { type Endpoint, type PolicyModel, namespaceLabels } from './model.js';
import { type Candidate, cachedSelector, selectorPartMatches } from './selector-scope.js';
import { comparePolicies, nonEmpty, policyId, protoNumber, tierName, tiersOf } from './order.js';

export type Protocol = 'TCP' | 'UDP' | 'ICMP' | 'ICMPv6' | 'SCTP';
export type Peer = string | { ip: string };

export interface Flow {
  src: Peer;
  dst: Peer;
  protocol: Protocol;
  port?: number;
  /** Source port; unset means an ephemeral port no source-port rule names. */
  srcPort?: number;
}

export type Decider = 'rule' | 'end of tier' | 'profile' | 'no profile' | 'no policy';

export interface Explanation {
  allowed: boolean;
  by: Decider;
  tier?: string;
  /** "name" for a GlobalNetworkPolicy, "ns/name" for a NetworkPolicy. */
  policy?: string;
  kind?: string;
  /** Index into the policy's (or profile's) ingress/egress list. */
  rule?: number;
  action?: 'Allow' | 'Deny' | 'Pass';
  profile?: string;
  /** Log rules hit and tiers passed on the way, in order. */
  trail: string[];
  /** One line: what decided, e.g. `tier default, policy x/knp.default.deny: end of tier (deny)`. */
  text: string;
}

export interface Verdict {
  allowed: boolean;
  egress: Explanation;
  ingress: Explanation;
}



/** The resolved far side of a rule: an endpoint, or just an address (maybe in network sets). */
interface Party {
  ep?: Endpoint;
  ip?: IP;
  ipText?: string;
}

function resolve(model: PolicyModel, p: Peer): Party {
  if (typeof p === 'string') {
    const ep = model.endpoints.find((e) => e.key === p);
    if (!ep) throw new Error(`unknown endpoint ${JSON.stringify(p)} (expected NS/POD of a known workload, or an IP)`);
    const ipText = ep.ips[0];
    return { ep, ip: ipText ? (parseIP(ipText) ?? undefined) : undefined, ipText };
  }
  const ip = parseIP(p.ip);
  if (!ip) throw new Error(`not an IP address: ${JSON.stringify(p.ip)}`);
  const ep = model.endpoints.find((e) => e.ips.some((x) => sameIP(parseIP(x), ip)));
  return { ep, ip, ipText: p.ip };
}

function sameIP(a: IP | null, b: IP): boolean {
  return !!a && a.version === b.version && a.value === b.value;
}

function cidrs(list: unknown): CIDR[] {
  if (!Array.isArray(list)) return [];
  return list.map((s) => parseCIDR(String(s).includes('/') ? String(s) : `${s}/${String(s).includes(':') ? 128 : 32}`)).filter((c): c is CIDR => !!c);
}

function inNets(ip: IP | undefined, list: unknown): boolean {
  return !!ip && cidrs(list).some((c) => c.version === ip.version && cidrContainsIP(c, ip));
}

type Obj = Record<string, unknown>;

interface PolicyCtx {
  /** Namespace of a NetworkPolicy / NetworkSet-scoped rule; undefined for global. */
  namespace?: string;
}

/**
 * Does the rule's selector/namespaceSelector/serviceAccounts part match the party? Endpoints
 * match on their labels; a bare address matches when a network set holding it matches.
 */
function selectorMatches(model: PolicyModel, e: Obj, party: Party, ctx: PolicyCtx): boolean {
  const hasSel = typeof e.selector === 'string';
  const hasNotSel = typeof e.notSelector === 'string';
  const hasNs = typeof e.namespaceSelector === 'string';
  const sa = e.serviceAccounts as { names?: string[]; selector?: string } | undefined;
  if (!hasSel && !hasNotSel && !hasNs && !sa) return true;

  // Candidates: the endpoint itself and network sets containing the address.
  const candidates: Candidate[] = [];
  if (party.ep) candidates.push({ labels: party.ep.labels, namespace: party.ep.namespace, isEndpoint: true, sa: party.ep.serviceAccount });
  // The address also matches through any network set that holds it (Calico's IP sets contain
  // both the selected endpoints' addresses and the selected sets' nets).
  if (party.ip) {
    for (const ns of model.networkSets) {
      const spec = (ns.spec ?? {}) as Obj;
      if (inNets(party.ip, spec.nets)) {
        candidates.push({ labels: ns.metadata.labels ?? {}, namespace: ns.kind === 'NetworkSet' ? (ns.metadata.namespace ?? 'default') : undefined, isEndpoint: false });
      }
    }
  }
  return candidates.some((c) => selectorPartMatches(e, ctx.namespace, c, (ns) => namespaceLabels(model, ns)));
}

function portMatches(spec: unknown, port: number | undefined, proto: number, ep: Endpoint | undefined): boolean {
  if (port === undefined) return false;
  if (typeof spec === 'number') return spec === port;
  const s = String(spec);
  const range = /^(\d+):(\d+)$/.exec(s);
  if (range) return port >= Number(range[1]) && port <= Number(range[2]);
  if (/^\d+$/.test(s)) return Number(s) === port;
  // A named port: the far endpoint's port of that name and protocol.
  return !!ep?.namedPorts.some((np) => np.name === s && np.port === port && protoNumber(np.protocol) === proto);
}

function entityMatches(model: PolicyModel, e: Obj | undefined, party: Party, port: number | undefined, proto: number, ctx: PolicyCtx): boolean {
  if (!e) return true;
  if (nonEmpty(e.nets) && !inNets(party.ip, e.nets)) return false;
  if (nonEmpty(e.notNets) && inNets(party.ip, e.notNets)) return false;
  if (!selectorMatches(model, e, party, ctx)) return false;
  if (nonEmpty(e.ports) && !e.ports.some((p) => portMatches(p, port, proto, party.ep))) return false;
  if (nonEmpty(e.notPorts) && e.notPorts.some((p) => portMatches(p, port, proto, party.ep))) return false;
  return true;
}

/**
 * Felix renders each rule once per IP version and drops it for a version that none of a non-empty
 * `nets` or `notNets` list (source or destination) belongs to: `notNets: [10.0.0.0/8]` says
 * nothing about IPv6 packets, it does not match them.
 */
function ruleAppliesToVersion(rule: Obj, version: number | undefined): boolean {
  if (version === undefined) return true;
  for (const e of [rule.source, rule.destination] as Array<Obj | undefined>) {
    for (const list of [e?.nets, e?.notNets]) {
      if (nonEmpty(list) && !cidrs(list).some((c) => c.version === version)) return false;
    }
  }
  return true;
}

function icmpMatches(icmp: unknown, proto: number): boolean {
  // Probes are echo requests, code 0: type 8 (ICMP), type 128 (ICMPv6).
  const echo = proto === 1 ? 8 : proto === 58 ? 128 : undefined;
  if (echo === undefined) return false;
  const o = icmp as { type?: number; code?: number };
  return (o.type === undefined || o.type === echo) && (o.code === undefined || o.code === 0);
}

/** True when the rule matches the packet; `src`/`dst` are the packet's parties. */
export function ruleMatches(model: PolicyModel, rule: Obj, src: Party, dst: Party, flow: Flow, ctx: PolicyCtx): boolean {
  const proto = protoNumber(flow.protocol)!;
  const version = src.ip?.version ?? dst.ip?.version;
  if (rule.ipVersion !== undefined && version !== rule.ipVersion) return false;
  if (!ruleAppliesToVersion(rule, version)) return false;
  if (rule.protocol !== undefined && protoNumber(rule.protocol) !== proto) return false;
  if (rule.notProtocol !== undefined && protoNumber(rule.notProtocol) === proto) return false;
  if (rule.icmp !== undefined && !icmpMatches(rule.icmp, proto)) return false;
  if (rule.notICMP !== undefined && icmpMatches(rule.notICMP, proto)) return false;
  if (!entityMatches(model, rule.source as Obj | undefined, src, flow.srcPort, proto, ctx)) return false;
  if (!entityMatches(model, rule.destination as Obj | undefined, dst, flow.port, proto, ctx)) return false;
  return true;
}




/** The policy types, defaulted as Calico does when unset. */
export function policyTypes(p: Resource): string[] {
  const spec = (p.spec ?? {}) as Obj;
  if (Array.isArray(spec.types) && spec.types.length > 0) return spec.types as string[];
  const hasEg = Array.isArray(spec.egress) && spec.egress.length > 0;
  const hasIn = Array.isArray(spec.ingress) && spec.ingress.length > 0;
  return !hasEg ? ['Ingress'] : !hasIn ? ['Egress'] : ['Ingress', 'Egress'];
}

/** Does the policy apply to the endpoint (ignoring direction)? */
export function policySelects(model: PolicyModel, p: Resource, ep: Endpoint): boolean {
  const spec = (p.spec ?? {}) as Obj;
  if (p.kind === 'NetworkPolicy') {
    if ((p.metadata.namespace ?? 'default') !== ep.namespace) return false;
  } else if (typeof spec.namespaceSelector === 'string' && spec.namespaceSelector.trim() !== '') {
    if (!cachedSelector(spec.namespaceSelector).evaluate(namespaceLabels(model, ep.namespace))) return false;
  }
  if (!cachedSelector(spec.selector as string | undefined).evaluate(ep.labels)) return false;
  if (typeof spec.serviceAccountSelector === 'string' && spec.serviceAccountSelector.trim() !== '') {
    if (ep.serviceAccount === undefined) return false;
  }
  return true;
}



type Dir = 'ingress' | 'egress';

function explainDirection(model: PolicyModel, dir: Dir, self: Party, src: Party, dst: Party, flow: Flow): Explanation {
  const trail: string[] = [];
  const ep = self.ep;
  if (!ep) {
    return { allowed: true, by: 'no policy', trail, text: `${self.ipText ?? '?'} is not a workload endpoint: no policy: default allow` };
  }
  const type = dir === 'ingress' ? 'Ingress' : 'Egress';
  for (const tier of tiersOf(model)) {
    const pols = model.policies
      .filter((p) => tierName(p) === tier.name && policyTypes(p).includes(type) && policySelects(model, p, ep))
      .sort(comparePolicies);
    if (pols.length === 0) continue;
    let passed = false;
    for (const p of pols) {
      const rules = (((p.spec ?? {}) as Obj)[dir] ?? []) as Obj[];
      const ctx: PolicyCtx = { namespace: p.kind === 'NetworkPolicy' ? (p.metadata.namespace ?? 'default') : undefined };
      for (let i = 0; i < rules.length; i++) {
        const r = rules[i]!;
        if (!ruleMatches(model, r, src, dst, flow, ctx)) continue;
        const where = `tier ${tier.name}, ${p.kind} ${policyId(p)}, ${dir} rule ${i}`;
        const action = (r.action as string) ?? 'Allow';
        if (action === 'Log') {
          trail.push(`${where}: Log`);
          continue;
        }
        if (action === 'Pass') {
          trail.push(`${where}: Pass`);
          passed = true;
          break;
        }
        const allowed = action === 'Allow';
        return { allowed, by: 'rule', tier: tier.name, policy: policyId(p), kind: p.kind, rule: i, action: allowed ? 'Allow' : 'Deny', trail, text: `${where}: ${action}` };
      }
      if (passed) break;
    }
    if (passed) continue;
    if (tier.defaultAction === 'Pass') {
      trail.push(`tier ${tier.name}: end of tier (defaultAction Pass)`);
      continue;
    }
    const last = pols[pols.length - 1]!;
    return {
      allowed: false,
      by: 'end of tier',
      tier: tier.name,
      policy: policyId(last),
      kind: last.kind,
      trail,
      text: `tier ${tier.name}: end of tier, no policy allowed or passed (deny; selected by ${pols.map(policyId).join(', ')})`,
    };
  }
  for (const name of ep.profiles) {
    const prof = model.profiles.find((p) => p.metadata.name === name);
    if (!prof) {
      if (name.startsWith('kns.')) return { allowed: true, by: 'profile', profile: name, trail, text: `profile ${name}: allow` };
      continue;
    }
    const rules = (((prof.spec ?? {}) as Obj)[dir] ?? []) as Obj[];
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (!ruleMatches(model, r, src, dst, flow, {})) continue;
      const action = (r.action as string) ?? 'Allow';
      if (action === 'Log') {
        trail.push(`profile ${name}, ${dir} rule ${i}: Log`);
        continue;
      }
      if (action === 'Pass') break; // next profile
      const allowed = action === 'Allow';
      return { allowed, by: 'profile', profile: name, rule: i, action: allowed ? 'Allow' : 'Deny', trail, text: `profile ${name}, ${dir} rule ${i}: ${action}` };
    }
  }
  return { allowed: false, by: 'no profile', trail, text: 'no profile matched: deny' };
}

/** The verdict for one packet: egress of its source, then ingress of its destination. */
export function verdict(model: PolicyModel, flow: Flow): Verdict {
  const src = resolve(model, flow.src);
  const dst = resolve(model, flow.dst);
  const egress = explainDirection(model, 'egress', src, src, dst, flow);
  const ingress = explainDirection(model, 'ingress', dst, src, dst, flow);
  return { allowed: egress.allowed && ingress.allowed, egress, ingress };
}
