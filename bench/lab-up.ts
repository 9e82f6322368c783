// How long `tortie-lab up` and `down` take, as an operator runs them (bin/tortie-lab, a lab of k
// nodes in BGP mode on the embedded store). Moved here from lab/lab.test.ts, which asserted "up
// takes < 10 s" (a wall-clock limit does not belong in a correctness test).
//
//   npm run build && node dist/bench/lab-up.js [--write] [--sizes 2,5] [--reps 3]     (as root)
//
// Labs live in network namespaces tl-<name>-* with state in a temporary TORTIE_LAB_DIR; each is
// taken down again, also on failure.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { netnsList } from '../lab/pkg/sys.js';
import { median } from './lab-util.js';
import { updateBenchmarkSection } from './report.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const LAB = join(ROOT, 'bin', 'tortie-lab');
const arg = (name: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const SIZES = (arg('sizes') ?? '2,5').split(',').map(Number);
const REPS = Number(arg('reps') ?? '3');

const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-lab-up-'));
const env = { ...process.env, TORTIE_LAB_DIR: dir };

function lab(...args: string[]): Promise<{ code: number; out: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    execFile(LAB, args, { env, timeout: 180_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}`, ms: performance.now() - t0 });
    });
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root (network namespaces)');
  if (!existsSync(LAB)) throw new Error(`${LAB} not built (npm run build)`);
  const load0 = loadavg()[0]!;
  const rows: string[] = [];
  for (const k of SIZES) {
    const up: number[] = [];
    const down: number[] = [];
    for (let i = 0; i < REPS; i++) {
      const name = `b${randomBytes(3).toString('hex')}`;
      try {
        const u = await lab('up', '--name', name, '--nodes', String(k));
        if (u.code !== 0) throw new Error(`up failed: ${u.out}`);
        up.push(u.ms);
      } finally {
        const d = await lab('down', name);
        if (d.code === 0) down.push(d.ms);
        else console.error(`down ${name}: ${d.out}`);
        const left = netnsList().filter((n) => n.startsWith(`tl-${name}-`));
        if (left.length > 0) console.error(`warning: namespaces left behind: ${left.join(', ')}`);
      }
      console.log(`${k} nodes, round ${i + 1}: up ${(up.at(-1)! / 1000).toFixed(2)} s, down ${((down.at(-1) ?? NaN) / 1000).toFixed(2)} s`);
    }
    const s = (xs: number[]) => `${(median(xs) / 1000).toFixed(2)} | ${(Math.max(...xs) / 1000).toFixed(2)}`;
    rows.push(`| ${k} | ${REPS} | ${s(up)} | ${s(down)} |`);
  }
  const body = [
    '## tortie-lab up and down',
    '',
    'Reproduce (as root): `npm run build && node dist/bench/lab-up.js --write`',
    '',
    '`bin/tortie-lab up --name … --nodes k` (BGP mode, embedded store; it returns when every agent runs) and `down`, timed from exec to exit, as an operator runs them.',
    '',
    '| nodes | runs | up, s: median | max | down, s: median | max |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `Machine load (1-min load average, 2 cores) at start / end: ${load0.toFixed(1)} / ${loadavg()[0]!.toFixed(1)}.`,
    '',
  ].join('\n');
  console.log(body);
  if (process.argv.includes('--write')) updateBenchmarkSection('lab-up', body);
}

try {
  await main();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
