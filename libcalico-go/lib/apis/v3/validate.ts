// Entry point for validation: `import { validateResource } from '.../apis/v3/validate.js'`.
// The per-kind logic lives in ./validate/.

export { type ExistingResources, validateResource, validateResources } from './validate/index.js';
export { type Issue, ValidationError } from './errors.js';
