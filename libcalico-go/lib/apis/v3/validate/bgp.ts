// BGPConfiguration and BGPPeer.
//
// BGPConfiguration fields that are unset mean "inherit / use the default", and a per-node
// configuration (`node.<name>`) relies on that, so no defaults are written into the stored object;
// BGP_DEFAULTS and effectiveBGPConfiguration() give the values in force (asNumber 64512,
// nodeToNodeMeshEnabled true, listenPort 179, logSeverityScreen Info). As Calico's client does,
// nodeToNodeMeshEnabled, asNumber, the service CIDR lists and the mesh password/restart time may
// only be set on the configuration named "default".

import { parseIP } from '../../../net/ip.js';
import {
  checkASNumber,
  checkCIDR,
  checkDuration,
  checkIP,
  checkIPPort,
  checkSecretRef,
  checkSubdomain,
  readSelector,
} from './common.js';
import {
  type Ctx,
  type Obj,
  checkEnum,
  checkKnown,
  join,
  put,
  readBool,
  readEnum,
  readInt,
  readObjList,
  readString,
  readStringList,
} from './context.js';

export const DEFAULT_AS_NUMBER = 64512;
export const BGP_DEFAULTS = {
  asNumber: DEFAULT_AS_NUMBER,
  nodeToNodeMeshEnabled: true,
  listenPort: 179,
  logSeverityScreen: 'Info',
} as const;

/** The global BGP settings in force, given the `default` BGPConfiguration's spec (if any). */
export function effectiveBGPConfiguration(spec: Record<string, unknown> | undefined): {
  asNumber: number;
  nodeToNodeMeshEnabled: boolean;
  listenPort: number;
  logSeverityScreen: string;
} {
  const s = spec ?? {};
  return {
    asNumber: typeof s.asNumber === 'number' ? s.asNumber : BGP_DEFAULTS.asNumber,
    nodeToNodeMeshEnabled: typeof s.nodeToNodeMeshEnabled === 'boolean' ? s.nodeToNodeMeshEnabled : BGP_DEFAULTS.nodeToNodeMeshEnabled,
    listenPort: typeof s.listenPort === 'number' ? s.listenPort : BGP_DEFAULTS.listenPort,
    logSeverityScreen: typeof s.logSeverityScreen === 'string' && s.logSeverityScreen !== '' ? s.logSeverityScreen : BGP_DEFAULTS.logSeverityScreen,
  };
}

const LOG_LEVELS = ['Trace', 'Debug', 'Info', 'Warning', 'Error', 'Fatal'];

/** Log severity, case-insensitive on input, stored with Calico's capitalisation. */
export function checkLogSeverity(ctx: Ctx, v: string, p: string, levels: readonly string[] = LOG_LEVELS): string | undefined {
  const hit = levels.find((l) => l.toLowerCase() === v.toLowerCase());
  if (hit) return hit;
  ctx.invalid(p, v, `is not a valid log severity (one of ${levels.join(', ')})`);
  return undefined;
}

const BGPCONFIG_FIELDS = [
  'logSeverityScreen',
  'nodeToNodeMeshEnabled',
  'asNumber',
  'serviceLoadBalancerIPs',
  'serviceExternalIPs',
  'serviceClusterIPs',
  'serviceLoadBalancerAggregation',
  'communities',
  'prefixAdvertisements',
  'listenPort',
  'nodeMeshPassword',
  'nodeMeshMaxRestartTime',
  'bindMode',
  'ignoredInterfaces',
  'localWorkloadPeeringIPV4',
  'localWorkloadPeeringIPV6',
  'programClusterRoutes',
  'ipv4NormalRoutePriority',
  'ipv6NormalRoutePriority',
];

const DEFAULT_ONLY = [
  'nodeToNodeMeshEnabled',
  'asNumber',
  'serviceLoadBalancerIPs',
  'serviceExternalIPs',
  'serviceClusterIPs',
  'nodeMeshPassword',
  'nodeMeshMaxRestartTime',
];

