import type { PackedRecords, SpanRecord, TelemetryRecord } from '../protocol';

// The order of a packed span's fields. Both sides read this one list, so page and worker agree;
// bump `packed` in PackedRecords if it ever changes.
const FIELDS = ['traceId', 'spanId', 'parentId', 'remoteParent', 'traceState', 'flags', 'name', 'kind', 'startMs', 'endMs', 'attrs', 'events', 'links', 'status', 'dropped', 'resource'] as const;
const N = FIELDS.length;

/** Flattens records for `postMessage` (see {@link PackedRecords}); the records are not changed. */
export const packRecords = (records: readonly TelemetryRecord[]): PackedRecords => {
  const spans: unknown[] = [];
  const others: TelemetryRecord[] = [];
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.rec !== 'span') {
      others.push(r);
      continue;
    }
    // Empty event and link lists (the common case) travel as 0: no array to clone.
    spans.push(r.traceId, r.spanId, r.parentId, r.remoteParent, r.traceState, r.flags, r.name, r.kind, r.startMs, r.endMs, r.attrs, r.events.length ? r.events : 0, r.links.length ? r.links : 0, r.status, r.dropped, r.resource);
  }
  return { packed: 1, spans, others };
};

/** Rebuilds the records of {@link packRecords}, spans first. */
export const unpackRecords = (p: PackedRecords): TelemetryRecord[] => {
  const out: TelemetryRecord[] = [];
  for (let i = 0; i < p.spans.length; i += N) {
    const r: Record<string, unknown> = { v: 1, rec: 'span' };
    for (let f = 0; f < N; f++) {
      const value = p.spans[i + f];
      if (value !== undefined) r[FIELDS[f]!] = value;
    }
    r.events ||= [];
    r.links ||= [];
    out.push(r as unknown as SpanRecord);
  }
  return out.concat(p.others);
};
