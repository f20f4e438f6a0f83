import type { InitOptions, ResolvedInit, BatchOptions } from '../config';
import type { Tracer } from '../core/tracer';
import type { DeadLetterRecord, DeliveryConfig, DeliveryStatus, Exporter, FlushResult, TelemetryRecord } from '../protocol';
import { batchProcessor, sayRefused, type BatchProcessor } from '../core/processors';
import { lazyExporter } from '../export/lazy';
import { guard } from '../lib/guard';
import { rejectAfter } from '../lib/within';
import { isPage } from '../lib/isPage';
import { reportInternal, warnOnce } from '../lib/reportInternal';
import type { ResolvedTransport } from './options';
import { createPageBuffer, type PageBuffer, type Sink } from './pageBuffer';
import { connectWorker } from './workerClient';
import { STATUS_CHANNEL } from './resolveDelivery';

/** Stops a subscription. */
export type Unsubscribe = () => void;

/** The delivery path `init()` set up last. */
interface Active {
  transport: DeliveryStatus['transport'];
  buffer?: PageBuffer;
  sink?: Sink;
  /** Why the records do not take the path asked for: see `DeliveryStatus.fallback`. */
  fallback?: string;
  stop(): void;
}

let active: Active | undefined;
const listeners = new Set<(status: DeliveryStatus) => void>();
let channel: BroadcastChannel | undefined;
let statusTimer: ReturnType<typeof setTimeout> | undefined;

// After this many hand-overs in a row fail, the page moves to the next path (worker → page → memory).
const MAX_FAILURES = 3;
// Local changes (the page buffer) are reported at most this often.
const STATUS_THROTTLE_MS = 250;
// A controlling worker that has not answered this soon after init() has the page load the tail
// sender, in case the tab closes before the worker answers.
const TAIL_LOAD_MS = 2000;
// How long flushNow() waits for the delivery path before it answers without it (the page
// outbox's IndexedDB can be blocked while another tab holds an old connection open).
const FLUSH_MS = 30_000;

const emptyStatus = (transport: DeliveryStatus['transport']): DeliveryStatus => ({
  transport,
  queued: 0,
  inFlight: 0,
  delivered: 0,
  dropped: 0,
  deadLettered: 0,
  rejected: 0,
  circuit: 'closed',
});

/**
 * The OTLP exporter, loaded when first used: a page whose service worker does the sending never
 * downloads the encoder.
 */
const otlpExporter = (url: string, headers: Record<string, string> | undefined) =>
  lazyExporter(() => import('../export/http').then((m) => m.createOtlpExporter({ url, headers })));

// The keepalive tail sender (with the OTLP encoder) matters only while no sink answers, so it is
// loaded then: with the page outbox, on a page no worker controls yet, when a controlling
// worker has not answered within TAIL_LOAD_MS, or when another worker may replace the one that did.
let tail: typeof import('./keepalive') | undefined;
let tailLoading: Promise<typeof import('./keepalive') | undefined> | undefined;
/** Never rejects: a failed load is reported, resolves undefined, and is tried again next time. */
const loadTail = (): Promise<typeof import('./keepalive') | undefined> =>
  (tailLoading ??= import('./keepalive').then(
    (m) => (tail = m),
    (error: unknown) => {
      tailLoading = undefined;
      reportInternal(error);
      return undefined;
    },
  ));

/**
 * A sink over the core's in-memory batch processor, with the counts and last error the worker's
 * flusher keeps: a server's path, a page's when the app asks for it, and a page's last resort
 * when IndexedDB fails too. A batch a receiver refused for good (a wrong token, an origin the
 * collector does not allow) is lost here, as the worker dead-letters it: counted as
 * `deadLettered` with its reason as `lastError`, never counted as sent. Nothing outlives the
 * process here, so none is kept.
 */
