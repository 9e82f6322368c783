// Calico policy semantics, pure: the model, the evaluator, Kubernetes NetworkPolicy conversion and
// the truth-table cases.
export * from './model.js';
export { type Decider, type Explanation, type Flow, type Peer, type Protocol, type Verdict, policySelects, policyTypes, verdict } from './evaluate.js';
export { comparePolicies, policyId, tierName, tiersOf, type TierInfo } from './order.js';
export { K8S_NP_API_VERSION, KNP_ORDER, KNP_PREFIX, K8sPolicyError, convertK8sNetworkPolicy, convertLabelSelector, isK8sNetworkPolicy } from './k8s.js';
