import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentConfigError, type Env, parseAgentConfig, parseAutodetectionMethod } from './config.js';

const host = () => 'Node-1.Example';
const parse = (env: Env) => parseAgentConfig(env, { hostname: host });

test('defaults', () => {
  const c = parse({});
  assert.equal(c.nodeName, 'node-1.example');
  assert.equal(c.nodeNameSource, 'hostname');
  assert.equal(c.datastore.datastoreType, 'embedded');
  assert.equal(c.datastore.datastorePath, '/var/lib/tortie/datastore.db');
  assert.deepEqual(c.ip, { mode: 'default' });
  assert.deepEqual(c.autodetection, { kind: 'first-found' });
  assert.equal(c.asNumber, undefined);
  assert.deepEqual(
    { ...c.defaultPool, fromEnv: undefined },
    {
      cidr: '192.168.0.0/16',
      blockSize: 26,
      ipipMode: 'Never',
      vxlanMode: 'Never',
      natOutgoing: true,
      nodeSelector: '',
      disableBGPExport: false,
      fromEnv: undefined,
    },
  );
  assert.deepEqual(c.defaultPool.fromEnv, {});
  assert.equal(c.noDefaultPools, false);
  assert.deepEqual(c.clusterType, []);
  assert.equal(c.felix.healthEnabled, false);
  assert.equal(c.felix.healthHost, 'localhost');
  assert.equal(c.felix.healthPort, 9099);
  assert.equal(c.felix.prometheusMetricsEnabled, false);
  assert.equal(c.felix.prometheusMetricsHost, '');
  assert.equal(c.felix.prometheusMetricsPort, 9091);
  assert.equal(c.felix.logSeverityScreen, 'INFO');
  assert.equal(c.runDir, '/var/run/tortie');
  assert.equal(c.cniSocket, '/var/run/tortie/cni.sock');
  assert.equal(c.nodenameFile, '/var/lib/tortie/nodename');
  assert.equal(c.mtuFile, '/var/lib/tortie/mtu');
  assert.deepEqual(c.warnings, []);
});

test('a full calico-node style environment', () => {
  const c = parse({
    NODENAME: 'playcekube-worker01',
    DATASTORE_TYPE: 'etcdv3',
    ETCD_ENDPOINTS: 'http://10.0.0.11:2379, https://10.0.0.12:2379/',
    IP: '10.0.0.21/16',
    IP_AUTODETECTION_METHOD: 'interface=eth.*, ens[0-9]+',
    AS: '64512',
    CALICO_IPV4POOL_CIDR: '10.233.64.0/18',
    CALICO_IPV4POOL_BLOCK_SIZE: '24',
    CALICO_IPV4POOL_IPIP: 'Off',
    CALICO_IPV4POOL_VXLAN: 'never',
    CALICO_IPV4POOL_NAT_OUTGOING: 'false',
    CALICO_IPV4POOL_NODE_SELECTOR: "kubernetes.io/os == 'linux'",
    CLUSTER_TYPE: 'kubespray,bgp, kubespray',
    FELIX_HEALTHENABLED: 'True',
    FELIX_HEALTHHOST: '127.0.0.1',
    FELIX_HEALTHPORT: '19099',
    FELIX_PROMETHEUSMETRICSENABLED: 'yes',
    FELIX_PROMETHEUSMETRICSPORT: '19091',
    FELIX_PROMETHEUSMETRICSHOST: '0.0.0.0',
    FELIX_LOGSEVERITYSCREEN: 'warning',
    FELIX_IPINIPMTU: '1440',
    FELIX_DEFAULTENDPOINTTOHOSTACTION: 'ACCEPT',
    felix_ipv6support: 'false',
    FELIX_ROUTEREFRESHINTERVAL: '90',
    FELIX_FELIXHOSTNAME: 'x',
    FELIX_NOSUCHTHING: '1',
    TORTIE_RUN_DIR: '/run/t/',
    TORTIE_STATE_DIR: '/var/lib/t',
  });
  assert.equal(c.nodeName, 'playcekube-worker01');
  assert.equal(c.nodeNameSource, 'NODENAME');
  assert.deepEqual(c.datastore.etcdEndpoints, ['http://10.0.0.11:2379', 'https://10.0.0.12:2379']);
  assert.deepEqual(c.ip, { mode: 'address', address: '10.0.0.21', prefix: 16 });
  assert.deepEqual(c.autodetection, { kind: 'interface', patterns: ['eth.*', 'ens[0-9]+'] });
  assert.equal(c.asNumber, 64512);
  assert.equal(c.defaultPool.cidr, '10.233.64.0/18');
  assert.equal(c.defaultPool.blockSize, 24);
  assert.equal(c.defaultPool.ipipMode, 'Never');
  assert.equal(c.defaultPool.natOutgoing, false);
  assert.equal(c.defaultPool.fromEnv.CALICO_IPV4POOL_IPIP, 'Off');
  assert.deepEqual(c.clusterType, ['kubespray', 'bgp']);
  assert.equal(c.felix.healthEnabled, true);
  assert.equal(c.felix.healthHost, '127.0.0.1');
  assert.equal(c.felix.healthPort, 19099);
  assert.equal(c.felix.prometheusMetricsEnabled, true);
  assert.equal(c.felix.prometheusMetricsPort, 19091);
  assert.equal(c.felix.prometheusMetricsHost, '0.0.0.0');
  assert.equal(c.felix.logSeverityScreen, 'WARNING');
  assert.equal(c.felix.ipipMTU, 1440);
  assert.equal(c.felix.params.defaultEndpointToHostAction, 'ACCEPT');
  assert.equal(c.felix.params.ipv6Support, false);
  assert.equal(c.felix.params.routeRefreshInterval, 90);
  assert.equal(c.felix.params.FelixHostname, 'x');
  assert.equal(c.runDir, '/run/t');
  assert.equal(c.cniSocket, '/run/t/cni.sock');
  assert.equal(c.nodenameFile, '/var/lib/t/nodename');
  assert.equal(c.felix.ipv6Support, false);
  // Known Felix parameters Tortie does not implement get one warning each; unknown ones too.
  assert.deepEqual(c.warnings, [
    'FELIX_FELIXHOSTNAME="x": not supported by Tortie (Tortie reads NODENAME); ignored',
    'FELIX_NOSUCHTHING="1": not a Felix parameter Tortie knows; ignored',
    'FELIX_ROUTEREFRESHINTERVAL="90": not supported by Tortie; ignored',
  ]);
});

