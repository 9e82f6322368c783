// Policy rules (NetworkPolicy, GlobalNetworkPolicy, Profile): action, protocol, ICMP, and the
// source/destination match criteria.
//
// Canonical forms: protocol names keep Calico's spelling (TCP, UDP, ICMP, ICMPv6, SCTP, UDPLite),
// a protocol given as a digit string becomes a number; a single port becomes a number, a range
// "a:b" stays a string (a range with a == b becomes the number a); nets are written as CIDRs
// (`10.0.0.1` → `10.0.0.1/32`). Empty source/destination objects are omitted.

import { type CIDR, formatCIDR } from '../../../net/ip.js';
import {
  checkPort,
  checkProtocol,
  checkSubdomain,
  parseCIDRField,
  protocolHasPorts,
  protocolNumber,
  readSelector,
  qualifiedNameProblem,
} from './common.js';
import {
  type Ctx,
  type Obj,
  checkKnown,
  join,
  put,
  readEnum,
  readInt,
  readObj,
  readObjList,
  readString,
  readStringList,
  readStringMap,
} from './context.js';

export const ACTIONS = ['Allow', 'Deny', 'Log', 'Pass'] as const;
const RULE_FIELDS = ['action', 'ipVersion', 'protocol', 'icmp', 'notProtocol', 'notICMP', 'source', 'destination', 'http', 'metadata'];
const ENTITY_FIELDS = ['nets', 'selector', 'namespaceSelector', 'services', 'ports', 'notNets', 'notSelector', 'notPorts', 'serviceAccounts'];

export type Direction = 'ingress' | 'egress';

export interface RuleContext {
  direction: Direction;
  /** GlobalNetworkPolicy rules must name the namespace of a Service match. */
  global: boolean;
}

interface Entity {
  out: Obj;
  /** True when any numeric port or range is present (in ports or notPorts). */
  numericPorts: Array<{ path: string; value: number | string }>;
  anyPorts: Array<{ path: string; value: number | string }>;
  nets: Array<{ path: string; cidr: CIDR; text: string }>;
  hasServices: boolean;
}

function readNets(ctx: Ctx, o: Obj, key: string, path: string, e: Entity): string[] | undefined {
  return readStringList(ctx, o, key, path, (s, p) => {
    const c = parseCIDRField(ctx, s, p, { strict: true, allowBareIP: true });
    if (!c) return undefined;
    if (key === 'notNets' && c.prefix === 0) {
      ctx.invalid(p, s, 'is a catch-all CIDR: in notNets it matches no traffic at all');
      return undefined;
    }
    e.nets.push({ path: p, cidr: c, text: s });
    return formatCIDR(c);
  });
}

function readPorts(ctx: Ctx, o: Obj, key: string, path: string, e: Entity): Array<number | string> | undefined {
  const list = o[key];
  if (list === undefined || list === null) return undefined;
  const p = join(path, key);
  if (!Array.isArray(list)) {
    ctx.invalid(p, list, 'must be a list of ports');
    return undefined;
  }
  const out: Array<number | string> = [];
  list.forEach((v, i) => {
    const pv = checkPort(ctx, v, join(p, i));
    if (!pv) return;
    out.push(pv.value);
    e.anyPorts.push({ path: join(p, i), value: pv.value });
    if (!pv.named) e.numericPorts.push({ path: join(p, i), value: pv.value });
  });
  return out;
}