const memorySink = (exporter: Exporter, batch: BatchOptions): Sink & { bp: BatchProcessor } => {
  const counts = emptyStatus('memory');
  const bp = batchProcessor(exporter, batch, (result, records) => {
    // The last failure's reason, or a partial success's, until the next success (DeliveryStatus.lastError).
    counts.lastError = result.reason;
    if (result.ok) {
      const rejected = result.rejected ?? 0;
      counts.delivered += records.length - rejected;
      counts.rejected += rejected;
    } else if (!result.retryable) {
      counts.deadLettered += records.length;
      sayRefused(result);
    } else if (!isPage()) {
      // A script or worker process has no status panel: a wrong port must not look like a setup that works.
      warnOnce('export-retry', `an export failed and is kept to be sent again: ${result.reason}. Later failures are not logged.`, true);
    }
    statusChanged();
  });
  return {
    bp,
    transport: 'memory',
    hand: async (records) => {
      for (const r of records) {
        if (r.rec === 'span') bp.onEnd?.(r);
        else bp.onScore?.(r);
      }
      return records.length;
    },
    // What waits for its batch leaves now, or never.
    leaving: () => void bp.forceFlush?.().catch(reportInternal),
    // As the worker's flush: ok when nothing is left waiting, counting what the receiver took.
    // A batch that fails for now goes back to the queue (as does everything while a receiver's
    // Retry-After lasts), so what is still queued afterwards was not sent.
    flushNow: async () => {
      const before = counts.delivered + counts.rejected;
      await bp.forceFlush?.();
      const left = bp.queued();
      return left
        ? { ok: false, retryable: true, reason: `${left} records are still waiting: the receiver did not take them` }
        : { ok: true, sent: counts.delivered + counts.rejected - before };
    },
    status: async () => ({ ...counts, queued: bp.queued(), dropped: bp.dropped() }),
    deadLetters: async () => [],
    stop: () => bp.shutdown?.(),
  };
};

/**
 * A page's memory sink: its requests go with `keepalive` when small enough, and all it holds goes
 * at once when the page is hidden.
 */
const pageMemorySink = (config: DeliveryConfig, batch: BatchOptions): Sink => {
  // Loaded now, not on the first batch: a page closed within its first second still sends.
  void loadTail();
  // A module that did not load fails the export, which the batch retries (lazyExporter).
  return memorySink(lazyExporter(() => loadTail().then((m) => m!.keepaliveExporter(config))), batch);
};

const pickTransport = (t: ResolvedTransport): [path: 'worker' | 'page' | 'memory', why?: string] => {
  const g = globalThis as {
    indexedDB?: unknown;
    isSecureContext?: boolean;
    location?: { protocol?: string };
    navigator?: { serviceWorker?: unknown; locks?: unknown };
    origin?: string;
  };
  if (t.transport === 'memory') return ['memory'];
  // An opaque origin (a sandboxed iframe) has an indexedDB whose open() always throws.
  if (!has(() => g.indexedDB) || g.origin === 'null') return ['memory', 'no IndexedDB (a sandboxed frame, or storage blocked)'];
  // Every tab of the origin shares the page outbox and takes turns sending it under a Web Lock.
  // Without Web Locks (outside a secure context: http:// other than localhost) each tab would
  // send every record, so each sends its own from memory.
  if (!has(() => g.navigator?.locks)) {
    const why = 'no Web Locks: not a secure context (https, localhost)';
    if (t.transport === 'page') warnOnce('page-no-locks', `transport "page": ${why}; sending from memory.`);
    return ['memory', why];
  }
  if (t.transport === 'page') return ['page'];
  // Service workers need a secure context served over HTTP(S): never file://, nor some private modes.
  const canWorker = has(() => g.navigator?.serviceWorker) && g.isSecureContext !== false && /^https?:$/.test(g.location?.protocol ?? '');
  return canWorker ? ['worker'] : ['page', 'no service workers here'];
};

/**
 * Whether a browser feature is there to use. Reading `navigator.serviceWorker` or `indexedDB`
 * throws a SecurityError in a sandboxed iframe and where storage is blocked; that means no.
 */
