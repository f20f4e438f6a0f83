import type { ExportResult, Exporter, ScoreRecord, SpanRecord, TelemetryRecord } from '../protocol';
import { captureFetch, compressionOption, sendJson, timeoutOption, type Compression } from './http';
import { toOtlpJson } from './otlp';
import { recordId, takenIds } from '../lib/recordId';
import { textScoreValue } from '../lib/cutAt';
import { parseJson } from '../lib/parseJson';
import { combineResults, httpReason, isHtml, isRetryableStatus, parseRetryAfter, toExportResult } from './result';
import { bytesToBase64 } from '../lib/base64';
import { isHttpUrl } from '../lib/isHttpUrl';
import { checkOptions, fail } from '../config';
import type { AllKeys } from '../lib/checkKeys';

/** Langfuse Cloud (EU). US: `https://us.cloud.langfuse.com`. */
export const LANGFUSE_CLOUD_URL = 'https://cloud.langfuse.com';

// The span attribute Langfuse reads the environment from (same name as semconv's ENVIRONMENT).
const ENVIRONMENT_ATTR = 'langfuse.environment';
// OpenTelemetry's resource attribute, which the tracer's `environment` option sets.
const DEPLOYMENT_ENVIRONMENT = 'deployment.environment.name';

/**
 * Whether Langfuse keeps `env` as an environment: it lower-cases it and then takes `[a-z0-9-_]`
 * only; any other value it stores, without a word, as `default`.
 */
export const isLangfuseEnvironment = (env: string): boolean => /^[a-z0-9_-]+$/.test(env.toLowerCase());

/** What an environment Langfuse keeps is made of, for messages. */
const ENVIRONMENT_CHARS = 'letters, digits, "-" and "_" only';
export const ENVIRONMENT_RULE = `${ENVIRONMENT_CHARS} (Langfuse stores any other value as "default")`;

/** Base64 of the UTF-8 bytes of `s` (standard alphabet, padded). */
export const utf8ToBase64 = (s: string): string => bytesToBase64(new TextEncoder().encode(s));

/**
 * Integer attributes as JSON numbers, not the decimal strings proto3 JSON writes (which receivers
 * must also take): Langfuse builds before mid-2026 read a string `intValue` as NaN and dropped the
 * span, its trace's metadata with it. Every `intValue` the encoder writes is a safe integer.
 */
const intsAsNumbers = (key: string, value: unknown): unknown => (key === 'intValue' ? Number(value) : value);

/** The value of an HTTP Basic `authorization` header for `user:pass`, UTF-8 encoded. */
export const basicAuth = (user: string, pass: string): string => 'Basic ' + utf8ToBase64(`${user}:${pass}`);

/** Options for {@link createLangfuseExporter}. */
export interface LangfuseExporterOptions {
  /** Project public key (`pk-lf-…`). */
  publicKey: string;
  /** Project secret key (`sk-lf-…`). Server side only: never ship it to a browser. */
  secretKey: string;
  /** Langfuse origin, self-hosted or cloud. Default `https://cloud.langfuse.com`. */
  baseUrl?: string | undefined;
  /**
   * Environment for spans and scores that do not name one (`langfuse.environment`). Langfuse
   * wants lower case `[a-z0-9-_]`, not starting with `langfuse`.
   */
  environment?: string | undefined;
  /** The fetch to send with; defaults to `globalThis.fetch` as captured at creation. */
  fetch?: typeof fetch | undefined;
  /** Abort a request after this many milliseconds. Default 10000. */
  timeoutMs?: number | undefined;
  /** `gzip` sends span requests gzip-compressed, which Langfuse's OTLP endpoint takes. Default `none`. */
  compression?: Compression | undefined;
}

/** One `score-create` event of Langfuse's ingestion batch. */
export interface ScoreEvent {
  id: string;
  /** ISO-8601 with `Z`, millisecond resolution. */
  timestamp: string;
  type: 'score-create';
  body: {
    id: string;
    traceId?: string;
    observationId?: string;
    sessionId?: string;
    name: string;
    value: number | string;
    dataType?: NonNullable<ScoreRecord['dataType']>;
    comment?: string;
    metadata?: ScoreRecord['metadata'];
    configId?: string;
    environment?: string;
  };
}

