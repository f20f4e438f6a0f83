import type { IncomingMessage, ServerResponse } from 'node:http';
import { isDecoded } from './decoded';
import { abortedBy } from './abortedBy';
import { checkOptions, fail } from '../config';
import type { AllKeys } from '../lib/checkKeys';
import { warnOnce } from '../lib/reportInternal';
import { isResponseLike } from '../lib/isResponseLike';
import { describe } from '../lib/describe';
import { globalTracer, processTracer } from '../core/scoped';

/** What the Node adapter passes as the handler's third argument, shaped like Workers' `ctx`. */
export interface NodeContext {
  /** Keeps work going after the response; the adapter tracks it for `drain()`. */
  waitUntil(promise: Promise<unknown>): void;
  /** Kept for Workers compatibility; does nothing here. */
  passThroughOnException(): void;
  /** The peer's IP address from the socket. */
  clientAddress?: string;
}

/** Options for {@link toNodeListener}. */
export interface NodeListenerOptions<Env = Record<string, unknown>> {
  /** The handler's second argument. Default `{}`. */
  env?: Env | undefined;
  /**
   * Told about handler errors and failed writes; the adapter has already answered 500 or closed
   * the socket. Default: `console.error`, as Node prints an error nobody handled.
   */
  onError?: ((error: unknown) => void) | undefined;
}

/**
 * Node's `http.IncomingMessage`, by a shape it has. The listener's declared types stop there, so
 * they compile without `@types/node` (a Workers or Deno project that imports `edgetrace/server`);
 * `http.createServer()` passes the real request and response.
 */
export interface NodeRequestLike {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

/** Node's `http.ServerResponse`, by a shape it has (see {@link NodeRequestLike}). */
export interface NodeResponseLike {
  statusCode: number;
  readonly headersSent: boolean;
}

/** A Node `http` request listener that also knows the work it still has in flight. */
export interface NodeListener {
  /** Returns what the listener it wraps returned: a framework that awaits its handler (h3) gets that promise. */
  (req: NodeRequestLike, res: NodeResponseLike): unknown;
  /**
   * Resolves when every `waitUntil` promise registered so far has settled and what the tracer in
   * charge outside requests holds has been sent (`toNodeListener`); e.g. before exit.
   */
  drain(): Promise<void>;
}

type Handler<Env> = (request: Request, env: Env, ctx: NodeContext) => Response | Promise<Response>;

const CALL = 'toNodeListener()';
const LISTENER_LIST = ['env', 'onError'] as const;
const LISTENER_KEYS: AllKeys<NodeListenerOptions, typeof LISTENER_LIST> = LISTENER_LIST;

/**
 * How much of a body the handler did not read is read and dropped, so that the client reads the
 * answer (a sender splits its batch on a 413; a connection cut while it still writes shows it a
 * reset instead) and the connection serves the next request. Past this the connection closes
 * once the answer is out: a client could otherwise go on sending gigabytes after its 413, each
 * read and dropped at a core's full cost.
 */
const DRAIN_MAX_BYTES = 16 * 1024 * 1024;

/**
 * The request body as a stream that reads from `req` only when pulled. A body the handler never
 * reads is left to Node, which discards it after the response (one larger than
 * {@link DRAIN_MAX_BYTES}, or of no declared length, closes the connection instead: see
 * {@link send}); one it stops reading (cancel), or reads only in part before answering, is
 * drained and dropped up to that bound. The connection stays usable for the next request, or,
 * past the bound, closes after the answer.
 */
const bodyStream = (req: IncomingMessage, res: ServerResponse, abort: AbortController): ReadableStream<Uint8Array> => {
  const queue: Uint8Array[] = [];
  let ended = false;
  let failed: unknown;
  let wake: (() => void) | undefined;
  let listening = false;
  const onData = (chunk: Buffer | string): void => {
    queue.push(typeof chunk === 'string' ? new TextEncoder().encode(chunk) : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    req.pause();
    wake?.();
  };
  const onEnd = (): void => {
    ended = true;
    wake?.();
  };
  const onError = (error: unknown): void => {
    // Node's "aborted" (ECONNRESET): the client went away mid-upload. A read then fails with the
    // request signal's AbortError, as the work that follows request.signal does: the client's
    // leaving, not an error of the app's.
    if ((error as { code?: unknown } | null)?.code === 'ECONNRESET') {
      abort.abort();
      failed = abort.signal.reason;
    } else failed = error;
    wake?.();
  };
  const detach = (): void => {
    req.off('data', onData);
    req.off('end', onEnd);
    req.off('error', onError);
  };
  const drain = (): void => {
    detach();
    req.on('error', () => undefined);
    let left = DRAIN_MAX_BYTES;
    const close = (): void => {
      req.socket?.destroy();
    };
    const onDropped = (chunk: Uint8Array): void => {
      left -= chunk.byteLength;
      if (left >= 0) return;
      req.off('data', onDropped);
      req.pause();
      // Say so in the answer when it has not gone yet; end the connection once it has.
      res.shouldKeepAlive = false;
      if (res.writableFinished) close();
      else res.once('finish', close);
    };
    req.on('data', onDropped);
    req.resume();
  };
  // Node discards an unread body itself, but not one with our `data` listener on a paused stream:
  // the next request on this keep-alive connection would wait behind it. A handler still reading
  // (a read waits for the next chunk: `req.text()` in waitUntil after a 202) goes on; one that
  // stopped has the rest dropped, and a read it makes later fails instead of waiting forever.
  res.once('finish', () => {
    if (!listening || ended || failed !== undefined || wake) return;
    failed = new Error('the response was sent before the request body was read; the rest was dropped');
    drain();
  });
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!listening) {
          listening = true;
          req.on('data', onData);
          req.on('end', onEnd);
          req.on('error', onError);
        }
        while (queue.length === 0 && !ended && failed === undefined) {
          await new Promise<void>((resolve) => {
            wake = resolve;
            req.resume();
          });
          wake = undefined;
        }
        const chunk = queue.shift();
        if (chunk) controller.enqueue(chunk);
        else if (failed !== undefined) {
          detach();
          controller.error(failed);
        } else {
          detach();
          controller.close();
        }
      },
      cancel() {
        // Read the rest and drop it, so the next request on this connection can be parsed.
        drain();
      },
    },
    { highWaterMark: 0 },
  );
};

