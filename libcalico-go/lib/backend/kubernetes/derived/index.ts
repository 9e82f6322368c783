// The derived kinds of the Kubernetes datastore, for KubernetesBackendOptions.handlers.
import type { KindHandlerFactory } from '../handler.js';
import { kubernetesNetworkPolicyHandler } from './knp-handler.js';
import { nodeHandler } from './node-handler.js';
import { profileHandler, type ProfileHandlerOptions } from './profile-handler.js';
import { workloadEndpointHandler, type WorkloadEndpointHandlerOptions } from './wep-handler.js';

export { OperationNotSupportedError, InvalidDerivedValueError } from './errors.js';
export { NodeHandler, nodeHandler } from './node-handler.js';
export { WorkloadEndpointHandler, workloadEndpointHandler, type WorkloadEndpointHandlerOptions } from './wep-handler.js';
export { ProfileHandler, profileHandler, type ProfileHandlerOptions } from './profile-handler.js';
export { KubernetesNetworkPolicyHandler, kubernetesNetworkPolicyHandler } from './knp-handler.js';

export interface DerivedHandlersOptions extends WorkloadEndpointHandlerOptions, ProfileHandlerOptions {}

/**
 * Handlers for every derived kind: Node, WorkloadEndpoint (`cniWrites` for the CNI plugin's client,
 * `interfacePrefix` = FELIX_INTERFACEPREFIX's first entry), Profile and Kubernetes NetworkPolicy.
 */
export function derivedHandlers(opts: DerivedHandlersOptions = {}): KindHandlerFactory[] {
  return [
    nodeHandler,
    workloadEndpointHandler({ interfacePrefix: opts.interfacePrefix, cniWrites: opts.cniWrites }),
    profileHandler({ revisions: opts.revisions }),
    kubernetesNetworkPolicyHandler,
  ];
}
