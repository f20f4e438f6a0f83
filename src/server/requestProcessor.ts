import type { Exporter, TelemetryRecord } from '../protocol';
import { callExporter, EXPORT_TIMEOUT_MS, type SpanProcessor } from '../core/processors';
import { stampDropped } from '../lib/stampDropped';
import { reportInternal, warnOnce } from '../lib/reportInternal';

/** Options for {@link requestProcessor}. */
export interface RequestProcessorOptions {
  /** Records per export call. Default 512. */
  maxBatchSize?: number;
  /** Records held between flushes; beyond it the oldest are dropped and counted. Default 2048. */
  maxQueueSize?: number;
  /** How long one export may take before it counts as a failed, retryable attempt. Default 30000 ms. */
  exportTimeoutMs?: number;
}

/** A request processor, plus what it holds and what it had to drop. */
export interface RequestProcessor extends SpanProcessor {
  /** Records waiting for the next flush. */
  queued(): number;
  /** Records dropped so far (queue full, or a permanent export failure). */
  dropped(): number;
}

/**
 * Holds finished records until `forceFlush()`, which `withTracing` calls once per request inside
 * that request's `waitUntil`. No batching timers: edge runtimes freeze or evict an isolate between
 * requests, and in Workers a timer that fires during another request may not do I/O for the one
 * that set it. The only timer bounds an export in flight (`exportTimeoutMs`), inside the flush
 * that started it. A retryable failure puts the records back for the next request's flush (within
 * the queue bound); a permanent one drops and counts them.
 */
export const requestProcessor = (exporter: Exporter, opts: RequestProcessorOptions = {}): RequestProcessor => {
  const maxBatchSize = Math.max(1, opts.maxBatchSize ?? 512);
  const maxQueueSize = Math.max(1, opts.maxQueueSize ?? 2048);
  const exportTimeoutMs = Math.max(1, opts.exportTimeoutMs ?? EXPORT_TIMEOUT_MS);
  let queue: TelemetryRecord[] = [];
  let pendingDrops = 0;
  let droppedTotal = 0;
  let saidRefused = false;

  const drop = (n: number): void => {
    if (n <= 0) return;
    pendingDrops += n;
    droppedTotal += n;
    warnOnce('request-dropped', `requestProcessor: dropped ${n} record(s) (queue bound ${maxQueueSize} or a rejected export).`);
  };

  const add = (record: TelemetryRecord): void => {
    if (queue.length >= maxQueueSize) {
      queue.shift();
      drop(1);
    }
    queue.push(record);
  };

  const exportBatch = async (batch: TelemetryRecord[]): Promise<void> => {
    // The count travels on a copy of the next batch's first span, as the batch processor does it.
    const sent = batch.slice();
    const carried = pendingDrops && stampDropped(sent, pendingDrops) >= 0 ? pendingDrops : 0;
    pendingDrops -= carried;
    const result = await callExporter(exporter, sent, exportTimeoutMs);
    if (result.ok) return;
    pendingDrops += carried;
    if (!result.retryable) {
      // A refusal for good is nearly always the setup (a wrong URL, token or key), which every
      // later export will meet too: said once, whatever `debug` is, or spans vanish unexplained.
      if (!saidRefused) {
        saidRefused = true;
        try {
          console.warn(`[edgetrace] the exporter refused a batch, which is dropped: ${result.reason ?? 'no reason given'}. Later refusals are not logged.`);
        } catch {
          // A console replaced by the host.
        }
      }
      drop(batch.length);
      return;
    }
    warnOnce('request-retry', `requestProcessor: an export failed and is kept for the next request's flush: ${result.reason ?? 'no reason given'}.`);
    // Back to the front for the next flush, newest kept when the bound is reached.
    const room = Math.max(0, maxQueueSize - queue.length);
    if (room < batch.length) drop(batch.length - room);
    queue = batch.slice(batch.length - Math.min(room, batch.length)).concat(queue);
  };

  const flush = async (): Promise<void> => {
    if (queue.length === 0) return;
    const taken = queue;
    queue = [];
    const batches: Promise<void>[] = [];
    for (let i = 0; i < taken.length; i += maxBatchSize) batches.push(exportBatch(taken.slice(i, i + maxBatchSize)).catch(reportInternal));
    await Promise.all(batches);
  };

  return {
    onEnd: add,
    onScore: add,
    forceFlush: flush,
    shutdown: async () => {
      await flush();
      await exporter.shutdown?.();
    },
    queued: () => queue.length,
    dropped: () => droppedTotal,
  };
};
