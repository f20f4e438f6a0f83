import type { SpanRecord, TelemetryRecord } from '../protocol';
import { DROPPED_RECORDS } from '../core/semconv';

/** The count of dropped records `r` carries as `edgetrace.dropped_records`, 0 if none. */
export const droppedOn = (r: TelemetryRecord): number => {
  const n = r.rec === 'span' ? r.attrs[DROPPED_RECORDS] : undefined;
  return typeof n === 'number' ? n : 0;
};

/**
 * Reports `count` dropped records on the first span of `records`: that span is replaced by a
 * copy whose `edgetrace.dropped_records` adds `count` to what it already carries (the stored or
 * buffered record stays as it was). Returns the span's index, or -1 when there is none.
 */
export const stampDropped = (records: TelemetryRecord[], count: number): number => {
  const at = records.findIndex((r) => r.rec === 'span');
  if (at >= 0) {
    const span = records[at] as SpanRecord;
    // droppedOn(span), written out: the call costs bytes the service worker's 6 kB budget lacks.
    const prior = span.attrs[DROPPED_RECORDS];
    records[at] = { ...span, attrs: { ...span.attrs, [DROPPED_RECORDS]: count + (typeof prior === 'number' ? prior : 0) } };
  }
  return at;
};
