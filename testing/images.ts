// The container images and e2e binaries scripts/build-images.sh builds into the cache outside the
// tree (no Docker, no registry): where they are, whether they are built, what an archive holds, and
// the argv to import one into a containerd.
//
//   imageArchive('agnhost')          // /var/cache/tortie/images/agnhost-2.56.tar
//   imageRef('agnhost')              // registry.k8s.io/e2e-test-images/agnhost:2.56
//   imageRef('tortie')               // tortie.local/tortie:<package.json version> (Tortie's own image)
//   missingImages()                  // names not built yet (run scripts/build-images.sh)
//   readImageArchive(path)           // index, manifest, config; every blob checked against its digest
//   ctrImportArgv(address, 'pause')  // ctr --address <address> --namespace k8s.io images import <archive>
//   e2eBinaries(), missingE2eBinaries()
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The images scripts/build-images.sh writes. */
export const IMAGE_NAMES = ['pause', 'agnhost', 'coredns', 'busybox', 'tortie'] as const;
export type ImageName = (typeof IMAGE_NAMES)[number];

/** Defaults of scripts/build-images.sh (a test checks them against the script's --list). */
export const K8S_VERSION_DEFAULT = 'v1.34.4';
export const COREDNS_VERSION_DEFAULT = 'v1.12.1';
/** kubelet 1.34's and kubeadm 1.34's sandbox image tag (cmd/kubeadm/app/constants PauseVersion). */
export const PAUSE_TAG = '3.10.1';
/** test/utils/image/manifest.go at k8s v1.34.4: configs[Agnhost] = {PromoterE2eRegistry, "agnhost", "2.56"}. */
export const AGNHOST_TAG = '2.56';

/** The namespace the kubelet's CRI uses in containerd: images must be imported there. */
export const K8S_CONTAINERD_NAMESPACE = 'k8s.io';

export interface ImagesBuild {
  cache: string;
  k8sVersion: string;
  corednsVersion: string;
  /** Debian's busybox-static upstream version (the busybox image's tag). */
  busyboxVersion: string;
  /** package.json's version (Tortie's image tag). */
  tortieVersion: string;
}

let tortieVersionCache: string | undefined;
/** The version in package.json: the tag of tortie.local/tortie (and of manifests/tortie.yaml's image). */
export function tortieVersion(): string {
  if (tortieVersionCache === undefined) {
    try {
      const v = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: unknown }).version;
      tortieVersionCache = typeof v === 'string' && v ? v : 'unknown';
    } catch {
      tortieVersionCache = 'unknown';
    }
  }
  return tortieVersionCache;
}