test('IP and autodetection forms', () => {
  assert.deepEqual(parse({ IP: 'autodetect' }).ip, { mode: 'autodetect' });
  assert.deepEqual(parse({ IP: 'none' }).ip, { mode: 'none' });
  assert.deepEqual(parse({ IP: '10.1.2.3' }).ip, { mode: 'address', address: '10.1.2.3' });
  assert.deepEqual(parseAutodetectionMethod('can-reach=8.8.8.8'), { kind: 'can-reach', dest: '8.8.8.8' });
  assert.deepEqual(parseAutodetectionMethod('can-reach=www.example.com'), { kind: 'can-reach', dest: 'www.example.com' });
  assert.deepEqual(parseAutodetectionMethod('skip-interface=enp6s0f0,eth1'), { kind: 'skip-interface', patterns: ['enp6s0f0', 'eth1'] });
  assert.deepEqual(parseAutodetectionMethod('cidr=10.0.0.0/16, 192.168.1.5/24'), {
    kind: 'cidr',
    cidrs: ['10.0.0.0/16', '192.168.1.0/24'],
  });
  assert.deepEqual(parseAutodetectionMethod(''), { kind: 'first-found' });
  assert.equal(parse({ AS: '1.10' }).asNumber, 65546);
  assert.equal(parse({ CALICO_IPV4POOL_IPIP: 'CrossSubnet' }).defaultPool.ipipMode, 'CrossSubnet');
  assert.equal(parse({ CALICO_IPV4POOL_IPIP: 'cross-subnet' }).defaultPool.ipipMode, 'CrossSubnet');
  assert.equal(parse({ CALICO_IPV4POOL_IPIP: 'ALWAYS' }).defaultPool.ipipMode, 'Always');
  assert.equal(parse({ CALICO_IPV4POOL_VXLAN: 'Always' }).defaultPool.vxlanMode, 'Always');
  assert.equal(parse({ NO_DEFAULT_POOLS: 'true' }).noDefaultPools, true);
  // Empty values count as unset.
  assert.deepEqual(parse({ IP: '', NODENAME: '', CALICO_IPV4POOL_CIDR: '' }).ip, { mode: 'default' });
  // A CIDR with host bits is accepted as its network, with a warning.
  const c = parse({ CALICO_IPV4POOL_CIDR: '10.244.1.0/16' });
  assert.equal(c.defaultPool.cidr, '10.244.0.0/16');
  assert.match(c.warnings[0], /CALICO_IPV4POOL_CIDR="10.244.1.0\/16" has host bits set; using the network 10.244.0.0\/16/);
});

