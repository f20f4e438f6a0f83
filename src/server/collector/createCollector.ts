import type { ExportResult, Exporter, TelemetryRecord } from '../../protocol';
import { recordId, takenIds } from '../../lib/recordId';
import { isLoopbackAddress, isLoopbackHost } from '../loopback';
import { callExporter, EXPORT_TIMEOUT_MS } from '../../core/processors';
import { checkOptions, fail, wholeOption } from '../../config';
import { checkKeys, type AllKeys } from '../../lib/checkKeys';
import { findWaitUntil } from '../waitUntil';
import { within } from '../../lib/within';
import { errorBody, INVALID_ARGUMENT, NOT_FOUND, serveApi } from './api';
import { decodeOtlp, type DecodeLimits } from './decodeOtlp';
import { decodeScores } from './decodeScores';
import { createRateLimiter, type RateLimitOptions } from './rateLimit';
import { readBody, type BodyBudget } from './readBody';
import { throughProxies } from './forwarded';
import { encodeExportResponse, encodeRpcStatus, ProtobufError, readOtlpProtobuf, UTF8 } from './otlpProtobuf';
import type { TraceStore } from './store';
import { CollectorError } from './collectorError';

/** Options for {@link createCollector}. Every field is optional. */
export interface CollectorOptions {
  /** Where spans and scores are kept (see `openSqliteStore`). Without one the collector only forwards. */
  store?: TraceStore | undefined;
  /**
   * Receivers every accepted batch is also sent to, with server-side credentials:
   * `createLangfuseExporter(…)`, `createOtlpExporter(…)`, `fromEnv(env)`. A batch is acknowledged
   * only when each of them took it (or refused it for good while the store kept it).
   */
  forward?: Exporter | readonly Exporter[] | undefined;
  /**
   * Page origins allowed to send (and read) cross-origin, e.g. `["https://app.example.com"]`, or
   * `"*"`. Requests without an `Origin` header (servers) and same-origin requests are always
   * allowed. Default: none.
   */
  allowedOrigins?: '*' | ReadonlyArray<string | RegExp> | undefined;
  /**
   * Public ingest token(s) for `/v1/traces` and `/v1/scores`: `Authorization: Bearer <token>`,
   * `x-edgetrace-token`, or `?token=` (for beacons). Public means a page may hold it: it limits
   * who can write, never who can read. Default: no token needed.
   */
  ingestToken?: string | readonly string[] | undefined;
  /**
   * Token for the query API (`/api/…`), as `Authorization: Bearer` or `x-edgetrace-token` (never
   * in the URL); must differ from the ingest token.
   * `false` opens the API to anyone on this machine (local development): only requests to a
   * loopback host name (`localhost`, `127.0.0.1`, `[::1]`) are answered, and where the server
   * passes the peer's address (`ctx.clientAddress`, as `toNodeListener` does), only requests from
   * a loopback address. Default: the API answers 403.
   */
  readToken?: string | false | undefined;
  /** Largest body accepted, after gzip decompression. Default 5 MB (5,000,000 bytes). */
  maxBodyBytes?: number | undefined;
  /**
   * Body bytes (after decompression) held at once across every ingest request, from the first
   * chunk read until the request is answered and the forward exports it started have settled
   * (see `forwardTimeoutMs`). A request that would pass it gets 503 with
   * `Retry-After`, and the sender keeps its batch: many large bodies at once slow senders down
   * instead of exhausting memory. One client (by the rate limit's key, when one is known) holds at
   * most a quarter of it, or `maxBodyBytes` if that is more, so a client that stalls its uploads
   * cannot shut the others out. At least `maxBodyBytes`. Default 64 MB (64,000,000 bytes).
   */
  maxBytesInFlight?: number | undefined;
  /** Per-client token bucket on the ingest routes, or `false` for none. Default 20/s, bursts of 60. */
  rateLimit?: false | RateLimitOptions | undefined;
  /** Stored traces older than this (by their last span's end) are pruned. Default 30 days; `false` keeps all. */
  retentionMs?: number | false | undefined;
  /**
   * Pruning runs at most this often, on the back of an ingest request. Default 1 hour; after a
   * prune failed, or while the store refuses writes, every 2 minutes.
   */
  pruneIntervalMs?: number | undefined;
  /** Told what each prune removed (`spans` and `scores` when the store counts them). Default: nothing. */
  onPrune?: ((removed: PruneReport) => void) | undefined;
  /**
   * `Retry-After` (seconds) when forwarding or storing failed and the receiver gave none, or when
   * `maxBytesInFlight` was reached. Default 10.
   */
  retryAfterSec?: number | undefined;
  /**
   * How long a request waits for the forward targets before the sender is told to send the batch
   * again (503 with `Retry-After`), 1 to 30000. Keep it below the senders' own request timeout
   * (the SDK's is 10 s): a sender that gives up first sends again a batch a slow target took. A
   * target that answers after this, within 30 s of the export's start, still counts as having
   * taken the records, when its exporter waits that long (`timeoutMs: 30000`, as `edgetrace
   * collect` gives them; the exporters' default is 10 s). Default 8000 ms.
   */
  forwardTimeoutMs?: number | undefined;
  /**
   * The rate-limit key of a request. Default: the client's address from `X-Forwarded-For` under
   * `trustProxy`, else the Node adapter's socket address, else, behind Cloudflare (`request.cf`
   * present), `cf-connecting-ip`, else one shared key. On Deno or Bun, pass the client's address
   * (Deno's `info.remoteAddr`, Bun's `server.requestIP()`): a header the client can write is no key.
   */
  clientKey?: ((request: Request, env: unknown, ctx: unknown) => string | undefined) | undefined;
  /**
   * How many reverse proxies stand in front of the collector (nginx, a load balancer that ends
   * TLS), each adding to `X-Forwarded-For`, or `false`. With a number, the client's address (its
   * rate limit, its share of `maxBytesInFlight`, the open query API's loopback check) is the entry
   * of `X-Forwarded-For` that many from the right, never one a client wrote further left, and the
   * URL the client used (for the same-origin check) takes its scheme and host from
   * `X-Forwarded-Proto` and `X-Forwarded-Host`, which the proxy must set; a page's preflight
   * may then not ask to send those headers. Default `false`: every one of these headers is a
   * client's to write, and nothing behind none of your proxies should trust them.
   */
  trustProxy?: number | false | undefined;
  /** Bounds on attributes, array values, events, links and nesting per span; what is past them is left out and counted. */
  limits?: DecodeLimits | undefined;
  /** Path prefix the collector is mounted at, e.g. `/collector`. Default none. */
  basePath?: string | undefined;
  /** Clock in epoch ms, for the rate limit and retention. Default `Date.now`. */
  now?: (() => number) | undefined;
  /**
   * Told about internal errors (a failing store or forward target, each at most once a minute; a
   * bug), and about senders refused for a missing or wrong ingest token (401) or an origin not
   * allowed (403), at most once a minute per status and origin; the request still gets a JSON
   * answer. What it expects to happen while it runs comes as a `CollectorError`, whose message
   * and `cause` say all (a stack would not); anything else is a bug. Default: `console.error`.
   */
  onError?: ((error: unknown) => void) | undefined;
}

/** What a prune removed, and which traces it looked for: those whose last span ended before `beforeMs`. */
export interface PruneReport {
  traces: number;
  spans?: number;
  scores?: number;
  beforeMs: number;
  durationMs: number;
}

