import type {
  AttributeValue,
  Attributes,
  ObservationType,
  ScoreRecord,
  SpanEventRecord,
  SpanKind,
  SpanLinkRecord,
  SpanRecord,
  SpanStatus,
  StatusCode,
} from '../protocol';
import type { ResolvedConfig } from '../config';
import type { ContextManager } from './context';
import type { SpanContext } from '../propagation/traceparent';
import type { Baggage } from '../propagation/baggage';
import { FLAG_SAMPLED, formatTraceparent, isValidSpanId, isValidTraceId } from '../propagation/traceparent';
import { parseTracestate } from '../propagation/tracestate';
import { newId, newSpanId } from '../lib/ids';
import { safeJson } from '../lib/safeJson';
import { cutAt, textScoreValue } from '../lib/cutAt';
import { cutJson } from '../lib/cutJson';
import { isTime } from '../lib/now';
import { wellFormed } from '../lib/wellFormed';
import { isPrimitiveList } from '../lib/isPrimitiveList';
import { setOwn } from '../lib/setOwn';
import { reportInternal, warnOnce } from '../lib/reportInternal';
import { isAbortError } from '../lib/isAbortError';
import { mayHoldSecret, redactQueryValues, redactSecrets, redactUrl, redactUrlsIn } from './redact';
import { baseUsageType, computeCost, findPrice, type Cost, type Usage } from './cost';
import * as A from './semconv';

/**
 * What spans share with their tracer. Internal: spans call it, users never see it.
 */
export interface TracerCore {
  readonly cfg: ResolvedConfig;
  readonly ctx: ContextManager;
  readonly resource: SpanRecord['resource'];
  /** Redacted strings by kind (plain, URL, query): see {@link RedactMemo}. */
  readonly memo: RedactMemo;
  now(): number;
  started(span: Span): void;
  emit(span: Span): void;
  emitScore(score: ScoreRecord): void;
}

/** What the spans of one trace share within this process. */
export interface TraceShared {
  readonly core: TracerCore;
  /** First of the spans started and not yet ended (a linked list through `prev`/`next`), so `finish()` can end them. */
  head?: Span;
  userId?: string;
  sessionId?: string;
  tags?: Set<string>;
  /**
   * `tags` as every span stores them, cleaned once, and how many of them were cut (each span
   * counts those in its own `edgetrace.truncated`); reset by `addTag()`.
   */
  cleanTags?: [tags: string[], cut: number];
  /**
   * The root's trace-level attributes every span of the trace carries (name, release, short
   * metadata), cleaned: see `Trace.share()`.
   */
  shared?: Attributes;
  /** The trace's own environment, when it overrides the tracer's: its spans and scores carry it. */
  environment?: string;
  /** W3C baggage its outgoing requests carry; replaced, never changed in place (tracers share one). */
  baggage?: Baggage;
  /** Whether a score was sent for the trace (an interaction that has one is not discarded). */
  scored?: boolean;
}

/** @internal The baggage of `span`'s trace, for the instrumentations that inject headers. */
export const baggageOf = (span: Span): Baggage | undefined => span[kT].baggage;

/** Options for starting a span. */
export interface SpanOptions {
  /** OpenTelemetry span kind. Default `internal`. */
  kind?: SpanKind | undefined;
  /** Langfuse observation type. Default `span`. */
  type?: ObservationType | undefined;
  /** Attributes to set at start. */
  attributes?: Record<string, unknown> | undefined;
  /** Input of the operation (`langfuse.observation.input`). */
  input?: unknown | undefined;
  /** Start time in epoch ms. Default now. */
  startMs?: number | undefined;
  /** Links to other spans. */
  links?: Array<{ context: SpanContext; attributes?: Attributes }> | undefined;
}

/** Options for a generation (an LLM call). */
export interface GenerationOptions extends Omit<SpanOptions, 'type'> {
  /** Model name, e.g. `gpt-4o`; also selects the price for cost. */
  model?: string | undefined;
  /**
   * Model parameters such as temperature (`langfuse.observation.model.parameters`); the ones
   * OpenTelemetry names are also `gen_ai.request.*`: `temperature`, `top_p`, `top_k`,
   * `max_tokens` (or `max_completion_tokens`, `max_output_tokens`), `frequency_penalty`,
   * `presence_penalty`, `seed` and `stop` (as `stop_sequences`).
   */
  modelParameters?: Record<string, unknown> | undefined;
  /** `gen_ai.operation.name`: `chat` (the default), `text_completion`, `embeddings`, … */
  operation?: string | undefined;
  /** `gen_ai.provider.name`, e.g. `openai`, `anthropic`, `aws.bedrock`. */
  provider?: string | undefined;
  /** The Langfuse prompt this call used, which links it to the prompt's version: see {@link Generation.setPrompt}. */
  prompt?: PromptRef | undefined;
}

/**
 * A Langfuse prompt version: its name and version number. A prompt object from Langfuse's own
 * client (`getPrompt()`) has this shape and can be passed as it is.
 */
export interface PromptRef {
  name: string;
  /** The version number, from 1. */
  version: number;
  /** Set by Langfuse's client when it served its fallback text, which no prompt version holds: not linked. */
  isFallback?: boolean;
}

/** Model parameters that OpenTelemetry's GenAI conventions name `gen_ai.request.<name>` as they are. */
const REQUEST_PARAMS = ['temperature', 'top_p', 'top_k', 'max_tokens', 'frequency_penalty', 'presence_penalty', 'seed'];

/** What a `mask` hook is given: an input, an output, or one metadata entry's value. */
export type MaskField = 'input' | 'output' | 'metadata';

/** The longest score metadata, as JSON, that the collector takes (`decodeScores`). */
const MAX_SCORE_METADATA = 16_384;

/** Langfuse's observation levels, from least to most severe. */
export type ObservationLevel = 'DEBUG' | 'DEFAULT' | 'WARNING' | 'ERROR';

/** Score options: free-text comment, metadata, explicit data type and Langfuse score config. */
export interface ScoreOptions {
  /**
   * The score's own id. Scoring again with the same id replaces that score in Langfuse and the
   * collector's store, rather than adding one: a thumbs-up the user turns into a thumbs-down.
   * Default a new id per call.
   */
  id?: string | undefined;
  comment?: string | undefined;
  /** `TEXT` values are cut to 500 characters, Langfuse's limit; an empty one is not recorded. */
  dataType?: ScoreRecord['dataType'] | undefined;
  /**
   * Entries shown with the score in Langfuse (the evaluator's model, the rubric): through `mask`,
   * redacted and cut like span metadata, objects stored as JSON text. Entries past 16,384
   * characters of JSON in all, the collector's bound, are left out (counted as cut).
   */
  metadata?: Record<string, unknown> | undefined;
  /**
   * The id of a Langfuse score config. Langfuse then checks the score against it: the name must
   * be the config's, the value within its range or one of its categories. A score that does not
   * match is refused for good, as Langfuse answers it.
   */
  configId?: string | undefined;
}

/**
 * @internal The cost of `usage` by `model` at the prices of `span`'s tracer: undefined without
 * prices, usage or a model name, or when nothing in `usage` has a price.
 */
export const priceOf = (span: Span, model: unknown, usage: Usage | undefined): Cost | undefined => {
  const prices = span[kT].core.cfg.prices;
  const price = prices && usage && typeof model === 'string' ? findPrice(prices, model) : undefined;
  return price && computeCost(usage!, price);
};