/** `aa:nn` (16-bit parts) or `aa:nn:mm` (32-bit parts); returns a reason when invalid. */
export function communityProblem(v: string): string | undefined {
  const parts = v.split(':');
  if ((parts.length !== 2 && parts.length !== 3) || !parts.every((x) => /^\d+$/.test(x))) {
    return 'is not a valid community (expected "aa:nn" or "aa:nn:mm")';
  }
  const max = parts.length === 2 ? 65535 : 4294967295;
  if (parts.some((x) => Number(x) > max)) {
    return parts.length === 2
      ? 'has a part above 65535 (standard communities are two 16-bit numbers)'
      : 'has a part above 4294967295 (large communities are three 32-bit numbers)';
  }
  return undefined;
}

function serviceCIDRs(ctx: Ctx, spec: Obj, key: string): Obj[] | undefined {
  return readObjList(ctx, spec, key, 'spec', (o, p) => {
    checkKnown(ctx, o, p, ['cidr'], 'a service CIDR block');
    const c = readString(ctx, o, 'cidr', p);
    return c ? { cidr: checkCIDR(ctx, c, join(p, 'cidr'), { strict: true, allowBareIP: true }) ?? c } : {};
  });
}

export function validateBGPConfigurationSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(ctx, spec, 'spec', BGPCONFIG_FIELDS, 'BGPConfiguration spec');
  const out: Obj = {};
  const sev = readString(ctx, spec, 'logSeverityScreen', 'spec');
  if (sev) put(out, 'logSeverityScreen', checkLogSeverity(ctx, sev, 'spec.logSeverityScreen'));
  const mesh = readBool(ctx, spec, 'nodeToNodeMeshEnabled', 'spec');
  put(out, 'nodeToNodeMeshEnabled', mesh);
  if (spec.asNumber !== undefined && spec.asNumber !== null) put(out, 'asNumber', checkASNumber(ctx, spec.asNumber, 'spec.asNumber'));
  for (const k of ['serviceLoadBalancerIPs', 'serviceExternalIPs', 'serviceClusterIPs']) put(out, k, serviceCIDRs(ctx, spec, k));
  put(out, 'serviceLoadBalancerAggregation', readEnum(ctx, spec, 'serviceLoadBalancerAggregation', 'spec', ['Enabled', 'Disabled']));

  const communities = readObjList(ctx, spec, 'communities', 'spec', (o, p) => {
    checkKnown(ctx, o, p, ['name', 'value'], 'a community');
    const r: Obj = {};
    const name = readString(ctx, o, 'name', p, { required: true });
    if (name) put(r, 'name', checkSubdomain(ctx, name, join(p, 'name')));
    const value = readString(ctx, o, 'value', p, { required: true });
    if (value) {
      const prob = communityProblem(value);
      if (prob) ctx.invalid(join(p, 'value'), value, prob);
      else r.value = value;
    }
    return r;
  });
  put(out, 'communities', communities);
  const names = new Set((communities ?? []).map((c) => c.name));
  const prefixAdvertisements = readObjList(ctx, spec, 'prefixAdvertisements', 'spec', (o, p) => {
    checkKnown(ctx, o, p, ['cidr', 'communities'], 'a prefix advertisement');
    const r: Obj = {};
    const c = readString(ctx, o, 'cidr', p, { required: true });
    if (c) put(r, 'cidr', checkCIDR(ctx, c, join(p, 'cidr'), { strict: true, allowBareIP: true }));
    put(
      r,
      'communities',
      readStringList(
        ctx,
        o,
        'communities',
        p,
        (s, sp) => {
          if (names.has(s) || !communityProblem(s)) return s;
          ctx.invalid(sp, s, 'is neither a community defined in spec.communities nor a valid "aa:nn" / "aa:nn:mm" value');
          return undefined;
        },
        { required: true },
      ),
    );
    return r;
  });
  put(out, 'prefixAdvertisements', prefixAdvertisements);
  if (communities && communities.length > 0 && !(prefixAdvertisements && prefixAdvertisements.length > 0)) {
    ctx.invalid('spec.communities', spec.communities, 'are defined but not used: there are no prefixAdvertisements');
  }

  put(out, 'listenPort', readInt(ctx, spec, 'listenPort', 'spec', { min: 1, max: 65535 }));
  put(out, 'nodeMeshPassword', checkSecretRef(ctx, spec, 'nodeMeshPassword', 'spec'));
  if (spec.nodeMeshMaxRestartTime !== undefined && spec.nodeMeshMaxRestartTime !== null) {
    put(out, 'nodeMeshMaxRestartTime', checkDuration(ctx, spec.nodeMeshMaxRestartTime, 'spec.nodeMeshMaxRestartTime'));
  }
  if (mesh === false) {
    for (const k of ['nodeMeshPassword', 'nodeMeshMaxRestartTime']) {
      if (spec[k] !== undefined && spec[k] !== null) ctx.invalid(join('spec', k), spec[k], 'cannot be set when nodeToNodeMeshEnabled is false');
    }
  }
  put(out, 'bindMode', readEnum(ctx, spec, 'bindMode', 'spec', ['None', 'NodeIP']));
  put(
    out,
    'ignoredInterfaces',
    readStringList(ctx, spec, 'ignoredInterfaces', 'spec', (s, p) => {
      if (/^[a-zA-Z0-9_.*-]{1,15}$/.test(s)) return s;
      ctx.invalid(p, s, 'is not a valid interface name or pattern (1–15 of [a-zA-Z0-9_.*-])');
      return undefined;
    }),
  );
  for (const [k, v] of [
    ['localWorkloadPeeringIPV4', 4],
    ['localWorkloadPeeringIPV6', 6],
  ] as const) {
    const ip = readString(ctx, spec, k, 'spec');
    if (ip) put(out, k, checkIP(ctx, ip, join('spec', k), v));
  }
  put(out, 'programClusterRoutes', readEnum(ctx, spec, 'programClusterRoutes', 'spec', ['Enabled', 'Disabled']));
  for (const k of ['ipv4NormalRoutePriority', 'ipv6NormalRoutePriority']) put(out, k, readInt(ctx, spec, k, 'spec', { min: 1, max: 2147483646 }));

  if (ctx.name !== undefined && ctx.name !== 'default') {
    for (const k of DEFAULT_ONLY) {
      const v = spec[k];
      if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) {
        ctx.invalid(join('spec', k), v, `can only be set on the BGPConfiguration named "default" (this one is ${JSON.stringify(ctx.name)})`);
      }
    }
  }
  return out;
}

