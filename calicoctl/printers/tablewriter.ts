// The bordered tables calicoctl (≤ v3.32) prints for `node status` and the `ipam show` family:
// olekukonko/tablewriter v0.0.5 with its default settings (NewWriter + SetHeader + Append +
// Render, nothing else configured). Behaviour reproduced:
//
// * Borders `+` `-` `|`, one space of padding either side of every cell, a rule above the
//   header, under the header and under the last row; no rules between rows.
// * Column width = widest (display width) line of any header or body cell in that column,
//   after wrapping.
// * Wrapping: a cell whose widest line exceeds 30 columns is re-flowed (its lines joined by
//   spaces, split on single spaces) to 30 columns with the minimum-raggedness line breaker
//   (sum of squared shortfalls, +100000 for an over-long line, last line free). A single word
//   longer than 30 widens the limit to that word. Shorter cells keep their width; a multi-line
//   cell is re-flowed to its own widest line.
// * Header cells are upper-cased at print time (`_` → space, `.` → space unless between digits
//   or spaces, surrounding blanks trimmed) and centred; the left gap is floor(gap/2). Widths
//   come from the header text before that formatting.
// * Body cells whose trimmed text matches `^-?(?:\d{1,3}(?:,\d{3})*|\d+)(?:\.\d+)?$` are
//   right-aligned, all others left-aligned.
// * A row's shorter cells are filled with continuation lines holding two spaces ("  "), padded
//   like any other text; a row with fewer cells than the header prints fewer cells.

export const MAX_CELL_WIDTH = 30;
const TOO_LONG_PENALTY = 1e5;
const MAX_INT32 = 2147483647;

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences start with ESC
const ANSI = /\x1b\[(?:[0-9]{1,3}(?:;[0-9]{1,3})*)?[m|K]/g;
const DECIMAL = /^-?(?:\d{1,3}(?:,\d{3})*|\d+)(?:\.\d+)?$/;
const COMBINING = /^[\p{Mn}\p{Me}]$/u;

// East Asian Wide / Fullwidth ranges (and the emoji blocks terminals draw double-width).
const WIDE: readonly [number, number][] = [
  [0x1100, 0x115f],
  [0x231a, 0x231b],
  [0x2329, 0x232a],
  [0x23e9, 0x23ec],
  [0x2e80, 0x303e],
  [0x3041, 0x33ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xa000, 0xa4cf],
  [0xa960, 0xa97f],
  [0xac00, 0xd7a3],
  [0xf900, 0xfaff],
  [0xfe10, 0xfe19],
  [0xfe30, 0xfe6f],
  [0xff00, 0xff60],
  [0xffe0, 0xffe6],
  [0x1f300, 0x1f64f],
  [0x1f900, 0x1f9ff],
  [0x20000, 0x2fffd],
  [0x30000, 0x3fffd],
];

/** Terminal columns taken by one code point (0 for controls and combining marks). */
export function runeWidth(cp: number): number {
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return 0;
  if (cp === 0xad || cp === 0x200b || cp === 0xfeff || (cp >= 0x200c && cp <= 0x200f)) return 0;
  if (COMBINING.test(String.fromCodePoint(cp))) return 0;
  for (const [lo, hi] of WIDE) {
    if (cp < lo) break;
    if (cp <= hi) return 2;
  }
  return 1;
}

function stringWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += runeWidth(ch.codePointAt(0)!);
  return w;
}

/** Display width as tablewriter measures it: ANSI colour sequences ignored. */
export function displayWidth(s: string): number {
  return stringWidth(s.replace(ANSI, ''));
}

/**
 * Minimum-raggedness line breaking of `words` (each `spc` apart) into lines of at most `lim`
 * columns. Returns the lines as word lists.
 */
export function wrapWords(words: readonly string[], spc: number, lim: number, pen: number): string[][] {
  const n = words.length;
  const widths = words.map(stringWidth);
  // span(i, j) = width of words i..j inclusive on one line
  const span = (i: number, j: number): number => {
    let w = widths[i]!;
    for (let k = i + 1; k <= j; k++) w += spc + widths[k]!;
    return w;
  };
  const breakAt: number[] = new Array(n).fill(n);
  const cost: number[] = new Array(n).fill(MAX_INT32);
  for (let i = n - 1; i >= 0; i--) {
    if (span(i, n - 1) <= lim) {
      cost[i] = 0;
      breakAt[i] = n;
      continue;
    }
    for (let j = i + 1; j < n; j++) {
      const len = span(i, j - 1);
      const d = lim - len;
      let c = d * d + cost[j]!;
      if (len > lim) c += pen;
      if (c < cost[i]!) {
        cost[i] = c;
        breakAt[i] = j;
      }
    }
  }
  const lines: string[][] = [];
  for (let i = 0; i < n; ) {
    const next = breakAt[i]! > i ? breakAt[i]! : n;
    lines.push(words.slice(i, next));
    i = next;
  }
  return lines;
}

