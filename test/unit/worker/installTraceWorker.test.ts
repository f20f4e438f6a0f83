import { describe, expect, it } from 'vitest';
import { installTraceWorker } from '../../../worker/index';

// Only refusals here: a valid call starts listening on the service worker scope, which the
// delivery e2e specs (delivery-app-worker) cover in Chromium.
describe('installTraceWorker', () => {
  it.each([
    [{ endpoint: '' }, /"endpoint" must be a non-empty URL string, got ""/],
    [{ headers: 'x' }, /"headers" must be an object of header names to values/],
    [{ delivery: { maxBatchRecords: 0 } }, /"delivery.maxBatchRecords" must be a whole number ≥ 1, got 0/],
    [{ delivery: { requestTimeoutMs: 0 } }, /"delivery.requestTimeoutMs" must be a whole number ≥ 1/],
    [{ delivery: { flushIntervalMs: 1.5 } }, /"delivery.flushIntervalMs" must be a whole number ≥ 0, got 1.5/],
    [{ delivery: { backoffJitter: 2 } }, /"delivery.backoffJitter" must be a number from 0 to 1, got 2/],
    [{ delivery: 5 }, /"delivery" must be an object, got 5/],
  ])('refuses %j at once, naming the option', (options, message) => {
    expect(() => installTraceWorker(options as never)).toThrow(TypeError);
    expect(() => installTraceWorker(options as never)).toThrow(message);
    expect(() => installTraceWorker(options as never)).toThrow(/^\[edgetrace\] installTraceWorker\(\): /);
  });

  it('says it must run in a service worker when called elsewhere (here, Node)', () => {
    expect(() => installTraceWorker({ endpoint: '/v1/traces' })).toThrowError('[edgetrace] installTraceWorker() must run in a service worker, at its script\'s top level');
  });
});