const has = (read: () => unknown): boolean => {
  try {
    const v = read();
    return typeof v === 'object' && v !== null;
  } catch {
    return false;
  }
};

/** A status of the outbox (this page's, or another tab's or the worker's news) as this page sees it. */
const merged = (s: DeliveryStatus): DeliveryStatus => {
  const a = active;
  const buffer = a?.buffer;
  const out = buffer ? { ...s, queued: s.queued + buffer.queued(), dropped: s.dropped + buffer.dropped() } : s;
  return a?.fallback ? { ...out, fallback: a.fallback } : out;
};

const emit = (s: DeliveryStatus): void => {
  for (const cb of listeners) {
    try {
      cb(s);
    } catch (error) {
      reportInternal(error);
    }
  }
};

/**
 * Listeners that hear only what the status channel brings (the worker's and the page outbox's
 * news): the page's own delivery notice, for which no status is read on each local change.
 */
const channelOnly = new WeakSet<(status: DeliveryStatus) => void>();

/** Reads the status and tells subscribers, at most every STATUS_THROTTLE_MS. */
const statusChanged = (): void => {
  if (statusTimer !== undefined || ![...listeners].some((cb) => !channelOnly.has(cb))) return;
  statusTimer = setTimeout(() => {
    statusTimer = undefined;
    getStatus().then(emit, reportInternal);
  }, STATUS_THROTTLE_MS);
};

/**
 * Connects a tracer made by `init()` to its delivery path: in a page, a page buffer that hands
 * records to the service worker (or, without one, to the page outbox, loaded on demand); in other
 * runtimes, in-memory batches straight to `endpoint`. Takes the transport options `init()` checked.
 */
