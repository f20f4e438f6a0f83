import type { ClientRequest, IncomingMessage, RequestOptions } from 'node:http';
import { inject } from '../propagation/index';
import { markCancelled, readsStream, type Generation, type Span } from '../core/span';
import { BODY_IDLE_MS } from '../instrument/stream';
import { now } from '../lib/now';
import { unref } from '../lib/unref';
import { fillsGeneration, generationBody, generationOf } from '../instrument/generationBody';
import { baggageFor, isBaggageHeader, isTraceHeader, setHttpFailure, setHttpStatus } from '../instrument/http';
import { reportInternal } from '../lib/reportInternal';
import { patch } from '../lib/patch';
import { builtin } from './builtin';
import { joinHeader } from '../propagation/carrier';
import { clientRequestAttributes, errorType, parseUrl, spanMethod } from './httpAttributes';
import { isAbortError } from '../lib/isAbortError';
import { outgoingParent } from './scope';

type Send = (...args: unknown[]) => ClientRequest;
interface HttpModule {
  request: Send;
  get: Send;
}

// Undoes the wrappers in place, while they are (see `patch`: one undone passes calls through).
let installed: (() => void) | undefined;

/** Node's own test for a URL object given in place of a string (`isURL` in lib/internal/url). */
const isUrlLike = (value: unknown): value is URL =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as URL).href === 'string' &&
  typeof (value as URL).protocol === 'string' &&
  (value as { auth?: unknown }).auth === undefined &&
  (value as { path?: unknown }).path === undefined;

/** The arguments of `request()`/`get()` in one form: `(url?, options, callback?)`. */
interface Call {
  url: string | URL | undefined;
  /** The options' own properties, each read once, as Node copies them. */
  options: RequestOptions;
  callback: unknown;
}

const readCall = (args: unknown[]): Call => {
  const [a, b, c] = args;
  const [url, options, callback] = typeof a === 'string' || isUrlLike(a) ? (typeof b === 'function' ? [a, {}, b] : [a, b ?? {}, c]) : [undefined, a ?? {}, b];
  if (typeof options !== 'object') throw new TypeError('options is not an object');
  return { url, options: { ...(options as RequestOptions) }, callback };
};

/**
 * The URL the request goes to, as Node puts it together: the options laid over the URL's own
 * (Node's `urlToHttpOptions`; an option given as undefined counts), `hostname` before `host` (so
 * a `host` beside a URL changes nothing), then the defaults: the agent's protocol, `localhost`,
 * `/`. A CONNECT's path is the tunnel's target, not a path: its URL is the proxy's origin.
 */
const hrefOf = ({ url, options }: Call, defaultProtocol: string): string => {
  const base = url === undefined ? undefined : typeof url === 'string' ? new URL(url) : url;
  const merged: RequestOptions = base ? { protocol: base.protocol, hostname: base.hostname, port: base.port, path: base.pathname + base.search, ...options } : options;
  const agent = merged.agent as { protocol?: unknown } | undefined | false;
  const protocol = merged.protocol || (agent && typeof agent.protocol === 'string' ? agent.protocol : defaultProtocol);
  let host = String(merged.hostname || merged.host || 'localhost').replace(/^\[(.*)\]$/, '$1');
  if (host.includes(':')) host = `[${host}]`;
  const port = merged.port || merged.defaultPort;
  const path = String(merged.method).toUpperCase() === 'CONNECT' ? '' : merged.path || '/';
  return `${protocol}//${host}${port ? `:${port}` : ''}${path}`;
};

/**
 * `headers` with `span`'s trace headers and the trace's baggage: a proxied request's own
 * `traceparent` and `tracestate` are replaced (they belong to the caller's span), a `baggage`
 * header it carries keeps its members, and the trace's others go after them. Node takes headers
 * as an object, a flat `[name, value, …]` list or a list of `[name, value]` pairs; a list Node
 * would refuse is left for Node to refuse (undefined).
 */
const withTraceHeaders = (headers: unknown, span: Span): unknown => {
  let pairs: [unknown, unknown][];
  if (Array.isArray(headers)) {
    if (headers.length > 0 && Array.isArray(headers[0])) {
      if (!headers.every((pair) => Array.isArray(pair) && pair.length === 2)) return undefined;
      pairs = headers as [unknown, unknown][];
    } else {
      if (headers.length % 2 !== 0) return undefined;
      pairs = [];
      for (let i = 0; i < headers.length; i += 2) pairs.push([headers[i], headers[i + 1]]);
    }
  } else {
    pairs = headers && typeof headers === 'object' ? Object.entries(headers) : [];
  }
  const kept = pairs.filter(([name]) => !isTraceHeader(String(name)));
  inject(span.spanContext(), (name, value) => void kept.push([name, value]));
  const at = kept.findIndex(([name]) => isBaggageHeader(String(name)));
  const own = at < 0 ? undefined : String(kept[at]![1]);
  const more = baggageFor(span, own);
  if (more) {
    if (at < 0) kept.push(['baggage', more]);
    else kept[at] = [kept[at]![0], `${own},${more}`];
  }
  if (!Array.isArray(headers)) return Object.fromEntries(kept);
  return Array.isArray(headers[0]) ? kept : kept.flat();
};

