import { onCLS, onFCP, onINP, onLCP, onTTFB, type Metric, type MetricType } from 'web-vitals';
import { kT, type Span } from './core/span';
import * as A from './core/semconv';
import type { Tracer } from './core/tracer';
import { getTracer } from './core/global';
import { isPage } from './lib/isPage';
import { reportInternal } from './lib/reportInternal';
import type { AllKeys } from './lib/checkKeys';
import { checkOptions, fail } from './config';
import { findInteraction } from './instrument/interaction';
import { getPageTrace, setPageTrace } from './instrument/navigation';
import { pageHost, type PageHost } from './instrument/pageHost';
import type { Stop } from './instrument/index';

// The `edgetrace/vitals` entry: Core Web Vitals through Google's `web-vitals`, the only module
// that imports it, so pages that do not ask for vitals never download it.

/** One Web Vital report as plain data. */
export interface VitalRecord {
  /** `LCP`, `INP`, `CLS`, `FCP` or `TTFB`. */
  name: Metric['name'];
  /** Milliseconds, except CLS, which is a unitless score. */
  value: number;
  rating: Metric['rating'];
  /** Change since this metric's previous report (the first report's delta is its value). */
  delta: number;
  /** Unique per metric and page load; later reports of the same metric repeat it. */
  id: string;
  navigationType: Metric['navigationType'];
  /** INP only: the span id of the interaction that caused it, when edgetrace recorded that interaction. */
  interactionSpanId?: string;
}

/** Options for {@link onVitals} and {@link instrumentVitals}. */
export interface VitalsOptions {
  /** Report every change instead of the final value (web-vitals `reportAllChanges`). Default false. */
  reportAllChanges?: boolean | undefined;
  /** `instrumentVitals` only: the tracer to record with. Default: the global one. */
  tracer?: Tracer | undefined;
}

/** Attribute names on web-vital spans. */
export const VITAL_ATTRS = {
  name: 'web_vital.name',
  value: 'web_vital.value',
  rating: 'web_vital.rating',
  delta: 'web_vital.delta',
  id: 'web_vital.id',
  navigationType: 'web_vital.navigation_type',
} as const;

/** This copy's own page: where no copy of edgetrace instruments the page (no `init()`, or one in a worker). */
const LOCAL: PageHost = { tracer: getTracer, getPageTrace, setPageTrace, findInteraction };

/** The copy of edgetrace that instruments the page, which may not be this one (the script tag). */
const host = (): PageHost => pageHost() ?? LOCAL;

/**
 * The interaction an INP report belongs to, from its Event Timing entries' start times: among
 * those of the copy of edgetrace that instruments the page.
 */
const interactionOf = (metric: MetricType): Span | undefined => (metric.name === 'INP' ? host().findInteraction(metric.entries)?.span : undefined);

/**
 * Calls `callback` with LCP, INP, CLS, FCP and TTFB as web-vitals reports them: FCP and TTFB
 * early, LCP, CLS and INP when the page is hidden (or LCP at the first input). Each report comes
 * as a plain record plus the web-vitals metric (with its performance entries). Call once per page.
 * The returned function makes later reports be ignored: web-vitals itself cannot unsubscribe.
 */
export const onVitals = (callback: (vital: VitalRecord, metric: MetricType) => void, opts: VitalsOptions = {}): Stop => {
  let on = true;
  const report = (metric: MetricType): void => {
    if (!on) return;
    try {
      const vital: VitalRecord = {
        name: metric.name,
        value: metric.value,
        rating: metric.rating,
        delta: metric.delta,
        id: metric.id,
        navigationType: metric.navigationType,
      };
      const interaction = interactionOf(metric);
      if (interaction) vital.interactionSpanId = interaction.spanId;
      callback(vital, metric);
    } catch (error) {
      reportInternal(error);
    }
  };
  const reportOpts = { reportAllChanges: opts.reportAllChanges === true };
  // web-vitals checks for PerformanceObserver support itself; outside a page it has nothing to do.
  if (isPage()) {
    for (const subscribe of [onLCP, onINP, onCLS, onFCP, onTTFB]) {
      try {
        (subscribe as (cb: (m: MetricType) => void, o: typeof reportOpts) => void)(report, reportOpts);
      } catch (error) {
        reportInternal(error);
      }
    }
  }
  return () => {
    on = false;
  };
};