/** @internal A cost's attributes (`cost_details`, `gen_ai.usage.cost`), written on a span still recording. */
export const writeCostAttrs = (span: Span, cost: Cost): void => {
  span.write(A.COST_DETAILS, JSON.stringify(cost));
  if (cost.total !== undefined) span.write(A.GEN_AI_COST, cost.total);
};

/** Rarely needed per-span state, allocated on first use to keep spans small. */
interface SpanExtras {
  droppedAttrs: number;
  droppedEvents: number;
  droppedLinks: number;
  truncated: number;
}

// Shared, frozen defaults: most spans have no events, links or status, and allocating them per
// span is a large part of the tracer's garbage.
const UNSET: SpanStatus = Object.freeze({ code: 'unset' });
const NONE = Object.freeze([]) as unknown as never[];

/**
 * Only a real promise is awaited for a span's end. Other thenables are often lazy (a query builder
 * of Knex, Drizzle or Prisma runs when `then()` is called): calling `then()` would run the query
 * early and hand the caller back a plain promise instead of the builder. They are returned as is.
 */
export const isPromise = (v: unknown): v is Promise<unknown> => {
  if (v instanceof Promise) return true;
  if (v === null || typeof v !== 'object') return false;
  // A promise of another realm, or a native one where the page replaced the global Promise
  // (zone.js, polyfills): an async function still returns a real promise.
  try {
    return Object.prototype.toString.call(v) === '[object Promise]';
  } catch {
    return false;
  }
};

// Attribute keys whose values are URLs: their query values are redacted by default.
const URL_KEYS = new Set(['url.full', 'http.url', 'url.query', 'http.target', 'server.url']);
// Text that quotes URLs it did not choose to (an error message, a stack trace whose frames name
// the page's URL, a status message): every absolute URL in it is redacted as a URL. Strings
// cleaned without a key (span, event and score names, score comments) count as such text.
const TEXT_KEYS = new Set([A.EXCEPTION_MESSAGE, A.EXCEPTION_STACKTRACE, A.OBSERVATION_STATUS_MESSAGE]);

/**
 * Redacted strings, per tracer: the same values come back on span after span (the URLs an app
 * calls, the session id), and running every secret pattern over them each time was about a fifth
 * of an HTTP span's cost. Bounded in count and length; each map starts over when full.
 */
export type RedactMemo = [plain: Map<string, string>, url: Map<string, string>, query: Map<string, string>, text: Map<string, string>, names: Set<string>];
const MAX_MEMO_STRINGS = 256;
const MAX_MEMO_CHARS = 2048;
// Longer than any secret the default patterns find (a JWT runs to a few thousand characters).
const REDACT_MARGIN = 8192;

/**
 * How `s`, the value of `key`, is redacted as a URL, unless `redact` is false: 1 a URL, 2 a bare
 * query (`url.query`, without its `?`), 3 text quoting URLs; 0 not as a URL.
 */
const urlKind = (s: string, key: string | undefined, cfg: ResolvedConfig): 0 | 1 | 2 | 3 =>
  !cfg.redactQuery ? 0 : key !== undefined && URL_KEYS.has(key) ? (key === 'url.query' ? 2 : 1) : (key === undefined || TEXT_KEYS.has(key)) && (s.includes('://') || s.includes('?')) ? 3 : 0;

/**
 * For a URL (`kind` 1), a bare query (2) or text quoting URLs (3) their query values and
 * fragments, then secret patterns. URLs first: a `token=` value runs to the next `&`, so a
 * pattern would take a fragment's `#` with it and leave the fragment's other values as a query's.
 */
const redact = (value: string, kind: 0 | 1 | 2 | 3, cfg: ResolvedConfig): string =>
  redactSecrets(
    kind === 1 ? redactUrl(value, cfg.keepQueryKeys) : kind === 3 ? redactUrlsIn(value, cfg.keepQueryKeys) : kind === 2 ? redactQueryValues(value, cfg.keepQueryKeys) : value,
    cfg.secretPatterns,
  );

/** What one thrown value is; `named` when its message already names its class (an object that is not an Error). */
type ErrorParts = { type: string; message: string; stack?: string | undefined; named?: boolean };

/** How many keys of a thrown object that is not an Error are named. */
const MAX_KEYS = 10;

// A message longer than this is shortened where it heads a stack (V8 starts `stack` with it):
// an HTML error page thrown as a message would otherwise take the frames' room.
const STACK_MESSAGE = 1024;

/** The type, message and stack of one thrown value. */
const partsOf = (error: unknown): ErrorParts => {
  if (error === null || typeof error !== 'object') return { type: typeof error, message: safeJson(error) };
  const { name, message, stack } = error as { name?: unknown; message?: unknown; stack?: unknown };
  // A rejected Response or Event, a plain object: named by its class and keys. Not its values:
  // such an object is often an API's answer, with the customer's data in it.
  if (!(error instanceof Error) && typeof message !== 'string') {
    const type = error.constructor?.name || 'Object';
    const keys = Object.keys(error);
    // An event says what happened by its type (an image's `error`, a socket's `close`).
    const event = typeof Event === 'function' && error instanceof Event;
    return {
      type,
      message: event ? `${type} "${error.type}"` : keys.length ? `${type} with keys: ${keys.slice(0, MAX_KEYS).join(', ')}${keys.length > MAX_KEYS ? ', …' : ''}` : type,
      named: true,
    };
  }
  const type = typeof name === 'string' && name ? name : 'Error';
  const text = String(message);
  const head = `${type}: ${text}`;
  return {
    type,
    message: text,
    stack: typeof stack !== 'string' ? undefined : text.length > STACK_MESSAGE && stack.startsWith(head) ? `${head.slice(0, type.length + 2 + STACK_MESSAGE)}…${stack.slice(head.length)}` : stack,
  };
};

/** `label`, then what `error` is and its frames, for a stack of what wraps it. */
const nested = (label: string, error: unknown): string => {
  const { type, message, stack, named } = partsOf(error);
  const head = named ? message : `${type}: ${message}`;
  return `\n${label}${stack?.startsWith(type) ? stack : `${head}${stack ? `\n${stack}` : ''}`}`;
};

/**
 * The type, message and stack of any thrown value, for an `exception` event; never throws. What
 * the error wraps follows its stack, as OpenTelemetry Java writes it: the `cause` chain, three
 * deep ("Caused by: "), and the first five errors of an `AggregateError` ("Includes: ").
 */
export const errorParts = (error: unknown): ErrorParts => {
  let parts: ErrorParts;
  try {
    parts = partsOf(error);
  } catch {
    // A getter or a (revoked) proxy that throws: the span still records that it failed.
    return { type: 'Error', message: '[unreadable error]' };
  }
  let more = '';
  try {
    const inner = (error as { errors?: unknown } | null)?.errors;
    if (Array.isArray(inner)) for (const e of inner.slice(0, 5)) more += nested('Includes: ', e);
    let e = error as { cause?: unknown } | null | undefined;
    for (let depth = 0; depth < 3 && e !== null && typeof e === 'object' && e.cause !== undefined; depth++) more += nested('Caused by: ', (e = e.cause as typeof e));
  } catch {
    // What it wraps could not be read: the error itself is recorded.
  }
  if (more) parts.stack = (parts.stack ?? `${parts.type}: ${parts.message}`) + more;
  return parts;
};

/** Errors already recorded on a span, which a page's global handler then need not record again. */
const recorded = new WeakSet<object>();

