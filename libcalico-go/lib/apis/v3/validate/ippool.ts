// IPPool: defaults and validation.
//
// Decisions (see also the module README in index.ts):
// * `cidr` must be strictly masked, as Calico's client insists ("IPPool CIDR is not strictly
//   masked"): `10.0.0.1/24` is refused, naming the network `10.0.0.0/24`. The stored text is the
//   canonical form (IPv6 compressed per RFC 5952). A bare address (no "/n") is refused.
// * `ipipMode` / `vxlanMode` are stored as `Never`, `Always` or `CrossSubnet`. On input we also
//   accept, in any letter case, what calico-node's CALICO_IPV4POOL_IPIP/_VXLAN accept
//   (`""`, `off`, `never` → Never; `always` → Always; `crosssubnet`, `cross-subnet` → CrossSubnet)
//   plus YAML-ish booleans: `false`/`no` (string or boolean) → Never, `true`/`on`/`yes` → Always
//   (Always is what Calico's v1 `ipip: {enabled: true}` meant). Anything else is refused.
// * `blockSize` defaults to 26 (IPv4) / 122 (IPv6); allowed 20–32 / 116–128; and the block may
//   not be larger than the pool (block prefix ≥ pool prefix) unless the pool is disabled, which is
//   Calico's exact rule.
// * `natOutgoing`, `disabled`, `disableBGPExport` are omitted when false (Calico's omitempty).

import { type CIDR, cidrOverlaps, formatCIDR, parseCIDR } from '../../../net/ip.js';
import type { Resource } from '../resource.js';
import { checkSelector, parseCIDRField } from './common.js';
import { type Ctx, type Obj, checkEnum, checkInt, checkKnown, put, readBool, readString, readStringList } from './context.js';

export const DEFAULT_BLOCK_SIZE_V4 = 26;
export const DEFAULT_BLOCK_SIZE_V6 = 122;
export const ENCAP_MODES = ['Never', 'Always', 'CrossSubnet'] as const;
export type EncapMode = (typeof ENCAP_MODES)[number];
export const ALLOWED_USES = ['Workload', 'Tunnel', 'LoadBalancer'] as const;
export const ASSIGNMENT_MODES = ['Automatic', 'Manual'] as const;

const FIELDS = [
  'cidr',
  'vxlanMode',
  'ipipMode',
  'natOutgoing',
  'disabled',
  'disableBGPExport',
  'blockSize',
  'nodeSelector',
  'namespaceSelector',
  'allowedUses',
  'assignmentMode',
  // v1 compatibility fields: must be unset.
  'ipip',
  'nat-outgoing',
];

const encapAliases: Record<string, EncapMode> = {
  '': 'Never',
  never: 'Never',
  off: 'Never',
  false: 'Never',
  no: 'Never',
  always: 'Always',
  on: 'Always',
  true: 'Always',
  yes: 'Always',
  crosssubnet: 'CrossSubnet',
  'cross-subnet': 'CrossSubnet',
};

/**
 * Normalises an IPIP/VXLAN mode as accepted on input (see the module comment); returns undefined
 * for an unrecognised value. Exported for tools that read CALICO_IPV4POOL_IPIP-style settings.
 */
export function normalizeEncapMode(v: unknown): EncapMode | undefined {
  if (v === undefined || v === null) return 'Never';
  if (typeof v === 'boolean') return v ? 'Always' : 'Never';
  if (typeof v !== 'string') return undefined;
  return encapAliases[v.trim().toLowerCase()];
}

function readEncap(ctx: Ctx, spec: Obj, key: string): EncapMode | undefined {
  const v = spec[key];
  const mode = normalizeEncapMode(v);
  if (mode === undefined) {
    ctx.invalid(`spec.${key}`, v, `is not a valid mode (one of ${ENCAP_MODES.join(', ')}; "Off" is accepted for Never)`);
  }
  return mode;
}

export interface IPPoolExisting {
  pools?: readonly Resource[];
}

