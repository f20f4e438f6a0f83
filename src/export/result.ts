import type { ExportResult } from '../protocol';
import { parseOtlpResponse } from './otlp';

// Reason phrases for the statuses a trace receiver actually sends; others print as `HTTP 418`.
const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  410: 'Gone',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

// Error bodies can be whole HTML pages; a reason only needs their start.
const MAX_DETAIL = 200;

/**
 * Reads a `Retry-After` header (delay in seconds, or an HTTP date) as milliseconds from `nowMs`.
 * Dates in the past give 0; a missing or unreadable value gives undefined.
 */
export const parseRetryAfter = (value: string | null, nowMs: number = Date.now()): number | undefined => {
  const v = value?.trim() ?? '';
  if (/^\d+$/.test(v)) return +v * 1000;
  // Only try dates that contain letters: Date.parse also accepts bare numbers like "-5" as years.
  const at = /[a-z]/i.test(v) ? Date.parse(v) : NaN;
  return isNaN(at) ? undefined : Math.max(0, at - nowMs);
};

/** `HTTP 503 Service Unavailable`, or `HTTP 418` for statuses without a known phrase. */
export const httpReason = (status: number): string => {
  const text = STATUS_TEXT[status];
  return text ? `HTTP ${status} ${text}` : `HTTP ${status}`;
};

/** True for statuses worth retrying later: 408, 429 and every 5xx. */
export const isRetryableStatus = (status: number): boolean =>
  status === 408 || status === 429 || (status >= 500 && status <= 599);

// The message of a google.rpc.Status JSON body (what OTLP receivers send with errors), or the
// body's first characters when it is something else.
const errorDetail = (body: string | undefined): string => {
  if (!body) return '';
  let text = body;
  try {
    const parsed = JSON.parse(body) as { message?: unknown } | null;
    if (parsed && typeof parsed.message === 'string') text = parsed.message;
  } catch {
    // not JSON: keep the raw text
  }
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > MAX_DETAIL ? text.slice(0, MAX_DETAIL) + '…' : text;
};

/** Whether a reply's body is markup (an HTML page), which no trace receiver answers with. */
export const isHtml = (body: string | undefined): boolean => !!body && /^\s*</.test(body);

/**
 * Classifies an HTTP reply from an OTLP receiver. 2xx is success, with
 * `partialSuccess.rejectedSpans` read from the body as `rejected`, unless the body is an HTML page;
 * that, 408, 429 and 5xx are retryable, with `retryAfterMs` from `Retry-After` when sent; every
 * other status is a permanent failure.
 */
export const toExportResult = (status: number, headers: Headers, body?: string): ExportResult => {
  if (status >= 200 && status <= 299 && isHtml(body)) {
    // A site's catch-all route answers every path and method with its page: counted as sent, the
    // records would be lost in silence. Retryable: they wait until the endpoint is put right.
    return { ok: false, retryable: true, status, reason: `${httpReason(status)} with an HTML page, not a receiver's answer (a site's catch-all route?): check the endpoint` };
  }
  if (status >= 200 && status <= 299) {
    const partial = body ? parseOtlpResponse(body) : { rejected: 0 };
    if (partial.rejected > 0) {
      const reason = `partial success: ${partial.rejected} rejected` + (partial.message ? `: ${partial.message}` : '');
      return { ok: true, rejected: partial.rejected, reason };
    }
    return partial.message ? { ok: true, reason: partial.message } : { ok: true };
  }
  if (status < 400) {
    // Exporters send with `redirect: 'manual'`: followed, a 302 to a sign-in page would turn the
    // POST into a GET whose 200 counts as delivery. A browser shows the redirect as status 0.
    // Retryable: the records wait until the endpoint answers itself.
    return { ok: false, retryable: true, status, reason: `redirected (${status ? httpReason(status) : 'opaque redirect'}): point the exporter at the final URL` };
  }
  const detail = errorDetail(body);
  const reason = detail ? `${httpReason(status)}: ${detail}` : httpReason(status);
  if (!isRetryableStatus(status)) return { ok: false, retryable: false, status, reason };
  const retryAfterMs = parseRetryAfter(headers.get('retry-after'));
  return retryAfterMs === undefined
    ? { ok: false, retryable: true, status, reason }
    : { ok: false, retryable: true, status, retryAfterMs, reason };
};

/**
 * The retryable result for a request that got no HTTP reply (offline, DNS, reset, CORS). Node's
 * fetch says only "fetch failed"; its `cause` tells a refused connection, an unknown host and a
 * certificate apart (`connect ECONNREFUSED 127.0.0.1:3000`, `getaddrinfo ENOTFOUND lf.example`).
 */
export const networkError = (err: unknown): ExportResult => {
  const message = err instanceof Error ? err.message || err.name : String(err);
  const cause = (err as { cause?: { message?: unknown; code?: unknown } } | null)?.cause;
  const text = (v: unknown): string => (typeof v === 'string' ? v : '');
  const why = cause && typeof cause === 'object' ? text(cause.message) || text(cause.code) : '';
  return { ok: false, retryable: true, reason: `network error: ${message}${why ? ` (${why})` : ''}` };
};

/**
 * Merges the results of two requests that together deliver one batch: ok only when both are;
 * retryable when any failed part is retryable, with the longer `retryAfterMs`. The part that went
 * through is the caller's to leave out of the retry (see the Langfuse exporter).
 */
export const combineResults = (a: ExportResult, b: ExportResult): ExportResult => {
  // The same failure of both requests (the receiver down) is said once.
  const reason = [...new Set([a.reason, b.reason].filter(Boolean))].join('; ');
  if (a.ok && b.ok) {
    const rejected = (a.rejected ?? 0) + (b.rejected ?? 0);
    const out: ExportResult = { ok: true };
    if (rejected > 0) out.rejected = rejected;
    if (reason) out.reason = reason;
    return out;
  }
  const failed = [a, b].filter((r) => !r.ok) as Extract<ExportResult, { ok: false }>[];
  const retryable = failed.some((r) => r.retryable);
  const out: ExportResult = { ok: false, retryable, reason };
  let wait: number | undefined;
  for (const r of failed) {
    if (r.retryAfterMs !== undefined) wait = Math.max(wait ?? 0, r.retryAfterMs);
    // The status the flusher acts on: a retryable one when retrying, else the permanent one.
    if (out.status === undefined && r.status !== undefined && r.retryable === retryable) out.status = r.status;
  }
  if (retryable && wait !== undefined) out.retryAfterMs = wait;
  return out;
};