let busyboxVersionCache: string | undefined;
function busyboxVersion(): string {
  if (busyboxVersionCache === undefined) {
    try {
      const v = execFileSync('dpkg-query', ['-W', '-f', '${Version}', 'busybox-static'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      busyboxVersionCache = v.replace(/^[0-9]*:/, '').replace(/-.*$/, '') || 'unknown';
    } catch {
      busyboxVersionCache = 'unknown';
    }
  }
  return busyboxVersionCache;
}

/** The build's settings, from the same environment variables as scripts/build-images.sh. */
export function imagesBuild(env: NodeJS.ProcessEnv = process.env): ImagesBuild {
  return {
    cache: env.TORTIE_CACHE || '/var/cache/tortie',
    k8sVersion: env.TORTIE_K8S_VERSION || K8S_VERSION_DEFAULT,
    corednsVersion: env.TORTIE_COREDNS_VERSION || COREDNS_VERSION_DEFAULT,
    busyboxVersion: busyboxVersion(),
    tortieVersion: tortieVersion(),
  };
}

/** The image reference an archive carries (and containerd names it by). */
export function imageRef(name: ImageName, env: NodeJS.ProcessEnv = process.env): string {
  const b = imagesBuild(env);
  switch (name) {
    case 'pause':
      return `registry.k8s.io/pause:${PAUSE_TAG}`;
    case 'agnhost':
      return `registry.k8s.io/e2e-test-images/agnhost:${AGNHOST_TAG}`;
    case 'coredns':
      return `registry.k8s.io/coredns/coredns:${b.corednsVersion}`;
    case 'busybox':
      return `tortie.local/busybox:${b.busyboxVersion}`;
    case 'tortie':
      return `tortie.local/tortie:${b.tortieVersion}`;
  }
}

/** Path of an image's OCI archive in the cache (whether or not it is built). */
export function imageArchive(name: ImageName, env: NodeJS.ProcessEnv = process.env): string {
  const b = imagesBuild(env);
  const tag = { pause: PAUSE_TAG, agnhost: AGNHOST_TAG, coredns: b.corednsVersion, busybox: b.busyboxVersion, tortie: b.tortieVersion }[name];
  return join(b.cache, 'images', `${name}-${tag}.tar`);
}

/** The names among `which` whose archive is not built (empty when all are there). */
export function missingImages(which: readonly ImageName[] = IMAGE_NAMES, env: NodeJS.ProcessEnv = process.env): ImageName[] {
  return which.filter((n) => !existsSync(imageArchive(n, env)));
}

/** A reason to skip a test needing `which` images, or false when they are built. */
export function imagesSkipReason(which: readonly ImageName[] = IMAGE_NAMES, env: NodeJS.ProcessEnv = process.env): string | false {
  const m = missingImages(which, env);
  return m.length === 0 ? false : `needs the images built by scripts/build-images.sh: ${m.join(', ')} not built (run scripts/build-images.sh --only images)`;
}

export interface E2eBinaries {
  /** go test -c k8s.io/kubernetes/test/e2e, at the Kubernetes version of the build. */
  e2eTest: string;
  /** The ginkgo CLI at the version k8s.io/kubernetes requires (only needed for parallel runs). */
  ginkgo: string;
}

export function e2eBinaries(env: NodeJS.ProcessEnv = process.env): E2eBinaries {
  const b = imagesBuild(env);
  const d = join(b.cache, 'k8s', b.k8sVersion, 'bin');
  return { e2eTest: join(d, 'e2e.test'), ginkgo: join(d, 'ginkgo') };
}

export function missingE2eBinaries(env: NodeJS.ProcessEnv = process.env): string[] {
  return Object.values(e2eBinaries(env)).filter((p) => !existsSync(p));
}

/** argv importing an image into the containerd at `address` (namespace k8s.io unless given). */
export function ctrImportArgv(address: string, name: ImageName, opts: { namespace?: string; ctr?: string; env?: NodeJS.ProcessEnv } = {}): string[] {
  return [opts.ctr ?? '/usr/bin/ctr', '--address', address, '--namespace', opts.namespace ?? K8S_CONTAINERD_NAMESPACE, 'images', 'import', imageArchive(name, opts.env)];
}

// ------------------------------------------------------------------ reading an archive

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { architecture: string; os: string };
  annotations?: Record<string, string>;
}
export interface ImageConfig {
  created: string;
  architecture: string;
  os: string;
  config: { User?: string; Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; ExposedPorts?: Record<string, object>; Labels?: Record<string, string> };
  rootfs: { type: string; diff_ids: string[] };
}
export interface ImageArchive {
  /** Entry names in archive order. */
  entries: string[];
  index: { schemaVersion: number; mediaType?: string; manifests: Descriptor[] };
  manifestDigest: string;
  manifest: { schemaVersion: number; mediaType: string; config: Descriptor; layers: Descriptor[] };
  config: ImageConfig;
  /** The image reference in the index (io.containerd.image.name). */
  ref: string;
}

interface TarEntry {
  name: string;
  type: string;
  offset: number;
  size: number;
}

/** Lists a plain (ustar) tar file's entries with their data offsets. */
export function tarEntries(path: string): TarEntry[] {
  const fd = openSync(path, 'r');
  try {
    const total = statSync(path).size;
    const out: TarEntry[] = [];
    const h = Buffer.alloc(512);
    let pos = 0;
    while (pos + 512 <= total) {
      readSync(fd, h, 0, 512, pos);
      if (h.every((x) => x === 0)) break;
      const str = (o: number, l: number) => h.subarray(o, o + l).toString('utf8').replace(/\0.*$/s, '');
      const prefix = str(345, 155);
      const name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
      const size = parseInt(str(124, 12).trim() || '0', 8);
      out.push({ name, type: str(156, 1) || '0', offset: pos + 512, size });
      pos += 512 + Math.ceil(size / 512) * 512;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

function readAt(path: string, offset: number, size: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(size);
    readSync(fd, b, 0, size, offset);
    return b;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads an OCI image archive and checks it: oci-layout, one linux/amd64 manifest in index.json, every
 * blob's sha256 equal to its name, the manifest's config and layers present with their sizes. Throws
 * naming the first problem.
 */
export function readImageArchive(path: string): ImageArchive {
  const entries = tarEntries(path);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const file = (n: string): Buffer => {
    const e = byName.get(n);
    if (e?.type !== '0') throw new Error(`${path}: no file ${n}`);
    return readAt(path, e.offset, e.size);
  };
  const layout = JSON.parse(file('oci-layout').toString()) as { imageLayoutVersion: string };
  if (layout.imageLayoutVersion !== '1.0.0') throw new Error(`${path}: oci-layout ${JSON.stringify(layout)}`);
  for (const e of entries) {
    if (!e.name.startsWith('blobs/sha256/') || e.type !== '0') continue;
    const hex = createHash('sha256').update(readAt(path, e.offset, e.size)).digest('hex');
    if (`blobs/sha256/${hex}` !== e.name) throw new Error(`${path}: blob ${e.name} has sha256 ${hex}`);
  }
  const blob = (d: Descriptor): Buffer => {
    const m = /^sha256:([0-9a-f]{64})$/.exec(d.digest);
    if (!m) throw new Error(`${path}: bad digest ${d.digest}`);
    const b = file(`blobs/sha256/${m[1]}`);
    if (b.length !== d.size) throw new Error(`${path}: ${d.digest} is ${b.length} bytes, descriptor says ${d.size}`);
    return b;
  };
  const index = JSON.parse(file('index.json').toString()) as ImageArchive['index'];
  if (index.manifests.length !== 1) throw new Error(`${path}: ${index.manifests.length} manifests, want 1`);
  const md = index.manifests[0]!;
  if (md.platform?.os !== 'linux' || md.platform?.architecture !== 'amd64') throw new Error(`${path}: platform ${JSON.stringify(md.platform)}`);
  const manifest = JSON.parse(blob(md).toString()) as ImageArchive['manifest'];
  const config = JSON.parse(blob(manifest.config).toString()) as ImageConfig;
  for (const l of manifest.layers) blob(l);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) throw new Error(`${path}: ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`);
  const ref = md.annotations?.['io.containerd.image.name'] ?? '';
  return { entries: entries.map((e) => e.name), index, manifestDigest: md.digest, manifest, config, ref };
}
