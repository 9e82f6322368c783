// The tortie-kube-controllers process: opens the Calico datastore and the Kubernetes API, keeps the
// status file (check-status) and the metrics server (/metrics on the KubeControllersConfiguration's
// prometheusMetricsPort, 9094 by default), probes both APIs (health.ts), and runs the enabled
// controllers until SIGTERM: the node controller's IPAM garbage collection (both datastores) and,
// on the etcd datastore, Calico's namespace, serviceaccount, policy and workloadendpoint controllers
// (controllers/etcd/mirror.ts). An API server or datastore that cannot be reached makes it not
// ready, never exit.
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { type KubeClient, loadKubeClient } from '../../libcalico-go/lib/backend/kubernetes/client.js';
import { ResourceClient } from '../../libcalico-go/lib/clientv3/resources.js';
import { type DatastoreConfig, resolveDatastoreConfig, settingsFromEnv } from '../../libcalico-go/lib/config/datastore-config.js';
import { openBackend } from '../../libcalico-go/lib/config/open-backend.js';
import { type Logger, createLogger, parseLogLevel } from '../../libcalico-go/lib/logutils/index.js';
import { type ControllerName, DEFAULT_RECONCILER_PERIOD_MS, ETCD_ONLY_CONTROLLERS, type EnvSettings, type RunConfig, SettingError, envSettings, runConfigOf } from './config.js';
import { type EtcdControllerName, MirrorController, mirrorSpec } from './controllers/etcd/mirror.js';
import { kubernetesSource } from './controllers/etcd/sources.js';
import { IPAM_GC, NodeController } from './controllers/node/controller.js';
import { IPAMMetrics } from './controllers/node/ipam-metrics.js';
import { DATASTORE, KUBE_API, healthChecks } from './health.js';
import { type MetricsServer, Registry, startMetricsServer } from '../../libcalico-go/lib/metrics/index.js';
import { StatusFile } from './status.js';

