import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderTabTable, tabwriterFormat } from './tabwriter.js';

const lines = (...ls: string[]) => ls.map((l) => l + '\n').join('');

test('reference §3.4: ippool default and wide tables, byte for byte', () => {
  assert.equal(
    renderTabTable(['NAME', 'CIDR', 'SELECTOR'], [['default-ipv4-ippool', '192.168.0.0/16', 'all()']]),
    lines('NAME                  CIDR             SELECTOR   ', 'default-ipv4-ippool   192.168.0.0/16   all()      ', ''),
  );
  assert.equal(
    renderTabTable(
      ['NAME', 'CIDR', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR', 'ASSIGNMENTMODE'],
      [['default-ipv4-ippool', '192.168.0.0/16', 'true', 'Always', 'Never', 'false', 'false', 'all()', 'Automatic']],
    ),
    lines(
      'NAME                  CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR   ASSIGNMENTMODE   ',
      'default-ipv4-ippool   192.168.0.0/16   true   Always     Never       false      false              all()      Automatic        ',
      '',
    ),
  );
});

test('reference §3.4: empty cells are all padding, minimum width 5', () => {
  assert.equal(
    renderTabTable(
      ['NAME', 'ASN', 'IPV4', 'IPV6'],
      [
        ['node1', '(64512)', '10.0.0.21/24', ''],
        ['node2', '(64512)', '10.0.0.22/24', ''],
      ],
    ),
    lines('NAME    ASN       IPV4           IPV6   ', 'node1   (64512)   10.0.0.21/24          ', 'node2   (64512)   10.0.0.22/24          ', ''),
  );
  assert.equal(renderTabTable(['A'], [['b']]), lines('A    ', 'b    ', ''));
});

test('a table with no rows is the heading line and the blank line', () => {
  assert.equal(renderTabTable(['NAME', 'CIDR'], []), lines('NAME   CIDR   ', ''));
});

test('column blocks end at a line with fewer cells (multi-line values)', () => {
  // The SELECTOR value holds a newline: its second half becomes a line of its own, which ends
  // the SELECTOR column block, so the next row's SELECTOR column is sized on its own.
  assert.equal(
    renderTabTable(
      ['NAME', 'SELECTOR'],
      [
        ['p1', 'x\ny'],
        ['longername', 'z'],
      ],
    ),
    lines('NAME         SELECTOR   ', 'p1           x', 'y            ', 'longername   z    ', ''),
  );
  assert.equal(
    tabwriterFormat('a\tb\tc\naaaa\tbbbbbbb\nx\nyy\tz\t\n'),
    lines('a      b    c', 'aaaa   bbbbbbb', 'x', 'yy   z    '),
  );
});

test('unterminated tail, form feed, runes', () => {
  assert.equal(tabwriterFormat('a\tb'), 'a    b');
  assert.equal(tabwriterFormat('a\tb\t\fccccccc\td\t\n'), 'a    b    \nccccccc   d    \n');
  // widths count code points, not bytes
  assert.equal(tabwriterFormat('é\tx\t\nab\ty\t\n'), 'é    x    \nab   y    \n');
});

test('seed: calicoctl get ippool -o wide (v3.20, trailing spaces lost in the article)', () => {
  const out = renderTabTable(
    ['NAME', 'CIDR', 'NAT', 'IPIPMODE', 'VXLANMODE', 'DISABLED', 'DISABLEBGPEXPORT', 'SELECTOR'],
    [['default-pool', '10.233.64.0/18', 'true', 'Always', 'Never', 'false', 'false', 'all()']],
  );
  assert.deepEqual(
    out.split('\n').map((l) => l.trimEnd()),
    [
      'NAME           CIDR             NAT    IPIPMODE   VXLANMODE   DISABLED   DISABLEBGPEXPORT   SELECTOR',
      'default-pool   10.233.64.0/18   true   Always     Never       false      false              all()',
      '',
      '',
    ],
  );
});
