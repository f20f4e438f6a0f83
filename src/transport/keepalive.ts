import type { DeliveryConfig, SpanRecord, TelemetryRecord } from '../protocol';
import { createOtlpExporter } from '../export/http';
import { encodeOtlp } from '../export/otlp';
import { reportInternal } from '../lib/reportInternal';
import { utf8Bytes } from '../lib/utf8Bytes';

/**
 * Browsers refuse `keepalive` requests once the bodies in flight exceed 64 KiB (Fetch standard,
 * "keepalive" inflight limit). At page hide the tail and one flush of the page outbox may both be
 * in flight, so each stays under 30 KB.
 */
export const KEEPALIVE_MAX_BYTES = 30_000;


/** fetch with `keepalive` for bodies under {@link KEEPALIVE_MAX_BYTES}, so they outlive the page. */
export const keepaliveFetch: typeof fetch = (input, init) => {
  const body = init?.body;
  // The keepalive limit counts bytes, not characters; a body this long in characters is over it anyway.
  const small = typeof body === 'string' && body.length < KEEPALIVE_MAX_BYTES && utf8Bytes(body) < KEEPALIVE_MAX_BYTES;
  return fetch(input, small ? { ...init, keepalive: true } : init);
};

/** An OTLP exporter whose requests outlive the page when small enough: the page's memory path sends with it. */
export const keepaliveExporter = (config: DeliveryConfig) => createOtlpExporter({ url: config.endpoint as string, headers: config.headers, fetch: keepaliveFetch });

/**
 * Sends the newest spans of `records` that fit in one keepalive request, without waiting: the
 * last chance for a page that is closing with records the outbox may not get to store.
 * Re-sends are harmless (receivers key spans by trace and span id).
 */
export const sendTail = (records: readonly TelemetryRecord[], config: DeliveryConfig): void => {
  if (!config.endpoint) return;
  let spans = records.filter((r): r is SpanRecord => r.rec === 'span');
  // Halve until the encoded body fits; encoding is cheap next to losing the spans.
  while (spans.length > 1 && utf8Bytes(encodeOtlp(spans)) >= KEEPALIVE_MAX_BYTES) spans = spans.slice(spans.length >> 1);
  if (spans.length === 0) return;
  keepaliveExporter(config).export(spans).catch(reportInternal);
};
