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
});
