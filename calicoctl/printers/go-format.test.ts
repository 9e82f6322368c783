import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatGoF, formatGoFloatV, formatGoG } from './go-format.js';

test('%.5g like Go', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [5, '5'],
    [64, '64'],
    [256, '256'],
    [1000, '1000'],
    [16384, '16384'],
    [65531, '65531'],
    [65536, '65536'],
    [99999, '99999'],
    [100000, '1e+05'],
    [131072, '1.3107e+05'],
    [1048576, '1.0486e+06'],
    [4294967296, '4.295e+09'],
    [2 ** 64, '1.8447e+19'],
    [2 ** 128, '3.4028e+38'],
    [123455, '1.2346e+05'], // exact tie, odd digit → up
    [123445, '1.2344e+05'], // exact tie, even digit → stays
    [123446, '1.2345e+05'],
    [999995, '1e+06'], // tie rounds 99999|5 up through the nines
    [12.5, '12.5'],
    [0.0001234, '0.0001234'],
    [0.00001234, '1.234e-05'],
    [-65536, '-65536'],
  ];
  for (const [x, want] of cases) assert.equal(formatGoG(x, 5), want, `%.5g of ${x}`);
});

test('%.f rounds half to even on the exact binary value', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [0.4, '0'],
    [0.5, '0'],
    [1.5, '2'],
    [2.5, '2'],
    [3.5, '4'],
    [12.5, '12'],
    [37.5, '38'],
    [0.49999999999999994, '0'],
    [(100 * 5) / 65536, '0'],
    [(100 * 65531) / 65536, '100'],
    [(100 * 3) / 64, '5'], // 4.6875
    [(100 * 2) / 64, '3'], // 3.125
    [(100 * 61) / 64, '95'],
    [(100 * 62) / 64, '97'], // 96.875
    [(100 * 9) / 256, '4'], // 3.515625
    [(100 * 247) / 256, '96'],
    [(100 * 25) / 16384, '0'],
    [(100 * 16359) / 16384, '100'],
    [(100 * 1) / 8, '12'], // 12.5 exactly → even
    [(100 * 3) / 8, '38'], // 37.5 exactly → even
    [1e21, '1000000000000000000000'],
    [-2.5, '-2'],
    [NaN, 'NaN'],
    [Infinity, '+Inf'],
  ];
  for (const [x, want] of cases) assert.equal(formatGoF(x, 0), want, `%.f of ${x}`);
  assert.equal(formatGoF(2.675, 2), '2.67'); // 2.675 is 2.67499999... in binary
  assert.equal(formatGoF(0.125, 2), '0.12');
  assert.equal(formatGoF(0.375, 2), '0.38');
  assert.equal(formatGoF(1, 3), '1.000');
});

test('%v of a float64', () => {
  const cases: [number, string][] = [
    [0, '0'],
    [100, '100'],
    [1000.5, '1000.5'],
    [123456, '123456'],
    [1000000, '1e+06'],
    [1234567, '1.234567e+06'],
    [0.0001, '0.0001'],
    [0.00001, '1e-05'],
    [0.1, '0.1'],
    [1.5e300, '1.5e+300'],
    [-3, '-3'],
  ];
  for (const [x, want] of cases) assert.equal(formatGoFloatV(x), want, `%v of ${x}`);
});
