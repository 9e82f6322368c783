// Runs every compiled *.test.js under dist/ with Node's test runner and ends with the line
// "N passed, N failed" that CI reads. Extra arguments filter test files by substring (a path to an
// existing .js/.mjs file is run as it is).
//
// Skips: every skipped test or suite is listed with its reason. With live tests required, a skip
// is a failure unless its reason starts with "kernel lacks" (a kernel feature this machine does not
// have, which no set-up can install); "needs root", "… is not installed", "… not built" and
// reasonless skips all fail the run. Live tests are required when TORTIE_REQUIRE_LIVE=1 (.ci/run sets
// it), and by default when running as root (where ./scripts/setup.sh installs everything the live
// tests need); TORTIE_REQUIRE_LIVE=0 turns it off.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { spawn } from 'node:child_process';

export const ALLOWED_SKIP_PREFIX = 'kernel lacks';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const liveEnv = process.env.TORTIE_REQUIRE_LIVE;
const requireLive = liveEnv === '1' || (liveEnv !== '0' && (liveEnv ?? '') === '' && process.getuid?.() === 0);

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const explicit = args.filter((a) => /\.(c|m)?js$/.test(a) && existsSync(a)).map((a) => resolve(a));
const filters = args.filter((a) => !explicit.includes(resolve(a)));
const found =
  filters.length === 0 && explicit.length > 0
    ? []
    : walk(join(root, 'dist'), []).filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)));
const files = [...new Set([...explicit, ...found])].sort();
if (files.length === 0) {
  console.error('no test files found under dist/ (did the build run?)');
  process.exit(1);
}

const tmp = mkdtempSync(join(tmpdir(), 'tortie-run-tests-'));
const eventsFile = join(tmp, 'events.jsonl');
const reporter = new URL('./test-reporter.mjs', import.meta.url).pathname;
// A runner started from inside a test (the runner's own test) must not report to that test's runner.
const env = { ...process.env };
delete env.NODE_TEST_CONTEXT;
const child = spawn(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-reporter-destination=stdout', `--test-reporter=${reporter}`, `--test-reporter-destination=${eventsFile}`, ...files],
  { stdio: ['ignore', 'inherit', 'inherit'], env },
);

const where = (e) => {
  if (!e.file) return '?';
  const r = relative(root, e.file);
  return r.startsWith('..') ? e.file : r;
};

child.on('close', (code, signal) => {
  let events = [];
  let readError = '';
  try {
    events = readFileSync(eventsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
  } catch (e) {
    readError = e.message;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  let passed = 0;
  let failed = 0;
  let todo = 0;
  const skipped = [];
  for (const e of events) {
    if (e.todo !== undefined && e.todo !== false) {
      todo++;
      continue;
    }
    if (e.skip !== undefined && e.skip !== false) {
      skipped.push(e);
      continue;
    }
    if (e.ok) {
      if (!e.suite) passed++;
    } else if (!e.suite || e.failureType !== 'subtestsFailed') {
      // A suite fails on its own only through a hook or its own code; otherwise its tests are counted.
      failed++;
    }
  }
  const reasonOf = (e) => (typeof e.skip === 'string' && e.skip !== '' ? e.skip : '(no reason given)');
  const allowed = (e) => typeof e.skip === 'string' && e.skip.startsWith(ALLOWED_SKIP_PREFIX);
  const refused = requireLive ? skipped.filter((e) => !allowed(e)) : [];

  console.log('');
  if (skipped.length > 0) {
    console.log(`skipped (${skipped.length}):`);
    for (const e of skipped) {
      const mark = requireLive && !allowed(e) ? '✖' : '﹣';
      console.log(`  ${mark} ${where(e)}: ${e.suite ? 'suite ' : ''}"${e.name}" — ${reasonOf(e)}`);
    }
  }
  if (todo > 0) console.log(`todo: ${todo}`);
  if (refused.length > 0) {
    console.log(
      `${refused.length} skipped for a reason other than "${ALLOWED_SKIP_PREFIX} …" while live tests are required ` +
        `(TORTIE_REQUIRE_LIVE=${liveEnv ?? '(unset, running as root)'}): each counts as a failure`,
    );
    failed += refused.length;
  }
  if (readError) {
    console.log(`cannot read the test events (${readError}): counted as a failure`);
    failed++;
  }
  if ((code !== 0 || signal) && failed === 0) {
    console.log(`node --test ended with ${signal ?? `exit code ${code}`} but reported no failure: counted as one`);
    failed++;
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
});