/** A fetch-style collector: `fetch` fits `export default`, `Deno.serve`, `Bun.serve` and `toNodeListener`. */
export interface Collector {
  fetch(request: Request, env?: unknown, ctx?: unknown): Promise<Response>;
  /**
   * Prunes the store now; resolves to the number of traces removed (0 without store or retention).
   * A failure is told to `onError` too.
   */
  prune(): Promise<number>;
  /** What `/health` answers (checking the store's file, and saying so in the log when it moved). */
  health(): CollectorHealth;
  /** Closes the store and the forward targets. */
  close(): Promise<void>;
  readonly store?: TraceStore;
}

/** What `/health` answers: 200 when `ok`, else 503. */
export interface CollectorHealth {
  /**
   * Ready for batches: false for a minute after the store's failures made it send a batch back,
   * and while the store's file is moved (a restart mends that).
   */
  ok: boolean;
  store: boolean;
  /** How many forward targets there are. */
  forward: number;
  /** While the store refuses writes: since when (ISO 8601). */
  storeFailedAt?: string;
  /** The database file was deleted or replaced under the running collector. */
  storeFileMoved?: true;
  /** Each forward target's state, in the order given. */
  forwarding?: ForwardHealth[];
}

/** One forward target in {@link CollectorHealth}. */
export interface ForwardHealth {
  /** `forward[i]`: its URL stays in the log, as its errors' text does. */
  target: string;
  /** Since when its exports fail (ISO 8601), until one is taken. */
  failingSince?: string;
  /** The last failure, as senders hear it: `forward[0]: HTTP 401`. */
  lastError?: string;
  lastDeliveredAt?: string;
  /** Records on their way to it now. */
  sending?: number;
}

/** A request's share of `maxBytesInFlight` (see `lease()` in createCollector). */
interface Lease extends BodyBudget {
  /** Keeps the share until `p` settles too (a forward export that outlives the answer). */
  until(p: Promise<unknown>): void;
  /** Gives the share back now, or once every `until` promise settled: then that promise. */
  release(): Promise<void> | void;
}

const CALL = 'createCollector()';
const DAY_MS = 86_400_000;
// google.rpc.Code numbers for error bodies (OTLP receivers answer errors with google.rpc.Status).
const PERMISSION_DENIED = 7;
const RESOURCE_EXHAUSTED = 8;
const UNIMPLEMENTED = 12;
const INTERNAL = 13;
const UNAVAILABLE = 14;
const UNAUTHENTICATED = 16;

const ALLOW_HEADERS = 'content-type, content-encoding, authorization, x-edgetrace-token, traceparent, tracestate';
const OUR_HEADERS = ALLOW_HEADERS.split(', ');
const FORWARDED_RE = /^(?:x-forwarded-|forwarded$)/;
const HEADER_LIST_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;

/**
 * The headers a preflight allows: ours, plus those the page asks for. A page's `init({ headers })`
 * or its own token header name must not make every delivery fail in the browser's preflight;
 * the origin was checked already, and a header grants a request nothing here.
 */
const allowHeaders = (requested: string | null, trustProxy: boolean): string => {
  if (!requested || requested.length > 2000 || !HEADER_LIST_RE.test(requested.trim())) return ALLOW_HEADERS;
  // Behind trusted proxies, a page of another site that sent its own X-Forwarded-Host would pass
  // for the collector's own origin wherever a proxy leaves the header as it came.
  const asked = requested.toLowerCase().split(',').map((h) => h.trim()).filter((h) => !(trustProxy && FORWARDED_RE.test(h)));
  return [...new Set([...OUR_HEADERS, ...asked])].join(', ');
};
const JSON_TYPE = 'application/json';
const PROTOBUF_TYPE = 'application/x-protobuf';

/** A request's media type, lower case, without parameters. */
const mediaType = (request: Request): string => (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();

/** Builds a reply: JSON, or its binary protobuf form for a request that came that way. */
type Reply = (status: number, body: unknown, headers?: Record<string, string>) => Response;

/** Compares without stopping at the first difference, so timing does not reveal a prefix. */
const sameSecret = (a: string, b: string): boolean => {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i % Math.max(1, b.length));
  return diff === 0;
};

/**
 * The token a request carries: bearer, `x-edgetrace-token`, or (`url` given) `?token=`, which
 * only the public ingest token may use: a URL ends up in logs and browser history.
 */
const tokenOf = (request: Request, url?: URL): string | undefined => {
  const auth = request.headers.get('authorization');
  const bearer = auth && /^Bearer\s+(.+)$/i.exec(auth.trim());
  return (bearer ? bearer[1]!.trim() : undefined) ?? request.headers.get('x-edgetrace-token') ?? url?.searchParams.get('token') ?? undefined;
};

/** A forward target as the collector's own logs name it (a URL, for targets made by fromEnv). */
const describeTarget = (e: Exporter, i: number): string => {
  const target = (e as { target?: unknown }).target;
  return typeof target === 'string' ? `forward[${i}] (${target})` : `forward[${i}]`;
};

