// Node: a host's BGP identity and tunnel addresses.
//
// `spec.bgp.ipv4Address` / `ipv6Address` are interface addresses, normally with the subnet's
// prefix length (`10.0.0.11/24`): host bits are kept. A bare address is accepted as well.

import { checkAddressWithPrefix, checkASNumber, checkIP, checkMAC, checkSubdomain } from './common.js';
import {
  type Ctx,
  type Obj,
  checkEnum,
  checkKnown,
  join,
  put,
  readObj,
  readObjList,
  readString,
  readStringList,
} from './context.js';

function optIP(ctx: Ctx, o: Obj, key: string, path: string, version: 4 | 6): string | undefined {
  const v = readString(ctx, o, key, path);
  return v === undefined || v === '' ? undefined : checkIP(ctx, v, join(path, key), version);
}

function optMAC(ctx: Ctx, o: Obj, key: string, path: string): string | undefined {
  const v = readString(ctx, o, key, path);
  return v === undefined || v === '' ? undefined : checkMAC(ctx, v, join(path, key));
}

function validateBGP(ctx: Ctx, bgp: Obj): Obj {
  const p = 'spec.bgp';
  checkKnown(ctx, bgp, p, ['asNumber', 'ipv4Address', 'ipv6Address', 'ipv4IPIPTunnelAddr', 'routeReflectorClusterID'], 'Node spec.bgp');
  const out: Obj = {};
  if (bgp.asNumber !== undefined && bgp.asNumber !== null) put(out, 'asNumber', checkASNumber(ctx, bgp.asNumber, join(p, 'asNumber')));
  for (const [k, version] of [
    ['ipv4Address', 4],
    ['ipv6Address', 6],
  ] as const) {
    const v = readString(ctx, bgp, k, p);
    if (v) put(out, k, checkAddressWithPrefix(ctx, v, join(p, k), version));
  }
  put(out, 'ipv4IPIPTunnelAddr', optIP(ctx, bgp, 'ipv4IPIPTunnelAddr', p, 4));
  put(out, 'routeReflectorClusterID', optIP(ctx, bgp, 'routeReflectorClusterID', p, 4));
  if (Object.keys(bgp).length === 0) ctx.invalid(p, bgp, 'must not be empty (omit spec.bgp instead)');
  return out;
}

export function validateNodeSpec(ctx: Ctx, spec: Obj): Obj {
  checkKnown(
    ctx,
    spec,
    'spec',
    [
      'bgp',
      'ipv4VXLANTunnelAddr',
      'vxlanTunnelMACAddr',
      'ipv6VXLANTunnelAddr',
      'vxlanTunnelMACAddrV6',
      'orchRefs',
      'wireguard',
      'addresses',
      'interfaces',
    ],
    'Node spec',
  );
  const out: Obj = {};
  const bgp = readObj(ctx, spec, 'bgp', 'spec');
  if (bgp) out.bgp = validateBGP(ctx, bgp);
  put(out, 'ipv4VXLANTunnelAddr', optIP(ctx, spec, 'ipv4VXLANTunnelAddr', 'spec', 4));
  put(out, 'ipv6VXLANTunnelAddr', optIP(ctx, spec, 'ipv6VXLANTunnelAddr', 'spec', 6));
  put(out, 'vxlanTunnelMACAddr', optMAC(ctx, spec, 'vxlanTunnelMACAddr', 'spec'));
  put(out, 'vxlanTunnelMACAddrV6', optMAC(ctx, spec, 'vxlanTunnelMACAddrV6', 'spec'));

  put(
    out,
    'orchRefs',
    readObjList(ctx, spec, 'orchRefs', 'spec', (o, p) => {
      checkKnown(ctx, o, p, ['nodeName', 'orchestrator'], 'an orchRef');
      const r: Obj = {};
      put(r, 'nodeName', readString(ctx, o, 'nodeName', p));
      put(r, 'orchestrator', readString(ctx, o, 'orchestrator', p, { required: true }));
      return r;
    }),
  );

  const wg = readObj(ctx, spec, 'wireguard', 'spec');
  if (wg) {
    checkKnown(ctx, wg, 'spec.wireguard', ['interfaceIPv4Address', 'interfaceIPv6Address'], 'Node spec.wireguard');
    const w: Obj = {};
    put(w, 'interfaceIPv4Address', optIP(ctx, wg, 'interfaceIPv4Address', 'spec.wireguard', 4));
    put(w, 'interfaceIPv6Address', optIP(ctx, wg, 'interfaceIPv6Address', 'spec.wireguard', 6));
    out.wireguard = w;
  }

  put(
    out,
    'addresses',
    readObjList(ctx, spec, 'addresses', 'spec', (o, p) => {
      checkKnown(ctx, o, p, ['address', 'type'], 'a node address');
      const r: Obj = {};
      const a = readString(ctx, o, 'address', p, { required: true });
      if (a !== undefined) put(r, 'address', checkAddressWithPrefix(ctx, a, join(p, 'address')));
      const t = readString(ctx, o, 'type', p);
      if (t) put(r, 'type', checkEnum(ctx, t, join(p, 'type'), ['CalicoNodeIP', 'InternalIP', 'ExternalIP']));
      return r;
    }),
  );

  put(
    out,
    'interfaces',
    readObjList(ctx, spec, 'interfaces', 'spec', (o, p) => {
      checkKnown(ctx, o, p, ['name', 'addresses'], 'a node interface');
      const r: Obj = {};
      const n = readString(ctx, o, 'name', p);
      if (n) put(r, 'name', checkSubdomain(ctx, n, join(p, 'name')));
      put(
        r,
        'addresses',
        readStringList(ctx, o, 'addresses', p, (s, sp) => checkAddressWithPrefix(ctx, s, sp)),
      );
      return r;
    }),
  );
  return out;
}
