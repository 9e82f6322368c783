// The wire protocol between the `tortie` CNI plugin (a thin client) and `tortie-node` on the same
// node: one JSON request line and one JSON response line over a unix socket, then close.
// The client keeps its side open until the answer (no half-close): the agent takes the end of the
// connection before its answer as "the plugin is gone" and stops and undoes the request.
import type { InternalResult } from '../skel/result.js';
import type { GcAttachment } from '../skel/gc.js';

export type AgentCommand = 'ADD' | 'DEL' | 'CHECK' | 'STATUS' | 'GC';

export interface AgentRequest {
  command: AgentCommand;
  containerId: string;
  /** CNI_NETNS as the runtime gave it ("" when absent, e.g. DEL after the container exited). */
  netns: string;
  ifname: string;
  /** CNI_ARGS as key/value pairs. */
  args: Record<string, string>;
  /** CNI_PATH entries, for delegating to an IPAM plugin that is not tortie-ipam. */
  path: string[];
  /** The network configuration as the runtime sent it (including prevResult, runtimeConfig). */
  config: Record<string, unknown>;
  /** The CNI version the result will be printed in. */
  cniVersion: string;
  /** GC only: valid attachments, or null when the runtime gave no list. */
  validAttachments?: GcAttachment[] | null;
}

export type AgentResponse =
  | { ok: true; result?: InternalResult }
  | { ok: false; code: number; msg: string; details?: string };

export const DEFAULT_AGENT_SOCKET = '/var/run/tortie/cni.sock';

/** Encodes one message as a line. */
export function encodeMessage(m: AgentRequest | AgentResponse): string {
  return JSON.stringify(m) + '\n';
}
