import { test, expect } from '@playwright/test';
import { finishedRun, openPlayground, runStatus, sendPrompt, spanRow, traceDetail, usePlayground } from './playground-fixtures';

// The mock model fails on demand, and each failure shows where it happened: in the run panel,
// and in the trace, on the page's side and the server's.

test.setTimeout(60_000);

const playground = usePlayground();

/** Waits for the open trace to hold the page's half too (its root is the click). */
const wholeTrace = async (page: import('@playwright/test').Page): Promise<void> => {
  await expect(traceDetail(page).getByTestId('trace-name')).toHaveText('send prompt', { timeout: 20_000 });
};

test('HTTP 500, a rate limit and a stall each fail the run and mark the trace', async ({ page }) => {
  await openPlayground(page, playground());
  const detail = traceDetail(page);

  await sendPrompt(page, 'Fail, please.', { failure: 'error' });
  await finishedRun(page, /^Failed \(HTTP 500\): The model server had an error/);
  await wholeTrace(page);
  await expect(detail.locator('.trace-head .status')).toHaveText('error');
  await expect(spanRow(page, 'prefill').locator('.err-mark')).toHaveCount(1);
  await expect(spanRow(page, 'chat completion').locator('.err-mark')).toHaveCount(1);

  await sendPrompt(page, 'Too many requests?', { failure: 'rate-limit' });
  // The model says when to try again; the page does not say it twice.
  await finishedRun(page, /^Rate limited \(HTTP 429\): .*Please try again in 2s\.$/);
  await wholeTrace(page);
  await spanRow(page, 'rate limiter').click();
  await expect(detail.getByTestId('span-events')).toContainText('rate limit exceeded');
  await expect(detail.getByTestId('span-attributes')).toContainText('mock.rate_limited');

  // A stall: a few tokens, then nothing; the page gives up after 5 s of silence.
  await sendPrompt(page, 'Stall halfway.', { failure: 'stall' });
  await expect(runStatus(page)).toHaveText('Streaming…', { timeout: 10_000 });
  await finishedRun(page, /^Failed: The model stalled: no token arrived for 5 s/, 20_000);
  await expect(page.getByTestId('answer')).not.toBeEmpty();
  await wholeTrace(page);
  // The server saw the client give up in the middle of decoding.
  await expect(spanRow(page, 'decode').locator('.err-mark')).toHaveCount(1, { timeout: 20_000 });
  await spanRow(page, 'decode').click();
  await expect(detail.getByTestId('span-events')).toContainText('stalled');
  await expect(detail.getByTestId('span-events')).toContainText('client went away');
  await expect(detail.getByTestId('span-detail')).toContainText('error: stalled');
});

test('Stop ends a run without calling it a failure', async ({ page }) => {
  await openPlayground(page, playground());
  // A detailed answer from mock-pro streams for several seconds: time enough to press Stop.
  await page.getByRole('textbox', { name: 'System prompt' }).fill('Answer in detail.');
  await sendPrompt(page, 'How do traces survive a flaky network?', { model: 'mock-pro' });
  await expect(runStatus(page)).toHaveText('Streaming…', { timeout: 10_000 });
  await page.getByRole('button', { name: 'Stop' }).click();
  await finishedRun(page, /^Stopped\.$/);
  await wholeTrace(page);
  await expect(traceDetail(page).locator('.trace-head .status')).toHaveText('ok');
  await spanRow(page, 'chat completion').click();
  await expect(traceDetail(page).getByTestId('span-attributes')).toContainText('edgetrace.cancelled');
  // The server saw the client leave: noted on its decode step, not counted as an error.
  await spanRow(page, 'decode').click();
  await expect(traceDetail(page).getByTestId('span-events')).toContainText('client went away');
  await expect(spanRow(page, 'decode').locator('.err-mark')).toHaveCount(0);
});

test('an empty prompt clears the last answer, so no thumb seems to rate it', async ({ page }) => {
  await openPlayground(page, playground());
  await sendPrompt(page, 'Say something short.');
  await finishedRun(page);
  await expect(page.getByRole('button', { name: 'Thumbs up' })).toBeVisible();
  await sendPrompt(page, '   ');
  await expect(runStatus(page)).toHaveText('Type a prompt first.');
  await expect(page.getByTestId('answer')).toBeEmpty();
  await expect(page.locator('#run-metrics')).toBeEmpty();
  await expect(page.getByRole('button', { name: 'Thumbs up' })).toBeHidden();
});
