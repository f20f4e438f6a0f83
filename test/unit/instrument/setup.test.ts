import { afterEach, describe, expect, it } from 'vitest';
import { init, setTracer } from '../../../src/core/global';
import { createMemoryExporter } from '../../../src/export/memory';

describe('setupInstrumentation through init()', () => {
  afterEach(() => setTracer(undefined));

  it('patches nothing outside a browser page', () => {
    const fetchBefore = globalThis.fetch;
    init({ exporter: createMemoryExporter(), propagateTo: ['https://api.test'] });
    expect(globalThis.fetch).toBe(fetchBefore);
  });

  it('rejects invalid instrumentation options at init(), naming the option', () => {
    expect(() => init({ exporter: createMemoryExporter(), propagateTo: 'https://api.test' as never })).toThrow(
      /^\[edgetrace\] init\(\): "propagateTo" must be an array of URL strings and RegExps/,
    );
    expect(() => init({ exporter: createMemoryExporter(), instrument: { fetch: 1 as never } })).toThrow('"instrument.fetch" must be a boolean');
  });
});
