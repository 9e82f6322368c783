#!/usr/bin/env node
// Writes a single-platform (linux/amd64) OCI image archive without Docker or a registry:
// oci-layout, index.json and content-addressed blobs (gzip layers, config, manifest), as
// `ctr images import` and `podman load` take it. Reproducible: every timestamp is
// SOURCE_DATE_EPOCH (default 0), owners are numeric, entries are sorted, gzip carries no name or
// time, so the same inputs give the same bytes and digests.
//
//   node images/oci-image.mjs --ref REF --out FILE [--entrypoint JSON] [--cmd JSON]
//        [--env K=V]... [--workdir DIR] [--user U] [--expose PORT/PROTO]... [--label K=V]...
//        -- ENTRY... [--layer ENTRY...]...
//
// Entries (paths absolute in the image; later entries of a layer replace earlier ones):
//   file:/dst:SRC[:MODE[:UID:GID]]   a regular file copied from SRC (MODE octal; default: 0755 if
//                                    SRC is executable, else 0644)
//   dir:/dst[:MODE[:UID:GID]]        a directory (default 0755)
//   link:/dst:TARGET                 a symbolic link
//   tree:/dst:SRCDIR                 SRCDIR's files, directories and symlinks, modes kept
//   busybox:SRC                      SRC as /bin/busybox and each applet of `SRC --list-full` as a
//                                    symlink to it
// Parent directories are added (0755, root) when not given. `--layer` starts a new layer.
//
// Prints the manifest digest and the archive's path on success.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
};

