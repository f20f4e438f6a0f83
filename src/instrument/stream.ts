import type { Usage } from '../core/cost';
import { reportInternal } from '../lib/reportInternal';

/**
 * Watching a response body as the app reads it, without `clone()` and without buffering.
 *
 * `clone()` tees the body: the copy nobody reads keeps every chunk the app has read, so an
 * endless stream grows memory forever. Instead the app gets a `Response` whose body is a
 * pass-through stream: each chunk is pulled from the original body only when the app asks
 * for one (high-water mark 0), counted, and handed over as is. Nothing is held after that.
 */

/**
 * How a body read ended. `unread`: the app did not start reading within {@link UNREAD_MS};
 * `abandoned`: it stopped reading for {@link BODY_IDLE_MS}. Either way the watch ends there and
 * later reads pass through unwatched.
 */
export type BodyOutcome = 'complete' | 'cancelled' | 'error' | 'unread' | 'abandoned';

/** Callbacks of {@link watchBody}. Throwing in them is caught and counted; the body goes on. */
export interface BodyWatcher {
  /** A chunk was handed to the app. */
  chunk(chunk: unknown): void;
  /** The read ended; `error` is the stream's error for `error`. Called at most once. */
  end(outcome: BodyOutcome, error?: unknown): void;
}

/**
 * Time with no read in progress after which an unread or half-read body stops being watched.
 * A reader waiting for the next chunk is never abandoned; this bounds bodies the app dropped.
 */
export const BODY_IDLE_MS = 10_000;

/**
 * Time after the headers within which the app must start reading for the body to be watched.
 * Fire-and-forget requests (`fetch(url)` with the body never read) are common, and their span
 * would otherwise stay open, holding the interaction that started them.
 */
export const UNREAD_MS = 1_000;

// Statuses whose responses cannot have a body (the Response constructor refuses one).
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

const callSafely = (fn: () => void): void => {
  try {
    fn();
  } catch (error) {
    reportInternal(error);
  }
};

/**
 * Returns a `Response` that behaves like `res` (status, headers object, `url`, `redirected`,
 * `type`, `clone()`, `json()`, `text()`, `body.getReader()`, BYOB readers on byte streams,
 * `instanceof Response`) and reports its body's progress to `watcher`. Returns `res` itself,
 * unwatched, when it has no body or cannot be rebuilt; then `end` is never called.
 */
export const watchBody = (res: Response, watcher: BodyWatcher, now: () => number = Date.now): Response => {
  const body = res.body;
  if (!body || res.bodyUsed || body.locked || NULL_BODY.has(res.status) || res.status < 200 || res.status > 599) return res;

  // Keep the original's stream type: fetch bodies are byte streams, and an app may read them
  // with a BYOB reader. Asking for one is the only way to tell; the lock is released at once.
  let isBytes = false;
  try {
    (body.getReader as (o: { mode: 'byob' }) => ReadableStreamBYOBReader)({ mode: 'byob' }).releaseLock();
    isBytes = true;
  } catch {
    // A default stream (a Response an app or service worker built from its own stream).
  }

  let reader: ReadableStreamDefaultReader<unknown> | undefined;
  let done = false;
  let reading = false;
  let lastMs = now();
  let timer: ReturnType<typeof setTimeout> | undefined;

  const finish = (outcome: BodyOutcome, error?: unknown): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    callSafely(() => watcher.end(outcome, error));
  };

  // Ends the watch (not the body) when nobody reads for BODY_IDLE_MS; reads go on unwatched.
  const idleCheck = (): void => {
    if (done) return;
    const limit = reader ? BODY_IDLE_MS : UNREAD_MS;
    const quiet = now() - lastMs;
    if (reading || quiet < limit) timer = setTimeout(idleCheck, reading ? limit : limit - quiet);
    else finish(reader ? 'abandoned' : 'unread');
  };

  const source: { pull(c: ReadableStreamDefaultController<unknown>): Promise<void>; cancel(reason: unknown): Promise<void>; type?: 'bytes' } = {
    pull(controller) {
      // The original is locked only once the app starts reading, so an unread body stays untouched.
      const r = (reader ??= body.getReader());
      reading = true;
      return r.read().then(
        (result) => {
          reading = false;
          lastMs = now();
          if (result.done) {
            finish('complete');
            controller.close();
            // A BYOB read waiting on a closed byte stream is only answered by respond(0).
            (controller as unknown as { byobRequest?: { respond(n: number): void } | null }).byobRequest?.respond(0);
            return;
          }
          const chunk: unknown = result.value;
          if (!done) callSafely(() => watcher.chunk(chunk));
          // A byte stream refuses empty chunks; the app would not have seen one from the original either.
          if (!isBytes || (chunk as ArrayBufferView).byteLength > 0) controller.enqueue(chunk);
        },
        (error: unknown) => {
          reading = false;
          finish('error', error);
          controller.error(error);
        },
      );
    },
    cancel(reason) {
      finish('cancelled');
      // Cancelling the original aborts the network request, exactly as cancelling it directly would.
      return (reader ?? body).cancel(reason);
    },
  };
  if (isBytes) source.type = 'bytes';

  let out: Response;
  try {
    const stream = new ReadableStream(source as UnderlyingDefaultSource<unknown>, { highWaterMark: 0 });
    out = new Response(stream as ReadableStream<Uint8Array>, { status: res.status, statusText: res.statusText, headers: res.headers });
    copyIdentity(res, out);
  } catch (error) {
    reportInternal(error);
    return res;
  }
  timer = setTimeout(idleCheck, UNREAD_MS);
  return out;
};

