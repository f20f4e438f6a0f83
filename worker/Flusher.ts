import type { CircuitState, DeliveryStatus, ExportResult, FlushResult, TelemetryRecord } from '../src/protocol';
import type { ResolvedDelivery } from '../src/transport/resolveDelivery';
import type { Hold, Outbox, OutboxBatch } from './Outbox';
import { MAX_RETRY_AFTER_MS, nextDelayMs } from './nextDelayMs';

/**
 * What starts a flush. `online`, `sync` and `manual` bypass ordinary backoff and probe an open
 * circuit (the network is back, or the app asked); none of them bypasses a receiver's Retry-After.
 * `hidden` (the page is going away) sends at once unless a retry wait is running.
 */
export type FlushTrigger = 'size' | 'timer' | 'start' | 'online' | 'sync' | 'hidden' | 'manual';

/** What a flusher needs; everything with side effects comes in here, so tests can fake it. */
export interface FlusherDeps {
  outbox: Pick<Outbox, 'takeBatch' | 'settle' | 'stats' | 'hold'>;
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
  /**
   * Resolves when no flush runs and none is due within {@link IDLE_WITHIN_MS} (a service worker
   * may then sleep: a later retry is kept in the outbox, and the next wake-up runs it).
   */
  idle(): Promise<void>;
  /** The outbox's counters plus what the flusher is doing. */
  status(): Promise<DeliveryStatus>;
  /**
   * For a new receiver: forgets what the old one said (Retry-After, backoff, the circuit) and
   * flushes. Does nothing after `stop()`.
   */
  reset(): void;
  /** Cancels scheduled attempts; a request under way finishes. */
  stop(): void;
}

/**
 * A flush due later than this does not keep the worker's events open. Events held through a
 * backoff or an open circuit would hold back every new worker of the scope, the site's own
 * release too: the browser activates one, even one that skips waiting, only once the old one
 * has no event left under way.
 */
const IDLE_WITHIN_MS = 10_000;

/** Status updates are coalesced to at most one per this many ms. */
export const STATUS_THROTTLE_MS = 100;

/** Triggers that bypass ordinary backoff and probe an open circuit. */
const FORCING = ['online', 'sync', 'manual'];

/** A retryable failure, as the sender reported it; `undefined` from `deliver` means settled. */
type Retry = Extract<ExportResult, { ok: false }>;

/**
 * Creates the flusher: one request in flight, batches bounded by count and bytes, retries with
 * backoff and jitter, a circuit breaker, 413 splitting and dead letters. Records leave the outbox
 * only when the receiver accepted them (or refused them for good). The same code runs in the
 * service worker and, as the fallback, in the page. Closures rather than a class, for the worker's
 * size budget (see Outbox.ts).
 */