/** `o` as the `Origin` header of a page of that origin spells it; throws, naming `option`, unless it is one. */
const originOf = (o: unknown, option: string): string => {
  // scheme://host[:port], with a trailing slash at most: a path, query or user is no origin.
  const m = typeof o === 'string' ? /^([a-z][a-z0-9+.-]*:\/\/[^/?#@\s]+)\/?$/i.exec(o) : null;
  let origin: string | undefined;
  try {
    const url = m ? new URL(m[1]!) : undefined;
    // http(s) as browsers send it (lower case, no default port); an app's own scheme
    // (capacitor://localhost, chrome-extension://<id>) as written, in lower case.
    if (url) origin = url.origin === 'null' ? m![1]!.toLowerCase() : url.origin;
  } catch {
    // Not a URL: the message below.
  }
  // '*' is the whole option's value, never one origin among others.
  if (!origin) fail(CALL, option, `an origin such as "https://app.example.com" (scheme, host and port only), or a RegExp${o === '*' ? " (any origin is allowedOrigins: '*' alone, not in a list)" : ''}`, o);
  return origin!;
};

/**
 * What a sender is told of a target's failure: its place and HTTP status only. The target's URL
 * and its answer's text are for the collector's logs: the ingest token is public, and upstream
 * error bodies can hold keys, tenants and internal addresses.
 */
const failureForSender = (r: { status?: number }, i: number): string =>
  `forward[${i}]: ${r.status ? `HTTP ${r.status}` : 'no answer (network error or timeout)'}`;

/**
 * Exports to one target for one batch at most, when a 400 makes it send the batch again in parts:
 * enough to find two bad records in a batch of a thousand.
 */
const MAX_SPLIT_EXPORTS = 40;
/** A prune that failed (on a full disk, say) is tried again this soon, not a whole interval later. */
const PRUNE_RETRY_MS = 120_000;
/**
 * Whether a failed export is the target's failure, for the sender to send again later: retryable,
 * no answer, or wrong credentials or URL (401/403/404), which are ours to fix, not the sender's data.
 */
const isTargetFailure = (r: ExportResult): boolean =>
  !r.ok && (r.retryable || r.status === 401 || r.status === 403 || r.status === 404 || r.status === undefined);

/** A failing target or store is logged at most this often, so an outage is not a line per request. */
const LOG_INTERVAL_MS = 60_000;
/** Distinct refusals (status and origin) logged in a minute: the Origin header is the client's to write. */
const MAX_REFUSALS_LOGGED = 32;
/** What a target is told to answer for records an earlier export to it is still sending. */
const STILL_SENDING: ExportResult = { ok: false, retryable: true, reason: 'an earlier copy is still being sent' };
/** Below the SDK's 10 s request timeout, so the sender hears "again later" before it gives up. */
const FORWARD_TIMEOUT_MS = 8_000;

const COLLECTOR_LIST = [
  'store',
  'forward',
  'allowedOrigins',
  'ingestToken',
  'readToken',
  'maxBodyBytes',
  'maxBytesInFlight',
  'rateLimit',
  'retentionMs',
  'pruneIntervalMs',
  'onPrune',
  'retryAfterSec',
  'forwardTimeoutMs',
  'clientKey',
  'trustProxy',
  'limits',
  'basePath',
  'now',
  'onError',
] as const satisfies readonly (keyof CollectorOptions)[];
const COLLECTOR_KEYS: AllKeys<CollectorOptions, typeof COLLECTOR_LIST> = COLLECTOR_LIST;
const RATE_LIST = ['perSecond', 'burst', 'maxClients'] as const satisfies readonly (keyof RateLimitOptions)[];
const RATE_KEYS: AllKeys<RateLimitOptions, typeof RATE_LIST> = RATE_LIST;
const DECODE_LIST = ['maxAttributes', 'maxArrayValues', 'maxEvents', 'maxLinks', 'maxDepth'] as const satisfies readonly (keyof DecodeLimits)[];
const DECODE_KEYS: AllKeys<DecodeLimits, typeof DECODE_LIST> = DECODE_LIST;

/**
 * Creates the collector, a fetch-style handler that runs in Node (with `toNodeListener`), Workers,
 * Deno and Bun:
 * - `POST /v1/traces`: OTLP/HTTP JSON (`application/json`, or `text/plain` from beacons) or binary
 *   protobuf (`application/x-protobuf`, answered in kind), gzip or not. Malformed requests get
 *   400 with `{code, message}` naming the problem; malformed spans are left out and reported as
 *   OTLP `partialSuccess`. Too large: 413. Wrong origin: 403. Missing or
 *   wrong ingest token: 401. Too many requests from one client: 429 with `Retry-After`.
 * - `POST /v1/scores`: a JSON array of `ScoreRecord`s (what `trace.score()` produces), stored and
 *   forwarded (the Langfuse exporter sends them as `score-create`); answers `{accepted, rejected, errors}`.
 * - `GET /api/traces`, `/api/traces/<id>`, `/api/stats`: the query API (read token), see `serveApi`.
 * - `GET /health`; `OPTIONS` preflight for allowed origins.
 * - Any other path: 404 naming the ingest routes, with CORS headers (and a preflight) for allowed
 *   origins, so a page sending to a wrong URL can read why. The ingest routes also take a trailing
 *   slash.
 * Accepted data is stored, then forwarded; if a forward target fails in a way a retry can fix,
 * or the store does and not every target took the batch, the answer is 503 with `Retry-After`, so
 * the sender keeps the batch (re-sends are harmless: the store ignores spans it has). Nothing is
 * acknowledged that was neither stored nor forwarded. Records outside the store's time window
 * are forwarded all the same. Whatever arrives, the handler answers; it does not throw.
 * Throws a `TypeError` naming the option when `options` is invalid.
 */
export const createCollector = (options: CollectorOptions = {}): Collector => {
  checkOptions(CALL, options, COLLECTOR_KEYS);
  const store = options.store;
  if (store !== undefined && typeof store?.insertSpans !== 'function') fail(CALL, 'store', 'a TraceStore (see openSqliteStore)', store);
  const forward: readonly Exporter[] = options.forward === undefined ? [] : Array.isArray(options.forward) ? options.forward : [options.forward as Exporter];
  forward.forEach((e, i) => {
    if (typeof e?.export !== 'function') fail(CALL, `forward[${i}]`, 'an exporter (createLangfuseExporter, createOtlpExporter, fromEnv)', e);
  });
  if (!store && forward.length === 0) fail(CALL, 'store', 'a TraceStore, or "forward" at least one exporter (else nothing is kept)', store);
  const ingestTokens = options.ingestToken === undefined ? [] : typeof options.ingestToken === 'string' ? [options.ingestToken] : [...options.ingestToken];
  ingestTokens.forEach((t, i) => {
    if (typeof t !== 'string' || t.length < 8) fail(CALL, `ingestToken${ingestTokens.length > 1 ? `[${i}]` : ''}`, 'a string of at least 8 characters', t);
  });
  const readToken = options.readToken;
  if (readToken !== undefined && readToken !== false && (typeof readToken !== 'string' || readToken.length < 8)) {
    fail(CALL, 'readToken', 'a string of at least 8 characters, or false', readToken);
  }
  if (typeof readToken === 'string' && ingestTokens.includes(readToken)) {
    fail(CALL, 'readToken', 'different from every ingestToken (pages hold the ingest token)', '[the ingest token]');
  }
  const maxBodyBytes = options.maxBodyBytes ?? 5_000_000;
  if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) fail(CALL, 'maxBodyBytes', 'a whole number ≥ 1', maxBodyBytes);
  const maxBytesInFlight = options.maxBytesInFlight ?? Math.max(64_000_000, maxBodyBytes);
  if (!Number.isInteger(maxBytesInFlight) || maxBytesInFlight < maxBodyBytes) {
    fail(CALL, 'maxBytesInFlight', `a whole number ≥ maxBodyBytes (${maxBodyBytes})`, maxBytesInFlight);
  }
  let bytesInFlight = 0;
  const maxBytesPerClient = Math.max(maxBodyBytes, Math.floor(maxBytesInFlight / 4));
  /** Bytes in flight by client key, for the clients whose key is known. */
  const clientBytes = new Map<string, number>();
  const given = options.allowedOrigins ?? [];
  if (given !== '*' && !Array.isArray(given)) fail(CALL, 'allowedOrigins', '"*" or an array of origins and RegExps', given);
  // Browsers send an origin as scheme://host[:port], lowercase, without the default port: a
  // listed one is put in that form, and one with a path, or no origin at all, is a mistake.
  // A /g or /y pattern would go on from where its last match ended: copied without those flags.
  const origins = given === '*' ? given : given.map((o, i) => (o instanceof RegExp ? new RegExp(o.source, o.flags.replace(/[gy]/g, '')) : originOf(o, `allowedOrigins[${i}]`)));
  const retentionMs = options.retentionMs === undefined ? 30 * DAY_MS : options.retentionMs;
  if (retentionMs !== false && !(typeof retentionMs === 'number' && retentionMs > 0)) fail(CALL, 'retentionMs', 'a number of ms > 0, or false', retentionMs);
  const pruneIntervalMs = wholeOption(CALL, 'pruneIntervalMs', options.pruneIntervalMs, 3_600_000, 0);
  const retryAfterSec = wholeOption(CALL, 'retryAfterSec', options.retryAfterSec, 10, 1);
  const forwardTimeoutMs = options.forwardTimeoutMs ?? FORWARD_TIMEOUT_MS;
  if (!Number.isInteger(forwardTimeoutMs) || forwardTimeoutMs < 1 || forwardTimeoutMs > EXPORT_TIMEOUT_MS) {
    fail(CALL, 'forwardTimeoutMs', `a whole number of ms from 1 to ${EXPORT_TIMEOUT_MS}`, forwardTimeoutMs);
  }
  if (options.basePath !== undefined && (typeof options.basePath !== 'string' || !/^(\/[^/?#]+)*\/?$/.test(options.basePath))) {
    fail(CALL, 'basePath', 'a path such as "/telemetry"', options.basePath);
  }
  const basePath = (options.basePath ?? '').replace(/\/+$/, '');
  for (const key of ['clientKey', 'now', 'onError', 'onPrune'] as const) {
    if (options[key] !== undefined && typeof options[key] !== 'function') fail(CALL, key, 'a function', options[key]);
  }
  const now = options.now ?? Date.now;
  const trustProxy = options.trustProxy ?? false;
  if (trustProxy !== false) wholeOption(CALL, 'trustProxy', trustProxy, 1, 1);
  const limits = options.limits;
  if (limits !== undefined) {
    if (typeof limits !== 'object' || limits === null) fail(CALL, 'limits', 'an object', limits);
    checkKeys(CALL, limits, DECODE_KEYS, 'limits.');
    for (const key of DECODE_KEYS) wholeOption(CALL, `limits.${key}`, limits[key], 0, key === 'maxDepth' ? 1 : 0);
  }
  const rate = options.rateLimit;
  if (rate !== undefined && rate !== false) {
    if (typeof rate !== 'object' || rate === null) fail(CALL, 'rateLimit', 'false or an object', rate);
    checkKeys(CALL, rate, RATE_KEYS, 'rateLimit.');
    for (const key of RATE_KEYS) {
      const v = rate[key];
      if (v !== undefined && !(typeof v === 'number' && v > 0 && v < Infinity)) fail(CALL, `rateLimit.${key}`, 'a number > 0', v);
    }
  }
  const limiter = rate === false ? undefined : createRateLimiter(rate ?? {}, now);
  let lastPruneMs = Number.NEGATIVE_INFINITY;
  let pruneFailed = false;
  /** When each forward target's failure (by index) and the store's were last logged. */
  const lastLog = new Map<string, number>();
  /** When the store last refused a write, until one succeeds: `/health` says so. */
  let storeFailedAt: number | undefined;
  /** When the store's file was last checked (see TraceStore.check). */
  let fileCheckedAt = Number.NEGATIVE_INFINITY;
  /** When a batch was last sent back (503) because the store refused it and no target took it all. */
  let storeRefusedAt: number | undefined;
  /** Records the forward targets took while the store could not keep them, since the last report. */
  let unstored = 0;

  const report = (error: unknown): void => {
    try {
      // A collector is run by an operator, who must hear of a target or store that fails.
      if (options.onError) options.onError(error);
      else console.error('[edgetrace] collector:', error);
    } catch {
      // An onError that throws must not turn into a failed request.
    }
  };

  /**
   * Whether `source` may be logged now, noting it in `log` if so: not logged in the last minute,
   * and, for sources a client names (an origin), fewer than `cap` logged in it. `log` holds the
   * last minute's sources, oldest first: what is left after the older are dropped is recent.
   */
  const due = (log: Map<string, number>, source: string, cap = Infinity): boolean => {
    const t = now();
    for (const [key, at] of log) {
      if (t - at < LOG_INTERVAL_MS) break;
      log.delete(key);
    }
    if (log.has(source) || log.size >= cap) return false;
    log.set(source, t);
    return true;
  };

  /**
   * Reports `error()` unless `source` was reported in the last minute: an outage is not a line per
   * request. A target's source includes its status, so a change of cause (503, then a 401 that
   * wants the operator) is told at once.
   */
  const reportOncePerMinute = (source: string, error: () => unknown): void => {
    if (due(lastLog, source)) report(error());
  };

  /** When each refusal (`status origin`) was last logged, oldest first. */
  const refusalsLogged = new Map<string, number>();

  /**
   * Tells the operator why a sender was refused (401, 403), at most once a minute per status and
   * origin: otherwise only the page's own console says why nothing arrives. Never the token.
   */
  const logRefusal = (status: number, origin: string | null, reason: string): void => {
    if (!due(refusalsLogged, `${status} ${origin ?? ''}`, MAX_REFUSALS_LOGGED)) return;
    const from = origin === null ? 'a request without Origin (a server or a script)' : `a request from origin ${origin.slice(0, 200)}`;
    report(new CollectorError(`refused ${from} with ${status}: ${reason}`));
  };

  const originAllowed = (origin: string, url: URL): boolean => {
    if (origin === url.origin) return true;
    if (origins === '*') return true;
    return origins.some((o) => (typeof o === 'string' ? o === origin : o.test(origin)));
  };

  const corsHeaders = (origin: string | null): Record<string, string> => {
    if (!origin) return {};
    return {
      'access-control-allow-origin': origins === '*' ? '*' : origin,
      'access-control-expose-headers': 'retry-after',
      vary: 'origin',
    };
  };

  /** The answer to an allowed origin's CORS preflight, for the `methods` its route takes. */
  const preflight = (request: Request, cors: Record<string, string>, methods: string): Response =>
    new Response(null, {
      status: 204,
      headers: {
        ...cors,
        'access-control-allow-methods': methods,
        'access-control-allow-headers': allowHeaders(request.headers.get('access-control-request-headers'), trustProxy !== false),
        vary: 'origin, access-control-request-headers',
        'access-control-max-age': '86400',
      },
    });

  /**
   * A path no route serves: 404, naming the routes there are. An allowed page gets its preflight
   * and the CORS headers here too: a page whose endpoint is a slip (`/v1/trace`, the bare base
   * URL) then reads this answer and dead-letters its batch, where the browser would otherwise show
   * it only a network error, retried for good with nothing to tell the mistake by.
   */
  const unrouted = (request: Request, url: URL, origin: string | null, allowed: boolean): Response => {
    const cors = allowed ? corsHeaders(origin) : {};
    if (request.method === 'OPTIONS' && allowed && origin) return preflight(request, cors, 'GET, POST, OPTIONS');
    const routes = `spans go to POST ${basePath}/v1/traces, scores to POST ${basePath}/v1/scores`;
    return json(404, errorBody(NOT_FOUND, `nothing at ${url.pathname.slice(0, 200)}: ${routes}`), cors);
  };

  const json: Reply = (status, body, headers = {}) =>
    new Response(JSON.stringify(body), { status, headers: { 'content-type': JSON_TYPE, 'cache-control': 'no-store', ...headers } });

  /**
   * The replies `json` gives, as OTLP/HTTP wants them for a protobuf request: the same status and
   * headers, with an `ExportTraceServiceResponse` on success and a `google.rpc.Status` otherwise.
   */
  const protobuf: Reply = (status, body, headers = {}) => {
    const b = body as { code?: number; message?: string; partialSuccess?: { rejectedSpans: string; errorMessage: string } };
    const p = b.partialSuccess;
    const bytes =
      status < 300 ? encodeExportResponse(p && { rejectedSpans: Number(p.rejectedSpans), errorMessage: p.errorMessage }) : encodeRpcStatus(b.code ?? 0, b.message ?? '');
    return new Response(bytes, { status, headers: { 'content-type': PROTOBUF_TYPE, 'cache-control': 'no-store', ...headers } });
  };

  /** The prune under way: a second call (the timer, an ingest's retry) joins it, and it is reported once. */
  let pruneRunning: Promise<number> | undefined;
  const prune = (): Promise<number> =>
    (pruneRunning ??= pruneOnce().finally(() => {
      pruneRunning = undefined;
    }));
  const pruneOnce = async (): Promise<number> => {
    if (!store || retentionMs === false) return 0;
    const startMs = now();
    lastPruneMs = startMs;
    const beforeMs = startMs - retentionMs;
    try {
      const r = await store.prune(beforeMs);
      pruneFailed = false;
      const removed = typeof r === 'number' ? { traces: r } : r;
      try {
        options.onPrune?.({ ...removed, beforeMs, durationMs: now() - startMs });
      } catch (error) {
        report(error);
      }
      return removed.traces;
    } catch (error) {
      pruneFailed = true;
      report(new CollectorError(`pruning the store failed; trying again in ${PRUNE_RETRY_MS / 60_000} minutes`, { cause: error }));
      throw error;
    }
  };

  /**
   * Prunes when it is due: every `pruneIntervalMs`, and every PRUNE_RETRY_MS after a prune failed
   * or while the store refuses writes (a full disk, which a prune may be what frees).
   */
  const maybePrune = (waitUntil: ((p: Promise<unknown>) => void) | undefined): void => {
    if (!store || retentionMs === false) return;
    const interval = pruneFailed || storeFailedAt !== undefined ? Math.min(PRUNE_RETRY_MS, pruneIntervalMs) : pruneIntervalMs;
    if (now() - lastPruneMs < interval) return;
    lastPruneMs = now();
    // Told to onError already.
    const p = prune().catch(() => undefined);
    if (waitUntil) waitUntil(p);
  };

  /**
   * Per forward target:
   * - `took`: the records it took (the newest 50,000). A batch sent again (the sender was told to
   *   retry because another target failed, or gave up waiting for the answer) leaves them out
   *   for it; Langfuse keeps every copy it gets.
   * - `busy`: the ids of the records an export to it is still sending. A sender that gave up
   *   waiting sends its batch again while the first copy may still arrive: those records wait
   *   for that answer instead of going twice.
   */
  const targets = forward.map(() => ({
    took: takenIds(),
    /** The records it refused as invalid (400): a batch sent again hears of them again, not of a success. */
    refusedIds: takenIds(),
    busy: new Set<string>(),
    refusedSinceReport: 0,
    /** Since when its exports fail (a retryable failure or wrong credentials), until one is taken; for /health. */
    failingSince: undefined as number | undefined,
    lastError: undefined as string | undefined,
    deliveredAt: undefined as number | undefined,
  }));

  /**
   * Exports `records` (whose ids are `ids`) to `e`. A 400 for more than one record is most often
   * one bad record: the batch goes again in halves, down to the records the target refuses, so
   * they alone are lost, as the page splits a batch on 413. `budget.exports` bounds the exports
   * (a target refusing everything would otherwise get two per record); a part that would pass it
   * counts as refused whole. Resolves to the outcome, the ids taken, the ids refused and the
   * target's words for the first refusal.
   */
  const exportSplitting = async (
    e: Exporter,
    records: readonly TelemetryRecord[],
    ids: readonly string[],
    budget: { exports: number },
  ): Promise<{ result: ExportResult; took: string[]; refused: string[]; why?: string }> => {
    budget.exports--;
    const r = await callExporter(e, records, EXPORT_TIMEOUT_MS);
    if (r.ok) return { result: r, took: [...ids], refused: [] };
    if (r.status !== 400) return { result: r, took: [], refused: [] };
    if (records.length < 2 || budget.exports < 2) return { result: r, took: [], refused: [...ids], why: r.reason };
    const half = Math.ceil(records.length / 2);
    const [a, b] = await Promise.all([
      exportSplitting(e, records.slice(0, half), ids.slice(0, half), budget),
      exportSplitting(e, records.slice(half), ids.slice(half), budget),
    ]);
    const took = [...a.took, ...b.took];
    const refused = [...a.refused, ...b.refused];
    const why = a.why ?? b.why;
    // A failure of another kind (the target went down meanwhile) is the outcome: the sender sends
    // again, and what was taken is not sent twice.
    for (const part of [a, b]) if (!part.result.ok && part.result.status !== 400) return { result: part.result, took, refused, why };
    if (!took.length) return { result: r, took, refused, why };
    // What the parts lost: those refused, and those an accepting part rejected (OTLP partialSuccess).
    const rejected = (part: { result: ExportResult; refused: string[] }): number => (part.result.ok ? (part.result.rejected ?? 0) : part.refused.length);
    return { result: { ok: true, rejected: rejected(a) + rejected(b), reason: `refused ${refused.length} of ${records.length} record(s) (HTTP 400)` }, took, refused, why };
  };

  /**
   * Logs, at most once a minute per target, that target `i` refused `refused` of `of` records as
   * invalid (400, in its words `why`), with the count since the last such line.
   */
  const reportRefused = (i: number, refused: number, of: number, why: string | undefined): void => {
    const target = targets[i]!;
    target.refusedSinceReport += refused;
    reportOncePerMinute(`${i} 400`, () => {
      const n = target.refusedSinceReport;
      target.refusedSinceReport = 0;
      const rest = refused < of ? ' and took the rest' : '';
      return new CollectorError(`${describeTarget(forward[i]!, i)} refused ${refused} of ${of} record(s) as invalid (${why ?? 'HTTP 400'})${rest}; ${n} record(s) refused since the last report`);
    });
  };

  /** Sends to every forward target; the first answer that should make the sender retry, else ok. */
  type Forwarded = { retry?: { afterSec: number; reason: string }; tooLarge?: string; refused: string[]; rejected: number; partly: string[] };
  const forwardAll = async (records: TelemetryRecord[], budget: Lease): Promise<Forwarded> => {
    const out: Forwarded = { refused: [], rejected: 0, partly: [] };
    if (forward.length === 0 || records.length === 0) return out;
    const recordIds = records.map(recordId);
    const results = await Promise.all(
      forward.map((e, i): Promise<ExportResult> | ExportResult => {
        const target = targets[i]!;
        const { took, busy, refusedIds } = target;
        // The records the target has not taken and that are not on their way to it already, with
        // their ids. Some on their way in an earlier export: the sender comes back once that one
        // is answered. Those it refused before count as refused again, unsent.
        const ready: TelemetryRecord[] = [];
        const ids: string[] = [];
        let stillSending = false;
        let refusedBefore = 0;
        let takenBefore = 0;
        for (let j = 0; j < records.length; j++) {
          const id = recordIds[j]!;
          if (took.has(id)) takenBefore++;
          else if (refusedIds.has(id)) refusedBefore++;
          else if (busy.has(id)) stillSending = true;
          else {
            ready.push(records[j]!);
            ids.push(id);
          }
        }
        const again = `refused ${refusedBefore} of ${records.length} record(s) when first sent (HTTP 400)`;
        if (!ready.length) {
          if (stillSending) return STILL_SENDING;
          if (!refusedBefore) return { ok: true };
          // As the first answer was: refused whole when it took none, else a partial success.
          return takenBefore ? { ok: true, rejected: refusedBefore, reason: again } : { ok: false, retryable: false, status: 400, reason: again };
        }
        for (const id of ids) busy.add(id);
        const sent = exportSplitting(e, ready, ids, { exports: MAX_SPLIT_EXPORTS });
        // Registered before the answer below waits: the memory is up to date when the sender hears
        // it, and a target that answers only after the sender was told to retry is remembered too.
        // Records it refused as bad are remembered apart: they would be refused again.
        const done = sent.then(({ result: got, took: taken, refused, why }) => {
          for (const id of ids) busy.delete(id);
          took.remember(recordIds, taken);
          refusedIds.remember(recordIds, refused);
          const result: ExportResult = got.ok && refusedBefore ? { ok: true, rejected: (got.rejected ?? 0) + refusedBefore, reason: got.reason ?? again } : got;
          if (refused.length) reportRefused(i, refused.length, ready.length, why);
          if (result.ok) {
            target.failingSince = target.lastError = undefined;
            target.deliveredAt = now();
          } else if (isTargetFailure(result)) {
            target.failingSince ??= now();
            target.lastError = failureForSender(result, i);
          }
          return result;
        });
        // A target that hangs must not hold the request. Its records stay in memory until the export
        // settles, so their bytes stay counted until then (an export answered in time is settled).
        const answer = within(done, forwardTimeoutMs, (): ExportResult => {
          budget.until(done);
          return { ok: false, retryable: true, reason: `no answer within ${forwardTimeoutMs} ms` };
        });
        return stillSending ? answer.then((r) => (r.ok ? STILL_SENDING : r)) : answer;
      }),
    );
    results.forEach((r, i) => {
      if (r.ok) {
        // Each target saw the same records: the batch lost at most what the strictest refused.
        // Its reason (OTLP partialSuccess) is about the sender's data, so the sender hears it.
        if (r.rejected) {
          out.rejected = Math.min(records.length, Math.max(out.rejected, r.rejected));
          out.partly.push(`forward[${i}]: ${r.reason ?? `${r.rejected} rejected`}`);
        }
        return;
      }
      // Not a failure of the target: nothing to log, and the sender hears what it is.
      if (r === STILL_SENDING) {
        out.retry ??= { afterSec: retryAfterSec, reason: `forward[${i}]: ${r.reason}` };
        return;
      }
      // A 400 was logged with its count (reportRefused).
      if (r.status !== 400) reportOncePerMinute(`${i} ${r.status ?? ''}`, () => new CollectorError(`forwarding to ${describeTarget(forward[i]!, i)} failed: ${r.reason}`));
      const name = failureForSender(r, i);
      if (isTargetFailure(r)) {
        const afterSec = r.retryAfterMs !== undefined ? Math.max(1, Math.ceil(r.retryAfterMs / 1000)) : retryAfterSec;
        if (!out.retry || afterSec > out.retry.afterSec) out.retry = { afterSec, reason: name };
      } else if (r.status === 413) out.tooLarge = name;
      else out.refused.push(name);
    });
    return out;
  };

  /**
   * One request's share of `maxBytesInFlight`, given back when it is answered, or when the
   * forward exports it started (`until`) have settled, if that is later.
   */
  const lease = (client: string | undefined): Lease => {
    let held = 0;
    const exports: Promise<unknown>[] = [];
    const free = (): void => {
      bytesInFlight -= held;
      if (client !== undefined) {
        const left = clientBytes.get(client)! - held;
        if (left > 0) clientBytes.set(client, left);
        else clientBytes.delete(client);
      }
      held = 0;
    };
    return {
      take(bytes) {
        if (bytesInFlight + bytes > maxBytesInFlight) return false;
        if (client !== undefined) {
          const mine = (clientBytes.get(client) ?? 0) + bytes;
          if (mine > maxBytesPerClient) return false;
          clientBytes.set(client, mine);
        }
        bytesInFlight += bytes;
        held += bytes;
        return true;
      },
      until: (p) => void exports.push(p),
      release() {
        if (!exports.length) return free();
        return Promise.all(exports).then(free);
      },
    };
  };

  /** 503 with `Retry-After`: the sender keeps the batch and sends it again. */
  const unavailable = (reply: Reply, message: string, cors: Record<string, string>, afterSec = retryAfterSec): Response =>
    reply(503, errorBody(UNAVAILABLE, message), { ...cors, 'retry-after': String(afterSec) });

  /**
   * Reads, checks and parses the body of either ingest route: JSON, or on `/v1/traces` binary
   * protobuf (read into the object its JSON form parses to). A Response when refused.
   */
  const readPayload = async (
    request: Request,
    type: string,
    path: string,
    proto: boolean,
    reply: Reply,
    cors: Record<string, string>,
    budget: BodyBudget,
  ): Promise<Response | { parsed: unknown }> => {
    if (type !== JSON_TYPE && type !== 'text/plain' && !proto) {
      const accepted = `application/json${path === '/v1/traces' ? ' or application/x-protobuf' : ''} (or text/plain for beacons)`;
      return reply(415, errorBody(INVALID_ARGUMENT, `content-type must be ${accepted}, got "${type.slice(0, 60)}"`), cors);
    }
    const body = await readBody(request, maxBodyBytes, budget);
    if (!body.ok) {
      if (body.status === 503) return unavailable(reply, body.message, cors);
      return reply(body.status, errorBody(body.status === 413 ? RESOURCE_EXHAUSTED : INVALID_ARGUMENT, body.message), cors);
    }
    if (proto) {
      try {
        return { parsed: readOtlpProtobuf(body.bytes) };
      } catch (error) {
        if (!(error instanceof ProtobufError)) throw error;
        return reply(400, errorBody(INVALID_ARGUMENT, error.message), cors);
      }
    }
    let text: string;
    try {
      text = UTF8.decode(body.bytes);
    } catch {
      return reply(400, errorBody(INVALID_ARGUMENT, 'the body is not valid UTF-8'), cors);
    }
    // An empty protobuf body is an empty message; an empty JSON body is a lost one, not a success.
    if (text === '') return reply(400, errorBody(INVALID_ARGUMENT, 'the body is empty: expected a JSON object'), cors);
    try {
      return { parsed: JSON.parse(text) as unknown };
    } catch (error) {
      return reply(400, errorBody(INVALID_ARGUMENT, `the body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`), cors);
    }
  };

  /** How `keep` went: whether the store kept its records, and the forward targets' refusals. */
  type Kept = { stored: boolean; refused: string[]; rejected: number; partly: string[] };

  /**
   * Stores `save`'s records (if any), then forwards `records`; a Response for failures, or what
   * to put in the success reply. A batch every forward target took was delivered, so a store
   * that failed to keep it costs the local copy only, and the sender is not told to send again.
   */
  const keep = async (
    reply: Reply,
    records: TelemetryRecord[],
    save: (() => unknown) | undefined,
    cors: Record<string, string>,
    budget: Lease,
  ): Promise<Response | Kept> => {
    let storeError: unknown;
    let stored = false;
    if (save) {
      try {
        await save();
        storeFailedAt = storeRefusedAt = undefined;
        stored = true;
      } catch (error) {
        storeError = error;
        storeFailedAt = now();
      }
    }
    const f = await forwardAll(records, budget);
    if (storeError !== undefined) {
      const delivered = forward.length > 0 && !f.retry && !f.tooLarge && f.refused.length === 0;
      if (delivered) unstored += records.length;
      else storeRefusedAt = now();
      // The error's text (paths, SQLite's words) is for the collector's logs, not the sender. A
      // store that stays busy (another writer holds the file) would log every batch.
      reportOncePerMinute('store', () => {
        const missing = unstored ? `; ${unstored} record(s) reached every forward target without a local copy since the last report` : '';
        unstored = 0;
        return new CollectorError(`the store could not take a batch${missing}`, { cause: storeError });
      });
      if (!delivered && !f.retry) return unavailable(reply, 'the store could not take the batch', cors);
    }
    if (f.retry) return unavailable(reply, `forwarding failed, send again later: ${f.retry.reason}`, cors, f.retry.afterSec);
    if (f.tooLarge) return reply(413, errorBody(RESOURCE_EXHAUSTED, `the forward target refused the batch as too large; split it: ${f.tooLarge}`), cors);
    if (f.refused.length && !stored) {
      // Nobody kept it, and sending it again would be refused again.
      return reply(400, errorBody(INVALID_ARGUMENT, `the forward target refused the batch: ${f.refused.join('; ')}`), cors);
    }
    return { stored, refused: f.refused, rejected: f.rejected, partly: f.partly };
  };

  /**
   * What a batch of `total` records lost, `outOfRange` of them outside the store's time window
   * (`why`: how they are), and what the sender is told of it. A record the store kept is not
   * lost, nor one every forward target took: those outside the window go on to the targets,
   * and the sender hears they were not stored, without counting them as rejected.
   */
  const outcome = (kept: Kept, total: number, outOfRange: number, why: string): { lost: number; messages: string[] } => {
    const unstored = kept.stored ? outOfRange : total;
    const forwarded = forward.length > 0 && kept.refused.length === 0;
    // A target's partial rejections are a count: at most that many of those not stored are lost.
    const lost = forwarded ? Math.min(unstored, kept.rejected) : unstored;
    const messages = [
      ...(outOfRange ? [forwarded ? `${outOfRange} ${why}: forwarded, not stored` : `${outOfRange} ${why}`] : []),
      ...(kept.stored ? kept.refused.map((r) => `stored, but a forward target refused it: ${r}`) : []),
      ...(kept.stored ? kept.partly.map((p) => `stored, but ${p}`) : lost ? kept.partly : []),
    ];
    return { lost, messages };
  };

  /**
   * The times the store can keep, for spans and scores alike: none before the retention period
   * (the next prune would delete the record right after acknowledging it, and one 1970 start
   * would stretch its trace over decades) and none more than a day ahead (clocks drift; days do
   * not; and a trace is pruned by its last end, so one ending in 2126 would never be). Such
   * records are refused one by one. Without a store nothing is pruned, and every time passes on.
   */
  const storable = (): { oldest: number; latest: number } => {
    if (!store) return { oldest: Number.NEGATIVE_INFINITY, latest: Number.POSITIVE_INFINITY };
    const t = now();
    return { oldest: retentionMs !== false ? t - retentionMs : Number.NEGATIVE_INFINITY, latest: t + DAY_MS };
  };

  const ingestTraces = async (reply: Reply, parsed: unknown, cors: Record<string, string>, budget: Lease): Promise<Response> => {
    const decoded = decodeOtlp(parsed, options.limits);
    if (!decoded.ok) return reply(400, errorBody(INVALID_ARGUMENT, decoded.message), cors);
    const window = storable();
    const storing = decoded.spans.filter((sp) => sp.startMs >= window.oldest && sp.endMs <= window.latest);
    const outOfRange = decoded.spans.length - storing.length;
    const kept = await keep(reply, decoded.spans, store && storing.length ? () => store.insertSpans(storing) : undefined, cors, budget);
    if (kept instanceof Response) return kept;
    const { lost, messages } = outcome(kept, decoded.spans.length, outOfRange, 'span(s) start before the retention period or end more than a day ahead');
    const rejected = decoded.rejected + lost;
    messages.unshift(...decoded.errors);
    if (rejected === 0 && messages.length === 0) return reply(200, {}, cors);
    return reply(200, { partialSuccess: { rejectedSpans: String(rejected), errorMessage: messages.join('; ').slice(0, 2000) } }, cors);
  };

  const ingestScores = async (parsed: unknown, cors: Record<string, string>, budget: Lease): Promise<Response> => {
    const decoded = decodeScores(parsed);
    if (!decoded.ok) return json(400, errorBody(INVALID_ARGUMENT, decoded.message), cors);
    const window = storable();
    const storing = decoded.scores.filter((sc) => sc.timeMs >= window.oldest && sc.timeMs <= window.latest);
    const outOfRange = decoded.scores.length - storing.length;
    const kept = await keep(json, decoded.scores, store && storing.length ? () => store.insertScores(storing) : undefined, cors, budget);
    if (kept instanceof Response) return kept;
    const { lost, messages } = outcome(kept, decoded.scores.length, outOfRange, 'score(s) dated before the retention period or more than a day ahead');
    return json(200, { accepted: decoded.scores.length - lost, rejected: decoded.rejected + lost, errors: [...decoded.errors, ...messages] }, cors);
  };

  /** Checks the store's file (see TraceStore.check), saying so loudly when it was deleted or replaced. */
  const checkStoreFile = (): boolean => {
    fileCheckedAt = now();
    let problem: string | undefined;
    try {
      problem = store?.check?.();
    } catch (error) {
      report(error);
    }
    if (problem) reportOncePerMinute('file', () => new CollectorError(problem));
    return problem !== undefined;
  };

  /**
   * What `/health` answers. Not ready (`ok: false`, 503) for a minute after the store's failures
   * made the collector send a batch back (a full disk, a file another writer holds: not all its
   * forward targets took it): a probe that takes the collector out of rotation also stops the
   * writes that would show it well again, and must see it ready to try. Not ready either while
   * its file was deleted or replaced under it, which a restart mends. A forward target that
   * fails is the same for every instance: the body says so for monitors, the status does not.
   */
  const health = (): CollectorHealth => {
    const moved = checkStoreFile();
    const refusing = storeRefusedAt !== undefined && now() - storeRefusedAt < LOG_INTERVAL_MS;
    const iso = (t: number) => new Date(t).toISOString();
    const h: CollectorHealth = { ok: !refusing && !moved, store: !!store, forward: forward.length };
    if (storeFailedAt !== undefined) h.storeFailedAt = iso(storeFailedAt);
    if (moved) h.storeFileMoved = true;
    if (forward.length > 0) {
      h.forwarding = targets.map((t, i) => {
        const f: ForwardHealth = { target: `forward[${i}]` };
        if (t.failingSince !== undefined) {
          f.failingSince = iso(t.failingSince);
          f.lastError = t.lastError!;
        }
        if (t.deliveredAt !== undefined) f.lastDeliveredAt = iso(t.deliveredAt);
        if (t.busy.size) f.sending = t.busy.size;
        return f;
      });
    }
    return h;
  };

  const handle = async (request: Request, env: unknown, ctx: unknown): Promise<Response> => {
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return json(400, errorBody(INVALID_ARGUMENT, 'the request URL is not absolute'));
    }
    // The peer as the server knows it (toNodeListener's clientAddress), or as trusted proxies name it.
    let peer = (ctx as { clientAddress?: unknown } | undefined)?.clientAddress as string | undefined;
    if (trustProxy !== false) {
      const proxied = throughProxies(request, url, trustProxy);
      url = proxied.url;
      peer = proxied.client ?? peer;
    }
    const origin = request.headers.get('origin');
    const allowed = origin === null || originAllowed(origin, url);
    if (basePath && !url.pathname.startsWith(basePath + '/')) return unrouted(request, url, origin, allowed);
    let path = url.pathname.slice(basePath.length);
    // A page's endpoint with a trailing slash is the same route, not a 404 that dead-letters every batch.
    if (path === '/v1/traces/' || path === '/v1/scores/') path = path.slice(0, -1);
    const ingest = path === '/v1/traces' || path === '/v1/scores';
    // OTLP/HTTP: the reply's content type is the request's, errors (4xx, 5xx) included.
    const type = mediaType(request);
    const proto = path === '/v1/traces' && request.method === 'POST' && type === PROTOBUF_TYPE;
    const answer = proto ? protobuf : json;
    const api = path === '/api/traces' || path.startsWith('/api/traces/') || path === '/api/stats';
    if (!ingest && !api) {
      if (path === '/health' && (request.method === 'GET' || request.method === 'HEAD')) {
        const h = health();
        return json(h.ok ? 200 : 503, h);
      }
      return unrouted(request, url, origin, allowed);
    }

    // A page of an origin not allowed to send still gets to read its 403 (the CORS headers name
    // it): otherwise the browser shows it only a network error, and the SDK retries what it can
    // never send, with nothing to tell the mistake by. The POST itself is refused either way.
    const cors = allowed || ingest ? corsHeaders(origin) : {};
    if (request.method === 'OPTIONS') {
      if ((!allowed && !ingest) || !origin) return new Response(null, { status: allowed ? 204 : 403, headers: { vary: 'origin' } });
      return preflight(request, cors, ingest ? 'POST, OPTIONS' : 'GET, OPTIONS');
    }
    if (!allowed) {
      // Both spellings of the one setting: createCollector()'s option and edgetrace collect's flag.
      let why = 'allowedOrigins (--allow-origin of edgetrace collect) does not list it';
      // A page sending to its own origin, proxied on to the collector (a Next.js rewrite, a dev
      // server's proxy): the proxy names the page's host, which only a trusted proxy may do.
      // Told when one trusted proxy would let it in, as `throughProxies` reads it.
      if (trustProxy === false && request.headers.has('x-forwarded-host') && originAllowed(origin!, throughProxies(request, url, 1).url)) why += '; it came through a proxy for that host (X-Forwarded-Host): trustProxy (--trust-proxy 1) lets in a page of the proxy\'s own origin';
      logRefusal(403, origin, why);
      return answer(403, errorBody(PERMISSION_DENIED, `origin ${origin!.slice(0, 200)} is not allowed to use this collector: ${why}`), { vary: 'origin', ...cors });
    }

    if (api) {
      if (request.method !== 'GET' && request.method !== 'HEAD') return json(405, errorBody(UNIMPLEMENTED, 'use GET'), { ...cors, allow: 'GET, OPTIONS' });
      if (readToken === undefined) {
        return json(403, errorBody(PERMISSION_DENIED, 'the query API is off: create the collector with a readToken (or readToken: false for local development)'), cors);
      }
      if (readToken === false) {
        // Any site a browser on this machine opens comes from this machine too: "*" lets pages
        // send, and never lets other origins read an open API. A listed origin may.
        if (origin !== null && origin !== url.origin && origins === '*') {
          return json(403, errorBody(PERMISSION_DENIED, `the open query API (readToken: false) does not answer other origins through allowedOrigins "*": list ${origin.slice(0, 200)} in allowedOrigins, or give a readToken`), { vary: 'origin' });
        }
        // Open means this machine only. A page on another site can rename itself to 127.0.0.1
        // (DNS rebinding) and read a loopback server as its own origin; its requests still name
        // its own host, which is how they are told apart.
        if (!isLoopbackHost(url.hostname)) {
          return json(403, errorBody(PERMISSION_DENIED, `the open query API (readToken: false) answers requests to localhost, 127.0.0.1 or [::1] only, not ${url.hostname.slice(0, 100)}; give a readToken to serve others`), cors);
        }
        // The host name is the client's to write: another machine can send `Host: localhost`.
        // Where the server knows the peer (toNodeListener's clientAddress), it must be this machine.
        if (typeof peer === 'string' && !isLoopbackAddress(peer)) {
          return json(403, errorBody(PERMISSION_DENIED, `the open query API (readToken: false) answers this machine only, not ${peer.slice(0, 100)}; give a readToken to serve others`), cors);
        }
      } else {
        const token = tokenOf(request);
        if (!token || !sameSecret(token, readToken)) {
          return json(401, errorBody(UNAUTHENTICATED, 'the query API needs the read token (Authorization: Bearer …)'), { ...cors, 'www-authenticate': 'Bearer' });
        }
      }
      if (!store) return json(404, errorBody(NOT_FOUND, 'this collector has no store to query'), cors);
      const reply = await serveApi(store, path, url.searchParams);
      return reply ? json(reply.status, reply.body, cors) : json(404, errorBody(NOT_FOUND, `nothing at ${path.slice(0, 200)}`), cors);
    }

    if (request.method !== 'POST') return answer(405, errorBody(UNIMPLEMENTED, 'use POST'), { ...cors, allow: 'POST, OPTIONS' });
    // Who sends, for the rate limit and the share of bytes in flight; unknown on Deno and Bun
    // without clientKey (one bucket for all, and no share of its own).
    let client: string | undefined;
    try {
      client = options.clientKey?.(request, env, ctx);
    } catch (error) {
      report(error);
    }
    client ??= peer;
    // cf-connecting-ip is the client only behind Cloudflare (which sets request.cf); anywhere
    // else a client writes it itself, and a new value each time would never be limited.
    if ((request as { cf?: unknown }).cf) client ??= request.headers.get('cf-connecting-ip') ?? undefined;
    if (client !== undefined) client = String(client);
    if (limiter) {
      const decision = limiter.take(client ?? 'anonymous');
      if (!decision.ok) {
        await request.body?.cancel().catch(() => undefined);
        return answer(429, errorBody(RESOURCE_EXHAUSTED, `too many requests from this client; retry after ${decision.retryAfterSec} s`), {
          ...cors,
          'retry-after': String(decision.retryAfterSec),
        });
      }
    }
    if (ingestTokens.length) {
      const token = tokenOf(request, url);
      if (!token || !ingestTokens.some((t) => sameSecret(token, t))) {
        logRefusal(401, origin, token ? 'a wrong ingest token' : 'no ingest token (Authorization: Bearer, x-edgetrace-token or ?token=)');
        await request.body?.cancel().catch(() => undefined);
        return answer(401, errorBody(UNAUTHENTICATED, 'missing or wrong ingest token'), { ...cors, 'www-authenticate': 'Bearer' });
      }
    }
    const budget = lease(client);
    const waitUntil = findWaitUntil(env, ctx);
    let response: Response;
    try {
      const read = await readPayload(request, type, path, proto, answer, cors, budget);
      if (read instanceof Response) response = read;
      else response = path === '/v1/traces' ? await ingestTraces(answer, read.parsed, cors, budget) : await ingestScores(read.parsed, cors, budget);
    } finally {
      // Once every forward export this request started has settled (already, unless the sender was
      // told to retry while one ran on). On Workers that must be waited for, or the isolate may
      // stop the export and its answer goes unheard.
      const exporting = budget.release();
      if (exporting) waitUntil?.(exporting);
    }
    if (response.status === 200 || storeFailedAt !== undefined) maybePrune(waitUntil);
    if (store?.check && now() - fileCheckedAt >= LOG_INTERVAL_MS) checkStoreFile();
    return response;
  };

  return {
    store,
    async fetch(request, env, ctx) {
      try {
        return await handle(request, env, ctx);
      } catch (error) {
        report(error);
        try {
          return json(500, errorBody(INTERNAL, 'the collector failed on this request'));
        } catch {
          return new Response('collector error', { status: 500 });
        }
      }
    },
    prune,
    health,
    async close() {
      await Promise.all(forward.map((e) => Promise.resolve(e.shutdown?.()).catch(report)));
      await Promise.resolve(store?.close()).catch(report);
    },
  };
};