/** Whether `error` (an object) was recorded on a span by `recordError()`. */
export const wasRecorded = (error: unknown): boolean => error !== null && typeof error === 'object' && recorded.has(error);

/**
 * Calls `fn` with each own enumerable key of `obj` and its value. A value whose getter throws is
 * reported and skipped: the caller's other keys are still recorded.
 */
export const eachEntry = (obj: object, fn: (key: string, value: unknown) => void): void => {
  for (const key of Object.keys(obj)) {
    let value: unknown;
    try {
      value = (obj as Record<string, unknown>)[key];
    } catch (error) {
      reportInternal(error);
      continue;
    }
    fn(key, value);
  }
};

/**
 * Records why an operation stopped: an `AbortError` (`controller.abort()`: a "stop generating"
 * click) is the caller's choice, marked `edgetrace.cancelled` with the status message
 * "cancelled" that Langfuse shows, not an error; anything else is an error.
 */
export const recordFailure = (span: Span, error: unknown): void => {
  // An unreadable error is recorded as one.
  if (isAbortError(error)) markCancelled(span);
  else recordThrown(span, error);
};

/**
 * Per error object, the spans it failed, by their parents (`traceId:parentId`): a span it then
 * leaves is one of them. Bounded: an error object thrown in many places at once (a cached
 * rejection) forgets the older ones, which then record it again.
 */
const failedIn = new WeakMap<object, Set<string>>();

/** Notes that `error` failed `span`, for the parent it leaves next (see {@link recordThrown}). */
const noteFailed = (span: Span, error: object): void => {
  let parents = failedIn.get(error);
  if (!parents || parents.size >= 64) failedIn.set(error, (parents = new Set()));
  parents.add(`${span.traceId}:${span.parentId}`);
};

/**
 * Records `error`, thrown out of `span`: its exception event, unless it comes up from a child
 * span that recorded it (a tool's error out of the agent's span). Then `span` fails with its
 * message, and the event, with the stack, stays on the span it came from. The same error object
 * thrown again elsewhere (a cached rejection, a sibling awaiting the same promise) is recorded
 * again there.
 */
export const recordThrown = (span: Span, error: unknown): void => {
  if (error !== null && typeof error === 'object' && failedIn.get(error)?.has(`${span.traceId}:${span.spanId}`)) {
    span.setStatus('error', errorParts(error).message);
    noteFailed(span, error);
  } else span.recordError(error);
};

/** Marks `span` as cancelled by the caller: `edgetrace.cancelled` and the status message Langfuse shows. */
export const markCancelled = (span: Span): void => {
  span.setAttribute(A.CANCELLED, true);
  span.setAttribute(A.OBSERVATION_STATUS_MESSAGE, 'cancelled');
};

/**
 * @internal Response bodies the page follows for spans, set by the fetch instrumentation:
 * `held(span, value)`, when `value` (what a generation's callback resolved with) is a response
 * whose body is followed for that generation, resolves with the end time of that body's read,
 * which the generation's end waits for; `settle(span)` ends a request span whose body is still
 * followed through that follow (complete at the stream's last event, else unfinished with what it
 * counted), and says whether it did.
 */
export const follows: { held?(span: Span, value: unknown): Promise<number | undefined> | undefined; settle?(span: Span): boolean } = {};

/**
 * For each generation, the model streams its requests are reading: how many, the latest end time
 * of those that ended, what ends the generation once they all have (set when its callback
 * returned while they read), and the wait for a stream object's request to start (see `endAfter`).
 */
const reads = new WeakMap<Span, { n: number; endMs?: number; then?: (endMs?: number) => void; wait?: () => void; arm?: (ms: number) => void; busy?: number }>();

/**
 * How long a generation whose callback gave back a stream object that has not made its request
 * yet (Anthropic's `messages.stream()`, returned before its call goes out) waits for that
 * request to start. The wait pauses while one is under way, and starts again after an answer
 * that is no model stream: for STREAM_RETRY_MS after a failure (a 429 or a 5xx an SDK retries
 * after a pause of up to several seconds).
 */
export const STREAM_START_MS = 1000;
/** See {@link STREAM_START_MS}. */
export const STREAM_RETRY_MS = 10_000;

/**
 * @internal Tells that a request of generation `gen` reads a model stream (SSE, streamed JSON
 * lines or text): a callback of `gen` that returns while it reads (an SDK's stream object,
 * returned at the headers) ends `gen` with the read. Call the returned function once, when the
 * read ends, with its end time (later calls do nothing); give it only for a read under a watch that ends.
 */
export const readsStream = (gen: Span): ((endMs?: number) => void) => {
  const r = reads.get(gen) ?? { n: 0 };
  reads.set(gen, r);
  r.n++;
  let done = false;
  const release = (endMs?: number): void => {
    if (done) return;
    done = true;
    if (endMs! > (r.endMs ?? 0)) r.endMs = endMs;
    // At once, not a microtask later: code that reads to the end and then finishes the trace
    // finds the generation ended, not open and cut short.
    if (!--r.n) r.then?.(r.endMs);
  };
  // The stream a stream object's generation waited for has started: this read holds it now.
  r.wait?.();
  return release;
};

/**
 * @internal Tells that a request of generation `gen` is being made: while its callback's stream
 * object waits for its request (see `endAfter`), the wait pauses until the answer's headers (or
 * its failure), when the returned function must be called (with true for an error status or a
 * failure), after `readsStream` for an answer that is a model stream.
 */
export const requestStarts = (gen: Span): ((failed?: boolean) => void) | undefined => {
  const r = reads.get(gen);
  if (!r?.arm) return undefined;
  r.busy = (r.busy ?? 0) + 1;
  r.arm(0);
  let done = false;
  return (failed) => {
    if (done) return;
    done = true;
    if (!--r.busy!) r.arm?.(failed ? STREAM_RETRY_MS : STREAM_START_MS);
  };
};

/**
 * Ends `span`, whose callback gave `value`: at once, or when what it waits for is done. That is
 * the body of the response it gave (`follows.held`), or the model streams its requests still
 * read; or, for a generation that gave a stream object whose request has not started (made as
 * it returned), that request's stream if the request goes out in time (see STREAM_START_MS),
 * else the callback's end.
 */
const endAfter = (span: Span, value: unknown): void => {
  try {
    const held = follows.held?.(span, value);
    if (held) return void held.then((endMs) => span.end(endMs));
    let r = reads.get(span);
    if (!r?.n && span instanceof Generation && typeof (value as { [Symbol.asyncIterator]?: unknown } | null)?.[Symbol.asyncIterator] === 'function') {
      const release = readsStream(span);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const w = (r = reads.get(span)!);
      // Waits `ms` (0: paused while a request is under way).
      w.arm = (ms) => {
        clearTimeout(timer);
        if (ms) (timer = setTimeout(() => w.wait?.(), ms) as { unref?: () => void } & ReturnType<typeof setTimeout>).unref?.();
      };
      w.wait = () => {
        w.wait = w.arm = undefined;
        clearTimeout(timer);
        release();
      };
      w.arm(STREAM_START_MS);
    }
    if (r?.n) {
      // Never before the callback's own end: a read left unread ends at its headers, which came first.
      const at = span[kT].core.now();
      r.then = (endMs) => span.end(endMs! > at ? endMs : at);
    } else span.end();
  } catch (error) {
    // A value whose properties throw when read (a Proxy): the span ends at once.
    reportInternal(error);
    span.end();
  }
};

