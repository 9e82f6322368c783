// `tortie-lab break N FAULT` / `tortie-lab heal N FAULT`: real faults in a running lab, each one
// a problem `tortiectl cluster check` must find, and its exact undoing. What was done is recorded
// in `<lab dir>/faults.json` so that heal undoes exactly that (and refuses a fault not broken).
//
//   ipip-env      restart one node's agent with CALICO_IPV4POOL_IPIP disagreeing with the pool
//                 (the seed's `Off` vs `ipipMode: Always`)
//   route-flap    a second node claims another node's block: a route to it on a `cali` veth
//                 interface, which its BIRD learns from the kernel and advertises (the seed's
//                 `via 10.0.0.12` then `via 10.0.0.13`)
//   restart-loop  SIGKILL one node's agent three times, restarting it each time (the seed's 79 restarts)
//   mtu           the underlay of one node shrinks: eth0's MTU −100, below the pods' MTU
//   odd-node      one node's agent runs with FELIX_DEFAULTENDPOINTTOHOSTACTION=Drop (all others Accept)
//   bgp-down      one node's BGP sessions cut: TCP 179 rejected by nftables in its namespace, the
//                 sessions reset so the peers notice at once
//   leak          an address allocated on one node for a handle no workload has
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAgentOverrides, writeAgentOverrides } from './agent-overrides.js';
import { type Log, nodeRestart } from './lab.js';
import { type LabState, mustReadState } from './state.js';
import { IP, pidAlive, run } from './sys.js';
import { type NodePlan, resolveNodeName } from './topology.js';

export const FAULTS = ['ipip-env', 'route-flap', 'restart-loop', 'mtu', 'odd-node', 'bgp-down', 'leak'] as const;
export type Fault = (typeof FAULTS)[number];

/** The `cluster check` finding kind each fault produces (and nothing else). */
export const FAULT_FINDING: Record<Fault, string> = {
  'ipip-env': 'pool-drift',
  'route-flap': 'routes',
  'restart-loop': 'restarts',
  mtu: 'mtu',
  'odd-node': 'odd-node',
  'bgp-down': 'bgp',
  leak: 'ipam',
};

const NODE = process.execPath;
const BIRDC = '/usr/sbin/birdc';
const NFT = '/usr/sbin/nft';
/** Not named tortie-*: an operator's table, which cluster check does not compare across nodes. */
const FAULT_TABLE = 'lab-fault-bgp';
const FAULT_LINK = 'califault0';
const LEAK_HANDLE = 'tortie-lab-fault-leak';
const FAULT_IPAM = new URL('./fault-ipam.js', import.meta.url).pathname;

type Record_ = { node: string } & Record<string, string | number>;

export function parseFault(s: string): Fault {
  if (!(FAULTS as readonly string[]).includes(s)) throw new Error(`unknown fault ${JSON.stringify(s)}; faults: ${FAULTS.join(', ')}`);
  return s as Fault;
}

const recordsPath = (s: LabState) => join(s.dir, 'faults.json');
function readRecords(s: LabState): Partial<Record<Fault, Record_>> {
  return existsSync(recordsPath(s)) ? (JSON.parse(readFileSync(recordsPath(s), 'utf8')) as Partial<Record<Fault, Record_>>) : {};
}
function writeRecords(s: LabState, r: Partial<Record<Fault, Record_>>): void {
  if (Object.keys(r).length === 0) rmSync(recordsPath(s), { force: true });
  else writeFileSync(recordsPath(s), JSON.stringify(r, null, 2) + '\n');
}

const nodeDir = (s: LabState, n: NodePlan) => join(s.dir, 'nodes', n.name);

function pickNode(s: LabState, want: string | undefined): NodePlan {
  if (want === undefined) return s.plan.nodes[s.plan.nodes.length - 1]!;
  const n = resolveNodeName(s.plan, want);
  if (!n) throw new Error(`no node ${JSON.stringify(want)} in lab ${s.name} (nodes: ${s.plan.nodes.map((x) => x.name).join(', ')})`);
  return n;
}