/** Wraps one paragraph to `lim` columns; the limit grows to the widest single word. */
export function wrapString(s: string, lim: number): { lines: string[]; limit: number } {
  const words = s.replace(/\n/g, ' ').split(' ');
  for (const w of words) {
    const width = stringWidth(w);
    if (width > lim) lim = width;
  }
  const lines = wrapWords(words, 1, lim, TOO_LONG_PENALTY).map((ws) => ws.join(' '));
  return { lines, limit: lim };
}

function isNumOrSpace(ch: string | undefined): boolean {
  return ch !== undefined && ((ch >= '0' && ch <= '9') || ch === ' ');
}

function upper(s: string): string {
  let out = '';
  for (const ch of s) {
    const u = ch.toUpperCase();
    out += [...u].length === 1 ? u : ch; // Go maps rune by rune (no 'ß' → 'SS')
  }
  return out;
}

/** tablewriter's header formatting: `_` → space, `.` → space unless inside a number, trim, upper-case. */
export function formatHeader(name: string): string {
  const rs = [...name];
  for (let i = 0; i < rs.length; i++) {
    if (rs[i] === '_') {
      rs[i] = ' ';
    } else if (rs[i] === '.') {
      if ((i !== 0 && !isNumOrSpace(rs[i - 1])) || (i !== rs.length - 1 && !isNumOrSpace(rs[i + 1]))) {
        rs[i] = ' ';
      }
    }
  }
  let out = rs.join('').trim();
  if (out.length === 0 && name.length > 0) out = ' ';
  return upper(out);
}

function padCenter(s: string, width: number): string {
  const gap = width - displayWidth(s);
  if (gap <= 0) return s;
  const left = Math.floor(gap / 2);
  return ' '.repeat(left) + s + ' '.repeat(gap - left);
}

function padRight(s: string, width: number): string {
  const gap = width - displayWidth(s);
  return gap > 0 ? s + ' '.repeat(gap) : s;
}

function padLeft(s: string, width: number): string {
  const gap = width - displayWidth(s);
  return gap > 0 ? ' '.repeat(gap) + s : s;
}

class BoxTable {
  private readonly colWidth = new Map<number, number>();
  private readonly rowHeight = new Map<number, number>();
  private readonly header: string[][] = [];
  private readonly body: string[][][] = [];

  constructor(headers: readonly string[], rows: readonly (readonly string[])[]) {
    headers.forEach((h, i) => {
      this.header.push(this.cellLines(h, i, -1));
    });
    rows.forEach((row, r) => {
      this.body.push(row.map((v, i) => this.cellLines(v, i, r)));
    });
  }

  /** Splits (and wraps) one cell, widening its column and heightening its row. */
  private cellLines(text: string, col: number, rowKey: number): string[] {
    let lines = text.split('\n');
    let width = 0;
    for (const l of lines) width = Math.max(width, displayWidth(l));
    if (width > MAX_CELL_WIDTH) width = MAX_CELL_WIDTH;
    let newWidth = width;
    const wrapped = wrapString(lines.join(' '), width).lines;
    for (const l of wrapped) newWidth = Math.max(newWidth, displayWidth(l));
    lines = wrapped;
    width = newWidth;

    const cw = this.colWidth.get(col);
    if (cw === undefined || cw < width || cw === 0) this.colWidth.set(col, width);
    const rh = this.rowHeight.get(rowKey);
    if (rh === undefined || rh < lines.length || rh === 0) this.rowHeight.set(rowKey, lines.length);
    return lines;
  }

  private rule(): string {
    let out = '+';
    for (let i = 0; i < this.colWidth.size; i++) out += '-'.repeat((this.colWidth.get(i) ?? 0) + 2) + '+';
    return out + '\n';
  }

  private headingLines(): string {
    if (this.header.length === 0) return '';
    let out = '';
    const height = this.rowHeight.get(-1) ?? 0;
    for (let x = 0; x < height; x++) {
      out += '|';
      for (let y = 0; y < this.colWidth.size; y++) {
        const h = formatHeader(this.header[y]?.[x] ?? '');
        out += ' ' + padCenter(h, this.colWidth.get(y) ?? 0) + ' |';
      }
      out += '\n';
    }
    return out + this.rule();
  }

  private rowLines(cells: string[][], r: number): string {
    const height = this.rowHeight.get(r) ?? 0;
    const cols = cells.map((lines) => {
      const filled = lines.slice();
      while (filled.length < height) filled.push('  ');
      return filled;
    });
    let out = '';
    for (let x = 0; x < height; x++) {
      cols.forEach((lines, y) => {
        const s = lines[x] ?? '';
        const w = this.colWidth.get(y) ?? 0;
        out += '| ' + (DECIMAL.test(s.trim()) ? padLeft(s, w) : padRight(s, w)) + ' ';
      });
      out += '|\n';
    }
    return out;
  }

  render(): string {
    let out = this.rule();
    out += this.headingLines();
    this.body.forEach((cells, r) => {
      out += this.rowLines(cells, r);
    });
    return out + this.rule();
  }
}

/** Renders a tablewriter-v0.0.5-style bordered table; the text ends with a newline. */
export function renderBoxTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  return new BoxTable(headers, rows).render();
}
