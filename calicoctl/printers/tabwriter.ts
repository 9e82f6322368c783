// Go `text/tabwriter` (flags 0) as calicoctl's `get` uses it:
// tabwriter.NewWriter(out, minwidth 5, tabwidth 1, padding 3, padchar ' ', flags 0).
//
// Semantics reproduced:
// * Input is a text stream; '\t' and '\v' end a cell, '\n' ends a line, '\f' ends a line and
//   flushes (ends every column block). Cell text may therefore come from values that themselves
//   contain tabs or newlines, exactly as calicoctl's template output would.
// * The text after the last tab of a line is that line's trailing cell: it is not part of any
//   column and is written without padding.
// * A column block is a run of consecutive lines that all have a (tab-terminated) cell in that
//   column; a line with fewer cells ends the block. Each block gets its own width =
//   max(minwidth, max(cell width) + padding), computed independently, recursively per column.
// * Cell width is the number of Unicode code points (Go counts runes, not display width).
// * Padding uses padchar; an empty cell inside a column is written as all padding.

export interface TabwriterOptions {
  minwidth: number;
  padding: number;
  padchar: string;
}

/** calicoctl's parameters (tabwidth 1 only matters for '\t' padding, so it is not needed). */
export const CALICOCTL_TABWRITER: Readonly<TabwriterOptions> = Object.freeze({
  minwidth: 5,
  padding: 3,
  padchar: ' ',
});

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Splits a stream into segments (flushed groups) of lines of cells. */
function parse(text: string): string[][][] {
  const segments: string[][][] = [];
  let lines: string[][] = [[]];
  let cell = '';
  for (const ch of text) {
    if (ch === '\t' || ch === '\v') {
      lines[lines.length - 1]!.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\f') {
      lines[lines.length - 1]!.push(cell);
      cell = '';
      lines.push([]);
      if (ch === '\f') {
        segments.push(lines);
        lines = [[]];
      }
    } else {
      cell += ch;
    }
  }
  if (cell.length > 0) lines[lines.length - 1]!.push(cell);
  segments.push(lines);
  return segments;
}

class Formatter {
  private out = '';
  private readonly widths: number[] = [];

  constructor(
    private readonly lines: string[][],
    private readonly opts: TabwriterOptions,
  ) {}

  run(): string {
    this.format(0, this.lines.length);
    return this.out;
  }

  private format(line0: number, line1: number): void {
    const column = this.widths.length;
    for (let t = line0; t < line1; t++) {
      if (column >= this.lines[t]!.length - 1) continue;
      // This line starts a block in `column`: first print the lines before it.
      this.writeLines(line0, t);
      line0 = t;
      let width = this.opts.minwidth;
      for (; t < line1; t++) {
        const line = this.lines[t]!;
        if (column >= line.length - 1) break;
        const w = runeCount(line[column]!) + this.opts.padding;
        if (w > width) width = w;
      }
      this.widths.push(width);
      this.format(line0, t);
      this.widths.pop();
      line0 = t;
    }
    this.writeLines(line0, line1);
  }

  private writeLines(line0: number, line1: number): void {
    for (let i = line0; i < line1; i++) {
      const line = this.lines[i]!;
      line.forEach((text, j) => {
        this.out += text;
        if (j < this.widths.length) {
          this.out += this.opts.padchar.repeat(this.widths[j]! - runeCount(text));
        }
      });
      // The last buffered line is the unterminated tail (empty after a '\n' or '\f'):
      // it gets no newline.
      if (i + 1 < this.lines.length) this.out += '\n';
    }
  }
}

/** Formats a tab-separated stream the way Go's text/tabwriter (flags 0) would. */
export function tabwriterFormat(text: string, opts: TabwriterOptions = CALICOCTL_TABWRITER): string {
  return parse(text)
    .map((lines) => new Formatter(lines, opts).run())
    .join('');
}

/** Builds calicoctl's table stream: every cell, including the last, is tab-terminated. */
export function tabTableStream(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]) => cells.map((c) => c + '\t').join('') + '\n';
  return line(headers) + rows.map(line).join('');
}

/**
 * A `calicoctl get` table: headings line, one line per row, each column padded to
 * max(cell)+3 (at least 5) with trailing spaces kept, then the blank line calicoctl prints
 * after every table.
 */
export function renderTabTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  return tabwriterFormat(tabTableStream(headers, rows)) + '\n';
}
