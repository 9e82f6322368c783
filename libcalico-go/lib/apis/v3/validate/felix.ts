// FelixConfiguration: `default` (global), `node.<nodename>` (per node), or any other name with a
// nodeSelector (selector-scoped). Unset fields mean "Felix's default / inherit", so nothing is
// filled in. Every field is type-checked against FELIX_FIELDS; unknown fields are refused, and so
// are values asking for what Tortie lacks and must not pretend to give (felix-support.ts:
// wireguardEnabled/wireguardEnabledV6/wireguardHostEncryptionEnabled true, bpfEnabled true,
// useInternalDataplaneDriver false). Reading stored resources does not validate them, so such
// data written by Calico stays readable (the agent reports it at start-up).

import { checkCIDR, checkDuration, checkInterfaceName, checkIP, checkPort, checkSelector } from './common.js';
import { type Ctx, type Obj, checkEnum, checkInt, checkKnown, isObj, join } from './context.js';
import { FELIX_FIELDS, type FelixFieldType } from './felix-fields.js';
import { felixSupport } from './felix-support.js';

function typeWord(v: unknown): string {
  return Array.isArray(v) ? 'a list' : v === null ? 'null' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function str(ctx: Ctx, v: unknown, p: string): string | undefined {
  if (typeof v === 'string') return v;
  ctx.invalid(p, v, `must be a string, not ${typeWord(v)}`);
  return undefined;
}

function list(ctx: Ctx, v: unknown, p: string): unknown[] | undefined {
  if (Array.isArray(v)) return v;
  ctx.invalid(p, v, `must be a list, not ${typeWord(v)}`);
  return undefined;
}

function obj(ctx: Ctx, v: unknown, p: string): Obj | undefined {
  if (isObj(v)) return v;
  ctx.invalid(p, v, `must be an object, not ${typeWord(v)}`);
  return undefined;
}

function routeTableRange(ctx: Ctx, v: unknown, p: string, max: number): Obj | undefined {
  const o = obj(ctx, v, p);
  if (!o) return undefined;
  checkKnown(ctx, o, p, ['min', 'max'], 'a route table range');
  const lo = checkInt(ctx, o.min, join(p, 'min'), { min: 1, max });
  const hi = checkInt(ctx, o.max, join(p, 'max'), { min: 1, max });
  if (lo === undefined || hi === undefined) return undefined;
  if (lo > hi) {
    ctx.say(p, o, `route table range min ${lo} is greater than max ${hi}`);
    return undefined;
  }
  return { min: lo, max: hi };
}

/** Checks one value against its declared type; returns the canonical value or undefined. */
export function checkFelixValue(ctx: Ctx, ft: FelixFieldType, v: unknown, p: string): unknown {
  switch (ft.t) {
    case 'bool':
      if (typeof v === 'boolean') return v;
      ctx.invalid(p, v, `must be true or false, not ${typeWord(v)}`);
      return undefined;
    case 'int':
      return checkInt(ctx, v, p, { min: ft.min, max: ft.max });
    case 'string':
      return str(ctx, v, p);
    case 'duration':
      return checkDuration(ctx, v, p);
    case 'enum': {
      const s = str(ctx, v, p);
      if (s === undefined) return undefined;
      if (ft.ci) {
        if (ft.values.some((x) => x.toLowerCase() === s.toLowerCase())) return s;
        ctx.invalid(p, s, `is not one of ${ft.values.filter((x) => x !== '').join(', ')}`);
        return undefined;
      }
      return checkEnum(ctx, s, p, ft.values);
    }
    case 'pattern': {
      const s = str(ctx, v, p);
      if (s === undefined) return undefined;
      if (ft.re.test(s)) return s;
      ctx.invalid(p, s, `is not ${ft.what}`);
      return undefined;
    }
    case 'keyValueList': {
      const s = str(ctx, v, p);
      if (s === undefined) return undefined;
      if (s === '' || s.split(',').every((kv) => /^\s*[\w-]+=.*$/.test(kv))) return s;
      ctx.invalid(p, s, 'is not a comma-separated list of key=value pairs');
      return undefined;
    }
    case 'regexp': {
      const s = str(ctx, v, p);
      if (s === undefined) return undefined;
      try {
        new RegExp(s);
        return s;
      } catch {
        ctx.invalid(p, s, 'is not a valid regular expression');
        return undefined;
      }
    }
    case 'strings': {
      const l = list(ctx, v, p);
      return l?.map((x, i) => str(ctx, x, join(p, i))).filter((x) => x !== undefined);
    }
    case 'cidrs': {
      const l = list(ctx, v, p);
      return l
        ?.map((x, i) => {
          const s = str(ctx, x, join(p, i));
          return s === undefined ? undefined : checkCIDR(ctx, s, join(p, i), { allowBareIP: true });
        })
        .filter((x) => x !== undefined);
    }
    case 'ip': {
      const s = str(ctx, v, p);
      return s === undefined || s === '' ? s : checkIP(ctx, s, p, ft.version);
    }
    case 'iface': {
      const s = str(ctx, v, p);
      return s === undefined ? undefined : checkInterfaceName(ctx, s, p, false);
    }
    case 'selector': {
      const s = str(ctx, v, p);
      if (s === undefined) return undefined;
      return checkSelector(ctx, s, p, { what: 'a FelixConfiguration nodeSelector' }) ? s : undefined;
    }
    case 'port': {
      const pv = checkPort(ctx, v, p);
      if (pv?.named) {
        ctx.invalid(p, v, 'must be a port number or range, not a name');
        return undefined;
      }
      return pv?.value;
    }
    case 'ports': {
      const l = list(ctx, v, p);
      if (!l) return undefined;
      if (l.length > 7) ctx.invalid(p, v, `has ${l.length} ranges (at most 7)`);
      return l
        .map((x, i) => {
          const pv = checkPort(ctx, x, join(p, i));
          if (pv?.named) {
            ctx.invalid(join(p, i), x, 'must be a port number or range, not a name');
            return undefined;
          }
          return pv?.value;
        })
        .filter((x) => x !== undefined);
    }
    case 'protoPorts': {
      const l = list(ctx, v, p);
      return l
        ?.map((x, i) => {
          const ip = join(p, i);
          const o = obj(ctx, x, ip);
          if (!o) return undefined;
          checkKnown(ctx, o, ip, ['protocol', 'port', 'net'], 'a protocol/port entry');
          const out: Obj = {};
          if (o.protocol !== undefined && o.protocol !== '') {
            const proto = typeof o.protocol === 'string' ? o.protocol.toUpperCase() : o.protocol;
            if (proto !== 'TCP' && proto !== 'UDP' && proto !== 'SCTP') {
              ctx.invalid(join(ip, 'protocol'), o.protocol, 'must be TCP, UDP or SCTP');
            } else out.protocol = proto;
          }
          const port = checkInt(ctx, o.port, join(ip, 'port'), { min: 0, max: 65535 });
          if (port !== undefined) out.port = port;
          if (o.net !== undefined && o.net !== '') {
            const n = str(ctx, o.net, join(ip, 'net'));
            if (n !== undefined) {
              const c = checkCIDR(ctx, n, join(ip, 'net'), { allowBareIP: true });
              if (c) out.net = c;
            }
          }
          return out;
        })
        .filter((x) => x !== undefined);
    }
    case 'stringMap': {
      const o = obj(ctx, v, p);
      if (!o) return undefined;
      const out: Obj = {};
      for (const [k, x] of Object.entries(o)) {
        const s = str(ctx, x, join(p, k));
        if (s !== undefined) out[k] = s;
      }
      return out;
    }
    case 'conntrackTimeouts': {
      const o = obj(ctx, v, p);
      if (!o) return undefined;
      const fields = ['creationGracePeriod', 'tcpSynSent', 'tcpEstablished', 'tcpFinsSeen', 'tcpResetSeen', 'udpTimeout', 'genericTimeout', 'icmpTimeout'];
      checkKnown(ctx, o, p, fields, 'bpfConntrackTimeouts');
      const out: Obj = {};
      for (const k of fields) {
        if (o[k] === undefined || o[k] === null) continue;
        const s = str(ctx, o[k], join(p, k));
        if (s === undefined) continue;
        if (s === 'Auto' || /^(\d*(\.\d*)?(ms|s|h|m|us)+)+$/.test(s)) out[k] = s;
        else ctx.invalid(join(p, k), s, 'is not a duration or "Auto"');
      }
      return out;
    }
    case 'routeTableRange':
      return routeTableRange(ctx, v, p, 250);
    case 'routeTableRanges': {
      const l = list(ctx, v, p);
      return l?.map((x, i) => routeTableRange(ctx, x, join(p, i), 4294967295)).filter((x) => x !== undefined);
    }
    case 'healthTimeoutOverrides': {
      const l = list(ctx, v, p);
      return l
        ?.map((x, i) => {
          const ip = join(p, i);
          const o = obj(ctx, x, ip);
          if (!o) return undefined;
          checkKnown(ctx, o, ip, ['name', 'timeout'], 'a health timeout override');
          const name = str(ctx, o.name, join(ip, 'name'));
          const timeout = checkDuration(ctx, o.timeout, join(ip, 'timeout'));
          return name !== undefined && timeout !== undefined ? { name, timeout } : undefined;
        })
        .filter((x) => x !== undefined);
    }
    case 'dscp':
      if (typeof v === 'number') return checkInt(ctx, v, p, { min: 0, max: 63 });
      if (typeof v === 'string' && /^(DF|EF|AF[1-4][1-3]|CS[0-7])$/.test(v)) return v;
      ctx.invalid(p, v, 'is not a valid DSCP value (0–63 or a name such as EF, AF11, CS1)');
      return undefined;
  }
}

export function validateFelixConfigurationSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(ctx, spec, 'spec', Object.keys(FELIX_FIELDS), 'FelixConfiguration spec');
  const out: Obj = {};
  for (const [k, v] of Object.entries(spec)) {
    const ft = FELIX_FIELDS[k];
    if (!ft || v === undefined || v === null) continue;
    const c = checkFelixValue(ctx, ft, v, join('spec', k));
    if (c === undefined) continue;
    out[k] = c;
    const support = felixSupport(k, c, 'resource');
    if (support.kind === 'refused') ctx.invalid(join('spec', k), c, `is not supported by Tortie: ${support.reason}`);
  }
  if (spec.routeTableRange !== undefined && spec.routeTableRanges !== undefined) {
    ctx.invalid('spec.routeTableRanges', spec.routeTableRanges, 'cannot be set together with spec.routeTableRange');
  }
  if (spec.nodeSelector !== undefined && ctx.name !== undefined && (ctx.name === 'default' || ctx.name.startsWith('node.'))) {
    ctx.invalid('spec.nodeSelector', spec.nodeSelector, `may not be set on the FelixConfiguration ${JSON.stringify(ctx.name)} (only on selector-scoped ones)`);
  }
  return out;
}
