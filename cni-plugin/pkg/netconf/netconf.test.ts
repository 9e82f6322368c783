import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CniError } from '../skel/errors.js';
import { DEFAULT_AGENT_SOCKET, DEFAULT_NODENAME_FILE, parseLogLevel, parseNetConf } from './index.js';

const base = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  cniVersion: '0.3.1',
  name: 'k8s-pod-network',
  type: 'calico',
  ipam: { type: 'calico-ipam' },
  ...extra,
});

/** Asserts a CniError with `code` whose message matches every pattern. */
function rejects(extra: Record<string, unknown>, code: number, ...patterns: RegExp[]): void {
  assert.throws(
    () => parseNetConf(base(extra)),
    (e: unknown) => {
      assert.ok(e instanceof CniError, `CniError expected, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      for (const p of patterns) assert.match(e.message, p);
      return true;
    },
  );
}

describe('parseNetConf: accepted configurations', () => {
  it('minimal config: defaults', () => {
    const c = parseNetConf(base());
    assert.equal(c.name, 'k8s-pod-network');
    assert.equal(c.mtu, 0);
    assert.equal(c.logLevel, 'INFO');
    assert.equal(c.logFilePath, undefined);
    assert.equal(c.nodename, undefined);
    assert.equal(c.nodenameFile, DEFAULT_NODENAME_FILE);
    assert.equal(c.nodenameFileOptional, false);
    assert.equal(c.agentSocket, DEFAULT_AGENT_SOCKET);
    assert.equal(DEFAULT_AGENT_SOCKET, '/var/run/tortie/cni.sock');
    assert.deepEqual(c.ipam, { type: 'calico-ipam', inProcess: true, raw: { type: 'calico-ipam' } });
    assert.deepEqual(c.policy, { type: '' });
    assert.deepEqual(c.featureControl, { ipAddrsNoIpam: false, floatingIps: false });
    assert.deepEqual(c.containerSettings, { allowIpForwarding: false });
    assert.equal(c.numQueues, 1);
  });

  it("Calico's stock conflist entry, with runtime-added keys and unknown extras", () => {
    const raw = base({
      log_level: 'Info',
      log_file_path: '/var/log/calico/cni/cni.log',
      datastore_type: 'kubernetes',
      nodename: 'kind-worker',
      mtu: 1440,
      ipam: { type: 'calico-ipam', assign_ipv4: 'true', ipv4_pools: ['default-pool'] },
      policy: { type: 'k8s' },
      kubernetes: { kubeconfig: '/etc/cni/net.d/calico-kubeconfig' },
      feature_control: { floating_ips: false },
      container_settings: { allow_ip_forwarding: true },
      runtimeConfig: { portMappings: [] },
      prevResult: { cniVersion: '0.3.1', ips: [] },
      capabilities: { portMappings: true },
      'cni.dev/valid-attachments': [],
      somethingNew: { x: 1 },
    });
    const c = parseNetConf(raw);
    assert.equal(c.logLevel, 'INFO');
    assert.equal(c.logFilePath, '/var/log/calico/cni/cni.log');
    assert.equal(c.datastore.datastoreType, 'kubernetes');
    assert.equal(c.nodename, 'kind-worker');
    assert.equal(c.mtu, 1440);
    assert.equal(c.policy.type, 'k8s');
    assert.equal(c.kubernetes.kubeconfig, '/etc/cni/net.d/calico-kubeconfig');
    assert.deepEqual(c.featureControl, { ipAddrsNoIpam: false, floatingIps: false });
    assert.equal(c.containerSettings.allowIpForwarding, true);
    assert.equal(c.raw, raw);
  });

  it('etcd settings are passed through; other IPAM types are delegated', () => {
    const c = parseNetConf(
      base({
        datastore_type: 'etcdv3',
        etcd_endpoints: 'https://10.0.0.1:2379, https://10.0.0.2:2379',
        etcd_key_file: '/etc/tortie/key.pem',
        etcd_cert_file: '/etc/tortie/cert.pem',
        etcd_ca_cert_file: '/etc/tortie/ca.pem',
        ipam: { type: 'host-local', subnet: 'usePodCidr' },
        agent_socket: '/run/tortie/other.sock',
        nodename_file: '/var/lib/calico/nodename',
        nodename_file_optional: true,
      }),
    );
    assert.deepEqual(c.datastore, {
      datastoreType: 'etcdv3',
      etcdEndpoints: ['https://10.0.0.1:2379', 'https://10.0.0.2:2379'],
      etcdKeyFile: '/etc/tortie/key.pem',
      etcdCertFile: '/etc/tortie/cert.pem',
      etcdCaCertFile: '/etc/tortie/ca.pem',
    });
    assert.equal(c.ipam.type, 'host-local');
    assert.equal(c.ipam.inProcess, false);
    assert.equal(c.agentSocket, '/run/tortie/other.sock');
    assert.equal(c.nodenameFile, '/var/lib/calico/nodename');
    assert.equal(c.nodenameFileOptional, true);
  });

  it('mtu 0 and null mean auto; log levels are case-insensitive with aliases', () => {
    assert.equal(parseNetConf(base({ mtu: 0 })).mtu, 0);
    assert.equal(parseNetConf(base({ mtu: null })).mtu, 0);
    assert.equal(parseNetConf(base({ mtu: 9000 })).mtu, 9000);
    assert.equal(parseLogLevel('DEBUG'), 'DEBUG');
    assert.equal(parseLogLevel('Warn'), 'WARNING');
    assert.equal(parseLogLevel('WARNING'), 'WARNING');
    assert.equal(parseLogLevel(''), 'INFO');
    assert.equal(parseLogLevel('verbose'), null);
    assert.equal(parseNetConf(base({ log_level: 'ERROR' })).logLevel, 'ERROR');
  });
});

describe('parseNetConf: bad values name the field and the value', () => {
  it('mtu: negative, fractional, string, too small, too large → 2', () => {
    rejects({ mtu: -1 }, 2, /mtu -1/, /negative/);
    rejects({ mtu: 1500.5 }, 2, /mtu 1500\.5/, /integer/);
    rejects({ mtu: '1440' }, 2, /mtu "1440"/, /integer/);
    rejects({ mtu: 60 }, 2, /mtu 60/, /68/);
    rejects({ mtu: 70000 }, 2, /mtu 70000/, /65535/);
  });

  it('log_level unknown or not a string → 2', () => {
    rejects({ log_level: 'verbose' }, 2, /log_level "verbose"/);
    rejects({ log_level: 3 }, 2, /log_level 3/, /string/);
  });

  it('log_file_path relative → 2', () => {
    rejects({ log_file_path: 'cni.log' }, 2, /log_file_path "cni\.log"/, /absolute/);
  });

  it('nodename: not a DNS name, e.g. an unrendered placeholder → 2', () => {
    rejects({ nodename: '__KUBERNETES_NODE_NAME__' }, 2, /nodename "__KUBERNETES_NODE_NAME__"/);
    rejects({ nodename: 'Node1' }, 2, /nodename "Node1"/);
    rejects({ nodename: 42 }, 2, /nodename 42/);
  });

  it('nodename_file_optional / feature flags must be booleans → 2', () => {
    rejects({ nodename_file_optional: 'true' }, 2, /nodename_file_optional "true"/, /true or false/);
    rejects({ feature_control: { floating_ips: 1 } }, 2, /feature_control\.floating_ips 1/);
    rejects({ container_settings: { allow_ip_forwarding: 'yes' } }, 2, /container_settings\.allow_ip_forwarding "yes"/);
  });

  it('datastore fields → 2', () => {
    rejects({ datastore_type: 'consul' }, 2, /datastore_type "consul"/);
    rejects({ etcd_endpoints: 'http://ok:2379,10.0.0.1:2379' }, 2, /etcd_endpoints/, /"10\.0\.0\.1:2379" is not an http/);
    rejects({ etcd_scheme: 'ftp' }, 2, /etcd_scheme "ftp"/);
    rejects({ etcd_key_file: '/k.pem' }, 2, /etcd_cert_file/, /together/);
    rejects({ datastore_path: 'db.sqlite' }, 2, /datastore_path "db\.sqlite"/);
  });

  it('agent_socket: relative, too long, wrong type → 2', () => {
    rejects({ agent_socket: 'cni.sock' }, 2, /agent_socket "cni\.sock"/, /absolute/);
    rejects({ agent_socket: '/' + 'x'.repeat(120) }, 2, /agent_socket/, /at most 107/);
    rejects({ agent_socket: true }, 2, /agent_socket true/);
  });

  it('ipam: missing or not an object → 7; type missing → 7; type wrong → 2', () => {
    assert.throws(() => parseNetConf({ cniVersion: '0.3.1', name: 'n', type: 'calico' }), (e: unknown) => e instanceof CniError && e.code === 7 && /ipam/.test(e.message));
    rejects({ ipam: 'calico-ipam' }, 7, /ipam must be an object, got "calico-ipam"/);
    rejects({ ipam: {} }, 7, /ipam\.type is missing/);
    rejects({ ipam: { type: 5 } }, 2, /ipam\.type 5/);
    rejects({ ipam: { type: '../bin/evil' } }, 2, /ipam\.type "\.\.\/bin\/evil"/, /not a path/);
  });

  it('feature_control: floating_ips (not implemented) refused when true → 2; ip_addrs_no_ipam accepted (the pod annotation it enables is read)', () => {
    rejects({ feature_control: { floating_ips: true } }, 2, /feature_control\.floating_ips true/, /not supported by Tortie/);
    assert.equal(parseNetConf(base({ feature_control: { ip_addrs_no_ipam: true } })).featureControl.ipAddrsNoIpam, true);
  });

  it('sections of the wrong JSON type → 7', () => {
    rejects({ policy: 'k8s' }, 7, /policy must be an object, got "k8s"/);
    rejects({ kubernetes: [] }, 7, /kubernetes must be an object/);
    rejects({ feature_control: true }, 7, /feature_control must be an object/);
    rejects({ container_settings: 1 }, 7, /container_settings must be an object/);
  });

  it('policy.type other than k8s → 2; kubeconfig relative → 2; num_queues bad → 2', () => {
    rejects({ policy: { type: 'calico' } }, 2, /policy\.type "calico"/);
    rejects({ kubernetes: { kubeconfig: 'kubeconfig' } }, 2, /kubernetes\.kubeconfig "kubeconfig"/);
    rejects({ num_queues: -2 }, 2, /num_queues -2/);
    rejects({ log_file_max_size: '100' }, 2, /log_file_max_size "100"/);
  });
});
