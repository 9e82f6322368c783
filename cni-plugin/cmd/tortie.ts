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
import { type Logger, createLogger } from '../../libcalico-go/lib/logutils/index.js';
import { type RotateOptions, rotateIfDue } from '../pkg/logrotate/index.js';
import { type LogLevel, type TortieNetConf, parseNetConf } from '../pkg/netconf/index.js';
import { CniError, ErrCode } from '../pkg/skel/errors.js';
import type { GcAttachment } from '../pkg/skel/gc.js';
import type { Invocation } from '../pkg/skel/invocation.js';
import type { InternalResult } from '../pkg/skel/result.js';
import { type PluginHandlers, runPlugin } from '../pkg/skel/run.js';

const SUPPORTED_VERSIONS: readonly string[] = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];

// ---------------------------------------------------------------------------------------------------
// Logging

/**
 * Calico's log line (libcalico-go/lib/logutils) to `log_file_path` (directories created, rotated
 * by size first) or stderr. Opening the file never fails the invocation: it falls back to stderr.
 */
function openLog(level: LogLevel, file: string | undefined, rotate: RotateOptions = {}): Logger {
  let fd = 2;
  const log = createLogger('tortie', {
    level,
    sink: (line) => {
      try {
        writeSync(fd, `${line}\n`);
      } catch {
        // Logging must never fail the invocation.
      }
    },
  });
  if (file === undefined) return log;
  try {
    mkdirSync(dirname(file), { recursive: true });
    rotateIfDue(file, rotate);
    fd = openSync(file, 'a', 0o644);
  } catch (e) {
    log.warn(`cannot open log file, logging to stderr instead: ${(e as Error).message}`, { file });
  }
  return log;
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
  const log = openLog(conf.logLevel, conf.logFilePath, {
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
  log.info(`${command} request`, { ...ids, Netns: inv.netns, Network: conf.name });
  log.debug('forwarding to tortie-node', { Socket: conf.agentSocket, CNIVersion: inv.cniVersion, IPAM: conf.ipam.type });
  const started = Date.now();
  let resp: Awaited<ReturnType<typeof callAgent>>;
  try {
    resp = await callAgent(conf.agentSocket, buildRequest(inv, command, valid), COMMAND_TIMEOUTS[command]);
  } catch (e) {
    const err = e as CniError;
    log.error(`${command} failed: ${err.message}`, { ...ids, Code: err.code });
    // STATUS reports unavailability with its own codes: an unreachable agent means "not available".
    if (command === 'STATUS' && err.code === ErrCode.TryAgainLater) {
      throw new CniError(ErrCode.PluginNotAvailable, err.message, err.details);
    }
    throw err;
  }
  const ms = Date.now() - started;
  if (!resp.ok) {
    log.error(`${command} failed: ${resp.msg}`, { ...ids, Code: resp.code, Details: resp.details, Ms: ms });
    throw new CniError(resp.code, resp.msg, resp.details);
  }
  if (command === 'ADD') {
    if (!resp.result) {
      log.error('ADD answered without a result', ids);
      throw new CniError(ErrCode.Internal, 'malformed response from tortie-node: ADD succeeded without a result');
    }
    log.info('ADD done', { ...ids, IPs: (resp.result.ips ?? []).map((i) => i.address).join(','), Ms: ms });
    return resp.result;
  }
  log.info(`${command} done`, { ...ids, Ms: ms });
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