export const setupTransport = (tracer: Tracer, opts: InitOptions, resolved: ResolvedInit, t: ResolvedTransport): void => {
  const previous = active;
  previous?.stop();
  active = undefined;
  // What an earlier init() still held because its delivery path never came up moves over.
  const carried = previous?.buffer && !previous.sink ? previous.buffer.drain() : [];
  if (!resolved.endpoint || opts.exporter) return;
  const headers = { ...resolved.headers, ...t.tokenHeaders };
  // Servers and edge runtimes batch from memory straight to the endpoint. A page that sends from
  // memory still goes through the page buffer and the sink below, for its page-hide hand-over.
  if (!isPage()) {
    const sink = memorySink(otlpExporter(resolved.endpoint, headers), tracer.config.batch);
    tracer.addProcessor(sink.bp);
    active = { transport: 'memory', sink, stop: () => undefined };
    return;
  }
  const [transport, why] = pickTransport(t);

  // The worker resolves a relative endpoint against its own URL; make it the page's meaning.
  // `at` orders the configurations of the origin's pages: the newest init() wins.
  const target = new URL(resolved.endpoint, location.href);
  const config: DeliveryConfig = { endpoint: target.href, headers, delivery: t.delivery, at: Date.now() };
  const buffer = createPageBuffer(t.pageBuffer, () => checkSink());
  for (const r of carried) (r.rec === 'span' ? buffer.processor.onEnd : buffer.processor.onScore)?.(r as never);
  // 'none' until a sink answers: tests and apps can wait for the path to be ready.
  const state: Active = { transport: 'none', buffer, fallback: why, stop: () => undefined };
  /** Records why the page leaves its path for the next one, for getStatus() and the debug log. */
  const fallBack = (key: string, reason: string, next: string): void => {
    state.fallback = reason;
    warnOnce(key, `${reason}; using ${next}.`);
  };
  active = state;
  tracer.addProcessor({
    ...buffer.processor,
    // Shutting the tracer down (init() again, or stop()) posts the tail and removes our listeners.
    shutdown: async () => {
      state.stop();
      // Waits a moment for a delivery path still coming up (stop() right after init()).
      await buffer.processor.shutdown?.();
      // None came: the page sends its newest records itself, as on page hide without a sink.
      if (!state.sink && active === state) sendTailOnce(await loadTail());
      // The tail is handed over; what runs in this page for delivery stops with the tracer.
      if (active === state) active = undefined;
      await state.sink?.stop?.();
    },
  });

  const use = (sink: Sink): void => {
    if (active !== state) return;
    // A path given up on (a page outbox whose IndexedDB fails) stops running in the page.
    if (state.sink && state.sink !== sink) Promise.resolve(state.sink.stop?.()).catch(reportInternal);
    state.sink = sink;
    state.transport = sink.transport;
    buffer.setSink(sink);
    statusChanged();
  };
  let toPage: Promise<void> | undefined;
  const usePage = (): Promise<void> =>
    (toPage ??= import('./pageOutbox').then(
      (m) => {
        // An init() since may have replaced this path: start nothing for it then.
        if (active === state) use(m.startPageOutbox(config));
      },
      (error: unknown) => {
        reportInternal(error);
        fallBack('page-unloaded', `the page outbox did not load (${String(error)})`, 'memory');
        use(pageMemorySink(config, tracer.config.batch));
      },
    ));
  const checkSink = (): void => {
    statusChanged();
    const sink = state.sink;
    if (!sink || (buffer.failures() < MAX_FAILURES && !sink.lost?.())) return;
    // The current path keeps refusing records: move to the next one rather than hold them forever.
    if (sink.transport === 'worker' && t.transport === 'auto') {
      fallBack('worker-failing', 'the service worker stopped answering', 'the page outbox');
      usePage().catch(reportInternal);
    } else if (sink.transport === 'page') {
      fallBack('page-failing', 'IndexedDB is not usable in this page', 'memory');
      use(pageMemorySink(config, tracer.config.batch));
    }
  };

  if (transport === 'memory') use(pageMemorySink(config, tracer.config.batch));
  else if (transport === 'worker') {
    const client = connectWorker({
      workerUrl: t.workerUrl,
      siteWorker: t.defaultWorker,
      workerScope: t.workerScope,
      readyTimeoutMs: t.transport === 'worker' ? undefined : t.workerTimeoutMs,
      config,
      onDoubt: () => void loadTail(),
      onLost: () => checkSink(),
    });
    client.ready
      .then(
        () => use(client.sink),
        (error: unknown) => {
          fallBack('no-worker', `no service worker (${String(error)})`, 'the page outbox');
          return usePage();
        },
      )
      .catch(reportInternal);
    // A page no worker controls yet (a first visit) may wait seconds for one to install, so it
    // loads the tail sender now; a controlled page's worker answers in moments, so there it comes
    // only if that has not happened by TAIL_LOAD_MS.
    const needTail = (): void => {
      if (!state.sink && active === state) void loadTail();
    };
    if (has(() => navigator.serviceWorker.controller)) setTimeout(needTail, TAIL_LOAD_MS);
    else needTail();
  } else {
    usePage().catch(reportInternal);
    void loadTail();
  }

  // The records a tail carried: a page hidden and then closed (pagehide and visibilitychange,
  // with an interaction the page's end ended between them) sends each record in one tail only.
  const inTail = new WeakSet<TelemetryRecord>();
  /** No sink is known to take records now: none yet, or a worker that replaced the one that answered. */
  const unsure = (): boolean => !state.sink || !!state.sink.unsure?.();
  const sendTailOnce = (m: typeof import('./keepalive') | undefined): void => {
    const records = buffer.snapshot().filter((r) => !inTail.has(r));
    if (!m || !unsure() || !records.length) return;
    for (const r of records) inTail.add(r);
    m.sendTail(records, config);
  };
  // The tail goes at once when the page is hidden or leaves: it may never be visible again.
  const onHide = guard(() => {
    if (unsure()) {
      // No sink to trust: the page sends its newest records itself (and hands them over too, to a
      // worker not heard from yet). A tab that lives on while hidden also gets them out when the
      // sender is still loading.
      if (tail) sendTailOnce(tail);
      else loadTail().then(sendTailOnce).catch(reportInternal);
    }
    buffer.handAll(true).catch(reportInternal);
    state.sink?.leaving?.();
  });
  const onVisibility = guard(() => {
    if (document.visibilityState === 'hidden') onHide();
  });
  const onOnline = guard(() => {
    if (state.sink?.transport === 'worker') state.sink.flushNow().catch(reportInternal);
  });
  // A policy whose connect-src leaves out the endpoint fails every send from the page as a
  // network error, retried with backoff: said once, by its name. (The worker follows its own
  // script's policy.)
  const { origin } = target;
  const onViolation = guard((e: SecurityPolicyViolationEvent) => {
    // A report-only policy blocks nothing.
    if (e.disposition === 'enforce' && e.effectiveDirective === 'connect-src' && new URL(e.blockedURI).origin === origin) {
      warnOnce('csp', `The page's Content-Security-Policy (connect-src) blocks the endpoint ${origin}: nothing reaches it from this page. Add ${origin} to connect-src.`, true);
    }
  });
  addEventListener('pagehide', onHide);
  addEventListener('online', onOnline);
  addEventListener('securitypolicyviolation', onViolation);
  document.addEventListener('visibilitychange', onVisibility);
  // From memory, refusals are said as they happen (sayRefused), and there is no circuit to watch.
  let unwatch: Unsubscribe | undefined;
  if (transport !== 'memory') {
    const watch = watchDelivery(target.href, origin);
    channelOnly.add(watch);
    unwatch = subscribe(watch);
  }
  state.stop = () => {
    unwatch?.();
    removeEventListener('pagehide', onHide);
    removeEventListener('online', onOnline);
    removeEventListener('securitypolicyviolation', onViolation);
    document.removeEventListener('visibilitychange', onVisibility);
  };
};

