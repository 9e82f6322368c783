import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SettingError, envSettings, parseGoDuration, runConfigOf, syncPeriodMs } from './config.js';

const kcc = (spec: Record<string, unknown>) => ({ apiVersion: 'projectcalico.org/v3', kind: 'KubeControllersConfiguration', metadata: { name: 'default' }, spec });

describe('kube-controllers configuration', () => {
  it('parses Go durations', () => {
    assert.equal(parseGoDuration('15m'), 900_000);
    assert.equal(parseGoDuration('15m0s'), 900_000);
    assert.equal(parseGoDuration('1h2m3.5s'), 3_723_500);
    assert.equal(parseGoDuration('2s'), 2000);
    assert.equal(parseGoDuration('250ms'), 250);
    assert.equal(parseGoDuration('0'), 0);
    assert.equal(parseGoDuration('15'), null);
    assert.equal(parseGoDuration('-1s'), null);
    assert.equal(parseGoDuration('soon'), null);
  });

  it("Calico's defaults without a KubeControllersConfiguration", () => {
    const fiveMin = { namespace: 300_000, serviceaccount: 300_000, workloadendpoint: 300_000, policy: 300_000 };
    assert.deepEqual(runConfigOf(null), { leakGracePeriodMs: 900_000, reconcilerPeriodMs: 300_000, prometheusMetricsPort: 9094, healthChecks: true, resyncPeriodMs: fiveMin });
    assert.equal(syncPeriodMs(runConfigOf(null)), 300_000);
  });

  it('reads leakGracePeriod, prometheusMetricsPort and healthChecks; sync every grace/2', () => {
    const c = runConfigOf(kcc({ prometheusMetricsPort: 0, healthChecks: 'Disabled', controllers: { node: { leakGracePeriod: '2s' } } }));
    assert.deepEqual({ ...c, resyncPeriodMs: undefined }, { leakGracePeriodMs: 2000, reconcilerPeriodMs: 300_000, prometheusMetricsPort: 0, healthChecks: false, resyncPeriodMs: undefined });
    assert.equal(syncPeriodMs(c), 1000);
    assert.equal(syncPeriodMs(runConfigOf(kcc({ controllers: { node: { leakGracePeriod: '0' } } }))), 300_000);
  });

  it('refuses bad values by field and value', () => {
    assert.throws(() => runConfigOf(kcc({ controllers: { node: { leakGracePeriod: '15 minutes' } } })), (e: Error) => e instanceof SettingError && /spec\.controllers\.node\.leakGracePeriod: invalid duration "15 minutes"/.test(e.message));
    assert.throws(() => runConfigOf(kcc({ prometheusMetricsPort: 70000 })), /spec\.prometheusMetricsPort: invalid port 70000/);
    assert.throws(() => runConfigOf(kcc({ controllers: { workloadEndpoint: { reconcilerPeriod: 'daily' } } })), /spec\.controllers\.workloadEndpoint\.reconcilerPeriod: invalid duration "daily"/);
  });

  it("reads each etcd-mode controller's reconcilerPeriod", () => {
    const c = runConfigOf(kcc({ controllers: { namespace: { reconcilerPeriod: '3s' }, policy: { reconcilerPeriod: '1m' } } }));
    assert.deepEqual(c.resyncPeriodMs, { namespace: 3000, serviceaccount: 300_000, workloadendpoint: 300_000, policy: 60_000 });
  });

  it('ENABLED_CONTROLLERS: node by default; Calico names not built yet and unknown names refused', () => {
    assert.deepEqual(envSettings({}).controllers, ['node']);
    assert.deepEqual(envSettings({ ENABLED_CONTROLLERS: 'node' }).controllers, ['node']);
    assert.deepEqual(envSettings({ ENABLED_CONTROLLERS: 'node,namespace,serviceaccount,workloadendpoint,policy' }).controllers, ['node', 'namespace', 'serviceaccount', 'workloadendpoint', 'policy']);
    assert.deepEqual(envSettings({ ENABLED_CONTROLLERS: 'profile, Namespace' }).controllers, ['namespace'], 'profile is the namespace controller');
    assert.throws(() => envSettings({ ENABLED_CONTROLLERS: 'node,loadbalancer' }), /ENABLED_CONTROLLERS: controller "loadbalancer" is not implemented in Tortie yet/);
    assert.throws(() => envSettings({ ENABLED_CONTROLLERS: 'nodes' }), /unknown controller "nodes"/);
    assert.equal(envSettings({}).statusFile, '/status/status.json');
    assert.equal(envSettings({}).healthCheckIntervalMs, 10_000);
    assert.equal(envSettings({ HEALTH_CHECK_INTERVAL: '1s' }).healthCheckIntervalMs, 1000);
    assert.throws(() => envSettings({ HEALTH_CHECK_INTERVAL: 'often' }), /HEALTH_CHECK_INTERVAL: invalid duration "often"/);
  });
});
