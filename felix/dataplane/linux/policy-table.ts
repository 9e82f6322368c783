// Calico policy in nftables: the `inet tortie-filter` table compiled by felix/calc/policy-compiler.ts,
// written through nft-table.ts (one atomic transaction, only when the content or the table changed).
// Every write is timed (`ms`), for the agent's logs and the benchmarks.
import type { Exec } from './iproute.js';
import { OwnedNftTable } from './nft-table.js';
import { FILTER_TABLE, FILTER_TABLE_FAMILY, compilePolicy, type CompileOptions, type CompiledPolicy, type LocalEndpoint } from '../../calc/policy-compiler.js';
import type { PolicyModel } from '../../../libcalico-go/lib/policy/model.js';

export { NFT_BIN } from './nft-table.js';
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

/** Writes and checks the agent's policy table (see nft-table.ts for when it writes). */
export class PolicyTable {
  private readonly table: OwnedNftTable;

  constructor(opts: PolicyTableOptions = {}) {
    this.table = new OwnedNftTable(TABLE_REF, opts);
  }

  /** Compiles and, when needed, writes the table. */
  apply(model: PolicyModel, local: readonly LocalEndpoint[], opts: CompileOptions & { force?: boolean } = {}): Promise<PolicyApplyResult> {
    return this.table.serial(async () => {
      const { script, ...compiled } = compilePolicy(model, local, opts);
      return { ...(await this.table.write(script, opts.force === true, 'policy changed')), compiled };
    });
  }

  /** Writes a script compiled elsewhere (same change detection as apply). */
  applyScript(script: string, opts: { force?: boolean } = {}): Promise<PolicyApplyResult> {
    return this.table.serial(async () => ({
      ...(await this.table.write(script, opts.force === true, 'policy changed')),
      compiled: { chains: 0, sets: 0, rules: 0, unknown: [] },
    }));
  }

  /** Deletes the table (only it); returns whether it was there. */
  remove(): Promise<boolean> {
    return this.table.serial(() => this.table.remove());
  }

  /** Forgets what was written: the next apply writes. */
  reset(): void {
    this.table.reset();
  }
}
