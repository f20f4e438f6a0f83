import type { ExportResult, SpanRecord, TelemetryRecord } from '../src/protocol';
import { encodeOtlp, parseOtlpResponse } from '../src/export/otlp';
import { parseRetryAfter } from '../src/export/result';
import { scoresUrlFor, settleScores } from '../src/export/http';

/** Where and how a sender posts. */
export interface SenderOptions {
  /** Absolute OTLP/HTTP trace endpoint. */
  url: string;
  headers?: Record<string, string>;
  timeoutMs: number;
  /** Default: the global fetch at call time. */
  fetch?: typeof fetch;
}

/**
 * Creates the function that POSTs a batch: spans as OTLP/HTTP JSON to `url`, score records as a
 * JSON array to the collector's scores route beside it (`scoresUrlFor`), or left out (counted as
 * delivered) where there is none. Replies are classified the way `toExportResult` does: 2xx is
 * success (with OTLP `partialSuccess.rejectedSpans` counted), 408, 429 and 5xx are retryable (with
 * `Retry-After`), other statuses are permanent, and no reply at all (offline, reset, timeout) is
 * retryable. A lean cousin of `createOtlpExporter`, written for the worker's size budget (its
 * reason phrases and error-body parsing cost more than the rest). Never rejects.
 */
export const createSender = (opts: SenderOptions) => {
  const scoresUrl = scoresUrlFor(opts.url);
  const post = async (url: string, encode: () => string): Promise<ExportResult> => {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), opts.timeoutMs);
    let status = 0;
    try {
      // Inside the try: a record that cannot be encoded is refused for good (status 0, permanent).
      const body = encode();
      status = -1;
      const res = await (opts.fetch ?? fetch)(url, {
        method: 'POST',
        headers: { ...opts.headers, 'content-type': 'application/json' },
        body,
        signal: ctrl.signal,
      });
      status = res.status;
      const text = await res.text().catch(() => '');
      if (status > 199 && status < 300) {
        const { rejected, message } = parseOtlpResponse(text);
        return rejected ? { ok: true, rejected, reason: `partial success: ${rejected} rejected${message ? `: ${message}` : ''}` } : { ok: true };
      }
      const retryable = status === 408 || status === 429 || status > 499;
      const out: ExportResult = { ok: false, retryable, status, reason: `HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}` };
      const after = retryable ? parseRetryAfter(res.headers.get('retry-after')) : undefined;
      if (after !== undefined) out.retryAfterMs = after;
      return out;
    } catch (error) {
      return { ok: false, retryable: status < 0, reason: `${status < 0 ? 'network error' : 'encode failed'}: ${String(error)}` };
    } finally {
      clearTimeout(timer);
    }
  };
  return async (records: readonly TelemetryRecord[]): Promise<ExportResult> => {
    const spans = records.filter((r): r is SpanRecord => r.rec === 'span');
    const scores = scoresUrl ? records.filter((r) => r.rec === 'score') : [];
    const a: ExportResult = spans.length ? await post(opts.url, () => encodeOtlp(spans)) : { ok: true };
    // Spans first: a failed span request fails the batch and the scores go with its retry.
    if (!a.ok || !scores.length) return a;
    return settleScores(await post(scoresUrl as string, () => JSON.stringify(scores)), scores.length);
  };
};
