// CalicoNodeStatus through validation: spec checked, status kept (the agent owns it).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError, validateResource } from './validate.js';
import { kindFromArg } from './kinds.js';

describe('CalicoNodeStatus', () => {
  it('is a cluster-scoped kind calicoctl names as Calico does', () => {
    assert.equal(kindFromArg('caliconodestatus')?.plural, 'caliconodestatuses');
    assert.equal(kindFromArg('CalicoNodeStatuses')?.namespaced, false);
  });

  it('keeps spec and status', () => {
    const r = validateResource({
      apiVersion: 'projectcalico.org/v3',
      kind: 'CalicoNodeStatus',
      metadata: { name: 'n1' },
      spec: { node: 'n1', classes: ['Agent', 'BGP', 'Routes'], updatePeriodSeconds: 10 },
      status: { lastUpdated: '2026-12-04T19:23:06Z', tortie: { restarts: 1 } },
    });
    assert.deepEqual(r.spec, { classes: ['Agent', 'BGP', 'Routes'], node: 'n1', updatePeriodSeconds: 10 });
    assert.deepEqual(r.status, { lastUpdated: '2026-12-04T19:23:06Z', tortie: { restarts: 1 } });
  });

  it('names a bad class and a bad period', () => {
    assert.throws(
      () => validateResource({ apiVersion: 'projectcalico.org/v3', kind: 'CalicoNodeStatus', metadata: { name: 'n1' }, spec: { node: 'n1', classes: ['bgp'], updatePeriodSeconds: -1 } }),
      (e: unknown) => e instanceof ValidationError && /spec\.classes\[0\].*"bgp".*did you mean "BGP"/s.test(e.message) && /updatePeriodSeconds/.test(e.message),
    );
  });
});