/** The full URL of Node's request: its target on the `Host` it came to, or on localhost. */
export const requestUrl = (req: NodeRequestLike & { readonly socket?: object | null | undefined }): URL => {
  const scheme = (req.socket as { encrypted?: boolean } | null)?.encrypted === true ? 'https' : 'http';
  const host = typeof req.headers.host === 'string' && req.headers.host ? req.headers.host : 'localhost';
  try {
    // The request target is a path on this host: `//other.example/x` is a path too, never a
    // host (new URL() would read it as one, and an origin check would then trust it).
    const target = req.url ?? '/';
    const absolute = target.startsWith('/') ? undefined : new URL(target);
    const path = absolute ? absolute.pathname + absolute.search : target;
    return new URL(`${scheme}://${host}${path}`);
  } catch {
    const root = new URL(`${scheme}://localhost/`);
    try {
      return new URL(req.url ?? '/', root);
    } catch {
      return root;
    }
  }
};

/**
 * Runs `work` keeping the process alive until it settles. For what a caller awaits before it
 * exits (a `drain()`): the unref'd timers inside (an open span's grace, an export's timeout) must
 * not let the process end first, with the await never settled.
 */
export const keepingProcess = async <T>(work: () => Promise<T>): Promise<T> => {
  const hold = setInterval(() => undefined, 60_000);
  try {
    return await work();
  } finally {
    clearInterval(hold);
  }
};

/**
 * Work that goes on after responses (exports), tracked so that `drain()` can wait for it. A
 * promise that rejects is told to `report`.
 */
