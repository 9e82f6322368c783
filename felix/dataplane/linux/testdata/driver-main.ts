// The shared main of the dataplane test drivers (run as root inside a namespace by the tests): a
// JSON op or list of ops in, one JSON line out with each op's outcome
// ({ok: true, value} or {ok: false, error: {name, message, …}}), so a failing op does not stop
// the ones after it.
import { writeSync } from 'node:fs';

export interface DriverOptions<Op> {
  /** The request text (JSON). */
  input: string;
  runOp: (op: Op) => Promise<unknown>;
  /** When given, each outcome also carries its wall time (`ms`) and how many processes it ran. */
  execs?: () => number;
  /** Extra fields of an error outcome. */
  errorFields?: (e: unknown) => Record<string, unknown>;
}

export function runDriver<Op>(o: DriverOptions<Op>): void {
  const main = async () => {
    const req = JSON.parse(o.input || '[]') as Op | Op[];
    const ops = Array.isArray(req) ? req : [req];
    const out: unknown[] = [];
    for (const op of ops) {
      const e0 = o.execs?.() ?? 0;
      const t0 = performance.now();
      const timing = (withExecs: boolean) => (o.execs ? { ms: performance.now() - t0, ...(withExecs ? { execs: o.execs() - e0 } : {}) } : {});
      try {
        const value = await o.runOp(op);
        out.push({ ok: true, value, ...timing(true) });
      } catch (e) {
        const err = e as Error;
        out.push({ ok: false, error: { name: err.name, ...o.errorFields?.(e), message: err.message }, ...timing(false) });
      }
    }
    writeSync(1, JSON.stringify(out) + '\n');
  };
  main().catch((e: unknown) => {
    writeSync(2, `${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  });
}