async function inNode(n: NodePlan, argv: string[], input?: string): Promise<string> {
  const r = await run([IP, 'netns', 'exec', n.ns, ...argv], { input, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  if (r.code !== 0) throw new Error(`${argv.join(' ')} in ${n.ns} failed: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

async function birdc(s: LabState, n: NodePlan, ...cmd: string[]): Promise<string> {
  return inNode(n, [BIRDC, '-s', join(nodeDir(s, n), 'run', 'bird.ctl'), ...cmd]);
}

async function setOverride(lab: string, s: LabState, n: NodePlan, key: string, value: string | undefined, log: Log): Promise<void> {
  const env = readAgentOverrides(nodeDir(s, n));
  if (value === undefined) delete env[key];
  else env[key] = value;
  writeAgentOverrides(nodeDir(s, n), env);
  await nodeRestart(lab, n.name, log);
}

function datastoreRun(s: LabState, args: string[]): string[] {
  const argv = [NODE, FAULT_IPAM, ...args];
  return s.plan.etcdNs ? [IP, 'netns', 'exec', s.plan.etcdNs, ...argv] : argv;
}

async function faultIpam(s: LabState, args: string[]): Promise<string> {
  const env: NodeJS.ProcessEnv =
    s.datastore.type === 'embedded'
      ? { DATASTORE_TYPE: 'embedded', DATASTORE_PATH: s.datastore.path! }
      : { DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: s.datastore.endpoints! };
  const r = await run(datastoreRun(s, args), { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...env } });
  if (r.code !== 0) throw new Error(`fault-ipam ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** Blocks and the node each is affine to, from the nodes' kernels (the blackholes BIRD programs). */
async function ownedBlocks(s: LabState): Promise<{ node: NodePlan; block: string }[]> {
  const out: { node: NodePlan; block: string }[] = [];
  for (const n of s.plan.nodes) {
    const routes = JSON.parse(await inNode(n, [IP, '-j', '-4', 'route', 'show', 'type', 'blackhole'])) as { dst: string }[];
    for (const r of routes) out.push({ node: n, block: r.dst });
  }
  return out;
}

async function underlayMtu(n: NodePlan): Promise<number> {
  const [link] = JSON.parse(await inNode(n, [IP, '-j', 'link', 'show', 'dev', 'eth0'])) as { mtu: number }[];
  return link!.mtu;
}

/** Injects FAULT into the running lab; returns a one-line description of what was done. */
export async function breakFault(lab: string, fault: Fault, opts: { node?: string }, log: Log): Promise<string> {
  const s = mustReadState(lab);
  if (s.status !== 'up') throw new Error(`lab ${lab} is not up (${s.status})`);
  const records = readRecords(s);
  if (records[fault]) throw new Error(`fault ${fault} is already broken in lab ${lab} (on ${records[fault]!.node}); heal it first`);
  const n = pickNode(s, opts.node);
  let rec: Record_ = { node: n.name };
  let what: string;
  switch (fault) {
    case 'ipip-env': {
      const value = s.plan.pool.ipipMode === 'Never' ? 'Always' : 'Off';
      await setOverride(lab, s, n, 'CALICO_IPV4POOL_IPIP', value, log);
      what = `${n.name}: tortie-node restarted with CALICO_IPV4POOL_IPIP=${value} (pool ${s.plan.pool.name} has ipipMode ${s.plan.pool.ipipMode})`;
      break;
    }
    case 'odd-node': {
      await setOverride(lab, s, n, 'FELIX_DEFAULTENDPOINTTOHOSTACTION', 'Drop', log);
      what = `${n.name}: tortie-node restarted with FELIX_DEFAULTENDPOINTTOHOSTACTION=Drop (the other nodes: Accept)`;
      break;
    }
    case 'restart-loop': {
      for (let i = 1; i <= 3; i++) {
        const st = mustReadState(lab);
        const p = st.processes.find((x) => x.role === `agent:${n.name}`);
        if (p && pidAlive(p.pid, p.startTime)) {
          process.kill(p.pid, 'SIGKILL');
          const deadline = Date.now() + 10_000;
          while (pidAlive(p.pid, p.startTime) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        }
        await nodeRestart(lab, n.name, () => undefined);
      }
      what = `${n.name}: tortie-node killed (SIGKILL) and restarted 3 times`;
      break;
    }
    case 'mtu': {
      const mtu = await underlayMtu(n);
      await inNode(n, [IP, 'link', 'set', 'dev', 'eth0', 'mtu', String(mtu - 100)]);
      rec = { ...rec, mtu };
      what = `${n.name}: eth0 MTU ${mtu} → ${mtu - 100}`;
      break;
    }
    case 'bgp-down': {
      // Close the sessions (the peers get a Cease at once), then keep TCP 179 shut both ways.
      await birdc(s, n, 'disable', '"Mesh_*"');
      const reject = 'tcp dport 179 reject with tcp reset; tcp sport 179 reject with tcp reset';
      await inNode(n, [NFT, '-f', '-'], `table inet ${FAULT_TABLE} {\n chain in { type filter hook input priority -300; ${reject}; }\n chain out { type filter hook output priority -300; ${reject}; }\n}\n`);
      await birdc(s, n, 'enable', '"Mesh_*"');
      what = `${n.name}: BGP sessions reset and TCP 179 rejected (nftables table inet ${FAULT_TABLE} in ${n.ns})`;
      break;
    }
    case 'route-flap': {
      const blocks = await ownedBlocks(s);
      const victim = blocks.find((b) => b.node.name !== n.name);
      if (!victim) throw new Error(`route-flap needs a block affine to a node other than ${n.name}: add a pod on another node first`);
      // A veth pair inside the node (this kernel may have no dummy links); both ends up.
      await inNode(n, [IP, 'link', 'add', FAULT_LINK, 'type', 'veth', 'peer', 'name', `${FAULT_LINK}p`]);
      await inNode(n, [IP, 'link', 'set', `${FAULT_LINK}p`, 'up']);
      await inNode(n, [IP, 'link', 'set', FAULT_LINK, 'up']);
      await inNode(n, [IP, 'route', 'add', victim.block, 'dev', FAULT_LINK, 'metric', '1']);
      rec = { ...rec, block: victim.block, owner: victim.node.name };
      what = `${n.name}: route ${victim.block} dev ${FAULT_LINK} (a block of ${victim.node.name}); its BIRD learns and advertises it`;
      break;
    }
    case 'leak': {
      const ip = await faultIpam(s, ['assign', LEAK_HANDLE, n.name]);
      rec = { ...rec, ip };
      what = `${n.name}: ${ip} allocated for handle ${LEAK_HANDLE}, used by no workload`;
      break;
    }
  }
  writeRecords(s, { ...readRecords(s), [fault]: rec });
  log(`broke ${fault}: ${what}`);
  return what;
}

/** Undoes what breakFault did for FAULT. */
export async function healFault(lab: string, fault: Fault, log: Log): Promise<string> {
  const s = mustReadState(lab);
  const records = readRecords(s);
  const rec = records[fault];
  if (!rec) throw new Error(`fault ${fault} is not broken in lab ${lab}`);
  const n = pickNode(s, rec.node);
  let what: string;
  switch (fault) {
    case 'ipip-env':
      await setOverride(lab, s, n, 'CALICO_IPV4POOL_IPIP', undefined, log);
      what = `${n.name}: tortie-node restarted with the lab's CALICO_IPV4POOL_IPIP`;
      break;
    case 'odd-node':
      await setOverride(lab, s, n, 'FELIX_DEFAULTENDPOINTTOHOSTACTION', undefined, log);
      what = `${n.name}: tortie-node restarted without FELIX_DEFAULTENDPOINTTOHOSTACTION`;
      break;
    case 'restart-loop': {
      // The kills cannot be undone: the agent is left running (started if it is not), and the
      // restarts age out of cluster check's --window.
      const p = s.processes.find((x) => x.role === `agent:${n.name}`);
      if (!p || !pidAlive(p.pid, p.startTime)) await nodeRestart(lab, n.name, log);
      what = `${n.name}: no more kills; tortie-node running`;
      break;
    }
    case 'mtu':
      await inNode(n, [IP, 'link', 'set', 'dev', 'eth0', 'mtu', String(rec.mtu)]);
      what = `${n.name}: eth0 MTU back to ${rec.mtu}`;
      break;
    case 'bgp-down':
      await inNode(n, [NFT, 'delete', 'table', 'inet', FAULT_TABLE]);
      // Reconnect now rather than after BIRD's error wait.
      await birdc(s, n, 'restart', '"Mesh_*"');
      what = `${n.name}: nftables table inet ${FAULT_TABLE} deleted, BGP sessions restarted`;
      break;
    case 'route-flap':
      await inNode(n, [IP, 'link', 'del', FAULT_LINK]);
      what = `${n.name}: ${FAULT_LINK} and its route to ${rec.block} removed`;
      break;
    case 'leak': {
      const released = await faultIpam(s, ['release', LEAK_HANDLE]);
      what = `${n.name}: released ${released || '(nothing)'} of handle ${LEAK_HANDLE}`;
      break;
    }
  }
  delete records[fault];
  writeRecords(s, records);
  log(`healed ${fault}: ${what}`);
  return what;
}
