import { describe, expect, it } from 'vitest';
import { resolveTransport } from '../../../src/transport/options';
import { DELIVERY_DEFAULTS, resolveDelivery } from '../../../src/transport/resolveDelivery';
import { fail } from '../../../src/config';

describe('resolveTransport', () => {
  it('fills in defaults', () => {
    expect(resolveTransport({})).toEqual({
      transport: 'auto',
      workerUrl: '/edgetrace-sw.js',
      defaultWorker: true,
      workerTimeoutMs: 10_000,
      tokenHeaders: {},
      delivery: {},
      pageBuffer: { maxRecords: 5000, batchRecords: 256, maxDelayMs: 1000 },
    });
  });

  it('tells a default worker URL from one the app chose, the same one included', () => {
    expect(resolveTransport({ workerUrl: '/edgetrace-sw.js' }).defaultWorker).toBe(false);
    expect(resolveTransport({ workerUrl: false }).defaultWorker).toBe(false);
  });

  it('turns an ingest token into a header', () => {
    expect(resolveTransport({ ingestToken: 'pub-1' }).tokenHeaders).toEqual({ 'x-edgetrace-token': 'pub-1' });
    expect(resolveTransport({ ingestToken: 'pub-1', ingestTokenHeader: 'x-edge' }).tokenHeaders).toEqual({ 'x-edge': 'pub-1' });
  });

  it.each([
    [{ transport: 'beacon' }, '"transport" must be one of "auto", "worker", "page", "memory", got "beacon"'],
    [{ workerUrl: '' }, '"workerUrl" must be a script URL, a TrustedScriptURL or false'],
    [{ workerTimeoutMs: -1 }, '"workerTimeoutMs" must be a whole number ≥ 0, got -1'],
    [{ ingestToken: 'x', ingestTokenHeader: 'bad header' }, '"ingestTokenHeader" must be an HTTP header name'],
    [{ delivery: { maxRecords: 0 } }, '"delivery.maxRecords" must be a whole number ≥ 1, got 0'],
    [{ delivery: { backoffJitter: 2 } }, '"delivery.backoffJitter" must be a number from 0 to 1, got 2'],
    [{ delivery: { flushIntervalMs: '1s' } }, '"delivery.flushIntervalMs" must be a whole number ≥ 0, got "1s"'],
    [{ pageBuffer: { batchRecords: 0 } }, '"pageBuffer.batchRecords" must be a whole number ≥ 1, got 0'],
  ])('throws a TypeError naming the option for %j', (opts, message) => {
    expect(() => resolveTransport(opts as never)).toThrow(TypeError);
    expect(() => resolveTransport(opts as never)).toThrow(message);
  });
});

describe('resolveDelivery', () => {
  it('layers given options over a base', () => {
    const base = resolveDelivery({ maxRecords: 50 }, 'x', fail);
    expect(resolveDelivery({ flushIntervalMs: 5 }, 'x', fail, base)).toEqual({ ...DELIVERY_DEFAULTS, maxRecords: 50, flushIntervalMs: 5 });
  });
});
