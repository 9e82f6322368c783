// Entry point of bin/tortie-node: the node agent with the CNI work plugged in (IPAM, pod wiring,
// workload endpoints).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type AgentResponse, makeCniHandler, vethPrefixFrom } from '../../cni-plugin/pkg/index.js';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import type { KubernetesBackend } from '../../libcalico-go/lib/backend/kubernetes/kubernetes.js';
import { IPAM } from '../../libcalico-go/lib/ipam/ipam.js';
import { parseSelector } from '../../libcalico-go/lib/selector/index.js';
import { configureKernel, ipv4OnlyPodDataplane, podnet } from '../../felix/index.js';
import { fileSecretResolver } from '../../confd/pkg/index.js';
import { type AgentContext, type CniHandler, startAgent } from '../pkg/agent.js';
import { parseAgentConfig } from '../pkg/config.js';
import { NodeStatusWriter, RunRecord } from '../pkg/nodestatus.js';
import { parseProbeArgs, probeMessage, runProbes } from '../pkg/probe.js';
import { findPoolDrift, tortieVersion } from '../pkg/startup.js';
import { PolicyLoop } from '../pkg/policy/loop.js';
import { RoutingLoop } from '../pkg/routing/loop.js';
import { parseNetworkingBackend } from '../pkg/routing/plan.js';

function notReady(ctx: AgentContext): AgentResponse {
  const why = ctx.store() ? 'its start-up has not finished' : 'its datastore is unavailable';
  return { ok: false, code: 11, msg: `tortie-node on ${ctx.nodeName} is not ready: ${why}; try again later` };
}

/** Policy enforcement, once the agent is ready (ADD waits for it to cover the new pod). */
let policy: PolicyLoop | null = null;
let policyStarted!: (p: PolicyLoop) => void;
/** Resolves with the policy loop once it runs: an ADD before that waits (bounded by the handler). */
const policyLoop = new Promise<PolicyLoop>((r) => (policyStarted = r));

/** The MTU file's value (written at start-up), undefined when it is missing or not a number. */
function readMtuFile(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

let current: { store: Backend; handle: ReturnType<typeof makeCniHandler> } | null = null;

const cniHandler: CniHandler = async (req, ctx, signal) => {
  const store = ctx.store();
  if (!store || !ctx.isReady()) return notReady(ctx);
  if (current?.store !== store) {
    const log = ctx.log.child('cni-handler');
    current = {
      store,
      handle: makeCniHandler({
        store,
        ipam: new IPAM(store, { selects: (sel, labels) => parseSelector(sel).evaluate(labels) }),
        nodeName: ctx.nodeName,
        // FELIX_IPV6SUPPORT=false: pods with an IPv6 address are refused before any wiring.
        dataplane: ctx.config.felix.ipv6Support ? podnet : ipv4OnlyPodDataplane(podnet),
        // Felix's pod MTU, worked out (and written to $TORTIE_STATE_DIR/mtu) at each start-up.
        defaultMTU: () => ctx.startupResult()?.mtu?.podMTU ?? 1440,
        mtuFile: () => readMtuFile(ctx.config.mtuFile),
        vethPrefix: vethPrefixFrom(typeof ctx.config.felix.params.interfacePrefix === 'string' ? ctx.config.felix.params.interfacePrefix : undefined),
        log: (level, msg) => (level === 'error' ? log.error(msg) : level === 'warning' ? log.warn(msg) : log.info(msg)),
        policyProgrammed: () => policyLoop.then((p) => p.runPass()),
        ...(store.type === 'kubernetes' ? { podAnnotations: podAnnotationsReader(store as KubernetesBackend) } : {}),
      }),
    };
  }
  return current.handle(req, signal);
};

type Annotated = { metadata?: { annotations?: Record<string, string> } };

/** The annotations of a pod and (when it names no pools itself) of its namespace, from the API. */
function podAnnotationsReader(store: KubernetesBackend) {
  return async (namespace: string, pod: string) => {
    const p = await store.client.request<Annotated>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`);
    const podAnn = p.metadata?.annotations ?? {};
    const ownPools = 'cni.projectcalico.org/ipv4pools' in podAnn || 'cni.projectcalico.org/ipv6pools' in podAnn;
    const ns = ownPools ? {} : await store.client.request<Annotated>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}`);
    return { pod: podAnn, namespace: ns.metadata?.annotations ?? {} };
  };
}

/**
 * Pods reach 169.254.1.1 through proxy ARP, which the kernel only answers when the host has a
 * route to that address on another interface (normally its default route). Say so plainly.
 */
function checkGatewayRoute(): void {
  try {
    execFileSync('/usr/sbin/ip', ['route', 'get', '169.254.1.1'], { stdio: 'ignore' });
  } catch {
    process.stderr.write(
      'tortie-node: WARNING: this host has no route to 169.254.1.1 (no default route?): proxy ARP will not answer ' +
        'pods asking for their gateway, so pods will not reach anything beyond their own address\n',
    );
  }
}

