import type { InitOptions } from '../config';
import type { Trace } from '../core/trace';
import type { Tracer } from '../core/tracer';
import type { UrlPattern } from '../lib/matchUrl';
import { isBrowserPage } from '../lib/isPage';
import { reportInternal, warn } from '../lib/reportInternal';
import { scoresUrlFor } from '../lib/scoresUrl';
import { instrumentErrors } from './errors';
import { instrumentFetch } from './fetch';
import { findInteraction, instrumentInteractions } from './interaction';
import { getPageContext, interactionContext, isInteractionContext, setPageContext, type InteractionContext } from './interactionContext';
import { getPageTrace, instrumentNavigation, setPageTrace } from './navigation';
import { PAGE_HOST, type PageHost } from './pageHost';
import type { ResolvedInstrument } from './options';
import { getUser, instrumentSession, onUser, touchSession } from './session';
import { kT } from '../core/span';
import { liveSet } from '../lib/liveSet';
import { instrumentXhr } from './xhr';
import { endUnread } from './stream';
import { endInFlight } from './http';

/** Undoes what a setup or instrumentation did. */
export type Stop = () => void;

// Langfuse Cloud, where the Langfuse exporter sends when no baseUrl is given. Kept here rather
// than imported, so that the exporter's code stays out of the page's start-up bundle.
const LANGFUSE_DEFAULT_URL = 'https://cloud.langfuse.com';

/**
 * Marks the copy of edgetrace whose instrumentations are on. A page may load two (a script tag
 * beside a bundled copy, two micro-frontends): both would trace every request, click and load, and
 * each would wrap the other's patches. The first to `init()` instruments; another keeps its own
 * tracer and delivery for the spans its app makes, and patches nothing.
 */
const OWNER = Symbol.for('edgetrace.instrumentation');
/** This copy said already that another instruments the page. */
let toldSecondCopy = false;
/** This copy of the module. */
const THIS_COPY = {};

/** URLs of our own delivery, never traced: the exporter must not record its own requests. */
const ownUrls = (opts: InitOptions): UrlPattern[] => {
  const urls: UrlPattern[] = [];
  if (typeof opts.endpoint === 'string' && opts.endpoint) {
    urls.push(opts.endpoint);
    // Scores go beside the traces (`…/v1/scores`); their uploads are ours too.
    const scores = scoresUrlFor(opts.endpoint);
    if (scores) urls.push(scores);
  }
  if (opts.langfuse) urls.push(`${(opts.langfuse.baseUrl ?? LANGFUSE_DEFAULT_URL).replace(/\/+$/, '')}/api/public/`);
  return urls;
};

/**
 * The context manager `init()` gives its tracer in a browser page: the synchronous stack falling
 * back to the active interaction (see `interactionContext`). Undefined outside a page, or when
 * the caller passed a context manager of its own. Throws only for invalid options.
 */
export const pageContext = (opts: InitOptions, r: ResolvedInstrument): InteractionContext | undefined => {
  if (!isBrowserPage() || opts.contextManager !== undefined) return undefined;
  return newPageContext(r);
};

/** An interaction context with `init()`'s timeouts, on the app's clock made safe. */
const newPageContext = (r: ResolvedInstrument): InteractionContext =>
  interactionContext({ idleMs: r.interactionIdleMs, timeoutMs: r.interactionTimeoutMs, now: r.now });

/**
 * Turns on the browser instrumentations `init()` asks for (all by default) and returns one
 * `Stop` that restores every patched global and removes every listener. `ctx` is the tracer's
 * context manager from `pageContext()`, if it has one; `r` the options already resolved. Throws, like the rest of `init()`, only
 * for invalid options; outside a browser page it does nothing else.
 */
