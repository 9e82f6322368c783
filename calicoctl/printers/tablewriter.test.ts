import { test } from 'node:test';
import assert from 'node:assert/strict';
import { displayWidth, formatHeader, renderBoxTable, wrapString, wrapWords } from './tablewriter.js';

const lines = (...ls: string[]) => ls.map((l) => l + '\n').join('');

test('reference §3.3: node status peer table', () => {
  assert.equal(
    renderBoxTable(
      ['Peer address', 'Peer type', 'State', 'Since', 'Info'],
      [['172.17.8.102', 'node-to-node mesh', 'up', '23:30:04', 'Established']],
    ),
    lines(
      '+--------------+-------------------+-------+----------+-------------+',
      '| PEER ADDRESS |     PEER TYPE     | STATE |  SINCE   |    INFO     |',
      '+--------------+-------------------+-------+----------+-------------+',
      '| 172.17.8.102 | node-to-node mesh | up    | 23:30:04 | Established |',
      '+--------------+-------------------+-------+----------+-------------+',
    ),
  );
});

test('numbers are right-aligned, everything else left-aligned', () => {
  assert.equal(
    renderBoxTable(
      ['VALUE', 'OTHER'],
      [
        ['12', 'x'],
        ['1,234', '-5.5'],
        ['1,23', 'abc'],
        ['5 (0%)', '0'],
      ],
    ),
    lines(
      '+--------+-------+',
      '| VALUE  | OTHER |',
      '+--------+-------+',
      '|     12 | x     |',
      '|  1,234 |  -5.5 |',
      '| 1,23   | abc   |',
      '| 5 (0%) |     0 |',
      '+--------+-------+',
    ),
  );
});

test('long cells wrap at word boundaries to 30 columns; other cells of the continuation line are blank', () => {
  assert.equal(
    renderBoxTable(
      ['Peer address', 'Peer type', 'State', 'Since', 'Info'],
      [['10.0.0.5', 'global', 'start', '10:00:00', 'Connect Socket: Connection refused']],
    ),
    lines(
      '+--------------+-----------+-------+----------+--------------------------------+',
      '| PEER ADDRESS | PEER TYPE | STATE |  SINCE   |              INFO              |',
      '+--------------+-----------+-------+----------+--------------------------------+',
      '| 10.0.0.5     | global    | start | 10:00:00 | Connect Socket: Connection     |',
      '|              |           |       |          | refused                        |',
      '+--------------+-----------+-------+----------+--------------------------------+',
    ),
  );
});

test('a single word longer than 30 widens the column', () => {
  const word = 'x'.repeat(35);
  assert.equal(
    renderBoxTable(['H'], [[word + ' y']]),
    lines(
      '+-------------------------------------+',
      '|                  H                  |',
      '+-------------------------------------+',
      `| ${word} |`,
      `| y${' '.repeat(34)} |`,
      '+-------------------------------------+',
    ),
  );
});

test('multi-line cells are re-flowed to their widest line; short filler lines are two spaces', () => {
  // Column A is 1 wide, so its "  " filler overflows by one, as tablewriter v0.0.5 does.
  assert.equal(
    renderBoxTable(['A', 'B'], [['1', 'aaaa bbbb\ncc']]),
    lines('+---+-----------+', '| A |     B     |', '+---+-----------+', '| 1 | aaaa bbbb |', '|    | cc        |', '+---+-----------+'),
  );
});

test('rows with fewer cells than the header print fewer cells; no rows → header only', () => {
  assert.equal(renderBoxTable(['A', 'B'], [['x']]), lines('+---+---+', '| A | B |', '+---+---+', '| x |', '+---+---+'));
  assert.equal(renderBoxTable(['PROPERTY', 'VALUE'], []), lines('+----------+-------+', '| PROPERTY | VALUE |', '+----------+-------+', '+----------+-------+'));
});

test('header formatting', () => {
  assert.equal(formatHeader('Peer address'), 'PEER ADDRESS');
  assert.equal(formatHeader('ips_total'), 'IPS TOTAL');
  assert.equal(formatHeader('BORROWING-NODE'), 'BORROWING-NODE');
  assert.equal(formatHeader('v1.2'), 'V1.2');
  assert.equal(formatHeader('a.b'), 'A B');
  assert.equal(formatHeader(' x '), 'X');
  assert.equal(formatHeader('_'), ' ');
});

test('minimum-raggedness wrapping', () => {
  assert.deepEqual(wrapString('Connect Socket: Connection refused', 30), {
    lines: ['Connect Socket: Connection', 'refused'],
    limit: 30,
  });
  // Greedy filling would give "aaa bb" / "cc" / "ddddd"; minimum raggedness balances the lines.
  assert.deepEqual(wrapWords(['aaa', 'bb', 'cc', 'ddddd'], 1, 6, 1e5), [['aaa'], ['bb', 'cc'], ['ddddd']]);
  assert.deepEqual(wrapWords(['aaaa', 'bb', 'cc', 'ddddd'], 1, 10, 1e5), [['aaaa', 'bb', 'cc'], ['ddddd']]);
  assert.deepEqual(wrapWords(['aaaa', 'bbbb', 'cc'], 1, 9, 1e5), [['aaaa', 'bbbb'], ['cc']]);
  assert.deepEqual(wrapString('tiny', 30), { lines: ['tiny'], limit: 30 });
});

test('display width', () => {
  assert.equal(displayWidth('abc'), 3);
  assert.equal(displayWidth('\x1b[31mred\x1b[0m'), 3);
  assert.equal(displayWidth('노드'), 4);
  assert.equal(displayWidth('e\u0301'), 1);
});
