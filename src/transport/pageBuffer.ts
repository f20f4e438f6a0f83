import type { DeadLetterRecord, DeliveryStatus, FlushResult, TelemetryRecord } from '../protocol';
import type { SpanProcessor } from '../core/processors';
import { droppedOn, stampDropped } from '../lib/stampDropped';
import { reportInternal } from '../lib/reportInternal';
import { whenIdle } from './whenIdle';
import { within } from '../lib/within';

/** Where the page buffer hands records: the service worker, the page outbox, or memory. */
export interface Sink {
  readonly transport: DeliveryStatus['transport'];
  /**
   * Takes records for delivery; resolves with how many were stored, or -1 when none were and the
   * page should hand them over again later. May reject (a lost worker); that counts as -1.
   */
  hand(records: TelemetryRecord[], urgent: boolean): Promise<number>;
  flushNow(): Promise<FlushResult>;
  status(): Promise<DeliveryStatus>;
  deadLetters(): Promise<DeadLetterRecord[]>;
  /**
   * The page is being hidden or closed: send what the sink holds in the page now, since it may
   * never run again (the memory sink's batches). Called after the urgent hand-over.
   */
  leaving?(): void;
  /**
   * The sink is not known to take records right now (a worker that replaced the one that
   * answered, not heard from yet or silent): on page hide the page sends its newest records
   * itself too.
   */
  unsure?(): boolean;
  /** The sink will take no more records (a worker that replaced ours and does not answer): the page moves on at once. */
  lost?(): boolean;
  /** Stops what the sink runs in this page (the page outbox's flusher and listeners). */
  stop?(): Promise<void> | void;
}

/** The page buffer's options (validated). */
export interface PageBufferConfig {
  maxRecords: number;
  batchRecords: number;
  maxDelayMs: number;
}

/** The processor that collects finished records in the page, and its controls. */
export interface PageBuffer {
  readonly processor: SpanProcessor;
  /** Sets (or replaces) where records go; what waits is handed over soon after. */
  setSink(sink: Sink): void;
  /**
   * Hands everything waiting to the sink now (`urgent` when the page is going away); resolves when
   * the sink answered. The post itself happens before this returns.
   */
  handAll(urgent: boolean): Promise<void>;
  /** Records waiting in the page. */
  queued(): number;
  /** The records not known to be taken: those in hand-overs not answered yet, then those waiting, oldest first. */
  snapshot(): readonly TelemetryRecord[];
  /** Takes every record waiting in the page out of the buffer, for another buffer to hand over. */
  drain(): TelemetryRecord[];
  /** Records the page buffer dropped (its bound, or a sink that never took them). */
  dropped(): number;
  /** Consecutive hand-overs that failed, so the transport can switch to a fallback. */
  failures(): number;
}

/** Records per message to the sink. */
const HAND_MAX = 1024;

/** How long `forceFlush()` waits for a delivery path that is still starting. */
const FLUSH_WAIT_MS = 5000;

/**
 * Creates the page buffer: `onEnd` only pushes the record (no copy, no serialisation), and the
 * records are handed over in batches: in an idle period, in the next task once `batchRecords`
 * wait, or at once when `handAll(true)` is called on page hide or `maxRecords` wait. A batch the
 * sink did not take goes back to the front.
 */