let flushQueued = false;

/**
 * Where web-vitals measures LCP, FCP and TTFB from, in ms after timeOrigin: the navigation, or
 * for a page restored from the back/forward cache the restore (the value is measured up to now),
 * or for a prerendered page its activation.
 */
const measuredFrom = (perf: Performance, navigationType: string | undefined, value: number): number => {
  if (navigationType === 'back-forward-cache') return Math.max(0, perf.now() - value);
  if (navigationType === 'prerender') {
    const nav = perf.getEntriesByType?.('navigation')[0] as (PerformanceEntry & { activationStart?: number }) | undefined;
    return nav?.activationStart ?? 0;
  }
  return 0;
};

const VITALS_LIST = ['reportAllChanges', 'tracer'] as const;
const VITALS_KEYS: AllKeys<VitalsOptions, typeof VITALS_LIST> = VITALS_LIST;

/**
 * Records each Web Vital as a span on the page's trace (the `page load` trace from `init()`),
 * timed from navigation start for LCP, FCP and TTFB; INP is recorded under the interaction span
 * that caused it when edgetrace saw that interaction. Vitals reported while the page is hidden
 * are flushed at once, because the page may not come back.
 */
export const instrumentVitals = (opts: VitalsOptions = {}): Stop => {
  const call = 'instrumentVitals()';
  checkOptions(call, opts, VITALS_KEYS);
  if (opts.reportAllChanges !== undefined && typeof opts.reportAllChanges !== 'boolean') fail(call, 'reportAllChanges', 'true or false', opts.reportAllChanges);
  return onVitals((vital, metric) => {
    const owner = host();
    const tracer = opts.tracer ?? owner.tracer();
    const perf = (globalThis as { performance?: Performance }).performance;
    const origin = perf && perf.timeOrigin > 0 ? perf.timeOrigin : undefined;
    let page = owner.getPageTrace();
    if (!page) {
      // No page-load span (navigation instrumentation off): one empty trace stands for the page.
      page = tracer.createTrace({ name: 'page', startMs: origin });
      page.end();
      owner.setPageTrace(page);
    }
    const interaction = interactionOf(metric);
    let startMs: number | undefined;
    let endMs: number | undefined;
    if (origin !== undefined && vital.name !== 'CLS') {
      const entry = vital.name === 'INP' ? metric.entries[0] : undefined;
      startMs = origin + (entry ? entry.startTime : measuredFrom(perf!, vital.navigationType, vital.value));
      endMs = startMs + vital.value;
    }
    const parent = interaction ?? page;
    const options = {
      startMs,
      attributes: {
        [VITAL_ATTRS.name]: vital.name,
        [VITAL_ATTRS.value]: vital.value,
        [VITAL_ATTRS.rating]: vital.rating,
        [VITAL_ATTRS.delta]: vital.delta,
        [VITAL_ATTRS.id]: vital.id,
        [VITAL_ATTRS.navigationType]: vital.navigationType,
      },
    };
    // A page trace of a tracer since replaced (init() again after stop(), as StrictMode and hot
    // reloads do) would record into the stopped one: the tracer in charge takes the span, in the
    // same trace.
    let span: Span;
    if (parent[kT].core.cfg === tracer.config) span = parent.startSpan(vital.name, options);
    else {
      // Its trace's user and session, which a span of another tracer does not share.
      const { userId, sessionId } = parent[kT];
      Object.assign(options.attributes, { [A.USER_ID]: userId, [A.SESSION_ID]: sessionId });
      span = tracer.startSpan(vital.name, { ...options, parent: parent.spanContext() });
    }
    span.end(endMs);
    if (!flushQueued && isPage() && document.visibilityState === 'hidden') {
      // Several vitals arrive in the same hidden event: one flush after all of them.
      flushQueued = true;
      queueMicrotask(() => {
        flushQueued = false;
        tracer.flush().catch(reportInternal);
      });
    }
  }, opts);
};
