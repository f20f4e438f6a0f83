import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { MetricType } from 'web-vitals';
import type { SpanRecord } from '../../src/protocol';

// web-vitals itself needs a browser (the e2e spec runs it in Chromium); here it is replaced by
// callbacks the test calls, to check where each vital's span is placed in time.
const callbacks = new Map<string, (m: MetricType) => void>();
vi.mock('web-vitals', () => {
  const on = (name: string) => (cb: (m: MetricType) => void) => void callbacks.set(name, cb);
  return { onLCP: on('LCP'), onFCP: on('FCP'), onTTFB: on('TTFB'), onINP: on('INP'), onCLS: on('CLS') };
});

// The entry subscribes only in a page.
(globalThis as { document?: unknown }).document ??= {};
const { instrumentVitals } = await import('../../src/vitals');
const { createTracer } = await import('../../src/core/tracer');
const { setPageTrace } = await import('../../src/instrument/navigation');

const metric = (name: string, value: number, navigationType: string): MetricType =>
  ({ name, value, delta: value, rating: 'good', id: `v-${name}`, navigationType, entries: [] }) as unknown as MetricType;

describe('instrumentVitals', () => {
  afterEach(() => setPageTrace(undefined));
  afterAll(() => {
    delete (globalThis as { document?: unknown }).document;
  });

  it('places LCP from navigation start, and after a back/forward-cache restore from the restore', () => {
    const spans: SpanRecord[] = [];
    const tracer = createTracer({ processors: [{ onEnd: (r) => spans.push(r) }] });
    const stop = instrumentVitals({ tracer });
    const origin = performance.timeOrigin;
    callbacks.get('LCP')!(metric('LCP', 120, 'navigate'));
    const restoredAt = origin + performance.now();
    callbacks.get('FCP')!(metric('FCP', 40, 'back-forward-cache'));
    const lcp = spans.find((s) => s.name === 'LCP')!;
    const fcp = spans.find((s) => s.name === 'FCP')!;
    expect(lcp.startMs).toBe(origin);
    expect(lcp.endMs).toBe(origin + 120);
    // Measured up to the report, not from the original navigation (hours earlier, maybe).
    expect(fcp.endMs - fcp.startMs).toBeCloseTo(40, 5);
    expect(fcp.endMs).toBeGreaterThanOrEqual(restoredAt - 1);
    expect(fcp.startMs).toBeGreaterThan(origin);
    stop();
  });

  it('records through the tracer in charge when the page trace belongs to one since shut down (init, stop, init)', async () => {
    const first = createTracer();
    const page = first.createTrace({ name: 'page load', userId: 'u-1', sessionId: 's-1' });
    page.end();
    setPageTrace(page);
    await first.shutdown();
    const spans: SpanRecord[] = [];
    const tracer = createTracer({ processors: [{ onEnd: (r) => spans.push(r) }] });
    const stop = instrumentVitals({ tracer });
    callbacks.get('LCP')!(metric('LCP', 120, 'navigate'));
    const lcp = spans.find((s) => s.name === 'LCP')!;
    expect(lcp).toBeDefined();
    expect(lcp.traceId).toBe(page.traceId);
    expect(lcp.parentId).toBe(page.spanId);
    expect(lcp.attrs).toMatchObject({ 'user.id': 'u-1', 'session.id': 's-1' });
    stop();
  });
});
