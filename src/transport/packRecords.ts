import type { PackedRecords, ResourceRecord, SpanRecord, TelemetryRecord } from '../protocol';

// The fields every span has, in this order; both sides read this one list, so page and worker
// agree. Bump `packed` in PackedRecords if it ever changes.
const COMMON = ['traceId', 'spanId', 'parentId', 'flags', 'name', 'kind', 'startMs', 'endMs', 'attrs'] as const;
const N = COMMON.length;
const PACKED = 2;

/**
 * The fields most spans leave at their defaults (no events, links, tracestate or drops, status
 * unset, the batch's resource), set only on spans that differ: a span that has one of them gets
 * an entry in `rare`, so the common span clones nine values and one small object.
 */
const rareFields = (r: SpanRecord, resource: ResourceRecord): Partial<SpanRecord> | undefined => {
  // Allocated only for a span that has one.
  let out: Partial<SpanRecord> | undefined;
  if (r.remoteParent !== undefined) (out ??= {}).remoteParent = r.remoteParent;
  if (r.traceState !== undefined) (out ??= {}).traceState = r.traceState;
  if (r.events.length) (out ??= {}).events = r.events;
  if (r.links.length) (out ??= {}).links = r.links;
  if (r.status.code !== 'unset' || r.status.message !== undefined) (out ??= {}).status = r.status;
  if (r.dropped !== undefined) (out ??= {}).dropped = r.dropped;
  if (r.resource !== resource) (out ??= {}).resource = r.resource;
  return out;
};

/** Flattens records for `postMessage` (see {@link PackedRecords}); the records are not changed. */
export const packRecords = (records: readonly TelemetryRecord[]): PackedRecords => {
  const spans: unknown[] = [];
  const rare: unknown[] = [];
  const others: TelemetryRecord[] = [];
  let resource: ResourceRecord | undefined;
  let n = 0;
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.rec !== 'span') {
      others.push(r);
      continue;
    }
    resource ??= r.resource;
    spans.push(r.traceId, r.spanId, r.parentId, r.flags, r.name, r.kind, r.startMs, r.endMs, r.attrs);
    const extra = rareFields(r, resource);
    if (extra) rare.push(n, extra);
    n++;
  }
  return { packed: PACKED, spans, rare, resource, others };
};

/** Rebuilds the records of {@link packRecords}, spans first. Throws on a format it does not know. */
export const unpackRecords = (p: PackedRecords): TelemetryRecord[] => {
  if (p.packed !== PACKED) throw new TypeError('unknown packed format');
  const out: TelemetryRecord[] = [];
  for (let i = 0; i < p.spans.length; i += N) {
    const r: Record<string, unknown> = { v: 1, rec: 'span' };
    for (let f = 0; f < N; f++) {
      const value = p.spans[i + f];
      if (value !== undefined) r[COMMON[f]!] = value;
    }
    r.events = [];
    r.links = [];
    r.status = { code: 'unset' };
    r.resource = p.resource;
    out.push(r as unknown as SpanRecord);
  }
  for (let i = 0; i < p.rare.length; i += 2) Object.assign(out[p.rare[i] as number]!, p.rare[i + 1]);
  return out.concat(p.others);
};
