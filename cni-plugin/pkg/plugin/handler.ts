// The CNI work that Calico's plugin does in-process, done here inside tortie-node: IPAM, pod
// wiring, the WorkloadEndpoint. ADD undoes everything it did when a step fails; DEL succeeds when
// things are already gone.
import type { AgentRequest, AgentResponse } from '../agentapi/protocol.js';
import { CniError, ErrCode } from '../skel/errors.js';
import type { InternalResult } from '../skel/result.js';
import { prevResultOf } from '../skel/result.js';
import { type Backend, UnavailableError } from '../../../libcalico-go/lib/backend/api.js';
import { workloadEndpointName } from '../../../libcalico-go/lib/apis/v3/index.js';
import type { Resource } from '../../../libcalico-go/lib/apis/v3/resource.js';
import { ResourceClient } from '../../../libcalico-go/lib/clientv3/resources.js';
import { AddressInUseError, type IPAM, IPAMError } from '../../../libcalico-go/lib/ipam/ipam.js';
import { parseIP } from '../../../libcalico-go/lib/net/ip.js';
import { parseIPAMOptions } from '../../ipamplugin/netconf.js';
import { ErrAddressInUse, ErrNoAddresses, goTimestamp, releaseStale } from '../../ipamplugin/plugin.js';
import { hostVethName } from '../naming/index.js';

/** Pod wiring in the node's network namespace (felix/dataplane/linux/podnet.ts). */
export interface PodDataplane {
  wirePod(spec: {
    netns: string;
    ifname: string;
    hostIfName: string;
    addresses: string[];
    mtu?: number;
  }): Promise<{ containerMac: string; hostMac: string; mtu: number }>;
  unwirePod(spec: { netns: string; ifname: string; hostIfName: string }): Promise<void>;
  checkPod(spec: { netns: string; ifname: string; hostIfName: string; addresses: string[] }): Promise<string[]>;
}

export interface HandlerDeps {
  store: Backend;
  ipam: IPAM;
  nodeName: string;
  dataplane: PodDataplane;
  /** Pod MTU when the configuration sets none (the agent's detection / MTU file). */
  defaultMTU: () => number;
  log: (level: 'info' | 'warning' | 'error', msg: string) => void;
  /**
   * Resolves once this node's policy covers every stored endpoint (the agent's policy pass), so
   * that ADD returns only when the new pod's policy is in the kernel (Calico's CNI can wait for
   * Felix the same way). Waited for at most `policyWaitMs`.
   */
  policyProgrammed?: () => Promise<void>;
  /** Default 5000. */
  policyWaitMs?: number;
}

interface Workload {
  orchestrator: 'k8s' | 'cni';
  namespace: string;
  pod?: string;
  wepName: string;
  hostIfName: string;
  handleId: string;
}

const SUPPORTED_IPAM = new Set(['tortie-ipam', 'calico-ipam']);

/**
 * Pod metadata a runtime without a Kubernetes API (tortie-lab) passes in CNI_ARGS, so that the
 * WorkloadEndpoint is complete when ADD writes it (Calico reads these from the pod object):
 *   K8S_POD_LABELS=k=v,k2=v2                       → metadata.labels
 *   K8S_POD_PORTS=name:port/PROTO,…                → spec.ports (named container ports)
 * Label keys and values cannot hold ',' or ';'; the WorkloadEndpoint validation checks the rest.
 */