/** Sets `object[key]` to `fn`, a method of its own that, like the prototype's, is not enumerable. */
const ownMethod = <T extends object, K extends keyof T>(object: T, key: K, fn: T[K]): void => {
  Object.defineProperty(object, key, { value: fn, writable: true, configurable: true, enumerable: false });
};

/**
 * Whether `error`, given to `req.destroy()`, makes it a cancel: no error, an `AbortError`, or
 * the cancel of a client library (axios's `CanceledError`, got's `CancelError`), unless it says
 * a timeout ended it (an `AbortSignal.timeout()` reaches Node as an `AbortError` whose cause is
 * a `TimeoutError`). A timeout's error, or any other, makes the call a failure.
 */
const isCancel = (error: unknown): boolean => {
  if (error === undefined || error === null) return true;
  try {
    const { name, code, cause } = error as { name?: unknown; code?: unknown; cause?: { name?: unknown } };
    if (name === 'TimeoutError' || cause?.name === 'TimeoutError') return false;
    return isAbortError(error) || name === 'CanceledError' || name === 'CancelError' || code === 'ERR_CANCELED';
  } catch {
    return false;
  }
};

type Inflate = (data: Uint8Array, options: { maxOutputLength: number }) => Uint8Array;
interface Zlib {
  gunzipSync: Inflate;
  inflateSync: Inflate;
  brotliDecompressSync: Inflate;
}

// A compressed answer is kept up to MAX_COMPRESSED_BYTES and inflated at its end, on the event
// loop, up to MAX_INFLATED_BYTES: a model's JSON answer is a few kB, and one that is more holds
// no usage we need that badly.
const MAX_COMPRESSED_BYTES = 1 << 16;
const MAX_INFLATED_BYTES = 1 << 20;
// Of an answer, its start is kept, or once it is longer, its end: usageFromBody reads the one or
// the other. (The lengths stream.ts keeps; importing them from there changed how the build
// splits the page's chunks.)
const MAX_DATA_CHARS = 1 << 16;
const MAX_END_CHARS = 1 << 15;

/** How to inflate a body sent with `encoding`: undefined for none, null for one we cannot read. */
const inflaterFor = (encoding: string | undefined): ((data: Uint8Array) => Uint8Array) | undefined | null => {
  const e = encoding?.trim().toLowerCase();
  if (!e || e === 'identity') return undefined;
  const zlib = builtin<Zlib>('node:zlib');
  const inflate = !zlib ? undefined : e === 'gzip' || e === 'x-gzip' ? zlib.gunzipSync : e === 'deflate' ? zlib.inflateSync : e === 'br' ? zlib.brotliDecompressSync : undefined;
  return inflate ? (data) => inflate(data, { maxOutputLength: MAX_INFLATED_BYTES }) : null;
};

/**
 * Follows the body of a model call's response as the app reads it (any way it reads: `data`
 * listeners, `pipe()`, `for await`, all of which emit `data`), for the generation the call was
 * made in: a stream's first-token time and usage (an event stream, JSON lines, text), a JSON
 * answer's usage. Other bodies (audio,
 * images, files) are not read. Only an answer's start (or, for a longer one, its end) is kept; a
 * compressed answer is kept as it came and inflated at its end, before the app hears of the end.
 * A compressed stream is not followed.
 */
