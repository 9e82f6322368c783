// Pure text of every configuration file of a lab cluster: containerd's config.toml, the kubelet's
// KubeletConfiguration, kube-proxy's KubeProxyConfiguration, the scheduler's configuration and the
// CNI network configurations (tortie, Debian's bridge + host-local). Paths inside are the standard
// ones as seen from the node's own mount namespace (lab/pkg/kube/nodefs.ts binds them per node).
// JSON is written where YAML is read (every loader here accepts it).

/** The seed's (kubespray's) networks. */
export const SERVICE_CIDR = '10.233.0.0/18';
export const POD_CIDR = '10.233.64.0/18';
/** The first address of the service range: the `kubernetes` Service. */
export const API_SERVICE_IP = '10.233.0.1';
export const API_PORT = 6443;
export const CLUSTER_DOMAIN = 'cluster.local';
export const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10.1';
export const AGNHOST_IMAGE = 'registry.k8s.io/e2e-test-images/agnhost:2.56';

/**
 * none: no network (nodes NotReady); tortie: the lab's stand-in (host processes); manifest: Tortie
 * installed as an operator does (manifests/tortie.yaml applied, its image in every containerd);
 * bridge: Debian's bridge + host-local.
 */
export type CniKind = 'none' | 'tortie' | 'manifest' | 'bridge';
export const CNI_KINDS: readonly CniKind[] = ['none', 'tortie', 'manifest', 'bridge'];

/** Standard node paths (inside the node's mount namespace). */
export const NODE_PATHS = {
  cniConfDir: '/etc/cni/net.d',
  cniBinDir: '/opt/cni/bin',
  kubeletRoot: '/var/lib/kubelet',
  podLogs: '/var/log/pods',
  containerdRoot: '/var/lib/containerd',
  containerdState: '/run/containerd',
  containerdSocket: '/run/containerd/containerd.sock',
  containerdConfig: '/etc/containerd/config.toml',
  cniState: '/var/lib/cni',
  kubernetes: '/etc/kubernetes',
  calicoRun: '/var/run/calico',
  calicoState: '/var/lib/calico',
} as const;

/** containerd 1.6 (config version 2), everything at the node's standard paths. */
export function containerdConfig(): string {
  const q = JSON.stringify;
  return [
    'version = 2',
    `root = ${q(NODE_PATHS.containerdRoot)}`,
    `state = ${q(NODE_PATHS.containerdState)}`,
    'oom_score = 0',
    '',
    '[grpc]',
    `  address = ${q(NODE_PATHS.containerdSocket)}`,
    '',
    '[plugins."io.containerd.grpc.v1.cri"]',
    `  sandbox_image = ${q(PAUSE_IMAGE)}`,
    '  netns_mounts_under_state_dir = true',
    '  tolerate_missing_hugetlb_controller = true',
    '  disable_hugetlb_controller = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    // No CAP_SYS_RESOURCE here: runc may not lower oom_score_adj (the sandbox's -998 fails with
    // "failed to update /proc/self/oom_score_adj: Permission denied"); clamp to containerd's own.
    '  restrict_oom_score_adj = true',
    '  [plugins."io.containerd.grpc.v1.cri".containerd]',
    '    snapshotter = "overlayfs"',
    '    default_runtime_name = "runc"',
    '    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
    '      runtime_type = "io.containerd.runc.v2"',
    '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
    '        SystemdCgroup = false',
    '  [plugins."io.containerd.grpc.v1.cri".cni]',
    `    bin_dir = ${q(NODE_PATHS.cniBinDir)}`,
    `    conf_dir = ${q(NODE_PATHS.cniConfDir)}`,
    '    max_conf_num = 1',
    '',
  ].join('\n');
}

export interface KubeletOptions {
  /** The node's own cgroup root (exists in every v1 controller). */
  cgroupRoot: string;
  clusterDNS?: string[];
}

