import { test, expect } from '@playwright/test';
import { makeSpans, receiverPerFile, sdkPage, spansNamed, waitForTransport } from '../helpers/receiver';

// 503 four times, then 200: every span arrives, and the gaps between attempts grow.

const rx = receiverPerFile();

test('503 several times then 200: all arrive, with growing gaps between attempts', async ({ page }) => {
  // Jitter 0.3: each delay is in [0.7, 1] of base·2^(n-1), so consecutive delays cannot overlap.
  const BASE = 300;
  await page.goto(sdkPage(rx, '/backoff.html', { delivery: { flushIntervalMs: 100, backoffBaseMs: BASE, backoffJitter: 0.3 } }));
  await waitForTransport(page, 'worker');
  rx.reset();
  rx.failNext(4, 503);
  await makeSpans(page, 25, 'backoff-');
  await expect.poll(() => spansNamed(rx, 'backoff-').length, { timeout: 30_000, intervals: [250] }).toBe(25);

  const attempts = rx.requests.slice(0, 5);
  expect(attempts.map((r) => r.status)).toEqual([503, 503, 503, 503, 200]);
  // Gap n: from the answer to attempt n to the start of attempt n+1. Lower bounds only: a loaded
  // machine may add delay, never remove it.
  const gaps = attempts.slice(1).map((r, i) => r.startMs - attempts[i]!.endMs);
  for (let i = 0; i < gaps.length; i++) expect(gaps[i]).toBeGreaterThanOrEqual(0.7 * BASE * 2 ** i - 5);
  // Growing, not merely long: the last wait is more than twice the shortest before it. (Gap by gap
  // would fail whenever load stretches one early gap past the next: 1,104 ms then 619 once.)
  expect(gaps[3]!).toBeGreaterThan(2 * Math.min(...gaps.slice(0, 3)));
});
