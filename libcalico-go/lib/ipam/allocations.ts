// The allocations recorded in IPAM blocks and the addresses Nodes hold as tunnel addresses: the
// shared first half of `ipam check` (calicoctl) and of the IPAM garbage collector (kube-controllers).
// Pure: blocks and Node resources in, records out.
import type { Resource } from '../apis/v3/resource.js';
import { type BlockData, allocationsOf, hostOf } from './block.js';

/** One allocated address, with who holds it (handle, owner attributes) and where (block, block owner). */
export interface Allocation {
  ip: string;
  handle?: string;
  /** The block's sequence number when this address was allocated (a release guard). */
  sequenceNumber?: number;
  /** Owner attributes: node, namespace, pod, timestamp, type (tunnel addresses). */
  attrs: Record<string, string>;
  block: string;
  /** The host the block is affine to; null when none. */
  blockOwner: string | null;
}

/** Every allocation of every block, block by block in the given order. */
export function allocationsFromBlocks(blocks: readonly BlockData[]): Allocation[] {
  const out: Allocation[] = [];
  for (const b of blocks) {
    for (const a of allocationsOf(b)) {
      out.push({
        ip: a.ip,
        handle: a.attr.handle_id,
        sequenceNumber: a.seq,
        attrs: a.attr.secondary ?? {},
        block: b.cidr,
        blockOwner: hostOf(b),
      });
    }
  }
  return out;
}

/** The node an allocation was made for: its `node` attribute, else its block's host. */
export function allocationNode(a: Allocation): string | null {
  return a.attrs.node || a.blockOwner;
}

/** Tunnel address types (`type` attribute), as Calico's node and IPAM write them. */
export const TUNNEL_ADDRESS_TYPES = [
  'ipipTunnelAddress',
  'vxlanTunnelAddress',
  'vxlanV6TunnelAddress',
  'wireguardTunnelAddress',
  'wireguardV6TunnelAddress',
] as const;

const TUNNEL_HANDLE = /^(ipip|vxlan|vxlan-v6|wireguard|wireguard-v6)-tunnel-addr-/;

/** A node's tunnel address (by its `type` attribute or its handle `<kind>-tunnel-addr-<node>`). */
export function isTunnelAllocation(a: Allocation): boolean {
  return (TUNNEL_ADDRESS_TYPES as readonly string[]).includes(a.attrs.type ?? '') || TUNNEL_HANDLE.test(a.handle ?? '');
}

/** A pod's address: it names the pod (`namespace` and `pod` attributes). */
export function isPodAllocation(a: Allocation): boolean {
  return !!a.attrs.namespace && !!a.attrs.pod;
}

/** Calico's Windows handle: its addresses are reserved, never leaked. */
export const WINDOWS_RESERVED_HANDLE = 'windows-reserved-ipam-handle';

/**
 * The tunnel addresses Calico Nodes record (`spec.ipv4VXLANTunnelAddr`, `spec.bgp.ipv4IPIPTunnelAddr`,
 * `spec.wireguard.interfaceIPv4Address`), as `ipam check` counts them (IPv6 ones are not, as calicoctl).
 */
export function nodeTunnelIPs(nodes: readonly Resource[]): { ip: string; node: string }[] {
  const out: { ip: string; node: string }[] = [];
  for (const n of nodes) {
    const s = (n.spec ?? {}) as { ipv4VXLANTunnelAddr?: unknown; bgp?: { ipv4IPIPTunnelAddr?: unknown }; wireguard?: { interfaceIPv4Address?: unknown } };
    for (const ip of [s.ipv4VXLANTunnelAddr, s.bgp?.ipv4IPIPTunnelAddr, s.wireguard?.interfaceIPv4Address]) {
      if (typeof ip === 'string' && ip) out.push({ ip, node: n.metadata.name });
    }
  }
  return out;
}
