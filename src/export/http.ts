import type { ExportResult, Exporter, SpanRecord, TelemetryRecord } from '../protocol';
import { encodeOtlp } from './otlp';
import { combineResults, networkError, toExportResult } from './result';
import { scoresUrlFor } from '../lib/scoresUrl';
import { isHttpUrl, pageBase } from '../lib/isHttpUrl';
import { checkHeaders, checkOptions, fail, wholeOption } from '../config';
import { untracedFetch } from '../lib/untracedFetch';
import type { AllKeys } from '../lib/checkKeys';

/** Default time a request may take, headers and body together (OTel's exporter default). */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** The `timeoutMs` option: the default when unset, else a whole number of ms a timer can wait; throws naming it otherwise. */
export const timeoutOption = (call: string, timeoutMs: unknown): number => wholeOption(call, 'timeoutMs', timeoutMs, DEFAULT_TIMEOUT_MS, 1);

/** How an exporter compresses its trace requests: `gzip`, or `none` (the default, as in OpenTelemetry's exporters). */
export type Compression = 'gzip' | 'none';

/** The `compression` option: whether to gzip; throws naming it when it is neither value. */
export const compressionOption = (call: string, compression: unknown): boolean => {
  if (compression !== undefined && compression !== 'gzip' && compression !== 'none') fail(call, 'compression', '"gzip" or "none"', compression);
  return compression === 'gzip';
};

/** Options for {@link createOtlpExporter}. */
export interface OtlpExporterOptions {
  /** Full URL of the receiver's trace endpoint, e.g. `https://collector.example.com/v1/traces`. */
  url: string;
  /** Extra request headers (auth, tenant). `content-type` is always `application/json`. */
  headers?: Record<string, string> | undefined;
  /**
   * The fetch to send with. Defaults to `globalThis.fetch` as it is when the exporter is
   * created, so later patching by our own fetch instrumentation never traces the export.
   */
  fetch?: typeof fetch | undefined;
  /** Abort a request after this many milliseconds. Default 10000. */
  timeoutMs?: number | undefined;
  /**
   * `gzip` sends span requests with `content-encoding: gzip` (OTLP/HTTP allows it; OTLP JSON
   * shrinks about tenfold), where the runtime has `CompressionStream`. Default `none`.
   */
  compression?: Compression | undefined;
  /**
   * Where score records go, as a JSON array (the edgetrace collector's `POST /v1/scores`).
   * Default: `url` with its `/v1/traces` ending replaced by `/v1/scores`; `false` skips scores.
   */
  scoresUrl?: string | false | undefined;
}

/**
 * What a scores request's result means for its batch: a failure a retry can fix fails the batch
 * (the retry carries the scores); a refusal for good (a plain OTLP collector answers 404) drops
 * only the scores, never the spans sent beside them.
 */
export const settleScores = (result: ExportResult, count: number): ExportResult =>
  result.ok || result.retryable ? result : { ok: true, reason: `${count} score record(s) skipped: ${result.reason}` };

/**
 * `text` as UTF-8, gzip-compressed with the runtime's `CompressionStream` (browsers, workers,
 * Node 18+, Deno, Bun, workerd); undefined where there is none or it fails, so the caller sends
 * the text as it is.
 */
const gzip = async (text: string): Promise<Uint8Array<ArrayBuffer> | undefined> => {
  try {
    if (typeof CompressionStream !== 'function') return undefined;
    return new Uint8Array(await new Response(new Blob([text]).stream().pipeThrough(new CompressionStream('gzip'))).arrayBuffer());
  } catch {
    return undefined;
  }
};

/** One POST for {@link sendJson}. */
export interface JsonRequest {
  fetch: typeof fetch | undefined;
  url: string;
  headers: Headers;
  body: string;
  timeoutMs: number;
  /** Send the body gzip-compressed (`content-encoding: gzip`), where the runtime can; else as it is. */
  gzip?: boolean;
  /** Turns the reply into a result; {@link toExportResult} when absent. */
  classify?: (status: number, headers: Headers, body: string) => ExportResult;
}

/**
 * Captures the fetch to send with now, bound to the global object (some browsers refuse a
 * detached call with another `this`): the one our fetch instrumentation wrapped, if it did.
 */
export const captureFetch = (given?: typeof fetch): typeof fetch | undefined => given ?? untracedFetch();

/**
 * POSTs a JSON body and classifies the reply. Resolves with a result in every case: a timeout or
 * a network failure is retryable, a missing fetch is not.
 */
