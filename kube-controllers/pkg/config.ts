// tortie-kube-controllers' settings: the process environment (as calico-kube-controllers reads it)
// and the KubeControllersConfiguration `default` (read at every sync, so edits apply without a
// restart). Bad values are refused with the setting and the value named.
import type { Resource } from '../../libcalico-go/lib/apis/v3/resource.js';

/** Calico's defaults (api/.../kubecontrollersconfig.go). */
export const DEFAULT_LEAK_GRACE_PERIOD_MS = 15 * 60_000;
export const DEFAULT_RECONCILER_PERIOD_MS = 5 * 60_000;
export const DEFAULT_METRICS_PORT = 9094;
export const DEFAULT_STATUS_FILE = '/status/status.json';

/** The controllers this build has; Calico's other names are recognised and refused as not yet built. */
export const CONTROLLERS = ['node', 'namespace', 'serviceaccount', 'workloadendpoint', 'policy'] as const;
export type ControllerName = (typeof CONTROLLERS)[number];
/** The controllers that only run on the etcd datastore (on Kubernetes the datastore derives these objects itself). */
export const ETCD_ONLY_CONTROLLERS: readonly ControllerName[] = ['namespace', 'serviceaccount', 'workloadendpoint', 'policy'];
const CALICO_CONTROLLERS = ['node', 'policy', 'namespace', 'profile', 'serviceaccount', 'workloadendpoint', 'loadbalancer', 'flannelmigration'];
/** Calico's alias: `profile` is the namespace controller. */
const ALIASES: Record<string, ControllerName> = { profile: 'namespace' };

export class SettingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingError';
  }
}

