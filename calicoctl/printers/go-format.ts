// Go `fmt` number formatting that calicoctl's output depends on, reproduced exactly:
//   formatGoG(x, p)   = fmt.Sprintf("%.<p>g", x)   (e.g. `%.5g` in `ipam show`)
//   formatGoF(x, p)   = fmt.Sprintf("%.<p>f", x)   (`%.f` = precision 0, round half to even)
//   formatGoFloatV(x) = fmt.Sprint(x) for a float64 (shortest digits, %e from exponent 6 up)
//
// Go rounds on the exact binary value of the float64, and an exact tie goes to the even
// digit. JavaScript's toFixed/toPrecision round ties away from zero, so we never use them:
// the exact decimal expansion of the double is computed with BigInt and rounded here.

/** Decimal digits without leading/trailing zeros; value = 0.d1d2d3... × 10^dp. */
interface Decimal {
  d: string;
  dp: number;
}

/** The exact decimal expansion of a finite, non-negative double. */
function exactDecimal(x: number): Decimal {
  if (x === 0) return { d: '', dp: 0 };
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exp2: number;
  if (biased === 0) {
    exp2 = -1074; // subnormal
  } else {
    mant |= 1n << 52n;
    exp2 = biased - 1075;
  }
  let digits: string;
  let dp: number;
  if (exp2 >= 0) {
    digits = (mant << BigInt(exp2)).toString();
    dp = digits.length;
  } else {
    // mant / 2^k == mant * 5^k / 10^k
    const k = -exp2;
    digits = (mant * 5n ** BigInt(k)).toString();
    dp = digits.length - k;
  }
  return trimZeros({ d: digits, dp });
}

function trimZeros(dec: Decimal): Decimal {
  let end = dec.d.length;
  while (end > 0 && dec.d[end - 1] === '0') end--;
  let start = 0;
  while (start < end && dec.d[start] === '0') start++;
  if (start === end) return { d: '', dp: 0 };
  return { d: dec.d.slice(start, end), dp: dec.dp - start };
}

/** Rounds to `nd` significant digits, ties to even (Go's strconv decimal rounding). */
function roundDecimal(dec: Decimal, nd: number): Decimal {
  if (nd < 0 || nd >= dec.d.length) return dec;
  const next = dec.d.charCodeAt(nd) - 48;
  let up: boolean;
  if (next === 5 && nd + 1 === dec.d.length) {
    // exactly halfway: round to even
    up = nd > 0 && (dec.d.charCodeAt(nd - 1) - 48) % 2 === 1;
  } else {
    up = next >= 5;
  }
  if (!up) return trimZeros({ d: dec.d.slice(0, nd), dp: dec.dp });
  for (let i = nd - 1; i >= 0; i--) {
    const c = dec.d.charCodeAt(i) - 48;
    if (c < 9) {
      return trimZeros({ d: dec.d.slice(0, i) + String(c + 1), dp: dec.dp });
    }
  }
  // all nines (or nd == 0): becomes a single 1 one place higher
  return { d: '1', dp: dec.dp + 1 };
}

function fmtE(dec: Decimal, prec: number): string {
  let out = dec.d.length > 0 ? dec.d[0] : '0';
  if (prec > 0) {
    out += '.';
    const more = dec.d.slice(1, Math.min(dec.d.length, prec + 1));
    out += more + '0'.repeat(prec - more.length);
  }
  let exp = dec.d.length === 0 ? 0 : dec.dp - 1;
  const sign = exp < 0 ? '-' : '+';
  if (exp < 0) exp = -exp;
  return `${out}e${sign}${exp < 10 ? '0' + exp : String(exp)}`;
}

function fmtF(dec: Decimal, prec: number): string {
  let out: string;
  if (dec.dp > 0) {
    const m = Math.min(dec.d.length, dec.dp);
    out = dec.d.slice(0, m) + '0'.repeat(dec.dp - m);
  } else {
    out = '0';
  }
  if (prec > 0) {
    out += '.';
    for (let i = 0; i < prec; i++) {
      const j = dec.dp + i;
      out += j >= 0 && j < dec.d.length ? dec.d[j] : '0';
    }
  }
  return out;
}

function special(x: number): string | undefined {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return '+Inf';
  if (x === -Infinity) return '-Inf';
  return undefined;
}

function sign(x: number): string {
  return x < 0 || Object.is(x, -0) ? '-' : '';
}

/** %g formatting given rounded digits; `shortest` selects Go's %v exponent rule. */
function fmtG(dec: Decimal, prec: number, shortest: boolean): string {
  let eprec = prec;
  if (eprec > dec.d.length && dec.d.length >= dec.dp) eprec = dec.d.length;
  if (shortest) eprec = 6;
  const exp = dec.dp - 1;
  if (exp < -4 || exp >= eprec) {
    let p = prec;
    if (p > dec.d.length) p = dec.d.length;
    return fmtE(dec, p - 1);
  }
  let p = prec;
  if (p > dec.dp) p = dec.d.length;
  return fmtF(dec, Math.max(p - dec.dp, 0));
}

/** fmt.Sprintf("%.<prec>g", x) */
export function formatGoG(x: number, prec: number): string {
  const s = special(x);
  if (s !== undefined) return s;
  const p = prec === 0 ? 1 : prec;
  const dec = roundDecimal(exactDecimal(Math.abs(x)), p);
  return sign(x) + fmtG(dec, p, false);
}

/** fmt.Sprintf("%.<prec>f", x); "%.f" is prec 0. */
export function formatGoF(x: number, prec: number): string {
  const s = special(x);
  if (s !== undefined) return s;
  const exact = exactDecimal(Math.abs(x));
  const dec = roundDecimal(exact, exact.dp + prec);
  // A value that rounds away entirely (nd < 0) keeps its digits but prints as zeros.
  return sign(x) + fmtF(dec, prec);
}

/** fmt.Sprint(x) / `%v` for a float64: shortest round-trip digits; %e form when exp < -4 or exp >= 6 (1e6 → `1e+06`). */
export function formatGoFloatV(x: number): string {
  const s = special(x);
  if (s !== undefined) return s;
  const abs = Math.abs(x);
  let dec: Decimal;
  if (abs === 0) {
    dec = { d: '', dp: 0 };
  } else {
    // toExponential() without an argument gives the shortest digits that round-trip.
    const [mant, e] = abs.toExponential().split('e');
    dec = trimZeros({ d: mant!.replace('.', ''), dp: Number(e) + 1 });
  }
  return sign(x) + fmtG(dec, dec.d.length, true);
}