export const sendJson = async (req: JsonRequest): Promise<ExportResult> => {
  const fetchFn = req.fetch;
  if (!fetchFn) return { ok: false, retryable: false, reason: 'no fetch available in this runtime' };
  const ctrl = typeof AbortController === 'function' ? new AbortController() : undefined;
  let timedOut = false;
  const timer = ctrl
    ? setTimeout(() => {
        timedOut = true;
        ctrl.abort();
      }, req.timeoutMs)
    : undefined;
  try {
    // Compressed inside the timeout, which bounds the whole export.
    const zipped = req.gzip ? await gzip(req.body) : undefined;
    let headers = req.headers;
    if (zipped) {
      headers = new Headers(headers);
      headers.set('content-encoding', 'gzip');
    }
    const res = await fetchFn(req.url, {
      method: 'POST',
      headers,
      body: zipped ?? req.body,
      signal: ctrl?.signal,
      // Not followed: see toExportResult.
      redirect: 'manual',
    });
    let text = '';
    try {
      text = await res.text();
    } catch (err) {
      // The status already tells the outcome; only a timeout makes the reply unusable.
      if (timedOut) throw err;
    }
    return (req.classify ?? toExportResult)(res.status, res.headers, text);
  } catch (err) {
    return timedOut
      ? { ok: false, retryable: true, reason: `timeout after ${req.timeoutMs} ms` }
      : networkError(err);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
};

/** Splits a batch into its span records and a count of everything else. */
export const splitSpans = (records: readonly TelemetryRecord[]): { spans: SpanRecord[]; others: number } => {
  const spans: SpanRecord[] = [];
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    if (r.rec === 'span') spans.push(r);
  }
  return { spans, others: records.length - spans.length };
};

const OTLP_LIST = ['url', 'headers', 'fetch', 'timeoutMs', 'compression', 'scoresUrl'] as const satisfies readonly (keyof OtlpExporterOptions)[];
const OTLP_KEYS: AllKeys<OtlpExporterOptions, typeof OTLP_LIST> = OTLP_LIST;

/**
 * Creates an exporter that POSTs spans as OTLP/HTTP JSON to any OpenTelemetry receiver, and
 * score records as a JSON array to the collector's scores route beside it (see `scoresUrl`).
 * Works in browsers, service workers and edge runtimes alike. Where there is no scores route,
 * scores are skipped (they count as delivered) and the result's reason says how many.
 * The returned promise never rejects.
 */
export const createOtlpExporter = (opts: OtlpExporterOptions): Exporter => {
  const call = 'createOtlpExporter()';
  checkOptions(call, opts, OTLP_KEYS);
  if (!isHttpUrl(opts.url, pageBase())) fail(call, 'url', 'an http(s) URL', opts.url);
  if (opts.scoresUrl !== undefined && opts.scoresUrl !== false && !isHttpUrl(opts.scoresUrl, pageBase())) fail(call, 'scoresUrl', 'an http(s) URL or false', opts.scoresUrl);
  checkHeaders(call, opts.headers);
  const timeoutMs = timeoutOption(call, opts.timeoutMs);
  const zip = compressionOption(call, opts.compression);
  const fetchFn = captureFetch(opts.fetch);
  const headers = new Headers(opts.headers);
  headers.set('content-type', 'application/json');
  const scoresUrl = opts.scoresUrl === false ? undefined : (opts.scoresUrl ?? scoresUrlFor(opts.url));

  return {
    async export(records) {
      try {
        const { spans, others } = splitSpans(records);
        const post = (url: string, body: string, gzip = false): Promise<ExportResult> => sendJson({ fetch: fetchFn, url, headers, body, timeoutMs, gzip });
        // Scores go uncompressed: a route beside an OTLP receiver need not take gzip.
        let result: ExportResult = spans.length ? await post(opts.url, encodeOtlp(spans), zip) : { ok: true };
        // Spans that failed for now come back with the scores: no second request to a receiver
        // that is down (a script's exit would wait out both timeouts, three times).
        if (others > 0 && (result.ok || !result.retryable)) {
          const scores = records.filter((r) => r.rec === 'score');
          const sent: ExportResult = scoresUrl
            ? await post(scoresUrl, JSON.stringify(scores))
            : { ok: false, retryable: false, reason: 'the receiver has no scores route' };
          result = combineResults(result, settleScores(sent, others));
        }
        return result;
      } catch (err) {
        // Encoding bad records must not reject either; re-sending them would fail the same way.
        return { ok: false, retryable: false, reason: `encode failed: ${err instanceof Error ? err.message : String(err)}` };
      }
    },
    async shutdown() {},
  };
};
