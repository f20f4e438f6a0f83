import { describe, expect, it } from 'vitest';
import { MAX_RETRY_AFTER_MS, nextDelayMs } from '../../../worker/nextDelayMs';

const base = { backoffBaseMs: 1000, backoffCapMs: 60_000, backoffJitter: 1 };

describe('nextDelayMs', () => {
  it('doubles the ceiling per attempt up to the cap', () => {
    const top = (attempt: number) => nextDelayMs({ ...base, attempt, random: () => 0 });
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(top)).toEqual([1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
  });

  it('draws uniformly below the ceiling with full jitter', () => {
    expect(nextDelayMs({ ...base, attempt: 3, random: () => 0.5 })).toBe(2000);
    expect(nextDelayMs({ ...base, attempt: 3, random: () => 0.999 })).toBe(4);
  });

  it('keeps a floor with partial jitter, so delays grow strictly', () => {
    const lo = (attempt: number) => nextDelayMs({ ...base, backoffJitter: 0.3, attempt, random: () => 0.9999 });
    const hi = (attempt: number) => nextDelayMs({ ...base, backoffJitter: 0.3, attempt, random: () => 0 });
    expect(lo(2)).toBe(1400);
    for (let n = 1; n < 5; n++) expect(lo(n + 1)).toBeGreaterThan(hi(n));
  });

  it('never retries before Retry-After, and clamps absurd values', () => {
    expect(nextDelayMs({ ...base, attempt: 1, random: () => 0, retryAfterMs: 2000 })).toBe(2000);
    expect(nextDelayMs({ ...base, attempt: 6, random: () => 0, retryAfterMs: 2000 })).toBe(32_000);
    expect(nextDelayMs({ ...base, attempt: 1, random: () => 0, retryAfterMs: 7 * 86_400_000 })).toBe(MAX_RETRY_AFTER_MS);
    expect(nextDelayMs({ ...base, attempt: 1, random: () => 0, retryAfterMs: -5 })).toBe(1000);
  });

  it('stays finite for huge attempt counts, even with no cap', () => {
    expect(nextDelayMs({ ...base, attempt: 5000, random: () => 0 })).toBe(60_000);
    expect(nextDelayMs({ ...base, backoffCapMs: Infinity, attempt: 5000, random: () => 0 })).toBe(1000 * 2 ** 30);
  });
});
