// Calico policy → one nftables table (`inet tortie-filter`), as a function of a PolicyModel and the
// endpoints local to this node. The compiled rules give the verdicts of
// libcalico-go/lib/policy/evaluate.ts (the reference semantics). The result is the table as data
// (nft-table-spec.ts: sets and maps, chains, base chains) and its full `nft -f` script; the writer
// (felix/dataplane/linux/policy-table.ts) applies the difference between two compiled tables.
//
// * Dispatch: `wl-ifaces` is the set of local endpoint interfaces; the verdict maps `wl-egress`
//   (interface → `jump ee-…`) and `wl-ingress` (interface → `jump ei-…`) send a packet to its
//   endpoint's chain, so adding or removing an endpoint changes map elements, not base chains.
// * Base chains: `forward` (pod↔pod and pod↔off-node: egress of the source endpoint, then ingress of
//   the destination endpoint); `input` (pod → host: egress policy, then DefaultEndpointToHostAction);
//   `output` (host → pod): NOT policed, as in Calico, whose static OUTPUT chain returns for traffic
//   to workload interfaces ("it's generally very useful to be able to contact any local workload from
//   the host": kubelet probes work under default deny). Each starts with `ct state
//   established,related accept` and drops `ct state invalid` on endpoint interfaces; `forward` and
//   `input` drop packets of `cali*` interfaces that have no local endpoint (fail closed). In a dual
//   stack model `input` accepts a pod's ICMPv6 MLD/NDP before its egress policy (as Felix).
// * Per endpoint and direction an endpoint chain (`ei-…` ingress, `ee-…` egress) jumps to one tier
//   chain per tier that has a policy selecting the endpoint (`ti-…`/`te-…`, in tier order), then to
//   its profiles (`pi-…`/`pe-…`), then drops.
// * Policy chains (`ri-…`/`re-…`) are shared by endpoints: one nft rule per (Calico rule × OR branch).
//   Allow sets MARK_ALLOW and returns, Pass sets MARK_PASS and returns, Deny drops, Log logs. A tier
//   chain returns as soon as a mark is set; the end of a tier drops (defaultAction Deny) or returns
//   (Pass). The endpoint chain returns (allows) when MARK_ALLOW is set, else clears MARK_PASS and goes
//   on. Marks are cleared on entry and on the way out.
// * Named sets: `s-…` addresses matching a rule's selector part (endpoint addresses + matching network
//   sets' nets), `n-…` a rule's nets/notNets, `np-…` (address . protocol . port) for a named port.
//   Interval sets hold canonical intervals (no auto-merge), so element-wise updates are exact.
// * Names hash identity, never content: an endpoint's chains hash its key (and tier name), a
//   policy's its kind/namespace/name, a selector set its selector; only `n-…` (a list of nets) is
//   named by its content, which is its identity. An unrelated change renames nothing.
// * IPv6 (evaluate.ts's semantics for both families): every address match is per family, `ip` for
//   IPv4 and `ip6` for IPv6, as OR alternatives of one Calico rule; alternatives of different
//   families are never AND-ed. `nets` → `n-…` (ipv4_addr) and/or `n6-…` (ipv6_addr): a rule whose
//   nets are all of one family never matches a packet of the other; likewise `notNets` → the address
//   is in none of the packet family's notNets, and a rule whose notNets have no entry of a family
//   never matches that family's packets (Felix's FilterRuleToIPVersion; evaluate.ts agrees). Selector sets `s-…`/`s6-…` and named-port sets
//   `np-…`/`np6-…` (`ipv6_addr . inet_proto . inet_service`) exist per family only when the model is
//   dual stack (an endpoint or a network set has an IPv6 address; otherwise they would be empty and
//   the IPv4 table is exactly what an IPv4-only compiler wrote). `icmp`/`notICMP` with protocol
//   ICMPv6 → `icmpv6 type/code` (evaluate.ts only models ICMP echo: it never matches `icmp` on an
//   ICMPv6 packet). `ipVersion` → `meta nfproto`. IPv6 elements are written as nft lists them
//   (canonicalV6Intervals; addresses RFC 5952).
//
// PolicyCompiler keeps results between compiles, keyed by content: policy selection per selector,
// policy chains per policy content, selector-set membership per selector (updated for the endpoints
// that changed), endpoint chains per (endpoint, policies, profiles). A compile after a small change
// costs little more than fingerprinting the model. compilePolicy() is a compile with a fresh one.
import { createHash } from 'node:crypto';
import { formatCIDR, formatIP, parseCIDR, parseIP } from '../../libcalico-go/lib/net/ip.js';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { type Endpoint, type Labels, type PolicyModel, NS_LABEL_PREFIX } from '../../libcalico-go/lib/policy/model.js';
import { policySelects, policyTypes } from '../../libcalico-go/lib/policy/evaluate.js';
import { type Candidate, selectorPartMatches } from '../../libcalico-go/lib/policy/selector-scope.js';
import { type TierInfo, comparePolicies, nonEmpty, policyId, protoNumber, tierName, tiersOf } from '../../libcalico-go/lib/policy/order.js';
import { type NftSetSpec, type NftTableSpec, canonicalV4Intervals, canonicalV6Intervals, renderTableScript, ruleCount } from './nft-table-spec.js';

