// The CNI work that Calico's plugin does in-process, done here inside tortie-node: IPAM, pod
// wiring, the WorkloadEndpoint. ADD undoes everything it did when a step fails; DEL succeeds when
// things are already gone.
//
// Ordering and cancellation (a kubelet re-creates sandboxes and gives up on slow ADDs):
// - every ADD / DEL / CHECK / GC runs under a lock of its container ID and of its workload endpoint
//   (for a pod: namespace/pod, shared by all its sandboxes), so requests for one container, and for
//   two sandboxes of one pod, run one after another in arrival order; other pods run concurrently.
//   A DEL arriving while its container's ADD runs waits for it, then removes everything;
// - the request carries the plugin's life (an AbortSignal from the socket): when the plugin has gone,
//   ADD stops before its next side effect and undoes what it did, also when everything was done but
//   the answer could no longer be given (the runtime never learnt the address). DEL always finishes:
//   removing is safe to complete and the runtime retries it anyway.
// Ownership (Calico's rules): a pod's host veth and WorkloadEndpoint are named after the pod, not the
// container. ADD for a pod whose endpoint belongs to another container replaces it (new addresses
// under the new container's handle, the host veth re-created, the endpoint rewritten with the new
// container ID); the old container's addresses stay allocated until its own DEL. DEL of a container
// that does not own the endpoint releases only its own handle and cleans only inside its own netns:
// never the live sandbox's host veth, routes or endpoint.
// Order of removal: kernel state, then the endpoint, then the addresses last, so that a crash in
// between can leak an address (found by `tortiectl ipam check`) but never hand it out twice.
import type { AgentRequest, AgentResponse } from '../agentapi/protocol.js';
import { CniError, ErrCode } from '../skel/errors.js';
import type { InternalResult } from '../skel/result.js';
import { prevResultOf } from '../skel/result.js';
import { type Backend, UnavailableError } from '../../../libcalico-go/lib/backend/api.js';
import { workloadEndpointName } from '../../../libcalico-go/lib/apis/v3/index.js';
import type { Resource } from '../../../libcalico-go/lib/apis/v3/resource.js';
import { ResourceClient } from '../../../libcalico-go/lib/clientv3/resources.js';
import { AddressInUseError, type IPAM, IPAMError } from '../../../libcalico-go/lib/ipam/ipam.js';
import { formatIP, parseIP } from '../../../libcalico-go/lib/net/ip.js';
import { parseIPAMOptions } from '../../ipamplugin/netconf.js';
import { ErrAddressInUse, ErrNoAddresses, goTimestamp } from '../../ipamplugin/plugin.js';
import { DEFAULT_VETH_PREFIX, hostVethName } from '../naming/index.js';
import { type TortieNetConf, parseNetConf } from '../netconf/index.js';
import { type IpamAnnotations, ipamAnnotations } from './annotations.js';
import { execIpam } from './delegate.js';
import { KeyedLock } from './keyed-lock.js';

/** Pod wiring in the node's network namespace (felix/dataplane/linux/podnet.ts). */
export interface PodDataplane {
  wirePod(spec: {
    netns: string;
    ifname: string;
    hostIfName: string;
    addresses: string[];
    mtu?: number;
    numQueues?: number;
    allowIpForwarding?: boolean;
  }): Promise<{ containerMac: string; hostMac: string; mtu: number }>;
  /** `hostSide: false`: clean only inside the netns, never the host veth (another sandbox's now). */
  unwirePod(spec: { netns: string; ifname: string; hostIfName: string; hostSide?: boolean }): Promise<void>;
  checkPod(spec: { netns: string; ifname: string; hostIfName: string; addresses: string[] }): Promise<string[]>;
}

