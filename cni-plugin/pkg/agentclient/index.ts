// The `tortie` plugin's side of the agent protocol (agentapi/protocol.ts): connect to tortie-node's unix
// socket, write one request line, read one response line, close. Plain node:net (no HTTP stack: every
// millisecond of module loading is paid on each CNI invocation).
//
// Bounded in time: a connect timeout and a total timeout (which includes connecting). The call never
// hangs and never throws anything but a CniError:
// - socket missing (ENOENT/ENOTDIR), nobody listening (ECONNREFUSED), backlog full (EAGAIN),
//   connection reset or closed before any answer byte, connect or total timeout → code 11 ("try again
//   later": the runtime retries; kubelet retries sandbox creation anyway);
// - an answer that is not one JSON object of the protocol's shape, or larger than MAX_RESPONSE_BYTES,
//   or other socket errors (EACCES...) → code 999 naming the problem.
// An `{ok:false}` answer is returned as is; the caller turns it into the CniError it describes.
//
// The client does not half-close its side after writing the request: a net.Server with the default
// allowHalfOpen=false would end the connection on our FIN before it had answered.

import { connect, type Socket } from 'node:net';
import type { AgentCommand, AgentRequest, AgentResponse } from '../agentapi/protocol.js';
import { CniError, ErrCode } from '../skel/errors.js';
import { parseResult } from '../skel/result.js';

export interface CallOptions {
  /** Time allowed to establish the connection. */
  connectTimeoutMs: number;
  /** Time allowed for the whole exchange, connection included. */
  totalTimeoutMs: number;
}

/** Connecting to a local unix socket is immediate unless the agent is wedged. */
export const CONNECT_TIMEOUT_MS = 2_000;

/**
 * Total time per command:
 * - ADD 60 s: IPAM (which may wait up to 30 s for the host IPAM lock), pod wiring and the
 *   WorkloadEndpoint write, with room for a slow datastore; well inside kubelet's 2-minute runtime
 *   request timeout, so the runtime sees our error rather than its own deadline.
 * - DEL 60 s: same work in reverse, and a failed DEL is retried by the runtime.
 * - CHECK 30 s: reads only.
 * - STATUS 10 s: runtimes poll it; a slow answer means "not ready" anyway.
 * - GC 120 s: may release many allocations in one call.
 */
export const COMMAND_TIMEOUTS: Readonly<Record<AgentCommand, CallOptions>> = {
  ADD: { connectTimeoutMs: CONNECT_TIMEOUT_MS, totalTimeoutMs: 60_000 },
  DEL: { connectTimeoutMs: CONNECT_TIMEOUT_MS, totalTimeoutMs: 60_000 },
  CHECK: { connectTimeoutMs: CONNECT_TIMEOUT_MS, totalTimeoutMs: 30_000 },
  STATUS: { connectTimeoutMs: CONNECT_TIMEOUT_MS, totalTimeoutMs: 10_000 },
  GC: { connectTimeoutMs: CONNECT_TIMEOUT_MS, totalTimeoutMs: 120_000 },
};

/** Answers larger than this are refused (a result is a few hundred bytes). */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

const seconds = (ms: number): string => {
  const s = ms / 1000;
  return Number.isInteger(s) ? `${s} s` : `${s.toFixed(1)} s`;
};

function malformed(problem: string): CniError {
  return new CniError(ErrCode.Internal, `malformed response from tortie-node: ${problem}`);
}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Validates one response line (without its newline) into an AgentResponse; code 999 naming the
 * problem otherwise. An ok result is checked with the skel's result parser (addresses, indexes...).
 */
export function parseAgentResponse(line: string): AgentResponse {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (e) {
    const shown = line.length > 200 ? `${line.slice(0, 200)}...` : line;
    throw malformed(`not JSON (${(e as Error).message}): ${JSON.stringify(shown)}`);
  }
  if (!isObj(v)) throw malformed(`expected a JSON object, got ${v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v}`);
  if (v.ok === true) {
    if (v.result === undefined || v.result === null) return { ok: true };
    if (!isObj(v.result)) throw malformed('"result" must be an object');
    try {
      return { ok: true, result: parseResult(v.result, 'result').result };
    } catch (e) {
      throw malformed((e as Error).message);
    }
  }
  if (v.ok === false) {
    const { code, msg, details } = v;
    if (typeof code !== 'number' || !Number.isInteger(code) || code <= 0) {
      throw malformed(`error "code" must be a positive integer, got ${JSON.stringify(code)}`);
    }
    if (typeof msg !== 'string') throw malformed(`error "msg" must be a string, got ${JSON.stringify(msg)}`);
    if (details !== undefined && details !== null && typeof details !== 'string') {
      throw malformed(`error "details" must be a string, got ${JSON.stringify(details)}`);
    }
    return typeof details === 'string' && details !== '' ? { ok: false, code, msg, details } : { ok: false, code, msg };
  }
  throw malformed(`"ok" must be true or false, got ${JSON.stringify(v.ok)}`);
}

