// tortie-node: the node agent (Calico's calico-node), wiring together the configuration, the
// health and metrics servers, the CNI socket and the datastore supervisor with its startup work.
//
// startAgent returns once the servers are listening; it does not wait for the datastore (an
// agent whose datastore is down at start runs, reports not ready, and keeps retrying). `ready`
// resolves when the startup work has succeeded. Configuration errors and a second agent on the
// same socket make startAgent throw: those do not get better by retrying.
import type { AddressInfo } from 'node:net';
import { type AgentRequest, type AgentResponse, vethPrefixFrom } from '../../cni-plugin/pkg/index.js';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import type { DatastoreConfig } from '../../libcalico-go/lib/config/datastore-config.js';
import { openBackend, type OpenBackendOptions } from '../../libcalico-go/lib/config/open-backend.js';
import { type CniServer, type CniServerOptions, startCniServer } from './cniserver.js';
import { type AgentConfig, type Env, parseAgentConfig } from './config.js';
import { DatastoreSupervisor } from './datastore-supervisor.js';
import { HealthAggregator, type HealthServer, startHealthServer } from './health.js';
import { startKubeNodeDuties } from './kube-node.js';
import { createLogger, type Logger } from '../../libcalico-go/lib/logutils/index.js';
import { type MetricsServer, Registry, startMetricsServer } from '../../libcalico-go/lib/metrics/index.js';
import { runStartup, type StartupDeps, type StartupResult, tortieVersion } from './startup.js';

/** What the CNI handler gets besides the request. */
export interface AgentContext {
  readonly nodeName: string;
  readonly config: AgentConfig;
  /** The agent's datastore client (null until opened; calls fail while the store is away). */
  store(): Backend | null;
  /** True once the startup work (node registered, pool seeded, nodename file) has succeeded. */
  isReady(): boolean;
  startupResult(): StartupResult | undefined;
  readonly log: Logger;
  readonly metrics: Registry;
}

/**
 * Handles one CNI request. `signal` fires when the plugin that sent it has gone (killed by its
 * runtime, or its own timeout passed): the handler stops before its next side effect and undoes.
 */
export type CniHandler = (req: AgentRequest, ctx: AgentContext, signal: AbortSignal) => Promise<AgentResponse>;

export interface AgentOptions {
  cniHandler: CniHandler;
  /** Default: Felix-style lines on stderr at FELIX_LOGSEVERITYSCREEN. */
  log?: Logger;
  /** Default: a new registry with the process metrics. */
  registry?: Registry;
  /** Install SIGTERM/SIGINT handlers that stop the agent and exit. Default true. */
  handleSignals?: boolean;
  /** Overrides for the startup work (tests: canned interfaces, version). */
  startupDeps?: Omit<StartupDeps, 'log'>;
  /** Datastore supervision timing. */
  supervisor?: { intervalMs?: number; checkTimeoutMs?: number; backoffInitialMs?: number; backoffMaxMs?: number };
  cniServer?: Omit<CniServerOptions, 'onRequest'>;
  /**
   * Kubernetes datastore: resolves once this node's dataplane is programmed, when the Node's
   * NetworkUnavailable condition may turn False (called after start-up, again after a failure).
   * Default: start-up done.
   */
  networkUp?: () => Promise<unknown>;
  /** Opens the datastore (default: openBackend). */
  openBackend?: (cfg: DatastoreConfig, opts?: OpenBackendOptions) => Promise<Backend>;
}

export interface Agent {
  readonly nodeName: string;
  readonly config: AgentConfig;
  /** Resolves when the startup work has first succeeded; rejects if the agent stops before. */
  readonly ready: Promise<void>;
  readonly health: HealthAggregator;
  readonly healthAddress?: AddressInfo;
  readonly metricsAddress?: AddressInfo;
  readonly cniSocket: string;
  readonly context: AgentContext;
  /** Graceful stop: CNI socket (requests in flight finish), datastore loop and client, servers. */
  stop(): Promise<void>;
}

/** Reporter timeout for the datastore loop: generous, it only catches a stuck loop. */
const LOOP_TIMEOUT_MS = 60_000;

