#!/usr/bin/env node
// Stages the file trees of Tortie's own image (tortie.local/tortie:<version>) for images/oci-image.mjs,
// or prints their content key without copying anything:
//
//   node images/tortie-rootfs.mjs --root REPO --out DIR   # DIR/base (runtime + tools), DIR/app (Tortie)
//   node images/tortie-rootfs.mjs --root REPO --key       # sha256 of every staged path, mode and content
//
// base: the Node runtime (this process's own binary, process.execPath, as /usr/bin/node), Debian's
//   BIRD 2 (bird, birdc), iproute2 (ip, bridge), nftables (nft), procps' sysctl, util-linux's nsenter
//   and setpriv — the absolute paths the product calls — and every shared library `ldd` lists for
//   them (and for the better-sqlite3 addon), at the paths ldd names; iproute2's data files.
// app: /opt/tortie/{package.json, dist/ (product files of the build only: no tests, testing/, bench/,
//   lab/), node_modules/ (the production dependency closure of package.json, without sources the
//   runtime does not load)}, launchers in /usr/bin and /opt/cni/bin, Debian's portmap, bandwidth,
//   loopback and host-local CNI plugins in /opt/cni/bin, and /opt/tortie/host-runtime.json:
//   the files tortie-install-cni copies to the host so the CNI plugins run outside the image.
//
// Everything is read from the host and the repository; nothing is downloaded. The key changes when
// any staged byte, mode or path changes (a rebuilt dist/, a Debian upgrade, another Node).
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

function fail(msg) {
  process.stderr.write(`tortie-rootfs: ${msg}\n`);
  process.exit(1);
}

const args = process.argv.slice(2);
let root = '';
let out = '';
let keyOnly = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--root') root = args[++i] ?? fail('--root needs a value');
  else if (args[i] === '--out') out = args[++i] ?? fail('--out needs a value');
  else if (args[i] === '--key') keyOnly = true;
  else fail(`unknown argument ${args[i]}`);
}
if (!root) fail('--root is required');
if (!keyOnly && !out) fail('--out or --key is required');

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const dist = path.join(root, 'dist');
if (!fs.existsSync(path.join(dist, 'node/cmd/tortie-node.js'))) fail(`${dist} is not built (npm run build)`);

/** Files to stage: image path → { src?, data?, mode, link? }. */
const base = new Map();
const app = new Map();

// ------------------------------------------------------------------ base: runtime and tools
const NODE = fs.realpathSync(process.execPath);
const TOOLS = {
  '/usr/sbin/bird': '/usr/sbin/bird',
  '/usr/sbin/birdc': '/usr/sbin/birdc',
  '/usr/sbin/ip': '/usr/sbin/ip',
  '/usr/sbin/bridge': '/usr/sbin/bridge',
  '/usr/sbin/nft': '/usr/sbin/nft',
  '/usr/sbin/sysctl': '/usr/sbin/sysctl',
  '/usr/bin/nsenter': '/usr/bin/nsenter',
  '/usr/bin/setpriv': '/usr/bin/setpriv',
};
for (const [dst, src] of Object.entries(TOOLS)) {
  if (!fs.existsSync(src)) fail(`${src} is missing on this host (apt-get install bird2 iproute2 nftables procps util-linux)`);
  base.set(dst, { src: fs.realpathSync(src), mode: 0o755 });
}
base.set('/usr/bin/node', { src: NODE, mode: 0o755 });