// Each bad value must be refused with a message naming the variable and the value.
const bad: Array<[Env, string, string]> = [
  [{ NODENAME: 'Node_1' }, 'NODENAME', 'Node_1'],
  [{ DATASTORE_TYPE: 'consul' }, 'DATASTORE_TYPE', 'consul'],
  [{ DATASTORE_TYPE: 'etcdv3', ETCD_ENDPOINTS: 'etcd:2379' }, 'ETCD_ENDPOINTS', 'etcd:2379'],
  [{ DATASTORE_TYPE: 'etcdv3' }, 'DATASTORE_TYPE', 'etcdv3'],
  [{ DATASTORE_PATH: 'relative/db' }, 'DATASTORE_PATH', 'relative/db'],
  [{ ETCD_CERT_FILE: '/c.pem' }, 'ETCD_CERT_FILE', '/c.pem'],
  [{ IP: '10.0.0.300/24' }, 'IP', '10.0.0.300/24'],
  [{ IP: '10.0.0.3/33' }, 'IP', '10.0.0.3/33'],
  [{ IP: 'fd00::1/64' }, 'IP', 'fd00::1/64'],
  [{ IP: 'auto' }, 'IP', 'auto'],
  [{ IP_AUTODETECTION_METHOD: 'first_found' }, 'IP_AUTODETECTION_METHOD', 'first_found'],
  [{ IP_AUTODETECTION_METHOD: 'can-reach=' }, 'IP_AUTODETECTION_METHOD', 'can-reach='],
  [{ IP_AUTODETECTION_METHOD: 'can-reach=2001:db8::1' }, 'IP_AUTODETECTION_METHOD', 'can-reach=2001:db8::1'],
  [{ IP_AUTODETECTION_METHOD: 'interface=eth(' }, 'IP_AUTODETECTION_METHOD', 'interface=eth('],
  [{ IP_AUTODETECTION_METHOD: 'skip-interface=a,,b' }, 'IP_AUTODETECTION_METHOD', 'skip-interface=a,,b'],
  [{ IP_AUTODETECTION_METHOD: 'cidr=10.0.0.0/33' }, 'IP_AUTODETECTION_METHOD', 'cidr=10.0.0.0/33'],
  [{ IP_AUTODETECTION_METHOD: 'cidr=fd00::/64' }, 'IP_AUTODETECTION_METHOD', 'cidr=fd00::/64'],
  [{ IP_AUTODETECTION_METHOD: 'kubernetes-internal-ip' }, 'IP_AUTODETECTION_METHOD', 'kubernetes-internal-ip'],
  [{ AS: '0' }, 'AS', '0'],
  [{ AS: '4294967296' }, 'AS', '4294967296'],
  [{ AS: '65536.1' }, 'AS', '65536.1'],
  [{ AS: 'sixty' }, 'AS', 'sixty'],
  [{ CALICO_IPV4POOL_CIDR: '10.0.0.0' }, 'CALICO_IPV4POOL_CIDR', '10.0.0.0'],
  [{ CALICO_IPV4POOL_CIDR: 'fd00::/48' }, 'CALICO_IPV4POOL_CIDR', 'fd00::/48'],
  [{ CALICO_IPV4POOL_CIDR: '169.254.0.0/16' }, 'CALICO_IPV4POOL_CIDR', '169.254.0.0/16'],
  [{ CALICO_IPV4POOL_CIDR: '10.0.0.0/28' }, 'CALICO_IPV4POOL_CIDR', '10.0.0.0/28'],
  [{ CALICO_IPV4POOL_BLOCK_SIZE: '19' }, 'CALICO_IPV4POOL_BLOCK_SIZE', '19'],
  [{ CALICO_IPV4POOL_BLOCK_SIZE: '26.5' }, 'CALICO_IPV4POOL_BLOCK_SIZE', '26.5'],
  [{ CALICO_IPV4POOL_IPIP: 'sometimes' }, 'CALICO_IPV4POOL_IPIP', 'sometimes'],
  [{ CALICO_IPV4POOL_IPIP: 'true' }, 'CALICO_IPV4POOL_IPIP', 'true'],
  [{ CALICO_IPV4POOL_VXLAN: 'on' }, 'CALICO_IPV4POOL_VXLAN', 'on'],
  [{ CALICO_IPV4POOL_IPIP: 'Always', CALICO_IPV4POOL_VXLAN: 'Always' }, 'CALICO_IPV4POOL_VXLAN', 'Always'],
  [{ CALICO_IPV4POOL_NAT_OUTGOING: 'yes' }, 'CALICO_IPV4POOL_NAT_OUTGOING', 'yes'],
  [{ CALICO_IPV4POOL_DISABLE_BGP_EXPORT: 'nope' }, 'CALICO_IPV4POOL_DISABLE_BGP_EXPORT', 'nope'],
  [{ CALICO_IPV4POOL_NODE_SELECTOR: 'a ==' }, 'CALICO_IPV4POOL_NODE_SELECTOR', 'a =='],
  [{ NO_DEFAULT_POOLS: 'maybe' }, 'NO_DEFAULT_POOLS', 'maybe'],
  [{ NO_DEFAULT_POOLS: 'true', CALICO_IPV4POOL_CIDR: '10.0.0.0/16' }, 'NO_DEFAULT_POOLS', 'true'],
  [{ CLUSTER_TYPE: 'k8s,b g p' }, 'CLUSTER_TYPE', 'k8s,b g p'],
  [{ FELIX_HEALTHENABLED: 'sure' }, 'FELIX_HEALTHENABLED', 'sure'],
  [{ FELIX_HEALTHPORT: '70000' }, 'FELIX_HEALTHPORT', '70000'],
  [{ FELIX_HEALTHPORT: 'http' }, 'FELIX_HEALTHPORT', 'http'],
  [{ FELIX_HEALTHHOST: 'local host' }, 'FELIX_HEALTHHOST', 'local host'],
  [{ FELIX_PROMETHEUSMETRICSENABLED: '2' }, 'FELIX_PROMETHEUSMETRICSENABLED', '2'],
  [{ FELIX_PROMETHEUSMETRICSPORT: '-1' }, 'FELIX_PROMETHEUSMETRICSPORT', '-1'],
  [{ FELIX_PROMETHEUSMETRICSHOST: 'a/b' }, 'FELIX_PROMETHEUSMETRICSHOST', 'a/b'],
  [{ FELIX_LOGSEVERITYSCREEN: 'verbose' }, 'FELIX_LOGSEVERITYSCREEN', 'verbose'],
  [{ FELIX_DEFAULTENDPOINTTOHOSTACTION: 'PERMIT' }, 'FELIX_DEFAULTENDPOINTTOHOSTACTION', 'PERMIT'],
  [{ FELIX_ROUTEREFRESHINTERVAL: '90s' }, 'FELIX_ROUTEREFRESHINTERVAL', '90s'],
  [{ FELIX_MTUIFACEPATTERN: '^(eth' }, 'FELIX_MTUIFACEPATTERN', '^(eth'],
  [{ TORTIE_RUN_DIR: 'run/tortie' }, 'TORTIE_RUN_DIR', 'run/tortie'],
  [{ TORTIE_STATE_DIR: './state' }, 'TORTIE_STATE_DIR', './state'],
  [{ TORTIE_RUN_DIR: '/' + 'x'.repeat(120) }, 'TORTIE_RUN_DIR', '/' + 'x'.repeat(120)],
];

