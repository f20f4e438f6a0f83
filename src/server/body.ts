import { reportInternal } from '../lib/reportInternal';
import { within } from '../lib/within';
import { unref } from '../lib/unref';

/** How a response body finished. */
export interface BodyEnd {
  /** Bytes the consumer read. */
  bytes: number;
  /** The consumer stopped reading (client went away, HEAD, a runtime that drops the body). */
  cancelled?: boolean;
  /** The body's source failed. */
  error?: unknown;
  /** Nobody started reading the body in time (a router dropped the response, say). */
  unread?: boolean;
}

/**
 * How long a response may wait for its first read before its span ends as unread: a body nobody
 * takes would otherwise keep the span, and the flush waiting on it, open for good.
 */
export const UNREAD_MS = 30_000;

/** How long a cancel waits for the body's source to hear of it before the span ends. */
const CANCEL_WAIT_MS = 1000;

const sizeOf = (chunk: unknown): number =>
  chunk instanceof Uint8Array || chunk instanceof ArrayBuffer ? chunk.byteLength : typeof chunk === 'string' ? chunk.length : 0;

/**
 * Passes `body` through, chunk by chunk as the consumer pulls (nothing is read ahead, buffered or
 * cloned, so endless streams stay cheap), and calls `onEnd` once when the body is done, failed
 * or cancelled. The returned stream closes only after the promise `onEnd` returns has settled,
 * which lets a runtime without `waitUntil` finish a flush while the response is still open.
 * When `clientGone` aborts, the body is cancelled as if its consumer had cancelled it.
 */
export const observeBody = (
  body: ReadableStream<Uint8Array>,
  onEnd: (end: BodyEnd) => Promise<unknown> | void,
  unreadMs = UNREAD_MS,
  clientGone?: AbortSignal,
): ReadableStream<Uint8Array> => {
  const reader = body.getReader();
  let bytes = 0;
  let ended = false;
  let cancelled = false;
  // Ends the watch, not the body: a consumer that comes later still gets every chunk.
  let unread: ReturnType<typeof setTimeout> | undefined = unref(setTimeout(() => void finish({ bytes: 0, unread: true }), unreadMs));
  const started = (): void => {
    clearTimeout(unread);
    unread = undefined;
  };
  const finish = async (end: BodyEnd): Promise<void> => {
    if (ended) return;
    ended = true;
    try {
      await onEnd(end);
    } catch (error) {
      reportInternal(error);
    }
  };
  // The consumer cancelled, or the client went away. Cancelling the source answers a read still
  // pending (a stream waiting for its next token) with done: pull() must record that as a cancel
  // too. The source hears of it first, so what its own cancel handler records makes the span; a
  // source whose cancel hangs holds the span for at most CANCEL_WAIT_MS.
  const cancel = async (reason: unknown): Promise<void> => {
    started();
    cancelled = true;
    await within(reader.cancel(reason).catch(() => undefined), CANCEL_WAIT_MS, () => undefined);
    await finish({ bytes, cancelled: true });
  };
  // The request's signal, where the runtime aborts it when the client disconnects (Node through
  // toNodeListener, Deno, Bun, workerd with enable_request_signal): a read waiting on an upstream
  // body may then never settle and cancel() never come (workerd).
  if (clientGone && typeof clientGone.addEventListener === 'function') {
    const gone = (): void => void (ended || cancel(clientGone.reason));
    if (clientGone.aborted) gone();
    else clientGone.addEventListener('abort', gone, { once: true });
  }
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        started();
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (error) {
          // A source that follows the request's signal (a proxied upstream body) may fail with
          // the client's abort before the signal's listener runs (Bun): still the client's leaving.
          await finish(cancelled || clientGone?.aborted ? { bytes, cancelled: true } : { bytes, error });
          controller.error(error);
          return;
        }
        if (chunk.done) {
          await finish(cancelled ? { bytes, cancelled } : { bytes });
          controller.close();
          return;
        }
        bytes += sizeOf(chunk.value);
        controller.enqueue(chunk.value);
      },
      cancel,
    },
    // Pull only when the consumer asks, so the span ends with the last byte actually taken.
    { highWaterMark: 0 },
  );
};
