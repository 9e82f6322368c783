// A watch's resync after an expired resume point, as Calico's KDD watcher cache does it
// (libcalico-go watchercache: on 410 Gone, re-list and send the differences): the API server ends
// every watch stream after --min-request-timeout (randomised, 30–60 min by default) and the watch
// is re-opened from the last revision seen; when that revision has meanwhile been compacted (etcd
// compacts every 5 min) or has left the watch cache's window, the server answers 410 Gone. The
// watch then lists the kind again and reports, against the values it had delivered, what changed:
// a put for every key that is new or whose value changed, a delete for every key that is gone. The
// consumer's stream goes on: intermediate values inside the gap are collapsed, none is invented.
import type { KVPair, WatchEvent } from '../api.js';

/**
 * The events that turn `values` (key → value as last delivered) into `items` (a fresh list at
 * `listRevision`), in revision order: puts at each object's revision, then deletes at the list's.
 * Updates `values` to the list.
 */
export function resyncEvents(values: Map<string, string>, items: KVPair[], listRevision: string): WatchEvent[] {
  const puts: WatchEvent[] = [];
  const seen = new Set<string>();
  for (const kv of items) {
    seen.add(kv.key);
    const prev = values.get(kv.key);
    if (prev === kv.value) continue;
    const e: WatchEvent = { type: 'put', key: kv.key, value: kv.value, revision: kv.revision };
    if (prev !== undefined) e.prevValue = prev;
    puts.push(e);
  }
  puts.sort((a, b) => {
    const d = BigInt(a.revision) - BigInt(b.revision);
    return d < 0n ? -1 : d > 0n ? 1 : 0;
  });
  const deletes: WatchEvent[] = [];
  for (const [key, prev] of values) {
    if (!seen.has(key)) deletes.push({ type: 'delete', key, prevValue: prev, revision: listRevision });
  }
  deletes.sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
  for (const e of puts) values.set(e.key, e.value!);
  for (const e of deletes) values.delete(e.key);
  return [...puts, ...deletes];
}

/** Whether a watch ERROR event's Status (or a status code) says the resume point expired. */
export function isExpired(st: { code?: number; reason?: string }): boolean {
  return st.code === 410 || st.reason === 'Expired' || st.reason === 'Gone';
}