/**
 * @internal Ends `span` if it only waits for a stream object's request to start (see
 * `endAfter`): its trace is ending, and it ends at its callback's end. Says whether it ended.
 */
export const endWaiting = (span: Span): boolean => {
  reads.get(span)?.wait?.();
  return span.isEnded;
};

/**
 * Tells the span's context that a callback run with `span` current returned a promise (see
 * `ContextManager.awaiting`): a page's context keeps it the parent of what starts after its awaits.
 */
export const tellAwaiting = (span: Span): void => {
  try {
    span[kT].core.ctx.awaiting?.(span);
  } catch (error) {
    reportInternal(error);
  }
};

/**
 * Runs `fn` with `span` current, ends the span when `fn` returns or its promise settles, and
 * records a throw or rejection (see {@link recordFailure}) before passing it on unchanged. A
 * generation whose callback resolves with the model's response (`() => fetch(…)`), or with anything
 * while one of its requests still reads a model stream (an SDK's stream object, returned at the
 * headers), ends when that body has been read, so its first-token time and usage land on it.
 */
export const runInSpan = <S extends Span, R>(span: S, fn: (span: S) => R): R => {
  const ctx = span[kT].core.ctx;
  if (typeof fn !== 'function') {
    // A plain-JS caller that forgot the callback: the span is kept, the call returns nothing.
    reportInternal(new TypeError(`[edgetrace] span "${span.name}": the callback must be a function`));
    span.end();
    return undefined as R;
  }
  let result: R;
  try {
    result = ctx.with(span, () => fn(span));
  } catch (error) {
    recordFailure(span, error);
    span.end();
    throw error;
  }
  if (isPromise(result)) {
    tellAwaiting(span);
    return result.then(
      (value) => {
        endAfter(span, value);
        return value;
      },
      (error: unknown) => {
        recordFailure(span, error);
        span.end();
        throw error;
      },
    ) as R;
  }
  // A stream object made at once (Anthropic's `messages.stream()`): its request has yet to start.
  if (typeof result === 'object' && result !== null && span instanceof Generation) endAfter(span, result);
  else span.end();
  return result;
};

// Keys of a span's internal state. Structured clone, JSON.stringify and Object.keys all skip
// symbol keys, so the span object itself is the plain record its processors receive and that
// crosses postMessage: ending a span allocates no second object.
/** @internal Global, so that a copy of edgetrace loaded apart (vitals beside the script tag) reads another copy's traces. */ export const kT = Symbol.for('edgetrace.trace');
/** @internal */ export const kX = Symbol('extras');
/** @internal */ export const kPrev = Symbol('prev');
/** @internal */ export const kNext = Symbol('next');
/** @internal */ export const kWrites = Symbol('writes');

/**
 * One timed operation. A span records only when its trace is sampled; otherwise every method is
 * a cheap no-op but ids still propagate. No method throws.
 *
 * A span is its own record: the `SpanRecord` fields are plain own properties, filled in while it
 * runs and handed to processors when it ends. Read them; change them only through the methods.
 * A class rather than closures: thousands of spans share one prototype.
 */
export class Span implements SpanRecord {
  // Fields are `declare`d and set in the constructor, so each is written once, in one order.
  declare readonly v: 1;
  declare readonly rec: 'span';
  /** 32 lowercase hex. */
  declare readonly traceId: string;
  /** 16 lowercase hex. */
  declare readonly spanId: string;
  /** The parent's span id; undefined for the first span of a trace in this process. */
  declare readonly parentId: string | undefined;
  /** W3C trace flags (bit 0 sampled, bit 1 random). */
  declare readonly flags: number;
  declare name: string;
  declare readonly kind: SpanKind;
  /** Epoch milliseconds. */
  declare readonly startMs: number;
  /** Epoch milliseconds; 0 until the span ends (so also: whether it ended). */
  declare endMs: number;
  // The record's own fields (a span is the SpanRecord processors receive): read them; write
  // through setAttribute(), recordEvent(), addLink() and setStatus(), which apply the limits.
  /** The attributes so far. Use setAttribute() to change them. */ declare attrs: Attributes;
  /** The events so far. Use recordEvent(). */ declare events: SpanEventRecord[];
  /** The links. */ declare links: SpanLinkRecord[];
  /** The status. Use setStatus(). */ declare status: SpanStatus;
  /** The tracer's resource and scope. */ declare readonly resource: SpanRecord['resource'];
  declare readonly traceState?: string;
  /** True when the parent came from another process. */
  declare readonly remoteParent?: boolean;
  /** @internal */ declare dropped?: NonNullable<SpanRecord['dropped']>;
  /** @internal */ declare [kT]: TraceShared;
  /** @internal */ declare [kX]: SpanExtras | undefined;
  /** @internal Neighbours in the trace's list of open spans. */
  declare [kPrev]: Span | undefined;
  /** @internal */ declare [kNext]: Span | undefined;
  /** @internal Attribute writes left before the exact attribute count must be taken (`maxAttributes` at start). */
  declare [kWrites]: number;

  /** Not for apps: use `trace.span()`, `span.startSpan()` or `tracer.startSpan()`. */
  constructor(
    t: TraceShared,
    name: string,
    opts: SpanOptions | undefined,
    parent: { traceId: string; spanId?: string; flags: number; traceState?: string; remote?: boolean },
  ) {
    const flags = parent.flags;
    (this as { v: 1 }).v = 1;
    (this as { rec: 'span' }).rec = 'span';
    this.traceId = parent.traceId;
    this.spanId = newSpanId();
    this.parentId = parent.spanId;
    this.flags = flags;
    this.name = typeof name === 'string' && name ? name : 'span';
    this.kind = opts?.kind ?? 'internal';
    // A start time must be a positive epoch time: `endMs` stays 0 only while the span is open.
    const startMs = opts?.startMs;
    this.startMs = isTime(startMs) ? startMs : t.core.now();
    this.endMs = 0;
    this.attrs = {};
    this.events = NONE;
    this.links = NONE;
    this.status = UNSET;
    this.resource = t.core.resource;
    if (parent.traceState) (this as { traceState?: string }).traceState = parent.traceState;
    if (parent.remote) (this as { remoteParent?: boolean }).remoteParent = true;
    this[kT] = t;
    this[kX] = undefined;
    this[kPrev] = undefined;
    const head = t.head;
    if (head) head[kPrev] = this;
    this[kNext] = head;
    t.head = this;
    this[kWrites] = t.core.cfg.maxAttributes;
    if (!(flags & FLAG_SAMPLED)) return;
    // Names are redacted and cut like any string: an app may put a URL or a token in one.
    this.name = this.cleanName(this.name);
    // Linked into the trace by now: options that throw when read are reported, not thrown.
    try {
      const type = opts?.type;
      if (type && type !== 'span') this.write(A.OBSERVATION_TYPE, type);
      if (opts) {
        if (opts.attributes) this.setAttributes(opts.attributes);
        if (opts.input !== undefined) this.setInput(opts.input);
        // Links are the caller's data: anything that is not a list of { context } is left out.
        if (Array.isArray(opts.links)) for (const l of opts.links) if (l) this.addLink(l.context, l.attributes);
      }
    } catch (error) {
      reportInternal(error);
    }
    t.core.started(this);
  }

  /** @internal Ends the span with no record: an interaction that turned out to be nothing. */
  discard(): void {
    if (this.endMs !== 0) return;
    (this as { flags: number }).flags &= ~FLAG_SAMPLED;
    this.end();
  }

