// The tortie-kube-controllers process: opens the Calico datastore and the Kubernetes API, keeps the
// status file (check-status) and the metrics server (/metrics on the KubeControllersConfiguration's
// prometheusMetricsPort, 9094 by default), and runs the node controller's IPAM garbage collection
// until SIGTERM. An API server or datastore that cannot be reached makes it not ready, never exit.
import type { Backend } from '../../libcalico-go/lib/backend/api.js';
import { type KubeClient, loadKubeClient } from '../../libcalico-go/lib/backend/kubernetes/client.js';
import { type DatastoreConfig, resolveDatastoreConfig, settingsFromEnv } from '../../libcalico-go/lib/config/datastore-config.js';
import { openBackend } from '../../libcalico-go/lib/config/open-backend.js';
import { type Logger, createLogger, parseLogLevel } from '../../libcalico-go/lib/logutils/index.js';
import { type EnvSettings, type RunConfig, SettingError, envSettings } from './config.js';
import { DATASTORE, IPAM_GC, KUBE_API, NodeController } from './controllers/node/controller.js';
import { IPAMMetrics } from './controllers/node/ipam-metrics.js';
import { type MetricsServer, Registry, startMetricsServer } from '../../libcalico-go/lib/metrics/index.js';
import { StatusFile } from './status.js';

export interface RunningControllers {
  controller: NodeController;
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
  // Pods and Nodes come from the Kubernetes API in both datastore modes (as Calico's).
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
  const status = new StatusFile(settings.statusFile);
  status.set(KUBE_API, false, 'starting: no successful read yet');
  status.set(DATASTORE, false, 'starting: no successful read yet');
  status.set(IPAM_GC, false, 'starting: no sync yet');
  status.start();

  const registry = new Registry();
  registry.registerProcessMetrics();
  const ipamMetrics = new IPAMMetrics(registry);
  let metrics: MetricsServer | undefined;
  let metricsPort: number | undefined;
  const onConfig = async (c: RunConfig) => {
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
      metricsPort = undefined; // tried again at the next sync
      log.error('Cannot serve Prometheus metrics', { port: c.prometheusMetricsPort, error: (e as Error).message });
    }
  };
  const controller = new NodeController({
    store,
    kube,
    log: log.child('ipam'),
    metrics: ipamMetrics,
    setReady: (component, ready, reason) => status.set(component, ready, reason),
    onConfig,
  });
  const ac = new AbortController();
  const loops = [controller.run(ac.signal), controller.watchNodes(ac.signal), controller.healthChecks(ac.signal, settings.healthCheckIntervalMs)];
  log.info('tortie-kube-controllers started', { controllers: settings.controllers.join(','), datastore: ds.datastoreType, statusFile: settings.statusFile });
  return {
    controller,
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
