// Datastore selection for the Kubernetes datastore, as calicoctl selects it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, resolveDatastoreConfig, settingsFromAPIConfig, settingsFromEnv } from './datastore-config.js';

describe('kubernetes datastore selection', () => {
  it('DATASTORE_TYPE=kubernetes with KUBECONFIG and the K8S_* variables', () => {
    const cfg = resolveDatastoreConfig(settingsFromEnv({
      DATASTORE_TYPE: 'kubernetes',
      KUBECONFIG: '/etc/cni/net.d/calico-kubeconfig',
      K8S_API_ENDPOINT: 'https://10.0.0.1:6443',
      K8S_CA_FILE: '/ca.pem',
      K8S_API_TOKEN: 'tok',
    }));
    assert.equal(cfg.datastoreType, 'kubernetes');
    assert.equal(cfg.kubeconfig, '/etc/cni/net.d/calico-kubeconfig');
    assert.equal(cfg.k8sAPIEndpoint, 'https://10.0.0.1:6443');
    assert.equal(cfg.k8sCAFile, '/ca.pem');
    assert.equal(cfg.k8sAPIToken, 'tok');
  });
  it('nothing given: in-cluster configuration is left to the backend', () => {
    const cfg = resolveDatastoreConfig(settingsFromEnv({ DATASTORE_TYPE: 'kubernetes' }));
    assert.equal(cfg.datastoreType, 'kubernetes');
    assert.equal(cfg.kubeconfig, undefined);
  });
  it('a CalicoAPIConfig with kubeconfig and the k8s* fields', () => {
    const doc = {
      apiVersion: 'projectcalico.org/v3',
      kind: 'CalicoAPIConfig',
      spec: { datastoreType: 'kubernetes', kubeconfig: '/root/.kube/config', k8sAPIEndpoint: 'https://127.0.0.1:6443', k8sCertFile: '/c.pem', k8sKeyFile: '/k.pem' },
    };
    const cfg = resolveDatastoreConfig(settingsFromAPIConfig(doc, 'calicoctl.cfg'));
    assert.deepEqual([cfg.datastoreType, cfg.kubeconfig, cfg.k8sAPIEndpoint, cfg.k8sCertFile, cfg.k8sKeyFile], ['kubernetes', '/root/.kube/config', 'https://127.0.0.1:6443', '/c.pem', '/k.pem']);
  });
  it('refuses bad settings naming them', () => {
    assert.throws(() => resolveDatastoreConfig({ datastoreType: 'mysql' }), (e: Error) => e instanceof ConfigError && /"mysql": must be "embedded", "etcdv3" or "kubernetes"/.test(e.message));
    assert.throws(() => resolveDatastoreConfig({ datastoreType: 'kubernetes', k8sAPIEndpoint: 'ftp://x' }), /"ftp:\/\/x"/);
    assert.throws(() => resolveDatastoreConfig({ datastoreType: 'kubernetes', k8sCertFile: '/c.pem' }), /K8S_CERT_FILE and K8S_KEY_FILE/);
    assert.throws(() => settingsFromAPIConfig({ kind: 'CalicoAPIConfig', spec: { kubeconfig: 5 } }, 'f'), /spec\.kubeconfig: must be a string, got 5/);
  });
});
