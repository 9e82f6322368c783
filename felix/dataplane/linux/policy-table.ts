// Calico policy in nftables: the `inet tortie-filter` table compiled by felix/calc/policy-compiler.ts
// and written through nft-table.ts.
//
// * The first write (and any write after an error, a reset, `force`, or drift found by a
//   verification) recreates the whole table in one transaction.
// * Afterwards each apply compiles (the compiler keeps its results between applies) and sends only
//   the difference from the table last written, as ONE `nft -f -` transaction (nft-table-spec.ts
//   diffTables: new objects, changed chains flushed and refilled, set elements added and deleted,
//   removed objects deleted once nothing refers to them). An apply with nothing to change runs no
//   nft at all. If the transaction fails (then none of it took effect) the table is rewritten whole,
//   with reason 'incremental update failed'; a difference larger than half the table is written
//   whole too.
// * Drift (a table deleted or edited by hand) is found only by a verification: `verify()`, or
//   `apply(…, {verify: true})`, which the agent runs every so often (Felix's IptablesRefreshInterval):
//   one `nft list table`, checked against the table last written (nft-listing.ts tableDrift: rule
//   ids carried as comments, set elements); a difference rewrites the table ('table missing' /
//   'table changed').
// Nothing outside `table inet tortie-filter` is ever touched. Writes are timed (`ms`), for the
// agent's logs and the benchmarks; so are the compile (`compileMs`) and the diff (`diffMs`).
import type { Exec } from './iproute.js';
import { OwnedNftTable } from './nft-table.js';
import { tableDrift } from './nft-listing.js';
import { FILTER_TABLE, FILTER_TABLE_FAMILY, PolicyCompiler, type CompileOptions, type LocalEndpoint } from '../../calc/policy-compiler.js';
import { type NftTableSpec, diffTables, renderTableScript, ruleCount } from '../../calc/nft-table-spec.js';
import type { PolicyModel } from '../../../libcalico-go/lib/policy/model.js';

export { NFT_BIN } from './nft-table.js';
const TABLE_REF = [FILTER_TABLE_FAMILY, FILTER_TABLE];

export interface PolicyTableOptions {
  /** The process runner; default spawnExec(). */
  exec?: Exec;
  /** The nft binary; default /usr/sbin/nft. */
  nft?: string;
}

export interface PolicyApplyOptions extends CompileOptions {
  /** Rewrite the whole table. */
  force?: boolean;
  /** First list the table and compare it with what was written; rewrite it on a difference. */
  verify?: boolean;
}

export type PolicyApplyReason = 'unchanged' | 'first write' | 'policy changed' | 'table missing' | 'table changed' | 'forced' | 'incremental update failed';

export interface PolicyApplyResult {
  changed: boolean;
  reason: PolicyApplyReason;
  /** Wall time of the `nft -f` write (0 when nothing was written). */
  ms: number;
  /** Number of nft processes this call ran. */
  execs: number;
  /** The write sent only the difference (false: nothing written, or the whole table). */
  incremental: boolean;
  /** Commands in the incremental transaction (0 otherwise). */
  commands: number;
  /** The kernel's table was listed and compared with the record first. */
  verified: boolean;
  /** Time to compile the model, and to diff the result with the table last written. */
  compileMs: number;
  diffMs: number;
  /** Why the incremental transaction failed (the table was then rewritten). */
  error?: string;
  /** What a verification found different (the objects; the table was then rewritten). */
  drift?: string[];
  compiled: { chains: number; sets: number; rules: number; unknown: string[] };
}

const round = (ms: number) => Math.round(ms * 100) / 100;

/** Writes and checks the agent's policy table. */
export class PolicyTable {
  private readonly table: OwnedNftTable;
  private readonly compiler = new PolicyCompiler();
  /** The table as last written (null: write it whole next). */
  private last: NftTableSpec | null = null;

  constructor(opts: PolicyTableOptions = {}) {
    this.table = new OwnedNftTable(TABLE_REF, opts);
  }