export const setupInstrumentation = (
  tracer: Tracer,
  opts: InitOptions,
  ctx: InteractionContext | undefined,
  r: ResolvedInstrument,
): Stop => {
  if (!isBrowserPage()) return () => undefined;
  const stops: Stop[] = [];
  const stopAll = (): void => {
    for (const stop of stops.splice(0).reverse()) {
      try {
        stop();
      } catch (error) {
        reportInternal(error);
      }
    }
  };
  try {
    // A caller's own context manager is left alone (they chose how context flows); interactions
    // then still group their own work through a context of their own.
    const given = opts.contextManager;
    const page = ctx ?? (isInteractionContext(given) ? given : newPageContext(r));
    const previous = getPageContext();
    setPageContext(page);
    stops.push(() => {
      // What is pending ends now, so the tracer's shutdown hands it over. A context the caller
      // passed in stays open: they may give it to the next init().
      page.endAll();
      if (page !== given) page.close();
      if (getPageContext() === page) setPageContext(previous);
    });

    // Traces that started with no user: a setUser() right after init() (the usual place) still
    // reaches the page load, and a sign-in the chat turn under way. Ended ones are let go as the
    // set grows (a discarded click or a filtered trace never reaches onEnd).
    const anonymous = liveSet<Trace>();
    const removeProcessor = tracer.addProcessor({
      onStart(span) {
        page.processor.onStart?.(span);
        // Trace roots carry the session and user; a trace's own userId/sessionId options win,
        // because the Trace constructor applies them after this runs.
        const root = span as Partial<Pick<Trace, 'setSession' | 'setUser'>>;
        if (typeof root.setSession !== 'function') return;
        const session = r.session ? touchSession() : undefined;
        if (session) root.setSession(session);
        const user = getUser();
        if (user) root.setUser?.(user);
        else anonymous.add(span as Trace);
      },
    });
    stops.push(removeProcessor);
    stops.push(
      onUser((user) => {
        // An ended root still names the user for its children that end later.
        for (const t of anonymous.items) if (!t[kT].userId) t.setUser(user);
        anonymous.items.clear();
      }),
    );

    if (r.session) stops.push(instrumentSession({ inactivityTimeoutMs: r.sessionTimeoutMs, now: r.now }));
    const g = globalThis as { [OWNER]?: object };
    if (g[OWNER] === undefined || g[OWNER] === THIS_COPY) {
      g[OWNER] = THIS_COPY;
      // For edgetrace/vitals, which may be another copy (an import beside the script tag).
      const host: PageHost = { tracer: () => tracer, getPageTrace, setPageTrace, findInteraction };
      const h = globalThis as { [PAGE_HOST]?: PageHost };
      h[PAGE_HOST] = host;
      stops.push(() => {
        if (g[OWNER] === THIS_COPY) delete g[OWNER];
        if (h[PAGE_HOST] === host) delete h[PAGE_HOST];
      });
      const http = { tracer, propagateTo: [...r.propagateTo], ignoreUrls: [...r.ignoreUrls, ...ownUrls(opts)] };
      if (r.fetch) stops.push(instrumentFetch({ ...http, streams: r.streams }));
      if (r.xhr) stops.push(instrumentXhr(http));
      if (r.interactions) stops.push(instrumentInteractions({ tracer, context: page }));
      if (r.navigation) stops.push(instrumentNavigation({ tracer }));
      if (r.errors) stops.push(instrumentErrors({ tracer }));
    } else if (!toldSecondCopy) {
      // Said whatever `debug` is: this copy's spans lose the requests made inside them.
      toldSecondCopy = true;
      warn('another copy of edgetrace instruments this page: this one records only the spans your code makes, without the requests made in them. Load one copy per page.');
    }

    // The page is going away: end what is pending so it is handed over in time.
    const onHide = (event: PageTransitionEvent): void => {
      try {
        const leaving = !event.persisted;
        // Before the interactions end, so an unread response ends at its headers, not now.
        endUnread(leaving);
        if (leaving) endInFlight();
        page.endAll();
        tracer.flush().catch(reportInternal);
      } catch (error) {
        reportInternal(error);
      }
    };
    addEventListener('pagehide', onHide);
    stops.push(() => removeEventListener('pagehide', onHide));
  } catch (error) {
    // Only a bug of ours gets here: undo what was done and leave the page untraced.
    reportInternal(error);
    stopAll();
  }
  return stopAll;
};
