import type { Usage } from '../core/cost';
import { reportInternal } from '../lib/reportInternal';
import { utf8Bytes } from '../lib/utf8Bytes';
import { parseJson } from '../lib/parseJson';
import { unref } from '../lib/unref';
import { isAbortError } from '../lib/isAbortError';

/**
 * Watching a response body as the app reads it, on the very `Response` fetch() resolved with:
 * no copy of the response, no `clone()`, no buffering.
 *
 * `clone()` tees the body: the copy nobody reads keeps every chunk the app has read, so an
 * endless stream grows memory forever. A new Response over a pass-through stream avoids that,
 * but puts a JavaScript stream in place of the native body for every request, which costs
 * hundreds of microseconds even when the app just calls `json()`. So the Response is kept, and
 * gets a prototype between it and `Response.prototype` (see `attach`) whose members shadow:
 * - `text()`, `json()`, `arrayBuffer()`, `blob()`, `bytes()`, `formData()` call the native
 *   method and end the watch when it settles (the common case, at native speed);
 * - `body` hands out, on first access only, a pass-through stream over the native body: each
 *   chunk is pulled from the original only when the app asks for one (high-water mark 0),
 *   counted, and handed over as is. Nothing is held after that;
 * - `clone()` returns a native clone watched the same way (see {@link watchBody}).
 * Status, headers, `url`, `bodyUsed`, `instanceof Response` are the original's own.
 */

/**
 * How a body read ended. `unread`: the app did not start reading within {@link UNREAD_MS};
 * `abandoned`: it stopped reading for {@link BODY_IDLE_MS}. Either way the watch ends there and
 * later reads pass through unwatched.
 */
export type BodyOutcome = 'complete' | 'cancelled' | 'error' | 'unread' | 'abandoned' | 'unfinished';

/** What is known when a body read ends. */
export interface BodyEnd {
  /** The error, for `error`. */
  error?: unknown;
  /** Body bytes the app received, when a read method told (`arrayBuffer()`, `text()`…). */
  bytes?: number;
  /** Whether the app read through `response.body` (then every chunk went through `chunk`). */
  isStream: boolean;
  /** What the read method gave the app (`json()`'s object, `text()`'s string…). */
  value?: unknown;
}

/** Callbacks of {@link watchBody}. Throwing in them is caught and counted; the body goes on. */
export interface BodyWatcher {
  /**
   * A chunk was handed to the app through `response.body`. Returning true says it held the last
   * of what is followed (a model stream's last event): an app that stops reading there, without
   * reading the stream's close, read it all, and the watch ends as `complete` once no read has
   * been made for {@link UNREAD_MS} (a proxy that relays several messages reads on).
   */
  chunk(chunk: unknown): boolean | void;
  /** The read ended. Called at most once. */
  end(outcome: BodyOutcome, detail: BodyEnd): void;
}

