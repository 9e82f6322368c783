import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SelectorError, isValidLabel, isValidSelector, parseSelector, selectorError } from './index.js';

type L = Record<string, string>;

/** [selector, labels that match, labels that do not]. */
const evalCases: Array<[string, L[], L[]]> = [
  ['a == "b"', [{ a: 'b' }, { a: 'b', c: 'd' }], [{ a: 'c' }, { c: 'd' }, {}]],
  ["a == 'b'", [{ a: 'b' }], [{ a: 'B' }]],
  ['a != "b"', [{ a: 'c' }, {}, { c: 'b' }], [{ a: 'b' }]],
  ['a == "b" && c == "d"', [{ a: 'b', c: 'd' }], [{ a: 'b', c: 'e' }, { a: 'b' }, { c: 'd' }]],
  ['a == "b" || c == "d"', [{ a: 'b' }, { c: 'd' }, { a: 'b', c: 'd' }], [{ a: 'e', c: 'e' }, {}]],
  ['a in {"x", "y"}', [{ a: 'x' }, { a: 'y' }], [{ a: 'z' }, {}]],
  ['a not in {"x", "y"}', [{ a: 'z' }, {}], [{ a: 'x' }, { a: 'y' }]],
  ['a notin {"x"}', [{ a: 'z' }, {}], [{ a: 'x' }]],
  ['a in {}', [], [{ a: '' }, {}]],
  ['a not in {}', [{ a: '' }, {}], []],
  [`a in {"'", '"', "c"}`, [{ a: "'" }, { a: '"' }, { a: 'c' }], [{ a: 'e' }]],
  ['a contains "an"', [{ a: 'banana' }, { a: 'an' }], [{ a: 'bn' }, { b: 'an' }, {}]],
  ['a starts with "ba"', [{ a: 'banana' }, { a: 'ba' }], [{ a: 'abba' }, {}]],
  ['a ends with "na"', [{ a: 'banana' }], [{ a: 'nab' }, {}]],
  ['a startswith "x"', [{ a: 'xy' }], [{ a: 'yx' }]],
  ['a ends   with "x"', [{ a: 'yx' }], [{ a: 'xy' }]],
  ['has(a)', [{ a: '' }, { a: 'v' }], [{ b: 'a' }, {}]],
  ['!has(a)', [{ b: 'a' }, {}], [{ a: '' }]],
  ['!!has(a)', [{ a: 'x' }], [{}]],
  ['!!! has(a)', [{}], [{ a: 'x' }]],
  ['', [{}, { a: 'b' }], []],
  ['   ', [{}], []],
  ['all()', [{}, { x: 'y' }], []],
  [' all( ) ', [{}], []],
  ['global()', [{}], []],
  ['!all()', [], [{}]],
  ['has(a) && !has(b)', [{ a: '1' }], [{ a: '1', b: '2' }, {}]],
  ['!(has(b) || !has(a))', [{ a: '1' }], [{ a: '1', b: '1' }, { b: '1' }]],
  ['!a == "x"', [{ a: 'y' }, {}], [{ a: 'x' }]],
  ['a == "1" || b == "2" && c == "3"', [{ a: '1' }, { b: '2', c: '3' }], [{ b: '2' }, { c: '3' }]],
  ['(a == "1" || b == "2") && c == "3"', [{ a: '1', c: '3' }, { b: '2', c: '3' }], [{ a: '1' }, { c: '3' }]],
  ['k8s-app == "calico-node" && projectcalico.org/namespace == "kube-system"', [{ 'k8s-app': 'calico-node', 'projectcalico.org/namespace': 'kube-system' }], [{ 'k8s-app': 'calico-node' }]],
  ['a == ""', [{ a: '' }], [{}, { a: 'x' }]],
  ['a=="b"&&c!="d"', [{ a: 'b' }], [{ a: 'b', c: 'd' }]],
  ['a == "b"\t&&\thas(c)', [{ a: 'b', c: '' }], [{ a: 'b' }]],
  ['has(constructor)', [{ constructor: 'x' }], [{}]],
  ['toString == "x"', [{ toString: 'x' }], [{}]],
  ['in == "x"', [{ in: 'x' }], [{}]],
  ['has == "x"', [{ has: 'x' }], [{}]],
];

