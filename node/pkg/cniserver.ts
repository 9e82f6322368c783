// The agent's end of the plugin↔agent protocol (cni-plugin/pkg/agentapi/protocol.ts): a unix
// socket server that reads one JSON request line per connection, hands it to the handler, writes
// one JSON response line and closes. Connections are served concurrently.
//
// * The socket's directory is created (0755); the socket itself is 0600 (bound under a umask so
//   it is never briefly wider).
// * A socket file left by a dead agent (connect refused) is removed; a live one (connect
//   succeeds) makes startup fail, so two agents never fight over one socket. Anything other than
//   a socket at the path is left alone and refused.
// * Requests are bounded (maxRequestBytes, default 4 MiB) and must arrive within readTimeoutMs
//   (default 30 s). Malformed → {ok:false, code:6}; a throwing handler → {ok:false, code:999}.
// * The connection carries the request's life: the plugin never half-closes while it waits, so an
//   end or close of the connection before the answer means the plugin is gone (killed by its
//   runtime, or its own timeout passed). The handler's AbortSignal fires then, with the reason.
import { chmodSync, lstatSync, mkdirSync, unlinkSync, type Stats } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { type AgentCommand, type AgentRequest, type AgentResponse, encodeMessage, socketIsLive } from '../../cni-plugin/pkg/index.js';

/** CNI error code for "failed to decode content". */
export const CODE_DECODE = 6;
/** Tortie's code for an internal failure of the agent while handling a request. */
export const CODE_INTERNAL = 999;

export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;
export const DEFAULT_READ_TIMEOUT_MS = 30_000;

const COMMANDS: readonly AgentCommand[] = ['ADD', 'DEL', 'CHECK', 'STATUS', 'GC'];

export class CniServerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CniServerError';
  }
}

/** The reason given to a handler's AbortSignal when its plugin went away. */
export class PluginGoneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginGoneError';
  }
}

export interface CniServerOptions {
  maxRequestBytes?: number;
  readTimeoutMs?: number;
  /** How long close() waits for requests in flight before cutting them off. Default 10 s. */
  closeGraceMs?: number;
  /** Called once per request with its outcome (metrics, logs). */
  onRequest?: (info: { command?: string; containerId?: string; response: AgentResponse; seconds: number }) => void;
}

export interface CniServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a decoded request's shape; returns the problem, or null when it is well-formed. */
export function requestProblem(v: unknown): string | null {
  if (!isObj(v)) return 'request is not a JSON object';
  if (typeof v.command !== 'string' || !COMMANDS.includes(v.command as AgentCommand)) {
    return `command ${JSON.stringify(v.command)} is not one of ${COMMANDS.join(', ')}`;
  }
  for (const k of ['containerId', 'netns', 'ifname', 'cniVersion']) {
    if (typeof v[k] !== 'string') return `${k} must be a string, got ${JSON.stringify(v[k]) ?? 'nothing'}`;
  }
  if (!isObj(v.args) || Object.values(v.args).some((x) => typeof x !== 'string')) {
    return 'args must be an object of strings';
  }
  if (!Array.isArray(v.path) || v.path.some((x) => typeof x !== 'string')) return 'path must be a list of strings';
  if (!isObj(v.config)) return 'config must be an object';
  if (v.validAttachments !== undefined && v.validAttachments !== null && !Array.isArray(v.validAttachments)) {
    return 'validAttachments must be a list or null';
  }
  return null;
}

function statOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Makes the socket path usable: directory present, no stale socket; refuses a live one. */
async function prepareSocketPath(path: string): Promise<void> {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const st = statOrNull(path);
  if (!st) return;
  if (!st.isSocket()) {
    throw new CniServerError(`${path} exists and is not a socket; not touching it (remove it if it is not needed)`);
  }
  let live: boolean;
  try {
    live = await socketIsLive(path);
  } catch (e) {
    throw new CniServerError((e as Error).message);
  }
  if (live) {
    throw new CniServerError(`another agent is already listening on ${path}; refusing to start a second one`);
  }
  unlinkSync(path);
}

function listenUnix(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(new CniServerError(`cannot listen on ${path}: ${e.message}`));
    server.once('error', onError);
    let oldMask: number | undefined;
    try {
      oldMask = process.umask(0o177);
    } catch {
      // Not allowed in worker threads: fall back to the chmod below.
    }
    try {
      server.listen(path, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      if (oldMask !== undefined) process.umask(oldMask);
    }
  });
}

/**
 * Starts the server. `handle` gets each well-formed request; its answer (or a code-999 error if it
 * throws) is written back as one line.
 */