/** Options of {@link watchBody}. */
export interface WatchBodyOptions {
  /** Clock in ms. Default `Date.now`. */
  now?: () => number;
  /**
   * Read the body through the counting stream even when the app calls `text()` and the like,
   * so that chunks are seen as they arrive (Server-Sent Events). Default false.
   */
  isStreaming?: boolean;
  /** How long after the headers the app may start reading: {@link UNREAD_MS} unless given. */
  unreadMs?: number;
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

/** Longest `text()` result whose UTF-8 bytes are counted when no Content-Length tells them. */
const MAX_COUNTED_CHARS = 262_144;

/** The body-reading methods of `Response.prototype` (those a runtime has are shadowed). */
const METHODS = ['arrayBuffer', 'blob', 'bytes', 'formData', 'json', 'text'] as const;
type Method = (typeof METHODS)[number];

/** One watch, shared by a response and its clones. */
interface Watch {
  watcher: BodyWatcher;
  now: () => number;
  isStreaming: boolean;
  unreadMs: number;
  done: boolean;
  /** The branch (the response or one of its clones) the app read first; only it is followed. */
  leader: Branch | undefined;
  /** Branches made and not cancelled unread: a copy cancelled unread ends the watch only when it is the last. */
  open: number;
  /** Stream reads in progress; a pending read is never abandoned. */
  reading: number;
  /** When the app last received a chunk, or the watch began. */
  lastMs: number;
  /** The watcher said the last of what it follows came (see BodyWatcher.chunk). */
  final?: boolean;
}

/** A watched response: the one fetch() returned, or a clone of it. */
interface Branch {
  watch: Watch;
  res: Response;
  /** The counting stream `body` hands out, made on first access. */
  stream?: ReadableStream<unknown>;
  /** The reader on the native body, taken when the app first reads `stream`. */
  reader?: ReadableStreamDefaultReader<unknown>;
  /** How the native body failed, when it did. */
  failure?: { reason: unknown };
}

/** The native members the shadowing properties call. */
interface Native {
  body: (this: Response) => ReadableStream<Uint8Array> | null;
  clone: (this: Response) => Response;
  methods: Partial<Record<Method, (this: Response) => Promise<unknown>>>;
  /** The prototype a watched response gets: `Response.prototype` with the members above shadowed. */
  proto: Response;
}

const branches = new WeakMap<Response, Branch>();
// Made on first use: importing this module touches no global.
let native: Native | null | undefined;

// Watches that end by time when nobody reads (see idleCheck). One timer serves them all: a timer
// per response costs more than the rest of the watch.
const idle = new Set<Watch>();
let sweepTimer: ReturnType<typeof setTimeout> | undefined;
let sweepDueMs = 0;

const callSafely = (fn: () => void): void => {
  try {
    fn();
  } catch (error) {
    reportInternal(error);
  }
};

/** What a finished watch holds in place of its watcher. */
const FINISHED: BodyWatcher = { chunk: () => undefined, end: () => undefined };

const finish = (w: Watch, outcome: BodyOutcome, detail: BodyEnd): void => {
  if (w.done) return;
  w.done = true;
  idle.delete(w);
  // The watcher holds the span and the call (its request and body); a response the app keeps
  // (a cache of fetch promises) keeps its watch, and must not keep those.
  const watcher = w.watcher;
  w.watcher = FINISHED;
  callSafely(() => watcher.end(outcome, detail));
};

/** Ends `w` by the watch's own account: read through the counting stream or not. */
const endAs = (w: Watch, outcome: BodyOutcome): void => finish(w, outcome, { isStream: w.leader?.stream !== undefined });

/** Whether a read or an end seen on `b` counts: `b` is the first branch the app read. */
const leads = (b: Branch): boolean => !b.watch.done && (b.watch.leader ??= b) === b;

/**
 * How a failed read ended: an `AbortError` (the app's AbortController, a "stop generating"
 * button) is the app's choice, as a cancelled reader is; anything else is an error.
 */
const failedAs = (error: unknown): BodyOutcome => (isAbortError(error) ? 'cancelled' : 'error');

/**
 * Runs the sweep within `delayMs`, or sooner if it is already due sooner. A timer long overdue
 * was dropped (Workers may cancel the timers of a request that has ended): it is set again. On a
 * server the timer does not keep the process alive.
 */
const sweepIn = (delayMs: number): void => {
  const t = Date.now();
  const due = t + delayMs;
  if (sweepTimer !== undefined && sweepDueMs <= due && t < sweepDueMs + UNREAD_MS) return;
  clearTimeout(sweepTimer);
  sweepDueMs = due;
  sweepTimer = unref(setTimeout(sweep, delayMs));
};

/**
 * Ends the watch (not the body) of a response nobody started reading within UNREAD_MS, or
 * stopped reading for BODY_IDLE_MS; later reads go on unwatched. A reader waiting for the next
 * chunk is never abandoned. Read methods (`text()`…) always settle, so theirs are not here.
 */
const sweep = (): void => {
  sweepTimer = undefined;
  let next = Infinity;
  for (const w of idle) {
    callSafely(() => {
      const limit = w.final ? UNREAD_MS : w.leader ? BODY_IDLE_MS : w.unreadMs;
      const quiet = w.now() - w.lastMs;
      if (w.reading || quiet < limit) next = Math.min(next, w.reading ? limit : limit - quiet);
      else endAs(w, w.final ? 'complete' : w.leader ? 'abandoned' : 'unread');
    });
  }
  if (idle.size) sweepIn(Number.isFinite(next) ? next : UNREAD_MS);
};

/**
 * When the app locked the counting stream but has not read from it yet, the native body is
 * still free: lock it too, so that the native `text()` or `clone()` fail as they would have.
 */
const syncLock = (b: Branch, n: Native): void => {
  if (b.stream?.locked && !b.reader) b.reader = n.body.call(b.res)!.getReader();
};

/** The body's length from `Content-Length`, when that is the decoded length too. */
const declaredBytes = (res: Response): number | undefined => {
  const h = res.headers;
  const length = h.get('content-length');
  if (length === null || h.has('content-encoding')) return undefined;
  const n = Number(length);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
};

/**
 * A read method (`text()`…) on a watched branch: the native one, ending the watch when it
 * settles. `json()` and `formData()` do not tell how many bytes they read; `Content-Length`
 * does, when the body was not compressed. (`json()` as `text()` plus `JSON.parse` would count
 * them, but Chromium never reports a native `json()` failure as an unhandled rejection, and a
 * SyntaxError thrown by our own code would be.)
 */
const read = (res: Response, method: Method, n: Native): Promise<unknown> => {
  const b = branches.get(res);
  if (!b || b.watch.done) return n.methods[method]!.call(res);
  let target = res;
  let follow = false;
  try {
    syncLock(b, n);
    const free = !b.reader && !res.bodyUsed;
    if (free && b.watch.isStreaming) {
      // Through the counting stream, so chunks are seen as they arrive (the native method
      // settles only at the end); the stand-in carries the headers (blob type, form boundary).
      target = new Response(streamOf(b, n) as ReadableStream<Uint8Array>, { headers: res.headers });
    } else if (free && leads(b)) {
      follow = true;
      idle.delete(b.watch);
    }
  } catch (error) {
    reportInternal(error);
    target = res;
  }
  const promise = n.methods[method]!.call(target);
  if (target !== res) {
    // A read method fails its own way when the stream under it fails ("Failed to fetch" in
    // Chromium); the app must get the body's own error, an AbortError for an abort.
    return promise.catch((error: unknown) => {
      throw b.failure ? b.failure.reason : error;
    });
  }
  if (!follow) return promise;
  // A new promise, not the native one with our handlers added: those would mark a rejection
  // the app never handles as handled, and hide it from `unhandledrejection`.
  return promise.then(
    (value) => {
      let bytes: number | undefined;
      if (method === 'arrayBuffer' || method === 'bytes') bytes = (value as ArrayBuffer | Uint8Array).byteLength;
      else if (method === 'blob') bytes = (value as Blob).size;
      // Counting walks the text on the main thread (about 4 ms a megabyte): Content-Length says
      // it for free when it can, and a long text without one goes uncounted.
      else if (typeof value === 'string') bytes = declaredBytes(res) ?? (value.length <= MAX_COUNTED_CHARS ? utf8Bytes(value) : undefined);
      else bytes = declaredBytes(res);
      finish(b.watch, 'complete', { bytes, isStream: false, value });
      return value;
    },
    (error: unknown) => {
      // Text that is not JSON: the body itself was read to the end.
      if (method === 'json' && (error as { name?: unknown } | null)?.name === 'SyntaxError') {
        finish(b.watch, 'complete', { bytes: declaredBytes(res), isStream: false });
      } else finish(b.watch, failedAs(error), { error, isStream: false });
      throw error;
    },
  );
};

/** The counting pass-through stream over `b`'s native body, made once. */
const streamOf = (b: Branch, n: Native): ReadableStream<unknown> => {
  if (b.stream) return b.stream;
  const w = b.watch;
  const { res } = b;
  // Keep the original's stream type: fetch bodies are byte streams, and an app may read them
  // with a BYOB reader. Asking for one is the only way to tell; the lock is released at once.
  let isBytes = false;
  try {
    (n.body.call(res)!.getReader as (o: { mode: 'byob' }) => ReadableStreamBYOBReader)({ mode: 'byob' }).releaseLock();
    isBytes = true;
  } catch {
    // A default stream (a Response an app or service worker built from its own stream).
  }
  const source: { pull(c: ReadableStreamDefaultController<unknown>): Promise<void>; cancel(reason: unknown): Promise<void>; type?: 'bytes' } = {
    pull(controller) {
      // The native body is read at the first pull, not before: an unread body stays untouched,
      // and after clone() it is the branch the original keeps.
      const r = (b.reader ??= n.body.call(res)!.getReader());
      const counts = leads(b);
      if (counts) w.reading++;
      return r.read().then(
        (result) => {
          if (counts) {
            w.reading--;
            w.lastMs = w.now();
          }
          if (result.done) {
            if (counts) finish(w, 'complete', { isStream: true });
            controller.close();
            // A BYOB read waiting on a closed byte stream is only answered by respond(0).
            (controller as unknown as { byobRequest?: { respond(n: number): void } | null }).byobRequest?.respond(0);
            return;
          }
          const chunk: unknown = result.value;
          if (counts && !w.done) {
            callSafely(() => {
              if (w.watcher.chunk(chunk) !== true || w.final) return;
              w.final = true;
              sweepIn(UNREAD_MS);
            });
          }
          // A byte stream refuses empty chunks; the app would not have seen one from the original either.
          if (!isBytes || (chunk as ArrayBufferView).byteLength > 0) controller.enqueue(chunk);
        },
        (error: unknown) => {
          b.failure = { reason: error };
          if (counts) {
            w.reading--;
            finish(w, failedAs(error), { error, isStream: true });
          }
          controller.error(error);
        },
      );
    },
    cancel(reason) {
      // The branch being read, or the last one left unread, ends the watch; a copy cancelled
      // unread beside others (`res.clone().body.cancel()`) leaves them to be followed.
      if (w.leader === b || (!w.leader && --w.open === 0)) finish(w, 'cancelled', { isStream: true });
      // Cancelling the original aborts the network request, exactly as cancelling it directly would.
      return (b.reader ?? n.body.call(res)!).cancel(reason);
    },
  };
  if (isBytes) source.type = 'bytes';
  b.stream = new ReadableStream(source as UnderlyingDefaultSource<unknown>, { highWaterMark: 0 });
  return b.stream;
};

const makeNative = (): Native | null => {
  if (typeof Response !== 'function') return null;
  const proto = Response.prototype as unknown as Record<string, unknown>;
  // Workers define `body` on a prototype further up (Response extends Body there).
  let body: unknown;
  for (let o: object | null = proto; o && !body; o = Object.getPrototypeOf(o) as object | null) body = Object.getOwnPropertyDescriptor(o, 'body')?.get;
  const clone = proto.clone;
  if (typeof body !== 'function' || typeof clone !== 'function') return null;
  const n: Native = {
    body: body as Native['body'],
    clone: clone as Native['clone'],
    methods: {},
    proto: proto as unknown as Response,
  };
  // Enumerable, writable and configurable, like the members they shadow (Web IDL's defaults).
  const d: PropertyDescriptorMap = {};
  for (const m of METHODS) {
    if (typeof proto[m] !== 'function') continue;
    n.methods[m] = proto[m] as (this: Response) => Promise<unknown>;
    // A method named like the native one (`res.text.name === 'text'`).
    const value = {
      [m](this: Response): Promise<unknown> {
        return read(this, m, n);
      },
    }[m];
    d[m] = { configurable: true, enumerable: true, writable: true, value };
  }
  d.body = {
    configurable: true,
    enumerable: true,
    get(this: Response): ReadableStream<unknown> | null {
      const b = branches.get(this);
      const own = n.body.call(this);
      if (!b || b.stream) return b?.stream ?? own;
      try {
        // Once used or locked (the app read it with `text()`), the body is the native one as is.
        if (b.watch.done || !own || own.locked || this.bodyUsed) return own;
        return streamOf(b, n);
      } catch (error) {
        reportInternal(error);
        return own;
      }
    },
  };
  d.clone = {
    configurable: true,
    enumerable: true,
    writable: true,
    value: function clone(this: Response): Response {
      const b = branches.get(this);
      const watched = b !== undefined && !b.watch.done;
      if (watched) callSafely(() => syncLock(b, n));
      const copy = n.clone.call(this);
      // The clone shares the watch: whichever of the two the app reads first is followed.
      if (watched) callSafely(() => attach(copy, b.watch, n));
      return copy;
    },
  };
  n.proto = Object.create(proto, d) as Response;
  return n;
};

/**
 * Gives `res` the watched prototype. Swapping the prototype is one step, where defining the
 * seven members on each response costs several microseconds; the response keeps no own
 * properties, and `instanceof Response` holds. Subclasses and responses someone else already
 * changed (another copy of the SDK) are left alone.
 */
const attach = (res: Response, watch: Watch, n: Native): boolean => {
  if (Object.getPrototypeOf(res) !== Response.prototype || !Object.isExtensible(res)) return false;
  Object.setPrototypeOf(res, n.proto);
  branches.set(res, { watch, res });
  watch.open++;
  return true;
};

/**
 * Watches the body of `res` as the app reads it, on `res` itself (see the module comment): the
 * app keeps the same object, with its status, headers, `url`, `type`, `bodyUsed`, `clone()`,
 * `instanceof Response`, BYOB readers on byte streams. Returns false, and never calls `end`,
 * when there is nothing to watch (no body, already used, an object we cannot extend).
 *
 * A clone shares the watch: the first of them the app starts reading is followed, the others
 * are not counted (reading both would count the same body twice).
 */
export const watchBody = (res: Response, watcher: BodyWatcher, opts: WatchBodyOptions = {}): boolean => {
  const n = (native ??= makeNative());
  // A fetch polyfill's response (whatwg-fetch's) is no Response: the native getters refuse it.
  if (!n || !(res instanceof Response)) return false;
  const body = n.body.call(res);
  if (!body || body.locked || res.bodyUsed) return false;
  const now = opts.now ?? Date.now;
  const watch: Watch = {
    watcher,
    now,
    isStreaming: opts.isStreaming === true,
    unreadMs: opts.unreadMs ?? UNREAD_MS,
    done: false,
    leader: undefined,
    open: 0,
    reading: 0,
    lastMs: now(),
  };
  if (!attach(res, watch, n)) return false;
  idle.add(watch);
  sweepIn(watch.unreadMs);
  return true;
};

/**
 * At pagehide. Ends, as `unread`, the watches of bodies nobody has started reading: their spans
 * end where their headers came, as they would have a little later, not at the page's last moment.
 * When the page is `leaving` (not kept in the back/forward cache), also those of streams still
 * being read, as `unfinished` with what was counted so far: the browser is about to cut them with
 * a network error, which is not the request's failure, and the span would end too late to be
 * handed over. A stream whose last event came (the app stopped reading there) is `complete`.
 */
export const endUnread = (leaving?: boolean): void => {
  for (const w of idle) if (!w.leader || leaving) endAs(w, w.final ? 'complete' : w.leader ? 'unfinished' : 'unread');
};

/**
 * Ends the watch of `res` now, if it is still followed: `complete` when its stream gave its last
 * event (the app stopped reading there), else `unfinished` with what was counted. For a trace that
 * ends before a body it follows; true when there was a watch to end.
 */
export const endWatch = (res: Response): boolean => {
  const w = branches.get(res)?.watch;
  if (!w || w.done) return false;
  endAs(w, w.final ? 'complete' : 'unfinished');
  return true;
};

// --- Server-Sent Events below ---

/** Longest event data kept from an event's start; the rest of a longer event is not kept whole. */
const MAX_DATA_CHARS = 1 << 16;
/** Longest line kept while waiting for its end; the rest of a longer line is skipped, not buffered. */
const MAX_LINE_CHARS = MAX_DATA_CHARS;
/**
 * How much of the end of a longer event is kept, to read its usage: the Responses API's
 * `response.completed` repeats the whole response (instructions, output, generated images) and
 * puts `usage` near its end, followed only by `user` and at most 16 metadata entries.
 */
const MAX_END_CHARS = 1 << 15;
// OpenAI's and Anthropic's `usage`, Gemini's `usageMetadata`.
// Global, to find the last one in an event's end; search() ignores the flag and `lastIndex`.
const USAGE_RE = /"usage(?:Metadata)?"\s*:\s*\{/g;

/** Counts Server-Sent Events as bytes arrive (the `text/event-stream` framing rules). */
export interface SseCounter {
  /** Feeds one chunk (bytes or text). */
  push(chunk: unknown): void;
  /** Events dispatched so far (events with data, as the EventSource spec dispatches them). */
  readonly events: number;
}

/**
 * Creates an incremental SSE parser that calls `onEvent` with each dispatched event's data: all
 * of it, or for an event longer than {@link MAX_DATA_CHARS} its start, with its last
 * {@link MAX_END_CHARS} characters as `end`. Holds at most one partial line and one event's start
 * and end (all bounded), whatever the stream's or an event's length.
 * Spec: https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 */
export const createSseCounter = (onEvent: (data: string, index: number, end?: string) => void): SseCounter => {
  const decoder = new TextDecoder();
  let line = '';
  let skipping = false;
  // Whether the line being skipped is a data line, whose rest belongs to the event's end.
  let skippingData = false;
  let hasData = false;
  let data = '';
  // What came after the event's first MAX_DATA_CHARS, cut to its last MAX_END_CHARS from time to time.
  let rest = '';
  let events = 0;
  let lastWasCr = false;

  // Whether the chunk being read added to the event's data.
  let added = false;

  const addData = (piece: string): void => {
    added = true;
    const room = MAX_DATA_CHARS - data.length;
    if (piece.length <= room) {
      data += piece;
      return;
    }
    if (room > 0) data += piece.slice(0, room);
    rest += room > 0 ? piece.slice(room) : piece;
    if (rest.length > 2 * MAX_END_CHARS) rest = rest.slice(-MAX_END_CHARS);
  };

  const endLine = (text: string): void => {
    skippingData = false;
    if (text === '') {
      if (hasData) {
        const index = events++;
        const end = rest ? (rest.length >= MAX_END_CHARS ? rest : data + rest).slice(-MAX_END_CHARS) : undefined;
        onEvent(data, index, end);
      }
      hasData = false;
      data = rest = '';
      return;
    }
    if (text.charCodeAt(0) === 58) return; // ':' starts a comment
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    if (field !== 'data') return;
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    addData(hasData ? `\n${value}` : value);
    hasData = skippingData = true;
  };

  return {
    get events() {
      return events;
    },
    push(chunk) {
      const text = typeof chunk === 'string' ? chunk : ArrayBuffer.isView(chunk) ? decoder.decode(chunk, { stream: true }) : '';
      added = false;
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
        else if (skippingData) addData(piece);
        line = '';
        skipping = skippingData = false;
        if (c === 13 && text.charCodeAt(i + 1) === 10) i++;
        start = i + 1;
      }
      // An empty chunk (a decoder holding back half a character) changes nothing about the last one.
      if (text.length > 0) lastWasCr = text.charCodeAt(text.length - 1) === 13;
      if (start < text.length) {
        if (skipping) {
          if (skippingData) addData(text.slice(start));
        } else {
          line += text.slice(start);
          if (line.length > MAX_LINE_CHARS) {
            // Handled now as a whole line, the rest skipped: a data line's event still counts and
            // dispatches, its data's start and end kept as for any long event.
            endLine(line);
            line = '';
            skipping = true;
          }
        }
      }
      // Pieces of data are slices of this chunk's text, and in engines that share substrings each
      // keeps its whole chunk alive: an event that spans chunks would hold every one of them.
      // Own copies of the (bounded) start and end, when this chunk added to them, let them go.
      if (added) {
        data = (' ' + data).slice(1);
        rest = (' ' + rest).slice(1);
      }
    },
  };
};

/** Fields of an OpenAI-style choice (or its `delta`) that hold output when they hold anything. */
const OUTPUT_FIELDS = ['content', 'text', 'reasoning_content', 'reasoning', 'refusal', 'tool_calls'];

/** A string or a list with something in it. */
const filled = (v: unknown): boolean => (typeof v === 'string' || Array.isArray(v)) && v.length > 0;

/**
 * Whether one SSE event's data is model output, so that the first such event is the first token.
 * LLM streams open with events that carry none, often sent with the headers: OpenAI chat's
 * `role` chunk (empty `content`), Anthropic's `message_start`, `content_block_start` and `ping`,
 * the Responses API's `response.created`, the AI SDK's `start`. So:
 * - data that is not a JSON object (plain text tokens) is output, except `[DONE]`;
 * - an event with a `type` is output when that type is a delta (`content_block_delta`,
 *   `response.output_text.delta`, `text-delta`…), except Anthropic's closing `message_delta`, or
 *   a partial image; for a long event cut short, the type it starts with tells;
 * - OpenAI-style `choices` are output when a choice's `delta` (or the choice itself, for the
 *   completions API) has content, text, reasoning, a refusal or tool calls;
 * - any other JSON is output: a format we do not know, whose first event is the best guess.
 */
export const isOutputEvent = (data: string): boolean => {
  const text = data.trimStart();
  if (text.charCodeAt(0) !== 123) return text !== '[DONE]'; // not '{'
  const payload = parseJson(text) as { type?: unknown; choices?: unknown } | undefined;
  if (!payload) {
    // Cut short (a long event's start) or not JSON: a leading type still tells.
    const type = leadingType(text);
    return type === undefined || isDeltaType(type);
  }
  const { type, choices } = payload;
  if (typeof type === 'string') return isDeltaType(type);
  if (!Array.isArray(choices)) return true;
  return choices.some((choice: unknown) => {
    const d = ((choice as { delta?: unknown } | null)?.delta ?? choice) as Record<string, unknown> | null;
    return !!d && typeof d === 'object' && OUTPUT_FIELDS.some((key) => filled(d[key]));
  });
};

/**
 * A typed event with output: a delta, except Anthropic's closing `message_delta`, or one of the
 * partial images an image generation streams (`response.image_generation_call.partial_image`).
 */
const isDeltaType = (type: string): boolean => (type !== 'message_delta' && type.includes('delta')) || type.endsWith('partial_image');
const LEADING_TYPE_RE = /^\{\s*"type"\s*:\s*"([^"\\]*)"/;

