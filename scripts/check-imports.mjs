// The import check: every import of every TypeScript file (or, with --dist, every compiled .js file
// under dist/) must follow the layering. Prints each broken rule as `file:line: rule` and exits 1.
//
//   node scripts/check-imports.mjs [--root DIR] [--dist | --product-build | --all]
//
// --product-build lists the files of the product build (tsconfig.build.json, through tsc
// --listFilesOnly) and fails if any is not product (a test, testing/, bench/, testdata/): what the
// product imports is compiled with it, so this is the build's own proof that it holds only the
// product. --all: the sources, the product build and dist/ (what `npm test` runs first).
//
// Imports are found by a tokenizer (comments, strings, template literals and regular expressions are
// skipped, so text that only looks like an import is not one): `import … from '…'`, `import '…'`,
// `import type …` (type-only imports count), `export … from '…'`, `import('…')` (also in type
// positions), `import x = require('…')` and `require('…')`. Only relative specifiers name files of
// this repository; packages and `node:` modules are not files here (except `node:test`, below).
//
// Files are sorted into kinds by path:
//   test     *.test.ts                                   may import anything
//   testing  testing/**, any **/testdata/**               product, testing
//   bench    bench/**                                     product, testing, bench
//   product  the components below                        see the layers
// Product components, in layers (a component may import its own files and those of lower layers):
//   0  libcalico-go
//   1  felix, confd, cni-plugin
//   2  node, calicoctl, kube-controllers, lab
// so product never imports testing/, bench/, test files or testdata/, no component imports one of
// its own layer, and nothing but lab/ imports lab/. Product code from another component must come
// through that component's public entry point (ENTRY below); libcalico-go is a library of packages
// and every module under libcalico-go/lib/ may be imported. Product code must not import `node:test`
// (that is test code in a product folder), and a dynamic import whose specifier is not a string
// literal cannot be checked, so product code may not have one.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LAYERS = {
  'libcalico-go': 0,
  felix: 1,
  confd: 1,
  'cni-plugin': 1,
  node: 2,
  calicoctl: 2,
  'kube-controllers': 2,
  lab: 2,
};

/** Public entry points: what other components may import of a component (none listed = any module). */
export const ENTRY = {
  felix: ['felix/index.ts'],
  confd: ['confd/pkg/index.ts'],
  'cni-plugin': ['cni-plugin/pkg/index.ts'],
};

const SKIP_DIRS = new Set(['node_modules', '.git', 'bin']);

// ---------------------------------------------------------------------------------------------------
// Tokenizer

const KEYWORDS_BEFORE_EXPRESSION = new Set([
  'return', 'typeof', 'instanceof', 'in', 'of', 'new', 'delete', 'void', 'throw', 'case', 'do', 'else', 'yield', 'await',
]);

/**
 * Tokens of JavaScript/TypeScript text: {t: 'id'|'str'|'num'|'punct'|'tmpl'|'regex', v, line}.
 * Strings carry their value; comments and whitespace are dropped.
 */