  /** Whether this span produces a record (its trace is sampled). */
  get isRecording(): boolean {
    return (this.flags & FLAG_SAMPLED) === FLAG_SAMPLED;
  }

  /** Langfuse observation type. */
  get type(): ObservationType {
    return (this.attrs[A.OBSERVATION_TYPE] as ObservationType | undefined) ?? 'span';
  }

  /** True once `end()` ran. */
  get isEnded(): boolean {
    return this.endMs !== 0;
  }

  /** The W3C identity of this span, for propagation and links. */
  spanContext(): SpanContext {
    return { traceId: this.traceId, spanId: this.spanId, flags: this.flags, traceState: this.traceState };
  }

  /** The `traceparent` header value that makes this span the parent of a remote call. */
  traceparent(): string {
    return formatTraceparent(this);
  }

  // --- attributes ---

  /**
   * @internal Sets one attribute after limits, truncation and redaction; no-op once ended. `io`:
   * an input or output, cut at `maxIoLength`.
   */
  put(key: string, value: unknown, json?: boolean, io?: boolean): void {
    if (this.endMs === 0 && this.flags & FLAG_SAMPLED) this.write(key, value, json, io);
  }

  /** @internal `put()` without the ended check, for the attributes `end()` adds; `json`: a string that is JSON text. */
  write(key: string, value: unknown, json?: boolean, io?: boolean): void {
    // Strings, numbers and booleans, nearly every attribute, skip clean()'s general case.
    const clean = typeof value === 'string' ? this.cleanString(value, key, json, io) : typeof value === 'number' || typeof value === 'boolean' ? value : this.clean(key, value, io);
    if (clean !== undefined) this.store(key, clean);
  }

  /**
   * @internal Stores an attribute value that is already clean, within `maxAttributes`. What does
   * not fit is counted as dropped, unless `counted` is false (a copy of the trace's, which the
   * span never set).
   */
  store(key: string, clean: AttributeValue, counted = true): void {
    const attrs = this.attrs;
    // Until as many writes as the limit allows, no count is needed: the span cannot be full.
    // Own keys only: `in` also finds what every object inherits, such as `__proto__`.
    if (--this[kWrites] < 0 && !Object.prototype.hasOwnProperty.call(attrs, key) && Object.keys(attrs).length >= this[kT].core.cfg.maxAttributes) {
      if (counted) this.ex().droppedAttrs++;
      return;
    }
    setOwn(attrs, key, clean);
  }

  /**
   * @internal A span name, cleaned as {@link cleanString} cleans it. Names repeat from span to span
   * and most need nothing done: those that came out as they went in, uncut, are remembered, so
   * the next span of that name skips the scans.
   */
  cleanName(name: string): string {
    const plain = this[kT].core.memo[4];
    if (plain.has(name)) return name;
    const clean = this.cleanString(name);
    if (clean === name && name.length <= MAX_MEMO_CHARS) {
      if (plain.size >= MAX_MEMO_STRINGS) plain.clear();
      plain.add(name);
    }
    return clean;
  }

  /** @internal */
  ex(): SpanExtras {
    return (this[kX] ??= { droppedAttrs: 0, droppedEvents: 0, droppedLinks: 0, truncated: 0 });
  }

  /**
   * @internal Redacts and then shortens a string per the tracer's limits; `json` text (an object
   * stored as JSON) is shortened to valid JSON; `io` (an input or output) has its own limit.
   */
  cleanString(value: string, key?: string, json?: boolean, io?: boolean): string {
    const core = this[kT].core;
    const cfg = core.cfg;
    const max = io ? cfg.maxIoLength : cfg.maxStringLength;
    let s = value;
    // A string far past the limit is first cut to the limit plus a margin: enough for a secret
    // that starts before the limit to be found whole, without scanning what the cut drops anyway.
    let cut = s.length > max + REDACT_MARGIN;
    if (cut) s = cutAt(s, max + REDACT_MARGIN);
    const kind = urlKind(s, key, cfg);
    // Redacted before it is cut: a secret cut short could escape the pattern that finds it whole.
    if (kind !== 0 || mayHoldSecret(s, cfg.secretPatterns)) {
      if (s.length > MAX_MEMO_CHARS) s = redact(s, kind, cfg);
      else {
        const known = core.memo[kind];
        let out = known.get(s);
        if (out === undefined) {
          if (known.size >= MAX_MEMO_STRINGS) known.clear();
          known.set(s, (out = redact(s, kind, cfg)));
        }
        s = out;
      }
    }
    if (s.length > max) {
      s = (json ? cutJson : cutAt)(s, max);
      cut = true;
    }
    if (cut) this.ex().truncated++;
    return wellFormed(s);
  }

  private clean(key: string, value: unknown, io?: boolean): AttributeValue | undefined {
    switch (typeof value) {
      case 'string':
        return this.cleanString(value, key, false, io);
      case 'number':
      case 'boolean':
        return value;
      case 'undefined':
        return undefined;
    }
    if (value === null) return undefined;
    if (Array.isArray(value) && isPrimitiveList(value)) {
      return typeof value[0] === 'string' ? (value as string[]).map((v) => this.cleanString(v, key, false, io)) : (value.slice() as number[] | boolean[]);
    }
    // Objects, BigInt, functions, Errors, DOM nodes: stored as JSON text, never thrown on.
    return this.cleanString(safeJson(value), key, true, io);
  }