/** The `type` an event's JSON text starts with (`{"type":"message_stop",…`), read without parsing it. */
export const leadingType = (data: string): string | undefined => LEADING_TYPE_RE.exec(data)?.[1];

const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : undefined);

/** A count from `o[key]`, where `o` is an object. */
const field = (o: unknown, key: string): number | undefined => (o && typeof o === 'object' ? num((o as Record<string, unknown>)[key]) : undefined);

/** The usage object in a parsed event or response body. */
const usageIn = (p: unknown): unknown => {
  const o = p as { usage?: unknown; response?: { usage?: unknown }; message?: { usage?: unknown }; usageMetadata?: unknown } | null | undefined;
  // Ollama counts at the top level of its last line (or of its answer).
  return o?.usage ?? o?.response?.usage ?? o?.message?.usage ?? o?.usageMetadata ?? (typeof (o as { eval_count?: unknown } | null)?.eval_count === 'number' ? o : undefined);
};

/**
 * The model that answered, as a parsed answer or event names it: OpenAI's `model` (or the
 * Responses API's `response.model`), Anthropic's `message.model` (in `message_start`), Ollama's
 * `model`, Gemini's `modelVersion`. Only these places: a `model` in a tool's arguments or in
 * content belongs to something else.
 */
export const modelIn = (p: unknown): string | undefined => {
  const o = p as { model?: unknown; modelVersion?: unknown; response?: { model?: unknown }; message?: { model?: unknown } } | null | undefined;
  const m = o?.model ?? o?.modelVersion ?? o?.response?.model ?? o?.message?.model;
  return typeof m === 'string' && m ? m : undefined;
};