function entityRule(ctx: Ctx, o: Obj, p: string, side: 'source' | 'destination', rc: RuleContext): Entity {
  checkKnown(ctx, o, p, ENTITY_FIELDS, `a rule ${side}`);
  const e: Entity = { out: {}, numericPorts: [], anyPorts: [], nets: [], hasServices: false };
  const out = e.out;
  put(out, 'nets', readNets(ctx, o, 'nets', p, e));
  put(out, 'notNets', readNets(ctx, o, 'notNets', p, e));
  put(out, 'selector', readSelector(ctx, o, 'selector', p, { what: 'a rule selector' }));
  put(out, 'notSelector', readSelector(ctx, o, 'notSelector', p, { what: 'a rule notSelector' }));
  put(out, 'namespaceSelector', readSelector(ctx, o, 'namespaceSelector', p, { allowGlobal: true }));
  put(out, 'ports', readPorts(ctx, o, 'ports', p, e));
  put(out, 'notPorts', readPorts(ctx, o, 'notPorts', p, e));

  const sa = readObj(ctx, o, 'serviceAccounts', p);
  if (sa) {
    const sp = join(p, 'serviceAccounts');
    checkKnown(ctx, sa, sp, ['names', 'selector'], 'serviceAccounts');
    const so: Obj = {};
    put(so, 'names', readStringList(ctx, sa, 'names', sp));
    put(so, 'selector', readSelector(ctx, sa, 'selector', sp));
    out.serviceAccounts = so;
  }

  const svc = readObj(ctx, o, 'services', p);
  if (svc) {
    e.hasServices = true;
    const sp = join(p, 'services');
    checkKnown(ctx, svc, sp, ['name', 'namespace'], 'services');
    const so: Obj = {};
    const name = readString(ctx, svc, 'name', sp, { required: true, hint: 'services must name a Service' });
    if (name) put(so, 'name', checkSubdomain(ctx, name, join(sp, 'name')));
    const ns = readString(ctx, svc, 'namespace', sp);
    if (ns) put(so, 'namespace', checkSubdomain(ctx, ns, join(sp, 'namespace')));
    else if (rc.global) ctx.missing(join(sp, 'namespace'), 'a GlobalNetworkPolicy must say which namespace the Service is in');
    out.services = so;
    for (const k of ['selector', 'notSelector', 'namespaceSelector', 'nets', 'notNets', 'serviceAccounts']) {
      const v = o[k];
      if (v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0)) {
        ctx.invalid(join(p, k), v, 'cannot be combined with services in the same rule');
      }
    }
    if (side === 'destination') {
      for (const k of ['ports', 'notPorts']) {
        const v = o[k];
        if (Array.isArray(v) && v.length > 0) ctx.invalid(join(p, k), v, 'cannot be combined with destination services');
      }
    }
    const wrong = (rc.direction === 'egress' && side === 'source') || (rc.direction === 'ingress' && side === 'destination');
    if (wrong) ctx.invalid(sp, svc, `is not allowed in an ${rc.direction} rule ${side} (Services match the ${rc.direction === 'egress' ? 'destination' : 'source'} only)`);
  }
  return e;
}

function icmpFields(ctx: Ctx, o: Obj, key: string, p: string): Obj | undefined {
  const icmp = readObj(ctx, o, key, p);
  if (!icmp) return undefined;
  const ip = join(p, key);
  checkKnown(ctx, icmp, ip, ['type', 'code'], key);
  const out: Obj = {};
  put(out, 'type', readInt(ctx, icmp, 'type', ip, { min: 0, max: 254 }));
  put(out, 'code', readInt(ctx, icmp, 'code', ip, { min: 0, max: 255 }));
  if (icmp.code !== undefined && icmp.code !== null && (icmp.type === undefined || icmp.type === null)) {
    ctx.invalid(join(ip, 'code'), icmp.code, 'needs an ICMP type as well (set type)');
  }
  return out;
}