export function tokenize(text) {
  const out = [];
  let i = 0;
  let line = 1;
  const n = text.length;
  // '{' entries: 'brace' for a block/object, 'tmpl' for a template's ${ … }.
  const braces = [];
  const prev = () => out[out.length - 1];
  const regexAllowed = () => {
    const p = prev();
    if (!p) return true;
    if (p.t === 'num' || p.t === 'str' || p.t === 'tmpl' || p.t === 'regex') return false;
    if (p.t === 'id') return KEYWORDS_BEFORE_EXPRESSION.has(p.v);
    return !(p.v === ')' || p.v === ']' || p.v === '}');
  };
  const count = (from, to) => {
    for (let k = from; k < to; k++) if (text.charCodeAt(k) === 10) line++;
  };
  // Scans template characters from i (just after ` or }) to the closing ` or the next ${.
  const scanTemplate = () => {
    const startLine = line;
    let v = '';
    while (i < n) {
      const c = text[i];
      if (c === '\\') {
        v += text[i + 1] ?? '';
        count(i, i + 2);
        i += 2;
        continue;
      }
      if (c === '`') {
        i++;
        out.push({ t: 'tmpl', v, line: startLine });
        return;
      }
      if (c === '$' && text[i + 1] === '{') {
        i += 2;
        braces.push('tmpl');
        out.push({ t: 'tmpl', v, line: startLine });
        return;
      }
      if (c === '\n') line++;
      v += c;
      i++;
    }
    out.push({ t: 'tmpl', v, line: startLine });
  };
  while (i < n) {
    const c = text[i];
    if (c === '\n') {
      line++;
      i++;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\r' || c === '\f' || c === '\v' || c === '\uFEFF' || c === '\u00A0') {
      i++;
      continue;
    }
    if (c === '/' && text[i + 1] === '/') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      count(i, stop);
      i = stop;
      continue;
    }
    if (c === '#' && i === 0 && text[1] === '!') {
      while (i < n && text[i] !== '\n') i++;
      continue;
    }
    if (c === '"' || c === "'") {
      const startLine = line;
      let v = '';
      i++;
      while (i < n && text[i] !== c && text[i] !== '\n') {
        if (text[i] === '\\') {
          v += text[i + 1] ?? '';
          count(i, i + 2);
          i += 2;
        } else v += text[i++];
      }
      i++;
      out.push({ t: 'str', v, line: startLine });
      continue;
    }
    if (c === '`') {
      i++;
      scanTemplate();
      continue;
    }
    if (c === '}' && braces[braces.length - 1] === 'tmpl') {
      braces.pop();
      i++;
      scanTemplate();
      continue;
    }
    if (/[A-Za-z_$\u0080-\uFFFF]/.test(c) || (c === '\\' && text[i + 1] === 'u')) {
      const m = /^(?:[\p{ID_Continue}$\u200C\u200D]|\\u[0-9a-fA-F]{4}|\\u\{[0-9a-fA-F]+\})+/u.exec(text.slice(i, i + 256));
      const v = m ? m[0] : c;
      out.push({ t: 'id', v, line });
      i += v.length;
      continue;
    }
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const m = /^[0-9.]*[0-9A-Za-z_.]*/.exec(text.slice(i, i + 128));
      out.push({ t: 'num', v: m[0], line });
      i += m[0].length;
      continue;
    }
    if (c === '/' && regexAllowed()) {
      const startLine = line;
      let k = i + 1;
      let inClass = false;
      while (k < n && text[k] !== '\n') {
        const d = text[k];
        if (d === '\\') k += 2;
        else if (d === '[') {
          inClass = true;
          k++;
        } else if (d === ']') {
          inClass = false;
          k++;
        } else if (d === '/' && !inClass) break;
        else k++;
      }
      k++;
      while (k < n && /[A-Za-z]/.test(text[k])) k++;
      out.push({ t: 'regex', v: text.slice(i, k), line: startLine });
      i = k;
      continue;
    }
    if (c === '{') braces.push('brace');
    else if (c === '}') braces.pop();
    out.push({ t: 'punct', v: c, line });
    i++;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Imports

/**
 * The imports of a file's text: {spec, line, typeOnly, dynamic} with spec null for a dynamic
 * import whose specifier is not a string literal.
 */