export const FILTER_TABLE_FAMILY = 'inet';
export const FILTER_TABLE = 'tortie-filter';
export const MARK_ALLOW = 0x01000000;
export const MARK_PASS = 0x02000000;
/** Set of local endpoint interfaces; verdict maps interface → endpoint chain. */
export const WL_IFACES = 'wl-ifaces';
export const WL_EGRESS = 'wl-egress';
export const WL_INGRESS = 'wl-ingress';
const MARK_BITS = MARK_ALLOW | MARK_PASS;
const hex = (n: number) => `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
const CLEAR = `meta mark set meta mark & ${hex(~MARK_BITS)}`;
const IS_ALLOW = `meta mark & ${hex(MARK_ALLOW)} == ${hex(MARK_ALLOW)}`;
const ANY_MARK = `meta mark & ${hex(MARK_BITS)} != 0x00000000`;

export type EndpointToHostAction = 'Accept' | 'Drop' | 'Return';

export interface LocalEndpoint {
  /** "NS/POD", as in the model. */
  key: string;
  /** The host side veth, e.g. cali1234567890a. */
  interfaceName: string;
}

export interface CompileOptions {
  /** Felix's DefaultEndpointToHostAction for pod → host traffic after egress policy; default Accept. */
  endpointToHostAction?: EndpointToHostAction;
  /** Prefixes of workload interfaces (parseInterfacePrefixes); default ['cali']. */
  interfacePrefixes?: readonly string[];
}

export interface CompiledPolicy {
  /** The table as data (what the writer diffs). */
  table: NftTableSpec;
  /** The `nft -f` script that recreates the whole table (rendered on first use). */
  readonly script: string;
  /** Chain (base chains included) and set/map counts, for logs. */
  chains: number;
  sets: number;
  rules: number;
  /** Local endpoints named that the model does not have (skipped). */
  unknown: string[];
}

type Obj = Record<string, unknown>;
type Dir = 'ingress' | 'egress';

/** Protocols with ports (TCP, UDP, SCTP, UDPLite): where `th sport`/`th dport` mean something. */
const PORT_PROTO_NUMBERS: readonly number[] = [6, 17, 132, 136];
const PORT_PROTOS = `{ ${PORT_PROTO_NUMBERS.join(', ')} }`;


const hashMemo = new Map<string, string>();
function h(...parts: unknown[]): string {
  const key = JSON.stringify(parts);
  let v = hashMemo.get(key);
  if (v === undefined) {
    if (hashMemo.size > 200_000) hashMemo.clear();
    v = createHash('sha256').update(key).digest('hex').slice(0, 12);
    hashMemo.set(key, v);
  }
  return v;
}

function isV4(s: string): boolean {
  return !s.includes(':');
}

/** IPv4 CIDRs of a list (bare addresses become /32), host bits cleared, sorted, deduplicated. */
function v4Nets(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const out = new Set<string>();
  for (const x of list) {
    const s = String(x);
    if (!isV4(s)) continue;
    const c = parseCIDR(s.includes('/') ? s : `${s}/32`);
    if (c && c.version === 4) out.add(formatCIDR(c));
  }
  return [...out].sort();
}

/** IPv6 CIDRs of a list (bare addresses become /128), host bits cleared, RFC 5952, sorted, deduplicated. */
function v6Nets(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const out = new Set<string>();
  for (const x of list) {
    const s = String(x);
    if (isV4(s)) continue;
    const c = parseCIDR(s.includes('/') ? s : `${s}/128`);
    if (c && c.version === 6) out.add(formatCIDR(c));
  }
  return [...out].sort();
}

/** An IPv6 address as nft lists it (RFC 5952); null when it is not one. */
function v6Text(s: string): string | null {
  const ip = isV4(s) ? null : parseIP(s);
  return ip && ip.version === 6 ? formatIP(ip) : null;
}

/**
 * One OR alternative of a clause: its nft text and the family it needs (0: either). Alternatives of
 * different families are never AND-ed (such a rule could never match, and nft refuses `ip` with `ip6`).
 */
interface Alt {
  t: string;
  f: 0 | 4 | 6;
}
const both = (t: string): Alt => ({ t, f: 0 });
const fam4 = (t: string): Alt => ({ t, f: 4 });
const fam6 = (t: string): Alt => ({ t, f: 6 });






/** A named set a policy chain refers to; its elements depend on the model (except `nets`). */
type SetRequest =
  | { kind: 'sel'; family: 4 | 6; name: string; e: Obj; namespace: string | undefined; comment: string }
  | { kind: 'nets'; name: string; spec: NftSetSpec }
  | { kind: 'np'; family: 4 | 6; name: string; port: string };

const epCandidate = (ep: Endpoint): Candidate => ({ labels: ep.labels, namespace: ep.namespace, isEndpoint: true, sa: ep.serviceAccount });
const netSetCandidate = (ns: Resource): Candidate => ({
  labels: ns.metadata.labels ?? {},
  namespace: ns.kind === 'NetworkSet' ? (ns.metadata.namespace ?? 'default') : undefined,
  isEndpoint: false,
});

/** Renders one policy's (or profile's) rules for one direction, recording the named sets they use. */
class RuleRenderer {
  readonly sets: SetRequest[] = [];
  private readonly seen = new Set<string>();

  /** `dual`: some endpoint or network set has an IPv6 address (selector and named-port sets per family). */
  constructor(private readonly dual: boolean) {}

  private request(r: SetRequest): string {
    if (!this.seen.has(r.name)) {
      this.seen.add(r.name);
      this.sets.push(r);
    }
    return r.name;
  }

  private selectorSet(e: Obj, namespace: string | undefined, family: 4 | 6): string {
    const key = { selector: e.selector, notSelector: e.notSelector, namespaceSelector: e.namespaceSelector, serviceAccounts: e.serviceAccounts, namespace };
    const name = `${family === 4 ? 's' : 's6'}-${h('sel', key)}`;
    if (this.seen.has(name)) return name;
    const hasSel = typeof e.selector === 'string';
    const hasNotSel = typeof e.notSelector === 'string';
    const hasNs = typeof e.namespaceSelector === 'string';
    const parts = [hasSel ? `selector ${String(e.selector)}` : '', hasNotSel ? `notSelector ${String(e.notSelector)}` : '', hasNs ? `namespaceSelector ${String(e.namespaceSelector)}` : '', e.serviceAccounts ? 'serviceAccounts' : '', namespace ? `in ${namespace}` : ''];
    const only = { selector: e.selector, notSelector: e.notSelector, namespaceSelector: e.namespaceSelector, serviceAccounts: e.serviceAccounts };
    return this.request({ kind: 'sel', family, name, e: only, namespace, comment: parts.filter(Boolean).join(', ') });
  }

  /** The set of a list of nets of one family (named by its content: IPv4 `n-…`, IPv6 `n6-…`). */
  private netSet(nets: string[], family: 4 | 6): string {
    const name = family === 4 ? `n-${h('nets', nets)}` : `n6-${h('nets6', nets)}`;
    if (this.seen.has(name)) return name;
    const spec: NftSetSpec =
      family === 4
        ? { type: 'ipv4_addr', flags: ['interval'], elements: canonicalV4Intervals(nets), comment: 'nets' }
        : { type: 'ipv6_addr', flags: ['interval'], elements: canonicalV6Intervals(nets), comment: 'nets (IPv6)' };
    return this.request({ kind: 'nets', name, spec });
  }

  private namedPortSet(portName: string, family: 4 | 6): string {
    return this.request({ kind: 'np', family, name: `${family === 4 ? 'np' : 'np6'}-${h('np', portName)}`, port: portName });
  }

  /**
   * The match of one entity (source or destination) as clauses; each clause is a list of OR
   * alternatives (an empty list: never matches).
   */
  private entityClauses(e: Obj | undefined, side: 'saddr' | 'daddr', namespace: string | undefined, proto: number | undefined): Alt[][] {
    if (!e) return [];
    const l4 = proto !== undefined ? '' : `meta l4proto ${PORT_PROTOS} `;
    // A packet of a protocol without ports is outside every notPorts list (evaluate.ts). The rule's
    // protocol, when it has one, has decided that already: a port protocol never is such a packet
    // (no alternative: `meta l4proto 6 meta l4proto != { 6, … }` could never match), another one
    // always is (the notPorts clause holds: null).
    const portless: Alt[] | null =
      proto === undefined ? [both(`meta l4proto != ${PORT_PROTOS}`)] : PORT_PROTO_NUMBERS.includes(proto) ? [] : null;
    const port = side === 'saddr' ? 'sport' : 'dport';
    const out: Alt[][] = [];
    // nets / notNets (non-empty; Calico treats an empty list as absent): per family. As Felix, a
    // rule applies to a family only if each such list has an entry of that family (a family
    // without one gets no alternative: the rule never matches its packets).
    if (nonEmpty(e.nets)) {
      const n4 = v4Nets(e.nets);
      const n6 = v6Nets(e.nets);
      const alts: Alt[] = [];
      if (n4.length > 0) alts.push(fam4(`ip ${side} @${this.netSet(n4, 4)}`));
      if (n6.length > 0) alts.push(fam6(`ip6 ${side} @${this.netSet(n6, 6)}`));
      out.push(alts);
    }
    if (nonEmpty(e.notNets)) {
      const n4 = v4Nets(e.notNets);
      const n6 = v6Nets(e.notNets);
      const alts: Alt[] = [];
      if (n4.length > 0) alts.push(fam4(`ip ${side} != @${this.netSet(n4, 4)}`));
      if (n6.length > 0) alts.push(fam6(`ip6 ${side} != @${this.netSet(n6, 6)}`));
      out.push(alts);
    }
    const sa = e.serviceAccounts;
    if (typeof e.selector === 'string' || typeof e.notSelector === 'string' || typeof e.namespaceSelector === 'string' || sa) {
      const alts = [fam4(`ip ${side} @${this.selectorSet(e, namespace, 4)}`)];
      if (this.dual) alts.push(fam6(`ip6 ${side} @${this.selectorSet(e, namespace, 6)}`));
      out.push(alts);
    }
    const split = (list: unknown[]) => {
      const nums: string[] = [];
      const names: string[] = [];
      for (const p of list) {
        const s = String(p);
        if (typeof p === 'number' || /^\d+$/.test(s)) nums.push(String(Number(s)));
        else if (/^\d+:\d+$/.test(s)) nums.push(s.replace(':', '-'));
        else names.push(s);
      }
      return { nums, names };
    };
    if (nonEmpty(e.ports)) {
      const { nums, names } = split(e.ports);
      const alts: Alt[] = [];
      if (nums.length > 0) alts.push(both(`${l4}th ${port} { ${nums.join(', ')} }`));
      for (const n of names) {
        alts.push(fam4(`ip ${side} . meta l4proto . th ${port} @${this.namedPortSet(n, 4)}`));
        if (this.dual) alts.push(fam6(`ip6 ${side} . meta l4proto . th ${port} @${this.namedPortSet(n, 6)}`));
      }
      out.push(alts);
    }
    if (nonEmpty(e.notPorts) && portless !== null) {
      const { nums, names } = split(e.notPorts);
      if (nums.length > 0) out.push([...portless, both(`th ${port} != { ${nums.join(', ')} }`)]);
      for (const n of names) {
        const v4 = fam4(`ip ${side} . meta l4proto . th ${port} != @${this.namedPortSet(n, 4)}`);
        if (this.dual) out.push([...portless, v4, fam6(`ip6 ${side} . meta l4proto . th ${port} != @${this.namedPortSet(n, 6)}`)]);
        else out.push([...portless, fam6('meta nfproto != ipv4'), v4]);
      }
    }
    return out;
  }

  /** The rule's match as OR alternatives of AND-ed text (one nft rule each); [] never matches. */
  ruleMatches(r: Obj, namespace: string | undefined): string[] {
    const clauses: Alt[][] = [];
    if (r.ipVersion === 4) clauses.push([fam4('meta nfproto ipv4')]);
    else if (r.ipVersion === 6) clauses.push([fam6('meta nfproto ipv6')]);
    const proto = protoNumber(r.protocol);
    if (r.protocol !== undefined) clauses.push(proto === undefined ? [] : [both(`meta l4proto ${proto}`)]);
    const notProto = protoNumber(r.notProtocol);
    if (notProto !== undefined) clauses.push([both(`meta l4proto != ${notProto}`)]);
    // icmp/notICMP: ICMP type and code, or ICMPv6 ones when the rule's protocol is ICMPv6. When the
    // rule's protocol is that ICMP, its clause already matches `meta l4proto <n>`: not repeated, and
    // notICMP's "not ICMP at all" alternative dropped (it could never match). With another protocol
    // icmp never matches and notICMP always holds (evaluate.ts: an ICMP match needs an ICMP packet).
    const icmp = (o: unknown, negate: boolean): Alt[] | null => {
      const { type, code } = (o ?? {}) as { type?: number; code?: number };
      const [n, kw, a] = proto === 58 ? ([58, 'icmpv6', fam6] as const) : ([1, 'icmp', both] as const);
      if (proto !== undefined && proto !== n) return negate ? null : [];
      const l4 = proto === n ? [] : [`meta l4proto ${n}`];
      const typeCode = (op: string) => [type !== undefined ? `${kw} type ${op}${type}` : '', code !== undefined ? `${kw} code ${op}${code}` : ''];
      if (!negate) return [a([...l4, ...typeCode('')].filter(Boolean).join(' '))];
      const alts = proto === n ? [] : [both(`meta l4proto != ${n}`)];
      for (const m of typeCode('!= ')) if (m) alts.push(a([...l4, m].join(' ')));
      return alts;
    };
    for (const [o, negate] of [[r.icmp, false], [r.notICMP, true]] as const) {
      const c = o === undefined ? null : icmp(o, negate);
      if (c !== null) clauses.push(c);
    }
    clauses.push(...this.entityClauses(r.source as Obj | undefined, 'saddr', namespace, proto));
    clauses.push(...this.entityClauses(r.destination as Obj | undefined, 'daddr', namespace, proto));
    let alts: Alt[] = [both('')];
    for (const c of clauses) {
      const next: Alt[] = [];
      for (const a of alts) {
        for (const b of c) {
          if (a.f !== 0 && b.f !== 0 && a.f !== b.f) continue;
          next.push({ t: a.t === '' ? b.t : b.t === '' ? a.t : `${a.t} ${b.t}`, f: a.f || b.f });
        }
      }
      alts = next;
    }
    return alts.map((a) => a.t);
  }

  /** A policy's (or profile's) rules for one direction as chain lines. */
  rulesLines(p: Resource, dir: Dir, isProfile: boolean): string[] {
    const namespace = !isProfile && p.kind === 'NetworkPolicy' ? (p.metadata.namespace ?? 'default') : undefined;
    const rules = (((p.spec ?? {}) as Obj)[dir] ?? []) as Obj[];
    const id = isProfile ? `profile ${p.metadata.name}` : `${p.kind} ${policyId(p)}`;
    const lines: string[] = [`# ${id} ${dir}`];
    rules.forEach((r, i) => {
      const action = typeof r.action === 'string' ? r.action : 'Allow';
      const verdict =
        action === 'Allow'
          ? `meta mark set meta mark | ${hex(MARK_ALLOW)} return`
          : action === 'Deny'
            ? 'drop'
            : action === 'Pass'
              ? isProfile
                ? 'return'
                : `meta mark set meta mark | ${hex(MARK_PASS)} return`
              : `log prefix "tortie ${(isProfile ? p.metadata.name : policyId(p)).slice(0, 40)} ${dir[0]}${i}: "`;
      const alts = this.ruleMatches(r, namespace);
      if (alts.length === 0) lines.push(`# rule ${i} (${action}) can never match`);
      for (const m of alts) lines.push(m === '' ? verdict : `${m} ${verdict}`);
    });
    return lines;
  }
}

