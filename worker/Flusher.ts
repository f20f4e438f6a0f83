import type { DeliveryStatus, ExportResult, FlushResult, TelemetryRecord } from '../src/protocol';
import type { ResolvedDelivery } from '../src/transport/resolveDelivery';
import type { Outbox, OutboxBatch } from './Outbox';
import { nextDelayMs } from './nextDelayMs';
import { afterFailure, afterSuccess, CLOSED, mayAttempt, type Circuit } from './circuitBreaker';

/**
 * What starts a flush. `online`, `sync` and `manual` bypass ordinary backoff and probe an open
 * circuit (the network is back, or the app asked); none of them bypasses a receiver's Retry-After.
 * `hidden` (the page is going away) sends at once unless a retry wait is running.
 */
export type FlushTrigger = 'size' | 'timer' | 'start' | 'online' | 'sync' | 'hidden' | 'manual';

/** What a flusher needs; everything with side effects comes in here, so tests can fake it. */
export interface FlusherDeps {
  outbox: Pick<Outbox, 'takeBatch' | 'settle' | 'stats'>;
  /** Sends records; resolves with a result (a rejection counts as a network error). */
  send: (records: TelemetryRecord[]) => Promise<ExportResult>;
  /** The current delivery options (a page may change them). */
  config: () => ResolvedDelivery;
  /** False while no endpoint is known: records then wait. Default: always true. */
  hasTarget?: () => boolean;
  /** Which path this flusher serves, for the status. */
  transport: DeliveryStatus['transport'];
  /** Epoch ms. Default `Date.now`. */
  now?: () => number;
  /** Uniform in [0, 1). Default `Math.random`. */
  random?: () => number;
  /**
   * Runs `fn` holding the origin-wide flush lock, or resolves `undefined` without running it when
   * another context holds it. Default: no lock.
   */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T | undefined>;
  /** Receives the status after changes, at most every {@link STATUS_THROTTLE_MS}. */
  onStatus?: (status: DeliveryStatus) => void;
  /** Receives errors of the flusher's own bookkeeping (IndexedDB failures). */
  onError?: (error: unknown) => void;
}

/** The flusher's controls. */
export interface Flusher {
  /**
   * Says `count` records were appended: a full batch flushes at once, anything less within
   * `flushIntervalMs`; `urgent` (the page is going away) flushes at once.
   */
  notify(count: number, urgent?: boolean): void;
  /**
   * Sends what the outbox holds, one request at a time, until it is empty or a request fails.
   * A call while a flush runs joins it (and makes it look once more at the end). Never rejects
   * for a failed request; rejects only if IndexedDB fails.
   */
  flush(trigger: FlushTrigger): Promise<FlushResult>;
  /** `flush()` without waiting; errors go to `onError`. */
  start(trigger: FlushTrigger): void;
  /** Resolves when no flush runs and none is scheduled (a service worker may then sleep). */
  idle(): Promise<void>;
  /** The outbox's counters plus what the flusher is doing. */
  status(): Promise<DeliveryStatus>;
  /** Cancels scheduled attempts; a request under way finishes. */
  stop(): void;
}

/** Status updates are coalesced to at most one per this many ms. */
export const STATUS_THROTTLE_MS = 100;

const FORCING = ['online', 'sync', 'manual'];

/** A retryable failure; `undefined` from `deliver` means the range was settled. */
type Retry = { reason: string; retryAfterMs?: number };

/**
 * Creates the flusher: one request in flight, batches bounded by count and bytes, retries with
 * backoff and jitter, a circuit breaker, 413 splitting and dead letters. Records leave the outbox
 * only when the receiver accepted them (or refused them for good). The same code runs in the
 * service worker and, as the fallback, in the page. Closures rather than a class, for the worker's
 * size budget (see Outbox.ts).
 */
