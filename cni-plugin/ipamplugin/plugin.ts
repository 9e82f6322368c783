// tortie-ipam: Calico-compatible block IPAM as a CNI IPAM plugin. It talks to the datastore
// directly, so it works behind any main plugin (tortie, or Debian's ptp/bridge).
import { CniError, ErrCode } from '../pkg/skel/errors.js';
import type { Invocation } from '../pkg/skel/invocation.js';
import type { InternalResult } from '../pkg/skel/result.js';
import { prevResultOf } from '../pkg/skel/result.js';
import type { GcAttachment } from '../pkg/skel/gc.js';
import type { PluginHandlers } from '../pkg/skel/run.js';
import { type Backend, UnavailableError } from '../../libcalico-go/lib/backend/api.js';
import { openBackend } from '../../libcalico-go/lib/config/open-backend.js';
import { ConfigError } from '../../libcalico-go/lib/config/datastore-config.js';
import { IPAM, IPAMError, AddressInUseError } from '../../libcalico-go/lib/ipam/ipam.js';
import { parseIP } from '../../libcalico-go/lib/net/ip.js';
import { parseSelector } from '../../libcalico-go/lib/selector/index.js';
import { acquireHostLock } from './hostlock.js';
import { type IPAMNetConf, determineNodename, parseIPAMNetConf } from './netconf.js';

/** Calico-ipam's codes are Go's 999 for everything; ours say more (100+ are plugin-specific). */
export const ErrNoAddresses = 100;
export const ErrAddressInUse = 101;

const LOCK_WAIT_MS = 30_000;

/**
 * The next hop handed to main plugins, as Calico uses it: a link-local address that the host end
 * of the pod's link answers for, never an address of the pool (ptp puts it on its host veth).
 */
const GATEWAY_V4 = '169.254.1.1';
const GATEWAY_V6 = 'fe80::1';

function withGateway(address: string, version: 4 | 6): { address: string; gateway: string } {
  return { address, gateway: version === 4 ? GATEWAY_V4 : GATEWAY_V6 };
}