function fail(msg) {
  process.stderr.write(`oci-image: ${msg}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const o = { env: [], expose: [], labels: {}, layers: [[]] };
  let i = 0;
  const need = (flag) => {
    if (i + 1 >= argv.length) fail(`${flag} needs a value`);
    return argv[++i];
  };
  const json = (flag, v) => {
    try {
      const x = JSON.parse(v);
      if (!Array.isArray(x) || !x.every((s) => typeof s === 'string')) throw new Error('not a list of strings');
      return x;
    } catch (e) {
      return fail(`${flag} must be a JSON list of strings: ${e.message}`);
    }
  };
  for (; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') break;
    switch (a) {
      case '--ref': o.ref = need(a); break;
      case '--out': o.out = need(a); break;
      case '--entrypoint': o.entrypoint = json(a, need(a)); break;
      case '--cmd': o.cmd = json(a, need(a)); break;
      case '--env': o.env.push(need(a)); break;
      case '--workdir': o.workdir = need(a); break;
      case '--user': o.user = need(a); break;
      case '--expose': o.expose.push(need(a)); break;
      case '--label': {
        const v = need(a);
        const eq = v.indexOf('=');
        if (eq <= 0) fail(`--label wants K=V, not ${v}`);
        o.labels[v.slice(0, eq)] = v.slice(eq + 1);
        break;
      }
      default: fail(`unknown argument ${a}`);
    }
  }
  for (i++; i < argv.length; i++) {
    if (argv[i] === '--layer') o.layers.push([]);
    else o.layers[o.layers.length - 1].push(argv[i]);
  }
  if (!o.ref) fail('--ref is required');
  if (!o.out) fail('--out is required');
  o.layers = o.layers.filter((l) => l.length > 0);
  if (o.layers.length === 0) fail('no entries');
  return o;
}

// ------------------------------------------------------------------ layer contents
function clean(p) {
  if (!p.startsWith('/')) fail(`image path must be absolute: ${p}`);
  const n = path.posix.normalize(p).replace(/^\/+/, '').replace(/\/+$/, '');
  if (n === '' || n === '.' || n.startsWith('..')) fail(`bad image path: ${p}`);
  return n;
}
function octal(s, dflt) {
  if (s === undefined || s === '') return dflt;
  if (!/^[0-7]{3,4}$/.test(s)) fail(`bad mode ${s}`);
  return parseInt(s, 8);
}
function num(s, dflt) {
  if (s === undefined || s === '') return dflt;
  if (!/^[0-9]+$/.test(s)) fail(`bad uid/gid ${s}`);
  return Number(s);
}

function layerEntries(specs) {
  const m = new Map(); // relative path -> {type, mode, uid, gid, data?, target?}
  const add = (p, e) => m.set(p, e);
  for (const spec of specs) {
    const c = spec.indexOf(':');
    if (c < 0) fail(`bad entry ${spec}`);
    const kind = spec.slice(0, c);
    const parts = spec.slice(c + 1).split(':');
    switch (kind) {
      case 'file': {
        const [dst, src, mode, uid, gid] = parts;
        if (!dst || !src) fail(`file entry wants /dst:src: ${spec}`);
        let st;
        try { st = fs.statSync(src); } catch { fail(`no such file ${src} (${spec})`); }
        if (!st.isFile()) fail(`not a regular file: ${src}`);
        add(clean(dst), { type: 'file', mode: octal(mode, st.mode & 0o111 ? 0o755 : 0o644), uid: num(uid, 0), gid: num(gid, 0), data: fs.readFileSync(src) });
        break;
      }
      case 'dir': {
        const [dst, mode, uid, gid] = parts;
        add(clean(dst), { type: 'dir', mode: octal(mode, 0o755), uid: num(uid, 0), gid: num(gid, 0) });
        break;
      }
      case 'link': {
        const [dst, target] = parts;
        if (!dst || !target) fail(`link entry wants /dst:target: ${spec}`);
        add(clean(dst), { type: 'symlink', mode: 0o777, uid: 0, gid: 0, target });
        break;
      }
      case 'tree': {
        const [dst, srcdir] = parts;
        if (!dst || !srcdir) fail(`tree entry wants /dst:srcdir: ${spec}`);
        const walk = (rel) => {
          const abs = rel ? path.join(srcdir, rel) : srcdir;
          const st = fs.lstatSync(abs);
          const isTop = rel === '';
          const p = isTop ? (dst === '/' ? null : clean(dst)) : clean(path.posix.join(dst, rel));
          if (st.isSymbolicLink()) add(p ?? fail(`tree root is a symlink: ${abs}`), { type: 'symlink', mode: 0o777, uid: 0, gid: 0, target: fs.readlinkSync(abs) });
          else if (st.isDirectory()) {
            if (p !== null) add(p, { type: 'dir', mode: st.mode & 0o7777, uid: 0, gid: 0 });
            for (const n of fs.readdirSync(abs).sort()) walk(rel ? `${rel}/${n}` : n);
          } else if (st.isFile() && p !== null) add(p, { type: 'file', mode: st.mode & 0o7777, uid: 0, gid: 0, data: fs.readFileSync(abs) });
          else fail(`unsupported file type in tree: ${abs}`);
        };
        walk('');
        break;
      }
      case 'busybox': {
        const [src] = parts;
        add('bin/busybox', { type: 'file', mode: 0o755, uid: 0, gid: 0, data: fs.readFileSync(src) });
        const applets = execFileSync(src, ['--list-full'], { encoding: 'utf8' }).split('\n').map((s) => s.trim());
        for (const a of applets) {
          if (!a.includes('/') || a === 'bin/busybox') continue; // e.g. linuxrc
          const depth = a.split('/').length - 1;
          add(clean(`/${a}`), { type: 'symlink', mode: 0o777, uid: 0, gid: 0, target: `${'../'.repeat(depth)}bin/busybox` });
        }
        break;
      }
      default:
        fail(`unknown entry kind ${kind} (${spec})`);
    }
  }
  // Parent directories.
  for (const p of [...m.keys()]) {
    const segs = p.split('/');
    for (let k = 1; k < segs.length; k++) {
      const d = segs.slice(0, k).join('/');
      if (!m.has(d)) m.set(d, { type: 'dir', mode: 0o755, uid: 0, gid: 0 });
      else if (m.get(d).type !== 'dir') fail(`${d} is both a ${m.get(d).type} and a directory`);
    }
  }
  // Sorted as the archive lists them (directories with their trailing "/"), so `linux.js` comes
  // before the directory `linux/` and its contents, as in any sorted listing.
  const name = ([p, e]) => (e.type === 'dir' ? `${p}/` : p);
  return [...m.entries()].sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
}

// ------------------------------------------------------------------ tar (ustar)
const EPOCH = (() => {
  const s = process.env.SOURCE_DATE_EPOCH ?? '0';
  if (!/^[0-9]+$/.test(s)) fail(`SOURCE_DATE_EPOCH must be a number of seconds, not ${s}`);
  return Number(s);
})();

function field(buf, off, len, value) {
  const b = Buffer.from(value, 'utf8');
  if (b.length > len) fail(`tar field too long: ${value}`);
  b.copy(buf, off);
}
function oct(buf, off, len, n) {
  const s = n.toString(8);
  if (s.length > len - 1) fail(`tar number too large: ${n}`);
  field(buf, off, len, s.padStart(len - 1, '0') + '\0');
}
function splitName(name) {
  if (Buffer.byteLength(name) <= 100) return ['', name];
  for (let i = name.length - 1; i > 0; i--) {
    if (name[i] !== '/') continue;
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) return [prefix, rest];
  }
  return fail(`path too long for ustar: ${name}`);
}
function header(name, e, size) {
  const h = Buffer.alloc(512);
  const [prefix, base] = splitName(name);
  field(h, 0, 100, base);
  oct(h, 100, 8, e.mode);
  oct(h, 108, 8, e.uid);
  oct(h, 116, 8, e.gid);
  oct(h, 124, 12, size);
  oct(h, 136, 12, EPOCH);
  field(h, 148, 8, '        ');
  field(h, 156, 1, e.type === 'file' ? '0' : e.type === 'symlink' ? '2' : '5');
  if (e.type === 'symlink') field(h, 157, 100, e.target);
  field(h, 257, 6, 'ustar\0');
  field(h, 263, 2, '00');
  field(h, 345, 155, prefix);
  let sum = 0;
  for (const x of h) sum += x;
  field(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}
function tar(entries) {
  const parts = [];
  for (const [p, e] of entries) {
    const name = e.type === 'dir' ? `${p}/` : p;
    const size = e.type === 'file' ? e.data.length : 0;
    parts.push(header(name, e, size));
    if (size > 0) {
      parts.push(e.data);
      const pad = (512 - (size % 512)) % 512;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

// ------------------------------------------------------------------ image
const sha = (b) => createHash('sha256').update(b).digest('hex');

function main() {
  const o = parseArgs(process.argv.slice(2));
  const created = new Date(EPOCH * 1000).toISOString().replace(/\.000Z$/, 'Z');
  const blobs = new Map(); // hex -> Buffer
  const blob = (b) => {
    const h = sha(b);
    blobs.set(h, b);
    return { digest: `sha256:${h}`, size: b.length };
  };
  const layers = [];
  const diffIds = [];
  const history = [];
  o.layers.forEach((specs, i) => {
    const raw = tar(layerEntries(specs));
    diffIds.push(`sha256:${sha(raw)}`);
    const gz = zlib.gzipSync(raw, { level: 9 });
    layers.push({ mediaType: MT.layer, ...blob(gz) });
    history.push({ created, created_by: `tortie scripts/build-images.sh: layer ${i + 1} (${specs.length} entries)` });
  });
  const config = {};
  if (o.user) config.User = o.user;
  if (o.expose.length) config.ExposedPorts = Object.fromEntries([...o.expose].sort().map((p) => [p, {}]));
  if (o.env.length) config.Env = o.env;
  if (o.entrypoint) config.Entrypoint = o.entrypoint;
  if (o.cmd) config.Cmd = o.cmd;
  config.WorkingDir = o.workdir ?? '/';
  if (Object.keys(o.labels).length) config.Labels = Object.fromEntries(Object.entries(o.labels).sort());
  const cfg = {
    created,
    architecture: 'amd64',
    os: 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history,
  };
  const cfgDesc = { mediaType: MT.config, ...blob(Buffer.from(JSON.stringify(cfg))) };
  const manifest = { schemaVersion: 2, mediaType: MT.manifest, config: cfgDesc, layers };
  const manDesc = blob(Buffer.from(JSON.stringify(manifest)));
  const index = {
    schemaVersion: 2,
    mediaType: MT.index,
    manifests: [{
      mediaType: MT.manifest,
      ...manDesc,
      platform: { architecture: 'amd64', os: 'linux' },
      // Both carry the full reference: containerd names the image after the first, podman after the second.
      annotations: { 'io.containerd.image.name': o.ref, 'org.opencontainers.image.ref.name': o.ref },
    }],
  };
  const files = [
    ['blobs', { type: 'dir', mode: 0o755, uid: 0, gid: 0 }],
    ['blobs/sha256', { type: 'dir', mode: 0o755, uid: 0, gid: 0 }],
    ...[...blobs.keys()].sort().map((h) => [`blobs/sha256/${h}`, { type: 'file', mode: 0o644, uid: 0, gid: 0, data: blobs.get(h) }]),
    ['index.json', { type: 'file', mode: 0o644, uid: 0, gid: 0, data: Buffer.from(JSON.stringify(index)) }],
    ['oci-layout', { type: 'file', mode: 0o644, uid: 0, gid: 0, data: Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })) }],
  ];
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, tar(files));
  process.stdout.write(`${o.ref}\t${manDesc.digest}\t${o.out}\n`);
}

main();
