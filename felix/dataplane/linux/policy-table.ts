// Calico policy in nftables: writes the `inet tortie-filter` table compiled by
// felix/calc/policy-compiler.ts, in the same way nat.ts owns `ip tortie-nat`:
// * A write is one `nft -f -` transaction (the script creates, deletes and redefines the table), so
//   packets see either the old or the new rules, never a half-written table.
// * Each pass costs one `nft list table` compared with the listing taken right after the last write;
//   a missing or hand-edited table is rewritten. A changed model writes without listing first.
// * Every write is timed (`ms`), for the agent's logs and the benchmarks.
import { CommandError, spawnExec, type Exec } from './iproute.js';
import { FILTER_TABLE, FILTER_TABLE_FAMILY, compilePolicy, type CompileOptions, type CompiledPolicy, type LocalEndpoint } from '../../calc/policy-compiler.js';
import type { PolicyModel } from '../../../libcalico-go/lib/policy/model.js';

export const NFT_BIN = '/usr/sbin/nft';
const TABLE_REF = [FILTER_TABLE_FAMILY, FILTER_TABLE];

export interface PolicyTableOptions {
  /** The process runner; default spawnExec(). */
  exec?: Exec;
  /** The nft binary; default /usr/sbin/nft. */
  nft?: string;
}

export type PolicyApplyReason = 'unchanged' | 'first write' | 'policy changed' | 'table missing' | 'table changed' | 'forced';

export interface PolicyApplyResult {
  changed: boolean;
  reason: PolicyApplyReason;
  /** Wall time of the `nft -f` write (0 when nothing was written). */
  ms: number;
  /** Number of nft processes this call ran. */
  execs: number;
  compiled: Omit<CompiledPolicy, 'script'>;
}

function tableMissing(stderr: string): boolean {
  return /No such file or directory|does not exist/i.test(stderr);
}

/** Writes and checks the agent's policy table; remembers what it wrote so unchanged passes cost one `nft list`. */
export class PolicyTable {
  private readonly exec: Exec;
  private readonly nft: string;
  private lastScript: string | null = null;
  private lastListing: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(opts: PolicyTableOptions = {}) {
    this.exec = opts.exec ?? spawnExec();
    this.nft = opts.nft ?? NFT_BIN;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn, fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private async run(args: string[], input?: string): Promise<{ ok: boolean; stdout: string; stderr: string; err: CommandError }> {
    const r = await this.exec(this.nft, args, input);
    return {
      ok: r.code === 0 && r.signal === null,
      stdout: r.stdout,
      stderr: r.stderr,
      err: new CommandError([this.nft, ...args], r.code, r.stderr, undefined, r.signal),
    };
  }

  /** `nft list table inet tortie-filter` (text), or null when the table is missing. */
  private async listing(): Promise<string | null> {
    const r = await this.run(['list', 'table', ...TABLE_REF]);
    if (r.ok) return r.stdout;
    if (tableMissing(r.stderr)) return null;
    throw r.err;
  }

  /** Compiles and, when needed, writes the table (see the file comment). */
  apply(model: PolicyModel, local: readonly LocalEndpoint[], opts: CompileOptions & { force?: boolean } = {}): Promise<PolicyApplyResult> {
    return this.serial(async () => {
      const { script, ...compiled } = compilePolicy(model, local, opts);
      return this.write(script, compiled, opts.force === true);
    });
  }

  /** Writes a script compiled elsewhere (same change detection as apply). */
  applyScript(script: string, opts: { force?: boolean } = {}): Promise<PolicyApplyResult> {
    return this.serial(() => this.write(script, { chains: 0, sets: 0, rules: 0, unknown: [] }, opts.force === true));
  }

  private async write(script: string, compiled: Omit<CompiledPolicy, 'script'>, force: boolean): Promise<PolicyApplyResult> {
    let execs = 0;
    let reason: PolicyApplyReason;
    if (force) reason = 'forced';
    else if (this.lastScript === null) reason = 'first write';
    else if (this.lastScript !== script) reason = 'policy changed';
    else {
      execs++;
      const now = await this.listing();
      if (now !== null && now === this.lastListing) return { changed: false, reason: 'unchanged', ms: 0, execs, compiled };
      reason = now === null ? 'table missing' : 'table changed';
    }
    this.lastScript = null;
    this.lastListing = null;
    execs++;
    const t0 = performance.now();
    const w = await this.run(['-f', '-'], script);
    const ms = Math.round((performance.now() - t0) * 100) / 100;
    if (!w.ok) throw w.err;
    execs++;
    const after = await this.listing();
    if (after === null) throw new Error(`nft: table ${TABLE_REF.join(' ')} is missing right after it was written`);
    this.lastScript = script;
    this.lastListing = after;
    return { changed: true, reason, ms, execs, compiled };
  }

  /** Deletes the table (only it); returns whether it was there. */
  remove(): Promise<boolean> {
    return this.serial(async () => {
      this.lastScript = null;
      this.lastListing = null;
      const r = await this.run(['delete', 'table', ...TABLE_REF]);
      if (r.ok) return true;
      if (tableMissing(r.stderr)) return false;
      throw r.err;
    });
  }

  /** Forgets what was written: the next apply writes. */
  reset(): void {
    this.lastScript = null;
    this.lastListing = null;
  }
}