const isoTime = (ms: number): string => new Date(Number.isFinite(ms) ? ms : Date.now()).toISOString();

/**
 * Builds the `POST /api/public/ingestion` body for scores. The score keeps its id, which Langfuse
 * updates a score by; the event's own id, which Langfuse drops repeats by, is the score's id and
 * time: the same for a re-sent batch, another for a score the app gave again under its id (a
 * changed thumbs), which would otherwise be dropped as a repeat. `environment` fills in where a
 * score has none. A score on a trace does not name the trace's session as well.
 */
export const toScoreEvents = (scores: readonly ScoreRecord[], environment?: string): { batch: ScoreEvent[] } => {
  const batch: ScoreEvent[] = [];
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    // A text value past Langfuse's bound would be refused for good: one from a sender that does
    // not cut it (an older page, through the collector) is cut here.
    const value = s.dataType === 'TEXT' && typeof s.value === 'string' ? textScoreValue(s.value) : s.value;
    const body: ScoreEvent['body'] = { id: s.id, name: s.name, value };
    // A Langfuse score belongs to one object: its trace (and observation) when it has one, else
    // its session. Langfuse refuses a score that names both, so the session only stands alone.
    if (s.traceId) body.traceId = s.traceId;
    if (s.observationId) body.observationId = s.observationId;
    if (s.sessionId && !s.traceId) body.sessionId = s.sessionId;
    // Written out for text values: the ingestion API infers CATEGORICAL from them, but the scores
    // API, which takes over where ingestion is gone, defaults to NUMERIC and refuses the value.
    const dataType = s.dataType ?? (typeof s.value === 'string' ? 'CATEGORICAL' : undefined);
    if (dataType) body.dataType = dataType;
    if (s.comment !== undefined) body.comment = s.comment;
    if (s.metadata !== undefined) body.metadata = s.metadata;
    if (s.configId !== undefined) body.configId = s.configId;
    // One Langfuse does not keep (the tracer's own, "Prod EU") is left out, as on spans.
    const env = s.environment && isLangfuseEnvironment(s.environment) ? s.environment : environment;
    if (env) body.environment = env;
    batch.push({ id: recordId(s), timestamp: isoTime(s.timeMs), type: 'score-create', body });
  }
  return { batch };
};

interface IngestionError {
  id?: unknown;
  status?: unknown;
  message?: unknown;
  error?: unknown;
}

/**
 * Classifies a reply from the ingestion endpoint. It answers 207 with per-event `successes` and
 * `errors`: any 5xx error makes the batch retryable; 4xx errors alone are permanent, counted as
 * `rejected` when other events went through and a failure when none did.
 */
export const toIngestionResult = (status: number, headers: Headers, body: string): ExportResult => {
  if (status < 200 || status > 299 || isHtml(body)) return toExportResult(status, headers, body);
  // A 2xx without a readable body counts as accepted.
  const parsed = parseJson(body) as { successes?: unknown; errors?: unknown } | null | undefined;
  const errors: IngestionError[] = Array.isArray(parsed?.errors) ? parsed.errors : [];
  if (errors.length === 0) return { ok: true };
  const successes = Array.isArray(parsed?.successes) ? parsed.successes.length : 0;
  // The status to report: the highest retryable one if any, else the highest.
  let worst = 0;
  let retryable = false;
  for (const e of errors) {
    const st = typeof e?.status === 'number' ? e.status : 500;
    const isRetry = isRetryableStatus(st);
    if (isRetry && !retryable) worst = 0;
    if (isRetry) retryable = true;
    if (st > worst && (isRetry || !retryable)) worst = st;
  }
  const first = errors[0];
  const msg = typeof first?.message === 'string' ? first.message : typeof first?.error === 'string' ? first.error : '';
  const reason = `${errors.length} score event(s) failed, e.g. ${httpReason(worst)}${msg ? `: ${msg.slice(0, 200)}` : ''}`;
  if (retryable) {
    const retryAfterMs = parseRetryAfter(headers.get('retry-after'));
    return retryAfterMs === undefined
      ? { ok: false, retryable, status: worst, reason }
      : { ok: false, retryable, status: worst, retryAfterMs, reason };
  }
  if (successes > 0) return { ok: true, rejected: errors.length, reason };
  return { ok: false, retryable: false, status: worst, reason };
};

