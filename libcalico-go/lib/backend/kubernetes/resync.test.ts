// resyncEvents: what a watch reports after re-listing an expired resume point.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isExpired, resyncEvents } from './resync.js';

test('a re-list reports new and changed keys as puts (in revision order) and vanished keys as deletes', () => {
  const values = new Map([
    ['/a', '1'],
    ['/b', '2'],
    ['/c', '3'],
  ]);
  const evs = resyncEvents(
    values,
    [
      { key: '/a', value: '1', revision: '10' }, // unchanged: nothing
      { key: '/b', value: '2b', revision: '30' },
      { key: '/d', value: '4', revision: '20' },
    ],
    '40',
  );
  assert.deepEqual(evs, [
    { type: 'put', key: '/d', value: '4', revision: '20' },
    { type: 'put', key: '/b', value: '2b', prevValue: '2', revision: '30' },
    { type: 'delete', key: '/c', prevValue: '3', revision: '40' },
  ]);
  assert.deepEqual([...values].sort(), [['/a', '1'], ['/b', '2b'], ['/d', '4']]);
  // A second re-list of the same state reports nothing.
  assert.deepEqual(resyncEvents(values, [{ key: '/a', value: '1', revision: '10' }, { key: '/b', value: '2b', revision: '30' }, { key: '/d', value: '4', revision: '20' }], '41'), []);
});

test('410 Gone and the Expired reason are expiry; other failures are not', () => {
  assert.equal(isExpired({ code: 410, reason: 'Expired' }), true);
  assert.equal(isExpired({ reason: 'Gone' }), true);
  assert.equal(isExpired({ code: 500, reason: 'InternalError' }), false);
  assert.equal(isExpired({ code: 504, reason: 'Timeout' }), false);
});
