import type { Exporter, ExportResult, TelemetryRecord } from '../protocol';
import { backoffMs, batchSizer, callExporter, EXPORT_TIMEOUT_MS, type SpanProcessor } from '../core/processors';
import { stampDropped } from '../lib/stampDropped';
import { reportInternal, warnOnce } from '../lib/reportInternal';
import { currentScope, inRequest, outsideRequest } from './scope';
import { unref } from '../lib/unref';
import { isProcess } from './runtimeResource';

/**
 * Says once, whatever `debug` is, that the exporter refused a batch for good: nearly always the
 * setup (a wrong URL, token or key), which every later export meets too, or spans would vanish
 * unexplained. Likewise, once, a receiver that took a batch but refused some of its spans (OTLP
 * `partialSuccess`: a bound or a rule of the receiver's), which are not sent again; and the first
 * export that failed and is kept to be sent again (a receiver down, or a wrong port: without a
 * word, a first setup would look like one that works). One teller per exporter.
 */
export const refusalTeller = (): ((result: ExportResult) => void) => {
  let said = false;
  let saidTooLarge = false;
  let saidPartly = false;
  let saidRetry = false;
  const say = (text: string): void => {
    try {
      console.warn(`[edgetrace] ${text}`);
    } catch {
      // A console replaced by the host.
    }
  };
  return (result) => {
    if (result.ok && result.rejected && !saidPartly) {
      saidPartly = true;
      say(`the receiver refused ${result.rejected} record(s) of a batch it took: ${result.reason ?? 'no reason given'}. Later ones are not logged.`);
    }
    if (result.ok) return;
    if (result.retryable) {
      // A 413 the processor splits and sends again in halves is no failure of the setup's.
      if (result.status === 413) return;
      if (!saidRetry) say(`an export failed and is kept to be sent again: ${result.reason ?? 'no reason given'}. Later failures are not logged.`);
      saidRetry = true;
      return;
    }
    // One record too large for the receiver is that record's, not the setup's: told apart, so
    // that a wrong key after it is still told.
    if (result.status === 413) {
      if (!saidTooLarge) say(`a record too large for the receiver was dropped: ${result.reason ?? 'HTTP 413'}. Later ones are not logged.`);
      saidTooLarge = true;
      return;
    }
    if (!said) say(`the exporter refused a batch, which is dropped: ${result.reason ?? 'no reason given'}. Later refusals are not logged.`);
    said = true;
  };
};

/** Options for {@link requestProcessor}. */
export interface RequestProcessorOptions {
  /** Records per export call. Default 512. */
  maxBatchSize?: number | undefined;
  /** Records held between flushes; beyond it the oldest are dropped and counted. Default 2048. */
  maxQueueSize?: number | undefined;
  /** How long one export may take before it counts as a failed, retryable attempt. Default 30000 ms. */
  exportTimeoutMs?: number | undefined;
}

/** A request processor, plus what it holds and what it had to drop. */
export interface RequestProcessor extends SpanProcessor {
  /** Records waiting for the next flush. */
  queued(): number;
  /** Records dropped so far (queue full, or a permanent export failure). */
  dropped(): number;
}

/** How long what a process records outside its requests waits to be sent, as a batch processor's `delayMs`. */
export const OUTSIDE_DELAY_MS = 1000;
/** Failures in a row after which the timer no longer tries again (see {@link OUTSIDE_DELAY_MS}). */
const OUTSIDE_TRIES = 5;

/**
 * Holds finished records until `forceFlush()`, which `withTracing` calls once per request inside
 * that request's `waitUntil`. No batching timers: edge runtimes freeze or evict an isolate between
 * requests, and in Workers a timer that fires during another request may not do I/O for the one
 * that set it. There the only timer bounds an export in flight (`exportTimeoutMs`), inside the
 * flush that started it. In a process (Node, Deno, Bun), what is recorded outside any request (a
 * background job, work that runs on after its request) is sent {@link OUTSIDE_DELAY_MS} later
 * by a timer, since no request's flush may come. A retryable failure puts the records back for
 * the next request's flush (within the queue bound), and the flushes of the requests that follow
 * send nothing until a backoff has passed (doubling from under a second up to 30 s) or the
 * receiver's `Retry-After`: a receiver that is down or throttling is not sent the whole queue
 * again by every request. A permanent failure drops and
 * counts them; a 413 (too large) sends the batch again in halves, and later exports start at the
 * size that was accepted. In a process (Node, Deno, Bun), a flush outside any request (a shutdown
 * hook, a background job that ends, `listener.drain()`) and `shutdown()` wait for the exports
 * still running, then try what is held whatever the wait; in an isolate (Workers), a flush outside
 * the wrapped handlers tries what is held whatever the wait, but waits for its own exports only.
 */
