// BIRD protocol names for BGP peers, as calico-node's confd writes them and as
// `calicoctl node status` reads them back.
//
//   Mesh_10_0_0_12                    node-to-node mesh peer 10.0.0.12
//   Global_10_0_0_5_port_1790         global BGPPeer 10.0.0.5, port 1790
//   Node_fd80_24e2_f998_72d7__2       node-specific BGPPeer fd80:24e2:f998:72d7::2
//
// The address is written in canonical form (IPv4 dotted quad; IPv6 compressed per RFC 5952, lower
// case) with every `.` or `:` replaced by `_`. A port other than BGP's 179 adds `_port_<n>`.
// BIRD symbols may hold letters, digits and `_` and are at most 64 characters: the longest name
// (`Global_` + 39-character IPv6 + `_port_65535`) is 57.

import { formatIP, parseIP, type IPVersion } from '../../libcalico-go/lib/net/ip.js';

export type PeerType = 'mesh' | 'global' | 'node';

export const BGP_PORT = 179;

const PREFIX: Record<PeerType, string> = { mesh: 'Mesh', global: 'Global', node: 'Node' };
const TYPE_OF: Record<string, PeerType> = { Mesh: 'mesh', Global: 'global', Node: 'node' };

/** calicoctl's PEER TYPE column for each kind of peer. */
export const PEER_TYPE_LABELS: Record<PeerType, string> = {
  mesh: 'node-to-node mesh',
  global: 'global',
  node: 'node specific',
};

export class ProtocolNameError extends Error {}

/**
 * The BIRD protocol name of a BGP peer. `address` may be in any valid notation (it is
 * canonicalised); `port` is left out of the name when absent or 179.
 */
export function protocolName(type: PeerType, address: string, port?: number): string {
  const ip = parseIP(address);
  if (!ip) throw new ProtocolNameError(`not an IP address: ${JSON.stringify(address)}`);
  if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
    throw new ProtocolNameError(`not a TCP port: ${port}`);
  }
  const addr = formatIP(ip).replace(/[.:]/g, '_');
  const suffix = port !== undefined && port !== BGP_PORT ? `_port_${port}` : '';
  return `${PREFIX[type]}_${addr}${suffix}`;
}

export interface ParsedProtocolName {
  type: PeerType;
  /** calicoctl's PEER TYPE text (`node-to-node mesh`, `global`, `node specific`). */
  peerTypeLabel: string;
  family: IPVersion;
  /** Canonical address. */
  address: string;
  /** Present when the name carries `_port_<n>`. */
  port?: number;
}

const NAME_RE = /^(Mesh|Global|Node)_([0-9A-Za-z_]+?)(?:_port_(\d{1,5}))?$/;
const V4_RE = /^\d{1,3}_\d{1,3}_\d{1,3}_\d{1,3}$/;

/**
 * The inverse of protocolName: the peer behind a BIRD protocol name, or undefined when the name
 * is not a peer name (`kernel4`, `Local_Workload_…`, …) or its address part is not an address.
 * An IPv6 address with exactly four groups always contains `::`, so it cannot be mistaken for
 * an IPv4 one.
 */
export function parseProtocolName(name: string): ParsedProtocolName | undefined {
  const m = NAME_RE.exec(name);
  if (!m) return undefined;
  const type = TYPE_OF[m[1]!]!;
  const addr = m[2]!;
  const text = V4_RE.test(addr) ? addr.replace(/_/g, '.') : addr.replace(/_/g, ':');
  const ip = parseIP(text);
  if (!ip) return undefined;
  const out: ParsedProtocolName = { type, peerTypeLabel: PEER_TYPE_LABELS[type], family: ip.version, address: formatIP(ip) };
  if (m[3] !== undefined) {
    const port = Number(m[3]);
    if (port < 1 || port > 65535) return undefined;
    out.port = port;
  }
  return out;
}

/**
 * The PEER ADDRESS calicoctl prints for a protocol name: the text after the type prefix with
 * every `_` turned into `.` (IPv4 daemon) or `:` (IPv6 daemon) — including the port suffix,
 * which is how calicoctl shows `Global_10_0_0_5_port_1790` as `10.0.0.5.port.1790`.
 * Undefined for names calicoctl does not list.
 */
export function calicoctlPeerAddress(name: string, family: IPVersion): string | undefined {
  const m = /^(Global|Node|Mesh)_(.+)$/.exec(name);
  if (!m) return undefined;
  return m[2]!.split('_').join(family === 4 ? '.' : ':');
}