export interface HandlerDeps {
  store: Backend;
  ipam: IPAM;
  nodeName: string;
  dataplane: PodDataplane;
  /** Pod MTU when the configuration sets none and there is no MTU file (the agent's detection). */
  defaultMTU: () => number;
  /** The MTU file's value (Calico's /var/lib/calico/mtu), undefined when it is missing. */
  mtuFile?: () => number | undefined;
  /** Host-side interface prefix (FELIX_INTERFACEPREFIX's first entry); default "cali". */
  vethPrefix?: string;
  log: (level: 'info' | 'warning' | 'error', msg: string) => void;
  /**
   * Resolves once this node's policy covers every stored endpoint (the agent's policy pass), so
   * that ADD returns only when the new pod's policy is in the kernel (Calico's CNI can wait for
   * Felix the same way). Waited for at most `policyWaitMs`.
   */
  policyProgrammed?: () => Promise<void>;
  /**
   * Default 10000. When the policy pass has not covered the new pod by then, ADD fails with code 11
   * (try again later) and is undone: a pod never starts without its policy.
   */
  policyWaitMs?: number;
  /**
   * The annotations of a pod and of its namespace (the Kubernetes datastore): Calico's
   * cni.projectcalico.org/ipv4pools, ipv6pools, ipAddrs and ipAddrsNoIpam are honoured on ADD.
   * Absent: annotations are not read (other datastores have no pods).
   */
  podAnnotations?: (namespace: string, pod: string) => Promise<{ pod: Record<string, string>; namespace: Record<string, string> }>;
}

interface Workload {
  orchestrator: 'k8s' | 'cni';
  namespace: string;
  pod?: string;
  wepName: string;
  hostIfName: string;
  handleId: string;
}


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

function identify(req: AgentRequest, node: string, prefix: string): Workload {
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
    hostIfName: vethName(k8s ? { namespace: ns, pod } : {}, req.containerId, prefix),
    handleId: `${String(req.config.name)}.${req.containerId}`,
  };
}