/**
 * Gives `out` the fields a constructed Response cannot take: the URL, `redirected`, `type`
 * and the original (immutable) headers object; `clone()` keeps them on the copy too.
 */
const copyIdentity = (from: Response, out: Response): void => {
  const define = (target: Response): void => {
    Object.defineProperties(target, {
      url: { value: from.url, configurable: true },
      redirected: { value: from.redirected, configurable: true },
      type: { value: from.type, configurable: true },
      headers: { value: from.headers, configurable: true },
    });
  };
  define(out);
  const nativeClone = Response.prototype.clone;
  Object.defineProperty(out, 'clone', {
    configurable: true,
    writable: true,
    value: function clone(this: Response): Response {
      const copy = nativeClone.call(this);
      define(copy);
      return copy;
    },
  });
};

// --- Server-Sent Events below ---

/** Longest line kept while waiting for its end; longer lines are skipped, not buffered. */
const MAX_LINE_CHARS = 1 << 20;
/** Longest event data kept to look for usage; longer events are counted, not parsed. */
const MAX_DATA_CHARS = 1 << 16;
const USAGE_RE = /"usage"\s*:\s*\{/;

/** Counts Server-Sent Events as bytes arrive (the `text/event-stream` framing rules). */
export interface SseCounter {
  /** Feeds one chunk (bytes or text). */
  push(chunk: unknown): void;
  /** Events dispatched so far (events with data, as the EventSource spec dispatches them). */
  readonly events: number;
}

/**
 * Creates an incremental SSE parser that calls `onEvent` with each dispatched event's data.
 * Holds at most one partial line and one event's data (both bounded), whatever the stream's length.
 * Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
export const createSseCounter = (onEvent: (data: string, index: number) => void): SseCounter => {
  const decoder = new TextDecoder();
  let line = '';
  let skipping = false;
  let hasData = false;
  let data = '';
  let events = 0;
  let lastWasCr = false;

  const endLine = (text: string): void => {
    if (text === '') {
      if (hasData) {
        const index = events++;
        onEvent(data, index);
      }
      hasData = false;
      data = '';
      return;
    }
    if (text.charCodeAt(0) === 58) return; // ':' starts a comment
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    if (field !== 'data') return;
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (hasData) data += '\n';
    hasData = true;
    if (data.length < MAX_DATA_CHARS) data += value;
  };

  return {
    get events() {
      return events;
    },
    push(chunk) {
      const text = typeof chunk === 'string' ? chunk : ArrayBuffer.isView(chunk) ? decoder.decode(chunk, { stream: true }) : '';
      let start = 0;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        // CRLF split across two chunks: the LF ends nothing, the CR already ended the line.
        if (c === 10 && i === 0 && lastWasCr) {
          start = 1;
          lastWasCr = false;
          continue;
        }
        const piece = text.slice(start, i);
        if (!skipping) endLine(line + piece);
        line = '';
        skipping = false;
        if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
        start = i + 1;
      }
      lastWasCr = text.length > 0 && text.charCodeAt(text.length - 1) === 13;
      if (start < text.length && !skipping) {
        line += text.slice(start);
        if (line.length > MAX_LINE_CHARS) {
          line = '';
          skipping = true;
        }
      }
    },
  };
};

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/**
 * Token usage from one SSE event's data, when it carries any: OpenAI chat completions (final
 * chunk with `stream_options.include_usage`), the OpenAI Responses API (`response.usage`) and
 * Anthropic messages (`message.usage` at the start, `usage` in `message_delta`).
 */
export const usageFromEvent = (data: string): Usage | undefined => {
  if (!USAGE_RE.test(data)) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(data);
  } catch {
    return undefined;
  }
  const p = payload as { usage?: unknown; response?: { usage?: unknown }; message?: { usage?: unknown } } | null;
  const u = (p?.usage ?? p?.response?.usage ?? p?.message?.usage) as Record<string, unknown> | undefined;
  if (!u || typeof u !== 'object') return undefined;
  const usage: Usage = {};
  const input = num(u.prompt_tokens) ?? num(u.input_tokens);
  const output = num(u.completion_tokens) ?? num(u.output_tokens);
  const total = num(u.total_tokens);
  if (input !== undefined) usage.input = input;
  if (output !== undefined) usage.output = output;
  if (total !== undefined) usage.total = total;
  return Object.keys(usage).length ? usage : undefined;
};