const CT = 'ct state established,related accept';
const BASE: ReadonlyMap<string, string> = new Map([
  ['forward', 'type filter hook forward priority filter; policy accept;'],
  ['input', 'type filter hook input priority filter; policy accept;'],
  ['output', 'type filter hook output priority filter; policy accept;'],
]);
/**
 * The base chains. Packets of an interface that has an endpoint prefix (Felix's InterfacePrefix,
 * `cali`) but no local endpoint are dropped, as Felix's dispatch chains drop an "Unknown
 * interface": a pod the agent has not programmed yet is closed, never open.
 */
const baseCache = new Map<string, Array<[string, string[]]>>();
function baseChains(prefixes: readonly string[], toHost: EndpointToHostAction, dual: boolean): Array<[string, string[]]> {
  // The same arrays for the same options: the writer's diff sees them unchanged at no cost.
  const key = JSON.stringify([prefixes, toHost, dual]);
  let chains = baseCache.get(key);
  if (!chains) baseCache.set(key, (chains = buildBaseChains(prefixes, toHost, dual)));
  return chains;
}

/**
 * ICMPv6 a pod sends its host before any policy (Felix's workload-to-host chain for IPv6: MLD,
 * router solicitation, neighbour solicitation and advertisement; conntrack does not track them):
 * without them an egress policy would stop the pod resolving its gateway and answering the host.
 */
