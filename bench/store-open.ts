// What every short-lived process pays to use the embedded store (tortie-ipam opens it on every
// CNI ADD/DEL): open (with the 0600 check of the file and its -wal/-shm), one get, close. Moved here
// from the embedded backend's tests, which asserted "median < 20 ms" (a wall-clock limit does not
// belong in a correctness test).
//
//   npm run build && node dist/bench/store-open.js [--write] [--n 200]
//
// In-process (the native module is already loaded, as it is after the plugin's first import), on a
// store with a few hundred keys in a temporary directory; the first 10 rounds warm up and are not
// counted.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openEmbedded } from '../libcalico-go/lib/backend/embedded/embedded.js';
import { secureStoreFiles } from '../libcalico-go/lib/backend/embedded/file-mode.js';
import { median, pct } from './lab-util.js';
import { updateBenchmarkSection } from './report.js';

const nArg = process.argv.indexOf('--n');
const N = nArg > 0 ? Number(process.argv[nArg + 1]) : 200;
const WARMUP = 10;

function time(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tortie-bench-store-open-'));
  try {
    const path = join(dir, 'store.db');
    const w = openEmbedded(path);
    for (let i = 0; i < 300; i++) await w.apply(`/calico/resources/v3/projectcalico.org/workloadendpoints/ns/wep-${i}`, JSON.stringify({ i, pad: 'x'.repeat(400) }));
    await w.apply('/calico/ipam/v2/config', '{"strictAffinity":false}');
    await w.close();

    const cycle: number[] = [];
    const open: number[] = [];
    const check: number[] = [];
    for (let i = 0; i < N + WARMUP; i++) {
      const t0 = process.hrtime.bigint();
      const b = openEmbedded(path);
      const t1 = process.hrtime.bigint();
      if (!(await b.get('/calico/ipam/v2/config'))) throw new Error('key missing');
      await b.close();
      const t2 = process.hrtime.bigint();
      const c = time(() => secureStoreFiles(path, (m) => console.error(m)));
      if (i < WARMUP) continue;
      open.push(Number(t1 - t0) / 1e6);
      cycle.push(Number(t2 - t0) / 1e6);
      check.push(c);
    }
    const f = (x: number) => x.toFixed(2);
    const row = (what: string, xs: number[]) => `| ${what} | ${f(median(xs))} | ${f(pct(xs, 90))} | ${f(pct(xs, 99))} | ${f(Math.max(...xs))} |`;
    const body = [
      '## Embedded store: open + get + close',
      '',
      'Reproduce: `npm run build && node dist/bench/store-open.js --write`',
      '',
      `What a short-lived process (tortie-ipam on every CNI call) pays to use the embedded store: ${N} rounds in one process (native module loaded), store with 300 endpoints, after ${WARMUP} warm-up rounds. "0600 check" is the permission check of the file and its -wal/-shm done by every open (part of "open").`,
      '',
      '| step | median ms | p90 | p99 | max |',
      '|---|---|---|---|---|',
      row('open (0600 check, WAL pragmas, schema version)', open),
      row('open + get + close', cycle),
      row('0600 check alone', check),
      '',
    ].join('\n');
    console.log(body);
    if (process.argv.includes('--write')) updateBenchmarkSection('store-open', body);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