export function findImports(text) {
  const toks = tokenize(text);
  const out = [];
  const at = (k) => toks[k] ?? { t: 'eof', v: '', line: 0 };
  const isP = (k, v) => at(k).t === 'punct' && at(k).v === v;
  const isId = (k, v) => at(k).t === 'id' && at(k).v === v;
  // From k, the `from '…'` that ends a declaration (stops at ';' or another statement keyword).
  const fromClause = (k) => {
    let depth = 0;
    for (let j = k; j < toks.length && j < k + 4000; j++) {
      const x = toks[j];
      if (x.t === 'punct' && (x.v === '{' || x.v === '(' || x.v === '[')) depth++;
      else if (x.t === 'punct' && (x.v === '}' || x.v === ')' || x.v === ']')) depth--;
      else if (depth === 0 && x.t === 'punct' && x.v === ';') return null;
      else if (depth === 0 && x.t === 'id' && x.v === 'from' && at(j + 1).t === 'str') return j + 1;
      else if (depth === 0 && x.t === 'str') return null;
      else if (depth === 0 && j > k && x.t === 'id' && (x.v === 'import' || x.v === 'export')) return null;
      if (depth < 0) return null;
    }
    return null;
  };
  for (let k = 0; k < toks.length; k++) {
    const tok = toks[k];
    if (tok.t !== 'id') continue;
    if (isP(k - 1, '.') || isP(k - 1, '?')) continue; // x.import, x?.require
    if (tok.v === 'import') {
      if (isP(k + 1, ':') || isP(k + 1, '.')) continue; // { import: … }, import.meta
      if (isP(k + 1, '(')) {
        const s = at(k + 2);
        const literal = s.t === 'str' || (s.t === 'tmpl' && !isP(k + 3, '$'));
        const closes = isP(k + 3, ')') || isP(k + 3, ',');
        out.push({ spec: literal && closes ? s.v : null, line: tok.line, typeOnly: false, dynamic: true });
        continue;
      }
      if (at(k + 1).t === 'str') {
        out.push({ spec: at(k + 1).v, line: tok.line, typeOnly: false, dynamic: false });
        continue;
      }
      // import type X from / import type { … } from / import type * as X from; not `import type from '…'`.
      const typeOnly = isId(k + 1, 'type') && !isId(k + 2, 'from') && !isP(k + 2, ',') && !isP(k + 2, '=');
      // import x = require('…')
      const j = k + 1 + (typeOnly ? 1 : 0);
      if (at(j).t === 'id' && isP(j + 1, '=') && isId(j + 2, 'require') && isP(j + 3, '(') && at(j + 4).t === 'str') {
        out.push({ spec: at(j + 4).v, line: tok.line, typeOnly, dynamic: false });
        k = j + 4; // past require('…'), which is not a second import
        continue;
      }
      const s = fromClause(k + 1);
      if (s !== null) out.push({ spec: at(s).v, line: tok.line, typeOnly, dynamic: false });
      continue;
    }
    if (tok.v === 'export') {
      let j = k + 1;
      const typeOnly = isId(j, 'type') && (isP(j + 1, '{') || isP(j + 1, '*'));
      if (typeOnly) j++;
      if (!isP(j, '{') && !isP(j, '*')) continue;
      const s = fromClause(j);
      if (s !== null) out.push({ spec: at(s).v, line: tok.line, typeOnly, dynamic: false });
      continue;
    }
    if (tok.v === 'require' && isP(k + 1, '(') && at(k + 2).t === 'str' && isP(k + 3, ')')) {
      out.push({ spec: at(k + 2).v, line: tok.line, typeOnly: false, dynamic: false });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Classification and rules

/** {kind, component} of a repository path such as `felix/calc/x.ts` (forward slashes, .ts). */
export function classify(path) {
  const parts = path.split('/');
  const component = parts[0];
  const base = parts[parts.length - 1];
  if (/\.test\.(ts|js|mts|mjs)$/.test(base)) return { kind: 'test', component };
  if (component === 'testing' || parts.slice(0, -1).includes('testdata')) return { kind: 'testing', component };
  if (component === 'bench') return { kind: 'bench', component };
  if (component in LAYERS) return { kind: 'product', component };
  return { kind: 'other', component };
}

/** The rule an import from `from` (kind/component of the importer) to `to` breaks, or null. */
export function brokenRule(fromPath, toPath) {
  const a = classify(fromPath);
  const b = classify(toPath);
  if (a.kind === 'test' || a.kind === 'other') return null;
  if (b.kind === 'test') return `${a.kind} code imports a test file`;
  if (a.kind === 'testing') return b.kind === 'bench' ? 'testing/ imports bench/' : null;
  if (a.kind === 'bench') return null;
  // product
  if (b.kind === 'testing') return `product imports test helpers (${b.component === 'testing' ? 'testing/' : 'testdata/'})`;
  if (b.kind === 'bench') return 'product imports bench/';
  if (b.kind === 'other') return `product imports a file outside the components (${b.component}/)`;
  if (a.component === b.component) return null;
  if (b.component === 'lab') return 'product imports lab/ (only lab/ itself may)';
  const la = LAYERS[a.component];
  const lb = LAYERS[b.component];
  if (lb >= la) {
    return `layering: ${a.component} (layer ${la}) may not import ${b.component} (layer ${lb}); order libcalico-go ← felix, confd, cni-plugin ← node, calicoctl, kube-controllers, lab`;
  }
  const entry = ENTRY[b.component];
  if (entry && !entry.includes(toPath)) return `${b.component} is imported through its entry point (${entry.join(', ')}), not ${toPath}`;
  return null;
}

function walk(dir, exts, out) {
  for (const name of readdirSync(dir).sort()) {
    if (SKIP_DIRS.has(name) || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, exts, out);
    else if (exts.some((e) => name.endsWith(e)) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const posix = (p) => p.split(sep).join('/');

/**
 * Every broken rule under `root`: {file, line, rule, spec}. Source mode reads *.ts of the components;
 * dist mode reads dist/**\/*.js and judges each as the .ts it was compiled from.
 */
export function check(root, { dist = false } = {}) {
  const base = dist ? join(root, 'dist') : root;
  if (!existsSync(base)) throw new Error(`${base} does not exist${dist ? ' (did the build run?)' : ''}`);
  const dirs = readdirSync(base).filter((d) => d in LAYERS || d === 'testing' || d === 'bench');
  const files = dirs.flatMap((d) => walk(join(base, d), dist ? ['.js'] : ['.ts'], []));
  const asSource = (abs) => {
    const r = posix(relative(base, abs));
    return dist ? r.replace(/\.js$/, '.ts') : r;
  };
  const problems = [];
  for (const file of files) {
    const from = asSource(file);
    const fromKind = classify(from).kind;
    const shown = posix(relative(root, file));
    for (const imp of findImports(readFileSync(file, 'utf8'))) {
      if (imp.spec === null) {
        if (fromKind === 'product') problems.push({ file: shown, line: imp.line, rule: 'product has a dynamic import whose specifier is not a string literal (cannot be checked)', spec: '(computed)' });
        continue;
      }
      if (imp.spec === 'node:test') {
        if (fromKind === 'product') problems.push({ file: shown, line: imp.line, rule: 'product imports node:test (test code in a product folder: move it to testing/ or testdata/)', spec: imp.spec });
        continue;
      }
      if (!imp.spec.startsWith('./') && !imp.spec.startsWith('../')) continue;
      const target = normalize(join(dirname(file), imp.spec));
      let to = posix(relative(base, target));
      if (to.startsWith('../')) {
        if (fromKind === 'product') problems.push({ file: shown, line: imp.line, rule: `product imports a file outside ${dist ? 'dist/' : 'the repository'}`, spec: imp.spec });
        continue;
      }
      to = to.replace(/\.(m|c)?js$/, (e) => (e === '.js' ? '.ts' : e === '.mjs' ? '.mts' : '.cts'));
      const rule = brokenRule(from, to);
      if (rule) problems.push({ file: shown, line: imp.line, rule: `${rule}${imp.typeOnly ? ' (type-only imports count)' : ''}`, spec: imp.spec });
    }
  }
  return { files: files.length, problems };
}

/** Files of the product build that are not product: {files, strays} (repository-relative paths). */
export function checkProductBuild(root, config = 'tsconfig.build.json') {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-p', join(root, config), '--listFilesOnly'], { cwd: root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tsc -p ${config} --listFilesOnly failed: ${(r.stdout + r.stderr).trim()}`);
  const files = r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => posix(relative(root, l)))
    .filter((l) => !l.startsWith('../') && !l.startsWith('node_modules/'));
  return { files, strays: files.filter((f) => classify(f).kind !== 'product') };
}

function report(label, files, problems) {
  for (const p of problems) console.error(`${p.file}:${p.line}: ${p.rule} — imports ${p.spec}`);
  if (problems.length > 0) {
    console.error(`import check: ${problems.length} forbidden import${problems.length === 1 ? '' : 's'} in ${files} ${label}`);
    return false;
  }
  console.log(`import check: ${files} ${label}, no forbidden import`);
  return true;
}

function main(argv) {
  let root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const modes = new Set();
  for (let k = 0; k < argv.length; k++) {
    if (argv[k] === '--dist') modes.add('dist');
    else if (argv[k] === '--product-build') modes.add('product-build');
    else if (argv[k] === '--all') for (const m of ['source', 'product-build', 'dist']) modes.add(m);
    else if (argv[k] === '--root') root = resolve(argv[++k] ?? '.');
    else {
      console.error(`usage: check-imports.mjs [--root DIR] [--dist | --product-build | --all]  (unknown argument ${argv[k]})`);
      return 2;
    }
  }
  if (modes.size === 0) modes.add('source');
  let ok = true;
  if (modes.has('source')) {
    const { files, problems } = check(root);
    ok = report('TypeScript files', files, problems) && ok;
  }
  if (modes.has('product-build')) {
    const { files, strays } = checkProductBuild(root);
    for (const f of strays) console.error(`${f}: the product build (tsconfig.build.json) compiles this ${classify(f).kind} file: product code imports it`);
    if (strays.length > 0) {
      console.error(`import check: the product build compiles ${strays.length} file${strays.length === 1 ? '' : 's'} that are not product`);
      ok = false;
    } else console.log(`import check: the product build (tsconfig.build.json) compiles ${files.length} files, all product`);
  }
  if (modes.has('dist')) {
    const { files, problems } = check(root, { dist: true });
    ok = report('compiled files under dist/', files, problems) && ok;
  }
  return ok ? 0 : 1;
}

// Run as a script (not when imported, e.g. by make-bins.mjs for classify).
if (process.argv[1] && realpathSync(resolve(process.argv[1])) === realpathSync(fileURLToPath(import.meta.url))) process.exit(main(process.argv.slice(2)));