const NDP_TYPES = '{ 130, 131, 132, 133, 135, 136 }';

function buildBaseChains(prefixes: readonly string[], toHost: EndpointToHostAction, dual: boolean): Array<[string, string[]]> {
  const unknown = (dir: 'iifname' | 'oifname') => prefixes.map((p) => `${dir} "${p}*" ${dir} != @${WL_IFACES} drop`);
  const last = {
    Accept: `iifname @${WL_IFACES} accept`,
    Drop: `iifname @${WL_IFACES} drop`,
    Return: '# DefaultEndpointToHostAction Return: the rest of the ruleset decides',
  }[toHost];
  return [
    ['forward', [CT, `iifname @${WL_IFACES} ct state invalid drop`, `oifname @${WL_IFACES} ct state invalid drop`, ...unknown('iifname'), ...unknown('oifname'), `iifname vmap @${WL_EGRESS}`, `oifname vmap @${WL_INGRESS}`]],
    ['input', [CT, `iifname @${WL_IFACES} ct state invalid drop`, ...unknown('iifname'), ...(dual ? [`iifname @${WL_IFACES} meta l4proto 58 icmpv6 type ${NDP_TYPES} accept`] : []), `iifname vmap @${WL_EGRESS}`, last]],
    ['output', [CT, `oifname @${WL_IFACES} ct state invalid drop`, '# host -> local workload: not policed (as Calico)', `oifname @${WL_IFACES} accept`]],
  ];
}