const followBody = (res: IncomingMessage, gen: Generation): void => {
  // `ok` as fetch has it: an error's text (a 429's, a 500's) is no stream of tokens.
  const ok = (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300;
  const body = generationBody({ ok, headers: { get: (name) => joinHeader(res.headers[name]) ?? null } }, gen);
  // Event streams, JSON (and JSON lines, Ollama's stream) and text streams; not audio or files.
  if (!body.isSse && !/json|^\s*text\/plain/i.test(joinHeader(res.headers['content-type']) ?? '')) return;
  const inflate = inflaterFor(joinHeader(res.headers['content-encoding']));
  if (inflate === null || (inflate && body.isSse)) return;
  const decoder = new TextDecoder();
  let text = '';
  /** Keeps `chunk`'s text (the start, or for a longer answer the end) and returns it. */
  const append = (chunk: unknown): string => {
    const piece = typeof chunk === 'string' ? chunk : ArrayBuffer.isView(chunk) ? decoder.decode(chunk, { stream: true }) : '';
    text += piece;
    if (text.length > MAX_DATA_CHARS) text = text.slice(-MAX_END_CHARS);
    return piece;
  };
  let packed: Uint8Array[] | undefined = [];
  let packedBytes = 0;
  let lastMs = now();
  const take = (chunk: unknown): void => {
    lastMs = now();
    if (body.isSse) body.push(chunk, lastMs);
    // A stream of lines or text: its first chunk with text is the first token.
    else if (!inflate) body.push(append(chunk), lastMs);
    else if (packed && chunk instanceof Uint8Array) {
      packedBytes += chunk.length;
      if (packedBytes <= MAX_COMPRESSED_BYTES) packed.push(chunk);
      else packed = undefined;
    }
  };
  // A model stream: the generation waits for its read, whatever its callback returns (an SDK's
  // stream object, made at the head). Read to its end or closed, else given up on once nobody has
  // listened for BODY_IDLE_MS (a listener waiting for the next chunk is a reader still reading).
  const read = body.isStream ? readsStream(gen) : undefined;
  let idle: ReturnType<typeof setTimeout> | undefined;
  const watchIdle = (delayMs: number): void => {
    idle = unref(
      setTimeout(() => {
        const quietMs = now() - lastMs;
        // A reader waiting: for await (a 'readable' listener), or a 'data' listener the body
        // flows to. A pipe that the app stopped reading (node-fetch's, at the head) pauses it.
        if (res.listenerCount('readable') > 0 || (res.listenerCount('data') > 0 && res.readableFlowing === true)) return watchIdle(BODY_IDLE_MS);
        if (quietMs < BODY_IDLE_MS) return watchIdle(BODY_IDLE_MS - quietMs);
        idle = undefined;
        read!(lastMs);
      }, delayMs),
    );
  };
  if (read) watchIdle(BODY_IDLE_MS);
  let ended = false;
  const finish = (): void => {
    if (ended) return;
    ended = true;
    if (inflate && packed) {
      try {
        const bytes = inflate(Buffer.concat(packed));
        // A long answer's usage is at its end: only that much is decoded.
        append(bytes.length > MAX_DATA_CHARS ? bytes.subarray(Math.max(0, bytes.length - 4 * MAX_END_CHARS)) : bytes);
      } catch {
        // Cut short, larger than kept, or not what its header says: no usage to read.
      }
    }
    try {
      body.end(body.isSse ? undefined : text);
    } finally {
      if (idle) {
        clearTimeout(idle);
        // Read to its last event: at its last chunk (what a reader does after it is its own).
        read!(body.done ? lastMs : now());
      }
    }
  };
  const emit = res.emit;
  ownMethod(res, 'emit', function (this: IncomingMessage, event: string | symbol, ...args: unknown[]): boolean {
    try {
      if (event === 'data') take(args[0]);
      else if (event === 'end' || event === 'close') finish();
    } catch (error) {
      reportInternal(error);
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as typeof res.emit);
};

/**
 * Follows `req` through its events without listening to them: a `response` listener would keep
 * Node from discarding a body the app never reads, and an `error` listener would swallow an
 * error the app does not handle. The span ends when the response head arrives (or the answer
 * to an upgrade or a CONNECT), as a traced `fetch()`'s does, or with the error or the close
 * that came first. `onResponse` is given the response.
 */
const follow = (req: ClientRequest, span: Span, onResponse?: (res: IncomingMessage) => void): void => {
  // Whether the caller destroyed the request before its answer, to cancel it; and whether Node
  // said it timed out first (its `timeout` event, after which the app destroys it).
  let cancelled = false;
  let timedOut = false;
  const destroy = req.destroy;
  ownMethod(req, 'destroy', function (this: ClientRequest, ...args: [Error?]) {
    if (!span.isEnded && !timedOut && isCancel(args[0])) cancelled = true;
    return Reflect.apply(destroy, this, args) as ClientRequest;
  });
  const emit = req.emit;
  ownMethod(req, 'emit', function (this: ClientRequest, event: string | symbol, ...args: unknown[]): boolean {
    if (!span.isEnded) {
      try {
        if (event === 'response' || event === 'upgrade' || event === 'connect') {
          const res = args[0] as IncomingMessage;
          setHttpStatus(span, res.statusCode ?? 0);
          span.end();
          if (event === 'response') onResponse?.(res);
        } else if (event === 'timeout') {
          timedOut = true;
        } else if (event === 'error') {
          try {
            // The socket's "socket hang up" after a cancel the caller chose (an abort through
            // the `signal` option included): the call did not fail.
            span.setAttribute('error.type', timedOut ? 'timeout' : errorType(args[0]));
            if (cancelled) markCancelled(span);
            else span.recordError(args[0]);
          } finally {
            span.end();
          }
        } else if (event === 'abort' || event === 'close') {
          // `req.abort()` (which older clients use to cancel; the 'error' of the socket it
          // closes comes after), or a close before an answer with no error at all. After
          // Node's `timeout`, it is how the app gave up waiting.
          if (timedOut) {
            span.setAttribute('error.type', 'timeout');
            span.setStatus('error', 'timed out');
          } else {
            markCancelled(span);
          }
          span.end();
        }
      } catch (error) {
        reportInternal(error);
      }
    }
    return Reflect.apply(emit, this, [event, ...args]) as boolean;
  } as typeof req.emit);
};

/**
 * `request` or `get` of `http` or `https` that, inside a request handled by `withNodeTracing` or
 * `withTracing`, records a CLIENT span with the trace headers injected (for URLs the handler's
 * `propagateTo` allows). The caller gets the very `ClientRequest` Node made. Inside a generation
 * (a model call through an SDK that sends with `http.request`), the body fills the generation as
 * a traced `fetch()`'s does.
 */
const traced = (original: Send, defaultProtocol: string): Send => {
  const send = function (this: unknown, ...args: unknown[]): ClientRequest {
    const out = outgoingParent();
    const parent = out?.traceFetch ? out.span : undefined;
    if (!out || !parent) return Reflect.apply(original, this, args);
    let span: Span | undefined;
    let sent = args;
    let method = 'GET';
    try {
      const call = readCall(args);
      const { options } = call;
      const href = hrefOf(call, defaultProtocol);
      method = options.method ?? 'GET';
      const url = parseUrl(href);
      // Node gets the copy read here: a getter of the caller's is read once, as without us.
      sent = call.url === undefined ? [options, call.callback] : [call.url, options, call.callback];
      span = parent.startSpan(spanMethod(method), { kind: 'client', attributes: clientRequestAttributes(method, href, url) });
      const headers = out.propagate(href, url) ? withTraceHeaders(options.headers, span) : undefined;
      if (headers) options.headers = headers as RequestOptions['headers'];
    } catch (error) {
      // Arguments Node itself will refuse, a hostile options object: sent as the caller gave them.
      reportInternal(error);
      span?.end();
      span = undefined;
      sent = args;
    }
    let req: ClientRequest;
    try {
      req = Reflect.apply(original, this, sent);
    } catch (error) {
      // Node refused the arguments (an invalid header, an unknown protocol): the caller's error.
      if (span) {
        setHttpFailure(span, error, errorType(error));
        span.end();
      }
      throw error;
    }
    if (span) {
      try {
        const gen = generationOf(parent);
        follow(req, span, gen && ((res) => fillsGeneration(gen, res.statusCode ?? 0, method) && followBody(res, gen)));
      } catch (error) {
        reportInternal(error);
        span.end();
      }
    }
    return req;
  };
  // Named and sized as Node's, for code that looks (`request.name`, `request.length`): `patch`
  // gives its wrapper these.
  return Object.defineProperties(send, { name: { value: original.name }, length: { value: original.length } });
};

const esmSync = (): void => {
  try {
    builtin<{ syncBuiltinESMExports?(): void }>('node:module')?.syncBuiltinESMExports?.();
  } catch (error) {
    reportInternal(error);
  }
};

const install = (): void => {
  const undo: (() => void)[] = [];
  for (const [id, protocol] of [
    ['node:http', 'http:'],
    ['node:https', 'https:'],
  ] as const) {
    const module = builtin<HttpModule>(id);
    if (!module) continue;
    for (const name of ['request', 'get'] as const) {
      if (typeof module[name] !== 'function') continue;
      try {
        undo.push(patch(module, name, (original) => traced(original, protocol)));
      } catch (error) {
        reportInternal(error);
      }
    }
  }
  if (undo.length === 0) return;
  installed = () => {
    for (const u of undo) u();
    esmSync();
  };
  esmSync();
};

/**
 * Traces Node's `http.request`, `http.get`, `https.request` and `https.get` (and so axios, got,
 * node-fetch and the rest built on them) inside requests handled by `withNodeTracing` or
 * `withTracing`, as {@link instrumentServerFetch} traces `fetch()`; ES module imports of them see
 * the wrappers too. Outside a traced request the calls go straight through. Node 20.16 and
 * later; elsewhere (Deno and Bun, whose `node:http` is their own, Workers, Vercel Edge) it does
 * nothing. Calling it again while installed changes nothing. Returns a function that removes the
 * wrappers still in place (one wrapped again by another library stays, passing calls through).
 */
export const instrumentNodeHttp = (): (() => void) => {
  const versions = (globalThis as { process?: { versions?: Record<string, string | undefined> } }).process?.versions;
  if (!installed && versions?.node && !versions.bun && !('Deno' in globalThis)) install();
  const mine = installed;
  return () => {
    if (!mine || installed !== mine) return;
    installed = undefined;
    mine();
  };
};