/**
 * Statuses with which the ingestion endpoint says it does not exist: Langfuse Cloud removed it on
 * 2026-11-16 and self-hosted Langfuse v4 has none; the scores API (`POST /api/public/scores`)
 * takes scores on every version.
 */
const GONE = new Set([404, 405, 410]);
/** Scores API requests in flight at once for one batch. */
const SCORE_REQUESTS_AT_ONCE = 8;

/**
 * One result for a batch sent as one request per score, read like the ingestion endpoint's 207:
 * any retryable failure makes the batch retryable (scores are upserted by id, so those that went
 * through are not counted twice); permanent failures alone are `rejected` when others went
 * through, and fail the batch when none did.
 */
export const toScoresResult = (results: readonly ExportResult[]): ExportResult => {
  const failed = results.filter((r): r is Extract<ExportResult, { ok: false }> => !r.ok);
  if (failed.length === 0) return { ok: true };
  const retry = failed.find((r) => r.retryable);
  const first = retry ?? failed[0]!;
  const reason = `${failed.length} of ${results.length} score(s) failed, e.g. ${first.reason}`;
  if (retry) {
    const waits = failed.map((r) => r.retryAfterMs).filter((ms): ms is number => ms !== undefined);
    const out: ExportResult = { ok: false, retryable: true, reason };
    if (retry.status !== undefined) out.status = retry.status;
    if (waits.length) out.retryAfterMs = Math.max(...waits);
    return out;
  }
  if (failed.length < results.length) return { ok: true, rejected: failed.length, reason };
  const out: ExportResult = { ok: false, retryable: false, reason };
  if (first.status !== undefined) out.status = first.status;
  return out;
};

const LANGFUSE_LIST = ['publicKey', 'secretKey', 'baseUrl', 'environment', 'fetch', 'timeoutMs', 'compression'] as const satisfies readonly (keyof LangfuseExporterOptions)[];
const LANGFUSE_KEYS: AllKeys<LangfuseExporterOptions, typeof LANGFUSE_LIST> = LANGFUSE_LIST;

/**
 * Creates an exporter for Langfuse. Spans go as OTLP/HTTP JSON to `/api/public/otel/v1/traces`
 * (Langfuse reads `langfuse.*` and `gen_ai.*` attributes from them); scores go as `score-create`
 * events to `/api/public/ingestion`; where that endpoint is gone (Langfuse Cloud since
 * 2026-11-16, self-hosted v4) they go to the scores API instead, one request each (see
 * {@link GONE}). Both requests run in parallel and the batch is ok only when both are; if either
 * failure is retryable the whole batch is. Langfuse v4 does not deduplicate observations, so the
 * part it already took is remembered and left out when the batch comes back to be retried. The
 * returned promise never rejects.
 */
