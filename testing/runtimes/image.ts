// A tiny container image built locally, with no registry: a rootfs holding Debian's static busybox
// (package busybox-static, /bin/busybox) plus a symlink per applet, written as an OCI image layout
// and packed into a tar that both `ctr images import` and `podman load` accept.
//
// Layout of the archive (OCI image-layout 1.0):
//   oci-layout                          {"imageLayoutVersion":"1.0.0"}
//   index.json                          one manifest, annotated with the image name
//   blobs/sha256/<layer>                uncompressed tar of the rootfs (application/vnd.oci.image.layer.v1.tar)
//   blobs/sha256/<config>               image config (os, architecture, diff_ids, Env, Cmd)
//   blobs/sha256/<manifest>             image manifest
//
// Naming: containerd names the image after the `io.containerd.image.name` annotation; podman after
// `org.opencontainers.image.ref.name`. Both annotations carry the same full reference (IMAGE_REF).

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The reference under which the image is imported into containerd and podman. */
export const IMAGE_REF = 'localhost/tortie-rig/busybox:latest';

/** Debian's static busybox (package busybox-static). */
export const BUSYBOX = '/bin/busybox';

/** Applets that must be present; the test rig relies on them. All others busybox lists are linked too. */
export const REQUIRED_APPLETS = ['sh', 'ip', 'ping', 'nc', 'sleep', 'wget', 'httpd', 'cat', 'ls', 'hostname'] as const;

export interface BuiltImage {
  /** Path of the OCI archive (tar). */
  archive: string;
  /** The image reference (IMAGE_REF). */
  ref: string;
  /** sha256 digest of the manifest, "sha256:<hex>". */
  manifestDigest: string;
}

function sha256File(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function ociArch(): string {
  switch (process.arch) {
    case 'x64':
      return 'amd64';
    case 'arm64':
      return 'arm64';
    case 'arm':
      return 'arm';
    case 'ia32':
      return '386';
    default:
      return process.arch;
  }
}

function run(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.error) throw new Error(`${argv.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}: ${(r.stderr ?? '').trim()}`);
  return r.stdout ?? '';
}

/** Whether the image can be built here (busybox-static and tar present). */
export function canBuildImage(): string | null {
  if (!existsSync(BUSYBOX)) return `${BUSYBOX} missing (apt-get install busybox-static)`;
  const r = spawnSync(BUSYBOX, ['--list'], { encoding: 'utf8' });
  if (r.status !== 0) return `${BUSYBOX} --list failed`;
  const applets = new Set((r.stdout ?? '').split('\n'));
  const missing = REQUIRED_APPLETS.filter((a) => !applets.has(a));
  if (missing.length) return `${BUSYBOX} lacks applets: ${missing.join(', ')}`;
  if (spawnSync('tar', ['--version']).status !== 0) return 'tar missing';
  return null;
}

/** Writes the rootfs: /bin/busybox, /bin/<applet> -> busybox, /etc/{passwd,group,hosts}, empty mount points. */
export function writeRootfs(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const d of ['bin', 'dev', 'proc', 'sys', 'etc', 'tmp', 'var/www', 'root', 'run']) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, 'tmp'), 0o1777);
  copyFileSync(BUSYBOX, join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  const applets = run([BUSYBOX, '--list'])
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '' && s !== 'busybox' && !s.includes('/'));
  for (const a of applets) symlinkSync('busybox', join(dir, 'bin', a));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(dir, 'var/www/index.html'), 'tortie-rig\n');
}

/**
 * Builds (or reuses, if `<dir>/image.oci.tar` exists) the OCI archive in `dir`.
 * Everything is written under `dir`; the caller removes it.
 */
export function buildImage(dir: string): BuiltImage {
  const archive = join(dir, 'image.oci.tar');
  const infoFile = join(dir, 'image.json');
  if (existsSync(archive) && existsSync(infoFile)) return JSON.parse(readFileSync(infoFile, 'utf8')) as BuiltImage;
  const why = canBuildImage();
  if (why) throw new Error(`cannot build the test image: ${why}`);

  const work = join(dir, 'image-build');
  rmSync(work, { recursive: true, force: true });
  const rootfs = join(work, 'rootfs');
  writeRootfs(rootfs);

  const layout = join(work, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });

  // Layer: the rootfs as an uncompressed tar, owned by root. Its digest is also its diff_id.
  const layerTmp = join(work, 'layer.tar');
  run(['tar', '--create', '--file', layerTmp, '--directory', rootfs, '--numeric-owner', '--owner=0', '--group=0', '--sort=name', '.']);
  const layerHex = sha256File(layerTmp);
  const layerSize = statSync(layerTmp).size;
  renameSync(layerTmp, join(blobs, layerHex));

  const putJson = (v: unknown): { digest: string; size: number } => {
    const buf = Buffer.from(JSON.stringify(v));
    const hex = createHash('sha256').update(buf).digest('hex');
    writeFileSync(join(blobs, hex), buf);
    return { digest: `sha256:${hex}`, size: buf.length };
  };

  const config = putJson({
    created: '2000-01-01T00:00:00Z',
    architecture: ociArch(),
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [`sha256:${layerHex}`] },
    history: [{ created: '2000-01-01T00:00:00Z', created_by: 'tortie testing/runtimes/image.ts (busybox-static)' }],
  });
  const manifest = putJson({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerHex}`, size: layerSize }],
  });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          platform: { architecture: ociArch(), os: 'linux' },
          annotations: { 'io.containerd.image.name': IMAGE_REF, 'org.opencontainers.image.ref.name': IMAGE_REF },
        },
      ],
    }),
  );
  const tmpArchive = `${archive}.tmp`;
  run(['tar', '--create', '--file', tmpArchive, '--directory', layout, '--numeric-owner', '--owner=0', '--group=0', 'oci-layout', 'index.json', 'blobs']);
  renameSync(tmpArchive, archive);
  rmSync(work, { recursive: true, force: true });
  const info: BuiltImage = { archive, ref: IMAGE_REF, manifestDigest: manifest.digest };
  writeFileSync(infoFile, JSON.stringify(info));
  return info;
}