export const pendingWork = (report: (error: unknown) => void): { waitUntil(promise: Promise<unknown>): void; drain(): Promise<void> } => {
  const pending = new Set<Promise<unknown>>();
  return {
    waitUntil(promise) {
      const p = Promise.resolve(promise).catch(report);
      pending.add(p);
      void p.finally(() => pending.delete(p));
    },
    drain: () =>
      keepingProcess(async () => {
        while (pending.size) await Promise.all([...pending]);
      }),
  };
};

/** Turns Node's request into a fetch `Request`; the body is streamed, not buffered. */
const toRequest = (req: IncomingMessage, res: ServerResponse, abort: AbortController): Request => {
  const url = requestUrl(req);
  const headers = new Headers();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    try {
      // append keeps repeated fields: a second traceparent stays visible as "a, b".
      headers.append(raw[i]!, raw[i + 1]!);
    } catch {
      // A value fetch refuses (a control character Node let through): leave that field out.
    }
  }
  const method = req.method ?? 'GET';
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: abort.signal };
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = bodyStream(req, res, abort);
    init.duplex = 'half';
  }
  return new Request(url, init);
};

/** Writes `response` to Node's `res`, streaming the body with back-pressure. */
const send = async (req: IncomingMessage, res: ServerResponse, response: Response): Promise<void> => {
  res.statusCode = response.status;
  if (response.statusText) res.statusMessage = response.statusText;
  // A body nobody read (a 413 for its declared length, a 415: no `data` listener, as the body
  // stream adds one at its first read), still arriving, and too large to drop for the
  // connection's sake, or of no declared length: the answer says Connection: close, and Node ends
  // the connection after it rather than read the whole upload.
  if (!req.complete && req.listenerCount('data') === 0 && !(Number(req.headers['content-length']) <= DRAIN_MAX_BYTES)) res.shouldKeepAlive = false;
  const cookies = typeof response.headers.getSetCookie === 'function' ? response.headers.getSetCookie() : [];
  // A proxied upstream's body arrives decompressed: its length and encoding no longer apply.
  const decoded = isDecoded(response);
  response.headers.forEach((value, name) => {
    if (name === 'set-cookie' && cookies.length) return;
    if (decoded && (name === 'content-encoding' || name === 'content-length')) return;
    res.setHeader(name, value);
  });
  if (cookies.length) res.setHeader('set-cookie', cookies);
  const body = response.body;
  // The client may have gone while the handler was still working: nothing will read the body.
  if (res.destroyed) {
    await body?.cancel().catch(() => undefined);
    return;
  }
  if (!body || req.method === 'HEAD') {
    // A HEAD response has no body; cancelling tells the stream (and a span waiting on it) so.
    await body?.cancel().catch(() => undefined);
    res.end();
    return;
  }
  const reader = body.getReader();
  const closed = new Promise<void>((resolve) => res.once('close', resolve));
  let gone = false;
  void closed.then(() => {
    gone = true;
    if (!res.writableFinished) reader.cancel().catch(() => undefined);
  });
  const tick = (): Promise<undefined> => new Promise((resolve) => setImmediate(resolve, undefined));
  let current = await reader.read();
  while (!current.done && !gone) {
    const chunk = current.value;
    const next = reader.read();
    // A body that is already complete (a string, JSON) goes out in one write with its
    // Content-Length: writing the chunk and the end apart costs a packet and, with delayed ACKs,
    // tens of milliseconds. A stream still producing (SSE) is not held back: one tick at most.
    const ready = await Promise.race([next, tick()]);
    if (ready?.done) {
      res.end(chunk);
      return;
    }
    if (!res.write(chunk)) await Promise.race([new Promise((resolve) => res.once('drain', resolve)), closed]);
    current = await next;
  }
  if (!gone) res.end();
};

/** Where a `(req, res)` listener goes instead of toNodeListener. */
const LISTENER_HINT = 'a (req, res) listener (Express, Koa, Fastify) is served with createServer(listener) as it is, and traced with withNodeTracing(listener)';


