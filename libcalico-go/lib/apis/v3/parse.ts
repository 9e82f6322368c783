// Reads resource files: YAML (one or more documents separated by `---`) or JSON, and flattens
// List kinds (`kind: List`, or `<Kind>List` such as `IPPoolList`) to their items. Items of a
// `<Kind>List` that lack kind/apiVersion take them from the list. Empty documents are skipped;
// a top-level sequence is read as a list of resources.
//
// YAML is read with the YAML 1.2 core schema, so `ipipMode: Off` is the string "Off" (not false).
// Syntax errors are thrown as ParseError `<source>:<line>:<column>: <message>`.

import { LineCounter, parseAllDocuments } from 'yaml';

import { ParseError } from './errors.js';

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isListKind(kind: unknown): kind is string {
  return typeof kind === 'string' && kind.endsWith('List') && kind.length > 0;
}

function flatten(v: unknown, source: string, line: number, out: unknown[]): void {
  if (v === null || v === undefined) return;
  if (Array.isArray(v)) {
    for (const item of v) flatten(item, source, line, out);
    return;
  }
  if (!isObj(v)) {
    throw new ParseError(source, line, 0, `expected a resource (a mapping with apiVersion, kind, metadata, spec), found ${JSON.stringify(v)}`);
  }
  if (isListKind(v.kind) && (Array.isArray(v.items) || v.items === undefined || v.items === null)) {
    const itemKind = v.kind === 'List' ? undefined : v.kind.slice(0, -'List'.length);
    for (const item of (v.items as unknown[] | undefined) ?? []) {
      if (isObj(item)) {
        const filled: Record<string, unknown> = { ...item };
        if (filled.kind === undefined && itemKind) filled.kind = itemKind;
        if (filled.apiVersion === undefined && itemKind && v.apiVersion !== undefined) filled.apiVersion = v.apiVersion;
        flatten(filled, source, line, out);
      } else flatten(item, source, line, out);
    }
    return;
  }
  out.push(v);
}

/**
 * Parses YAML or JSON text into resource objects (not yet validated). `source` names the input in
 * error messages (a file name, or "<stdin>").
 */
export function parseDocuments(text: string, source = '<input>'): unknown[] {
  const lc = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const out: unknown[] = [];
  for (const doc of list) {
    const err = doc.errors[0];
    if (err) {
      const pos = lc.linePos(err.pos[0]);
      const msg = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw new ParseError(source, pos.line, pos.col, msg);
    }
    const start = doc.contents?.range?.[0] ?? doc.range?.[0] ?? 0;
    const line = lc.linePos(start).line;
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      throw new ParseError(source, line, 0, e instanceof Error ? e.message : String(e));
    }
    flatten(value, source, line, out);
  }
  return out;
}
