import type { TelemetryRecord } from '../protocol';

/** The id a receiver knows a record by: a span's span id, a score's id. */
export const recordId = (r: TelemetryRecord): string => (r.rec === 'span' ? r.spanId : r.id);

/**
 * Most ids a sender remembers of records a receiver already took from a batch that will be sent
 * again (see the Langfuse exporter and the collector's forwarding). A retry comes soon or never.
 */
export const MAX_TAKEN = 10_000;
