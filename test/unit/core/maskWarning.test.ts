import { describe, expect, it, vi } from 'vitest';
import { testTracer } from '../../helpers/collect';
import * as A from '../../../src/core/semconv';

// In a file of its own: the warning is said once per process, and other mask tests return undefined on purpose.
describe('mask', () => {
  it("says once that a mask returned undefined, as Langfuse's ({ data }) form does, which leaves every value out", () => {
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { tracer, byName } = testTracer({ mask: (({ data }: { data?: unknown }) => (typeof data === 'string' ? data.replace('@', ' at ') : data)) as never });
      tracer.createTrace('t').span('s', (s) => s.setInput('from ana@example.com').setOutput({ ok: true }).addMetadata('who', 'bo@example.com'));
      const attrs = byName('s').attrs;
      expect(attrs).not.toHaveProperty(A.OBSERVATION_INPUT);
      expect(attrs).not.toHaveProperty(A.OBSERVATION_OUTPUT);
      expect(attrs).not.toHaveProperty(`${A.OBSERVATION_METADATA}.who`);
      const said = warned.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('mask('));
      expect(said).toEqual([
        `[edgetrace] mask(value, "input") returned undefined: the value is left out (said once). mask gets the value, not Langfuse's { data }.`,
      ]);
    } finally {
      warned.mockRestore();
    }
  });

  it('records a promise from a mask as [mask failed], says so once, and leaves no unhandled rejection', async () => {
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { tracer, byName } = testTracer({ mask: (async () => Promise.reject(new Error('dlp down'))) as never });
      tracer.createTrace('t').span('s', (s) => s.setInput('hello').addMetadata('who', 'ana'));
      await new Promise((r) => setTimeout(r, 20));
      expect(byName('s').attrs).toMatchObject({ [A.OBSERVATION_INPUT]: '[mask failed]', [`${A.OBSERVATION_METADATA}.who`]: '[mask failed]' });
      expect(warned.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('promise'))).toEqual([
        '[edgetrace] mask returned a promise: it must give the value back at once; recorded as [mask failed].',
      ]);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      warned.mockRestore();
    }
  });
});
