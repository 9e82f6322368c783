// `calicoctl node status`: parsing BIRD's `show protocols` reply and printing the BGP peer
// tables, as calicoctl ≤ v3.32 does (tablewriter v0.0.5 table).

import { type BirdProtocolRow, fields } from '../../confd/pkg/index.js';
import { renderBoxTable } from './tablewriter.js';

export { type BirdProtocolRow, BirdReplyError, parseBirdProtocolLine, parseBirdShowProtocols } from '../../confd/pkg/index.js';

export interface BgpPeer {
  peerAddress: string;
  /** `node-to-node mesh`, `global` or `node specific`. */
  peerType: string;
  state: string;
  since: string;
  info: string;
}

const PEER_NAME = /^(Global|Node|Mesh)_(.+)$/;
const PEER_TYPES: Record<string, string> = {
  Global: 'global',
  Mesh: 'node-to-node mesh',
  Node: 'node specific',
};

export interface PeerFilterOptions {
  /**
   * Drop peers whose name suffix is not an address of this family. calicoctl does not (each of
   * its BIRD daemons only knows one family); useful when one BIRD 2 daemon serves both.
   */
  strictFamily?: boolean;
  /** Cut BIRD 2's milliseconds (`22:52:34.493` → `22:52:34`) to BIRD 1.6's form. Default true. */
  trimSinceFraction?: boolean;
}

const V4_SUFFIX = /^\d{1,3}(?:_\d{1,3}){3}(?:_port_\d+)?$/;

/**
 * The peers calicoctl shows: BGP rows named `Global_…`, `Node_…` or `Mesh_…` that have an info
 * column (a row with fewer than six fields, e.g. a down peer without error text, is dropped);
 * the address is the name suffix with `_` → `.` (family 4) or `:` (family 6).
 */
export function bgpPeersFromRows(
  rows: readonly BirdProtocolRow[],
  family: 4 | 6,
  opts: PeerFilterOptions = {},
): BgpPeer[] {
  const peers: BgpPeer[] = [];
  for (const row of rows) {
    const f = fields([row.name, row.proto, row.table, row.state, row.since, row.info].join(' '));
    if (f.length < 6) continue;
    if (f[1] !== 'BGP') continue;
    const m = PEER_NAME.exec(f[0]!);
    if (!m) continue;
    if (opts.strictFamily && V4_SUFFIX.test(m[2]!) !== (family === 4)) continue;
    let since = f[4]!;
    if (opts.trimSinceFraction ?? true) since = since.replace(/^(\d{2}:\d{2}:\d{2})\.\d+$/, '$1');
    peers.push({
      peerAddress: m[2]!.split('_').join(family === 4 ? '.' : ':'),
      peerType: PEER_TYPES[m[1]!] ?? m[1]!,
      state: f[3]!,
      since,
      info: f.slice(5).join(' '),
    });
  }
  return peers;
}

/** The peer table alone (tablewriter layout; long INFO wraps at 30 columns). */
export function renderPeerTable(peers: readonly BgpPeer[]): string {
  return renderBoxTable(
    ['Peer address', 'Peer type', 'State', 'Since', 'Info'],
    peers.map((p) => [p.peerAddress, p.peerType, p.state, p.since, p.info]),
  );
}

/** What calicoctl found for one address family. */
export type FamilyStatus =
  | { running: false }
  | { running: true; peers: readonly BgpPeer[] }
  | { running: true; connectError: string };

export interface NodeStatusView {
  ipv4: FamilyStatus;
  ipv6: FamilyStatus;
}

function familySection(family: 4 | 6, status: FamilyStatus): string {
  if (!status.running) {
    return family === 4
      ? "\nINFO: BIRDv4 process: 'bird' is not running.\n"
      : "\nINFO: BIRDv6 process: 'bird6' is not running.\n";
  }
  const out = `\nIPv${family} BGP status\n`;
  if ('connectError' in status) {
    // calicoctl prints this without a newline of its own.
    return out + `Error querying BIRD: unable to connect to BIRDv${family} socket: ${status.connectError}`;
  }
  if (status.peers.length === 0) return out + `No IPv${family} peers found.\n`;
  return out + renderPeerTable(status.peers);
}

/**
 * The whole `calicoctl node status` text for a running Calico node (the caller reports
 * `Calico process is not running.` as an error itself): the running line, each family's
 * section, and the final blank line.
 */
export function renderNodeStatus(view: NodeStatusView): string {
  let out = 'Calico process is running.\n';
  if (!view.ipv4.running && !view.ipv6.running) {
    out += '\nThe BGP backend process (BIRD) is not running.\n';
  } else {
    out += familySection(4, view.ipv4) + familySection(6, view.ipv6);
  }
  return out + '\n';
}