for (const [env, name, value] of bad) {
  test(`refuses ${name}=${JSON.stringify(value).slice(0, 40)}`, () => {
    assert.throws(
      () => parse(env),
      (e: unknown) => {
        assert.ok(e instanceof AgentConfigError, String(e));
        assert.ok(
          e.message.includes(`${name}=${JSON.stringify(value)}`),
          `message should name ${name}=${JSON.stringify(value)}: ${e.message}`,
        );
        return true;
      },
    );
  });
}

test('an unusable hostname without NODENAME is refused, naming NODENAME', () => {
  assert.throws(() => parseAgentConfig({}, { hostname: () => 'bad_host' }), /NODENAME="": is unset and the hostname "bad_host"/);
});

test('all problems are reported together', () => {
  try {
    parse({ AS: 'x', FELIX_HEALTHPORT: 'y', IP: 'z' });
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof AgentConfigError);
    assert.equal(e.problems.length, 3);
    assert.match(e.message, /3 problems/);
  }
});

test('DATASTORE_TYPE=kubernetes: KUBECONFIG, an API endpoint, or in-cluster configuration', () => {
  const k = parse({ DATASTORE_TYPE: 'kubernetes', KUBECONFIG: '/etc/tortie/kubeconfig' });
  assert.equal(k.datastore.datastoreType, 'kubernetes');
  assert.equal(k.datastore.kubeconfig, '/etc/tortie/kubeconfig');
  const e = parse({ DATASTORE_TYPE: 'kubernetes', K8S_API_ENDPOINT: 'https://10.0.0.1:6443', K8S_API_TOKEN: 't' });
  assert.equal(e.datastore.k8sAPIEndpoint, 'https://10.0.0.1:6443');
  // Neither: in-cluster (service-account token), checked when the backend opens.
  const ic = parse({ DATASTORE_TYPE: 'kubernetes' });
  assert.equal(ic.datastore.datastoreType, 'kubernetes');
  assert.equal(ic.datastore.kubeconfig, undefined);
  // kubernetes-internal-ip reads the k8s Node: accepted on kubernetes only (refused otherwise, see `bad`).
  assert.deepEqual(parse({ DATASTORE_TYPE: 'kubernetes', IP_AUTODETECTION_METHOD: 'kubernetes-internal-ip' }).autodetection, { kind: 'kubernetes-internal-ip' });
});
