// A node's own filesystem view: a mount namespace per node (held by a `sleep` started through
// `nsenter --net` + `unshare --mount`, PID recorded), in which
//   - /etc, /opt, /var/lib, /var/log, /run and /usr/lib are overlays whose upper layer is a tmpfs of that
//     namespace (writes there stay with the node and vanish with it; nothing is created on the host),
//   - the standard paths of a Kubernetes node are bind mounts of per-node directories in the lab dir,
//   - the labs root is bound back over its overlay (when it lies under one), so the lab's files are
//     the real ones from inside too,
//   - every mount is then made shared (new peer groups of this namespace only), as on a systemd
//     host, so mountPropagation HostToContainer/Bidirectional work,
//   - the vm./kernel. sysctls the kubelet checks (protectKernelDefaults: false) are bind mounts of
//     regular files already holding the kubelet's values: it reads them as set and writes nothing to
//     the machine (a write would land in the file).
// And its own cgroup root, made in every cgroup v1 hierarchy and removed at `down`.
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { NODE_PATHS } from './configs.js';

/** Directories overlaid (upper layer on the namespace's tmpfs). */
export const OVERLAID = ['/etc', '/opt', '/var/lib', '/var/log', '/run', '/usr/lib'] as const;

/** Standard paths bound from the node's directory `<node>/fs<path>`. */
export const BOUND: readonly string[] = [
  NODE_PATHS.cniConfDir,
  NODE_PATHS.cniBinDir,
  NODE_PATHS.kubeletRoot,
  NODE_PATHS.podLogs,
  NODE_PATHS.containerdRoot,
  NODE_PATHS.containerdState,
  NODE_PATHS.cniState,
  NODE_PATHS.kubernetes,
  '/etc/containerd',
  '/run/calico', // = /var/run/calico (/var/run → /run)
  NODE_PATHS.calicoState,
];

/**
 * The kubelet's kernel defaults (pkg/kubelet/cm setupKernelTunables with protectKernelDefaults
 * false; keys' limits from its `ensureKeyLimits` check).
 */
export const KUBELET_SYSCTLS: Record<string, string> = {
  'vm/overcommit_memory': '1',
  'vm/panic_on_oom': '0',
  'kernel/panic': '10',
  'kernel/panic_on_oops': '1',
  'kernel/keys/root_maxkeys': '1000000',
  'kernel/keys/root_maxbytes': '25000000',
};

export function nodeFsDir(nodeDir: string): string {
  return join(nodeDir, 'fs');
}

/** Creates the per-node directories and shadow sysctl files (in the lab dir only). */
export function prepareNodeFs(nodeDir: string): void {
  const fs = nodeFsDir(nodeDir);
  for (const p of BOUND) mkdirSync(join(fs, p === '/run/calico' ? '/var/run/calico' : p), { recursive: true });
  mkdirSync(join(nodeDir, 'upper'), { recursive: true });
  for (const [k, v] of Object.entries(KUBELET_SYSCTLS)) {
    const f = join(nodeDir, 'sysctl', k);
    mkdirSync(dirname(f), { recursive: true });
    writeFileSync(f, `${v}\n`);
  }
}

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/**
 * The holder's script (bash, every path an argument): mounts, then `exec sleep infinity`. Printed
 * `mountns-ready` marks the end of the set-up in its log.
 */
