// What the lab waits for before a command returns, so that when it returns the thing works:
// - a node is ready when its tortie-node says so on /readiness (the signal Kubernetes' readiness
//   probe uses too): datastore, start-up, CNI socket, routing (BGP sessions Established in BGP
//   modes, the overlay programmed in VXLAN modes) and policy all ready;
// - a pod is reachable when every other node has a route to its address: read from the node's
//   namespace's main table through /proc/<agent pid>/net/route, as the convergence benchmark does
//   (no process started per poll).
import { readFileSync } from 'node:fs';

/** One IPv4 route of a /proc/<pid>/net/route table. */
export interface ProcRoute {
  /** Destination network as a 32-bit number. */
  dst: number;
  prefixLen: number;
  /** RTF_REJECT: a blackhole or unreachable route (not a way to the destination). */
  reject: boolean;
}

/** /proc/net/route holds addresses as host-order (little-endian here) hex of the network bytes. */
function procHex(h: string): number {
  const v = parseInt(h, 16);
  return (((v & 255) << 24) | (((v >>> 8) & 255) << 16) | (((v >>> 16) & 255) << 8) | (v >>> 24)) >>> 0;
}

/** Parses the text of /proc/<pid>/net/route (header line first). */
export function parseProcRoutes(text: string): ProcRoute[] {
  const out: ProcRoute[] = [];
  for (const line of text.split('\n').slice(1)) {
    const f = line.split('\t');
    if (f.length < 8) continue;
    const mask = procHex(f[7]!);
    let len = 0;
    for (let m = mask; m !== 0; m = (m << 1) >>> 0) len++;
    out.push({ dst: procHex(f[1]!), prefixLen: len, reject: (parseInt(f[3]!, 16) & 0x0200) !== 0 });
  }
  return out;
}

export function ip4(s: string): number {
  return s.split('.').reduce((a, o) => a * 256 + Number(o), 0) >>> 0;
}

export function ip4s(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export function maskOf(bits: number): number {
  return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
}

/** The main table of the network namespace `pid` lives in; [] when the process is gone. */
export function procRoutes(pid: number): ProcRoute[] {
  try {
    return parseProcRoutes(readFileSync(`/proc/${pid}/net/route`, 'utf8'));
  } catch {
    return [];
  }
}

/**
 * Whether `routes` lead to `ip`: the longest matching route is a real one (not reject) and more
 * specific than a default route (a default route to the underlay does not reach a pod).
 */
export function routesTo(routes: readonly ProcRoute[], ip: string): boolean {
  const a = ip4(ip);
  let best: ProcRoute | undefined;
  for (const r of routes) {
    if (((a & maskOf(r.prefixLen)) >>> 0) !== r.dst) continue;
    if (!best || r.prefixLen > best.prefixLen) best = r;
  }
  return best !== undefined && best.prefixLen > 0 && !best.reject;
}

/** Reporters of a /readiness JSON answer that are not ready, as "name (detail)". */
export function notReadyReporters(body: string): string[] {
  try {
    const j = JSON.parse(body) as { reporters?: { name: string; reportsReady?: boolean; ready: boolean; detail?: string }[] };
    return (j.reporters ?? [])
      .filter((r) => r.reportsReady !== false && !r.ready)
      .map((r) => (r.detail ? `${r.name} (${r.detail})` : r.name));
  } catch {
    return [];
  }
}

/** Parses a duration such as 90s, 3m, 1m30s, 500ms or a bare number of seconds; null when invalid. */
export function parseDuration(text: string): number | null {
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let used = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    used += m[0].length;
  }
  return used === text.length && used > 0 ? total : null;
}