/** Felix's InterfacePrefix: comma-separated prefixes of workload interfaces. */
export function parseInterfacePrefixes(v: string | undefined): string[] {
  const out = (v ?? 'cali').split(',').map((x) => x.trim()).filter((x) => x !== '');
  for (const p of out) {
    if (!/^[A-Za-z0-9_.-]{1,14}$/.test(p)) throw new Error(`interface prefix ${JSON.stringify(p)} must be 1-14 letters, digits, '_', '.' or '-'`);
  }
  return out.length > 0 ? out : ['cali'];
}

const q = (s: string) => `"${s.replace(/[^A-Za-z0-9_.:-]/g, '')}"`;

interface RulesEntry {
  name: string;
  lines: string[];
  sets: SetRequest[];
  gen: number;
}
interface SelectionEntry {
  /** A policy with this selection key (any: they select alike). */
  rep: Resource;
  /** Ids of the local endpoints it selects. */
  members: Set<string>;
  gen: number;
}
interface SelSetEntry {
  req: Extract<SetRequest, { kind: 'sel' }>;
  /** Ids of the endpoints (any node) it matches. */
  members: Set<string>;
  /** Nets of the matching network sets (null: to compute). */
  netNets: string[] | null;
  /** null: to compute. */
  spec: NftSetSpec | null;
  gen: number;
}
interface SetEntry {
  spec: NftSetSpec;
  gen: number;
}
interface EndpointChainsEntry {
  sig: string;
  chains: Array<[string, string[]]>;
  gen: number;
}

/** The namespace labels a namespaceSelector sees (as namespaceLabels() in the model), for every namespace. */
function namespaceLabelMap(model: PolicyModel): Map<string, Labels> {
  const out = new Map<string, Labels>();
  for (const n of model.namespaces) if (!out.has(n.name)) out.set(n.name, n.labels);
  for (const ep of model.endpoints) {
    if (out.has(ep.namespace)) continue;
    const l: Labels = {};
    for (const [k, v] of Object.entries(ep.labels)) if (k.startsWith(NS_LABEL_PREFIX)) l[k.slice(NS_LABEL_PREFIX.length)] = v;
    out.set(ep.namespace, l);
  }
  return out;
}

/** What one compile keeps for the next, each entry stamped with the compile that last used it. */
interface Caches {
  selection: Map<string, SelectionEntry>;
  rulesChains: Map<string, RulesEntry>;
  selSets: Map<string, SelSetEntry>;
  npSets: Map<string, SetEntry>;
  epChains: Map<string, EndpointChainsEntry>;
}

/** The model's endpoints by id (the key; duplicates get a suffix), and which changed. */
interface EndpointIndex {
  eps: Map<string, Endpoint>;
  idOfKey: Map<string, string>;
  fps: Map<string, string>;
  dirty: Set<string>;
  /** An endpoint or a network set has an IPv6 address. */
  dual: boolean;
}

interface LocalIface {
  id: string;
  ep: Endpoint;
  ifname: string;
}

/** Per local endpoint and direction: tier index → the policies' rule chains, in order. */
type PolicyPlan = Map<string, { ingress: Map<number, string[]>; egress: Map<number, string[]> }>;

function indexEndpoints(model: PolicyModel, prevFps: ReadonlyMap<string, string>): EndpointIndex {
  const eps = new Map<string, Endpoint>();
  const idOfKey = new Map<string, string>();
  const fps = new Map<string, string>();
  const dirty = new Set<string>();
  let dup = 0;
  for (const ep of model.endpoints) {
    let id = ep.key;
    if (eps.has(id)) id = `${ep.key}\u0000${++dup}`;
    else idOfKey.set(ep.key, id);
    eps.set(id, ep);
    const fp = JSON.stringify(ep);
    fps.set(id, fp);
    if (prevFps.get(id) !== fp) dirty.add(id);
  }
  for (const id of prevFps.keys()) if (!fps.has(id)) dirty.add(id);
  // Dual stack when an endpoint or a network set has an IPv6 address: selector and named-port
  // matches then also have IPv6 sets (`s6-…`, `np6-…`); without one, IPv6 packets could match
  // nothing that those sets would hold, and IPv4-only tables stay as they were.
  let dual = false;
  for (const ep of eps.values()) if (ep.ips.some((ip) => !isV4(ip))) dual = true;
  if (!dual) for (const ns of model.networkSets) if (v6Nets(((ns.spec ?? {}) as Obj).nets).length > 0) dual = true;
  return { eps, idOfKey, fps, dirty, dual };
}