export interface RunningControllers {
  /** The node controller, when enabled. */
  controller: NodeController | undefined;
  /** The etcd-mode controllers that run. */
  mirrors: MirrorController[];
  status: StatusFile;
  registry: Registry;
  /** The metrics server once started (after the first configuration read). */
  metrics(): MetricsServer | undefined;
  stop(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  log?: Logger;
}

/** Opens everything and starts the loops; throws only for bad settings (named). */
export async function startControllers(opts: StartOptions = {}): Promise<RunningControllers> {
  const env = opts.env ?? process.env;
  const settings: EnvSettings = envSettings(env);
  const log = opts.log ?? createLogger('kube-controllers', { level: parseLogLevel(settings.logLevel) ?? 'INFO' });
  const ds: DatastoreConfig = resolveDatastoreConfig(settingsFromEnv(env));
  // The Kubernetes API is read in both datastore modes (as Calico's).
  const kube: KubeClient = await loadKubeClient({
    kubeconfig: ds.kubeconfig,
    apiEndpoint: ds.k8sAPIEndpoint,
    caFile: ds.k8sCAFile,
    certFile: ds.k8sCertFile,
    keyFile: ds.k8sKeyFile,
    token: ds.k8sAPIToken,
    env,
  });
  // A request that hangs (an API server that accepts but does not answer) fails in 10 s, not 30.
  kube.timeoutMs = 10_000;
  const store: Backend = await openBackend(ds);
  // The Kubernetes datastore's own client: the same 10 s limit, so an outage shows within it.
  const storeClient = store.type === 'kubernetes' ? (store as Backend & { client?: KubeClient }).client : undefined;
  if (storeClient) storeClient.timeoutMs = 10_000;
  const resources = new ResourceClient(store);

  // On the Kubernetes datastore the API server derives profiles, Kubernetes policies and endpoints
  // itself: Calico's etcd-mode controllers have nothing to do there and do not run (as Calico's).
  const enabled: ControllerName[] = settings.controllers.filter((c) => {
    if (ds.datastoreType === 'kubernetes' && ETCD_ONLY_CONTROLLERS.includes(c)) {
      log.info('Controller runs on the etcd datastore only; not running it on the Kubernetes datastore', { controller: c });
      return false;
    }
    return true;
  });

  const status = new StatusFile(settings.statusFile);
  const registry = new Registry();
  registry.registerProcessMetrics();
  const readyGauge = registry.gauge('tortie_kube_controllers_ready', 'Readiness of each component (1 ready, 0 not): the APIs and each controller, as check-status -r reads them.', ['component']);
  status.onChange = (component, s) => readyGauge.set({ component }, s.ready ? 1 : 0);
  status.start();
  registry.gauge('tortie_kube_controllers_restarts', 'Processes of this pod that ran before this one (the container restarts, counted in the status file).').set(status.restarts);
  if (status.restarts > 0) log.warn('Started again in the same pod', { restarts: status.restarts });
  status.set(KUBE_API, false, 'starting: no successful read yet');
  status.set(DATASTORE, false, 'starting: no successful read yet');
  const failures = registry.counter('tortie_kube_controllers_sync_failures_total', 'Syncs that failed (an API or the datastore unreachable, a watch that ended in error), by controller; each is retried.', ['controller']);
  const fullSyncs = registry.counter('tortie_kube_controllers_full_syncs_total', 'Full resyncs of the Kubernetes objects to the Calico datastore, by controller.', ['controller']);
  const writes = registry.counter('tortie_kube_controllers_writes_total', 'Calico datastore writes, by controller and operation (create, update, delete).', ['controller', 'op']);

  let metrics: MetricsServer | undefined;
  let metricsPort: number | undefined;
  let config: RunConfig | undefined;
  const onConfig = async (c: RunConfig) => {
    config = c;
    if (metricsPort === c.prometheusMetricsPort) return;
    if (metricsPort !== undefined) {
      log.warn('prometheusMetricsPort changed; the new port applies after a restart', { port: c.prometheusMetricsPort, serving: metricsPort });
      metricsPort = c.prometheusMetricsPort;
      return;
    }
    metricsPort = c.prometheusMetricsPort;
    if (c.prometheusMetricsPort === 0) return;
    try {
      metrics = await startMetricsServer(registry, settings.metricsHost, c.prometheusMetricsPort);
      log.info('Serving Prometheus metrics', { address: `${metrics.address.address}:${metrics.address.port}` });
    } catch (e) {
      metricsPort = undefined; // tried again at the next read
      log.error('Cannot serve Prometheus metrics', { port: c.prometheusMetricsPort, error: (e as Error).message });
    }
  };

  let controller: NodeController | undefined;
  if (enabled.includes('node')) {
    status.set(IPAM_GC, false, 'starting: no sync yet');
    controller = new NodeController({
      store,
      kube,
      log: log.child('ipam'),
      metrics: new IPAMMetrics(registry),
      setReady: (component, ready, reason) => status.set(component, ready, reason),
      onConfig,
      onSyncFailed: () => failures.inc({ controller: 'node' }),
    });
  }
  const mirrors: MirrorController[] = [];
  for (const c of enabled) {
    if (c === 'node') continue;
    const name = c as EtcdControllerName;
    const m = new MirrorController(mirrorSpec(name, kubernetesSource(kube, name)), {
      store,
      log,
      setReady: (component, ready, reason) => status.set(component, ready, reason),
      resyncPeriodMs: () => config?.resyncPeriodMs[name] ?? DEFAULT_RECONCILER_PERIOD_MS,
      counters: {
        fullSync: (controller) => fullSyncs.inc({ controller }),
        failure: (controller) => failures.inc({ controller }),
        write: (controller, op) => writes.inc({ controller, op }),
      },
    });
    status.set(m.spec.component, false, 'starting: no sync yet');
    mirrors.push(m);
  }

  const onKcc = (kcc: Resource | null) => {
    let c: RunConfig;
    try {
      c = runConfigOf(kcc);
    } catch (e) {
      log.warn('Invalid KubeControllersConfiguration; keeping the previous settings', { error: (e as Error).message });
      return;
    }
    void onConfig(c);
    controller?.configChanged(kcc);
  };
  const ac = new AbortController();
  const loops: Promise<void>[] = [healthChecks({ kube, resources, setReady: (component, ready, reason) => status.set(component, ready, reason), onConfig: onKcc }, ac.signal, settings.healthCheckIntervalMs)];
  if (controller) {
    const c = controller;
    loops.push(c.run(ac.signal), c.watchNodes(ac.signal));
  }
  for (const m of mirrors) loops.push(m.run(ac.signal));
  log.info('tortie-kube-controllers started', { controllers: enabled.join(','), datastore: ds.datastoreType, statusFile: settings.statusFile });
  return {
    controller,
    mirrors,
    status,
    registry,
    metrics: () => metrics,
    stop: async () => {
      ac.abort();
      await Promise.all(loops);
      status.stop();
      await metrics?.close();
      await kube.close();
      await store.close();
    },
  };
}

export { SettingError };
