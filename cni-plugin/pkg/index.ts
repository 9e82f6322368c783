// The CNI plugin's public entry, for the node agent (node/) and tortiectl (calicoctl/): the
// plugin↔agent protocol, the agent's CNI handler (the work done inside the agent), the host-veth
// naming, and whether an agent's socket is live. The plugin binaries (cni-plugin/cmd/) import their
// own modules directly and never this file, so a CNI invocation loads only what it uses. Other
// components import cni-plugin only through this file; the import check (scripts/check-imports.mjs)
// refuses anything else.
export { type AgentCommand, type AgentRequest, type AgentResponse, encodeMessage } from './agentapi/protocol.js';
export { socketIsLive } from './agentclient/index.js';
export { vethPrefixFrom } from './naming/index.js';
export { makeCniHandler } from './plugin/handler.js';
export { CniTokenRefresher, requestToken, type IssuedToken } from './install/token.js';
export { DEFAULT_CNI_SERVICE_ACCOUNT, KUBECONFIG_NAME } from './install/render.js';