/** The local endpoints with a model endpoint, one per interface, sorted; the keys of the others. */
function localIfaces(local: readonly LocalEndpoint[], ix: EndpointIndex): { locals: LocalIface[]; unknown: string[] } {
  const unknown: string[] = [];
  const locals: LocalIface[] = [];
  const seenIf = new Set<string>();
  for (const l of [...local].sort((x, y) => (x.interfaceName < y.interfaceName ? -1 : x.interfaceName > y.interfaceName ? 1 : 0))) {
    const id = ix.idOfKey.get(l.key);
    if (id === undefined) {
      unknown.push(l.key);
      continue;
    }
    const ifname = q(l.interfaceName);
    if (seenIf.has(ifname)) continue;
    seenIf.add(ifname);
    locals.push({ id, ep: ix.eps.get(id)!, ifname });
  }
  return { locals, unknown };
}

/**
 * One compile: the chains and sets it emits, built from the caches (reused when their inputs did
 * not change) or afresh.
 */
class CompileRun {
  readonly chains = new Map<string, readonly string[]>();
  readonly sets = new Map<string, NftSetSpec>();

  constructor(
    private readonly c: Caches,
    private readonly model: PolicyModel,
    private readonly ix: EndpointIndex,
    private readonly nsOf: (ns: string) => Labels,
    private readonly gen: number,
  ) {}

  /** Emits a set a rule refers to. */
  useSet(r: SetRequest): void {
    if (this.sets.has(r.name)) return;
    if (r.kind === 'nets') this.sets.set(r.name, r.spec);
    else if (r.kind === 'np') this.sets.set(r.name, this.namedPortSet(r));
    else this.sets.set(r.name, this.selectorSet(r));
  }

  /** Addresses, protocol and port of every endpoint's named port `r.port`. */
  private namedPortSet(r: Extract<SetRequest, { kind: 'np' }>): NftSetSpec {
    let e = this.c.npSets.get(r.name);
    if (!e) {
      const elements = new Set<string>();
      for (const ep of this.ix.eps.values()) {
        for (const np of ep.namedPorts) {
          const proto = protoNumber(np.protocol);
          if (np.name !== r.port || proto === undefined) continue;
          if (r.family === 4) for (const ip of ep.ips.filter(isV4)) elements.add(`${ip} . ${proto} . ${np.port}`);
          else
            for (const ip of ep.ips) {
              const t = v6Text(ip);
              if (t !== null) elements.add(`${t} . ${proto} . ${np.port}`);
            }
        }
      }
      const spec: NftSetSpec =
        r.family === 4
          ? { type: 'ipv4_addr . inet_proto . inet_service', flags: [], elements: [...elements].sort(), comment: `named port ${r.port}` }
          : { type: 'ipv6_addr . inet_proto . inet_service', flags: [], elements: [...elements].sort(), comment: `named port ${r.port} (IPv6)` };
      e = { spec, gen: this.gen };
      this.c.npSets.set(r.name, e);
    }
    e.gen = this.gen;
    return e.spec;
  }

  /** The addresses of the endpoints and network sets a selector matches, as intervals. */
  private selectorSet(r: Extract<SetRequest, { kind: 'sel' }>): NftSetSpec {
    const { eps } = this.ix;
    let e = this.c.selSets.get(r.name);
    if (!e) {
      const members = new Set<string>();
      for (const [id, ep] of eps) if (selectorPartMatches(r.e, r.namespace, epCandidate(ep), this.nsOf)) members.add(id);
      e = { req: r, members, netNets: null, spec: null, gen: this.gen };
      this.c.selSets.set(r.name, e);
    }
    e.gen = this.gen;
    if (e.netNets === null) {
      const nets: string[] = [];
      const famNets = r.family === 4 ? v4Nets : v6Nets;
      for (const ns of this.model.networkSets) if (selectorPartMatches(r.e, r.namespace, netSetCandidate(ns), this.nsOf)) nets.push(...famNets(((ns.spec ?? {}) as Obj).nets));
      e.netNets = nets;
      e.spec = null;
    }
    if (e.spec === null) {
      const all: string[] = [...e.netNets];
      for (const id of e.members) for (const ip of eps.get(id)?.ips ?? []) if (isV4(ip) === (r.family === 4)) all.push(ip);
      e.spec =
        r.family === 4
          ? { type: 'ipv4_addr', flags: ['interval'], elements: canonicalV4Intervals(all), comment: r.comment }
          : { type: 'ipv6_addr', flags: ['interval'], elements: canonicalV6Intervals(all), comment: `${r.comment} (IPv6)` };
    }
    return e.spec;
  }