/** The kubelet's KubeletConfiguration (kubelet.config.k8s.io/v1beta1). */
export function kubeletConfig(o: KubeletOptions): Record<string, unknown> {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: `${NODE_PATHS.kubernetes}/pki/ca.crt` },
    },
    authorization: { mode: 'Webhook' },
    cgroupDriver: 'cgroupfs',
    cgroupRoot: o.cgroupRoot,
    cgroupsPerQOS: true,
    failSwapOn: false,
    failCgroupV1: false,
    containerRuntimeEndpoint: `unix://${NODE_PATHS.containerdSocket}`,
    podLogsDir: NODE_PATHS.podLogs,
    // Images cannot be pulled again here: image GC only at a full disk; no disk evictions.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    // false: the kubelet checks (and would set) vm./kernel. sysctls; the node's mount namespace
    // shows it files holding its expected values (nodefs.ts), so it writes nothing global.
    protectKernelDefaults: false,
    clusterDomain: CLUSTER_DOMAIN,
    clusterDNS: o.clusterDNS ?? [],
    resolvConf: '/etc/resolv.conf',
    healthzBindAddress: '127.0.0.1',
    rotateCertificates: false,
    serverTLSBootstrap: false,
    registerNode: true,
    maxPods: 110,
  };
}

/** kube-proxy's configuration: nftables mode (no IPVS in this kernel), pod CIDR as the local range. */
export function kubeProxyConfig(nodeName: string): Record<string, unknown> {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: `${NODE_PATHS.kubernetes}/kube-proxy.conf` },
    hostnameOverride: nodeName,
    mode: 'nftables',
    clusterCIDR: POD_CIDR,
    detectLocalMode: 'ClusterCIDR',
    // Global conntrack sysctls are left alone (kubernetes.md §7.1).
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
    metricsBindAddress: '127.0.0.1:10249',
    healthzBindAddress: '127.0.0.1:10256',
  };
}

export function schedulerConfig(kubeconfig: string): Record<string, unknown> {
  return {
    apiVersion: 'kubescheduler.config.k8s.io/v1',
    kind: 'KubeSchedulerConfiguration',
    clientConnection: { kubeconfig },
    leaderElection: { leaderElect: false },
  };
}

/** The seed's conflist shape for tortie on the kubernetes datastore (install-cni's 10-calico.conflist). */
export function tortieConflist(nodeName: string, extraPlugins: string[]): Record<string, unknown> {
  const plugins: Record<string, unknown>[] = [
    {
      type: 'tortie',
      log_level: 'info',
      datastore_type: 'kubernetes',
      nodename: nodeName,
      nodename_file: `${NODE_PATHS.calicoState}/nodename`,
      agent_socket: `${NODE_PATHS.calicoRun}/cni.sock`,
      ipam: { type: 'tortie-ipam', assign_ipv4: 'true', ipv4_pools: [POD_CIDR] },
      policy: { type: 'k8s' },
      kubernetes: { kubeconfig: `${NODE_PATHS.cniConfDir}/tortie-kubeconfig` },
    },
  ];
  if (extraPlugins.includes('portmap')) plugins.push({ type: 'portmap', snat: true, capabilities: { portMappings: true } });
  if (extraPlugins.includes('bandwidth')) plugins.push({ type: 'bandwidth', capabilities: { bandwidth: true } });
  return { name: 'k8s-pod-network', cniVersion: '0.3.1', plugins };
}

/** Debian's bridge + host-local on the node's podCIDR (the benchmark's reference CNI). */
export function bridgeConflist(podCIDR: string): Record<string, unknown> {
  return {
    name: 'lab-bridge',
    cniVersion: '0.4.0',
    plugins: [
      {
        type: 'bridge',
        bridge: 'cni0',
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: podCIDR }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: `${NODE_PATHS.cniState}/networks` },
      },
      { type: 'portmap', snat: true, capabilities: { portMappings: true } },
    ],
  };
}
