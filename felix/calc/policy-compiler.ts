// Calico policy → one nftables table (`inet tortie-filter`), as a pure function of a PolicyModel and
// the endpoints local to this node. The compiled rules give the verdicts of
// libcalico-go/lib/policy/evaluate.ts (the reference semantics):
//
// * Base chains: `forward` (pod↔pod and pod↔off-node), `output` (host → pod, ingress policy of the
//   pod), `input` (pod → host: egress policy, then DefaultEndpointToHostAction). Each starts with
//   `ct state established,related accept` and drops `ct state invalid` on endpoint interfaces.
// * Per endpoint and direction an endpoint chain (`ei-…` ingress, matched on `oifname`, `ee-…` egress,
//   matched on `iifname`) jumps to one tier chain per tier that has a policy selecting the endpoint
//   (`ti-…`/`te-…`, in tier order), then to its profiles (`pi-…`/`pe-…`), then drops.
// * Policy chains (`ri-…`/`re-…`) are shared by endpoints: one nft rule per (Calico rule × OR branch).
//   Allow sets MARK_ALLOW and returns, Pass sets MARK_PASS and returns, Deny drops, Log logs. A tier
//   chain returns as soon as a mark is set; the end of a tier drops (defaultAction Deny) or returns
//   (Pass). The endpoint chain returns (allows) when MARK_ALLOW is set, else clears MARK_PASS and goes
//   on. Marks are cleared on entry and on the way out.
// * Named sets: `s-…` addresses matching a rule's selector part (endpoint addresses + matching network
//   sets' nets), `n-…` a rule's nets/notNets, `np-…` (address . protocol . port) for a named port.
// IPv4 only: rules that need an address or set match never match IPv6 packets.
import { createHash } from 'node:crypto';
import { type Selector, parseSelector } from '../../libcalico-go/lib/selector/index.js';
import { formatCIDR, parseCIDR } from '../../libcalico-go/lib/net/ip.js';
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import { type Endpoint, type Labels, type PolicyModel, namespaceLabels } from '../../libcalico-go/lib/policy/model.js';
import { policySelects, policyTypes } from '../../libcalico-go/lib/policy/evaluate.js';

export const FILTER_TABLE_FAMILY = 'inet';
export const FILTER_TABLE = 'tortie-filter';
export const MARK_ALLOW = 0x01000000;
export const MARK_PASS = 0x02000000;
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
}

export interface CompiledPolicy {
  script: string;
  /** Chain and set counts, for logs. */
  chains: number;
  sets: number;
  rules: number;
  /** Local endpoints named that the model does not have (skipped). */
  unknown: string[];
}

type Obj = Record<string, unknown>;
type Dir = 'ingress' | 'egress';

const PROTO_NUM: Record<string, number> = { TCP: 6, UDP: 17, ICMP: 1, SCTP: 132, ICMPV6: 58, UDPLITE: 136 };
const PORT_PROTOS = '{ 6, 17, 132, 136 }';
const DEFAULT_TIER_ORDER = 1000000;

function protoNumber(p: unknown): number | undefined {
  if (typeof p === 'number') return p;
  if (typeof p === 'string') return /^\d+$/.test(p) ? Number(p) : PROTO_NUM[p.toUpperCase()];
  return undefined;
}

function h(...parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 12);
}