  /** The chain of a policy's (profile's) rules for one direction, cached by content; its name. */
  rulesChain(p: Resource, dir: Dir, isProfile: boolean): string {
    const spec = (p.spec ?? {}) as Obj;
    const dual = this.ix.dual;
    const key = JSON.stringify([p.kind, p.metadata.namespace ?? '', p.metadata.name, isProfile, dir, dual, spec[dir] ?? []]);
    let e = this.c.rulesChains.get(key);
    if (!e) {
      const name = `${isProfile ? 'p' : 'r'}${dir === 'ingress' ? 'i' : 'e'}-${h(p.kind, p.metadata.namespace ?? '', p.metadata.name)}`;
      const r = new RuleRenderer(dual);
      e = { name, lines: r.rulesLines(p, dir, isProfile), sets: r.sets, gen: this.gen };
      this.c.rulesChains.set(key, e);
    }
    e.gen = this.gen;
    // Two resources of the same identity: the first one wins (as a model lookup would).
    if (this.chains.has(e.name)) return e.name;
    this.chains.set(e.name, e.lines);
    for (const s of e.sets) this.useSet(s);
    return e.name;
  }

  /** Which policies select each local endpoint, per direction and tier, in order. */
  planPolicies(locals: readonly LocalIface[], tiers: readonly TierInfo[]): PolicyPlan {
    const { model, gen } = this;
    const tierIdx = new Map(tiers.map((t, i) => [t.name, i]));
    const byTier: Resource[][] = tiers.map(() => []);
    for (const p of model.policies) byTier[tierIdx.get(tierName(p))!]!.push(p);
    const plan: PolicyPlan = new Map();
    for (const l of locals) plan.set(l.id, { ingress: new Map(), egress: new Map() });
    byTier.forEach((pols, t) => {
      pols.sort(comparePolicies);
      for (const p of pols) {
        const spec = (p.spec ?? {}) as Obj;
        const hasText = (v: unknown) => typeof v === 'string' && v.trim() !== '';
        const selKey = JSON.stringify([
          p.kind === 'NetworkPolicy' ? (p.metadata.namespace ?? 'default') : null,
          p.kind !== 'NetworkPolicy' && hasText(spec.namespaceSelector) ? spec.namespaceSelector : null,
          spec.selector ?? null,
          hasText(spec.serviceAccountSelector),
        ]);
        let s = this.c.selection.get(selKey);
        if (!s) {
          s = { rep: p, members: new Set(), gen };
          for (const l of locals) if (policySelects(model, p, l.ep)) s.members.add(l.id);
          this.c.selection.set(selKey, s);
        }
        s.gen = gen;
        if (s.members.size === 0) continue;
        const types = policyTypes(p);
        for (const dir of ['egress', 'ingress'] as const) {
          if (!types.includes(dir === 'ingress' ? 'Ingress' : 'Egress')) continue;
          const name = this.rulesChain(p, dir, false);
          for (const id of s.members) {
            const m = plan.get(id)![dir];
            let list = m.get(t);
            if (!list) m.set(t, (list = []));
            list.push(name);
          }
        }
      }
    });
    return plan;
  }

  /** Each local endpoint's chains (tiers, then profiles) and the dispatch sets to them. */
  endpointChains(locals: readonly LocalIface[], plan: PolicyPlan, tiers: readonly TierInfo[]): void {
    const profiles = new Map<string, Resource>();
    for (const p of this.model.profiles) if (!profiles.has(p.metadata.name)) profiles.set(p.metadata.name, p);
    const done = new Set<string>();
    const egressMap: string[] = [];
    const ingressMap: string[] = [];
    const ifaces: string[] = [];
    for (const { id, ep, ifname } of locals) {
      ifaces.push(ifname);
      egressMap.push(`${ifname} : jump ee-${h(ep.key)}`);
      ingressMap.push(`${ifname} : jump ei-${h(ep.key)}`);
      if (done.has(id)) continue;
      done.add(id);
      for (const dir of ['egress', 'ingress'] as const) {
        const tierPlan = [...plan.get(id)![dir]].sort((a, b) => a[0] - b[0]).map(([t, names]) => [tiers[t]!.name, tiers[t]!.defaultAction, ...names]);
        const profPlan = this.profilePlan(ep, dir, profiles);
        const sig = JSON.stringify([ep.key, tierPlan, profPlan]);
        const ckey = `${id}\u0000${dir}`;
        let e = this.c.epChains.get(ckey);
        if (!e || e.sig !== sig) {
          e = { sig, chains: endpointChainLines(ep.key, dir, tierPlan, profPlan), gen: this.gen };
          this.c.epChains.set(ckey, e);
        }
        e.gen = this.gen;
        for (const [name, lines] of e.chains) this.chains.set(name, lines);
      }
    }
    this.sets.set(WL_IFACES, { type: 'ifname', flags: [], elements: ifaces.sort(), comment: 'local endpoint interfaces' });
    this.sets.set(WL_EGRESS, { type: 'ifname : verdict', flags: [], elements: egressMap.sort(), comment: 'from a local endpoint: its egress chain' });
    this.sets.set(WL_INGRESS, { type: 'ifname : verdict', flags: [], elements: ingressMap.sort(), comment: 'to a local endpoint: its ingress chain' });
  }

  /** The endpoint's profiles' rule chains in order; `absent kns.…` stops at a missing namespace profile. */
  private profilePlan(ep: Endpoint, dir: Dir, profiles: ReadonlyMap<string, Resource>): string[] {
    const out: string[] = [];
    for (const prof of ep.profiles) {
      const res = profiles.get(prof);
      if (!res) {
        if (prof.startsWith('kns.')) {
          out.push(`absent ${prof}`);
          break;
        }
        continue;
      }
      out.push(this.rulesChain(res, dir, true));
    }
    return out;
  }
}

