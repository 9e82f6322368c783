// Entry point of bin/tortie, the CNI main plugin. A thin client: it validates the network
// configuration, forwards the invocation to tortie-node over its unix socket (agentapi/protocol.ts) and
// prints the answer. IPAM, pod wiring and the WorkloadEndpoint are tortie-node's work.
//
// Startup cost matters (the runtime execs this once per pod per command), so the import graph is kept
// to the skel, the pure netconf parser and the socket client: no datastore, IPAM, YAML or selector
// modules. Logs go to `log_file_path` (appended, directories created, rotated by size as Calico's
// log_file_max_size/_age/_count say) or stderr, never stdout.
import { mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AgentCommand, AgentRequest } from '../pkg/agentapi/protocol.js';
import { COMMAND_TIMEOUTS, callAgent } from '../pkg/agentclient/index.js';
import { type RotateOptions, rotateIfDue } from '../pkg/logrotate/index.js';
import { LOG_LEVEL_ORDER, type LogLevel, type TortieNetConf, parseNetConf } from '../pkg/netconf/index.js';
import { CniError, ErrCode } from '../pkg/skel/errors.js';
import type { GcAttachment } from '../pkg/skel/gc.js';
import type { Invocation } from '../pkg/skel/invocation.js';
import type { InternalResult } from '../pkg/skel/result.js';
import { type PluginHandlers, runPlugin } from '../pkg/skel/run.js';

const SUPPORTED_VERSIONS: readonly string[] = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

// ---------------------------------------------------------------------------------------------------
// Logging

const LEVEL_TAG: Readonly<Record<LogLevel, string>> = {
  trace: 'TRACE',
  debug: 'DEBUG',
  info: 'INFO',
  warning: 'WARNING',
  error: 'ERROR',
  fatal: 'FATAL',
  panic: 'PANIC',
};

/** "2026-01-02 03:04:05.678" in UTC. */
function stamp(d: Date): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

function fieldText(fields: Record<string, unknown>): string {
  let s = '';
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined || v === '') continue;
    s += ` ${k}=${typeof v === 'string' && /^[\w./:-]+$/.test(v) ? v : JSON.stringify(v)}`;
  }
  return s;
}

class Logger {
  private fd = 2;
  private readonly min: number;

  constructor(level: LogLevel, file: string | undefined, rotate: RotateOptions = {}) {
    this.min = LOG_LEVEL_ORDER[level];
    if (file === undefined) return;
    try {
      mkdirSync(dirname(file), { recursive: true });
      rotateIfDue(file, rotate);
      this.fd = openSync(file, 'a', 0o644);
    } catch (e) {
      this.log('warning', `cannot open log file, logging to stderr instead: ${(e as Error).message}`, { file });
    }
  }

  log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
    if (LOG_LEVEL_ORDER[level] < this.min) return;
    const line = `${stamp(new Date())} [${LEVEL_TAG[level]}][${process.pid}] tortie: ${msg}${fieldText(fields)}\n`;
    try {
      writeSync(this.fd, line);
    } catch {
      // Logging must never fail the invocation.
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Forwarding

/** The request for tortie-node, built from the invocation as the skel parsed it. */
function buildRequest(inv: Invocation, command: AgentCommand, valid?: GcAttachment[] | null): AgentRequest {
  const req: AgentRequest = {
    command,
    containerId: inv.containerId,
    netns: inv.netns,
    ifname: inv.ifname,
    args: Object.fromEntries(inv.args),
    path: inv.path,
    config: inv.config,
    cniVersion: inv.cniVersion,
  };
  if (command === 'GC') req.validAttachments = valid ?? null;
  return req;
}

async function forward(inv: Invocation, command: AgentCommand, valid?: GcAttachment[] | null): Promise<InternalResult | undefined> {
  // Validate first: bad input fails without touching the agent.
  const conf: TortieNetConf = parseNetConf(inv.config);
  const log = new Logger(conf.logLevel, conf.logFilePath, {
    maxSizeMB: conf.logFileMaxSize,
    maxAgeDays: conf.logFileMaxAge,
    maxCount: conf.logFileMaxCount,
  });
  const ids = {
    ContainerID: inv.containerId,
    Namespace: inv.args.get('K8S_POD_NAMESPACE'),
    Pod: inv.args.get('K8S_POD_NAME'),
    IfName: inv.ifname,
  };
  log.log('info', `${command} request`, { ...ids, Netns: inv.netns, Network: conf.name });
  log.log('debug', 'forwarding to tortie-node', { Socket: conf.agentSocket, CNIVersion: inv.cniVersion, IPAM: conf.ipam.type });
  const started = Date.now();
  let resp;
  try {
    resp = await callAgent(conf.agentSocket, buildRequest(inv, command, valid), COMMAND_TIMEOUTS[command]);
  } catch (e) {
    const err = e as CniError;
    log.log('error', `${command} failed: ${err.message}`, { ...ids, Code: err.code });
    // STATUS reports unavailability with its own codes: an unreachable agent means "not available".
    if (command === 'STATUS' && err.code === ErrCode.TryAgainLater) {
      throw new CniError(ErrCode.PluginNotAvailable, err.message, err.details);
    }
    throw err;
  }
  const ms = Date.now() - started;
  if (!resp.ok) {
    log.log('error', `${command} failed: ${resp.msg}`, { ...ids, Code: resp.code, Details: resp.details, Ms: ms });
    throw new CniError(resp.code, resp.msg, resp.details);
  }
  if (command === 'ADD') {
    if (!resp.result) {
      log.log('error', 'ADD answered without a result', ids);
      throw new CniError(ErrCode.Internal, 'malformed response from tortie-node: ADD succeeded without a result');
    }
    log.log('info', 'ADD done', { ...ids, IPs: (resp.result.ips ?? []).map((i) => i.address).join(','), Ms: ms });
    return resp.result;
  }
  log.log('info', `${command} done`, { ...ids, Ms: ms });
  return undefined;
}

const handlers: PluginHandlers = {
  add: async (inv) => (await forward(inv, 'ADD'))!,
  del: async (inv) => {
    await forward(inv, 'DEL');
  },
  check: async (inv) => {
    await forward(inv, 'CHECK');
  },
  status: async (inv) => {
    await forward(inv, 'STATUS');
  },
  gc: async (inv, valid) => {
    await forward(inv, 'GC', valid);
  },
};

await runPlugin(handlers, SUPPORTED_VERSIONS);