// `tortie-node -v` and the DaemonSet's exec probes (`-felix-live -bird-live`, `-felix-ready -bird-ready`):
// they ask the running agent and exit; nothing else runs.
const argv = process.argv.slice(2);
if (argv.length > 0) {
  if (argv.length === 1 && ['-v', '--version', '-version', 'version'].includes(argv[0]!)) {
    process.stdout.write(`${tortieVersion() ?? 'unknown'}\n`);
    process.exit(0);
  }
  try {
    const args = parseProbeArgs(argv);
    if (!args) throw new Error('no probe flag given');
    const failures = await runProbes(args, parseAgentConfig(process.env));
    if (failures.length > 0) {
      process.stderr.write(`${probeMessage(args, failures)}\n`);
      process.exit(1);
    }
    process.exit(0);
  } catch (e) {
    process.stderr.write(`tortie-node: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(2);
  }
}

try {
  // A refused setting (e.g. FELIX_WIREGUARDENABLED=true) stops the agent before it touches the kernel.
  configureKernel({ ipv6: parseAgentConfig(process.env).felix.ipv6Support });
  checkGatewayRoute();
  // Signals are handled here: the policy and routing loops (and BIRD) stop before the agent.
  const agent = await startAgent(process.env, {
    cniHandler,
    handleSignals: false,
    // NetworkUnavailable=False once the first policy pass has programmed this node's dataplane.
    networkUp: () =>
      policyLoop.then(async (p) => {
        await p.runPass();
        if (!p.programmed) throw new Error('the policy pass has not programmed this node\'s dataplane yet');
      }),
  });
  const ctx = agent.context;
  // This run in $TORTIE_STATE_DIR/agent-runs.json (restart counts and reasons for CalicoNodeStatus).
  const runs = new RunRecord(agent.config.stateDir);
  const nodeStatus = new NodeStatusWriter({
    nodeName: agent.nodeName,
    store: () => ctx.store(),
    log: ctx.log.child('nodestatus.ts'),
    health: agent.health,
    metrics: ctx.metrics,
    env: process.env,
    runs,
    runDir: agent.config.runDir,
    nodeIP: () => ctx.startupResult()?.ipv4Address?.split('/')[0],
    podMTU: () => ctx.startupResult()?.mtu?.podMTU,
    bgpModel: () => routing?.getStatus().plan?.bgpModel,
    poolDrift: (pools) => findPoolDrift(agent.config.defaultPool, pools),
    version: tortieVersion(),
    defaultPeriodS: Number(process.env.TORTIE_NODE_STATUS_PERIOD) || undefined,
  });
  const { backend, warning } = parseNetworkingBackend(process.env.CALICO_NETWORKING_BACKEND);
  if (warning) ctx.log.warn(warning);
  let routing: RoutingLoop | null = null;
  let stopping = false;
  agent.ready.then(
    () => {
      if (stopping) return;
      routing = new RoutingLoop({
        nodeName: agent.nodeName,
        store: () => ctx.store(),
        backend,
        runDir: agent.config.runDir,
        log: ctx.log.child('routing/loop.ts'),
        hostMtu: () => ctx.startupResult()?.mtu?.hostMTU,
        secrets: fileSecretResolver(agent.config.bgpSecretsDir),
        // A loop that stops passing (resync every 5 s) is not live.
        health: agent.health.register('routing', { timeoutMs: 30_000 }),
        // Ready when this node routes to every other node's pods (checked every second).
        convergence: agent.health.register('routes', { live: false, timeoutMs: 30_000 }),
      });
      routing.start();
      const params = agent.config.felix.params;
      const refreshS = params.nftablesRefreshInterval ?? params.iptablesRefreshInterval;
      try {
        policy = new PolicyLoop({
          nodeName: agent.nodeName,
          store: () => ctx.store(),
          log: ctx.log.child('policy/loop.ts'),
          metrics: ctx.metrics,
          health: agent.health.register('policy', { timeoutMs: 60_000 }),
          endpointToHostAction: typeof params.defaultEndpointToHostAction === 'string' ? params.defaultEndpointToHostAction : undefined,
          interfacePrefix: typeof params.interfacePrefix === 'string' ? params.interfacePrefix : undefined,
          ...(typeof refreshS === 'number' && refreshS > 0 ? { verifyMs: refreshS * 1000 } : {}),
        });
      } catch (e) {
        // A setting the policy loop cannot use (e.g. FELIX_INTERFACEPREFIX): say so and stop.
        ctx.log.error(`Cannot start policy enforcement: ${(e as Error).message}`);
        process.exit(1);
      }
      policy.start();
      policyStarted(policy);
      nodeStatus.start();
    },
    () => undefined,
  );
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    ctx.log.info(`Received ${sig}: shutting down`);
    void (async () => {
      nodeStatus.stop();
      await policy?.stop().catch(() => undefined);
      await routing?.stop().catch(() => undefined);
      await agent.stop();
      runs.stopped(`received ${sig}`);
      // Everything of ours is stopped: exit now rather than wait for stray timers (BirdSupervisor's
      // stop keeps a 5 s timer running after BIRD has exited).
      process.exit(process.exitCode ?? 0);
    })();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
} catch (e) {
  process.stderr.write(`tortie-node: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}