export const createLangfuseExporter = (opts: LangfuseExporterOptions): Exporter => {
  const call = 'createLangfuseExporter()';
  checkOptions(call, opts, LANGFUSE_KEYS);
  if (opts.environment !== undefined && (typeof opts.environment !== 'string' || !isLangfuseEnvironment(opts.environment))) fail(call, 'environment', ENVIRONMENT_RULE, opts.environment);
  // Without both keys every request would be refused; a base URL that is none would fail as a
  // network error, which is retried and so never said.
  for (const key of ['publicKey', 'secretKey'] as const) if (typeof opts[key] !== 'string' || !opts[key]) fail(call, key, 'a non-empty string', opts[key]);
  if (opts.baseUrl !== undefined && !isHttpUrl(opts.baseUrl)) fail(call, 'baseUrl', 'an absolute http(s) URL', opts.baseUrl);
  const base = (opts.baseUrl ?? LANGFUSE_CLOUD_URL).replace(/\/+$/, '');
  const fetchFn = captureFetch(opts.fetch);
  const timeoutMs = timeoutOption(call, opts.timeoutMs);
  const gzip = compressionOption(call, opts.compression);
  const env = opts.environment;
  const auth = basicAuth(opts.publicKey, opts.secretKey);
  const scoreHeaders = new Headers({ authorization: auth, 'content-type': 'application/json' });
  // Langfuse v4's OTLP endpoint takes this header; the legacy ingestion endpoint does not need it.
  const spanHeaders = new Headers(scoreHeaders);
  spanHeaders.set('x-langfuse-ingestion-version', '4');

  // Environments already said to be ones Langfuse does not keep.
  const warned = new Set<string>();

  const sendSpans = (spans: SpanRecord[]): Promise<ExportResult> => {
    const req = toOtlpJson(spans);
    // Like Langfuse's own span processor: spans that carry no environment, on the span or on
    // their resource (Langfuse reads both, span first), get one. The tracer's own environment
    // (the resource's deployment.environment.name, which a trace's root span also carries) comes
    // before this exporter's: otherwise a trace's child spans would land in another environment
    // than its root.
    const has = (kvs: { key: string }[]) => kvs.some((kv) => kv.key === ENVIRONMENT_ATTR);
    for (const rs of req.resourceSpans) {
      if (has(rs.resource.attributes)) continue;
      const own = rs.resource.attributes.find((kv) => kv.key === DEPLOYMENT_ENVIRONMENT)?.value.stringValue;
      if (own && !isLangfuseEnvironment(own) && !warned.has(own)) {
        // The tracer's `environment` is OpenTelemetry's too, where any text goes: said, not refused.
        warned.add(own);
        console.warn(`[edgetrace] createLangfuseExporter(): the environment ${JSON.stringify(own)} will show in Langfuse as "default"; use ${ENVIRONMENT_CHARS}.`);
      }
      const value = own || env;
      if (!value) continue;
      for (const ss of rs.scopeSpans)
        for (const sp of ss.spans)
          if (!has(sp.attributes)) sp.attributes.push({ key: ENVIRONMENT_ATTR, value: { stringValue: value } });
    }
    const body = JSON.stringify(req, intsAsNumbers);
    return sendJson({ fetch: fetchFn, url: `${base}/api/public/otel/v1/traces`, headers: spanHeaders, body, timeoutMs, gzip });
  };

  // Set once the ingestion endpoint answered that it is gone: every later batch of scores goes
  // straight to the scores API.
  let ingestionGone = false;

  const sendScores = async (scores: ScoreRecord[]): Promise<ExportResult> => {
    const events = toScoreEvents(scores, env);
    if (!ingestionGone) {
      const result = await sendJson({
        fetch: fetchFn,
        url: `${base}/api/public/ingestion`,
        headers: scoreHeaders,
        body: JSON.stringify(events),
        timeoutMs,
        classify: toIngestionResult,
      });
      if (result.ok || !GONE.has(result.status ?? 0)) return result;
      ingestionGone = true;
    }
    return sendEach(events.batch.map((e) => e.body));
  };

  /** `POST /api/public/scores`, one score per request, a few at a time; the body is the event's. */
  const sendEach = async (bodies: ScoreEvent['body'][]): Promise<ExportResult> => {
    const results: ExportResult[] = [];
    for (let i = 0; i < bodies.length; i += SCORE_REQUESTS_AT_ONCE) {
      const group = bodies.slice(i, i + SCORE_REQUESTS_AT_ONCE).map((body) =>
        sendJson({ fetch: fetchFn, url: `${base}/api/public/scores`, headers: scoreHeaders, body: JSON.stringify(body), timeoutMs }),
      );
      results.push(...(await Promise.all(group)));
    }
    return toScoresResult(results);
  };

  // What Langfuse took from a batch that failed as a whole (its scores failed retryably while its
  // spans went through, or the other way round): the retry does not send it again.
  const taken = takenIds();

  return {
    async export(records: readonly TelemetryRecord[]) {
      try {
        const spans: SpanRecord[] = [];
        const scores: ScoreRecord[] = [];
        for (const r of taken.fresh(records)) {
          if (r.rec === 'span') spans.push(r);
          else if (r.rec === 'score') scores.push(r);
        }
        const ok: ExportResult = { ok: true };
        const [a, b] = await Promise.all([
          spans.length ? sendSpans(spans) : ok,
          scores.length ? sendScores(scores) : ok,
        ]);
        const result = combineResults(a, b);
        taken.settle(records, [...(a.ok ? spans : []), ...(b.ok ? scores : [])], !result.ok && result.retryable);
        return result;
      } catch (err) {
        return { ok: false, retryable: false, reason: `encode failed: ${err instanceof Error ? err.message : String(err)}` };
      }
    },
    async shutdown() {},
  };
};