export async function startAgent(env: Env, opts: AgentOptions): Promise<Agent> {
  const config = parseAgentConfig(env);
  const log = opts.log ?? createLogger('agent.ts', { level: config.felix.logSeverityScreen });
  const metrics = opts.registry ?? new Registry();
  metrics.registerProcessMetrics();
  for (const w of config.warnings) log.warn(w);
  const ds = config.datastore;
  const where =
    ds.datastoreType === 'etcdv3'
      ? ds.etcdEndpoints.join(',')
      : ds.datastoreType === 'kubernetes'
        ? ds.kubeconfig ?? ds.k8sAPIEndpoint ?? 'in-cluster'
        : ds.datastorePath;
  log.info(
    `Starting Tortie node agent ${tortieVersion() ?? '(version unknown)'} for node ${config.nodeName} ` +
      `(datastore ${config.datastore.datastoreType} ${where})`,
  );

  // Metrics the agent maintains.
  const cniRequests = metrics.counter('tortie_cni_requests_total', 'CNI requests handled by the node agent.', ['command', 'result']);
  const cniDuration = metrics.histogram(
    'tortie_cni_request_duration_seconds',
    'Time to handle a CNI request, from connection to response.',
    ['command'],
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  const dsUp = metrics.gauge('tortie_datastore_up', 'Whether the datastore answered the last check (1) or not (0).');
  const drift = metrics.gauge('tortie_config_drift_findings', 'CALICO_IPV4POOL_* settings that disagree with the stored IP pool.');
  metrics.gauge('tortie_build_info', 'Tortie version of this agent.', ['version']).set({ version: tortieVersion() ?? 'unknown' }, 1);
  dsUp.set(0);

  const health = new HealthAggregator();
  const dsReporter = health.register('datastore', { timeoutMs: LOOP_TIMEOUT_MS });
  const startupReporter = health.register('startup', { live: false });
  const cniReporter = health.register('cni-server');

  const cleanups: Array<() => Promise<void>> = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn(`Error while stopping: ${(e as Error).message}`);
      }
    }
    cleanups.length = 0;
  };

  const vethPrefix = vethPrefixFrom(typeof config.felix.params.interfacePrefix === 'string' ? config.felix.params.interfacePrefix : undefined);
  const supLog = log.child('datastore-supervisor.ts');
  const supervisor = new DatastoreSupervisor<StartupResult>({
    // The agent's CNI handler writes WorkloadEndpoints: on kubernetes that is the pod annotation
    // patch (cniWrites), and endpoints read from Pods carry the host veth names it gives.
    open: () => (opts.openBackend ?? openBackend)(config.datastore, { cniWrites: true, interfacePrefix: vethPrefix }),
    startup: async (store) => {
      const r = await runStartup(store, config, { ...opts.startupDeps, log: log.child('startup.ts') });
      drift.set(r.drift.length);
      return r;
    },
    reporter: dsReporter,
    startupReporter,
    log: supLog,
    onStateChange: (up) => dsUp.set(up ? 1 : 0),
    ...opts.supervisor,
  });

  const context: AgentContext = {
    nodeName: config.nodeName,
    config,
    store: () => supervisor.store,
    isReady: () => supervisor.startupDone,
    startupResult: () => supervisor.startupResult,
    log: log.child('cni'),
    metrics,
  };

  let healthServer: HealthServer | undefined;
  let metricsServer: MetricsServer | undefined;
  let cni: CniServer;
  try {
    if (config.felix.healthEnabled) {
      healthServer = await startHealthServer(health, config.felix.healthHost, config.felix.healthPort);
      cleanups.push(() => healthServer!.close());
      log.info(`Health endpoints on http://${fmtAddr(healthServer.address)}/liveness and /readiness`);
    }
    if (config.felix.prometheusMetricsEnabled) {
      metricsServer = await startMetricsServer(metrics, config.felix.prometheusMetricsHost, config.felix.prometheusMetricsPort);
      cleanups.push(() => metricsServer!.close());
      log.info(`Prometheus metrics on http://${fmtAddr(metricsServer.address)}/metrics`);
    }
    const cniLog = log.child('cniserver.ts');
    cni = await startCniServer(
      config.cniSocket,
      (req, signal) => opts.cniHandler(req, context, signal),
      {
        ...opts.cniServer,
        onRequest: ({ command, containerId, response, seconds }) => {
          const cmd = command ?? 'invalid';
          cniRequests.inc({ command: cmd, result: response.ok ? 'ok' : 'error' });
          cniDuration.observe({ command: cmd }, seconds);
          const who = containerId ? ` container ${containerId.slice(0, 12)}` : '';
          const outcome = response.ok ? 'ok' : `error ${response.code}: ${response.msg}`;
          const line = `CNI ${cmd}${who}: ${outcome} (${seconds.toFixed(3)} s)`;
          if (response.ok) cniLog.info(line);
          else cniLog.warn(line);
        },
      },
    );
    cleanups.push(async () => {
      cniReporter.report({ live: true, ready: false, detail: 'stopped' });
      await cni.close();
    });
    cniReporter.report({ live: true, ready: true });
    log.info(`Listening for CNI requests on ${config.cniSocket}`);
  } catch (e) {
    await cleanup();
    throw e;
  }

  supervisor.start();
  // Stop order (cleanups run last-first): CNI socket, then the datastore loop, then the servers.
  cleanups.splice(cleanups.length - 1, 0, () => supervisor.stop());

  const ready = supervisor.started.then((r) => {
    log.info(
      `Node ${r.nodeName} is ready${r.ipv4Address ? ` (IPv4 ${r.ipv4Address})` : ''}` +
        `${r.drift.length ? `; ${r.drift.length} configuration drift finding(s), see the warnings above` : ''}`,
    );
  });
  ready.catch(() => {});
  // Kubernetes datastore: the Node's NetworkUnavailable=False and the CNI token refresher, once started.
  let stopKube: (() => Promise<void>) | undefined;
  if (config.datastore.datastoreType === 'kubernetes') {
    ready.then(
      () => {
        if (stopping) return;
        stopKube = startKubeNodeDuties({ nodeName: config.nodeName, datastore: config.datastore, env, log: log.child('kube-node.ts'), networkUp: opts.networkUp });
      },
      () => undefined,
    );
    cleanups.push(async () => {
      await stopKube?.();
    });
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('Stopping the node agent');
      removeSignals();
      await cleanup();
      log.info('Node agent stopped');
    })());

  const onSignal = (sig: NodeJS.Signals) => {
    log.info(`Received ${sig}: shutting down`);
    void stop().then(() => {
      process.exitCode ??= 0;
      // Exit even if something outside the agent keeps the event loop busy.
      setTimeout(() => process.exit(), 5000).unref();
    });
  };
  const handleSignals = opts.handleSignals ?? true;
  if (handleSignals) {
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }
  function removeSignals() {
    if (!handleSignals) return;
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }

  return {
    nodeName: config.nodeName,
    config,
    ready,
    health,
    healthAddress: healthServer?.address,
    metricsAddress: metricsServer?.address,
    cniSocket: config.cniSocket,
    context,
    stop,
  };
}

function fmtAddr(a: AddressInfo): string {
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
}