/** Go's time.Time.String() in UTC, as Calico stores the `timestamp` attribute. */
export function goTimestamp(d: Date): string {
  const iso = d.toISOString(); // 2026-01-02T03:04:05.678Z
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)} +0000 UTC`;
}

function k8sIdentity(args: Map<string, string>): { namespace: string; pod: string } | null {
  const namespace = args.get('K8S_POD_NAMESPACE') ?? '';
  const pod = args.get('K8S_POD_NAME') ?? '';
  return namespace && pod ? { namespace, pod } : null;
}

export function handleIdFor(conf: IPAMNetConf, containerId: string): string {
  return `${conf.name}.${containerId}`;
}

/** Maps library errors to CNI codes: datastore trouble is "try again later". */
function asCniError(e: unknown): unknown {
  if (e instanceof CniError) return e;
  if (e instanceof UnavailableError) return new CniError(ErrCode.TryAgainLater, `datastore unavailable: ${e.message}`);
  if (e instanceof AddressInUseError) return new CniError(ErrAddressInUse, e.message);
  if (e instanceof IPAMError) return new CniError(ErrNoAddresses, e.message);
  return e;
}

interface Session {
  conf: IPAMNetConf;
  node: string;
  store: Backend;
  ipam: IPAM;
}

async function withSession<T>(inv: Invocation, env: Record<string, string | undefined>, fn: (s: Session) => Promise<T>): Promise<T> {
  const conf = parseIPAMNetConf(inv.config, env);
  const node = determineNodename(conf);
  let store: Backend;
  try {
    store = await openBackend(conf.datastore);
  } catch (e) {
    // A bad datastore setting (e.g. an unreadable kubeconfig) will not cure itself: say so.
    if (e instanceof ConfigError) throw new CniError(ErrCode.UnsupportedField, `cannot open ${conf.datastore.datastoreType} datastore: ${e.message}`);
    throw new CniError(ErrCode.TryAgainLater, `cannot open ${conf.datastore.datastoreType} datastore: ${(e as Error).message}`);
  }
  const ipam = new IPAM(store, { selects: (sel, labels) => parseSelector(sel).evaluate(labels) });
  try {
    return await fn({ conf, node, store, ipam });
  } catch (e) {
    throw asCniError(e);
  } finally {
    await store.close();
  }
}

/** Requested addresses from CNI_ARGS `IP=` (comma-separated, one per family). */
function requestedIPs(args: Map<string, string>): string[] {
  const raw = args.get('IP');
  if (!raw) return [];
  return raw.split(',').map((s) => {
    const t = s.trim();
    if (!parseIP(t)) throw new CniError(ErrCode.UnsupportedField, `invalid IP ${JSON.stringify(t)} in CNI_ARGS`);
    return t;
  });
}

async function add(inv: Invocation, env: Record<string, string | undefined>): Promise<InternalResult> {
  const wanted = requestedIPs(inv.args);
  return withSession(inv, env, async ({ conf, node, ipam }) => {
    const handleId = handleIdFor(conf, inv.containerId);
    const attrs: Record<string, string> = { node, timestamp: goTimestamp(new Date()) };
    const k8s = k8sIdentity(inv.args);
    if (k8s) Object.assign(attrs, k8s);
    const lock = await acquireHostLock(`tortie-ipam/${conf.datastore.datastoreType}/${node}`, LOCK_WAIT_MS);
    try {
      const ips: { address: string; gateway: string }[] = [];
      if (wanted.length > 0) {
        try {
          for (const ip of wanted) {
            const a = await ipam.assignIP({ ip, handleId, attrs, hostname: node });
            ips.push(withGateway(`${a.ip}/${a.blockPrefix}`, a.version));
          }
        } catch (e) {
          await ipam.releaseByHandle(handleId);
          throw e;
        }
      } else {
        const r = await ipam.autoAssign({
          handleId,
          attrs,
          hostname: node,
          num4: conf.assignIPv4 ? 1 : 0,
          num6: conf.assignIPv6 ? 1 : 0,
          ipv4Pools: conf.ipv4Pools,
          ipv6Pools: conf.ipv6Pools,
        });
        for (const a of [...r.ipv4, ...r.ipv6]) ips.push(withGateway(`${a.ip}/${a.blockPrefix}`, a.version));
      }
      return { ips, routes: conf.routes };
    } finally {
      await lock?.release();
    }
  });
}

async function del(inv: Invocation, env: Record<string, string | undefined>): Promise<void> {
  await withSession(inv, env, async ({ conf, ipam }) => {
    await ipam.releaseByHandle(handleIdFor(conf, inv.containerId));
  });
}

/** CHECK: every address of prevResult is still allocated to this container's handle. */
async function check(inv: Invocation, env: Record<string, string | undefined>): Promise<void> {
  const prev = prevResultOf(inv.config);
  if (!prev) throw new CniError(ErrCode.InvalidNetworkConfig, 'CHECK needs prevResult');
  await withSession(inv, env, async ({ conf, ipam }) => {
    const handleId = handleIdFor(conf, inv.containerId);
    for (const ip of prev.ips ?? []) {
      const addr = ip.address.split('/')[0]!;
      const who = await ipam.assignment(addr);
      if (!who) throw new CniError(ErrNoAddresses, `IP ${addr} of container ${inv.containerId} is not allocated in IPAM`);
      if (who.handleId !== handleId) {
        throw new CniError(ErrNoAddresses, `IP ${addr} is allocated to ${who.handleId ?? '<no handle>'}, not ${handleId}`);
      }
    }
  });
}

/** STATUS: ready when the datastore answers. */
async function status(inv: Invocation, env: Record<string, string | undefined>): Promise<void> {
  try {
    await withSession(inv, env, async ({ store }) => {
      await store.revision();
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new CniError(ErrCode.PluginNotAvailable, `tortie-ipam cannot serve ADD: ${msg}`);
  }
}

/**
 * GC: frees this node's allocations of this network whose container is not in the runtime's list
 * of valid attachments. Other nodes' allocations are never touched.
 */
async function gc(inv: Invocation, env: Record<string, string | undefined>, valid: GcAttachment[] | null): Promise<void> {
  if (valid === null) return; // no list given: nothing can be judged stale
  await withSession(inv, env, async ({ conf, node, ipam }) => {
    const errors = await releaseStale(ipam, conf.name, node, valid);
    if (errors.length) throw new CniError(ErrNoAddresses, `GC could not release ${errors.length} handle(s)`, errors.join('; '));
  });
}

/** Releases `<network>.<containerID>` handles of `node` whose container is not valid; returns errors. */
export async function releaseStale(ipam: IPAM, network: string, node: string, valid: GcAttachment[]): Promise<string[]> {
  const errors: string[] = [];
  for (const handleId of await ipam.handlesOnNode(`${network}.`, node)) {
    const containerId = handleId.slice(network.length + 1);
    // Handles are per container, so any valid attachment of the container keeps it.
    if (valid.some((a) => a.containerID === containerId)) continue;
    try {
      await ipam.releaseByHandle(handleId);
    } catch (e) {
      errors.push(`${handleId}: ${(e as Error).message}`);
    }
  }
  return errors;
}

/** The plugin's handlers; `env` supplies datastore settings the configuration leaves out. */
export function ipamHandlers(env: Record<string, string | undefined>): PluginHandlers {
  return {
    add: (inv) => add(inv, env),
    del: (inv) => del(inv, env),
    check: (inv) => check(inv, env),
    status: (inv) => status(inv, env),
    gc: (inv, valid) => gc(inv, env, valid),
  };
}
