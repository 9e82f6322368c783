import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger, formatFields, formatLine, parseLogLevel } from './index.js';

test('Felix line format with fields', () => {
  const when = new Date(2026, 10, 24, 23, 45, 1, 123);
  assert.equal(formatLine('INFO', 'startup.ts', 'hello', { Node: 'n1', Msg: 'two words', Empty: '', N: 3 }, when, 42),
    '2026-11-24 23:45:01.123 [INFO][42] startup.ts: hello Node=n1 Msg="two words" N=3');
  assert.equal(formatFields(), '');
});

test('levels: names in any case, warn alias, unknown refused', () => {
  assert.equal(parseLogLevel('debug'), 'DEBUG');
  assert.equal(parseLogLevel(' Warn '), 'WARNING');
  assert.equal(parseLogLevel('panic'), 'PANIC');
  assert.equal(parseLogLevel('verbose'), undefined);
  assert.equal(parseLogLevel('constructor'), undefined);
});

test('lines below the level are dropped; child names its file', () => {
  const lines: string[] = [];
  const log = createLogger('a.ts', { level: 'WARNING', sink: (l) => lines.push(l) });
  log.info('no');
  log.warn('yes', { k: 'v' });
  log.child('b.ts').log('ERROR', 'child');
  assert.equal(lines.length, 2);
  assert.match(lines[0], /\[WARNING\]\[\d+\] a\.ts: yes k=v$/);
  assert.match(lines[1], /\[ERROR\]\[\d+\] b\.ts: child$/);
});
