// BIRD 2 configuration of one node, rendered from its BgpModel: the counterpart of calico-node's
// confd templates (bird.cfg + bird_aggr.cfg + bird_ipam.cfg, and bird6*.cfg), written for
// upstream BIRD 2 (one daemon, IPv4 and — when the node has an IPv6 address — IPv6 channels).
//
// What it sets up (see the reference §5 and bird2.md):
// * `router id`; `protocol device`; `protocol direct` for interface routes (needed to resolve
//   BGP next hops) on every interface but workload (`cali*`), kube-proxy (`kube-ipvs*`), tunnel
//   (`tunl0`, `vxlan*.calico`), WireGuard ones and BGPConfiguration ignoredInterfaces.
// * `protocol static` with a blackhole per affine block (and per advertised service CIDR).
// * `protocol kernel` per family: exports BGP-learned routes into the main table (ECMP with
//   `merge paths`, `graceful restart`, routes kept when BIRD stops with `persist`), never the
//   static blackholes (unless asked), never service CIDRs, and no route of an encapsulated pool:
//   upstream BIRD cannot route through tunl0/vxlan.calico `onlink`, so the agent programs those
//   (as Calico ≥ 3.31 has Felix do for IPIP); `programClusterRoutes: Disabled` leaves every pool
//   route to the agent. From the kernel it learns, inside the pools, only routes to workload
//   interfaces (addresses borrowed from another node's block: they are advertised) and, outside
//   them, everything (default and underlay routes, to resolve BGP next hops; never advertised).
// * Export to BGP peers: pools with disableBGPExport first (rejected), then this node's blocks as
//   whole blocks (never a route inside them), service CIDRs, then any route inside a pool (borrowed
//   addresses, routes reflected by a route reflector); everything else is rejected.
// * One `protocol bgp` per peer, named as Calico names them (names.ts), from a template holding
//   Calico's timers; per peer `neighbor <ip> [port <n>] as <asn>`, `source address`, `passive on`,
//   `password`, `rr client` + `rr cluster id`, `next hop self|keep` (BIRD 2: channel options), etc.
// The output is deterministic: the same model gives the same text, byte for byte.

import { formatCIDR, parseCIDR, type IPVersion } from '../../libcalico-go/lib/net/ip.js';
import type { BgpModel, PeerModel, PoolModel } from './model.js';
import { BGP_PORT } from './names.js';

export interface BirdPaths {
  /** Directory of the control socket (named in the header; BIRD takes it with `-s`). */
  socketDir: string;
  /** Control socket file name; default `bird.ctl`. */
  socketName?: string;
  /** Log to this file instead of stderr. */
  logFile?: string;
}

export interface RenderOptions {
  /** Also install the blocks' blackhole routes in the kernel (`blackhole <block> proto bird`, as
   *  released Calico does). Default false: the agent owns them. */
  exportBlackholesToKernel?: boolean;
}

export class BirdConfigError extends Error {}

/** The control socket path for these paths. */
export function socketPath(paths: BirdPaths): string {
  return `${paths.socketDir.replace(/\/+$/, '')}/${paths.socketName ?? 'bird.ctl'}`;
}

/** `bird` arguments to run the daemon in the foreground on `configFile` with these paths. */
export function birdArgs(configFile: string, paths: BirdPaths, pidFile?: string): string[] {
  const args = ['-f', '-c', configFile, '-s', socketPath(paths)];
  if (pidFile) args.push('-P', pidFile);
  return args;
}