const selCache = new Map<string, Selector>();
function sel(text: string | undefined): Selector {
  const t = text ?? '';
  let s = selCache.get(t);
  if (!s) {
    s = parseSelector(t);
    selCache.set(t, s);
  }
  return s;
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

interface TierInfo {
  name: string;
  order?: number;
  defaultAction: 'Deny' | 'Pass';
}

function tierName(p: Resource): string {
  const t = (p.spec as Obj | undefined)?.tier;
  return typeof t === 'string' && t !== '' ? t : 'default';
}

function tiersOf(model: PolicyModel): TierInfo[] {
  const out = new Map<string, TierInfo>();
  for (const t of model.tiers) {
    const spec = (t.spec ?? {}) as Obj;
    out.set(t.metadata.name, {
      name: t.metadata.name,
      order: typeof spec.order === 'number' ? spec.order : t.metadata.name === 'default' ? DEFAULT_TIER_ORDER : undefined,
      defaultAction: spec.defaultAction === 'Pass' ? 'Pass' : 'Deny',
    });
  }
  if (!out.has('default')) out.set('default', { name: 'default', order: DEFAULT_TIER_ORDER, defaultAction: 'Deny' });
  for (const p of model.policies) if (!out.has(tierName(p))) out.set(tierName(p), { name: tierName(p), defaultAction: 'Deny' });
  return [...out.values()].sort((a, b) => (a.order ?? Infinity) - (b.order ?? Infinity) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function comparePolicies(a: Resource, b: Resource): number {
  const oa = (a.spec as Obj | undefined)?.order;
  const ob = (b.spec as Obj | undefined)?.order;
  const na = typeof oa === 'number' ? oa : Infinity;
  const nb = typeof ob === 'number' ? ob : Infinity;
  if (na !== nb) return na - nb;
  const ka = `${a.metadata.name}/${a.metadata.namespace ?? ''}/${a.kind}`;
  const kb = `${b.metadata.name}/${b.metadata.namespace ?? ''}/${b.kind}`;
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

const policyId = (p: Resource) => (p.kind === 'NetworkPolicy' ? `${p.metadata.namespace ?? 'default'}/${p.metadata.name}` : p.metadata.name);

interface NamedSet {
  name: string;
  type: string;
  interval: boolean;
  elements: string[];
  comment: string;
}

/** The compiler's state for one script. */
class Builder {
  readonly sets = new Map<string, NamedSet>();
  readonly chains = new Map<string, string[]>();
  rules = 0;
  constructor(readonly model: PolicyModel) {}

  /** Candidates a selector part may match: every endpoint, every network set. */
  private selectorSet(e: Obj, namespace: string | undefined): string {
    const key = { selector: e.selector, notSelector: e.notSelector, namespaceSelector: e.namespaceSelector, serviceAccounts: e.serviceAccounts, namespace };
    const name = `s-${h('sel', key)}`;
    if (this.sets.has(name)) return name;
    const hasSel = typeof e.selector === 'string';
    const hasNotSel = typeof e.notSelector === 'string';
    const hasNs = typeof e.namespaceSelector === 'string';
    const sa = e.serviceAccounts as { names?: string[]; selector?: string } | undefined;
    const matches = (c: { labels: Labels; namespace?: string; isEndpoint: boolean; sa?: string }): boolean => {
      if (hasNs) {
        const nsSel = sel(e.namespaceSelector as string);
        if (c.namespace === undefined) {
          if (!nsSel.usesGlobal()) return false;
        } else if (nsSel.usesGlobal() || !nsSel.evaluate(namespaceLabels(this.model, c.namespace))) return false;
      } else if (namespace !== undefined && (hasSel || sa)) {
        if (c.namespace !== namespace) return false;
      } else if (!hasSel && !sa && c.namespace === undefined && namespace !== undefined) {
        return false;
      }
      if (hasSel && !sel(e.selector as string).evaluate(c.labels)) return false;
      if (hasNotSel && sel(e.notSelector as string).evaluate(c.labels)) return false;
      if (sa) {
        if (!c.isEndpoint || c.sa === undefined) return false;
        if (sa.names && sa.names.length > 0 && !sa.names.includes(c.sa)) return false;
        if (sa.selector !== undefined && !sel(sa.selector).evaluate({})) return false;
      }
      return true;
    };
    const elements: string[] = [];
    for (const ep of this.model.endpoints) {
      if (matches({ labels: ep.labels, namespace: ep.namespace, isEndpoint: true, sa: ep.serviceAccount })) elements.push(...ep.ips.filter(isV4));
    }
    for (const ns of this.model.networkSets) {
      const c = { labels: ns.metadata.labels ?? {}, namespace: ns.kind === 'NetworkSet' ? (ns.metadata.namespace ?? 'default') : undefined, isEndpoint: false };
      if (matches(c)) elements.push(...v4Nets(((ns.spec ?? {}) as Obj).nets));
    }
    const parts = [hasSel ? `selector ${String(e.selector)}` : '', hasNotSel ? `notSelector ${String(e.notSelector)}` : '', hasNs ? `namespaceSelector ${String(e.namespaceSelector)}` : '', sa ? 'serviceAccounts' : '', namespace ? `in ${namespace}` : ''];
    this.sets.set(name, { name, type: 'ipv4_addr', interval: true, elements: v4Nets(elements), comment: parts.filter(Boolean).join(', ') });
    return name;
  }

  private netSet(list: unknown): string {
    const elements = v4Nets(list);
    const name = `n-${h('nets', elements)}`;
    if (!this.sets.has(name)) this.sets.set(name, { name, type: 'ipv4_addr', interval: true, elements, comment: 'nets' });
    return name;
  }

  private namedPortSet(portName: string): string {
    const name = `np-${h('np', portName)}`;
    if (this.sets.has(name)) return name;
    const elements = new Set<string>();
    for (const ep of this.model.endpoints) {
      for (const np of ep.namedPorts) {
        const proto = protoNumber(np.protocol);
        if (np.name !== portName || proto === undefined) continue;
        for (const ip of ep.ips.filter(isV4)) elements.add(`${ip} . ${proto} . ${np.port}`);
      }
    }
    this.sets.set(name, { name, type: 'ipv4_addr . inet_proto . inet_service', interval: false, elements: [...elements].sort(), comment: `named port ${portName}` });
    return name;
  }

  /**
   * The match of one entity (source or destination) as clauses; each clause is a list of OR
   * alternatives (an empty list: never matches).
   */
  private entityClauses(e: Obj | undefined, side: 'saddr' | 'daddr', namespace: string | undefined, hasProto: boolean): string[][] {
    if (!e) return [];
    const l4 = hasProto ? '' : `meta l4proto ${PORT_PROTOS} `;
    const port = side === 'saddr' ? 'sport' : 'dport';
    const out: string[][] = [];
    if (e.nets !== undefined) out.push([`ip ${side} @${this.netSet(e.nets)}`]);
    if (e.notNets !== undefined) out.push([`meta nfproto != ipv4`, `ip ${side} != @${this.netSet(e.notNets)}`]);
    const sa = e.serviceAccounts;
    if (typeof e.selector === 'string' || typeof e.notSelector === 'string' || typeof e.namespaceSelector === 'string' || sa) {
      out.push([`ip ${side} @${this.selectorSet(e, namespace)}`]);
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
    if (Array.isArray(e.ports)) {
      const { nums, names } = split(e.ports);
      const alts: string[] = [];
      if (nums.length > 0) alts.push(`${l4}th ${port} { ${nums.join(', ')} }`);
      for (const n of names) alts.push(`ip ${side} . meta l4proto . th ${port} @${this.namedPortSet(n)}`);
      out.push(alts);
    }
    if (Array.isArray(e.notPorts)) {
      const { nums, names } = split(e.notPorts);
      if (nums.length > 0) out.push([`meta l4proto != ${PORT_PROTOS}`, `th ${port} != { ${nums.join(', ')} }`]);
      for (const n of names) out.push([`meta l4proto != ${PORT_PROTOS}`, `meta nfproto != ipv4`, `ip ${side} . meta l4proto . th ${port} != @${this.namedPortSet(n)}`]);
    }
    return out;
  }

  /** The rule's match as OR alternatives of AND-ed text (one nft rule each); [] never matches. */
  ruleMatches(r: Obj, namespace: string | undefined): string[] {
    const clauses: string[][] = [];
    if (r.ipVersion === 4) clauses.push(['meta nfproto ipv4']);
    else if (r.ipVersion === 6) clauses.push(['meta nfproto ipv6']);
    const proto = protoNumber(r.protocol);
    if (r.protocol !== undefined) clauses.push(proto === undefined ? [] : [`meta l4proto ${proto}`]);
    const notProto = protoNumber(r.notProtocol);
    if (notProto !== undefined) clauses.push([`meta l4proto != ${notProto}`]);
    const icmp = (o: unknown, negate: boolean): string[] => {
      const { type, code } = (o ?? {}) as { type?: number; code?: number };
      const pos = ['meta l4proto 1', type !== undefined ? `icmp type ${type}` : '', code !== undefined ? `icmp code ${code}` : ''].filter(Boolean);
      if (!negate) return [pos.join(' ')];
      const alts = ['meta l4proto != 1'];
      if (type !== undefined) alts.push(`meta l4proto 1 icmp type != ${type}`);
      if (code !== undefined) alts.push(`meta l4proto 1 icmp code != ${code}`);
      return alts;
    };
    if (r.icmp !== undefined) clauses.push(icmp(r.icmp, false));
    if (r.notICMP !== undefined) clauses.push(icmp(r.notICMP, true));
    const hasProto = proto !== undefined;
    clauses.push(...this.entityClauses(r.source as Obj | undefined, 'saddr', namespace, hasProto));
    clauses.push(...this.entityClauses(r.destination as Obj | undefined, 'daddr', namespace, hasProto));
    let alts: string[] = [''];
    for (const c of clauses) {
      const next: string[] = [];
      for (const a of alts) for (const b of c) next.push(a === '' ? b : `${a} ${b}`);
      alts = next;
    }
    return alts;
  }

  addChain(name: string, lines: string[]): void {
    this.chains.set(name, lines);
    this.rules += lines.filter((l) => !l.startsWith('#')).length;
  }

  /** A policy's (or profile's) rules for one direction as a chain; returns its name. */
  rulesChain(p: Resource, dir: Dir, isProfile: boolean): string {
    const name = `${isProfile ? 'p' : 'r'}${dir === 'ingress' ? 'i' : 'e'}-${h(p.kind, p.metadata.namespace ?? '', p.metadata.name)}`;
    if (this.chains.has(name)) return name;
    const namespace = !isProfile && p.kind === 'NetworkPolicy' ? (p.metadata.namespace ?? 'default') : undefined;
    const rules = ((((p.spec ?? {}) as Obj)[dir] ?? []) as Obj[]);
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
    this.addChain(name, lines);
    return name;
  }
}

function renderSet(s: NamedSet): string[] {
  const out = [`\tset ${s.name} {`, `\t\ttype ${s.type}`];
  if (s.interval) out.push('\t\tflags interval', '\t\tauto-merge');
  if (s.elements.length > 0) out.push(`\t\telements = { ${s.elements.join(', ')} }`);
  out.push('\t}');
  return [`\t# ${s.comment}`, ...out];
}

const q = (s: string) => `"${s.replace(/[^A-Za-z0-9_.:-]/g, '')}"`;

/** The `nft -f` script that (re)creates `inet tortie-filter` for this model and these local endpoints. */
export function compilePolicy(model: PolicyModel, local: readonly LocalEndpoint[], opts: CompileOptions = {}): CompiledPolicy {
  const b = new Builder(model);
  const tiers = tiersOf(model);
  const unknown: string[] = [];
  const eps: Array<{ ep: Endpoint; ifname: string }> = [];
  for (const l of [...local].sort((x, y) => (x.interfaceName < y.interfaceName ? -1 : x.interfaceName > y.interfaceName ? 1 : 0))) {
    const ep = model.endpoints.find((e) => e.key === l.key);
    if (!ep) unknown.push(l.key);
    else eps.push({ ep, ifname: l.interfaceName });
  }

  const endpointChain = (ep: Endpoint, dir: Dir): string => {
    const d = dir === 'ingress' ? 'i' : 'e';
    const type = dir === 'ingress' ? 'Ingress' : 'Egress';
    const name = `e${d}-${h(ep.key)}`;
    const lines: string[] = [`# ${dir} of ${ep.key}`, CLEAR];
    let t = 0;
    for (const tier of tiers) {
      const pols = model.policies.filter((p) => tierName(p) === tier.name && policyTypes(p).includes(type) && policySelects(model, p, ep)).sort(comparePolicies);
      if (pols.length === 0) continue;
      const tierChain = `t${d}-${h(ep.key)}-${t++}`;
      const tl: string[] = [`# tier ${tier.name}, ${dir} of ${ep.key}`];
      for (const p of pols) tl.push(`jump ${b.rulesChain(p, dir, false)}`, `${ANY_MARK} return`);
      tl.push(tier.defaultAction === 'Pass' ? '# end of tier: Pass' : 'drop');
      b.addChain(tierChain, tl);
      lines.push(`jump ${tierChain}`, `${IS_ALLOW} ${CLEAR} return`, CLEAR);
    }
    let decided = false;
    for (const prof of ep.profiles) {
      const res = model.profiles.find((p) => p.metadata.name === prof);
      if (!res) {
        if (prof.startsWith('kns.')) {
          lines.push(`# profile ${prof} is absent: allow`, 'return');
          decided = true;
          break;
        }
        continue;
      }
      lines.push(`jump ${b.rulesChain(res, dir, true)}`, `${IS_ALLOW} ${CLEAR} return`);
    }
    if (!decided) lines.push('# no profile allowed', 'drop');
    b.addChain(name, lines);
    return name;
  };

  const ifs = eps.map((e) => q(e.ifname));
  const ifSet = ifs.length > 0 ? `{ ${ifs.join(', ')} }` : null;
  const forward: string[] = ['type filter hook forward priority filter; policy accept;', 'ct state established,related accept'];
  const input: string[] = ['type filter hook input priority filter; policy accept;', 'ct state established,related accept'];
  const output: string[] = ['type filter hook output priority filter; policy accept;', 'ct state established,related accept'];
  if (ifSet) {
    forward.push(`iifname ${ifSet} ct state invalid drop`, `oifname ${ifSet} ct state invalid drop`);
    input.push(`iifname ${ifSet} ct state invalid drop`);
    output.push(`oifname ${ifSet} ct state invalid drop`);
  }
  const toHost = opts.endpointToHostAction ?? 'Accept';
  for (const { ep, ifname } of eps) {
    const eg = endpointChain(ep, 'egress');
    const ing = endpointChain(ep, 'ingress');
    forward.push(`iifname ${q(ifname)} jump ${eg}`);
    input.push(`iifname ${q(ifname)} jump ${eg}`);
    if (toHost === 'Drop') input.push(`iifname ${q(ifname)} drop`);
    else if (toHost === 'Accept') input.push(`iifname ${q(ifname)} accept`);
    output.push(`oifname ${q(ifname)} jump ${ing}`);
  }
  for (const { ep, ifname } of eps) forward.push(`oifname ${q(ifname)} jump e${'i'}-${h(ep.key)}`);

  const ref = `${FILTER_TABLE_FAMILY} ${FILTER_TABLE}`;
  const out: string[] = [`table ${ref} {}`, `delete table ${ref}`, `table ${ref} {`];
  for (const s of [...b.sets.values()].sort((x, y) => (x.name < y.name ? -1 : 1))) out.push(...renderSet(s));
  const chain = (name: string, lines: string[]) => {
    const body = lines.filter((l) => !l.startsWith('#') || true).map((l) => (l.startsWith('#') ? `\t\t${l}` : `\t\t${l}`));
    out.push(`\tchain ${name} {`, ...body, '\t}');
  };
  chain('forward', forward);
  chain('input', input);
  chain('output', output);
  for (const name of [...b.chains.keys()].sort()) chain(name, b.chains.get(name)!);
  out.push('}', '');
  return { script: out.join('\n'), chains: b.chains.size + 3, sets: b.sets.size, rules: b.rules + forward.length + input.length + output.length - 6, unknown };
}
