import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TelemetryRecord } from '../../../src/protocol';
import { spanRecord } from '../../helpers/records';

// The page outbox's hand-over around its own storage (startDelivery) and its keepalive tail
// (sendTail), both stood in for: what is checked is which records the tail carries.
const enqueued: Array<{ records: TelemetryRecord[]; resolve(n: number): void }> = [];
const tails: TelemetryRecord[][] = [];
const flushes: string[] = [];

vi.mock('../../../worker/startDelivery', () => ({
  startDelivery: () => ({
    api: {
      configure: async () => undefined,
      enqueue: (records: TelemetryRecord[]) => new Promise<number>((resolve) => enqueued.push({ records, resolve })),
    },
    flusher: { start: (trigger: string) => void flushes.push(trigger) },
    stop: () => undefined,
  }),
}));
vi.mock('../../../src/transport/keepalive', () => ({
  keepaliveFetch: fetch,
  sendTail: (records: TelemetryRecord[]) => void tails.push([...records]),
}));

const { startPageOutbox } = await import('../../../src/transport/pageOutbox');
// A page's globals for its `online` listener.
vi.stubGlobal('addEventListener', () => undefined);
vi.stubGlobal('removeEventListener', () => undefined);

describe('page outbox', () => {
  afterEach(() => {
    enqueued.length = 0;
    tails.length = 0;
    flushes.length = 0;
  });

  /** A page outbox with one hand-over stored and a second one still being stored. */
  const storedAndStoring = async () => {
    const sink = startPageOutbox({ endpoint: 'https://collector.test/v1/traces' });
    const storing = [spanRecord(2), spanRecord(3)];
    const stored = sink.hand([spanRecord(1)], false);
    void sink.hand(storing, false);
    enqueued[0]!.resolve(1);
    await stored;
    return { sink, storing };
  };

  it('puts hand-overs still being stored into the tail on page hide, and only those', async () => {
    const { sink, storing } = await storedAndStoring();
    // The page is hidden while the second hand-over's transaction is open: a page frozen in the
    // back/forward cache would hold it there, and lose it when evicted.
    const last = [spanRecord(4)];
    void sink.hand(last, true);
    expect(tails).toEqual([[...storing, ...last]]);
    sink.stop?.();
  });

  it('sends the tail of a hand-over still being stored when the page leaves with nothing left to hand', async () => {
    const { sink, storing } = await storedAndStoring();
    // The buffer was handed over in idle time before the page went: no urgent hand-over comes.
    sink.leaving?.();
    expect(tails).toEqual([storing]);
    // What is stored is safe, and a flush would keep the page out of the back/forward cache.
    expect(flushes).toEqual([]);
    sink.stop?.();
  });

  it('does not send a hand-over twice when an urgent hand-over already carried it', () => {
    const sink = startPageOutbox({ endpoint: 'https://collector.test/v1/traces' });
    const storing = [spanRecord(1)];
    const last = [spanRecord(2)];
    void sink.hand(storing, false);
    void sink.hand(last, true);
    sink.leaving?.();
    expect(tails).toEqual([[...storing, ...last]]);
    sink.stop?.();
  });
});