/** The model a JSON text names (see {@link modelIn}), parsed only when it may name one and is whole. */
export const modelOf = (text: string): string | undefined => (text.length <= MAX_DATA_CHARS && text.includes('"model') ? modelIn(parseJson(text)) : undefined);

/** The usage object of a whole event's data. */
const usageOf = (data: string): unknown => (data.search(USAGE_RE) >= 0 ? usageIn(parseJson(data)) : undefined);

/**
 * The last usage object in the end of a long event: the response's own in the Responses API's
 * `response.completed`, which comes after its output. Inside a string the key's quotes would be
 * escaped, so what matches is a key; the object runs to its matching brace.
 */
const usageAtEnd = (end: string): unknown => {
  let open = -1;
  for (USAGE_RE.lastIndex = 0; USAGE_RE.test(end); ) open = USAGE_RE.lastIndex - 1;
  for (let i = open, depth = 0; open >= 0 && i < end.length; i++) {
    const c = end[i];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return parseJson(end.slice(open, i + 1));
  }
  return undefined;
};

/**
 * Token usage from one SSE event's data, when it carries any: OpenAI chat completions (final
 * chunk with `stream_options.include_usage`), the OpenAI Responses API (`response.usage`),
 * Anthropic messages (`message.usage` at the start, `usage` in `message_delta`) and Gemini
 * (`usageMetadata`, in every chunk, counting so far). For an event cut short, `end` is its end.
 */