const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("15m", "1m30s", "2s", "0") in milliseconds; null when it is not one or negative. */
export function parseGoDuration(text: string): number | null {
  const t = text.trim();
  if (t === '0') return 0;
  if (!/^\+?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$/.test(t)) return null;
  let ms = 0;
  for (const m of t.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

export interface EnvSettings {
  /** ENABLED_CONTROLLERS (default: node; `profile` is read as `namespace`, duplicates dropped). */
  controllers: ControllerName[];
  /** STATUS_FILE: where liveness/readiness are written for `check-status` (default /status/status.json). */
  statusFile: string;
  /** METRICS_HOST: the address the metrics server binds ("" = all interfaces). */
  metricsHost: string;
  /** LOG_LEVEL (default info). */
  logLevel: string;
  /** HEALTH_CHECK_INTERVAL (Tortie's; a Go duration, default 10s): how often both APIs are probed for readiness. */
  healthCheckIntervalMs: number;
}

export function envSettings(env: Record<string, string | undefined>): EnvSettings {
  const raw = (env.ENABLED_CONTROLLERS ?? '').trim();
  const names = raw === '' ? ['node'] : raw.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '');
  const controllers: ControllerName[] = [];
  for (const n of names) {
    if (!CALICO_CONTROLLERS.includes(n)) {
      throw new SettingError(`ENABLED_CONTROLLERS: unknown controller ${JSON.stringify(n)}: must be one of ${CALICO_CONTROLLERS.join(', ')}`);
    }
    const c = ALIASES[n] ?? n;
    if (!(CONTROLLERS as readonly string[]).includes(c)) {
      throw new SettingError(`ENABLED_CONTROLLERS: controller ${JSON.stringify(n)} is not implemented in Tortie yet (only: ${CONTROLLERS.join(', ')})`);
    }
    if (!controllers.includes(c as ControllerName)) controllers.push(c as ControllerName);
  }
  const hci = env.HEALTH_CHECK_INTERVAL ? parseGoDuration(env.HEALTH_CHECK_INTERVAL) : 10_000;
  if (hci === null || hci < 100) {
    throw new SettingError(`HEALTH_CHECK_INTERVAL: invalid duration ${JSON.stringify(env.HEALTH_CHECK_INTERVAL)} (at least 100ms, e.g. "10s")`);
  }
  return {
    controllers,
    healthCheckIntervalMs: hci,
    statusFile: env.STATUS_FILE || DEFAULT_STATUS_FILE,
    metricsHost: env.METRICS_HOST ?? '',
    logLevel: (env.LOG_LEVEL || 'info').toUpperCase(),
  };
}

/** What the KubeControllersConfiguration `default` asks of the node controller and the process. */
export interface RunConfig {
  /** 0 disables the IPAM garbage collection of live nodes' leaks. */
  leakGracePeriodMs: number;
  reconcilerPeriodMs: number;
  /** 0 disables the metrics server. */
  prometheusMetricsPort: number;
  healthChecks: boolean;
  /** spec.controllers.<policy|namespace|serviceAccount|workloadEndpoint>.reconcilerPeriod: full resync period of each etcd-mode controller. */
  resyncPeriodMs: Record<Exclude<ControllerName, 'node'>, number>;
}

/** The KubeControllersConfiguration field of each etcd-mode controller. */
const KCC_FIELD: Record<Exclude<ControllerName, 'node'>, string> = {
  namespace: 'namespace',
  serviceaccount: 'serviceAccount',
  workloadendpoint: 'workloadEndpoint',
  policy: 'policy',
};

/** The run configuration of a KubeControllersConfiguration (null → Calico's defaults). */
export function runConfigOf(kcc: Resource | null): RunConfig {
  const spec = (kcc?.spec ?? {}) as {
    prometheusMetricsPort?: unknown;
    healthChecks?: unknown;
    controllers?: { node?: { leakGracePeriod?: unknown; reconcilerPeriod?: unknown } } & Record<string, { reconcilerPeriod?: unknown } | undefined>;
  };
  const node = spec.controllers?.node ?? {};
  const dur = (v: unknown, field: string, dflt: number) => {
    if (v === undefined || v === null) return dflt;
    const ms = typeof v === 'string' ? parseGoDuration(v) : null;
    if (ms === null) throw new SettingError(`KubeControllersConfiguration default: ${field}: invalid duration ${JSON.stringify(v)} (e.g. "15m", "90s")`);
    return ms;
  };
  const port = spec.prometheusMetricsPort ?? DEFAULT_METRICS_PORT;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SettingError(`KubeControllersConfiguration default: spec.prometheusMetricsPort: invalid port ${JSON.stringify(port)} (0–65535)`);
  }
  return {
    leakGracePeriodMs: dur(node.leakGracePeriod, 'spec.controllers.node.leakGracePeriod', DEFAULT_LEAK_GRACE_PERIOD_MS),
    reconcilerPeriodMs: dur(node.reconcilerPeriod, 'spec.controllers.node.reconcilerPeriod', DEFAULT_RECONCILER_PERIOD_MS),
    prometheusMetricsPort: port,
    healthChecks: spec.healthChecks !== 'Disabled',
    resyncPeriodMs: Object.fromEntries(
      Object.entries(KCC_FIELD).map(([c, f]) => {
        const ms = dur(spec.controllers?.[f]?.reconcilerPeriod, `spec.controllers.${f}.reconcilerPeriod`, DEFAULT_RECONCILER_PERIOD_MS);
        // 0 would mean a resync loop; Calico's minimum is a few seconds.
        return [c, Math.max(ms, 1000)];
      }),
    ) as RunConfig['resyncPeriodMs'],
  };
}

/**
 * How often the collector scans: every leakGracePeriod/2 as Calico (so a leak is released between
 * one and one and a half grace periods after it appears), at most the reconciler period, at least 500 ms.
 */
export function syncPeriodMs(c: RunConfig): number {
  const half = c.leakGracePeriodMs > 0 ? c.leakGracePeriodMs / 2 : c.reconcilerPeriodMs;
  return Math.max(500, Math.min(half, c.reconcilerPeriodMs || half));
}
