import type { BatchOptions } from '../config';
import type { Exporter, ExportResult, ScoreRecord, SpanRecord, TelemetryRecord } from '../protocol';
import type { Span } from './span';
import { reportInternal, warnOnce } from '../lib/reportInternal';
import { stampDropped } from '../lib/stampDropped';
import { within } from '../lib/within';
import { unref } from '../lib/unref';
import { isPage } from '../lib/isPage';

/**
 * Receives spans as they start and end. Every method is optional; none may throw into the
 * tracer (what they throw is caught and counted).
 */
export interface SpanProcessor {
  /** Called when a recording span starts, before user code runs in it. */
  onStart?(span: Span): void;
  /** Called with the finished record of every kept span. */
  onEnd?(record: SpanRecord): void;
  /** Called with every score. */
  onScore?(score: ScoreRecord): void;
  /** Delivers everything held. */
  forceFlush?(): Promise<void>;
  /** Delivers everything held and releases resources. */
  shutdown?(): Promise<void>;
}

/** How long one export may take by default before it counts as failed (OpenTelemetry's default). */
export const EXPORT_TIMEOUT_MS = 30_000;

/**
 * Calls `exporter.export()` so that whatever a hand-written exporter does comes back as a result:
 * a synchronous throw or a rejection is a retryable failure, a result that is not an object
 * (an exporter returning nothing) counts as delivered, and an export that has not settled after
 * `timeoutMs` fails, so one hung request cannot hold the queue or `flush()` forever.
 */
export const callExporter = (exporter: Exporter, records: readonly TelemetryRecord[], timeoutMs: number): Promise<ExportResult> => {
  const failed = (error: unknown): ExportResult => ({ ok: false, retryable: true, reason: String(error) });
  const delivered: ExportResult = { ok: true };
  const settled = new Promise<unknown>((resolve) => resolve(exporter.export(records))).then(
    (result): ExportResult => (result && typeof result === 'object' ? (result as ExportResult) : delivered),
    failed,
  );
  return within(settled, timeoutMs, () => failed(`no answer within ${timeoutMs} ms`));
};

/**
 * How long to wait after the `failures`-th retryable failure in a row: doubling from `baseMs`, at
 * most 30 s, and half of it random ("equal jitter"), so that the servers of one deployment that
 * failed together against the same receiver do not all come back at the same moment.
 */
export const backoffMs = (failures: number, baseMs: number): number => Math.min(30_000, baseMs * 2 ** Math.min(failures, 10)) * (0.5 + Math.random() / 2);

/**
 * Records per export, learned from 413s (too large): a refused batch of `n` halves the size, and
 * the half becomes the ceiling it grows back to, doubling with each accepted batch. A single
 * record refused alone was the cause, and with it gone the ceiling goes too.
 */
export const batchSizer = (max: number) => {
  let limit = max;
  let ceiling = max;
  return {
    size: (): number => limit,
    /** Learns from the export of `n` records; true when they are to go again in halves. */
    settled(n: number, result: ExportResult): boolean {
      if (result.ok) limit = Math.min(ceiling, limit * 2);
      else if (result.status === 413) {
        if (n > 1) {
          limit = ceiling = Math.min(ceiling, n >> 1);
          return true;
        }
        ceiling = max;
      }
      return false;
    },
  };
};

/**
 * Hands each record to the exporter as soon as it ends. For tests and for runtimes that flush at
 * the end of every request anyway; elsewhere prefer `batchProcessor`.
 */
export const simpleProcessor = (exporter: Exporter): SpanProcessor => {
  const pending = new Set<Promise<unknown>>();
  const send = (record: TelemetryRecord): void => {
    const p = callExporter(exporter, [record], EXPORT_TIMEOUT_MS)
      .then((result) => {
        if (!result.ok) warnOnce('simple-rejected', `simpleProcessor: export failed: ${result.reason}`);
      })
      .finally(() => pending.delete(p));
    pending.add(p);
  };
  return {
    onEnd: send,
    onScore: send,
    forceFlush: async () => {
      await Promise.all([...pending]);
    },
    shutdown: async () => {
      await Promise.all([...pending]);
      await exporter.shutdown?.();
    },
  };
};

/** A batch processor, plus how many records it dropped because its queue was full. */
export interface BatchProcessor extends SpanProcessor {
  /** Records dropped so far because the queue was full. */
  dropped(): number;
  /** Records waiting. */
  queued(): number;
}

/**
 * @internal Says once, whatever `debug` is, that a receiver refused a batch for good, and why: a
 * wrong token or endpoint would otherwise drop every span unseen. A 413 is one record too large,
 * not the setup's mistake: left to `debug`, so a wrong key after it is still said.
 */
export const sayRefused = (result: ExportResult): void => {
  const tooLarge = !result.ok && result.status === 413;
  warnOnce(tooLarge ? 'batch-too-large' : 'batch-rejected', `the exporter refused a batch, which is dropped: ${result.reason ?? 'no reason given'}. Later refusals are not logged.`, !tooLarge);
};