/**
 * Tells the console once when `endpoint` refuses records for good (a wrong path, token or origin)
 * and once when it keeps failing while the device is online: the worker and the page outbox show
 * these only in `getStatus()`, which a page being set up does not yet ask. The memory path says
 * its refusals itself (`sayRefused`). Counts before the path answered (earlier visits') are not news.
 */
const watchDelivery = (endpoint: string, origin: string) => {
  let seen: number | undefined;
  let path: string | undefined;
  return (s: DeliveryStatus): void => {
    if (s.transport === 'none' || s.transport === 'memory') return;
    // Another path (the page outbox after the worker failed) counts apart: its first count is no news either.
    if (s.transport !== path) seen = undefined;
    path = s.transport;
    const why = s.lastError ? ` (${s.lastError})` : '';
    if (seen !== undefined && s.deadLettered > seen) {
      const n = s.deadLettered - seen;
      // The refused batch's own reason: a success right after it clears lastError.
      getDeadLetters()
        .then((dead) => {
          const reason = dead[dead.length - 1]?.reason;
          warnOnce('refused', `${endpoint} refused ${n} records for good${reason ? ` (${reason})` : why}: see getDeadLetters(). Check the endpoint, ingestToken, and that it allows this origin.`, true);
        })
        .catch(reportInternal);
    } else if (s.circuit === 'open' && navigator.onLine) {
      const cors = origin !== location.origin && s.lastError?.startsWith('network') ? ' (does it allow this origin? CORS)' : '';
      warnOnce('failing', `sending to ${endpoint} keeps failing${why}; records are kept and retried. Check the endpoint${cors}.`, true);
    }
    seen = s.deadLettered;
  };
};

/**
 * The delivery status: records queued (outbox plus page buffer), in flight, delivered, dropped,
 * dead-lettered and rejected, the last error, the next attempt and the circuit state.
 * Never rejects; before `init()` (or without an endpoint) it reports `transport: "none"`.
 */
