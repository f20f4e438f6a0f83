import type { ExportResult, SpanRecord, TelemetryRecord } from '../src/protocol';
import { encodeOtlp, parseOtlpResponse } from '../src/export/otlp';
import { parseRetryAfter } from '../src/export/result';
import { settleScores } from '../src/export/http';
import { scoresUrlFor } from '../src/lib/scoresUrl';

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
 * success (with OTLP `partialSuccess.rejectedSpans` counted) unless it is an HTML page; that, 408,
 * 429, 5xx and redirects are retryable (with `Retry-After`), other statuses are permanent, and no reply at all (offline,
 * reset, timeout) is retryable. A lean cousin of `createOtlpExporter`, written for the worker's
 * size budget (its reason phrases and error-body parsing cost more than the rest). Never rejects.
 */
export const createSender = (opts: SenderOptions): ((records: readonly TelemetryRecord[]) => Promise<ExportResult>) => {
  const { url, timeoutMs } = opts;
  const scoresUrl = scoresUrlFor(url);
  const post = async (to: string, encode: () => string): Promise<ExportResult> => {
    const ctrl = new AbortController();
    const timer = setTimeout(() => ctrl.abort(), timeoutMs);
    // 0 while encoding (a record that cannot be encoded is refused for good), -1 while sending.
    let status = 0;
    try {
      const body = encode();
      status = -1;
      const res = await (opts.fetch ?? fetch)(to, {
        method: 'POST',
        headers: { ...opts.headers, 'content-type': 'application/json' },
        body,
        signal: ctrl.signal,
        // A redirect is not an answer: followed, a 302 to a sign-in page turns the POST into a GET
        // whose 200 would count as delivery. (In a browser the reply is opaque, status 0.)
        redirect: 'manual',
      });
      const text = await res.text().catch(() => '');
      status = res.status;
      // A 2xx with an HTML page (a site's catch-all route answering any path) is no receiver's
      // answer: it fails below as retryable, its start in the reason. (`isHtml`'s test, written
      // out: the call and its guard cost the worker's budget 8 bytes.)
      if (status > 199 && status < 300 && !/^\s*</.test(text)) {
        const { rejected, message } = parseOtlpResponse(text);
        return rejected ? { ok: true, rejected, reason: `partial success: ${rejected} rejected${message ? ': ' + message : ''}` } : { ok: true };
      }
      return {
        ok: false,
        // Redirects (0 and 3xx) too: the records wait until the endpoint answers itself.
        retryable: status === 408 || status === 429 || status > 499 || status < 400,
        status,
        reason: `HTTP ${status || 'redirect'}${text && ': ' + text.slice(0, 200)}`,
        // Read on every failure; the flusher only looks at it for retryable ones.
        retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
      };
    } catch (error) {
      return { ok: false, retryable: status < 0, reason: `${status ? 'network error' : 'encode failed'}: ${error}` };
    } finally {
      clearTimeout(timer);
    }
  };
  return async (records) => {
    const spans = records.filter((r): r is SpanRecord => r.rec === 'span');
    const scores = records.filter((r) => r.rec === 'score');
    const result: ExportResult = spans.length ? await post(url, () => encodeOtlp(spans)) : { ok: true };
    // Spans first: a failed span request fails the batch and the scores go with its retry.
    if (!result.ok || !scores.length || !scoresUrl) return result;
    const s = settleScores(await post(scoresUrl, () => JSON.stringify(scores)), scores.length);
    // Both answers count: the spans' partial success, and scores the receiver turned down.
    return s.ok ? { ok: true, rejected: result.rejected, reason: s.reason ?? result.reason } : s;
  };
};