export function validateRule(ctx: Ctx, r: Obj, p: string, rc: RuleContext): Obj {
  checkKnown(ctx, r, p, RULE_FIELDS, 'a rule');
  const out: Obj = {};
  put(out, 'action', readEnum(ctx, r, 'action', p, ACTIONS, { required: true, hint: 'Allow, Deny, Log or Pass' }));

  let ipVersion: number | undefined;
  if (r.ipVersion !== undefined && r.ipVersion !== null) {
    if (r.ipVersion === 4 || r.ipVersion === 6) ipVersion = r.ipVersion;
    else ctx.invalid(join(p, 'ipVersion'), r.ipVersion, 'must be 4 or 6');
    put(out, 'ipVersion', ipVersion);
  }

  const protoOf = (k: 'protocol' | 'notProtocol'): string | number | undefined => {
    if (r[k] === undefined || r[k] === null) return undefined;
    const v = checkProtocol(ctx, r[k], join(p, k));
    if (v !== undefined) {
      const n = protocolNumber(v);
      if (n === 1 && ipVersion === 6) ctx.invalid(join(p, k), r[k], 'is ICMP, which needs ipVersion 4 (use ICMPv6 for IPv6)');
      if (n === 58 && ipVersion === 4) ctx.invalid(join(p, k), r[k], 'is ICMPv6, which needs ipVersion 6 (use ICMP for IPv4)');
    }
    return v;
  };
  const protocol = protoOf('protocol');
  put(out, 'protocol', protocol);
  put(out, 'notProtocol', protoOf('notProtocol'));

  const icmp = icmpFields(ctx, r, 'icmp', p);
  if (icmp) {
    const n = protocol === undefined ? undefined : protocolNumber(protocol);
    if (n !== 1 && n !== 58) ctx.invalid(join(p, 'icmp'), r.icmp, `needs protocol ICMP or ICMPv6 (protocol is ${protocol === undefined ? 'not set' : JSON.stringify(protocol)})`);
    out.icmp = icmp;
  }
  put(out, 'notICMP', icmpFields(ctx, r, 'notICMP', p));

  const entities: Entity[] = [];
  for (const side of ['source', 'destination'] as const) {
    const o = readObj(ctx, r, side, p);
    if (!o) continue;
    const e = entityRule(ctx, o, join(p, side), side, rc);
    entities.push(e);
    if (Object.keys(e.out).length > 0) out[side] = e.out;
  }

  // Ports need a protocol that has them; without a protocol only named ports are allowed.
  for (const e of entities) {
    if (protocol === undefined) {
      for (const pp of e.numericPorts) {
        ctx.invalid(pp.path, pp.value, `needs the rule's protocol set to TCP, UDP or SCTP (protocol is not set; only named ports may go without one)`);
      }
    } else if (!protocolHasPorts(protocol)) {
      for (const pp of e.anyPorts) {
        ctx.invalid(pp.path, pp.value, `is not allowed: ports are only allowed with protocol TCP, UDP or SCTP (protocol is ${JSON.stringify(protocol)})`);
      }
    }
  }

  // One IP version per rule, and it must agree with ipVersion.
  let seen: { version: number; path: string; text: string } | undefined;
  for (const e of entities) {
    for (const n of e.nets) {
      if (ipVersion !== undefined && n.cidr.version !== ipVersion) {
        ctx.invalid(n.path, n.text, `is an IPv${n.cidr.version} CIDR but the rule has ipVersion ${ipVersion}`);
      } else if (seen && seen.version !== n.cidr.version) {
        ctx.invalid(n.path, n.text, `mixes IP versions in one rule (${seen.path} is ${JSON.stringify(seen.text)})`);
      }
      seen ??= { version: n.cidr.version, path: n.path, text: n.text };
    }
  }

  // Calico's HTTP match (Application Layer Policy) needs an L7 proxy; Tortie polices L3/L4 only,
  // so an Allow limited to some requests would allow them all: refused.
  if (r.http !== undefined && r.http !== null) {
    ctx.invalid(
      join(p, 'http'),
      r.http,
      'is not supported: Tortie has no L7 (HTTP) enforcement, so the rule would allow every request on its connections; remove http (or the rule)',
    );
  }

  const md = readObj(ctx, r, 'metadata', p);
  if (md) {
    const mp = join(p, 'metadata');
    checkKnown(ctx, md, mp, ['annotations'], 'rule metadata');
    const ann = readStringMap(ctx, md, 'annotations', mp);
    if (ann) {
      for (const k of Object.keys(ann)) {
        const prob = qualifiedNameProblem(k.toLowerCase());
        if (prob) ctx.say(join(join(mp, 'annotations'), k), k, `annotation key ${JSON.stringify(k)} ${prob}`);
      }
      out.metadata = { annotations: ann };
    } else out.metadata = {};
  }
  return out;
}

/** Reads `ingress` or `egress` rules. */
export function readRules(ctx: Ctx, spec: Obj, key: Direction, global: boolean): Obj[] | undefined {
  return readObjList(ctx, spec, key, 'spec', (r, p) => validateRule(ctx, r, p, { direction: key, global }));
}