export const HOLDER_SCRIPT = `set -euo pipefail
node="$1"; labs="$2"; rebind="$3"; shift 3
exec 3<"$labs"
mount -t tmpfs -o mode=755,size=256m tortie-lab-node "$node/upper"
# The overlays in the order given: the one over the labs root last (after it, "$node/upper"
# would be reached through that overlay, which does not show the tmpfs).
for p in "$@"; do
  u="$node/upper$p"; mkdir -p "$u/u" "$u/w"
  mount -t overlay overlay -o "lowerdir=$p,upperdir=$u/u,workdir=$u/w" "$p"
done
# --no-canonicalize: mount(8) would otherwise resolve the fd link to its path, now overlaid.
if [ "$rebind" = 1 ]; then mount --no-canonicalize --rbind /proc/self/fd/3 "$labs"; fi
exec 3<&-
# A host has /lib/modules (DaemonSets mount it, e.g. Calico's); this machine has none: the node's is empty.
mkdir -p /lib/modules
for p in ${BOUND.join(' ')}; do
  src="$node/fs$p"; [ "$p" = /run/calico ] && src="$node/fs/var/run/calico"
  mkdir -p "$p"; mount --bind "$src" "$p"
done
for k in ${Object.keys(KUBELET_SYSCTLS).join(' ')}; do mount --bind "$node/sysctl/$k" "/proc/sys/$k"; done
# Shared, as systemd makes a host's mounts: the runtime's later mounts (pod network namespaces)
# reach containers mounting them with HostToContainer. Peer groups of this namespace only: every
# mount here was made private first, so nothing propagates to or from the machine.
mount --make-rshared /
echo mountns-ready
exec sleep infinity
`;

/** argv (after `nsenter --net=…`) of the holder of a node's mount namespace. */
export function holderArgv(nodeDir: string, labsRoot: string): string[] {
  for (const o of OVERLAID) if (under(o, labsRoot)) throw new Error(`TORTIE_LAB_DIR ${labsRoot} holds ${o}: choose a directory below it`);
  const holding = OVERLAID.filter((o) => under(labsRoot, o));
  const order = [...OVERLAID.filter((o) => !holding.includes(o)), ...holding];
  return ['/usr/bin/unshare', '--mount', '--propagation', 'private', '/bin/bash', '-c', HOLDER_SCRIPT, 'tortie-lab-mountns', nodeDir, labsRoot, holding.length > 0 ? '1' : '0', ...order];
}

// ---------------------------------------------------------------------------------------------
// cgroups

export const CGROUP_FS = '/sys/fs/cgroup';

/** The cgroup v1 hierarchies mounted under /sys/fs/cgroup (and the v2 `unified` one if there). */
export function cgroupHierarchies(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const mnt = f[4];
    const dash = f.indexOf('-');
    const fstype = f[dash + 1];
    if (!mnt?.startsWith(`${CGROUP_FS}/`) || (fstype !== 'cgroup' && fstype !== 'cgroup2')) continue;
    out.push(mnt);
  }
  return [...new Set(out)];
}

/** A lab node's cgroup root name (unique per lab and node). */
export function cgroupRootName(labPrefix: string, node: string): string {
  return `/${labPrefix}${node}`.replace(/-$/, '');
}

/** Makes `root` in every hierarchy (cpuset: with the parent's cpus and mems). Returns the dirs made. */
export function makeCgroupRoot(root: string): string[] {
  const made: string[] = [];
  for (const h of cgroupHierarchies()) {
    const d = join(h, root);
    if (!existsSync(d)) {
      mkdirSync(d);
      made.push(d);
    }
    if (h.endsWith('/cpuset')) {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) {
        const cur = readFileSync(join(d, f), 'utf8').trim();
        if (cur === '') writeFileSync(join(d, f), readFileSync(join(h, f), 'utf8').trim());
      }
    }
  }
  return made;
}

/** Every cgroup directory under `root` in every hierarchy, deepest first. */
export function cgroupTree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e);
      try {
        if (statSync(p).isDirectory()) walk(p);
      } catch {
        // gone
      }
    }
    out.push(d);
  };
  for (const h of cgroupHierarchies()) {
    const d = join(h, root);
    if (existsSync(d)) walk(d);
  }
  return out.sort((a, b) => b.split('/').length - a.split('/').length);
}

/** PIDs in any cgroup under `root` (the lab node's containers). */
export function cgroupPids(root: string): number[] {
  const pids = new Set<number>();
  for (const d of cgroupTree(root)) {
    try {
      for (const l of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (/^\d+$/.test(l)) pids.add(Number(l));
    } catch {
      // gone
    }
  }
  return [...pids];
}

/** rmdir of every cgroup directory under `root` (deepest first); returns those left. */
export function removeCgroupRoot(root: string): string[] {
  const left: string[] = [];
  for (const d of cgroupTree(root)) {
    try {
      rmdirSync(d);
    } catch {
      left.push(d);
    }
  }
  return left;
}