export async function startCniServer(
  socketPath: string,
  handle: (req: AgentRequest, signal: AbortSignal) => Promise<AgentResponse>,
  opts: CniServerOptions = {},
): Promise<CniServer> {
  const maxBytes = opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const readTimeout = opts.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
  const conns = new Set<Socket>();
  /** Connections whose request has been read (being handled). */
  const inFlight = new WeakSet<Socket>();

  const serve = (sock: Socket) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => {
      // The client went away; nothing to answer.
    });
    const t0 = process.hrtime.bigint();
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    let answered = false;
    const life = new AbortController();
    const gone = (why: string) => {
      if (!answered && !life.signal.aborted) life.abort(new PluginGoneError(why));
    };
    sock.on('close', () => gone('the plugin closed the connection before the answer (killed, or its timeout passed)'));

    const respond = (resp: AgentResponse, req?: Partial<AgentRequest>) => {
      answered = true;
      opts.onRequest?.({
        command: req?.command,
        containerId: req?.containerId,
        response: resp,
        seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      });
      if (sock.destroyed || !sock.writable) return;
      sock.end(encodeMessage(resp));
    };

    const finishRead = (text: string) => {
      done = true;
      inFlight.add(sock);
      sock.setTimeout(0);
      // Keep reading (and discarding) so that the plugin's end of the connection is seen at once.
      sock.on('end', () => gone('the plugin ended the connection before the answer'));
      let decoded: unknown;
      try {
        decoded = JSON.parse(text);
      } catch (e) {
        respond({ ok: false, code: CODE_DECODE, msg: 'malformed request: not valid JSON', details: (e as Error).message });
        return;
      }
      const problem = requestProblem(decoded);
      if (problem) {
        respond({ ok: false, code: CODE_DECODE, msg: `malformed request: ${problem}` }, isObj(decoded) ? (decoded as Partial<AgentRequest>) : undefined);
        return;
      }
      const req = decoded as AgentRequest;
      let p: Promise<AgentResponse>;
      try {
        p = Promise.resolve(handle(req, life.signal));
      } catch (e) {
        p = Promise.reject(e);
      }
      p.then(
        (resp) => {
          if (!isObj(resp) || typeof resp.ok !== 'boolean') {
            respond({ ok: false, code: CODE_INTERNAL, msg: 'the agent produced no valid response' }, req);
          } else respond(resp, req);
        },
        (e: unknown) => {
          const msg = e instanceof Error ? e.message : String(e);
          respond({ ok: false, code: CODE_INTERNAL, msg: `internal error in the node agent: ${msg}` }, req);
        },
      );
    };

    sock.setTimeout(readTimeout, () => {
      if (done) return;
      done = true;
      respond({ ok: false, code: CODE_DECODE, msg: `malformed request: no complete request line within ${readTimeout} ms` });
      sock.destroySoon();
    });
    sock.on('data', (d: Buffer) => {
      if (done) return;
      const nl = d.indexOf(0x0a);
      const part = nl >= 0 ? d.subarray(0, nl) : d;
      size += part.length;
      if (size > maxBytes) {
        done = true;
        sock.setTimeout(0);
        respond({ ok: false, code: CODE_DECODE, msg: `malformed request: larger than ${maxBytes} bytes` });
        return;
      }
      chunks.push(part);
      if (nl >= 0) finishRead(Buffer.concat(chunks).toString('utf8'));
    });
    sock.on('end', () => {
      if (done) return;
      // No newline before EOF: a request written without one still counts; nothing at all (a
      // liveness probe from another agent) gets no answer.
      if (size === 0) {
        done = true;
        sock.setTimeout(0);
        sock.end();
        return;
      }
      finishRead(Buffer.concat(chunks).toString('utf8'));
    });
  };

  await prepareSocketPath(socketPath);
  const server = createServer({ allowHalfOpen: true }, serve);
  await listenUnix(server, socketPath);
  chmodSync(socketPath, 0o600);
  const ours = lstatSync(socketPath);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      const grace = setTimeout(() => {
        for (const c of conns) c.destroy();
      }, opts.closeGraceMs ?? 10_000);
      grace.unref();
      server.close(() => {
        clearTimeout(grace);
        // Remove the socket file if it is still the one we bound (not a successor's).
        const st = statOrNull(socketPath);
        if (st && st.ino === ours.ino && st.dev === ours.dev) {
          try {
            unlinkSync(socketPath);
          } catch {
            // already gone
          }
        }
        resolve();
      });
      // Connections that have not sent a full request yet will not: cut them now.
      for (const c of conns) if (!inFlight.has(c)) c.destroy();
    }));

  return { socketPath, close };
}
