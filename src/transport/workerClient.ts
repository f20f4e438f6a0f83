import { wrap, type Endpoint } from 'comlink';
import type { DeliveryConfig, FlushResult, WorkerApi } from '../protocol';
import type { Sink } from './pageBuffer';
import { CONNECT_MESSAGE } from './resolveDelivery';
import { packRecords } from './packRecords';
import { rejectAfter } from '../lib/within';
import type { TrustedScriptUrlLike } from './options';

/** Options of {@link connectWorker}. */
export interface WorkerClientOptions {
  /** Script to register (a `TrustedScriptURL` where Trusted Types are enforced), or false to use the page's own (already registered) worker. */
  workerUrl: string | false | TrustedScriptUrlLike;
  /** Leave a worker of the site's own at the scope in place (workerUrl is the default, not the app's choice). */
  siteWorker?: boolean;
  workerScope?: string;
  /** Give up waiting for an active worker that answers after this long (undefined: wait as long as it takes). */
  readyTimeoutMs?: number;
  /** Sent to the worker on every connection. */
  config: DeliveryConfig;
  /**
   * Called when the worker that answered may be replaced (an update was found, or another worker
   * is active now): the page should be ready to send its newest records itself on page hide.
   */
  onDoubt?: () => void;
  /** Called when the worker that replaced the one that answered does not answer: the page should move on. */
  onLost?: () => void;
}

/** A service-worker sink, and a promise that rejects if no worker can be used. */
export interface WorkerClient {
  readonly sink: Sink;
  /** Resolves when a worker is active and answers; rejects (with the reason) when registration fails or that times out. */
  readonly ready: Promise<void>;
}

// How long one call may take before we assume the worker was stopped under it. Generous: a cold
// worker start plus an IndexedDB commit on a loaded machine can take seconds.
const CALL_TIMEOUT_MS = 10_000;
const STATUS_TIMEOUT_MS = 3_000;
// How long one try to hear from a newly active worker waits: a cold start takes well under it.
const PROBE_MS = 2_000;
// How long hand-overs share one connection; well under the 30 s after which Chromium stops an
// idle worker, so the worker always saw a message event recently.
const REUSE_MS = 5_000;

/**
 * The registration at the scope `url` would be registered with, and its script, when that is
 * the site's own worker: a scope holds one worker, so registering ours there would replace it,
 * and the site's offline cache and push handling with it (and the site's register() would swap
 * it back on the next load). Asked only where `workerUrl` is the default: a URL the app chose is
 * its decision. Undefined too where that cannot be told (a container without getRegistration()).
 */
const siteWorker = async (container: ServiceWorkerContainer, url: string, scope: string | undefined): Promise<[ServiceWorkerRegistration, string] | undefined> => {
  try {
    const script = new URL(String(url), location.href);
    // A scope given is relative to the page, as register() takes it; the default is the script's folder.
    const at = (scope === undefined ? new URL('./', script) : new URL(scope, location.href)).href;
    const existing = await container.getRegistration(at);
    // Ours under any path or version (a bundler's `edgetrace-sw-<hash>.js`) is ours to update. Any
    // other worker there, also one installing over an active one of ours (a site that added its
    // worker since the last visit), is the site's.
    const other = existing?.scope === at ? [existing.installing, existing.waiting, existing.active].find((w) => w && !/^edgetrace-sw/.test(new URL(w.scriptURL).pathname.split('/').pop()!)) : undefined;
    return other ? [existing!, other.scriptURL] : undefined;
  } catch {
    return undefined;
  }
};

/** What was said on the console already: a second init() (React StrictMode's) says it once. */
const saidOnce = new Set<string>();

const SAID_KEY = 'edgetrace.said';

/**
 * Says `text` once per tab: each page of a multi-page site would otherwise say it again at every
 * load. Kept in sessionStorage (where there is one), newest last, within a few kilobytes.
 */
const sayOncePerTab = (text: string): void => {
  if (saidOnce.has(text)) return;
  saidOnce.add(text);
  try {
    const seen = sessionStorage.getItem(SAID_KEY) ?? '';
    if (seen.split('\n').includes(text)) return;
    sessionStorage.setItem(SAID_KEY, `${seen}\n${text}`.slice(-4000));
  } catch {
    // No storage (a sandboxed frame): once per page then.
  }
  console.info(text);
};

