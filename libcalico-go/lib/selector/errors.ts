// The one error type the selector tokenizer and parser throw.

/**
 * A selector that does not parse. `position` is the 0-based index (in UTF-16 code units, i.e. JS
 * string indices) of the offending character or token; `detail` says what went wrong there.
 *
 * `message` is one line ("<detail> at position N in selector "<text>"") followed by two lines that
 * echo the selector with a caret under the position. `shortMessage` is the first line alone, for
 * embedding in other errors.
 */
export class SelectorError extends Error {
  override readonly name = 'SelectorError';
  readonly selector: string;
  readonly position: number;
  readonly detail: string;
  readonly shortMessage: string;

  constructor(selector: string, position: number, detail: string) {
    const short = `${detail} at position ${position} in selector ${JSON.stringify(selector)}`;
    super(`${short}\n  ${selector}\n  ${' '.repeat(Math.max(0, position))}^`);
    this.selector = selector;
    this.position = position;
    this.detail = detail;
    this.shortMessage = short;
  }
}