export const getStatus = async (): Promise<DeliveryStatus> => {
  const a = active;
  if (!a) return emptyStatus('none');
  let s = emptyStatus(a.transport);
  if (a.sink) {
    try {
      s = await a.sink.status();
    } catch (error) {
      reportInternal(error);
      s = { ...s, lastError: `status unavailable: ${String(error)}` };
    }
  }
  return merged(s);
};

/**
 * Calls `callback` with the status now and on every change (throttled), including changes made
 * by other tabs' flushing and by the service worker. Returns a function that stops it.
 */
export const subscribe = (callback: (status: DeliveryStatus) => void): Unsubscribe => {
  listeners.add(callback);
  if (listeners.size === 1) {
    openChannel();
    // Pages only: servers and edge runtimes have no back/forward cache (nor addEventListener).
    if (typeof addEventListener === 'function') {
      addEventListener('pagehide', parkChannel);
      addEventListener('pageshow', unparkChannel);
    }
  }
  getStatus()
    .then((s) => {
      if (listeners.has(callback)) callback(s);
    })
    .catch(reportInternal);
  return () => {
    listeners.delete(callback);
    if (listeners.size === 0) {
      closeChannel();
      if (typeof removeEventListener === 'function') {
        removeEventListener('pagehide', parkChannel);
        removeEventListener('pageshow', unparkChannel);
      }
    }
  };
};

const openChannel = (): void => {
  if (channel || typeof BroadcastChannel !== 'function') return;
  try {
    channel = new BroadcastChannel(STATUS_CHANNEL);
  } catch (error) {
    // Firefox with storage blocked throws a SecurityError: subscribers hear this page's own news only.
    reportInternal(error);
    return;
  }
  channel.onmessage = guard((event: MessageEvent<DeliveryStatus>) => {
    const s = event.data;
    if (s && typeof s === 'object' && typeof s.queued === 'number') emit(merged(s));
  });
};

const closeChannel = (): void => {
  channel?.close();
  channel = undefined;
};

// A status message reaching the channel while the page sits in the back/forward cache would
// have Chromium evict the page: the channel closes on the way in and opens again on the way
// back, with the status as it is then.
// (Plain functions, not guard() calls: a call at the top of the module would keep this code in
// every bundle that imports the module, used or not.)
function parkChannel(event: PageTransitionEvent): void {
  try {
    if (event.persisted) closeChannel();
  } catch (error) {
    reportInternal(error);
  }
}
function unparkChannel(event: PageTransitionEvent): void {
  try {
    if (!event.persisted || listeners.size === 0) return;
    openChannel();
    getStatus().then(emit, reportInternal);
  } catch (error) {
    reportInternal(error);
  }
}

/**
 * Hands everything the page holds to the outbox and sends the outbox now, bypassing ordinary
 * backoff (a receiver's Retry-After still holds). Resolves with what the flush came to; never rejects.
 */
export const flushNow = async (): Promise<FlushResult> => {
  const a = active;
  if (!a) return { ok: true, sent: 0 };
  try {
    const flushed = (async (): Promise<FlushResult> => {
      await a.buffer?.handAll(false);
      if (!a.sink) return { ok: false, retryable: true, reason: 'the delivery path is still starting' };
      return a.sink.flushNow();
    })();
    // Bounded as getStatus() is, with room for the hand-over and one request; the worker's calls
    // have bounds of their own, which allow for its request timeout.
    return await (a.sink?.transport === 'worker' ? flushed : rejectAfter(flushed, FLUSH_MS, 'the flush'));
  } catch (error) {
    reportInternal(error);
    return { ok: false, retryable: true, reason: String(error) };
  }
};

/** The dead-letter store (batches a receiver refused for good), oldest first. Never rejects. */
export const getDeadLetters = async (): Promise<DeadLetterRecord[]> => {
  try {
    return (await active?.sink?.deadLetters()) ?? [];
  } catch (error) {
    reportInternal(error);
    return [];
  }
};