/** The shared libraries ldd lists for `elf`: [path as ldd names it, real file]. */
function libs(elf) {
  let text;
  try {
    text = execFileSync('ldd', [elf], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    fail(`ldd ${elf} failed: ${e.stderr || e.message}`);
  }
  const out = [];
  for (const line of text.split('\n')) {
    const m = /=>\s+(\/\S+)\s+\(/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m) out.push([m[1], fs.realpathSync(m[1])]);
    else if (/not found/.test(line)) fail(`ldd ${elf}: ${line.trim()}`);
  }
  return out;
}

// ------------------------------------------------------------------ app: Tortie
const APP = '/opt/tortie';
const PRODUCT_DIRS = ['cni-plugin', 'node', 'felix', 'confd', 'libcalico-go', 'calicoctl', 'kube-controllers'];
function walk(dir, rel, visit) {
  for (const n of fs.readdirSync(dir).sort()) {
    const abs = path.join(dir, n);
    const r = rel ? `${rel}/${n}` : n;
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) walk(abs, r, visit);
    else if (st.isFile()) visit(abs, r, st);
  }
}
for (const d of PRODUCT_DIRS) {
  walk(path.join(dist, d), d, (abs, rel) => {
    if (!rel.endsWith('.js') || rel.endsWith('.test.js') || rel.split('/').includes('testdata')) return;
    app.set(`${APP}/dist/${rel}`, { src: abs, mode: 0o644 });
  });
}
app.set(`${APP}/dist/build-info.json`, { src: path.join(dist, 'build-info.json'), mode: 0o644 });
app.set(`${APP}/package.json`, {
  data: Buffer.from(JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module', private: true, license: pkg.license }, null, 2) + '\n'),
  mode: 0o644,
});

// Production dependency closure, resolved as Node does (nearest node_modules upwards).
const nm = path.join(root, 'node_modules');
const seen = new Map(); // package dir → name
function resolvePkg(name, fromDir) {
  for (let d = fromDir; ; d = path.dirname(d)) {
    const cand = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(cand, 'package.json'))) return fs.realpathSync(cand);
    if (d === path.dirname(d) || d === path.dirname(root)) return undefined;
  }
}
function addDeps(fromDir, deps, optional) {
  for (const name of Object.keys(deps ?? {}).sort()) {
    const dir = resolvePkg(name, fromDir);
    if (!dir) {
      if (optional) continue;
      fail(`dependency ${name} (of ${fromDir}) is not installed (npm ci)`);
    }
    if (seen.has(dir)) continue;
    seen.set(dir, name);
    const p = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    addDeps(dir, p.dependencies, false);
    addDeps(dir, p.optionalDependencies, true);
  }
}
addDeps(root, pkg.dependencies, false);
const nmReal = fs.realpathSync(nm);
// Sources and build leftovers the runtime never loads (better-sqlite3's sqlite3 amalgamation and
// C++ sources, node-gyp's intermediate objects).
const SKIP_IN = { 'better-sqlite3': [/^deps\//, /^src\//, /^build\/(?!Release\/better_sqlite3\.node$)/] };
const addons = [];
for (const [dir, name] of [...seen].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
  const rel = path.relative(nmReal, dir);
  if (rel.startsWith('..')) fail(`${dir} is outside ${nmReal}`);
  const skip = SKIP_IN[name] ?? [];
  walk(dir, '', (abs, r, st) => {
    if (r.split('/')[0] === 'node_modules') return; // nested packages are added as packages of their own
    if (skip.some((re) => re.test(r))) return;
    if (/\.(md|markdown|map|ts|mts|cts)$/i.test(r)) return; // docs, source maps, type declarations
    app.set(`${APP}/node_modules/${rel}/${r}`, { src: abs, mode: st.mode & 0o111 ? 0o755 : 0o644 });
    if (r.endsWith('.node')) addons.push(abs);
  });
}

// Debian's reference plugins the network configuration chains (portmap, bandwidth) and the usual
// companions, as Calico's CNI image ships them; tortie-install-cni copies them to the host too.
const EXTRA_PLUGINS = ['portmap', 'bandwidth', 'loopback', 'host-local'];
const extraPlugins = [];
for (const n of EXTRA_PLUGINS) {
  const src = `/usr/lib/cni/${n}`;
  if (!fs.existsSync(src)) fail(`${src} is missing on this host (apt-get install containernetworking-plugins)`);
  app.set(`/opt/cni/bin/${n}`, { src: fs.realpathSync(src), mode: 0o755 });
  extraPlugins.push(src);
}

// Libraries of every ELF in the image.
const hostRuntime = new Set([NODE]);
for (const elf of [NODE, ...Object.values(TOOLS), ...extraPlugins, ...addons]) {
  for (const [named, real] of libs(elf)) {
    base.set(named, { src: real, mode: 0o755 });
    if (elf === NODE || addons.includes(elf)) hostRuntime.add(named);
  }
}
// iproute2's data files (rt_tables, rt_protos, … the names `ip` prints).
for (const d of ['/usr/share/iproute2', '/etc/iproute2']) {
  if (!fs.existsSync(d)) continue;
  walk(d, '', (abs, r) => base.set(`${d}/${r}`, { src: abs, mode: 0o644 }));
}

// Launchers. In the image: Node scripts with the image's /usr/bin/node (as scripts/make-bins.mjs).
const BINS = {
  'tortie-node': { target: 'node/cmd/tortie-node.js', flags: ' --max-semi-space-size=1' },
  tortiectl: { target: 'calicoctl/cmd/tortiectl.js' },
  'tortie-install-cni': { target: 'cni-plugin/cmd/install.js' },
  'tortie-kube-controllers': { target: 'kube-controllers/cmd/tortie-kube-controllers.js', flags: ' --max-semi-space-size=1' },
  tortie: { target: 'cni-plugin/cmd/tortie.js', cni: true },
  'tortie-ipam': { target: 'cni-plugin/cmd/tortie-ipam.js', cni: true },
};
for (const [name, { target, flags, cni }] of Object.entries(BINS)) {
  if (!app.has(`${APP}/dist/${target}`)) fail(`dist/${target} is not built`);
  const shebang = cni ? '#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS /usr/bin/node' : `#!/usr/bin/node${flags ?? ''}`;
  const data = Buffer.from(`${shebang}\nimport(${JSON.stringify(`${APP}/dist/${target}`)});\n`);
  app.set(cni ? `/opt/cni/bin/${name}` : `/usr/bin/${name}`, { data, mode: 0o755 });
}
// What tortie-install-cni copies to the host for the plugins: this runtime, its loader and libraries.
const loader = [...hostRuntime].find((p) => /\/ld-linux[^/]*\.so/.test(p));
if (!loader) fail(`no dynamic loader among the libraries of ${NODE}`);
app.set(`${APP}/host-runtime.json`, {
  data: Buffer.from(
    JSON.stringify(
      {
        node: '/usr/bin/node',
        loader,
        libraries: [...hostRuntime].filter((p) => p !== NODE && p !== loader).sort(),
        app: APP,
        plugins: { tortie: 'dist/cni-plugin/cmd/tortie.js', 'tortie-ipam': 'dist/cni-plugin/cmd/tortie-ipam.js' },
        // Copied as they are from the image's /opt/cni/bin (Debian's builds, using the host's libc).
        otherPlugins: EXTRA_PLUGINS,
      },
      null,
      2,
    ) + '\n',
  ),
  mode: 0o644,
});

// ------------------------------------------------------------------ key or stage
const sorted = (m) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
if (keyOnly) {
  const h = createHash('sha256');
  for (const [layer, m] of [['base', base], ['app', app]]) {
    for (const [p, e] of sorted(m)) {
      h.update(`${layer}\0${p}\0${e.mode.toString(8)}\0`);
      h.update(e.data ?? fs.readFileSync(e.src));
      h.update('\0');
    }
  }
  process.stdout.write(`${h.digest('hex')}\n`);
  process.exit(0);
}
for (const [layer, m] of [['base', base], ['app', app]]) {
  const top = path.join(out, layer);
  fs.rmSync(top, { recursive: true, force: true });
  fs.mkdirSync(top, { recursive: true, mode: 0o755 });
  fs.chmodSync(top, 0o755);
  for (const [p, e] of sorted(m)) {
    const dst = path.join(top, p);
    fs.mkdirSync(path.dirname(dst), { recursive: true, mode: 0o755 });
    if (e.data) fs.writeFileSync(dst, e.data);
    else fs.copyFileSync(e.src, dst);
    fs.chmodSync(dst, e.mode);
  }
  // Directories made above carry the umask; make them 0755 whatever it is.
  const fix = (d) => {
    fs.chmodSync(d, 0o755);
    for (const n of fs.readdirSync(d)) {
      const c = path.join(d, n);
      if (fs.lstatSync(c).isDirectory()) fix(c);
    }
  };
  fix(top);
}
process.stdout.write(`${out}\n`);
