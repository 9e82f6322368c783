// A small client for BIRD's control socket (what `birdc -s SOCKET` speaks), over node:net.
//
// The protocol (BIRD 1.6 and 2): on connect the daemon greets with `0001 BIRD <version> ready.`;
// each command is one line; each reply is a sequence of lines `dddd-text` (more lines follow),
// ` text` (a continuation of the previous code) and ends with one line `dddd text` (code, space).
// Codes 0xxx: done, 1xxx: table rows, 2xxx: table headings, 8xxx: run-time error, 9xxx: parse
// error (e.g. `9001 syntax error, …`). Lines starting with `+` are messages BIRD sends on its own
// (kept in the raw reply, never ending it).
//
// Every wait for a line is bounded (2 s by default, as calicoctl's BIRD reads are), and every error
// names the socket.
import { connect, type Socket } from 'node:net';

/** How long to wait for each line from BIRD (calicoctl uses a 2 s read deadline per line). */
export const BIRD_LINE_TIMEOUT_MS = 2000;

export class BirdcError extends Error {
  constructor(
    readonly socketPath: string,
    message: string,
    /** The errno code when connecting failed (`ENOENT`, `ECONNREFUSED`, `EACCES`, …) or `ETIMEDOUT`. */
    readonly errno?: string,
  ) {
    super(message);
    this.name = 'BirdcError';
  }
}

export interface BirdReply {
  /** The code of the final line, e.g. `0000`, `0003`, `8002`, `9001`. */
  code: string;
  /** False for run-time (8xxx) and parse (9xxx) errors. */
  ok: boolean;
  /** The reply as BIRD sent it (every line with its newline; the greeting is not included). */
  raw: string;
  /** The reply's text lines without their codes (what birdc prints). */
  text: string;
}

export interface BirdcOptions {
  /** Per-line timeout (connect and greeting included). Default BIRD_LINE_TIMEOUT_MS. */
  timeoutMs?: number;
}

const FINAL = /^(\d{4}) (.*)$/;
const MORE = /^(\d{4})-(.*)$/;

/** True for the line that ends a reply (`dddd ` + text). */
export function isFinalReplyLine(line: string): boolean {
  return FINAL.test(line);
}

/** Builds a BirdReply from the reply's lines (without newlines; the last one final). */
export function replyFromLines(lines: readonly string[]): BirdReply {
  const last = lines.at(-1) ?? '';
  const m = FINAL.exec(last);
  if (!m) throw new Error(`not a complete BIRD reply (last line ${JSON.stringify(last)})`);
  const text: string[] = [];
  for (const l of lines) {
    const f = FINAL.exec(l) ?? MORE.exec(l);
    if (f) {
      if (f[2] !== '' || f[1] !== '0000') text.push(f[2]!);
    } else if (l.startsWith(' ')) text.push(l.slice(1));
    else if (l.startsWith('+')) text.push(l.slice(1));
    else text.push(l);
  }
  return {
    code: m[1]!,
    ok: !m[1]!.startsWith('8') && !m[1]!.startsWith('9'),
    raw: lines.map((l) => l + '\n').join(''),
    text: text.map((t) => t + '\n').join(''),
  };
}

/** One connection to BIRD's control socket. Commands on it run one after another. */
export class BirdControlConnection {
  private readonly lines: string[] = [];
  private partial = '';
  private waiter: { resolve: (l: string) => void; reject: (e: Error) => void } | null = null;
  private ended: Error | null = null;
  private chain: Promise<unknown> = Promise.resolve();
  /** The greeting line's text, e.g. `BIRD 2.0.12 ready.` */
  banner = '';