export const usageFromEvent = (data: string, end?: string): Usage | undefined => toUsage(end === undefined ? usageOf(data) : usageAtEnd(end));

/**
 * Token usage from a whole response body as `json()` or `text()` gave it to the app: a call
 * that did not stream, in the same formats as {@link usageFromEvent}. A long text is not parsed
 * again: its usage is read from its end, where all of these formats put it.
 */
export const usageFromBody = (body: unknown): Usage | undefined => {
  // Gemini's streamGenerateContent without `alt=sse` answers a JSON array of chunks; the last has the final counts.
  if (typeof body !== 'string') return toUsage(usageIn(Array.isArray(body) ? body[body.length - 1] : body));
  // A text that parses to no usage (that array, SSE read as text) may still end with some.
  const end = body.slice(-MAX_END_CHARS);
  return (body.length <= MAX_DATA_CHARS ? toUsage(usageOf(body)) : undefined) ?? toUsage(usageAtEnd(end)) ?? ollamaAtEnd(end);
};

const PROMPT_EVAL_RE = /"prompt_eval_count"\s*:\s*(\d+)/;
const EVAL_RE = /"eval_count"\s*:\s*(\d+)/;

/**
 * Ollama's counts at the end of its answer or stream, read without parsing it: its last line
 * may hold a long `context` array before them, cut off in what is kept.
 */
