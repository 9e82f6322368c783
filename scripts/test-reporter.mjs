// A node:test reporter used by scripts/run-tests.mjs next to the human one (spec): one JSON line
// per finished test or suite, so that the runner counts results and lists skips from events
// instead of from the spec reporter's text (whose summary does not even count a skipped suite).
export default async function* testEvents(source) {
  for await (const ev of source) {
    if (ev.type !== 'test:pass' && ev.type !== 'test:fail') continue;
    const d = ev.data;
    yield `${JSON.stringify({
      ok: ev.type === 'test:pass',
      name: d.name,
      file: d.file,
      nesting: d.nesting,
      suite: d.details?.type === 'suite',
      skip: d.skip,
      todo: d.todo,
      failureType: d.details?.error?.failureType,
    })}\n`;
  }
}