  /** Compiles and writes what changed (see the header for when it writes, and how). */
  apply(model: PolicyModel, local: readonly LocalEndpoint[], opts: PolicyApplyOptions = {}): Promise<PolicyApplyResult> {
    return this.table.serial(async () => {
      const t0 = performance.now();
      const c = this.compiler.compile(model, local, opts);
      const compiled = { chains: c.chains, sets: c.sets, rules: c.rules, unknown: c.unknown };
      const compileMs = round(performance.now() - t0);
      return this.sync(c.table, opts, { compileMs, compiled });
    });
  }

  /** Lists the table and compares it with what was last written; rewrites it on a difference. */
  verify(): Promise<PolicyApplyResult> {
    return this.table.serial(async () => {
      const compiled = { chains: 0, sets: 0, rules: 0, unknown: [] as string[] };
      if (this.last === null) return { ...this.noop(0, false), compileMs: 0, diffMs: 0, compiled };
      compiled.chains = this.last.chains.size;
      compiled.sets = this.last.sets.size;
      compiled.rules = ruleCount(this.last);
      return this.sync(this.last, { verify: true }, { compileMs: 0, compiled });
    });
  }

  private noop(execs: number, verified: boolean) {
    return { changed: false, reason: 'unchanged' as const, ms: 0, execs, incremental: false, commands: 0, verified };
  }

  private async sync(next: NftTableSpec, opts: PolicyApplyOptions, r: Pick<PolicyApplyResult, 'compileMs' | 'compiled'>): Promise<PolicyApplyResult> {
    let execs = 0;
    let reason: PolicyApplyReason | undefined;
    let verified = false;
    let drift: string[] | undefined;
    if (opts.force === true) reason = 'forced';
    else if (this.last === null) reason = 'first write';
    else if (opts.verify === true) {
      execs++;
      verified = true;
      const listing = await this.table.list();
      if (listing === null) reason = 'table missing';
      else {
        drift = tableDrift(this.last, listing);
        if (drift.length > 0) reason = 'table changed';
      }
    }
    let diffMs = 0;
    let error: string | undefined;
    if (reason === undefined && this.last !== null) {
      const d0 = performance.now();
      const diff = diffTables(this.last, next);
      diffMs = round(performance.now() - d0);
      if (diff !== null && diff.script === '') return { ...this.noop(execs, verified), diffMs, ...r };
      if (diff !== null && diff.commands <= Math.max(1000, r.compiled.rules / 2)) {
        let ms: number;
        try {
          execs++;
          ms = await this.table.transact(diff.script);
        } catch (e) {
          ms = -1;
          error = e instanceof Error ? e.message : String(e);
        }
        if (ms >= 0) {
          this.last = next;
          return { changed: true, reason: 'policy changed', ms, execs, incremental: true, commands: diff.commands, verified, diffMs, ...r };
        }
        reason = 'incremental update failed';
      } else reason = 'policy changed';
    }
    // The whole table.
    this.last = null;
    execs++;
    const ms = await this.table.transact(renderTableScript(next));
    this.last = next;
    return {
      changed: true,
      reason: reason ?? 'policy changed',
      ms,
      execs,
      incremental: false,
      commands: 0,
      verified,
      diffMs,
      ...(error !== undefined ? { error } : {}),
      ...(drift !== undefined && drift.length > 0 ? { drift: drift.slice(0, 20) } : {}),
      ...r,
    };
  }

  /** Writes a script compiled elsewhere (the whole table; `apply` writes whole next time). */
  applyScript(script: string, opts: { force?: boolean } = {}): Promise<PolicyApplyResult> {
    return this.table.serial(async () => {
      this.last = null;
      const w = await this.table.write(script, opts.force === true, 'policy changed');
      return { ...w, incremental: false, commands: 0, verified: false, compileMs: 0, diffMs: 0, compiled: { chains: 0, sets: 0, rules: 0, unknown: [] } };
    });
  }

  /** Deletes the table (only it); returns whether it was there. */
  remove(): Promise<boolean> {
    return this.table.serial(() => {
      this.last = null;
      return this.table.remove();
    });
  }

  /** Forgets what was written: the next apply rewrites the whole table. */
  reset(): void {
    this.last = null;
    this.table.reset();
  }
}