export const createFlusher = (deps: FlusherDeps): Flusher => {
  const { outbox, config, send, hasTarget, onStatus, onError, now = Date.now, random = Math.random, exclusive = (fn) => fn() } = deps;
  const report = (error: unknown): void => onError?.(error);
  const retry = (reason: string): FlushResult => ({ ok: false, retryable: true, reason });

  let running: Promise<FlushResult> | undefined;
  /** A flush was asked for while one ran: look once more at the end. */
  let again = false;
  let forceAgain = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt: number | undefined;
  let statusTimer: ReturnType<typeof setTimeout> | undefined;
  /** Consecutive failed attempts, and when that run of failures began (0: none). */
  let attempt = 0;
  let failingSince = 0;
  /** Ordinary backoff: no attempt before this unless forced. */
  let nextAttemptAt = 0;
  /** The receiver's Retry-After: no attempt before this, whatever the trigger. */
  let retryAfterUntil = 0;
  /**
   * The circuit breaker. Closed: requests flow and failures are counted. After
   * `circuitFailures` consecutive failures it opens: nothing is sent until `openUntil`. Then it
   * is half-open: one probe goes; success closes it, failure opens it again for another period.
   * A forcing trigger probes an open circuit early.
   */
  let circuit: CircuitState = 'closed';
  let failures = 0;
  let openUntil = 0;
  let inFlight = 0;
  /** The last failure's reason (or a partial success's), until the next success. */
  let lastError: string | undefined;
  /** A 413 taught us that batches this big are refused; later ones stay under it. */
  let learnedMax = Infinity;
  /** Records appended since a batch was last taken: size triggers without reading the database. */
  let appended = 0;
  /** After stop(): a request already in flight finishes, nothing after it is sent or scheduled. */
  let stopped = false;
  /**
   * Records sent since the current flush began, over every pass of it: a caller that joined a
   * running flush hears what the whole flush sent.
   */
  let sent = 0;
  const idlers: (() => void)[] = [];
  /**
   * The waits of an earlier life, read before the first flush. Browsers stop an idle service
   * worker within minutes, and a page wakes it with every hand-over: without this, each restart
   * would send at once, through a receiver's Retry-After and our own backoff. Only the two waits
   * carry over; the next failure starts a new series (within one life it reaches the 60 s cap in
   * about two minutes anyway), so a series cut short yesterday cannot pause today's first retry.
   */
  let restored: Promise<void> | undefined;

  const restore = (): Promise<void> =>
    (restored ??= outbox.stats().then(({ hold }) => {
      // Not after stop(), whose endless wait (retryAfterUntil) must stay. Each wait at most 10
      // minutes off: a longer one was kept while the clock was ahead, or comes from a circuit
      // configured to stay open longer, which a restart may cut short.
      if (hold && !stopped) [retryAfterUntil, nextAttemptAt] = hold.map((t) => Math.min(t, now() + MAX_RETRY_AFTER_MS)) as Hold;
    }, report));

  /** Keeps the waits in the outbox, for the next life of this context or another; a stopped flusher's are its own. */
  const save = (): void => {
    if (!stopped) outbox.hold([retryAfterUntil, nextAttemptAt]).catch(report);
  };

  const checkIdle = (): void => {
    // (No timer: NaN, not within.)
    if (!running && !(timerAt! - now() < IDLE_WITHIN_MS)) for (const resolve of idlers.splice(0)) resolve();
  };

  const status = async (): Promise<DeliveryStatus> => {
    const s = await outbox.stats();
    return {
      transport: deps.transport,
      queued: s.count,
      inFlight,
      delivered: s.delivered,
      dropped: s.droppedTotal,
      deadLettered: s.deadLettered,
      rejected: s.rejected,
      circuit,
      lastError,
      nextAttemptAt: timerAt,
    };
  };

  const emit = (): void => {
    if (onStatus)
      statusTimer ??= setTimeout(() => {
        statusTimer = undefined;
        status().then(onStatus).catch(report);
      }, STATUS_THROTTLE_MS);
  };

  const unschedule = (): void => {
    clearTimeout(timer);
    timer = timerAt = undefined;
  };

  /**
   * Arms the timer to flush in `ms`. An earlier timer already set wins, unless `replace` (a retry
   * decision, which the earlier timer would only have to re-check).
   */
  const schedule = (ms: number, replace?: boolean): void => {
    const at = now() + ms;
    if (stopped || (!replace && timerAt! <= at)) return;
    unschedule();
    timerAt = at;
    timer = setTimeout(() => {
      timer = timerAt = undefined;
      start('timer');
    }, ms);
    emit();
  };

  /** Sends `batch.records[from..to)`, splitting on 413, and settles what the receiver answered for. */
  const deliver = async (batch: OutboxBatch, from: number, to: number): Promise<Retry | undefined> => {
    let result: ExportResult;
    try {
      result = await send(batch.records.slice(from, to));
    } catch (error) {
      result = retry(String(error)) as Retry;
    }
    if (result.ok) {
      // Partial success is the receiver's final word on those spans: counted, not retried, and
      // its reason kept. Any success clears an earlier failure's reason: a refusal's stays with
      // its batch in the dead letters, and a page fixed since must not look broken still.
      lastError = result.reason;
      await outbox.settle(batch, from, to, { delivered: to - from, rejected: result.rejected });
      sent += to - from;
      return;
    }
    if (result.retryable) return result;
    lastError = result.reason;
    if (result.status === 413 && to - from > 1) {
      // Too large: halve until it fits; a single record that still does not fit is dead-lettered.
      const mid = (from + to) >> 1;
      learnedMax = mid - from;
      return (await deliver(batch, from, mid)) ?? deliver(batch, mid, to);
    }
    // Other 4xx: the same bytes would fail the same way, so they go to the dead-letter store.
    await outbox.settle(batch, from, to, { dead: result.reason, status: result.status, atMs: now() });
  };

  /** Forgets past failures: no backoff, the circuit closed (its `openUntil` then means nothing). */
  const recovered = (): void => {
    // The kept backoff time goes too (once, after a run of failures): a forcing trigger may have
    // succeeded before it, and the next life must not wait for it then.
    if (nextAttemptAt) {
      nextAttemptAt = 0;
      save();
    }
    attempt = failingSince = failures = 0;
    circuit = 'closed';
  };

  /** Records a failed attempt and schedules the next; returns the flush result. */
  const failed = (r: Retry): FlushResult => {
    const cfg = config();
    const t = now();
    attempt++;
    failingSince ||= t;
    lastError = r.reason;
    // A failed probe, or one failure too many, opens the circuit.
    if (++failures >= cfg.circuitFailures || circuit === 'half-open') {
      circuit = 'open';
      openUntil = t + cfg.circuitOpenMs;
    }
    // The receiver's Retry-After holds even when our own retries pause.
    if (r.retryAfterMs !== undefined) retryAfterUntil = t + Math.min(r.retryAfterMs, MAX_RETRY_AFTER_MS);
    if (t - failingSince < cfg.backoffMaxElapsedMs) {
      nextAttemptAt = t + nextDelayMs({ ...cfg, attempt, random, retryAfterMs: r.retryAfterMs });
      if (circuit === 'open') nextAttemptAt = Math.max(nextAttemptAt, openUntil);
      schedule(nextAttemptAt - t, true);
    } else {
      // Give the receiver a rest: the records stay, and the next trigger starts a fresh series.
      attempt = nextAttemptAt = failingSince = 0;
      lastError += ' (paused)';
      emit();
    }
    save();
    return retry(lastError);
  };

  const run = async (trigger: FlushTrigger): Promise<FlushResult> => {
    let forced = FORCING.includes(trigger);
    for (;;) {
      const cfg = config();
      const t = now();
      // The receiver's own word first; then our backoff unless forced; then the breaker.
      const wait = Math.max(retryAfterUntil, forced ? 0 : nextAttemptAt, circuit === 'open' && !forced ? openUntil : 0) - t;
      if (wait > 0) {
        schedule(wait, true);
        return sent ? { ok: true, sent } : retry(lastError ?? 'waiting to retry');
      }
      appended = 0;
      const batch = await outbox.takeBatch(Math.min(cfg.maxBatchRecords, learnedMax), cfg.maxBatchBytes, t);
      const n = batch.records.length;
      if (!n) return { ok: true, sent };
      // This attempt serves whatever a timer was for.
      unschedule();
      // An open circuit whose time is up (or that is forced) lets this request through as the probe.
      if (circuit === 'open') circuit = 'half-open';
      inFlight = n;
      emit();
      let failure: Retry | undefined;
      try {
        failure = await deliver(batch, 0, n);
      } finally {
        inFlight = 0;
      }
      if (failure) return failed(failure);
      recovered();
      // A limit learned from a 413 grows back with each accepted batch: one oversized record must
      // not leave every later request carrying a single record.
      learnedMax *= 2;
      forced = false;
      emit();
    }
  };

  const flush = (trigger: FlushTrigger): Promise<FlushResult> => {
    if (running) {
      again = true;
      // A trigger that skips the backoff (online, sync, flushNow) keeps that effect when it joins
      // a run that then fails: the run goes once more, forced.
      forceAgain ||= FORCING.includes(trigger);
      return running;
    }
    const p = (async (): Promise<FlushResult> => {
      sent = 0;
      let result: FlushResult | undefined;
      let force: boolean;
      do {
        again = false;
        // After `again` is cleared: a flush that joins while the waits are read runs its pass.
        await restore();
        if (hasTarget && !hasTarget()) return retry('no endpoint yet');
        result = await exclusive(() => run(trigger));
        if (!result) {
          // Another tab, or another worker of the scope (its update, configured by the pages), is
          // flushing the same outbox, until it is empty. No timer to look again: this worker's
          // events are not held for it, and the next hand-over, interval or start flushes here.
          return retry('another context is flushing');
        }
        force = forceAgain;
        forceAgain = false;
        trigger = force ? 'manual' : 'size';
      } while (again && (result.ok || force));
      return result;
    })();
    running = p;
    const done = (): void => {
      running = undefined;
      emit();
      checkIdle();
    };
    // A run that failed on IndexedDB (a full quota) leaves its records stored; the retry backs
    // off like a failed request, or a refused batch that cannot be dead-lettered would be sent
    // again every interval.
    p.then(done, (error) => {
      failed(retry(String(error)) as Retry);
      done();
    });
    return p;
  };

  const start = (trigger: FlushTrigger): void => {
    flush(trigger).catch(report);
  };

  return {
    notify(count, urgent) {
      appended += count;
      emit();
      // A page going away and a full batch both send at once (neither bypasses backoff).
      if (urgent || appended >= config().maxBatchRecords) start(urgent ? 'hidden' : 'size');
      else schedule(config().flushIntervalMs);
    },
    flush,
    start,
    idle: () =>
      new Promise((resolve) => {
        idlers.push(resolve);
        checkIdle();
      }),
    status,
    reset() {
      if (!stopped) {
        // A 413's limit stays: it doubles back with each accepted batch anyway.
        // Also for the next life, which must not wait for the old receiver either: one write.
        retryAfterUntil = nextAttemptAt = 0;
        recovered();
        save();
        start('start');
      }
    },
    stop() {
      // A stopped flusher holds an old configuration (endpoint, headers): it sends nothing more.
      // No wait ends (a run returns at once) and no timer is set.
      stopped = true;
      retryAfterUntil = Infinity;
      unschedule();
      clearTimeout(statusTimer);
      statusTimer = undefined;
      checkIdle();
    },
  };
};