/** An endpoint's chain for one direction and its tier chains. */
function endpointChainLines(key: string, dir: Dir, tierPlan: string[][], profPlan: string[]): Array<[string, string[]]> {
  const d = dir === 'ingress' ? 'i' : 'e';
  const out: Array<[string, string[]]> = [];
  const lines: string[] = [`# ${dir} of ${key}`, CLEAR];
  for (const [tier, action, ...pols] of tierPlan) {
    const tierChain = `t${d}-${h(key, tier)}`;
    const tl: string[] = [`# tier ${tier}, ${dir} of ${key}`];
    for (const p of pols) tl.push(`jump ${p}`, `${ANY_MARK} return`);
    tl.push(action === 'Pass' ? '# end of tier: Pass' : 'drop');
    out.push([tierChain, tl]);
    lines.push(`jump ${tierChain}`, `${IS_ALLOW} ${CLEAR} return`, CLEAR);
  }
  let decided = false;
  for (const p of profPlan) {
    if (p.startsWith('absent ')) {
      lines.push(`# profile ${p.slice(7)} is absent: allow`, 'return');
      decided = true;
      break;
    }
    lines.push(`jump ${p}`, `${IS_ALLOW} ${CLEAR} return`);
  }
  if (!decided) lines.push('# no profile allowed', 'drop');
  out.push([`e${d}-${h(key)}`, lines]);
  return out;
}

/** Compiles models into tables, reusing what did not change since the previous compile. */
export class PolicyCompiler {
  private gen = 0;
  private epFp = new Map<string, string>();
  private prevLocal = new Set<string>();
  private nsFp = '';
  private netFp = '';
  private readonly c: Caches = { selection: new Map(), rulesChains: new Map(), selSets: new Map(), npSets: new Map(), epChains: new Map() };

  /** Forgets every cached result (the next compile starts from nothing). */
  clear(): void {
    this.epFp = new Map();
    this.prevLocal = new Set();
    this.nsFp = '';
    this.netFp = '';
    for (const m of Object.values(this.c)) m.clear();
  }

  compile(model: PolicyModel, local: readonly LocalEndpoint[], opts: CompileOptions = {}): CompiledPolicy {
    const gen = ++this.gen;
    const ix = indexEndpoints(model, this.epFp);
    this.epFp = ix.fps;

    // Namespace labels and network sets: a change recomputes what depends on them.
    const nsLabels = namespaceLabelMap(model);
    const nsOf = (ns: string) => nsLabels.get(ns) ?? {};
    const nsFp = JSON.stringify([...nsLabels]);
    if (nsFp !== this.nsFp) {
      this.c.selection.clear();
      this.c.selSets.clear();
      this.nsFp = nsFp;
    }
    const netFp = JSON.stringify(model.networkSets);
    const netsChanged = netFp !== this.netFp;
    this.netFp = netFp;

    const { locals, unknown } = localIfaces(local, ix);
    this.refreshCaches(model, ix, locals, nsOf, netsChanged);

    const run = new CompileRun(this.c, model, ix, nsOf, gen);
    const tiers = tiersOf(model);
    run.endpointChains(locals, run.planPolicies(locals, tiers), tiers);
    for (const [name, lines] of baseChains(opts.interfacePrefixes ?? ['cali'], opts.endpointToHostAction ?? 'Accept', ix.dual)) run.chains.set(name, lines);

    // Forget what this compile did not use.
    for (const m of Object.values(this.c) as Array<Map<string, { gen: number }>>) {
      for (const [k, v] of m) if (v.gen !== gen) m.delete(k);
    }

    const table: NftTableSpec = { family: FILTER_TABLE_FAMILY, name: FILTER_TABLE, sets: run.sets, chains: run.chains, base: BASE };
    let script: string | undefined;
    return {
      table,
      get script() {
        return (script ??= renderTableScript(table));
      },
      chains: run.chains.size,
      sets: run.sets.size,
      rules: ruleCount(table),
      unknown,
    };
  }

  /** Brings cached selections and selector sets up to date with the endpoints that changed. */
  private refreshCaches(model: PolicyModel, ix: EndpointIndex, locals: readonly LocalIface[], nsOf: (ns: string) => Labels, netsChanged: boolean): void {
    const { eps, dirty } = ix;
    const localIds = new Set(locals.map((l) => l.id));
    const localDirty = new Set<string>();
    for (const id of dirty) if (localIds.has(id) || this.prevLocal.has(id)) localDirty.add(id);
    for (const id of localIds) if (!this.prevLocal.has(id)) localDirty.add(id);
    for (const id of this.prevLocal) if (!localIds.has(id)) localDirty.add(id);
    this.prevLocal = localIds;

    if (localDirty.size > 0) {
      for (const s of this.c.selection.values()) {
        for (const id of localDirty) {
          const ep = localIds.has(id) ? eps.get(id) : undefined;
          if (ep && policySelects(model, s.rep, ep)) s.members.add(id);
          else s.members.delete(id);
        }
      }
    }
    for (const s of this.c.selSets.values()) {
      for (const id of dirty) {
        const ep = eps.get(id);
        const was = s.members.has(id);
        const is = ep !== undefined && selectorPartMatches(s.req.e, s.req.namespace, epCandidate(ep), nsOf);
        if (is) s.members.add(id);
        else s.members.delete(id);
        if (was || is) s.spec = null;
      }
      if (netsChanged) {
        s.netNets = null;
        s.spec = null;
      }
    }
    if (dirty.size > 0) this.c.npSets.clear();
  }
}

/** The table (and its `nft -f` script) for this model and these local endpoints, from scratch. */
export function compilePolicy(model: PolicyModel, local: readonly LocalEndpoint[], opts: CompileOptions = {}): CompiledPolicy {
  return new PolicyCompiler().compile(model, local, opts);
}