describe('selector evaluate', () => {
  for (const [text, yes, no] of evalCases) {
    it(JSON.stringify(text), () => {
      const sel = parseSelector(text);
      for (const l of yes) assert.equal(sel.evaluate(l), true, `${text} should match ${JSON.stringify(l)}`);
      for (const l of no) assert.equal(sel.evaluate(l), false, `${text} should not match ${JSON.stringify(l)}`);
      // The canonical form means the same thing and is a fixed point.
      const again = parseSelector(sel.canonical());
      assert.equal(again.canonical(), sel.canonical());
      for (const l of yes) assert.equal(again.evaluate(l), true);
      for (const l of no) assert.equal(again.evaluate(l), false);
    });
  }
});

describe('selector canonical form', () => {
  const cases: Array<[string, string]> = [
    ['', 'all()'],
    [' all() ', 'all()'],
    [' (all() )', 'all()'],
    ['global()', 'global()'],
    ['a == "x" && has(b)', '(a == "x" && has(b))'],
    ["a=='x'", 'a == "x"'],
    ['! (has( b)||! has(a ))', '!(has(b) || !has(a))'],
    ['! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")'],
    [`a == "'"`, `a == "'"`],
    [`a == '"'`, `a == '"'`],
    [`a contains '"'`, `a contains '"'`],
    [`a startswith '"'`, `a starts with '"'`],
    [`a endswith "'"`, `a ends with "'"`],
    [`a!='"'`, `a != '"'`],
    ['a in {"d", "a", "b"}', 'a in {"a", "b", "d"}'],
    ['a in {"z", "z", "x", "y", "x", "a"}', 'a in {"a", "x", "y", "z"}'],
    ["a not in {'b','a',}", 'a not in {"a", "b"}'],
    ['a notin {"x"}', 'a not in {"x"}'],
    ['a in {}', 'a in {}'],
    ['!!has(a)', 'has(a)'],
    ['!!!has(a)', '!has(a)'],
    ['!(k == "v")', '!k == "v"'],
    ['a == "1" && b == "2" && c == "3"', '(a == "1" && b == "2" && c == "3")'],
    ['(a == "1" && b == "2") && c == "3"', '((a == "1" && b == "2") && c == "3")'],
    ['a == "1" || b == "2" && c == "3"', '(a == "1" || (b == "2" && c == "3"))'],
    ['!(!(k == "v" && has(t) || all()) && (a in {"b", "c"}))', '!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})'],
    ['((((has(x)))))', 'has(x)'],
  ];
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${want}`, () => {
      assert.equal(parseSelector(input).canonical(), want);
      assert.equal(String(parseSelector(input)), want);
    });
  }

  it('computes the selector IDs Calico computes', () => {
    assert.equal(parseSelector('').uniqueId(), 's:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug');
    assert.equal(parseSelector(' (all() )').uniqueId(), 's:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug');
    assert.equal(parseSelector('! (has( b)||! has(a ))').uniqueId(), 's:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q');
    assert.equal(parseSelector('! (a == "b"&&! c != "d")').uniqueId(), 's:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w');
  });

  it('keeps the text as given and reports label names', () => {
    const s = parseSelector(' b == "1" && has(a) ');
    assert.equal(s.text, ' b == "1" && has(a) ');
    assert.deepEqual(s.labelNames(), ['a', 'b']);
    assert.equal(s.isAll(), false);
    assert.equal(parseSelector('').isAll(), true);
    assert.equal(parseSelector('has(a) || global()').usesGlobal(), true);
    assert.equal(parseSelector('has(a)').usesGlobal(), false);
  });
});

describe('selector errors', () => {
  /** [selector, position, text the message must contain]. */
  const bad: Array<[string, number, string]> = [
    ["a == 'x' && && b", 12, 'unexpected token "&&"'],
    ['b == b', 5, 'expected a quoted string after "=="'],
    ['b contains b', 11, 'expected a quoted string after "contains"'],
    ['b starts with b', 14, 'quoted string'],
    ['b ends with b', 12, 'quoted string'],
    ["'b1' == b", 0, 'unexpected token string "b1"'],
    ['b', 1, 'unexpected end of selector'],
    ['a b', 2, 'expected an operator'],
    ['!', 1, 'unexpected end of selector'],
    ['foo == "bar" &', 13, 'expected "&&"'],
    ['foo == "bar" |', 13, 'expected "||"'],
    ['foo in {"", ||', 12, 'unexpected token "||"'],
    ['foo in ""', 7, 'expected "{" after "in"'],
    ['foo not in "x"', 11, 'expected "{" after "not in"'],
    ['foo in {"a" "b"}', 12, 'expected "," or "}"'],
    ['foo in {"a",', 12, 'unexpected end of selector'],
    ['foo in {a}', 8, 'unexpected token label "a"'],
    ['"FOO', 0, 'unterminated string'],
    [`"FOO'`, 0, 'unterminated string'],
    ['a == "x', 5, 'unterminated string'],
    ['(a == "foo"', 11, 'missing ")" to close the "(" at position 0'],
    ['a == "foo")', 10, 'unexpected token ")" with no matching "("'],
    ['a == "b" && %', 12, 'unexpected character "%"'],
    ['a == "b" || %', 12, 'unexpected character "%"'],
    ['a = "b"', 2, 'expected "==" but found a single "="'],
    ['has(a', 5, 'expected ")"'],
    ['has()', 4, 'expected a label'],
    ['has(a b)', 6, 'expected ")"'],
    ['has (a)', 4, 'expected an operator'],
    ['all(x)', 4, 'expected ")" after all('],
    ['global(', 7, 'expected ")" after global('],
    ['a == "x" has(b)', 9, 'unexpected token "has(b)"'],
    ['a == "x" b == "y"', 9, 'unexpected token label "b"'],
    ['&& a == "x"', 0, 'unexpected token "&&"'],
    ['a == "x" ||', 11, 'unexpected end of selector'],
    ['()', 1, 'unexpected token ")"'],
    ['a\n== "x"', 1, 'unexpected character "\\n"'],
    ['a == "x" && b ! "y"', 14, 'unexpected token "!"'],
    ['a ∈ {"x"}', 2, 'unexpected character "∈" (expected an operator after label "a")'],
    ['a contain "x"', 2, 'expected an operator'],
    ['a inx {"x"}', 2, 'expected an operator'],
    ['x'.repeat(513) + ' == "a"', 0, 'longer than 512'],
    ['has(' + 'x'.repeat(513) + ')', 4, 'longer than 512'],
  ];
  for (const [text, pos, want] of bad) {
    it(JSON.stringify(text.length > 40 ? text.slice(0, 40) + '…' : text), () => {
      assert.throws(
        () => parseSelector(text),
        (e: unknown) => {
          assert.ok(e instanceof SelectorError, `expected SelectorError, got ${String(e)}`);
          assert.equal(e.position, pos, `position for ${JSON.stringify(text)}: ${e.shortMessage}`);
          assert.ok(e.message.includes(want), `message ${JSON.stringify(e.message)} should contain ${JSON.stringify(want)}`);
          assert.ok(e.shortMessage.includes(`at position ${pos} in selector ${JSON.stringify(text)}`));
          assert.equal(e.selector, text);
          return true;
        },
      );
      assert.equal(isValidSelector(text), false);
      assert.ok(selectorError(text) instanceof SelectorError);
    });
  }

  it('formats the example message with a caret line', () => {
    const e = selectorError("a == 'x' && && b");
    assert.ok(e);
    assert.equal(
      e.message,
      'unexpected token "&&" (expected a label, "has(", "all()", "global()", "!" or "(") at position 12 in selector "a == \'x\' && && b"\n' +
        "  a == 'x' && && b\n" +
        '              ^',
    );
  });

  it('accepts a label of exactly 512 characters', () => {
    assert.equal(isValidSelector('x'.repeat(512) + ' == "a"'), true);
    assert.equal(selectorError('has(a)'), null);
  });
});

describe('isValidLabel', () => {
  it('accepts selector label characters only', () => {
    assert.equal(isValidLabel('projectcalico.org/namespace'), true);
    assert.equal(isValidLabel('A_b-9'), true);
    assert.equal(isValidLabel(''), false);
    assert.equal(isValidLabel('a b'), false);
    assert.equal(isValidLabel('a:b'), false);
    assert.equal(isValidLabel('x'.repeat(513)), false);
  });
});

describe('selector performance', () => {
  it('parses and evaluates a 50-term selector repeatedly', () => {
    const text = Array.from({ length: 50 }, (_, i) => `(l${i} in {"a", "b", "c"} || !has(m${i}))`).join(' && ');
    let sel = parseSelector(text);
    for (let i = 0; i < 200; i++) sel = parseSelector(text);
    const labels: Record<string, string> = {};
    for (let i = 0; i < 50; i++) labels[`l${i}`] = 'b';
    let n = 0;
    for (let i = 0; i < 20000; i++) if (sel.evaluate(labels)) n++;
    assert.equal(n, 20000);
  });
});