export const createPageBuffer = (cfg: PageBufferConfig, onChange: () => void = () => undefined): PageBuffer => {
  let buf: TelemetryRecord[] = [];
  let sink: Sink | undefined;
  let scheduled = false;
  let dropped = 0;
  /** Drops not yet stamped on a handed-over span. */
  let unreported = 0;
  let failures = 0;
  /** Hand-overs started so far, and how many had started when the last failure was counted. */
  let started = 0;
  let countedAt = 0;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** The parts of hand-overs not answered yet. */
  const handing = new Set<TelemetryRecord[]>();
  let sinkSet: () => void = () => undefined;
  /**
   * The page is going away: it handed over urgently, and no ordinary hand-over ran since. A flush
   * then (the instrumentation's, on pagehide) hands over without asking the sink to send: the
   * urgent hand-over already made it send, as far as its backoff and circuit allow, and a
   * `flushNow()` would probe a failing receiver once per page view.
   */
  let leaving = false;
  const hasSink = new Promise<void>((resolve) => (sinkSet = resolve));
  /** Resolves once a sink is set, or after {@link FLUSH_WAIT_MS}. */
  const sinkOrTimeout = (): Promise<void> => within(hasSink, FLUSH_WAIT_MS, () => undefined);

  const bound = (): void => {
    const over = buf.length - cfg.maxRecords;
    if (over > 0) {
      dropped += over;
      unreported += over;
      // A dropped record that carried the count of earlier drops hands that count back, so the
      // next handed span reports it.
      for (const r of buf.splice(0, over)) unreported += droppedOn(r);
    }
  };

  const retryLater = (): void => {
    if (retryTimer !== undefined) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      handAll(false).catch(reportInternal);
    }, cfg.maxDelayMs);
  };

  const handAll = (urgent: boolean): Promise<void> => {
    scheduled = false;
    if (urgent) leaving = true;
    const to = sink;
    if (!to || buf.length === 0) return Promise.resolve();
    const mine = ++started;
    const all = buf;
    buf = [];
    // A record put back after a failed hand-over may carry an earlier count: it is added to.
    if (unreported > 0 && stampDropped(all, unreported) >= 0) unreported = 0;
    // A large buffer goes as several messages, all posted now: cloning one very large message
    // costs more per record. The tail on page hide stays one message, so the sink sees it whole
    // (the page outbox sends the newest records that fit in one keepalive request).
    const parts: TelemetryRecord[][] = [];
    if (urgent || all.length <= HAND_MAX) parts.push(all);
    else for (let i = 0; i < all.length; i += HAND_MAX) parts.push(all.slice(i, i + HAND_MAX));
    const taken = parts.map((part) => {
      handing.add(part);
      return to
        .hand(part, urgent)
        .then(
          (stored) => stored >= 0,
          () => false,
        )
        .finally(() => handing.delete(part));
    });
    return Promise.all(taken)
      .then((ok) => {
        const refused = parts.filter((_, i) => !ok[i]);
        // Only the sink in place counts: a late answer from the one it replaced (a worker that
        // stopped answering) says nothing of the page outbox after it.
        const current = to === sink;
        if (refused.length === 0) {
          if (current) failures = 0;
        } else {
          // One failed hand-over, however many parts: the refused ones go back to the front in
          // their order. The stamp travels with the record that carries it. Failures in a row
          // count, not those under way together: hand-overs posted on a port whose worker then
          // stopped all time out at once, for one stop.
          if (current && mine > countedAt) {
            failures++;
            countedAt = started;
          }
          buf = refused.flat().concat(buf);
          bound();
          retryLater();
        }
        onChange();
      })
      .catch(reportInternal);
  };

  let soon: ReturnType<typeof setTimeout> | undefined;
  const handFull = (): void => {
    soon = undefined;
    if (buf.length >= cfg.batchRecords) handAll(false).catch(reportInternal);
  };

  const schedule = (): void => {
    if (scheduled) return;
    scheduled = true;
    whenIdle(() => {
      try {
        leaving = false;
        if (scheduled) handAll(false).catch(reportInternal);
      } catch (error) {
        reportInternal(error);
      }
    }, cfg.maxDelayMs);
  };

  // A full batch goes in the next task rather than inside the span.end() that filled it: the
  // app's task (a loop making spans, say) is not stretched by a structured clone, and the worker
  // stores the batch while the page is not busy. Only at the bound, with somewhere to hand them,
  // do records go at once, so a long synchronous burst is handed over rather than dropped.
  const add = (record: TelemetryRecord): void => {
    const n = buf.push(record);
    if (sink) {
      if (n >= cfg.maxRecords) return void handAll(false).catch(reportInternal);
      if (n >= cfg.batchRecords) {
        soon ??= setTimeout(handFull, 0);
        return;
      }
    } else if (n > cfg.maxRecords) bound();
    schedule();
  };

  return {
    processor: {
      onEnd: add,
      onScore: add,
      forceFlush: async () => {
        const left = leaving;
        // A flush right after init() waits (briefly) for the delivery path to come up.
        if (!sink) await sinkOrTimeout();
        await handAll(false);
        if (!sink || left) return;
        await sink.flushNow().catch(reportInternal);
      },
      // So does a shutdown (stop() right after init(), as React's StrictMode and HMR do) that has
      // records to hand over; a later init() that takes them over ends the wait at its timeout.
      shutdown: async () => {
        if (!sink && buf.length) await sinkOrTimeout();
        await handAll(true);
      },
    },
    setSink(next) {
      sink = next;
      sinkSet();
      failures = 0;
      if (buf.length) schedule();
    },
    handAll,
    queued: () => buf.length,
    snapshot: () => (handing.size ? [...handing].flat().concat(buf) : buf),
    drain: () => {
      const all = buf;
      buf = [];
      return all;
    },
    dropped: () => dropped,
    failures: () => failures,
  };
};