function notRunning(socketPath: string, why: string): CniError {
  return new CniError(
    ErrCode.TryAgainLater,
    `tortie-node is not running on this node (cannot connect to ${socketPath}): ${why}`,
  );
}

/** Maps an error of the socket to a CniError; `connected` tells whether connect() had succeeded. */
function socketError(e: NodeJS.ErrnoException, socketPath: string, connected: boolean): CniError {
  const code = e.code ?? '';
  if (!connected) {
    if (code === 'ENOENT' || code === 'ENOTDIR') return notRunning(socketPath, `${code}: the socket does not exist`);
    if (code === 'ECONNREFUSED') return notRunning(socketPath, `${code}: nothing is listening on the socket`);
    if (code === 'EAGAIN') {
      return new CniError(ErrCode.TryAgainLater, `tortie-node is busy (cannot connect to ${socketPath}): ${code}: its connection backlog is full`);
    }
    return new CniError(ErrCode.Internal, `cannot connect to tortie-node at ${socketPath}: ${e.message}`);
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new CniError(ErrCode.TryAgainLater, `tortie-node at ${socketPath} closed the connection before answering (${code})`);
  }
  return new CniError(ErrCode.Internal, `talking to tortie-node at ${socketPath} failed: ${e.message}`);
}

/**
 * Sends one request to tortie-node and returns its answer. Rejects only with CniError (see the top
 * of this file for the codes).
 */
export function callAgent(socketPath: string, req: AgentRequest, opts: CallOptions): Promise<AgentResponse> {
  return new Promise<AgentResponse>((resolve, reject) => {
    let settled = false;
    let connected = false;
    const chunks: Buffer[] = [];
    let received = 0;
    let sock: Socket | undefined;

    const finish = (err: CniError | null, resp?: AgentResponse): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(totalTimer);
      sock?.destroy();
      if (err) reject(err);
      else resolve(resp!);
    };

    const connectTimer = setTimeout(() => {
      if (!connected) {
        finish(
          new CniError(
            ErrCode.TryAgainLater,
            `tortie-node did not accept the connection on ${socketPath} within ${seconds(opts.connectTimeoutMs)}`,
          ),
        );
      }
    }, opts.connectTimeoutMs);
    const totalTimer = setTimeout(() => {
      finish(
        new CniError(
          ErrCode.TryAgainLater,
          `tortie-node did not answer the ${req.command} request within ${seconds(opts.totalTimeoutMs)} (socket ${socketPath})`,
        ),
      );
    }, opts.totalTimeoutMs);

    let line: string;
    try {
      line = JSON.stringify(req) + '\n';
    } catch (e) {
      finish(new CniError(ErrCode.Internal, `cannot encode the request for tortie-node: ${(e as Error).message}`));
      return;
    }

    try {
      sock = connect({ path: socketPath });
    } catch (e) {
      finish(socketError(e as NodeJS.ErrnoException, socketPath, false));
      return;
    }
    sock.on('connect', () => {
      connected = true;
      clearTimeout(connectTimer);
      sock!.write(line);
    });
    sock.on('data', (d: Buffer) => {
      const nl = d.indexOf(0x0a);
      if (nl >= 0) {
        chunks.push(d.subarray(0, nl));
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          finish(null, parseAgentResponse(text));
        } catch (e) {
          finish(e as CniError);
        }
        return;
      }
      received += d.length;
      if (received > MAX_RESPONSE_BYTES) {
        finish(malformed(`no end of line within ${MAX_RESPONSE_BYTES} bytes`));
        return;
      }
      chunks.push(d);
    });
    sock.on('end', () => {
      // The agent closed without a newline: accept a complete JSON object (a missing final newline is
      // harmless), report anything else.
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') {
        finish(new CniError(ErrCode.TryAgainLater, `tortie-node at ${socketPath} closed the connection without answering the ${req.command} request`));
        return;
      }
      try {
        finish(null, parseAgentResponse(text));
      } catch (e) {
        finish(e as CniError);
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => finish(socketError(e, socketPath, connected)));
    sock.on('close', () => {
      if (!settled) finish(new CniError(ErrCode.TryAgainLater, `tortie-node at ${socketPath} closed the connection without answering the ${req.command} request`));
    });
  });
}

/**
 * Whether something accepts connections on the agent's socket at `path`: `tortiectl node status`
 * asks it to find a running agent, the agent before it takes over a socket file. Rejects on errors
 * other than "nobody there" (ENOENT, ECONNREFUSED).
 */
export function socketIsLive(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    const t = setTimeout(() => {
      s.destroy();
      // Accepting but not answering the connect within the timeout still means a listener.
      resolve(true);
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(t);
      if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT') resolve(false);
      else reject(new Error(`cannot check the socket ${path}: ${e.message}`));
    });
  });
}
