import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { dirname } from 'node:path';
import { Miniflare } from 'miniflare';
import { startReceiver, type Receiver } from '../unit/server/loopback';
import { bundle, cleanUp } from './runtimes';
import type { OtlpSpan } from '../../src/export/otlp';

// A Worker's Cron Trigger and Queues consumer, wrapped with its fetch handler by one
// withTracing({ ... }), run in real workerd (miniflare): each event is a trace of its own, its
// fetch calls are CLIENT spans carrying it, a queued message's traceparent is continued, and the
// spans reach the loopback receiver through ctx.waitUntil.

/** What the tests use of miniflare's handle on the Worker (its types come from workers-types, not installed). */
interface EventTarget {
  scheduled(options: { cron: string; scheduledTime: Date }): Promise<{ outcome: string }>;
  queue(queue: string, messages: { id: string; timestamp: Date; attempts: number; body: unknown }[]): Promise<{ outcome: string }>;
}
const workerOf = async (): Promise<EventTarget> => (await mf.getWorker()) as unknown as EventTarget;

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

let rx: Receiver;
let mf: Miniflare;
beforeAll(async () => {
  rx = await startReceiver();
  const scriptPath = await bundle('workerd-events', 'esm');
  mf = new Miniflare({
    modules: true,
    scriptPath,
    modulesRoot: dirname(scriptPath),
    compatibilityDate: '2025-09-01',
    compatibilityFlags: ['nodejs_compat'],
    bindings: { EXPORT_URL: `${rx.base}/v1/traces`, DOWNSTREAM_URL: rx.base },
  });
  await mf.ready;
}, 60_000);
afterAll(async () => {
  await mf?.dispose();
  await rx.close();
  cleanUp();
});

/** The spans of every export so far. */
const exported = (): OtlpSpan[] =>
  rx.received
    .filter((r) => r.url === '/v1/traces')
    .flatMap((r) => (JSON.parse(r.body) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] }).resourceSpans)
    .flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans));

const attr = (span: OtlpSpan | undefined, key: string): unknown => {
  const v = span?.attributes?.find((a) => a.key === key)?.value as Record<string, unknown> | undefined;
  return v && Object.values(v)[0];
};

/** Waits until a span named `name` has been exported, with the rest of its export. */
const waitForSpan = async (name: string): Promise<OtlpSpan> => {
  for (const t0 = Date.now(); Date.now() - t0 < 10_000; await new Promise((r) => setTimeout(r, 20))) {
    const found = exported().find((s) => s.name === name);
    if (found) return found;
  }
  throw new Error(`no span "${name}" exported; got ${exported().map((s) => s.name).join(', ')}`);
};

describe('a Worker’s scheduled and queue handlers in workerd', () => {
  it('traces a Cron Trigger with its outgoing fetch', async () => {
    const worker = await workerOf();
    const result = await worker.scheduled({ cron: '*/5 * * * *', scheduledTime: new Date(Date.UTC(2026, 10, 20, 12, 5)) });
    expect(result.outcome).toBe('ok');
    const root = await waitForSpan('scheduled */5 * * * *');
    expect(root.kind).toBe(2); // SERVER
    expect(attr(root, 'faas.trigger')).toBe('timer');
    expect(attr(root, 'faas.time')).toBe('2026-11-20T12:05:00.000Z');
    const client = exported().find((s) => s.kind === 3 && s.traceId === root.traceId);
    expect(client?.parentSpanId).toBe(root.spanId);
    const call = rx.received.find((r) => r.url === '/down?i=cron');
    expect(call?.body).toBe('*/5 * * * *');
    expect(call?.headers.traceparent).toMatch(new RegExp(`^00-${root.traceId}-${client!.spanId}-`));
  });

  it('continues the trace a queued message carries, and records a failed batch', async () => {
    const worker = await workerOf();
    const sent = await worker.queue('jobs', [{ id: 'a', timestamp: new Date(), attempts: 1, body: { doc: 1, traceparent: `00-${TRACE}-${PARENT}-01` } }]);
    expect(sent.outcome).toBe('ok');
    const one = await waitForSpan('process jobs');
    expect(one).toMatchObject({ traceId: TRACE, parentSpanId: PARENT, kind: 5 }); // CONSUMER
    expect(attr(one, 'messaging.batch.message_count')).toBe('1');
    const job = exported().find((s) => s.name === 'job' && s.traceId === TRACE);
    expect(job?.parentSpanId).toBe(one.spanId);
    expect(rx.received.find((r) => r.url === '/down?i=job')?.headers.traceparent).toMatch(new RegExp(`^00-${TRACE}-`));

    const failed = await worker.queue('retries', [
      { id: 'b', timestamp: new Date(), attempts: 1, body: { fail: true } },
      { id: 'c', timestamp: new Date(), attempts: 1, body: 'text' },
    ]);
    expect(failed.outcome).toBe('exception');
    const batch = await waitForSpan('process retries');
    expect(batch.status?.code).toBe(2); // ERROR
    expect(attr(batch, 'messaging.batch.message_count')).toBe('2');
    expect(batch.events?.map((e) => e.name)).toEqual(['exception']);
  });

  it('puts each message of a batch in the trace that sent it through withMessage', async () => {
    const worker = await workerOf();
    const OTHER = 'ab'.repeat(16);
    const result = await worker.queue('each', [
      { id: 'e1', timestamp: new Date(), attempts: 1, body: { traceparent: `00-${TRACE}-${PARENT}-01` } },
      { id: 'e2', timestamp: new Date(), attempts: 1, body: { traceparent: `00-${OTHER}-${'cd'.repeat(8)}-01` } },
    ]);
    expect(result.outcome).toBe('ok');
    await waitForSpan('process each');
    for (const [id, traceId, parentSpanId] of [['e1', TRACE, PARENT], ['e2', OTHER, 'cd'.repeat(8)]] as const) {
      for (const t0 = Date.now(); Date.now() - t0 < 10_000 && !exported().some((s) => s.traceId === traceId && attr(s, 'messaging.message.id') === id); ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const message = exported().find((s) => s.traceId === traceId && attr(s, 'messaging.message.id') === id);
      expect(message).toMatchObject({ name: 'process each', kind: 5, parentSpanId });
      const client = exported().find((s) => s.kind === 3 && s.parentSpanId === message!.spanId);
      expect(client?.traceId).toBe(traceId);
      expect(rx.received.find((r) => r.url === `/down?i=${id}`)?.headers.traceparent).toMatch(new RegExp(`^00-${traceId}-${client!.spanId}-`));
    }
  });
});
