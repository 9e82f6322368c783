// Felix's public entry: what the node agent (node/) uses of the policy compiler (calc/) and the Linux
// dataplane (dataplane/linux/). Other components import felix only through this file; the import
// check (scripts/check-imports.mjs) refuses anything else.
export { type EndpointToHostAction, parseInterfacePrefixes } from './calc/policy-compiler.js';
export { localEndpointsOf } from './calc/policy-inputs.js';
export { configureKernel, ipv4OnlyPodDataplane } from './dataplane/linux/kernel.js';
export { NatTable } from './dataplane/linux/nat.js';
export { Reconciler, type ReconcileOptions, type ReconcileResult } from './dataplane/linux/overlay.js';
export * as podnet from './dataplane/linux/podnet.js';
export { type PolicyApplyResult, PolicyTable } from './dataplane/linux/policy-table.js';
export type { OverlayInput, PoolSpec, RemoteBlock, RemoteVtep } from './dataplane/linux/routes.js';
export { type VxlanDeviceSpec, vtepMacForNode } from './dataplane/linux/vxlan.js';
