// Keeps docs/benchmarks.md current: each benchmark owns one section between markers.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const DOC = new URL('../../docs/benchmarks.md', import.meta.url).pathname;
const HEADER = `# Benchmarks\n\nMeasured on the project's 2-core Debian 12 machine. Absolute numbers on this shared machine are noisy; compare the ratios within one table, which come from one run.\n`;

export function updateBenchmarkSection(id: string, body: string): void {
  const text = existsSync(DOC) ? readFileSync(DOC, 'utf8') : HEADER;
  const begin = `<!-- bench:${id}:begin -->`;
  const end = `<!-- bench:${id}:end -->`;
  const stamp = `_Last run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC._\n`;
  const section = `${begin}\n${body}\n${stamp}${end}`;
  const i = text.indexOf(begin);
  const j = text.indexOf(end);
  const next = i >= 0 && j > i ? text.slice(0, i) + section + text.slice(j + end.length) : `${text.trimEnd()}\n\n${section}\n`;
  writeFileSync(DOC, next);
}