/** Text inside a comment: printable ASCII only, on one line. */
function c(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

function quoted(s: string, what: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/["\\\u0000-\u001f\u007f]/.test(s)) throw new BirdConfigError(`${what} ${JSON.stringify(s)} cannot be written in BIRD's configuration`);
  return `"${s}"`;
}

function cidr(s: string): string {
  const p = parseCIDR(s);
  if (!p) throw new BirdConfigError(`not a CIDR: ${JSON.stringify(s)}`);
  return formatCIDR(p);
}

function familyOf(s: string): IPVersion {
  return s.includes(':') ? 6 : 4;
}

const LOG_CLASSES: Record<string, string> = {
  Trace: 'all',
  Debug: 'all',
  Info: '{ info, remote, warning, error, auth, fatal, bug }',
  Warning: '{ warning, error, auth, fatal, bug }',
  Error: '{ error, auth, fatal, bug }',
  Fatal: '{ fatal, bug }',
};

function encapText(p: PoolModel): string {
  if (p.vxlanMode !== 'Never') return `VXLAN ${p.vxlanMode}`;
  if (p.ipipMode !== 'Never') return `IPIP ${p.ipipMode}`;
  return 'no encapsulation';
}

function poolLabel(p: PoolModel): string {
  return `IP pool ${c(p.name)} (${p.cidr}, ${encapText(p)})`;
}

function familySections(model: BgpModel, f: IPVersion, opts: RenderOptions): string[] {
  const v = `v${f}`;
  const blocks = model.blocks.filter((b) => familyOf(b) === f).map(cidr);
  const services = model.serviceCidrs.filter((s) => familyOf(s) === f).map(cidr);
  const pools = model.pools.filter((p) => p.family === f);
  const out: string[] = [];

  // Blocks.
  out.push(`# This node's blocks (IPv${f}): each is advertised as a whole, never a route inside it.`);
  out.push(`function tortie_aggr_${v}()`, '{');
  if (blocks.length === 0) out.push('  # No blocks are affine to this node.');
  for (const b of blocks) {
    out.push(`  # Block ${b}`, `  if ( net = ${b} ) then { accept; }`, `  if ( net ~ ${b} ) then { reject; }`);
  }
  out.push('}', '');

  // Export to BGP peers.
  out.push(`# What this node advertises to its BGP peers (IPv${f}).`);
  out.push(`function tortie_export_to_bgp_peers_${v}()`, '{');
  for (const p of pools.filter((p) => p.disableBGPExport)) {
    out.push(`  # ${poolLabel(p)} has disableBGPExport: never advertised`, `  if ( net ~ ${cidr(p.cidr)} ) then { reject; }`);
  }
  out.push(`  tortie_aggr_${v}();`);
  for (const s of services) out.push(`  # Service CIDR ${s}`, `  if ( net = ${s} ) then { accept; }`);
  for (const p of pools.filter((p) => !p.disableBGPExport)) {
    out.push(`  # ${poolLabel(p)}: borrowed addresses and reflected routes`, `  if ( net ~ ${cidr(p.cidr)} ) then { accept; }`);
  }
  out.push('}', '');
  out.push(`filter tortie_bgp_export_${v}`, '{', `  tortie_export_to_bgp_peers_${v}();`, '  reject;', '}', '');

  // Kernel: what is learned and what is programmed.
  out.push(`# Routes learned from the kernel (IPv${f}). Inside a pool, only routes to workload interfaces:`);
  out.push(`# addresses borrowed from other nodes' blocks, which are then advertised (the agent's routes to`);
  out.push(`# other nodes' blocks and its blackholes are not). Any other route (default route, underlay`);
  out.push(`# subnets) is learned only so that BGP next hops resolve through it; it is never advertised.`);
  out.push(`filter tortie_kernel_learn_${v}`, '{');
  if (pools.length > 0) {
    out.push(`  if ( net ~ [ ${pools.map((p) => `${cidr(p.cidr)}+`).join(', ')} ] ) then {`);
    out.push('    if ( ifname ~ "cali*" ) then { accept; }', '    reject;', '  }');
  }
  out.push('  accept;', '}', '');

  out.push(`# Routes programmed into the kernel (IPv${f}).`);
  out.push(`filter tortie_kernel_programming_${v}`, '{');
  if (opts.exportBlackholesToKernel) {
    for (const b of blocks) out.push(`  if ( source = RTS_STATIC && net = ${b} ) then { accept; } # blackhole for block ${b}`);
  }
  out.push('  # Only routes learned from BGP peers; this node\'s own blackholes stay in BIRD.', '  if ( source != RTS_BGP ) then { reject; }');
  for (const s of services) out.push(`  # Service CIDR ${s}: advertised, never programmed`, `  if ( net ~ ${s} ) then { reject; }`);
  for (const p of pools) {
    const pc = cidr(p.cidr);
    if (model.programClusterRoutes === 'Disabled') {
      out.push(`  # ${poolLabel(p)}: programClusterRoutes is Disabled, the agent programs these`, `  if ( net ~ ${pc} ) then { reject; }`);
    } else if (p.vxlanMode !== 'Never' || p.ipipMode !== 'Never') {
      const dev = p.vxlanMode !== 'Never' ? (f === 4 ? 'vxlan.calico' : 'vxlan-v6.calico') : 'tunl0';
      out.push(`  # ${poolLabel(p)}: the agent programs these (via ${dev} onlink, which BIRD 2 cannot)`, `  if ( net ~ ${pc} ) then { reject; }`);
    } else {
      out.push(`  # ${poolLabel(p)}`, `  if ( net ~ ${pc} ) then { accept; }`);
    }
  }
  out.push('  accept;', '}', '');
  return out;
}

function peerLines(model: BgpModel, p: PeerModel): string[] {
  const out: string[] = [];
  const who = p.peerNode ? `node ${c(p.peerNode)}` : 'peer';
  out.push(`# ${p.type === 'mesh' ? `For ${who} (${p.address})` : `${c(p.origin)}: ${who} ${p.address}`}`);
  out.push(`protocol bgp ${p.name} from bgp_peer_v${p.family} {`);
  out.push(`  neighbor ${p.address}${p.port !== undefined && p.port !== BGP_PORT ? ` port ${p.port}` : ''} as ${p.asNumber};`);
  if (p.localAsNumber !== undefined) out.push(`  local as ${p.localAsNumber};`);
  const source = p.sourceAddress ?? (model.bindMode === 'NodeIP' ? (p.family === 4 ? model.ipv4?.address : model.ipv6?.address) : undefined);
  if (source) out.push(`  source address ${source};`);
  if (model.bindMode === 'NodeIP' && source) out.push('  strict bind on;');
  if (p.type !== 'mesh') {
    out.push(p.ttlSecurity !== undefined ? `  ttl security on;` : '  ttl security off;');
    out.push(p.ttlSecurity !== undefined ? `  multihop ${p.ttlSecurity};` : '  multihop;');
  }
  if (p.password !== undefined) out.push(`  password ${quoted(p.password, 'password of ' + p.name)};`);
  if (p.rrClient) {
    if (!model.routeReflectorClusterId) throw new BirdConfigError(`${p.name}: rr client without a route reflector cluster ID`);
    out.push('  rr client;', `  rr cluster id ${model.routeReflectorClusterId};`);
  }
  if (p.gracefulRestartTime !== undefined) out.push(`  graceful restart time ${Math.min(p.gracefulRestartTime, 4095)};`);
  if (p.keepaliveTime !== undefined) out.push(`  keepalive time ${Math.min(Math.max(p.keepaliveTime, 1), 65535)};`);
  if (p.allowLocalAs !== undefined) out.push(`  allow local as ${p.allowLocalAs};`);
  if (p.nextHop) out.push(`  ipv${p.family} { next hop ${p.nextHop}; };`);
  if (p.passive) out.push(`  passive on; # ${p.type === 'mesh' ? 'Mesh is unidirectional' : 'Two-sided peering'}: the peer, whose address is greater, connects to us.`);
  out.push('}', '');
  return out;
}

/** The whole BIRD 2 configuration of the node described by `model`. */
export function renderBirdConfig(model: BgpModel, paths: BirdPaths, opts: RenderOptions = {}): string {
  const families = ([4, 6] as const).filter((f) => (f === 4 ? model.ipv4 : model.ipv6));
  const o: string[] = [];
  o.push(`# BIRD 2 configuration of node ${c(model.nodeName)}, generated by Tortie's confd from the datastore`);
  o.push('# (Node, BGPConfiguration, BGPPeer, IPPool and the node\'s IPAM blocks). Do not edit: it is');
  o.push('# rewritten whenever one of those changes.');
  o.push(`# Control socket: ${c(socketPath(paths))}`);
  o.push(`# AS ${model.asNumber}${model.asNumberSource === 'node' ? '' : ' (inherited)'}; families: ${families.map((f) => `IPv${f}`).join(', ')}`);
  o.push('');
  const classes = LOG_CLASSES[model.logSeverity] ?? LOG_CLASSES.Info;
  o.push(paths.logFile ? `log ${quoted(paths.logFile, 'log file')} ${classes};` : `log stderr ${classes};`);
  o.push(`router id ${model.routerId};`, '');

  o.push('# ------------- Filters -------------', '');
  for (const f of families) o.push(...familySections(model, f, opts));

  o.push('# ------------- Interfaces, kernel, blocks -------------', '');
  o.push('protocol device device1 {', '  scan time 2;', '}', '');
  const ifaces = [...model.ignoredInterfaces, 'cali*', 'kube-ipvs*', 'tunl0', 'vxlan*.calico', 'wireguard.cali', 'wg-v6.cali'];
  o.push('# Interface routes: BGP next hops are resolved through them (gateway recursive).');
  o.push('protocol direct direct1 {');
  for (const f of families) o.push(`  ipv${f};`);
  o.push(`  interface ${ifaces.map((i) => `-${quoted(i, 'interface pattern')}`).join(', ')}, "*";`);
  o.push('}', '');
  for (const f of families) {
    const v = `v${f}`;
    o.push(`protocol kernel kernel${f} {`);
    o.push(`  ipv${f} {`, `    import filter tortie_kernel_learn_${v};`, `    export filter tortie_kernel_programming_${v};`, '  };');
    o.push('  learn;', '  persist;', '  scan time 2;', '  merge paths on;', '  graceful restart;', '}', '');
    const blocks = model.blocks.filter((b) => familyOf(b) === f).map(cidr);
    const services = model.serviceCidrs.filter((s) => familyOf(s) === f).map(cidr);
    o.push(`protocol static static${f} {`, `  ipv${f};`);
    if (blocks.length + services.length === 0) o.push('  # No IP blocks or static routes for this host.');
    if (blocks.length > 0) o.push('  # IP blocks for this host.');
    for (const b of blocks) o.push(`  route ${b} blackhole;`);
    if (services.length > 0) o.push('  # Service CIDRs advertised from this host.');
    for (const s of services) o.push(`  route ${s} blackhole;`);
    o.push('}', '');
  }

  o.push('# ------------- BGP -------------', '');
  o.push('template bgp bgp_template {');
  o.push(model.logSeverity === 'Debug' || model.logSeverity === 'Trace' ? '  debug all;' : '  debug { states };');
  o.push('  description "Connection to BGP peer";', `  local as ${model.asNumber};`);
  if (model.listenPort !== BGP_PORT) o.push(`  local port ${model.listenPort};`);
  o.push('  graceful restart;', '  connect delay time 2;', '  connect retry time 5;', '  error wait time 5, 30;', '}', '');
  for (const f of families) {
    o.push(`template bgp bgp_peer_v${f} from bgp_template {`);
    o.push(`  ipv${f} {`, '    gateway recursive;', '    add paths on;', '    import all;', `    export filter tortie_bgp_export_v${f};`, '  };', '}', '');
  }

  const sections: [PeerModel['type'], string, string][] = [
    ['mesh', '# ------------- Node-to-node mesh -------------', ''],
    ['global', '# ------------- Global peers -------------', '# No global peers configured.'],
    ['node', '# ------------- Node-specific peers -------------', '# No node-specific peers configured.'],
  ];
  for (const [type, title, none] of sections) {
    const list = model.peers.filter((p) => p.type === type && families.includes(p.family));
    const head = [title];
    if (type === 'mesh' && list.length === 0) {
      head.push(
        !model.meshEnabled
          ? '# Node-to-node mesh disabled'
          : model.routeReflectorClusterId
            ? `# This node is a route reflector (cluster ID ${model.routeReflectorClusterId}): not in the node-to-node mesh.`
            : '# No other nodes to peer with.',
      );
    } else if (type === 'mesh') {
      if (model.ipv4) head.push(`# Skipping ourselves (${model.ipv4.address})`);
      if (model.ipv6) head.push(`# Skipping ourselves (${model.ipv6.address})`);
    } else if (list.length === 0) head.push(none);
    o.push(...head, '');
    for (const p of list) o.push(...peerLines(model, p));
  }
  while (o.length > 0 && o[o.length - 1] === '') o.pop();
  return o.join('\n') + '\n';
}