export const requestProcessor = (exporter: Exporter, opts: RequestProcessorOptions = {}): RequestProcessor => {
  const maxBatchSize = Math.max(1, opts.maxBatchSize ?? 512);
  const maxQueueSize = Math.max(1, opts.maxQueueSize ?? 2048);
  const exportTimeoutMs = Math.max(1, opts.exportTimeoutMs ?? EXPORT_TIMEOUT_MS);
  let queue: TelemetryRecord[] = [];
  let pendingDrops = 0;
  let droppedTotal = 0;
  const tellRefusal = refusalTeller();
  /**
   * Retryable failures in a row, and until when flushes wait because of them. Flushes overlap (one
   * per request), so a failure counts only for an export that started after the last counted one
   * (`epoch` tells), and only such an export's success ends the series: the batches of one flush
   * that fail together, or an export that started before an outage and succeeds during it, do
   * not move the wait.
   */
  let failures = 0;
  let notBefore = 0;
  let epoch = 0;
  /** Records per export, learned from 413s as the batch processor learns them. */
  const sizer = batchSizer(maxBatchSize);
  /** The receiver's own Retry-After, which a success of an export started earlier does not lift. */
  let retryAfterUntil = 0;
  const running = new Set<Promise<void>>();
  const longLived = isProcess();

  /** Counts `n` records lost; those the queue's bound pushed out (`full`) are said once whatever `debug` is (the refusal teller says its own). */
  const drop = (n: number, full = false): void => {
    if (n <= 0) return;
    pendingDrops += n;
    droppedTotal += n;
    if (full) warnOnce('request-dropped', `dropped ${n} record(s): the export queue is full (${maxQueueSize}; is the receiver down?). Later drops are not logged.`, true);
  };

  const add = (record: TelemetryRecord): void => {
    if (queue.length >= maxQueueSize) {
      queue.shift();
      drop(1, true);
    }
    queue.push(record);
    // No request's flush comes for what a process records outside its requests (a background
    // job's, or one a request set going that runs on after the response): a timer sends it.
    // A request's own SERVER span ends after its handler, and its flush follows.
    if (longLived && timer === undefined && !closed && (record as { kind?: unknown }).kind !== 'server') {
      const scope = currentScope();
      if (!scope || scope.root.isEnded) sendLater();
    }
  };

  /** The timer that sends what was recorded outside requests, in a process; none after shutdown. */
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const sendLater = (): void => {
    const wait = Math.max(OUTSIDE_DELAY_MS, Math.max(notBefore, retryAfterUntil) - Date.now());
    // Armed as edgetrace's own work: its export is never traced. Unref'd: a process with nothing
    // else to do exits, and its exit flush sends what is held.
    timer = outsideRequest(() =>
      unref(
        setTimeout(() => {
          void flush().then(() => {
            timer = undefined;
            // Kept after a failure: tried again once the wait has passed, a few times (a tracer a
            // hot reload dropped must not try for good), then left for a request's flush or the exit.
            if (queue.length && !closed && failures < OUTSIDE_TRIES) sendLater();
          });
        }, wait),
      ),
    );
  };

  const exportBatch = async (batch: TelemetryRecord[]): Promise<void> => {
    // The count travels on a copy of the next batch's first span, as the batch processor does it.
    const sent = batch.slice();
    const carried = pendingDrops && stampDropped(sent, pendingDrops) >= 0 ? pendingDrops : 0;
    pendingDrops -= carried;
    const started = epoch;
    const result = await callExporter(exporter, sent, exportTimeoutMs);
    // A 413 also sets the size later flushes start at, rather than learn it again each time.
    const split = sizer.settled(batch.length, result);
    if (result.ok) {
      if (started === epoch) failures = notBefore = 0;
      tellRefusal(result);
      return;
    }
    pendingDrops += carried;
    if (split) {
      const half = batch.length >> 1;
      await exportBatch(batch.slice(0, half));
      return exportBatch(batch.slice(half));
    }
    if (!result.retryable) {
      tellRefusal(result);
      drop(batch.length);
      return;
    }
    tellRefusal(result);
    const now = Date.now();
    if (started === epoch) {
      epoch++;
      failures++;
      notBefore = now + backoffMs(failures, 500);
    }
    if (result.retryAfterMs !== undefined) retryAfterUntil = Math.max(retryAfterUntil, now + result.retryAfterMs);
    // Back to the front for the next flush, newest kept when the bound is reached.
    const room = Math.max(0, maxQueueSize - queue.length);
    if (room < batch.length) drop(batch.length - room, true);
    queue = batch.slice(batch.length - Math.min(room, batch.length)).concat(queue);
  };

  /** Sends what is queued, unless a failure's wait has not passed (`last`: the final try). */
  const flush = async (last = false): Promise<void> => {
    if (queue.length === 0 || (!last && Date.now() < Math.max(notBefore, retryAfterUntil))) return;
    const taken = queue;
    queue = [];
    const batches: Promise<void>[] = [];
    for (let i = 0, n = sizer.size(); i < taken.length; i += n) {
      const p = exportBatch(taken.slice(i, i + n))
        .catch(reportInternal)
        .finally(() => running.delete(p));
      running.add(p);
      batches.push(p);
    }
    // Only this flush's own exports: on Workers, a request must not wait on another one's I/O.
    await Promise.all(batches);
  };

  /** Everything: the exports still running first (one that fails puts its records back), then what is held. */
  const flushAll = async (): Promise<void> => {
    while (running.size) await Promise.all([...running]);
    await flush(true);
  };

  return {
    onEnd: add,
    onScore: add,
    // Outside any request in a process (a shutdown hook, a job's end): everything. In a Worker,
    // a flush outside the wrapped handlers (a Durable Object's alarm) sends past any wait, since
    // the isolate may not see another chance, but waits for its own exports only.
    forceFlush: () => (inRequest() ? flush() : longLived ? flushAll() : flush(true)),
    shutdown: async () => {
      closed = true;
      clearTimeout(timer);
      timer = undefined;
      await flushAll();
      await exporter.shutdown?.();
    },
    queued: () => queue.length,
    dropped: () => droppedTotal,
  };
};