/**
 * Registers the worker script, unless the scope has the site's own worker (see `siteWorker`). A refusal
 * is often a setup mistake (the script missing or misplaced: a 404, a wrong MIME type, a scope
 * above its folder) that the page outbox would hide, so it is said on the console once, whatever
 * `debug` is: as information, since a site may also choose to serve no worker. So is leaving the
 * site's worker in place.
 */
const register = async (container: ServiceWorkerContainer, url: string, opts: WorkerClientOptions): Promise<ServiceWorkerRegistration> => {
  const scope = opts.workerScope;
  let said: string | undefined;
  try {
    // There, the site's worker is used as with `workerUrl: false`: it carries the spans if it
    // calls installTraceWorker(); if it does not answer, the page sends them itself (unless
    // `transport: 'worker'` waits for it).
    const site = opts.siteWorker ? await siteWorker(container, url, scope) : undefined;
    if (site) {
      const otherwise = opts.readyTimeoutMs === undefined ? 'waited for until it does' : 'else sent from the page';
      said = `[edgetrace] ${site[0].scope} already has the site's own service worker (${site[1]}); edgetrace does not replace it. Spans go through it if it calls installTraceWorker(), ${otherwise} (set workerUrl: false to say so).`;
      return site[0];
    }
    return await container.register(url, scope ? { scope } : undefined);
  } catch (error) {
    const why = String(error);
    // Trusted Types refuse a plain string here: the way out is the app's own policy.
    const hint = why.includes('TrustedScriptURL') ? ` Under Trusted Types, pass init({ workerUrl: policy.createScriptURL('${url}') }) from a policy of the page's, with the module build (the script tag can give only a string).` : '';
    said = `[edgetrace] the service worker ${url} could not be registered (${why}), so spans are sent from the page.${hint}`;
    throw error;
  } finally {
    try {
      if (said) sayOncePerTab(said);
    } catch {
      // A console replaced by the host.
    }
  }
};

/**
 * Resolves with `reg` once it has an active worker (activating counts, as for
 * `navigator.serviceWorker.ready`: the worker takes messages while its activate event runs);
 * rejects if the one installing fails.
 */
const activated = (reg: ServiceWorkerRegistration): Promise<ServiceWorkerRegistration> =>
  new Promise((resolve, reject) => {
    const check = (): boolean => {
      if (reg.active) resolve(reg);
      return !!reg.active;
    };
    if (check()) return;
    const worker = reg.installing ?? reg.waiting;
    if (!worker) return reject(new Error('[edgetrace] the service worker registration has no worker'));
    const failed = (): void => reject(new Error('[edgetrace] the service worker failed to install'));
    if (worker.state === 'redundant') return failed();
    worker.addEventListener('statechange', () => {
      if (!check() && worker.state === 'redundant') failed();
    });
  });

/**
 * Registers (unless `workerUrl` is false) and talks to the trace service worker. A connection is a
 * fresh MessageChannel whose port goes to the worker in a message; the worker exposes its API on it
 * with comlink. A message wakes a stopped worker, so no call depends for long on a connection that
 * a worker restart silently broke. The cost of a connection is paid per burst of batches, never
 * per span.
 */
