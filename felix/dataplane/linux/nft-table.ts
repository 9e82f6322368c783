// One nftables table the agent owns (NAT, policy):
// * `write` (the NAT table): one `nft -f -` transaction whose script creates, deletes and redefines
//   the table, so packets see either the old or the new rules, never a half-written table; a pass
//   with unchanged content costs one `nft list table`, compared with the listing taken right after
//   the last write: a missing or hand-edited table is rewritten; changed content writes at once;
// * `transact` / `list` (the policy table, policy-table.ts, which keeps its own record of what it
//   wrote and sends only differences): one transaction; a listing of the table. (Several `list`
//   commands in one `nft -f` run are no way to list some objects: nft 1.0.6 keeps one cache filter
//   per object kind, and all but one fail with "No such file or directory".)
// * calls on one instance run one at a time (`serial`). Every command names this table: no other
//   table is ever touched.
import { CommandError, spawnExec, type Exec } from './iproute.js';

export const NFT_BIN = '/usr/sbin/nft';

export interface NftTableOptions {
  /** The process runner; default spawnExec(). */
  exec?: Exec;
  /** The nft binary; default /usr/sbin/nft. */
  nft?: string;
}

/** Why a write happened (`changedReason` is the caller's word for "the content changed"). */
export type WriteReason<C extends string> = 'unchanged' | 'first write' | C | 'table missing' | 'table changed' | 'forced';

export interface WriteResult<C extends string> {
  changed: boolean;
  reason: WriteReason<C>;
  /** Wall time of the `nft -f` write (0 when nothing was written). */
  ms: number;
  /** Number of nft processes this call ran. */
  execs: number;
}

function tableMissing(stderr: string): boolean {
  return /No such file or directory|does not exist/i.test(stderr);
}

export class OwnedNftTable {
  private readonly exec: Exec;
  private readonly nft: string;
  private lastScript: string | null = null;
  private lastListing: string | null = null;
  private queue: Promise<unknown> = Promise.resolve();

  /** `ref` names the table as nft does, e.g. ['ip', 'tortie-nat']. */
  constructor(
    readonly ref: readonly string[],
    opts: NftTableOptions = {},
  ) {
    this.exec = opts.exec ?? spawnExec();
    this.nft = opts.nft ?? NFT_BIN;
  }

  /** Runs `fn` after every earlier call on this table has finished. */
  serial<T>(fn: () => Promise<T>): Promise<T> {
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

  /** `nft [-j] list table <ref>`: its output, or null when the table is missing. */
  async list(json = false): Promise<string | null> {
    const r = await this.run([...(json ? ['-j'] : []), 'list', 'table', ...this.ref]);
    if (r.ok) return r.stdout;
    if (tableMissing(r.stderr)) return null;
    throw r.err;
  }

  /** Runs `script` as one `nft -f -` transaction; its wall time in ms. Throws when nft fails (then nothing changed). */
  async transact(script: string): Promise<number> {
    const t0 = performance.now();
    const w = await this.run(['-f', '-'], script);
    const ms = Math.round((performance.now() - t0) * 100) / 100;
    if (!w.ok) throw w.err;
    return ms;
  }

  /** Writes `script` when it differs from the last write, or the table is missing or changed, or `force`. */
  async write<C extends string>(script: string, force: boolean, changedReason: C): Promise<WriteResult<C>> {
    let execs = 0;
    let reason: WriteReason<C>;
    if (force) reason = 'forced';
    else if (this.lastScript === null) reason = 'first write';
    else if (this.lastScript !== script) reason = changedReason;
    else {
      execs++;
      const now = await this.list();
      if (now !== null && now === this.lastListing) return { changed: false, reason: 'unchanged', ms: 0, execs };
      reason = now === null ? 'table missing' : 'table changed';
    }
    this.reset();
    execs++;
    const t0 = performance.now();
    const w = await this.run(['-f', '-'], script);
    const ms = Math.round((performance.now() - t0) * 100) / 100;
    if (!w.ok) throw w.err;
    execs++;
    const after = await this.list();
    if (after === null) throw new Error(`nft: table ${this.ref.join(' ')} is missing right after it was written`);
    this.lastScript = script;
    this.lastListing = after;
    return { changed: true, reason, ms, execs };
  }

  /** Deletes the table (only it); returns whether it was there. */
  async remove(): Promise<boolean> {
    this.reset();
    const r = await this.run(['delete', 'table', ...this.ref]);
    if (r.ok) return true;
    if (tableMissing(r.stderr)) return false;
    throw r.err;
  }

  /** Forgets what was written: the next write writes. */
  reset(): void {
    this.lastScript = null;
    this.lastListing = null;
  }
}
