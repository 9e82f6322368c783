// Splits the gateway's watch stream into messages: one JSON object per line, each
// `{"result": WatchResponse}` or `{"error": ...}`. Chunks may end anywhere, even inside a UTF-8
// character, so bytes are buffered until a newline arrives.
export class WatchStreamParser {
  private pending: Buffer[] = [];

  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.pending.push(chunk.subarray(start, nl));
      const line = Buffer.concat(this.pending).toString('utf8').trim();
      this.pending = [];
      if (line) out.push(JSON.parse(line));
      start = nl + 1;
    }
    if (start < chunk.length) this.pending.push(chunk.subarray(start));
    return out;
  }
}
