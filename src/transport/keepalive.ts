import type { DeliveryConfig, SpanRecord, TelemetryRecord } from '../protocol';
import { createOtlpExporter } from '../export/http';
import { encodeOtlp } from '../export/otlp';
import { reportInternal } from '../lib/reportInternal';
import { utf8Bytes } from '../lib/utf8Bytes';
import { untracedFetch } from '../lib/untracedFetch';

/**
 * Browsers refuse `keepalive` requests once the bodies in flight exceed 64 KiB (Fetch standard,
 * "keepalive" inflight limit). At page hide the tail's spans, its scores (under
 * {@link SCORES_MAX_BYTES}) and one flush of the page outbox may all be in flight, so the two
 * larger stay under 30 KB.
 */
export const KEEPALIVE_MAX_BYTES = 30_000;
/** The tail's scores request, beside the spans' (see {@link sendTail}). */
const SCORES_MAX_BYTES = 4_000;

/** The untraced fetch, with `keepalive` for bodies under {@link KEEPALIVE_MAX_BYTES}, so they outlive the page. */
export const keepaliveFetch: typeof fetch = (input, init) => {
  const body = init?.body;
  // The keepalive limit counts bytes, not characters; a body this long in characters is over it anyway.
  const small = typeof body === 'string' && body.length < KEEPALIVE_MAX_BYTES && utf8Bytes(body) < KEEPALIVE_MAX_BYTES;
  return untracedFetch()!(input, small ? { ...init, keepalive: true } : init);
};

/** An OTLP exporter whose requests outlive the page when small enough: the page's memory path sends with it. */
export const keepaliveExporter = (config: DeliveryConfig) => createOtlpExporter({ url: config.endpoint as string, headers: config.headers, fetch: keepaliveFetch });

/**
 * The newest of `records` whose body (`encode`) stays under `max` bytes: halved until it fits,
 * encoding is cheap next to losing them. One record too large alone is not sent: a score of up to
 * 30 KB would go with `keepalive` and take the budget the other requests need (the outbox, where
 * there is one, still holds it).
 */
const newestThatFit = <R>(records: R[], encode: (rs: R[]) => string, max: number): R[] => {
  while (records.length && utf8Bytes(encode(records)) >= max) records = records.slice(Math.max(1, records.length >> 1));
  return records;
};

/**
 * Sends the newest spans of `records` that fit in one keepalive request, and its scores in a
 * second, both at once and without waiting: the last chance for a page that is closing with
 * records the outbox may not get to store. A rating given just before the tab closes is often
 * the last thing a chat UI records. Re-sends are harmless (receivers key spans by trace and span
 * id, and scores by id).
 */
export const sendTail = (records: readonly TelemetryRecord[], config: DeliveryConfig): void => {
  if (!config.endpoint) return;
  const exporter = keepaliveExporter(config);
  const spans = newestThatFit(records.filter((r): r is SpanRecord => r.rec === 'span'), encodeOtlp, KEEPALIVE_MAX_BYTES);
  // Scores are small: a few KB keeps the two bodies and a page outbox flush under the 64 KiB.
  const scores = newestThatFit(records.filter((r) => r.rec === 'score'), JSON.stringify, SCORES_MAX_BYTES);
  for (const list of [spans, scores]) if (list.length) exporter.export(list).catch(reportInternal);
};