export const createFlusher = (deps: FlusherDeps): Flusher => {
  const { outbox, config, onError } = deps;
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const report = (error: unknown): void => onError?.(error);

  let running: Promise<FlushResult> | undefined;
  let again = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt: number | undefined;
  let statusTimer: ReturnType<typeof setTimeout> | undefined;
  /** Consecutive failed attempts, and when that run of failures began. */
  let attempt = 0;
  let failingSince: number | undefined;
  /** Ordinary backoff: no attempt before this unless forced. */
  let nextAttemptAt = 0;
  /** The receiver's Retry-After: no attempt before this, whatever the trigger. */
  let retryAfterUntil = 0;
  let circuit: Circuit = CLOSED;
  let inFlight = 0;
  let lastError: string | undefined;
  /** Whether lastError came from a failure a retry can fix (cleared by the next success). */
  let lastErrorTransient = false;
  /** A 413 taught us that batches this big are refused; later ones stay under it. */
  let learnedMax = Infinity;
  /** Records appended since a batch was last taken: size triggers without reading the database. */
  let appended = 0;
  let idlers: (() => void)[] = [];

  const checkIdle = (): void => {
    if (running || timer !== undefined) return;
    const waiting = idlers;
    idlers = [];
    for (const resolve of waiting) resolve();
  };

  const status = async (): Promise<DeliveryStatus> => {
    const s = await outbox.stats();
    const out: DeliveryStatus = {
      transport: deps.transport,
      queued: s.count,
      inFlight,
      delivered: s.delivered,
      dropped: s.droppedTotal,
      deadLettered: s.deadLettered,
      rejected: s.rejected,
      circuit: circuit.state,
    };
    if (lastError !== undefined) out.lastError = lastError;
    if (timerAt !== undefined) out.nextAttemptAt = timerAt;
    return out;
  };

  const emit = (): void => {
    if (!deps.onStatus || statusTimer !== undefined) return;
    statusTimer = setTimeout(() => {
      statusTimer = undefined;
      status().then(deps.onStatus, report);
    }, STATUS_THROTTLE_MS);
  };

  /**
   * Arms the timer to flush in `ms`. An earlier timer already set wins, unless `replace` (a retry
   * decision, which the earlier timer would only have to re-check).
   */
  const schedule = (ms: number, trigger: FlushTrigger, replace?: boolean): void => {
    const at = now() + ms;
    if (timer !== undefined) {
      if (!replace && (timerAt as number) <= at) return;
      clearTimeout(timer);
    }
    timerAt = at;
    timer = setTimeout(() => {
      timer = timerAt = undefined;
      start(trigger);
    }, ms);
    emit();
  };

  /** Sends `batch.records[from..to)`, splitting on 413, and settles what the receiver answered for. */
  const deliver = async (batch: OutboxBatch, from: number, to: number): Promise<Retry | undefined> => {
    let result: ExportResult;
    try {
      result = await deps.send(batch.records.slice(from, to));
    } catch (error) {
      result = { ok: false, retryable: true, reason: `send failed: ${String(error)}` };
    }
    if (result.ok) {
      // Partial success is the receiver's final word on those spans: counted, not retried. A
      // success ends a run of transient failures, so their reason goes; a refusal stays.
      if (result.rejected) {
        lastError = result.reason ?? `${result.rejected} span(s) rejected`;
        lastErrorTransient = false;
      } else if (lastErrorTransient) lastError = undefined;
      await outbox.settle(batch, from, to, { delivered: to - from, rejected: result.rejected ?? 0 });
      return;
    }
    if (result.retryable) return { reason: result.reason, retryAfterMs: result.retryAfterMs };
    lastError = result.reason;
    lastErrorTransient = false;
    if (result.status === 413 && to - from > 1) {
      // Too large: halve until it fits; a single record that still does not fit is dead-lettered.
      const mid = from + ((to - from) >> 1);
      learnedMax = mid - from;
      return (await deliver(batch, from, mid)) ?? deliver(batch, mid, to);
    }
    // Other 4xx: the same bytes would fail the same way, so they go to the dead-letter store.
    await outbox.settle(batch, from, to, { dead: result.reason, status: result.status, atMs: now() });
    return;
  };

  /** Records a failed attempt and schedules the next; returns the flush result. */
  const failed = (retry: Retry): FlushResult => {
    const cfg = config();
    const t = now();
    attempt++;
    failingSince ??= t;
    lastError = retry.reason;
    lastErrorTransient = true;
    circuit = afterFailure(circuit, t, { failures: cfg.circuitFailures, openMs: cfg.circuitOpenMs });
    if (t - failingSince >= cfg.backoffMaxElapsedMs) {
      // Give the receiver a rest: the records stay, and the next trigger starts a fresh series.
      attempt = nextAttemptAt = 0;
      failingSince = undefined;
      lastError += ` (retries paused after ${cfg.backoffMaxElapsedMs} ms until the next trigger)`;
    } else {
      const delay = nextDelayMs({
        attempt,
        baseMs: cfg.backoffBaseMs,
        capMs: cfg.backoffCapMs,
        jitter: cfg.backoffJitter,
        random,
        retryAfterMs: retry.retryAfterMs,
      });
      nextAttemptAt = t + delay;
      if (retry.retryAfterMs !== undefined) retryAfterUntil = nextAttemptAt;
      if (circuit.state === 'open') nextAttemptAt = Math.max(nextAttemptAt, circuit.until);
      schedule(nextAttemptAt - t, 'timer', true);
    }
    emit();
    return { ok: false, retryable: true, reason: lastError };
  };

  const run = async (trigger: FlushTrigger): Promise<FlushResult> => {
    let forced = FORCING.includes(trigger);
    let sent = 0;
    for (;;) {
      const cfg = config();
      const t = now();
      // The receiver's own word first; then our backoff unless forced; then the breaker.
      const gate = mayAttempt(circuit, t, forced);
      const wait = Math.max(retryAfterUntil, forced ? 0 : nextAttemptAt, gate.allowed ? 0 : circuit.until) - t;
      if (wait > 0) {
        schedule(wait, 'timer', true);
        return sent ? { ok: true, sent } : { ok: false, retryable: true, reason: lastError ?? 'waiting to retry' };
      }
      appended = 0;
      const batch = await outbox.takeBatch(Math.min(cfg.maxBatchRecords, learnedMax), cfg.maxBatchBytes, t);
      const n = batch.records.length;
      if (n === 0) return { ok: true, sent };
      if (timer !== undefined) {
        // This attempt serves whatever the timer was for.
        clearTimeout(timer);
        timer = timerAt = undefined;
      }
      circuit = gate.circuit;
      inFlight = n;
      emit();
      let retry: Retry | undefined;
      try {
        retry = await deliver(batch, 0, n);
      } finally {
        inFlight = 0;
      }
      if (retry) return failed(retry);
      attempt = nextAttemptAt = 0;
      failingSince = undefined;
      circuit = afterSuccess();
      sent += n;
      forced = false;
      emit();
    }
  };

  const runExclusive = async (trigger: FlushTrigger): Promise<FlushResult> => {
    if (deps.hasTarget && !deps.hasTarget()) return { ok: false, retryable: true, reason: 'no endpoint configured yet' };
    const result = deps.exclusive ? await deps.exclusive(() => run(trigger)) : await run(trigger);
    if (result) return result;
    // Another tab (or the worker) is flushing the same outbox; look again later in case it stops.
    schedule(config().flushIntervalMs, 'timer');
    return { ok: false, retryable: true, reason: 'another context is flushing' };
  };

  const flush = (trigger: FlushTrigger): Promise<FlushResult> => {
    if (running) {
      again = true;
      return running;
    }
    const p = (async (): Promise<FlushResult> => {
      let result: FlushResult;
      let t = trigger;
      do {
        again = false;
        result = await runExclusive(t);
        t = 'size';
      } while (again && result.ok);
      return result;
    })();
    running = p;
    const done = (): void => {
      running = undefined;
      emit();
      checkIdle();
    };
    p.then(done, done);
    return p;
  };

  const start = (trigger: FlushTrigger): void => {
    flush(trigger).catch(report);
  };

  return {
    notify(count, urgent) {
      appended += count;
      emit();
      if (urgent) start('hidden');
      else if (appended >= config().maxBatchRecords) start('size');
      else schedule(config().flushIntervalMs, 'timer');
    },
    flush,
    start,
    idle: () => (running || timer !== undefined ? new Promise((resolve) => idlers.push(resolve)) : Promise.resolve()),
    status,
    stop() {
      clearTimeout(timer);
      clearTimeout(statusTimer);
      timer = timerAt = statusTimer = undefined;
      checkIdle();
    },
  };
};