export function validateIPPoolSpec(ctx: Ctx, spec: Obj, existing: IPPoolExisting): Obj {
  checkKnown(ctx, spec, 'spec', FIELDS, 'IPPool spec');
  const out: Obj = {};

  if (spec.ipip !== undefined && spec.ipip !== null) {
    ctx.invalid('spec.ipip', spec.ipip, 'is a v1 field and may not be set (use spec.ipipMode)');
  }
  if (spec['nat-outgoing'] !== undefined && spec['nat-outgoing'] !== false && spec['nat-outgoing'] !== null) {
    ctx.invalid('spec.nat-outgoing', spec['nat-outgoing'], 'is a v1 field and may not be set (use spec.natOutgoing)');
  }

  // cidr
  let cidr: CIDR | undefined;
  const cidrText = readString(ctx, spec, 'cidr', 'spec', { required: true });
  if (cidrText !== undefined) {
    cidr = parseCIDRField(ctx, cidrText, 'spec.cidr', { strict: true });
    if (cidr) {
      out.cidr = formatCIDR(cidr);
      const linkLocal = cidr.version === 4 ? parseCIDR('169.254.0.0/16')! : parseCIDR('fe80::/10')!;
      if (cidrOverlaps(cidr, linkLocal)) {
        ctx.invalid('spec.cidr', cidrText, `overlaps the IPv${cidr.version} link-local range ${formatCIDR(linkLocal)}`);
      }
    }
  }

  // modes
  const vxlanMode = readEncap(ctx, spec, 'vxlanMode');
  const ipipMode = readEncap(ctx, spec, 'ipipMode');
  put(out, 'vxlanMode', vxlanMode);
  put(out, 'ipipMode', ipipMode);
  if (vxlanMode && ipipMode && vxlanMode !== 'Never' && ipipMode !== 'Never') {
    ctx.say(
      'spec.ipipMode',
      spec.ipipMode,
      `ipipMode ${JSON.stringify(ipipMode)} and vxlanMode ${JSON.stringify(vxlanMode)} cannot both be enabled`,
    );
  }
  if (cidr?.version === 6 && ipipMode && ipipMode !== 'Never') {
    ctx.invalid('spec.ipipMode', spec.ipipMode, `is not allowed on an IPv6 pool (${out.cidr}): IPIP is IPv4 only`);
  }

  // booleans (omitted when false)
  const disabled = readBool(ctx, spec, 'disabled', 'spec');
  for (const [k, v] of [
    ['natOutgoing', readBool(ctx, spec, 'natOutgoing', 'spec')],
    ['disabled', disabled],
    ['disableBGPExport', readBool(ctx, spec, 'disableBGPExport', 'spec')],
  ] as const) {
    if (v) out[k] = true;
  }

  // blockSize
  if (spec.blockSize !== undefined && spec.blockSize !== null && spec.blockSize !== 0) {
    const v6 = cidr?.version === 6;
    const bs = cidr
      ? checkInt(ctx, spec.blockSize, 'spec.blockSize', {
          min: v6 ? 116 : 20,
          max: v6 ? 128 : 32,
          rangeHint: v6 ? 'IPv6 block size must be 116–128' : 'IPv4 block size must be 20–32',
        })
      : checkInt(ctx, spec.blockSize, 'spec.blockSize', { min: 20, max: 128 });
    put(out, 'blockSize', bs);
  } else if (cidr) {
    out.blockSize = cidr.version === 4 ? DEFAULT_BLOCK_SIZE_V4 : DEFAULT_BLOCK_SIZE_V6;
  }
  if (cidr && typeof out.blockSize === 'number' && out.blockSize < cidr.prefix && !disabled) {
    ctx.invalid(
      'spec.blockSize',
      out.blockSize,
      `is larger than the pool ${out.cidr}: the block prefix must be ≥ the pool prefix /${cidr.prefix}`,
    );
  }

  // selectors
  const nodeSelector = readString(ctx, spec, 'nodeSelector', 'spec');
  const ns = nodeSelector === undefined || nodeSelector.trim() === '' ? 'all()' : nodeSelector;
  if (checkSelector(ctx, ns, 'spec.nodeSelector', { what: 'an IPPool nodeSelector' })) out.nodeSelector = ns;
  const namespaceSelector = readString(ctx, spec, 'namespaceSelector', 'spec');
  if (namespaceSelector !== undefined && namespaceSelector !== '') {
    if (checkSelector(ctx, namespaceSelector, 'spec.namespaceSelector', { what: 'an IPPool namespaceSelector' })) {
      out.namespaceSelector = namespaceSelector;
    }
  }

  // allowedUses
  const uses = readStringList(ctx, spec, 'allowedUses', 'spec', (s, p) => checkEnum(ctx, s, p, ALLOWED_USES));
  let allowedUses: string[] = uses && uses.length > 0 ? uses : ['Workload', 'Tunnel'];
  if (new Set(allowedUses).size !== allowedUses.length) {
    ctx.invalid('spec.allowedUses', spec.allowedUses, 'lists a use more than once');
    allowedUses = [...new Set(allowedUses)];
  }
  out.allowedUses = allowedUses;
  if (allowedUses.includes('LoadBalancer')) {
    if (allowedUses.length > 1) {
      ctx.invalid('spec.allowedUses', spec.allowedUses, 'combines LoadBalancer with Workload or Tunnel (not allowed)');
    }
    if ((ipipMode && ipipMode !== 'Never') || (vxlanMode && vxlanMode !== 'Never')) {
      ctx.say('spec.allowedUses', spec.allowedUses, `a LoadBalancer pool cannot have IPIP or VXLAN enabled (ipipMode ${ipipMode}, vxlanMode ${vxlanMode})`);
    }
    if (out.disableBGPExport) ctx.invalid('spec.disableBGPExport', true, 'is not allowed on a LoadBalancer pool');
    if (typeof out.nodeSelector === 'string' && out.nodeSelector.trim() !== 'all()') {
      ctx.invalid('spec.nodeSelector', out.nodeSelector, 'must be all() for a LoadBalancer pool');
    }
  }
  if (allowedUses.includes('Tunnel') && out.namespaceSelector !== undefined) {
    ctx.invalid('spec.namespaceSelector', out.namespaceSelector, 'is not allowed on a pool whose allowedUses include Tunnel');
  }

  // assignmentMode
  const am = readString(ctx, spec, 'assignmentMode', 'spec');
  out.assignmentMode = am === undefined || am === '' ? 'Automatic' : checkEnum(ctx, am, 'spec.assignmentMode', ASSIGNMENT_MODES);

  // overlap with the other pools
  if (cidr && existing.pools) {
    for (const other of existing.pools) {
      const otherName = other?.metadata?.name;
      if (otherName === ctx.name) continue;
      const otherText = (other?.spec as Obj | undefined)?.cidr;
      const oc = typeof otherText === 'string' ? parseCIDR(otherText) : null;
      if (oc && cidrOverlaps(cidr, oc)) {
        ctx.invalid(
          'spec.cidr',
          out.cidr,
          `overlaps with IPPool ${JSON.stringify(otherName)} (${formatCIDR(oc)})`,
        );
      }
    }
  }
  return out;
}