/**
 * Adapts a fetch-style handler, such as one wrapped by `withTracing` or a collector's `fetch`, to
 * Node's `http.createServer()`: builds a `Request` (repeated header fields kept, body streamed,
 * aborted when the client goes away), passes `env` and a Workers-like `ctx` whose `waitUntil`
 * keeps promises tracked, and streams the `Response` back with back-pressure. A handler that
 * throws, or answers with something other than a Response, gets a 500 (or a closed socket once
 * headers are out); the server keeps running.
 */
export const toNodeListener = <Env = Record<string, unknown>>(handler: Handler<Env>, opts: NodeListenerOptions<Env> = {}): NodeListener => {
  // Mistakes throw here, at start-up, not as a 500 on every request.
  if (typeof handler !== 'function') fail(CALL, 'handler', 'a fetch-style handler, (request, env, ctx) => Response', handler);
  checkOptions(CALL, opts, LISTENER_KEYS);
  if (opts.onError !== undefined && typeof opts.onError !== 'function') fail(CALL, 'onError', 'a function', opts.onError);
  // One object for every request: withTracing keys its per-env setup on it.
  const env = (opts.env ?? {}) as Env;
  const report = (error: unknown): void => {
    try {
      if (opts.onError) opts.onError(error);
      else console.error('[edgetrace] toNodeListener:', error);
    } catch {
      // An onError that throws must not take the server down.
    }
  };
  const work = pendingWork(report);

  const listener = ((req: IncomingMessage, res: ServerResponse) => {
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    const ctx: NodeContext = {
      waitUntil: work.waitUntil,
      passThroughOnException() {},
      clientAddress: req.socket?.remoteAddress,
    };
    /** A handler that threw, or a response that failed while sent: 500 if nothing went out yet. */
    const fail = (error: unknown): void => {
      // A client that went away aborts what follows request.signal (a proxied stream): that abort
      // is not an error of the app's to print; anything else is, client or not.
      if (!abortedBy(abort.signal, error)) report(error);
      if (!res.headersSent) {
        // Headers the response set before its body failed (its Content-Length, cookies) are
        // not this reply's: a length it does not have would leave the client waiting.
        for (const name of res.getHeaderNames()) res.removeHeader(name);
        res.writeHead(500, 'Internal Server Error', { 'content-type': 'text/plain; charset=utf-8' });
        res.end('Internal Server Error');
      } else res.destroy();
    };
    const run = async (): Promise<void> => {
      let request: Request;
      try {
        request = toRequest(req, res, abort);
      } catch (error) {
        // A request fetch cannot represent (CONNECT, TRACE, a method name it refuses): the
        // client's mistake, not the handler's.
        const forbidden = /^(CONNECT|TRACE|TRACK)$/i.test(req.method ?? '');
        res.writeHead(forbidden ? 405 : 400, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`${forbidden ? 'Method Not Allowed' : 'Bad Request'}: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
      let response: Response;
      try {
        response = await handler(request, env, ctx);
        if (!isResponseLike(response)) {
          throw new TypeError(`[edgetrace] toNodeListener(): the handler returned ${describe(response)}, not a Response. A fetch-style handler answers with a Response (or a promise of one); ${LISTENER_HINT}.`);
        }
      } catch (error) {
        // A (req, res) listener given env for its `res`: its error names only the missing method.
        const method = error instanceof TypeError ? /\b(setHeader|writeHead) is not a function/.exec(error.message)?.[1] : undefined;
        if (method) warnOnce('toNodeListener-listener', `toNodeListener(): the handler called ${method}() on its second argument, which here is env, not Node's response: ${LISTENER_HINT}.`, true);
        fail(error);
        return;
      }
      await send(req, res, response).catch(fail);
    };
    run().catch(report);
  }) as NodeListener;
  // Then what the tracer in charge outside requests holds (init()'s, else the traced handler's,
  // with the background jobs'), sent past any backoff: before exit, nothing is left for later.
  listener.drain = () => work.drain().then(() => keepingProcess(async () => (globalTracer() ?? processTracer(false))?.flush()));
  return listener;
};
