// Installs the CNI plugins so they run on the host, outside the image: the image's Node runtime (the
// binary, its dynamic loader and the libraries ldd listed at build time, named in
// /opt/tortie/host-runtime.json) and Tortie's app (package.json, dist/, node_modules/) are copied to
// `<host bin dir>/tortie.d/<content key>/`, then each plugin gets a small /bin/sh launcher in the
// host bin dir that runs `<bundle>/lib/<loader> --library-path <bundle>/lib <bundle>/node <plugin>.js`
// — the bundle's own loader and libc, so nothing of the host's userland but /bin/sh is used.
//
// Upgrades: a bundle is copied under a temporary name and renamed into place when complete, then the
// launchers are replaced atomically (a plugin started before runs its old bundle to its end); other
// bundles are removed afterwards. A bundle already present with the same key is not copied again.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { writeFileAtomic } from './token.js';

export interface HostRuntime {
  node: string;
  loader: string;
  libraries: string[];
  app: string;
  plugins: Record<string, string>;
  /** Plugins copied as they are from the image's CNI bin dir (Debian's portmap, bandwidth, …). */
  otherPlugins?: string[];
}

export const BUNDLE_DIR = 'tortie.d';

function listTree(dir: string, out: string[] = [], base = dir): string[] {
  for (const n of readdirSync(dir).sort()) {
    const p = join(dir, n);
    const st = statSync(p);
    if (st.isDirectory()) listTree(p, out, base);
    else if (st.isFile()) out.push(relative(base, p));
  }
  return out;
}

/** The files of the bundle: destination (relative to the bundle) → source. */
export function bundleFiles(rt: HostRuntime, appDir: string): Map<string, string> {
  const m = new Map<string, string>();
  m.set('node', rt.node);
  for (const l of [rt.loader, ...rt.libraries]) m.set(`lib/${basename(l)}`, l);
  for (const f of listTree(appDir)) if (f !== 'host-runtime.json') m.set(`app/${f}`, join(appDir, f));
  return m;
}

/** The launcher a plugin gets in the host bin dir. */
export function launcherScript(plugin: string, key: string, loader: string, entry: string): string {
  return [
    '#!/bin/sh',
    `# ${plugin}: Tortie's CNI plugin, installed by tortie-install-cni. Runs with the Node runtime and`,
    `# libraries of the bundle beside it (${BUNDLE_DIR}/${key}), not the host's.`,
    'case "$0" in */*) d="${0%/*}" ;; *) d=. ;; esac',
    `d="$d/${BUNDLE_DIR}/${key}"`,
    'unset NODE_EXTRA_CA_CERTS',
    `exec "$d/lib/${basename(loader)}" --library-path "$d/lib" "$d/node" "$d/app/${entry}" "$@"`,
    '',
  ].join('\n');
}

export interface InstallPluginsResult {
  key: string;
  bundle: string;
  copied: boolean;
  launchers: string[];
}

/** Copies the bundle (if needed) and writes the launchers of the plugins not in `skip`. */
export function installPlugins(appDir: string, hostBinDir: string, skip: readonly string[] = [], imageBinDir = '/opt/cni/bin'): InstallPluginsResult {
  const rtFile = join(appDir, 'host-runtime.json');
  let rt: HostRuntime;
  try {
    rt = JSON.parse(readFileSync(rtFile, 'utf8')) as HostRuntime;
  } catch (e) {
    throw new Error(`cannot read ${rtFile} (is this Tortie's image?): ${(e as Error).message}`);
  }
  const files = bundleFiles(rt, appDir);
  const h = createHash('sha256');
  for (const [dst, src] of [...files].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    h.update(`${dst}\0${statSync(src).mode & 0o111 ? 'x' : '-'}\0`);
    h.update(readFileSync(src));
    h.update('\0');
  }
  const key = h.digest('hex').slice(0, 16);
  const bundles = join(hostBinDir, BUNDLE_DIR);
  const bundle = join(bundles, key);
  mkdirSync(bundles, { recursive: true });
  let copied = false;
  if (!existsSync(join(bundle, '.complete'))) {
    const tmp = `${bundle}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    for (const [dst, src] of files) {
      const to = join(tmp, dst);
      mkdirSync(join(to, '..'), { recursive: true });
      cpSync(src, to, { dereference: true });
    }
    writeFileSync(join(tmp, '.complete'), `${key}\n`);
    rmSync(bundle, { recursive: true, force: true });
    renameSync(tmp, bundle);
    copied = true;
  }
  const launchers: string[] = [];
  for (const [plugin, entry] of Object.entries(rt.plugins).sort()) {
    if (skip.includes(plugin)) continue;
    const p = join(hostBinDir, plugin);
    writeFileAtomic(p, launcherScript(plugin, key, rt.loader, entry), 0o755);
    launchers.push(p);
  }
  // The other plugins: copied when different (temporary file + rename), as Calico's install does.
  for (const plugin of rt.otherPlugins ?? []) {
    if (skip.includes(plugin)) continue;
    const src = join(imageBinDir, plugin);
    const dst = join(hostBinDir, plugin);
    const data = readFileSync(src);
    let same = false;
    try {
      same = readFileSync(dst).equals(data);
    } catch {
      same = false;
    }
    if (!same) writeFileAtomic(dst, data, 0o755);
    launchers.push(dst);
  }
  for (const n of readdirSync(bundles)) {
    if (n !== key) rmSync(join(bundles, n), { recursive: true, force: true });
  }
  return { key, bundle, copied, launchers };
}