  /** Sets an attribute. Non-primitive values are stored as JSON text. */
  setAttribute(key: string, value: unknown): this {
    try {
      if (typeof key !== 'string' || !key || this.endMs !== 0 || !(this.flags & FLAG_SAMPLED)) return this;
      // Numbers and booleans, most attributes, are stored as they are.
      if (typeof value === 'number' || typeof value === 'boolean') this.store(key, value);
      else this.write(key, value);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Sets several attributes. */
  setAttributes(attributes: Record<string, unknown>): this {
    try {
      if (attributes && typeof attributes === 'object') eachEntry(attributes, (key, value) => this.put(key, value));
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** @internal Prefix for metadata keys: trace metadata on a trace's root, observation metadata elsewhere. */
  metadataPrefix(): string {
    return A.OBSERVATION_METADATA;
  }

  /** Adds metadata entries (`langfuse.observation.metadata.<key>`), as an object or one key and value. */
  addMetadata(metadata: Record<string, unknown> | string, value?: unknown): this {
    return this.putMetadata(this.metadataPrefix(), metadata, value);
  }

  /** @internal `addMetadata()` under `prefix`, each entry's value through `mask` and stored through `put`. */
  putMetadata(prefix: string, metadata: Record<string, unknown> | string, value?: unknown, put = (key: string, v: unknown): void => this.put(key, v)): this {
    try {
      const each = (k: string, v: unknown): void => put(`${prefix}.${k}`, this.masked(v, 'metadata'));
      if (typeof metadata === 'string') each(metadata, value);
      else if (metadata && typeof metadata === 'object') eachEntry(metadata, each);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /**
   * @internal Applies the `mask` hook and stores input or output as text under `key`, and first
   * under `traceKey` when given (a trace's own input or output): masked and serialised once.
   * Never throws.
   */
  io(key: string, value: unknown, field: 'input' | 'output', traceKey?: string): void {
    try {
      if (!this.isRecording) return;
      const v = this.masked(value, field);
      if (v === undefined) return;
      const text = safeJson(v);
      // An object's JSON is cut to valid JSON, so it still reads as messages.
      const json = typeof v === 'object' && v !== null;
      if (traceKey) this.put(traceKey, text, json, true);
      this.put(key, text, json, true);
    } catch (error) {
      reportInternal(error);
    }
  }

  /**
   * @internal `value` through the tracer's `mask` hook as `field`, when it has one. A mask that
   * gives an object back as it came (one written for text, a pattern over strings, as Langfuse's
   * are) is given the object's JSON text as well, and what comes back, still JSON, stands for the
   * object: what it takes out of text, it takes out of objects. A mask that fails on that text
   * (one that edits objects in place) or makes it something else keeps the object it gave back.
   * `undefined` for an input or output is said once (Langfuse's `({ data }) => …` returns it for
   * everything), and so is a promise, which a mask cannot give: it is `[mask failed]`.
   */
  masked(value: unknown, field: MaskField): unknown {
    const mask = this[kT].core.cfg.mask;
    if (!mask) return value;
    try {
      let v = mask(value, field);
      if (v === value && typeof v === 'object' && v !== null) {
        const text = safeJson(v);
        let t: unknown;
        try {
          t = mask(text, field);
        } catch {
          // Written for objects only: the object it gave back stands.
        }
        if (typeof t === 'string' && t !== text) {
          try {
            v = JSON.parse(t);
          } catch {
            // No longer JSON (the text replaced whole): the object it gave back stands.
          }
        }
      } else if (typeof (v as PromiseLike<unknown> | undefined)?.then === 'function') {
        (v as PromiseLike<unknown>).then(undefined, reportInternal);
        warnOnce('mask-async', 'mask returned a promise: it must give the value back at once; recorded as [mask failed].', true);
        return '[mask failed]';
      }
      if (v === undefined && value !== undefined && field !== 'metadata') {
        warnOnce('mask', `mask(value, "${field}") returned undefined: the value is left out (said once). mask gets the value, not Langfuse's { data }.`, true);
      }
      return v;
    } catch (error) {
      // A failing mask must not leak the unmasked value.
      reportInternal(error);
      return '[mask failed]';
    }
  }

  /** Records the operation's input (a prompt, arguments). Passed through `mask`, stored as JSON text. */
  setInput(input: unknown): this {
    this.io(A.OBSERVATION_INPUT, input, 'input');
    return this;
  }

  /** Records the operation's output. Passed through `mask`, stored as JSON text. */
  setOutput(output: unknown): this {
    this.io(A.OBSERVATION_OUTPUT, output, 'output');
    return this;
  }

  /** Adds tags to the trace (`langfuse.trace.tags`). */
  addTag(...tags: string[]): this {
    const t = this[kT];
    for (const tag of tags) if (typeof tag === 'string' && tag) (t.tags ??= new Set()).add(tag);
    t.cleanTags = undefined;
    return this;
  }

  /** Renames the span. */
  updateName(name: string): this {
    try {
      if (typeof name === 'string' && name && this.endMs === 0) this.name = this.cleanString(name);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Sets the status; `error` also sets the Langfuse level to ERROR with the message. */
  setStatus(code: StatusCode, message?: string): this {
    try {
      if (this.endMs !== 0 || (code !== 'ok' && code !== 'error' && code !== 'unset')) return this;
      // Cleaned once, under the attribute's key, and stored as it is: the status and the attribute
      // are the same text, and redacting it again would find nothing new.
      const text = code === 'error' && message !== undefined ? this.cleanString(String(message), A.OBSERVATION_STATUS_MESSAGE) : undefined;
      const was = this.status;
      this.status = text !== undefined ? { code, message: text } : { code };
      if (code === 'error') {
        this.put(A.OBSERVATION_LEVEL, 'ERROR');
        if (text !== undefined && this.isRecording) this.store(A.OBSERVATION_STATUS_MESSAGE, text);
      } else if (was.code === 'error') {
        // The error is over (a retry succeeded): Langfuse's level and message go with it.
        const attrs = this.attrs;
        if (attrs[A.OBSERVATION_LEVEL] === 'ERROR') delete attrs[A.OBSERVATION_LEVEL];
        if (was.message !== undefined && attrs[A.OBSERVATION_STATUS_MESSAGE] === was.message) delete attrs[A.OBSERVATION_STATUS_MESSAGE];
      }
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /**
   * Sets the Langfuse level (`DEBUG`, `DEFAULT`, `WARNING` or `ERROR`), which Langfuse shows and
   * filters by, with an optional status message: a fallback model used, a retry needed.
   * `ERROR` is `setStatus('error', message)`; the others leave the span's status as it is.
   */
  setLevel(level: ObservationLevel, message?: string): this {
    try {
      if (level === 'ERROR') return this.setStatus('error', message);
      if (level !== 'DEBUG' && level !== 'DEFAULT' && level !== 'WARNING') {
        const name = JSON.stringify(String(level));
        warnOnce(`level ${name}`, `setLevel(${name}): the level is DEBUG, DEFAULT, WARNING or ERROR; not set.`, true);
        return this;
      }
      this.put(A.OBSERVATION_LEVEL, level);
      if (message !== undefined) this.put(A.OBSERVATION_STATUS_MESSAGE, String(message));
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Records an exception event (type, message, stack) and sets the error status. Any thrown value works. */
  recordError(error: unknown): this {
    try {
      // Only while open: an ended span records nothing, and the page's handler must then do so.
      if (this.endMs === 0 && error !== null && typeof error === 'object') {
        recorded.add(error);
        noteFailed(this, error);
      }
      const parts = errorParts(error);
      this.exceptionEvent(parts);
      this.setStatus('error', parts.message);
    } catch (e) {
      reportInternal(e);
    }
    return this;
  }

  /** @internal An `exception` event of a thrown value's parts (see {@link errorParts}), at `timeMs` or now. */
  exceptionEvent({ type, message, stack }: ReturnType<typeof errorParts>, timeMs?: number): void {
    const attrs: Record<string, unknown> = { [A.EXCEPTION_TYPE]: type, [A.EXCEPTION_MESSAGE]: message };
    if (stack) attrs[A.EXCEPTION_STACKTRACE] = stack;
    this.recordEvent(A.EXCEPTION_EVENT, attrs, timeMs);
  }

  /** Adds a timed event to this span (an OpenTelemetry span event). */
  recordEvent(name: string, attributes?: Record<string, unknown>, timeMs?: number): this {
    try {
      const r = this;
      if (!this.isRecording || this.endMs !== 0) return this;
      const events = r.events === NONE ? (r.events = []) : r.events;
      if (events.length >= this[kT].core.cfg.maxEvents) {
        this.ex().droppedEvents++;
        return this;
      }
      const event: SpanEventRecord = { name: this.cleanString(String(name)), timeMs: isTime(timeMs) ? timeMs : this[kT].core.now() };
      if (attributes && typeof attributes === 'object') this.cleanAttrs(attributes, event);
      events.push(event);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** @internal The attributes of an event or link, cleaned as `setAttribute` cleans them, at most `maxAttributes`. */
  cleanAttrs(attributes: Record<string, unknown>, into: { attrs?: Attributes; droppedAttrs?: number }): void {
    const attrs: Attributes = {};
    let n = 0;
    let dropped = 0;
    eachEntry(attributes, (key, value) => {
      const v = this.clean(key, value);
      if (v === undefined) return;
      if (n++ >= this[kT].core.cfg.maxAttributes) dropped++;
      else setOwn(attrs, key, v);
    });
    into.attrs = attrs;
    if (dropped) into.droppedAttrs = dropped;
  }

  /**
   * Links this span to another span, in this trace or another. A context without a valid W3C
   * trace and span id is ignored: one bad id would make a receiver refuse the whole request.
   */
  addLink(context: SpanContext, attributes?: Attributes): this {
    try {
      const r = this;
      if (!this.isRecording || this.endMs !== 0 || !context || !isValidTraceId(context.traceId) || !isValidSpanId(context.spanId)) return this;
      const links = r.links === NONE ? (r.links = []) : r.links;
      if (links.length >= this[kT].core.cfg.maxLinks) {
        this.ex().droppedLinks++;
        return this;
      }
      const link: SpanLinkRecord = { traceId: context.traceId, spanId: context.spanId, flags: context.flags };
      const state = context.traceState && parseTracestate(context.traceState);
      if (state) link.traceState = state;
      if (attributes && typeof attributes === 'object') this.cleanAttrs(attributes, link);
      links.push(link);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  // --- children ---

  /** Starts a child span that you end yourself with `end()`. */
  startSpan(name: string, opts?: SpanOptions): Span {
    try {
      return new Span(this[kT], name, opts, this);
    } catch (error) {
      // Options that cannot be read (a throwing getter or proxy): the child starts without them.
      reportInternal(error);
      return new Span(this[kT], name, undefined, this);
    }
  }

  /** Starts a child generation that you end yourself with `end()`. */
  startGeneration(name: string, opts?: GenerationOptions): Generation {
    try {
      return new Generation(this[kT], name, opts, this);
    } catch (error) {
      reportInternal(error);
      return new Generation(this[kT], name, undefined, this);
    }
  }

  /**
   * Runs `fn` in a child span: timed, current while it runs, ended when it returns or settles.
   * A throw or rejection is recorded and passed on unchanged.
   */
  span<R>(name: string, fn: (span: Span) => R): R;
  span<R>(name: string, opts: SpanOptions, fn: (span: Span) => R): R;
  span<R>(name: string, a: SpanOptions | ((span: Span) => R), b?: (span: Span) => R): R {
    const [opts, fn] = typeof a === 'function' ? [undefined, a] : [a, b as (span: Span) => R];
    return runInSpan(this.startSpan(name, opts), fn);
  }

  /** Runs `fn` in a child generation (an LLM call), like `span()`. */
  generation<R>(name: string, opts: GenerationOptions, fn: (generation: Generation) => R): R {
    return runInSpan(this.startGeneration(name, opts), fn);
  }

  /** Records a point-in-time observation (Langfuse event) under this span, with optional metadata. */
  event(name: string, metadata?: Record<string, unknown>): this {
    try {
      const child = new Span(this[kT], name, { type: 'event' }, this);
      if (metadata) child.addMetadata(metadata);
      child.end(child.startMs);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /**
   * Scores this observation (user feedback, an evaluation). Booleans are sent as 1/0 BOOLEAN
   * scores. Text values and comments are redacted and cut like attributes. A trace that is not
   * sampled records no scores: they would point at spans that were never sent.
   */
  score(name: string, value: number | string | boolean, opts?: ScoreOptions): this {
    return this.scoreFor(this.isTraceRoot() ? undefined : this.spanId, name, value, opts);
  }

  /** @internal A score of this span's trace, on the observation `observationId` or the trace itself. */
  scoreFor(observationId: string | undefined, name: string, value: number | string | boolean, opts?: ScoreOptions): this {
    try {
      if (typeof name !== 'string' || !name || !this.isRecording) return this;
      // A BigInt (a database count) becomes a number; NaN, the infinities and other types have no
      // score form: JSON would send null, or fail to encode and take the batch's other scores along.
      const v = typeof value === 'bigint' ? Number(value) : value;
      const dataType = opts?.dataType ?? (typeof value === 'boolean' ? 'BOOLEAN' : undefined);
      // What Langfuse takes for the data type: any other value it refuses, long after this call.
      const need =
        typeof v === 'number' && !Number.isFinite(v)
          ? 'a finite number'
          : dataType === 'NUMERIC'
            ? typeof v !== 'number' && 'a number'
            : dataType === 'BOOLEAN'
              ? typeof v !== 'boolean' && v !== 0 && v !== 1 && 'true, false, 1 or 0'
              : dataType === 'TEXT' || dataType === 'CATEGORICAL'
                ? (typeof v !== 'string' || !v) && 'a non-empty string'
                : typeof v !== 'number' && typeof v !== 'string' && typeof v !== 'boolean' && 'a finite number, a string or a boolean';
      if (need) {
        warnOnce(`score ${name}`, `score "${name}"${dataType ? ` (${dataType})` : ''} needs ${need}, not ${typeof v === 'string' ? JSON.stringify(v) : safeJson(v)}: not sent.`, true);
        return this;
      }
      const score: ScoreRecord = {
        v: 1,
        rec: 'score',
        // An id a receiver would refuse (the collector takes 1 to 800 characters) gives way to a new one.
        id: typeof opts?.id === 'string' && opts.id && opts.id.length <= 800 ? opts.id : newId(),
        traceId: this.traceId,
        name: this.cleanString(name),
        value: typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'string' ? this.cleanString(v) : v,
        timeMs: this[kT].core.now(),
      };
      if (observationId) score.observationId = observationId;
      if (dataType) score.dataType = dataType;
      if (dataType === 'TEXT') score.value = textScoreValue(score.value as string);
      if (opts?.comment) score.comment = this.cleanString(String(opts.comment));
      const meta = opts?.metadata;
      if (meta && typeof meta === 'object') {
        const out: Attributes = (score.metadata = {});
        // Entries while their JSON fits the collector's bound, which refuses the whole score past it.
        let room = MAX_SCORE_METADATA - 2;
        eachEntry(meta, (k, val) => {
          const c = this.clean(k, this.masked(val, 'metadata'));
          if (c === undefined) return;
          // Cleaned values are text, numbers, booleans and lists of them: JSON as they are.
          const size = JSON.stringify(k).length + JSON.stringify(c).length + 2;
          if (size > room) this.ex().truncated++;
          else {
            room -= size;
            setOwn(out, k, c);
          }
        });
      }
      const configId = opts?.configId === undefined ? '' : String(opts.configId);
      if (configId && configId.length <= 800) score.configId = configId;
      if (this[kT].sessionId) score.sessionId = this[kT].sessionId;
      const env = this[kT].environment ?? this[kT].core.cfg.environment;
      if (env) score.environment = env;
      // Under a symbol key, as on spans: processors can tell the trace, records carry nothing more.
      (score as { [kT]?: TraceShared })[kT] = this[kT];
      this[kT].scored = true;
      this[kT].core.emitScore(score);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** @internal */
  isTraceRoot(): boolean {
    return false;
  }


  // --- end ---

  /** Ends the span (now, or at `endMs`). Later calls do nothing. */
  end(endMs?: number): void {
    if (this.endMs !== 0) return;
    try {
      const t = this[kT];
      const end = isTime(endMs) ? endMs : t.core.now();
      // A clock that went backwards must not give a negative duration.
      this.endMs = end < this.startMs ? this.startMs : end;
      const prev = this[kPrev];
      const next = this[kNext];
      if (prev) prev[kNext] = next;
      else if (t.head === this) t.head = next;
      if (next) next[kPrev] = prev;
      this[kPrev] = this[kNext] = undefined;
      if (!(this.flags & FLAG_SAMPLED)) return;
      this.finalAttrs();
      const x = this[kX];
      if (x && (x.droppedAttrs || x.droppedEvents || x.droppedLinks)) {
        this.dropped = { attrs: x.droppedAttrs, events: x.droppedEvents, links: x.droppedLinks };
      }
      t.core.emit(this);
    } catch (error) {
      reportInternal(error);
    }
  }

  /**
   * @internal Attributes known only at the end: the trace's user, session, tags, environment and
   * shared attributes as they are now, and the truncation count. Langfuse v4 reads trace-level
   * fields from each observation, so a generation is filtered and costed by them only when it
   * carries them itself.
   */
  finalAttrs(): void {
    const t = this[kT];
    if (t.userId) this.write(A.USER_ID, t.userId);
    if (t.sessionId) this.write(A.SESSION_ID, t.sessionId);
    if (t.tags?.size) {
      // Every span carries the tags: cleaned once per change of them, not once per span.
      let clean = t.cleanTags;
      if (!clean) {
        // Cleaning counts its cuts on this span; later spans add the count kept with the tags.
        const x = this.ex();
        const before = x.truncated;
        const list = [...t.tags].map((tag) => this.cleanString(tag, A.TRACE_TAGS));
        clean = t.cleanTags = [list, x.truncated - before];
      } else if (clean[1]) this.ex().truncated += clean[1];
      this.store(A.TRACE_TAGS, clean[0].slice());
    }
    if (t.environment && !this.isTraceRoot()) this.write(A.ENVIRONMENT, t.environment);
    const truncated = this[kX]?.truncated;
    if (truncated) this.write(A.TRUNCATED, truncated);
    const shared = t.shared;
    if (shared) {
      const attrs = this.attrs;
      // What the span set itself wins, the root's own among them. Copies go only where there is
      // room: they are the trace's, not attributes of this span that it lost.
      for (const key in shared) if (!(key in attrs)) this.store(key, shared[key]!, false);
    }
  }
}

const kModel = Symbol('model');
const kUsage = Symbol('usage');
const kCost = Symbol('cost');

/** A span for an LLM call: model, parameters, usage, cost and first-token time. */
export class Generation extends Span {
  /** @internal */ declare [kModel]: string | undefined;
  /** @internal */ declare [kUsage]: Usage | undefined;
  /** @internal */ declare [kCost]: boolean | undefined;

  /** Not for apps: use `span.generation()` or `span.startGeneration()`. */
  constructor(t: TraceShared, name: string, opts: GenerationOptions | undefined, parent: ConstructorParameters<typeof Span>[3]) {
    super(t, name, { ...opts, type: 'generation' }, parent);
    if (!this.isRecording) return;
    try {
      this.put(A.GEN_AI_OPERATION, (typeof opts?.operation === 'string' && opts.operation) || 'chat');
      if (!opts) return;
      if (opts.model) this.setModel(opts.model);
      if (opts.provider) this.put(A.GEN_AI_PROVIDER, opts.provider);
      if (opts.prompt) this.setPrompt(opts.prompt);
      const params = opts.modelParameters;
      if (params) {
        this.put(A.MODEL_PARAMETERS, safeJson(params));
        for (const key of Object.keys(params)) {
          const v = params[key];
          // Numbers, and the stop strings as a list: as the convention types them.
          if (key === 'stop') {
            if (typeof v === 'string' || Array.isArray(v)) this.put('gen_ai.request.stop_sequences', typeof v === 'string' ? [v] : v);
          } else if (typeof v === 'number') {
            const name = /^max_(completion|output)_tokens$/.test(key) ? 'max_tokens' : key;
            if (REQUEST_PARAMS.includes(name)) this.put(`gen_ai.request.${name}`, v);
          }
        }
      }
    } catch (error) {
      reportInternal(error);
    }
  }

  /** @internal Cost from the price table at the end, unless set explicitly. */
  override finalAttrs(): void {
    // The model that answered first (a router's choice, a dated version), else the one asked for.
    const cost = !this[kCost] && (priceOf(this, this.attrs[A.GEN_AI_RESPONSE_MODEL], this[kUsage]) ?? priceOf(this, this[kModel], this[kUsage]));
    if (cost) this.writeCost(cost);
    super.finalAttrs();
  }

  /** @internal */
  writeCost(cost: Cost): void {
    this[kCost] = true;
    writeCostAttrs(this, cost);
  }

  /** Sets the model name (and `gen_ai.request.model`). */
  setModel(model: string): this {
    if (typeof model === 'string' && model) {
      this[kModel] = model;
      this.put(A.MODEL_NAME, model);
      this.put(A.GEN_AI_REQUEST_MODEL, model);
    }
    return this;
  }

  /**
   * Links this generation to the Langfuse prompt version it used, so that Langfuse shows the
   * prompt beside the call and counts the call in that version's metrics. Langfuse needs the name
   * and the version together; a prompt without a non-empty name and a whole version from 1, or a
   * fallback prompt, links nothing.
   */
  setPrompt(prompt: PromptRef): this {
    try {
      const { name, version, isFallback } = prompt ?? {};
      if (typeof name === 'string' && name && Number.isInteger(version) && version >= 1 && isFallback !== true) {
        this.put(A.PROMPT_NAME, name);
        this.put(A.PROMPT_VERSION, version);
      }
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Sets token usage, e.g. `{ input: 812, output: 96 }`. Cost follows from `prices` unless set. */
  setUsage(usage: Usage): this {
    try {
      if (!usage || typeof usage !== 'object') return this;
      const clean: Usage = {};
      for (const [k, v] of Object.entries(usage)) if (typeof v === 'number' && Number.isFinite(v) && v >= 0) clean[k] = Math.round(v);
      this[kUsage] = clean;
      this.put(A.USAGE_DETAILS, JSON.stringify(clean));
      // OpenTelemetry's token counts include cached input and reasoning output: the sums of each
      // base type and its details.
      const sums: Usage = {};
      for (const k of Object.keys(clean)) {
        const base = baseUsageType(k);
        if (base) sums[base] = (sums[base] ?? 0) + clean[k]!;
      }
      if (sums.input !== undefined) this.put(A.GEN_AI_INPUT_TOKENS, sums.input);
      if (sums.output !== undefined) this.put(A.GEN_AI_OUTPUT_TOKENS, sums.output);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Sets the cost in USD explicitly: a total, or by usage type. */
  setCost(cost: number | Cost): this {
    try {
      const c: Cost = typeof cost === 'number' ? { total: cost } : { ...cost };
      // Rounded as a computed cost is: 0.00007 + 0.000035 is 0.00010499999999999999 in doubles.
      if (c.total === undefined) c.total = Math.round(Object.values(c).reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0) * 1e12) / 1e12;
      if (this.isRecording && this.endMs === 0) this.writeCost(c);
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }

  /** Marks when the first token arrived (`completion_start_time`): epoch milliseconds or a `Date`, now by default. */
  setCompletionStart(timeMs?: number | Date): this {
    try {
      const ms = timeMs instanceof Date ? timeMs.getTime() : timeMs;
      const t = isTime(ms) ? ms : this[kT].core.now();
      this.put(A.COMPLETION_START_TIME, new Date(t).toISOString());
    } catch (error) {
      reportInternal(error);
    }
    return this;
  }
}