/**
 * Collects records and exports them in batches: when `maxBatchSize` are waiting, or `delayMs`
 * after the first one. One export runs at a time. A retryable failure puts the batch back at the
 * front and waits (honouring Retry-After); any other failure loses the batch (`onResult` hears
 * of it); beyond `maxQueueSize` the oldest records are dropped and the count travels on the next
 * batch as `edgetrace.dropped_records`.
 *
 * In memory only: the durable, offline-tolerant path is the service-worker outbox.
 */
export const batchProcessor = (
  exporter: Exporter,
  opts: BatchOptions = {},
  /** Told each export's result with the batch it was for (delivery status and dead letters). */
  onResult?: (result: ExportResult, records: readonly TelemetryRecord[]) => void,
): BatchProcessor => {
  const maxBatchSize = opts.maxBatchSize ?? 512;
  const maxQueueSize = opts.maxQueueSize ?? 2048;
  const delayMs = opts.delayMs ?? 1000;
  const exportTimeoutMs = opts.exportTimeoutMs ?? EXPORT_TIMEOUT_MS;
  let queue: TelemetryRecord[] = [];
  let dropped = 0;
  let droppedTotal = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<boolean> | undefined;
  let failures = 0;
  let closed = false;
  /** After a retryable failure, no export before this time (the backoff or the receiver's Retry-After). */
  let notBefore = 0;
  /** The receiver's Retry-After, which even flush() keeps to. */
  let retryAfterUntil = 0;
  const sizer = batchSizer(maxBatchSize);

  const schedule = (ms: number): void => {
    if (timer !== undefined || closed) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        exportOnce().catch(reportInternal);
      },
      Math.max(ms, notBefore - Date.now()),
    );
    unref(timer);
  };

  const add = (record: TelemetryRecord): void => {
    if (queue.length >= maxQueueSize) {
      queue.shift();
      dropped++;
      droppedTotal++;
      // Said whatever `debug` is outside a page (a page's visitors going offline is no news to them):
      // an outage that outlasts the queue loses spans for good.
      warnOnce('batch-dropped', `export queue full (${maxQueueSize}): dropping the oldest records. Is the receiver down?`, !isPage());
    }
    queue.push(record);
    if (queue.length >= maxBatchSize && !inFlight && Date.now() >= notBefore) exportOnce().catch(reportInternal);
    else schedule(delayMs);
  };

  /** Sends one batch; resolves true when the queue made progress. */
  const exportOnce = (): Promise<boolean> => {
    if (inFlight) return inFlight;
    if (queue.length === 0) return Promise.resolve(true);
    const batch = queue.splice(0, sizer.size());
    // The drop count rides on a copy of the batch's first span; until a receiver accepts it, it
    // stays counted here, and the records that go back to the queue are the originals.
    const sent = batch.slice();
    const carried = dropped && stampDropped(sent, dropped) >= 0 ? dropped : 0;
    dropped -= carried;
    inFlight = callExporter(exporter, sent, exportTimeoutMs)
      .then((result) => {
        inFlight = undefined;
        // Too large: the batch goes back and is sent in halves, at once; one record alone is refused.
        const split = sizer.settled(batch.length, result);
        // What the batch came to: a split is a failure that goes again.
        const outcome: ExportResult = !result.ok && split ? { ...result, retryable: true } : result;
        try {
          onResult?.(outcome, batch);
        } catch (error) {
          reportInternal(error);
        }
        if (!result.ok) dropped += carried;
        if (outcome.ok || !outcome.retryable) {
          // Said whatever `debug` is, unless the owner of `onResult` says it its own way (the servers).
          if (!result.ok && !onResult) sayRefused(result);
          failures = 0;
          notBefore = retryAfterUntil = 0;
          if (queue.length) schedule(queue.length >= sizer.size() ? 0 : delayMs);
          return true;
        }
        // Put the batch back in front, within the queue bound, and wait before the next try
        // (a split goes on at once).
        const room = Math.max(0, maxQueueSize - queue.length);
        if (room < batch.length) {
          dropped += batch.length - room;
          droppedTotal += batch.length - room;
        }
        queue = batch.slice(0, room).concat(queue);
        if (!split) {
          failures++;
          notBefore = Date.now() + (outcome.retryAfterMs ?? backoffMs(failures, delayMs));
          if (outcome.retryAfterMs !== undefined) retryAfterUntil = notBefore;
        }
        // The wait (none for a split) replaces a timer armed meanwhile by new records.
        clearTimeout(timer);
        timer = undefined;
        schedule(0);
        return split;
      });
    return inFlight;
  };

  const flush = async (): Promise<void> => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    // Bounded: a receiver that keeps failing must not hold flush() forever. A flush skips our own
    // backoff, but while the receiver has asked to wait (Retry-After) the records stay queued.
    for (let attempts = 0; attempts < 3; ) {
      if (inFlight) await inFlight;
      if (queue.length === 0 || Date.now() < retryAfterUntil) {
        if (queue.length) schedule(0);
        return;
      }
      if (!(await exportOnce())) attempts++;
    }
  };

  return {
    onEnd: add,
    onScore: add,
    forceFlush: flush,
    shutdown: async () => {
      await flush();
      closed = true;
      await exporter.shutdown?.();
    },
    dropped: () => droppedTotal,
    queued: () => queue.length,
  };
};