  private constructor(
    private readonly sock: Socket,
    readonly socketPath: string,
    private readonly timeoutMs: number,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      const parts = (this.partial + d).split('\n');
      this.partial = parts.pop() ?? '';
      for (const p of parts) this.push(p.endsWith('\r') ? p.slice(0, -1) : p);
    });
    const fail = (e: Error) => {
      if (this.ended) return;
      this.ended = e;
      if (this.waiter) {
        this.waiter.reject(e);
        this.waiter = null;
      }
    };
    sock.on('error', (e) => fail(new BirdcError(socketPath, `BIRD's control socket ${socketPath}: ${e.message}`, (e as NodeJS.ErrnoException).code)));
    sock.on('close', () => fail(new BirdcError(socketPath, `BIRD closed its control socket ${socketPath}`)));
  }

  /** Connects and reads the `0001` greeting. */
  static open(socketPath: string, opts: BirdcOptions = {}): Promise<BirdControlConnection> {
    const timeoutMs = opts.timeoutMs ?? BIRD_LINE_TIMEOUT_MS;
    return new Promise((resolve, reject) => {
      const sock = connect(socketPath);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new BirdcError(socketPath, `cannot connect to BIRD's control socket ${socketPath}: no answer within ${timeoutMs} ms`, 'ETIMEDOUT'));
      }, timeoutMs);
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new BirdcError(socketPath, `cannot connect to BIRD's control socket ${socketPath}: ${e.message}`, e.code));
      });
      sock.once('connect', () => {
        clearTimeout(timer);
        const c = new BirdControlConnection(sock, socketPath, timeoutMs);
        c.nextLine('the greeting').then(
          (line) => {
            if (!line.startsWith('0001 ')) {
              c.close();
              reject(new BirdcError(socketPath, `${socketPath} did not greet as BIRD does (expected "0001 … ready.", got ${JSON.stringify(line)})`));
              return;
            }
            c.banner = line.slice(5);
            resolve(c);
          },
          (e: Error) => {
            c.close();
            reject(e);
          },
        );
      });
    });
  }

  private push(line: string): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w.resolve(line);
    } else this.lines.push(line);
  }

  private nextLine(what: string): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        const e = new BirdcError(this.socketPath, `BIRD's control socket ${this.socketPath} sent no line within ${this.timeoutMs} ms (waiting for ${what})`, 'ETIMEDOUT');
        this.ended = e;
        this.sock.destroy();
        reject(e);
      }, this.timeoutMs);
      this.waiter = {
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /** Sends one command (e.g. `show protocols`, `configure`, `show route for 10.0.0.0/24`) and reads its whole reply. */
  request(command: string): Promise<BirdReply> {
    const run = async (): Promise<BirdReply> => {
      if (/[\r\n]/.test(command)) throw new BirdcError(this.socketPath, `a BIRD command is one line; got ${JSON.stringify(command)}`);
      if (this.ended) throw this.ended;
      this.sock.write(command + '\n');
      const got: string[] = [];
      for (;;) {
        let line: string;
        try {
          line = await this.nextLine(`the reply to "${command}"`);
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          throw new BirdcError(this.socketPath, got.length ? `${why} after ${got.length} line(s) of the reply to "${command}"` : why, (e as BirdcError).errno);
        }
        got.push(line);
        if (isFinalReplyLine(line)) return replyFromLines(got);
      }
    };
    const p = this.chain.then(run, run);
    this.chain = p.catch(() => undefined);
    return p;
  }

  close(): void {
    this.ended ??= new BirdcError(this.socketPath, `connection to ${this.socketPath} closed`);
    this.sock.destroy();
  }
}

/** Connects, sends one command, returns its reply and closes. */
export async function birdCommand(socketPath: string, command: string, opts: BirdcOptions = {}): Promise<BirdReply> {
  const c = await BirdControlConnection.open(socketPath, opts);
  try {
    return await c.request(command);
  } finally {
    c.close();
  }
}

/** Whether a BIRD greets on the socket within the timeout. */
export async function birdAnswers(socketPath: string, timeoutMs = BIRD_LINE_TIMEOUT_MS): Promise<boolean> {
  try {
    (await BirdControlConnection.open(socketPath, { timeoutMs })).close();
    return true;
  } catch {
    return false;
  }
}