const ollamaAtEnd = (end: string): Usage | undefined => {
  const at = end.lastIndexOf('"eval_count"');
  if (at < 0) return undefined;
  const line = end.slice(end.lastIndexOf('\n', at) + 1);
  return toUsage({ prompt_eval_count: Number(PROMPT_EVAL_RE.exec(line)?.[1]), eval_count: Number(EVAL_RE.exec(line)?.[1]) });
};

/**
 * Usage in Langfuse's terms from a provider's usage object. Cached and reasoning tokens become
 * usage types of their own, with Langfuse's names, and no token is priced twice:
 * - OpenAI counts cached tokens inside the prompt (`input_cached_tokens`) and reasoning inside
 *   the completion (`output_reasoning_tokens`): both are taken out of `input` and `output`;
 * - Gemini counts cached tokens inside the prompt too, and its thinking apart from the
 *   candidates: the thinking becomes `output_reasoning_tokens` and `output` stays as it is;
 * - Anthropic counts cache reads and writes apart from `input_tokens` (`input_cache_read`,
 *   `input_cache_creation`).
 */
const toUsage = (raw: unknown): Usage | undefined => {
  const u = raw as Record<string, unknown> | null | undefined;
  if (!u || typeof u !== 'object') return undefined;
  const usage: Usage = {};
  // Gemini counts the prompts of its tool calls apart from promptTokenCount.
  const prompt = num(u.promptTokenCount);
  // The AI SDK's own names last: promptTokens (its data stream), inputTokens (its usage since v5).
  let input = num(u.prompt_tokens) ?? num(u.input_tokens) ?? (prompt === undefined ? undefined : prompt + (num(u.toolUsePromptTokenCount) ?? 0)) ?? num(u.prompt_eval_count) ?? num(u.promptTokens) ?? num(u.inputTokens);
  let output = num(u.completion_tokens) ?? num(u.output_tokens) ?? num(u.candidatesTokenCount) ?? num(u.eval_count) ?? num(u.completionTokens) ?? num(u.outputTokens);
  const cached = field(u.prompt_tokens_details ?? u.input_tokens_details, 'cached_tokens') ?? num(u.cachedContentTokenCount);
  const reasoning = field(u.completion_tokens_details ?? u.output_tokens_details, 'reasoning_tokens');
  const thoughts = num(u.thoughtsTokenCount);
  if (input !== undefined && cached) {
    usage.input_cached_tokens = Math.min(cached, input);
    input -= usage.input_cached_tokens;
  }
  if (output !== undefined && reasoning) {
    usage.output_reasoning_tokens = Math.min(reasoning, output);
    output -= usage.output_reasoning_tokens;
  }
  if (thoughts) usage.output_reasoning_tokens = thoughts;
  const cacheRead = num(u.cache_read_input_tokens);
  const cacheCreation = num(u.cache_creation_input_tokens);
  if (cacheRead !== undefined) usage.input_cache_read = cacheRead;
  if (cacheCreation !== undefined) usage.input_cache_creation = cacheCreation;
  const total = num(u.total_tokens) ?? num(u.totalTokenCount);
  if (input !== undefined) usage.input = input;
  if (output !== undefined) usage.output = output;
  if (total !== undefined) usage.total = total;
  return Object.keys(usage).length ? usage : undefined;
};