const BGPPEER_FIELDS = [
  'node',
  'nodeSelector',
  'peerIP',
  'asNumber',
  'localASNumber',
  'peerSelector',
  'keepOriginalNextHop',
  'nextHopMode',
  'password',
  'sourceAddress',
  'maxRestartTime',
  'keepaliveTime',
  'numAllowedLocalASNumbers',
  'ttlSecurity',
  'reachableBy',
  'filters',
  'localWorkloadSelector',
  'reversePeering',
];

function isSet(v: unknown): boolean {
  return v !== undefined && v !== null && v !== '' && v !== 0;
}

export function validateBGPPeerSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(ctx, spec, 'spec', BGPPEER_FIELDS, 'BGPPeer spec');
  const out: Obj = {};
  const node = readString(ctx, spec, 'node', 'spec');
  if (node) put(out, 'node', checkSubdomain(ctx, node, 'spec.node'));
  put(out, 'nodeSelector', readSelector(ctx, spec, 'nodeSelector', 'spec', { what: 'a BGPPeer nodeSelector' }));
  const peerIP = readString(ctx, spec, 'peerIP', 'spec');
  if (peerIP) put(out, 'peerIP', checkIPPort(ctx, peerIP, 'spec.peerIP'));
  if (isSet(spec.asNumber)) put(out, 'asNumber', checkASNumber(ctx, spec.asNumber, 'spec.asNumber'));
  if (isSet(spec.localASNumber)) put(out, 'localASNumber', checkASNumber(ctx, spec.localASNumber, 'spec.localASNumber'));
  put(out, 'peerSelector', readSelector(ctx, spec, 'peerSelector', 'spec', { what: 'a BGPPeer peerSelector' }));
  const keep = readBool(ctx, spec, 'keepOriginalNextHop', 'spec');
  if (keep) out.keepOriginalNextHop = true;
  put(out, 'nextHopMode', readEnum(ctx, spec, 'nextHopMode', 'spec', ['Auto', 'Self', 'Keep']));
  put(out, 'password', checkSecretRef(ctx, spec, 'password', 'spec'));
  put(out, 'sourceAddress', readEnum(ctx, spec, 'sourceAddress', 'spec', ['UseNodeIP', 'None']));
  for (const k of ['maxRestartTime', 'keepaliveTime']) {
    if (spec[k] !== undefined && spec[k] !== null) put(out, k, checkDuration(ctx, spec[k], join('spec', k)));
  }
  put(out, 'numAllowedLocalASNumbers', readInt(ctx, spec, 'numAllowedLocalASNumbers', 'spec', { min: 0, max: 2147483647 }));
  put(out, 'ttlSecurity', readInt(ctx, spec, 'ttlSecurity', 'spec', { min: 0, max: 255 }));
  const reachableBy = readString(ctx, spec, 'reachableBy', 'spec');
  if (reachableBy) {
    const r = checkIP(ctx, reachableBy, 'spec.reachableBy');
    put(out, 'reachableBy', r);
    const peerHost = typeof out.peerIP === 'string' ? out.peerIP.replace(/^\[(.*)\]:\d+$/, '$1').replace(/^(\d+\.\d+\.\d+\.\d+):\d+$/, '$1') : undefined;
    if (r && peerHost && parseIP(r)?.version !== parseIP(peerHost)?.version) {
      ctx.invalid('spec.reachableBy', reachableBy, `is of a different IP version than peerIP ${out.peerIP}`);
    }
    if (!peerIP) ctx.invalid('spec.reachableBy', reachableBy, 'needs peerIP to be set');
  }
  put(out, 'filters', readStringList(ctx, spec, 'filters', 'spec', (s, p) => checkSubdomain(ctx, s, p)));
  put(out, 'localWorkloadSelector', readSelector(ctx, spec, 'localWorkloadSelector', 'spec', { what: 'a BGPPeer localWorkloadSelector' }));
  const rp = readString(ctx, spec, 'reversePeering', 'spec');
  if (rp) put(out, 'reversePeering', checkEnum(ctx, rp, 'spec.reversePeering', ['Auto', 'Manual']));

  // Mutually exclusive fields.
  const excl = (a: string, b: string, why?: string): void => {
    if (isSet(spec[a]) && isSet(spec[b])) {
      ctx.say(join('spec', b), spec[b], `${a} ${JSON.stringify(spec[a])} and ${b} ${JSON.stringify(spec[b])} cannot both be set${why ? ` (${why})` : ''}`);
    }
  };
  excl('node', 'nodeSelector');
  excl('peerIP', 'peerSelector');
  excl('peerSelector', 'asNumber', 'the AS number of a selected Calico node comes from that node');
  excl('localWorkloadSelector', 'peerIP');
  excl('localWorkloadSelector', 'peerSelector');
  if (isSet(spec.localWorkloadSelector) && !isSet(spec.asNumber)) {
    ctx.missing('spec.asNumber', 'asNumber is required when localWorkloadSelector is set');
  }
  if (keep && isSet(spec.nextHopMode)) {
    ctx.say(
      'spec.nextHopMode',
      spec.nextHopMode,
      `keepOriginalNextHop true and nextHopMode ${JSON.stringify(spec.nextHopMode)} cannot both be set (keepOriginalNextHop is deprecated; use nextHopMode)`,
    );
  }
  return out;
}