function podLabels(req: AgentRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (req.args.K8S_POD_LABELS ?? '').split(',')) {
    if (item === '') continue;
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CniError(ErrCode.UnsupportedField, `invalid label ${JSON.stringify(item)} in CNI_ARGS K8S_POD_LABELS (want key=value)`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function podPorts(req: AgentRequest): { name: string; port: number; protocol: string }[] {
  return (req.args.K8S_POD_PORTS ?? '')
    .split(',')
    .filter((item) => item !== '')
    .map((item) => {
      const m = /^([^:]+):(\d{1,5})\/([A-Za-z]+)$/.exec(item);
      if (!m) throw new CniError(ErrCode.UnsupportedField, `invalid port ${JSON.stringify(item)} in CNI_ARGS K8S_POD_PORTS (want name:port/PROTO)`);
      return { name: m[1]!, port: Number(m[2]), protocol: m[3]!.toUpperCase() };
    });
}

function identify(req: AgentRequest, node: string): Workload {
  const ns = req.args.K8S_POD_NAMESPACE ?? '';
  const pod = req.args.K8S_POD_NAME ?? '';
  const k8s = ns !== '' && pod !== '';
  const named = workloadEndpointName({
    node,
    orchestrator: k8s ? 'k8s' : 'cni',
    pod: k8s ? pod : undefined,
    containerID: k8s ? undefined : req.containerId,
    endpoint: req.ifname,
  });
  if (!('name' in named)) {
    throw new CniError(ErrCode.UnsupportedField, `cannot name the workload endpoint: ${named.field} ${JSON.stringify(named.value)} ${named.problem}`);
  }
  return {
    orchestrator: k8s ? 'k8s' : 'cni',
    namespace: k8s ? ns : 'default',
    pod: k8s ? pod : undefined,
    wepName: named.name,
    hostIfName: hostVethName(k8s ? { namespace: ns, pod } : {}, req.containerId),
    handleId: `${String(req.config.name)}.${req.containerId}`,
  };
}

/** `policy.type` of the network configuration: "k8s" or "" (validated by the plugin's netconf). */
function policyType(config: Record<string, unknown>): string {
  const t = (config.policy as { type?: unknown } | undefined)?.type;
  return typeof t === 'string' ? t : '';
}

/**
 * The profiles of a new endpoint, as Calico's plugin gives them: with Kubernetes policy
 * (`policy.type: k8s`) the pod's namespace profile `kns.<ns>`; otherwise one profile named after
 * the network, which the plugin creates (allow all, label `<network>: ""`) when it is absent, so
 * that endpoints of a network without policy can talk.
 */
function profilesFor(w: Workload, config: Record<string, unknown>): string[] {
  if (policyType(config) === 'k8s' && w.pod) return [`kns.${w.namespace}`];
  return [String(config.name)];
}

function networkProfile(network: string): Resource {
  return {
    apiVersion: 'projectcalico.org/v3',
    kind: 'Profile',
    metadata: { name: network },
    spec: { ingress: [{ action: 'Allow' }], egress: [{ action: 'Allow' }], labelsToApply: { [network]: '' } },
  };
}

function ipamType(config: Record<string, unknown>): string {
  const t = (config.ipam as { type?: unknown } | undefined)?.type;
  if (typeof t !== 'string' || t === '') throw new CniError(ErrCode.InvalidNetworkConfig, 'ipam.type is required');
  if (!SUPPORTED_IPAM.has(t)) {
    throw new CniError(ErrCode.UnsupportedField, `ipam.type ${JSON.stringify(t)} is not supported: use "tortie-ipam"`);
  }
  return t;
}

function configMTU(config: Record<string, unknown>): number | undefined {
  const m = config.mtu;
  if (m === undefined || m === null || m === 0) return undefined;
  if (typeof m !== 'number' || !Number.isInteger(m) || m < 68 || m > 65535) {
    throw new CniError(ErrCode.UnsupportedField, `invalid mtu ${JSON.stringify(m)}: must be an integer from 68 to 65535`);
  }
  return m;
}

/** Maps library failures to CNI codes. */
function toCni(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof UnavailableError) return new CniError(ErrCode.TryAgainLater, `datastore unavailable: ${e.message}`);
  if (e instanceof AddressInUseError) return new CniError(ErrAddressInUse, e.message);
  if (e instanceof IPAMError) return new CniError(ErrNoAddresses, e.message);
  return new CniError(ErrCode.Internal, e instanceof Error ? e.message : String(e));
}

/** Serialises allocations on this node: no CAS retries between our own requests. */
function mutex(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return (fn) => {
    const run = tail.then(fn, fn);
    tail = run.catch(() => undefined);
    return run;
  };
}

export function makeCniHandler(deps: HandlerDeps): (req: AgentRequest) => Promise<AgentResponse> {
  const resources = new ResourceClient(deps.store);
  const serial = mutex();

  async function add(req: AgentRequest): Promise<InternalResult> {
    if (!req.netns) throw new CniError(ErrCode.InvalidEnvironment, 'required env variables [CNI_NETNS] missing');
    ipamType(req.config);
    const opts = parseIPAMOptions(req.config.ipam);
    const mtu = configMTU(req.config) ?? deps.defaultMTU();
    const w = identify(req, deps.nodeName);
    const labels = w.pod ? podLabels(req) : {};
    const ports = w.pod ? podPorts(req) : [];
    const profiles = profilesFor(w, req.config);
    const undo: (() => Promise<unknown>)[] = [];
    // Before anything that would need undoing: a profile that cannot be made fails the ADD cleanly.
    if (policyType(req.config) !== 'k8s') await ensureNetworkProfile(profiles[0]!);
    try {
      const attrs: Record<string, string> = { node: deps.nodeName, timestamp: goTimestamp(new Date()) };
      if (w.pod) Object.assign(attrs, { namespace: w.namespace, pod: w.pod });
      const requested = (req.args.IP ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      for (const ip of requested) {
        if (!parseIP(ip)) throw new CniError(ErrCode.UnsupportedField, `invalid IP ${JSON.stringify(ip)} in CNI_ARGS`);
      }
      undo.push(() => deps.ipam.releaseByHandle(w.handleId));
      const addrs = await serial(async () => {
        if (requested.length > 0) {
          const out: string[] = [];
          for (const ip of requested) out.push((await deps.ipam.assignIP({ ip, handleId: w.handleId, attrs, hostname: deps.nodeName })).ip);
          return out;
        }
        const r = await deps.ipam.autoAssign({
          handleId: w.handleId,
          attrs,
          hostname: deps.nodeName,
          num4: opts.assignIPv4 ? 1 : 0,
          num6: opts.assignIPv6 ? 1 : 0,
          ipv4Pools: opts.ipv4Pools,
          ipv6Pools: opts.ipv6Pools,
        });
        return [...r.ipv4, ...r.ipv6].map((a) => a.ip);
      });
      const cidrs = addrs.map((a) => (a.includes(':') ? `${a}/128` : `${a}/32`));
      // wirePod undoes its own partial work; once it succeeded, a later failure unwires.
      const wired = await deps.dataplane.wirePod({ netns: req.netns, ifname: req.ifname, hostIfName: w.hostIfName, addresses: cidrs, mtu });
      undo.push(() => deps.dataplane.unwirePod({ netns: req.netns, ifname: req.ifname, hostIfName: w.hostIfName }));
      const wep: Resource = {
        apiVersion: 'projectcalico.org/v3',
        kind: 'WorkloadEndpoint',
        metadata: { name: w.wepName, namespace: w.namespace, ...(Object.keys(labels).length > 0 ? { labels } : {}) },
        spec: {
          orchestrator: w.orchestrator,
          node: deps.nodeName,
          ...(w.pod ? { pod: w.pod } : { workload: req.containerId }),
          endpoint: req.ifname,
          containerID: req.containerId,
          interfaceName: w.hostIfName,
          mac: wired.containerMac,
          ipNetworks: cidrs,
          profiles,
          ...(ports.length > 0 ? { ports } : {}),
        },
      };
      await resources.apply(wep);
      await waitForPolicy(w.wepName);
      return {
        interfaces: [
          { name: w.hostIfName, mac: wired.hostMac },
          { name: req.ifname, mac: wired.containerMac, sandbox: req.netns, mtu: wired.mtu },
        ],
        ips: cidrs.map((address) => ({ address, interface: 1 })),
      };
    } catch (e) {
      for (const u of undo.reverse()) {
        await u().catch((ue) => deps.log('warning', `undo after failed ADD of ${req.containerId}: ${(ue as Error).message}`));
      }
      throw e;
    }
  }

  async function waitForPolicy(wepName: string): Promise<void> {
    if (!deps.policyProgrammed) return;
    const ms = deps.policyWaitMs ?? 5000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
    try {
      const r = await Promise.race([deps.policyProgrammed().then(() => 'done' as const), timeout]);
      if (r === 'timeout') deps.log('warning', `policy for ${wepName} not programmed within ${ms} ms; the pod may have no connectivity until it is`);
    } catch (e) {
      deps.log('warning', `policy for ${wepName} not programmed: ${(e as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The network's profile, created when absent (an existing one is the operator's: kept as it is). */
  async function ensureNetworkProfile(network: string): Promise<void> {
    if (await resources.get('Profile', network)) return;
    try {
      await resources.create(networkProfile(network));
      deps.log('info', `created profile ${network} (allow all) for the endpoints of network ${network}`);
    } catch (e) {
      if (!/already exists/.test((e as Error).message)) {
        throw new CniError(ErrCode.Internal, `cannot create the profile of network ${JSON.stringify(network)}: ${(e as Error).message}`);
      }
    }
  }

  async function del(req: AgentRequest): Promise<void> {
    const w = identify(req, deps.nodeName);
    // A datastore failure here stops the DEL before it removes anything (as Calico does).
    const wep = await resources.get('WorkloadEndpoint', w.wepName, w.namespace);
    const owned = wep && (wep.spec as { containerID?: string }).containerID === req.containerId;
    if (wep && !owned) {
      deps.log('info', `workload endpoint ${w.namespace}/${w.wepName} belongs to another container; keeping it`);
    }
    if (req.netns) await deps.dataplane.unwirePod({ netns: req.netns, ifname: req.ifname, hostIfName: w.hostIfName });
    await serial(() => deps.ipam.releaseByHandle(w.handleId));
    if (owned) {
      await resources.delete('WorkloadEndpoint', w.wepName, w.namespace, wep.metadata.resourceVersion).catch((e) => {
        if (!/does not exist/.test((e as Error).message)) throw e;
      });
    }
  }

  async function check(req: AgentRequest): Promise<void> {
    const prev = prevResultOf(req.config);
    if (!prev) throw new CniError(ErrCode.InvalidNetworkConfig, 'CHECK needs prevResult');
    const w = identify(req, deps.nodeName);
    const addresses = (prev.ips ?? []).map((i) => i.address);
    const problems = await deps.dataplane.checkPod({ netns: req.netns, ifname: req.ifname, hostIfName: w.hostIfName, addresses });
    for (const a of addresses) {
      const who = await deps.ipam.assignment(a.split('/')[0]);
      if (who?.handleId !== w.handleId) problems.push(`address ${a} is not allocated to ${w.handleId}`);
    }
    if (!(await resources.get('WorkloadEndpoint', w.wepName, w.namespace))) {
      problems.push(`workload endpoint ${w.namespace}/${w.wepName} is missing`);
    }
    if (problems.length) throw new CniError(ErrCode.Internal, `CHECK found ${problems.length} problem(s): ${problems.join('; ')}`);
  }

  async function status(): Promise<void> {
    try {
      await deps.store.revision();
    } catch (e) {
      throw new CniError(ErrCode.PluginNotAvailable, `tortie-node cannot reach its datastore: ${(e as Error).message}`);
    }
  }

  async function gc(req: AgentRequest): Promise<void> {
    if (!req.validAttachments) return;
    const errors = await releaseStale(deps.ipam, String(req.config.name), deps.nodeName, req.validAttachments);
    if (errors.length) throw new CniError(ErrNoAddresses, `GC could not release ${errors.length} handle(s)`, errors.join('; '));
  }

  return async (req) => {
    try {
      switch (req.command) {
        case 'ADD':
          return { ok: true, result: await add(req) };
        case 'DEL':
          await del(req);
          return { ok: true };
        case 'CHECK':
          await check(req);
          return { ok: true };
        case 'STATUS':
          await status();
          return { ok: true };
        case 'GC':
          await gc(req);
          return { ok: true };
        default:
          throw new CniError(ErrCode.InvalidEnvironment, `unknown command ${JSON.stringify(req.command)}`);
      }
    } catch (e) {
      const c = toCni(e);
      return { ok: false, code: c.code, msg: c.message, ...(c.details ? { details: c.details } : {}) };
    }
  };
}
