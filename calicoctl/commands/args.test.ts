import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type FlagSpec, UsageError, flag, flagBool, parseArgs } from './args.js';

const SPECS: FlagSpec[] = [
  { name: 'output', short: 'o', value: true },
  { name: 'all-namespaces', short: 'A' },
  { name: 'namespace', short: 'n', value: true },
  { name: 'from-report', value: true, repeat: true },
  { name: 'overwrite' },
];

test('long, short, attached and inline values; positionals anywhere; -- ends the flags', () => {
  const p = parseArgs(['get', '--output=yaml', 'ippool', '-A', '-ndefault', 'x', '--', '-o', 'y'], SPECS);
  assert.deepEqual(p.positional, ['get', 'ippool', 'x', '-o', 'y']);
  assert.equal(flag(p, 'output'), 'yaml');
  assert.equal(flag(p, 'namespace'), 'default');
  assert.equal(flagBool(p, 'all-namespaces'), true);
  assert.equal(flag(parseArgs(['-o', 'wide'], SPECS), 'output'), 'wide');
  assert.equal(flag(parseArgs(['-o=json'], SPECS), 'output'), 'json');
  assert.equal(flag(parseArgs(['--output', 'json'], SPECS), 'output'), 'json');
});

test('booleans take =true/=false; repeated flags collect only when allowed', () => {
  assert.equal(flagBool(parseArgs(['--overwrite=false'], SPECS), 'overwrite'), false);
  assert.equal(flagBool(parseArgs(['--overwrite=true'], SPECS), 'overwrite'), true);
  assert.equal(flagBool(parseArgs([], SPECS), 'overwrite'), false);
  assert.deepEqual(parseArgs(['--from-report', 'a', '--from-report=b'], SPECS).flags.get('from-report'), ['a', 'b']);
});

test('errors name the flag', () => {
  const bad = (argv: string[], msg: RegExp) => assert.throws(() => parseArgs(argv, SPECS), (e: unknown) => e instanceof UsageError && msg.test(e.message));
  bad(['--bogus'], /^unknown flag --bogus$/);
  bad(['--bogus=1'], /^unknown flag --bogus$/);
  bad(['-x'], /^unknown flag -x$/);
  bad(['--output'], /^flag --output needs a value$/);
  bad(['get', '-o'], /^flag -o needs a value$/);
  bad(['-o', 'a', '--output', 'b'], /^flag --output given more than once$/);
  bad(['--overwrite=maybe'], /^flag --overwrite takes true or false, got "maybe"$/);
});