function vethName(id: { namespace?: string; pod?: string }, containerId: string, prefix: string): string {
  try {
    return hostVethName(id, containerId, prefix);
  } catch (e) {
    throw new CniError(ErrCode.InvalidEnvironment, `cannot name the host interface: ${(e as Error).message}`);
  }
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

/** Maps library failures to CNI codes. */
function toCni(e: unknown): CniError {
  if (e instanceof CniError) return e;
  if (e instanceof Error && e.name === 'PluginGoneError') {
    return new CniError(ErrCode.TryAgainLater, `request abandoned and undone: ${e.message}`);
  }
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

/** An address in its canonical text form (validated before). */
function canonIP(text: string): string {
  const ip = parseIP(text);
  return ip ? formatIP(ip) : text;
}

/** The network configuration as the plugin validated it (the agent validates again: defence). */
function netConf(req: AgentRequest): TortieNetConf {
  const conf = parseNetConf(req.config);
  if (conf.ipam.inProcess) parseIPAMOptions(req.config.ipam);
  return conf;
}

type Handle = (req: AgentRequest, signal?: AbortSignal) => Promise<AgentResponse>;

export function makeCniHandler(deps: HandlerDeps): Handle {
  const resources = new ResourceClient(deps.store);
  const serial = mutex();
  const locks = new KeyedLock();
  const prefix = deps.vethPrefix ?? DEFAULT_VETH_PREFIX;
  const never = new AbortController().signal;

  /** The locks of a request: its container, and its endpoint (for a pod: shared by all its sandboxes). */
  const keysOf = (req: AgentRequest, w: Workload) => [`container:${req.containerId}`, `endpoint:${w.namespace}/${w.wepName}`];

  const containerOf = (wep: Resource | null) => (wep?.spec as { containerID?: string } | undefined)?.containerID ?? '';

  function podMTU(conf: TortieNetConf): number {
    if (conf.mtu > 0) return conf.mtu;
    const fromFile = deps.mtuFile?.();
    if (fromFile !== undefined) return fromFile;
    if (conf.requireMtuFile) {
      throw new CniError(
        ErrCode.TryAgainLater,
        'require_mtu_file is set and the MTU file of tortie-node does not exist yet (it is written at the agent\'s start-up): try again later',
      );
    }
    return deps.defaultMTU();
  }

  /** The pod's IPAM annotations (Kubernetes datastore), checked before anything is allocated. */
  async function annotationsOf(conf: TortieNetConf, w: Workload): Promise<IpamAnnotations> {
    if (!w.pod || !deps.podAnnotations) return {};
    const a = await deps.podAnnotations(w.namespace, w.pod);
    const r = ipamAnnotations(a.pod, a.namespace, conf.featureControl.ipAddrsNoIpam);
    if ((r.ipAddrs || r.ipAddrsNoIpam) && !conf.ipam.inProcess) {
      throw new CniError(ErrCode.UnsupportedField, `pod ${w.namespace}/${w.pod}: the ipAddrs annotations need ipam.type tortie-ipam or calico-ipam (the delegated plugin ${conf.ipam.type} does not read them)`);
    }
    return r;
  }

  async function allocate(req: AgentRequest, conf: TortieNetConf, w: Workload, ann: IpamAnnotations, signal: AbortSignal): Promise<string[]> {
    // Addresses given outside IPAM: nothing to allocate (and nothing for DEL to release).
    if (ann.ipAddrsNoIpam) return ann.ipAddrsNoIpam;
    if (!conf.ipam.inProcess) return execIpam(req, 'ADD');
    const opts = parseIPAMOptions(req.config.ipam);
    const attrs: Record<string, string> = { node: deps.nodeName, timestamp: goTimestamp(new Date()) };
    if (w.pod) Object.assign(attrs, { namespace: w.namespace, pod: w.pod });
    const requested = ann.ipAddrs ?? (req.args.IP ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    for (const ip of requested) {
      if (!parseIP(ip)) throw new CniError(ErrCode.UnsupportedField, `invalid IP ${JSON.stringify(ip)} in CNI_ARGS`);
    }
    return serial(async () => {
      signal.throwIfAborted();
      // ADD again for the same container (a runtime's retry): the addresses it holds are its own.
      const held = await deps.ipam.addressesOfHandle(w.handleId);
      if (held.length > 0) {
        const want4 = requested.length > 0 ? requested.filter((a) => !a.includes(':')).length : opts.assignIPv4 ? 1 : 0;
        const want6 = requested.length > 0 ? requested.filter((a) => a.includes(':')).length : opts.assignIPv6 ? 1 : 0;
        const have4 = held.filter((a) => !a.includes(':')).length;
        const same =
          requested.length > 0
            ? held.length === requested.length && requested.every((r) => held.includes(canonIP(r)))
            : have4 === want4 && held.length - have4 === want6;
        if (same) {
          deps.log('info', `container ${req.containerId} already holds ${held.join(', ')} (ADD repeated): reusing`);
          return held;
        }
        await deps.ipam.releaseByHandle(w.handleId);
      }
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
        ipv4Pools: ann.ipv4Pools ?? opts.ipv4Pools,
        ipv6Pools: ann.ipv6Pools ?? opts.ipv6Pools,
      });
      return [...r.ipv4, ...r.ipv6].map((a) => a.ip);
    });
  }

  async function release(req: AgentRequest, conf: TortieNetConf, w: Workload): Promise<void> {
    if (conf.ipam.inProcess) await serial(() => deps.ipam.releaseByHandle(w.handleId));
    else await execIpam(req, 'DEL');
  }

  async function add(req: AgentRequest, signal: AbortSignal): Promise<InternalResult> {
    if (!req.netns) throw new CniError(ErrCode.InvalidEnvironment, 'required env variables [CNI_NETNS] missing');
    const conf = netConf(req);
    const mtu = podMTU(conf);
    const w = identify(req, deps.nodeName, prefix);
    const labels = w.pod ? podLabels(req) : {};
    const ports = w.pod ? podPorts(req) : [];
    const profiles = profilesFor(w, req.config);
    return locks.run(keysOf(req, w), async () => {
      const undo: (() => Promise<unknown>)[] = [];
      // Before anything that would need undoing: a profile that cannot be made fails the ADD cleanly.
      if (policyType(req.config) !== 'k8s') await ensureNetworkProfile(profiles[0]!);
      try {
        const prior = await resources.get('WorkloadEndpoint', w.wepName, w.namespace);
        const priorOwner = containerOf(prior);
        if (prior && priorOwner === req.containerId) {
          // ADD repeated: a failure now leaves this container with nothing, endpoint included.
          undo.push(() => deleteOwnedEndpoint(w, req.containerId));
        } else if (prior && priorOwner !== '') {
          deps.log('info', `pod ${w.namespace}/${w.pod ?? w.wepName}: container ${req.containerId} replaces ${priorOwner} (sandbox re-created); ${priorOwner}'s addresses stay allocated until its DEL`);
        }
        const ann = await annotationsOf(conf, w);
        if (ann.poolsFrom) deps.log('info', `pod ${w.namespace}/${w.pod}: pools from its ${ann.poolsFrom}'s annotation: ${[...(ann.ipv4Pools ?? []), ...(ann.ipv6Pools ?? [])].join(', ')}`);
        signal.throwIfAborted();
        undo.push(() => release(req, conf, w));
        const addrs = await allocate(req, conf, w, ann, signal);
        const cidrs = addrs.map((a) => (a.includes('/') ? `${a.split('/')[0]}/${a.includes(':') ? 128 : 32}` : a.includes(':') ? `${a}/128` : `${a}/32`));
        signal.throwIfAborted();
        // wirePod undoes its own partial work; once it succeeded, a later failure unwires.
        const wired = await deps.dataplane.wirePod({
          netns: req.netns,
          ifname: req.ifname,
          hostIfName: w.hostIfName,
          addresses: cidrs,
          mtu,
          numQueues: conf.numQueues,
          allowIpForwarding: conf.containerSettings.allowIpForwarding,
        });
        undo.push(() => deps.dataplane.unwirePod({ netns: req.netns, ifname: req.ifname, hostIfName: w.hostIfName }));
        signal.throwIfAborted();
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
        undo.push(() => deleteOwnedEndpoint(w, req.containerId));
        signal.throwIfAborted();
        await waitForPolicy(w.wepName, signal);
        // The last chance: a plugin gone by now never learns the address, so nothing may stay.
        signal.throwIfAborted();
        return {
          interfaces: [
            { name: w.hostIfName, mac: wired.hostMac },
            { name: req.ifname, mac: wired.containerMac, sandbox: req.netns, mtu: wired.mtu },
          ],
          ips: cidrs.map((address) => ({ address, interface: 1 })),
        };
      } catch (e) {
        if (signal.aborted) deps.log('warning', `ADD of ${req.containerId} abandoned by its plugin (${(signal.reason as Error)?.message}); undoing`);
        for (const u of undo.reverse()) {
          await u().catch((ue) => deps.log('warning', `undo after failed ADD of ${req.containerId}: ${(ue as Error).message}`));
        }
        throw e;
      }
    }, signal);
  }

  async function waitForPolicy(wepName: string, signal: AbortSignal): Promise<void> {
    if (!deps.policyProgrammed) return;
    const ms = deps.policyWaitMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
    const aborted = new Promise<'aborted'>((r) => {
      onAbort = () => r('aborted');
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      const r = await Promise.race([deps.policyProgrammed().then(() => 'done' as const), timeout, aborted]);
      if (r === 'timeout') {
        throw new CniError(ErrCode.TryAgainLater, `the policy of ${wepName} was not programmed within ${ms} ms; the pod is not started without it: try again later`);
      }
    } catch (e) {
      if (e instanceof CniError) throw e;
      throw new CniError(ErrCode.TryAgainLater, `the policy of ${wepName} could not be programmed: ${(e as Error).message}; try again later`);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  /** Deletes the endpoint if (and only if) it still belongs to `containerId`. */
  async function deleteOwnedEndpoint(w: Workload, containerId: string): Promise<void> {
    const wep = await resources.get('WorkloadEndpoint', w.wepName, w.namespace);
    if (!wep || containerOf(wep) !== containerId) return;
    await resources.delete('WorkloadEndpoint', w.wepName, w.namespace, wep.metadata.resourceVersion).catch((e) => {
      if (!/does not exist/.test((e as Error).message)) throw e;
    });
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
    const conf = netConf(req);
    const w = identify(req, deps.nodeName, prefix);
    await locks.run(keysOf(req, w), async () => {
      // A datastore failure here stops the DEL before it removes anything (as Calico does).
      const wep = await resources.get('WorkloadEndpoint', w.wepName, w.namespace);
      const owner = containerOf(wep);
      const other = wep !== null && owner !== '' && owner !== req.containerId;
      if (other) {
        deps.log('info', `DEL of ${req.containerId}: workload endpoint ${w.namespace}/${w.wepName} belongs to container ${owner}; releasing only ${w.handleId} and cleaning only inside ${req.netns || '(no netns)'}`);
      }
      if (req.netns || !other) await deps.dataplane.unwirePod({ netns: req.netns, ifname: req.ifname, hostIfName: w.hostIfName, hostSide: !other });
      if (!other) await deleteOwnedEndpoint(w, req.containerId);
      await release(req, conf, w);
    });
  }

  async function check(req: AgentRequest): Promise<void> {
    const prev = prevResultOf(req.config);
    if (!prev) throw new CniError(ErrCode.InvalidNetworkConfig, 'CHECK needs prevResult');
    const conf = netConf(req);
    const w = identify(req, deps.nodeName, prefix);
    await locks.run(keysOf(req, w), async () => {
      const addresses = (prev.ips ?? []).map((i) => i.address);
      const wep = await resources.get('WorkloadEndpoint', w.wepName, w.namespace);
      const owner = containerOf(wep);
      if (wep && owner !== '' && owner !== req.containerId) {
        throw new CniError(ErrCode.UnknownContainer, `CHECK of ${req.containerId}: workload endpoint ${w.namespace}/${w.wepName} now belongs to container ${owner} (the sandbox was replaced)`);
      }
      const problems = await deps.dataplane.checkPod({ netns: req.netns, ifname: req.ifname, hostIfName: w.hostIfName, addresses });
      if (conf.ipam.inProcess) {
        for (const a of addresses) {
          const who = await deps.ipam.assignment(a.split('/')[0]!);
          if (who?.handleId !== w.handleId) problems.push(`address ${a} is not allocated to ${w.handleId}`);
        }
      }
      if (!wep) problems.push(`workload endpoint ${w.namespace}/${w.wepName} is missing`);
      else {
        const have = ((wep.spec as { ipNetworks?: string[] }).ipNetworks ?? []).slice().sort();
        const want = addresses.map((a) => `${a.split('/')[0]}/${a.includes(':') ? 128 : 32}`).sort();
        if (have.join(',') !== want.join(',')) problems.push(`workload endpoint ${w.namespace}/${w.wepName} has ${have.join(', ') || 'no address'}, the result says ${want.join(', ')}`);
      }
      if (problems.length) throw new CniError(ErrCode.Internal, `CHECK found ${problems.length} problem(s): ${problems.join('; ')}`);
    });
  }

  async function status(): Promise<void> {
    try {
      await deps.store.revision();
    } catch (e) {
      throw new CniError(ErrCode.PluginNotAvailable, `tortie-node cannot reach its datastore: ${(e as Error).message}`);
    }
  }

  /** CNI GC: each stale handle of this network on this node is released under its container's lock. */
  async function gc(req: AgentRequest): Promise<void> {
    if (!req.validAttachments) return;
    if (!netConf(req).ipam.inProcess) {
      await execIpam(req, 'GC');
      return;
    }
    const network = String(req.config.name);
    const valid = req.validAttachments;
    const errors: string[] = [];
    for (const handleId of await deps.ipam.handlesOnNode(`${network}.`, deps.nodeName)) {
      const containerId = handleId.slice(network.length + 1);
      // Handles are per container, so any valid attachment of the container keeps it.
      if (valid.some((a) => a.containerID === containerId)) continue;
      try {
        await locks.run([`container:${containerId}`], () => serial(() => deps.ipam.releaseByHandle(handleId)));
      } catch (e) {
        errors.push(`${handleId}: ${(e as Error).message}`);
      }
    }
    if (errors.length) throw new CniError(ErrNoAddresses, `GC could not release ${errors.length} handle(s)`, errors.join('; '));
  }

  return async (req, signal = never) => {
    try {
      switch (req.command) {
        case 'ADD':
          return { ok: true, result: await add(req, signal) };
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
