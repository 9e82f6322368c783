// BIRD's `show protocols` reply, parsed: used by the agent (BGP readiness, as calico-node's
// -bird-ready) and by `tortiectl node status`. Pure.

/** One row of BIRD's `show protocols` table. */
export interface BirdProtocolRow {
  name: string;
  proto: string;
  table: string;
  state: string;
  since: string;
  /** The rest of the line, whitespace-collapsed (e.g. `Established`, `Active Socket: Connection refused`). */
  info: string;
}

export class BirdReplyError extends Error {}

const EXPECTED_HEADINGS = ['name', 'proto', 'table', 'state', 'since', 'info'];

/** The whitespace-separated fields of a line. */
export function fields(line: string): string[] {
  return line.split(/\s+/).filter((f) => f.length > 0);
}

/** Splits one table line into its columns (missing trailing columns are empty strings). */
export function parseBirdProtocolLine(line: string): BirdProtocolRow {
  const f = fields(line);
  return {
    name: f[0] ?? '',
    proto: f[1] ?? '',
    table: f[2] ?? '',
    state: f[3] ?? '',
    since: f[4] ?? '',
    info: f.slice(5).join(' '),
  };
}

/**
 * Parses a BIRD control-socket reply to `show protocols`: `0001` banner, `2002-` header
 * (BIRD 1.6 `name proto table state since info` or BIRD 2 `Name Proto Table State Since Info`),
 * `1002-` first row, rows continued with a leading space, `0000` end (anything after it is
 * ignored). Any other line throws `unexpected output line from BIRD`; a different header throws
 * `unknown BIRD table output format`. Returns every protocol row, BGP or not.
 */
export function parseBirdShowProtocols(reply: string): BirdProtocolRow[] {
  const rows: BirdProtocolRow[] = [];
  const lines = reply.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  for (const raw of lines) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.startsWith('0000')) break;
    if (line.startsWith('0001')) continue;
    if (line.startsWith('2002')) {
      const got = fields(line.slice(5)).map((h) => h.toLowerCase());
      if (got.length !== EXPECTED_HEADINGS.length || got.some((h, i) => h !== EXPECTED_HEADINGS[i])) {
        throw new BirdReplyError('unknown BIRD table output format');
      }
    } else if (line.startsWith('1002')) {
      rows.push(parseBirdProtocolLine(line.slice(5)));
    } else if (line.startsWith(' ')) {
      rows.push(parseBirdProtocolLine(line.slice(1)));
    } else {
      throw new BirdReplyError('unexpected output line from BIRD');
    }
  }
  return rows;
}

/** A BGP session of BIRD's that is not Established, as calico-node's readiness names it. */
export interface DownPeer {
  name: string;
  state: string;
  info: string;
}

/**
 * The BGP protocols of a `show protocols` reply that are not Established (state `up` with info
 * `Established`); [] when every session is up (or there is none).
 */
export function bgpNotEstablished(rows: readonly BirdProtocolRow[]): DownPeer[] {
  return rows
    .filter((r) => r.proto === 'BGP' && !(r.state === 'up' && r.info.startsWith('Established')))
    .map((r) => ({ name: r.name, state: r.state, info: r.info }));
}