export const connectWorker = (opts: WorkerClientOptions): WorkerClient => {
  const container = navigator.serviceWorker;
  let registration: ServiceWorkerRegistration | undefined;

  // One budget for both waits below: activation, then an answer.
  const deadline = opts.readyTimeoutMs === undefined ? Infinity : Date.now() + opts.readyTimeoutMs;
  const activation = (async () => {
    // Our own registration, waited on until its worker is activated: `container.ready` would be
    // the registration of the page's scope, which is another worker (or none) when `workerScope`
    // does not cover the page or the app's own worker controls it.
    const active =
      opts.workerUrl === false
        ? container.ready
        : register(container, opts.workerUrl as string, opts).then(activated);
    registration = opts.readyTimeoutMs === undefined ? await active : await rejectAfter(active, opts.readyTimeoutMs, 'waiting for the service worker');
  })();

  /** A connection: a MessagePort the worker exposes its API on. */
  interface Connection {
    port: MessagePort;
    worker: ServiceWorker;
    bornMs: number;
    /** Calls waiting for an answer on it: the port closes only when none is left. */
    users: number;
  }
  let cached: Connection | undefined;
  /** The connection the call being made right now posts on (comlink posts synchronously). */
  let via: Connection | undefined;

  // One comlink proxy for the client's life, over an endpoint that posts on the connection of
  // the call being made and hears the answers of all of them. comlink registers each proxy it
  // makes in a FinalizationRegistry, and the callback runs whenever the proxy is collected: a
  // proxy per connection let that happen in a page frozen in the back/forward cache, and
  // Chromium evicts a frozen page that runs script. These proxies live as long as the page.
  const answers = new Set<EventListenerOrEventListenerObject>();
  // A post outside a call of ours (comlink releasing the proxies of a client that init() replaced)
  // has no connection to go on, and is dropped rather than thrown from a finalizer.
  const endpoint: Endpoint = {
    postMessage: (message: unknown, transfer?: Transferable[]) => via?.port.postMessage(message, transfer ?? []),
    addEventListener: (_type: string, listener: EventListenerOrEventListenerObject) => void answers.add(listener),
    removeEventListener: (_type: string, listener: EventListenerOrEventListenerObject) => void answers.delete(listener),
  };
  const remote = wrap<WorkerApi>(endpoint);
  // `remote` is kept with its method proxies, unused, so that it is never collected either; so is
  // `probe`, a property whose reading the worker refuses (see `ready`).
  const api = {
    remote,
    configure: remote.configure,
    enqueue: remote.enqueue,
    flushNow: remote.flushNow,
    getStatus: remote.getStatus,
    deadLetters: remote.deadLetters,
    probe: (remote as unknown as Record<string, PromiseLike<unknown>>).probe!,
  };
  type Api = typeof api;

  /** The worker that last answered: one that replaced it must answer before it gets records. */
  let answered: ServiceWorker | undefined;
  /** The probe of a worker that replaced `answered`, which the calls meeting it share. */
  let doubt: [ServiceWorker | null | undefined, Promise<boolean>] | undefined;
  /** The worker that replaced ours did not answer. */
  let lost = false;
  const current = (): ServiceWorker | null | undefined => registration?.active ?? container.controller;

  // Any answer will do, so none waits on the worker's IndexedDB: the refusal of a property read
  // (the trace worker answers method calls only) shows it listens. Reading `then` of the kept
  // proxy posts comlink's GET.
  const answer = (): boolean => true;
  const probe = (a: Api): Promise<boolean> => Promise.resolve(a.probe).then(answer, answer);

  /**
   * Whether the active worker answers: at once for the one that did. Another that took the scope
   * since (our update, or the site's own worker registered after init() on a first visit, which
   * takes every message and answers none) is asked once, the calls that meet it sharing the
   * answer. Asking connects, so a new worker of ours also gets this page's configuration.
   */
  const trusted = (): Promise<boolean> | boolean => {
    const worker = current();
    if (!answered || worker === answered) return true;
    if (doubt?.[0] !== worker) {
      opts.onDoubt?.();
      doubt = [
        worker,
        call(probe, PROBE_MS * 2, true).then(answer, () => {
          // Only the worker still in place is given up on: one replaced meanwhile says nothing
          // of the next (ours, after the site's silent one).
          if (current() === worker) {
            lost = true;
            opts.onLost?.();
          }
          return false;
        }),
      ];
    }
    return doubt![1];
  };

  /** Makes the call `fn` posts go out on `c`. */
  const on = <T>(c: Connection, fn: (api: Api) => Promise<T>): Promise<T> => {
    via = c;
    try {
      return fn(api);
    } finally {
      via = undefined;
    }
  };

  /** Closes `c` once no call is waiting on it and it is no longer the shared one. */
  const release = (c: Connection): void => {
    if (c.users === 0 && c !== cached) c.port.close();
  };

  const connect = (worker = current()): Connection => {
    if (!worker) throw new Error('[edgetrace] no active service worker');
    const { port1, port2 } = new MessageChannel();
    worker.postMessage({ edgetrace: CONNECT_MESSAGE }, [port2]);
    // No listener for the port's close event: one would run script when the worker stops while
    // the page sits in the back/forward cache. A stopped worker shows as a call that times out.
    port1.onmessage = (event) => {
      for (const a of answers) typeof a === 'function' ? a(event) : a.handleEvent(event);
    };
    const c: Connection = { port: port1, worker, bornMs: Date.now(), users: 0 };
    // Configuration first on each connection: a restarted worker may have been updated. Its
    // `at` keeps an older tab's from replacing a newer one's (see DeliveryConfig.at).
    void on(c, (a) => a.configure(opts.config)).catch(() => undefined);
    return c;
  };

  /**
   * Runs one call. `reuse` (hand-overs, which come in bursts, and status reads) keeps a connection for
   * {@link REUSE_MS}: messages on a port do not keep a worker alive the way a message event does,
   * so a fresh one follows soon, and a worker stopped in between costs one timed-out hand-over
   * (its records are handed over again). Other calls always connect afresh.
   */
  const call = async <T>(fn: (api: Api) => Promise<T>, ms: number, reuse = false): Promise<T> => {
    if (!registration) await activation;
    const worker = current();
    if (fn !== probe && !(await trusted())) throw new Error('[edgetrace] the service worker was replaced by one that does not answer');
    let c = reuse && cached && cached.worker === worker && Date.now() - cached.bornMs < REUSE_MS ? cached : undefined;
    if (!c) {
      c = connect(worker);
      if (reuse) {
        // The connection it replaces closes once the calls still waiting on it have their answers.
        const old = cached;
        cached = c;
        if (old) release(old);
      }
    }
    c.users++;
    try {
      const result = await rejectAfter(on(c, fn), ms, 'a call to the service worker');
      if (fn === probe) answered = c.worker;
      return result;
    } catch (error) {
      // No more calls on a connection that failed one; those already waiting keep it open.
      if (cached === c) cached = undefined;
      throw error;
    } finally {
      c.users--;
      release(c);
    }
  };

  /** The client was stopped: a worker update wakes nothing of it. */
  let stopped = false;
  /**
   * Tells a worker that is installed but not active yet this page's configuration, on a
   * connection of its own: it runs, and sends what the outbox holds, from the moment it is
   * installed, with the configuration saved when its script started.
   */
  const configure = (worker: ServiceWorker): void => {
    const c = connect(worker);
    setTimeout(() => c.port.close(), CALL_TIMEOUT_MS);
  };
  /** A worker on its way to the scope (see where it is called below). */
  const watch = (next: ServiceWorker | null | undefined): void => {
    if (stopped || !next) return;
    opts.onDoubt?.();
    if (next.state === 'installed') configure(next);
    next.addEventListener('statechange', () => {
      if (stopped) return;
      if (next.state === 'installed') configure(next);
      else if (next.state === 'activated') void trusted();
    });
  };
  const onUpdate = (): void => watch(registration!.installing);

  const ready = activation.then(async () => {
    // The active worker must also answer. With `workerUrl: false` it is the app's, and the one of
    // an earlier release (its new one, which calls installTraceWorker(), still waiting for the old
    // tabs to close) takes every message and answers none: hand-overs to it would be lost with the
    // tab. Until an answer comes the page keeps its records, and a tab closed meanwhile sends the
    // newest itself. Each try goes on a new connection, to the registration's active worker of
    // the moment.
    // Without a deadline (`transport: 'worker'`) the tries space out, up to a minute apart.
    for (let wait = PROBE_MS; ; wait = Math.min(wait * 2, 60_000)) {
      const ms = Math.min(wait, deadline - Date.now());
      if (!(ms > 0)) throw new Error('[edgetrace] the active service worker does not answer (is installTraceWorker() in it?)');
      // The connection is the one the first hand-over then uses.
      if (await call(probe, ms, true).catch(() => false)) break;
    }
    // An update found may end in another worker: the page gets ready to send on hide itself, and
    // asks the new worker once it is active. A new one of ours read the saved configuration as it
    // started, maybe before this page's init() saved its own (a deploy that moved the endpoint),
    // and an idle tab would never tell it otherwise. The update this page's own register() found
    // came before the answer, so a worker already installing or waiting is watched too.
    registration?.addEventListener('updatefound', onUpdate);
    watch(registration?.installing ?? registration?.waiting);
  });

  const sink: Sink = {
    transport: 'worker',
    hand: (records, urgent) => call((api) => api.enqueue(packRecords(records), urgent), CALL_TIMEOUT_MS, true),
    flushNow: () => call<FlushResult>((api) => api.flushNow(), CALL_TIMEOUT_MS + (opts.config.delivery?.requestTimeoutMs ?? 10_000)),
    // On the shared connection, as hand-overs are: a page polling its status for a panel would
    // otherwise send the worker a message event per call, each holding it busy a while, and the
    // browser activates a new worker only once the old one has no event under way.
    status: () => call((api) => api.getStatus(), STATUS_TIMEOUT_MS, true),
    deadLetters: () => call((api) => api.deadLetters(), STATUS_TIMEOUT_MS, true),
    unsure: () => lost || current() !== answered,
    lost: () => lost,
    // After stop() (or init() again), a worker update wakes nothing of this client's.
    stop: () => {
      stopped = true;
      registration?.removeEventListener('updatefound', onUpdate);
    },
  };
  return { sink, ready };
};
