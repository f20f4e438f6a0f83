import { fail, MAX_WHOLE } from '../config';
import { isUrlPattern, type UrlPattern } from '../lib/matchUrl';
import { ownClock } from '../lib/now';
import { checkKeys, type AllKeys } from '../lib/checkKeys';

/** Which browser instrumentations `init()` turns on; each is on unless set to `false`. */
export interface InstrumentToggles {
  /** A CLIENT span per `fetch()`, with trace headers for same-origin and `propagateTo` URLs. */
  fetch?: boolean;
  /** The same for `XMLHttpRequest`. */
  xhr?: boolean;
  /** Keep a fetch span open while the app reads the body: first chunk, bytes, SSE events. */
  streams?: boolean;
  /** Interaction spans for clicks, submits and Enter/Space on controls, parents of the work they start. */
  interactions?: boolean;
  /** The page-load span (Navigation Timing) and a span per History API route change. */
  navigation?: boolean;
  /** `error` and `unhandledrejection` as exception events. */
  errors?: boolean;
  /** A session id (`session.id`) kept in sessionStorage, and the user set with `setUser()`. */
  session?: boolean;
}

/** Options for the browser instrumentations that `init()` sets up. Every field is optional. */
export interface InstrumentOptions {
  /**
   * Other origins or URL prefixes that receive `traceparent`, `tracestate` and `baggage`.
   * Same-origin requests always do; other origins never do unless listed here, because a
   * third party may reject unknown headers (CORS) or should not learn your trace ids.
   * A string that is just an origin (`https://api.example.com`) matches that origin exactly;
   * another string matches URLs that start with it; a RegExp is tested on the full URL.
   */
  propagateTo?: UrlPattern[] | undefined;
  /** Requests to these URLs are not traced at all (same matching as `propagateTo`). `endpoint` never is. */
  ignoreUrls?: UrlPattern[] | undefined;
  /** Turns instrumentations on or off; `false` turns all of them off. Default: all on in a browser page. */
  instrument?: false | InstrumentToggles | undefined;
  /** An interaction ends once no work it started has been running for this long. Default 500 ms. */
  interactionIdleMs?: number | undefined;
  /** After this long an interaction stops adopting new work, whatever is still running. Default 30000 ms. */
  interactionTimeoutMs?: number | undefined;
  /** A new session id starts after this long without any span. Default 30 minutes. */
  sessionTimeoutMs?: number | undefined;
}

/** The validated form of `InstrumentOptions`. */
export interface ResolvedInstrument {
  propagateTo: readonly UrlPattern[];
  ignoreUrls: readonly UrlPattern[];
  fetch: boolean;
  xhr: boolean;
  streams: boolean;
  interactions: boolean;
  navigation: boolean;
  errors: boolean;
  session: boolean;
  interactionIdleMs: number;
  interactionTimeoutMs: number;
  sessionTimeoutMs: number;
  /** The app's `now` option, made safe once (see `ownClock`), for the interaction context and the session. */
  now: (() => number) | undefined;
}

/** Default idle gap that ends an interaction: long enough for a short timer or two between awaits. */
export const DEFAULT_INTERACTION_IDLE_MS = 500;
/** Default cap on how long an interaction adopts new work (Sentry's idle spans use 30 s too). */
export const DEFAULT_INTERACTION_TIMEOUT_MS = 30_000;
/** Default session inactivity timeout: 30 minutes, the common web analytics convention. */
export const DEFAULT_SESSION_TIMEOUT_MS = 30 * 60_000;

const TOGGLES = ['fetch', 'xhr', 'streams', 'interactions', 'navigation', 'errors', 'session'] as const satisfies readonly (keyof InstrumentToggles)[];
const TOGGLE_KEYS: AllKeys<InstrumentToggles, typeof TOGGLES> = TOGGLES;

const INSTRUMENT_LIST = ['propagateTo', 'ignoreUrls', 'instrument', 'interactionIdleMs', 'interactionTimeoutMs', 'sessionTimeoutMs'] as const satisfies readonly (keyof InstrumentOptions)[];
/** Every instrumentation option of `init()`; one added to `InstrumentOptions` and not here fails to compile. */
export const INSTRUMENT_KEYS: AllKeys<InstrumentOptions, typeof INSTRUMENT_LIST> = INSTRUMENT_LIST;

const patterns = (call: string, name: string, value: unknown): UrlPattern[] => {
  if (value === undefined) return [];
  if (!Array.isArray(value)) fail(call, name, 'an array of URL strings and RegExps', value);
  (value as unknown[]).forEach((p, i) => isUrlPattern(p, true) || fail(call, `${name}[${i}]`, 'a URL with its scheme ("https://api.example.com"), a path ("/api/") or a RegExp', p));
  return [...(value as UrlPattern[])];
};

const ms = (call: string, name: string, value: unknown, dflt: number): number => {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !(value > 0 && value <= MAX_WHOLE)) fail(call, name, `a number of milliseconds > 0 and ≤ ${MAX_WHOLE}`, value);
  return value as number;
};

/**
 * Validates the instrumentation options and fills in defaults. Throws a `TypeError` naming the
 * option, like the rest of `init()`'s validation.
 */
export const resolveInstrument = (opts: InstrumentOptions & { now?: (() => number) | undefined } = {}, call = 'init()'): ResolvedInstrument => {
  const toggles = opts.instrument;
  if (toggles !== undefined && toggles !== false && (typeof toggles !== 'object' || toggles === null)) {
    fail(call, 'instrument', 'false or an object of booleans', toggles);
  }
  if (toggles) checkKeys(call, toggles, TOGGLE_KEYS, 'instrument.');
  const on = {} as Record<(typeof TOGGLES)[number], boolean>;
  for (const key of TOGGLE_KEYS) {
    const v = toggles === false ? false : toggles?.[key];
    if (v !== undefined && typeof v !== 'boolean') fail(call, `instrument.${key}`, 'a boolean', v);
    on[key] = v !== false;
  }
  const idle = ms(call, 'interactionIdleMs', opts.interactionIdleMs, DEFAULT_INTERACTION_IDLE_MS);
  const timeout = ms(call, 'interactionTimeoutMs', opts.interactionTimeoutMs, DEFAULT_INTERACTION_TIMEOUT_MS);
  if (timeout < idle) fail(call, 'interactionTimeoutMs', `at least interactionIdleMs (${idle})`, timeout);
  return {
    propagateTo: patterns(call, 'propagateTo', opts.propagateTo),
    ignoreUrls: patterns(call, 'ignoreUrls', opts.ignoreUrls),
    ...on,
    interactionIdleMs: idle,
    interactionTimeoutMs: timeout,
    sessionTimeoutMs: ms(call, 'sessionTimeoutMs', opts.sessionTimeoutMs, DEFAULT_SESSION_TIMEOUT_MS),
    now: opts.now && ownClock(opts.now),
  };
};
