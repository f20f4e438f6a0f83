import { test, expect } from '@playwright/test';
import { finishedRun, openPlayground, runStatus, sendPrompt, spanRow, traceDetail, traceRow, usePlayground } from './playground-fixtures';

// The playground as a person uses it: type a prompt, click Send, watch the answer stream in, then
// find the run's trace in the viewer, one tree from the click to the server's decode step.

test.setTimeout(60_000);

const playground = usePlayground();

test('a prompt streams in, and its trace shows page and server spans in one tree', async ({ page }, testInfo) => {
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await openPlayground(page, playground());

  // A detailed answer from mock-pro streams for a few seconds: long enough to see it grow.
  await page.getByRole('textbox', { name: 'System prompt' }).fill('You explain web tracing in detail.');
  await sendPrompt(page, 'Why does first-token latency matter?', { model: 'mock-pro' });
  await expect(runStatus(page)).toHaveText('Streaming…', { timeout: 10_000 });
  const answer = page.getByTestId('answer');
  const partial = (await answer.textContent()) ?? '';
  expect(partial.length).toBeGreaterThan(0);
  const traceId = await finishedRun(page);
  const full = (await answer.textContent()) ?? '';
  expect(full.length).toBeGreaterThan(partial.length);
  expect(full).toContain('You asked: "Why does first-token latency matter?"');
  await expect(page.getByTestId('run-first-token')).toHaveText(/^first token \d+ ms$/);

  // The run opens its trace in the viewer; the server's spans and then the page's arrive.
  const detail = traceDetail(page);
  await expect(detail.getByTestId('trace-name')).toHaveText('send prompt', { timeout: 20_000 });
  for (const name of ['send prompt', 'chat completion', 'POST', 'POST /v1/chat/completions', 'validate request', 'queue', 'prefill', 'decode']) {
    await expect(spanRow(page, name), name).toHaveCount(1);
  }
  const rows = detail.getByTestId('span-row');
  await expect(rows.and(page.locator('[data-service="playground-web"]'))).toHaveCount(3);
  await expect(rows.and(page.locator('[data-service="mock-model"]'))).not.toHaveCount(0);

  // One tree: the server span's parent is the page's fetch span, via traceparent.
  const fetchSpanId = await spanRow(page, 'POST').getAttribute('data-span-id');
  await spanRow(page, 'POST /v1/chat/completions').click();
  const spanDetail = detail.getByTestId('span-detail');
  await expect(spanDetail.getByTestId('span-detail-name')).toHaveText('POST /v1/chat/completions');
  await expect(spanDetail).toContainText(`${fetchSpanId} (remote: from traceparent)`);

  // The generation carries the first-token latency, tokens and cost.
  const generation = spanRow(page, 'chat completion');
  await expect(generation.getByTestId('first-token')).toHaveText(/^first token \d+(\.\d+)? (ms|s)$/);
  await generation.click();
  const attrs = spanDetail.getByTestId('span-attributes');
  await expect(attrs).toContainText('langfuse.observation.completion_start_time');
  await expect(attrs).toContainText('gen_ai.usage.output_tokens');
  await expect(attrs).toContainText('gen_ai.usage.cost');

  // Events show on click too (the fetch span marks its first chunk).
  await spanRow(page, 'POST').click();
  await expect(spanDetail.getByTestId('span-events')).toContainText('first_chunk');

  // The list row: name, user, status, tokens and cost.
  const row = traceRow(page, traceId);
  await expect(row.getByTestId('trace-row-name')).toHaveText('send prompt');
  await expect(row).toContainText('ada');
  await expect(row).toContainText('ok');
  await expect(row.locator('td').nth(5)).toHaveText(/^\d+$/);
  await expect(row.locator('td').nth(6)).toHaveText(/^\$0\.0\d+$/);

  // Thumbs up becomes a score on the trace, delivered like the spans.
  await page.getByRole('button', { name: 'Thumbs up' }).click();
  await expect(page.locator('#feedback-note')).toContainText('user-feedback = 1');
  await expect(detail.getByTestId('score')).toHaveText(/user-feedback = 1/, { timeout: 20_000 });

  // The stats panel counts the run.
  await expect(page.getByTestId('stat-run')).toContainText('1 run (', { timeout: 10_000 });
  await expect(page.getByTestId('stats-models')).toContainText('mock-pro');

  const shot = testInfo.outputPath('playground-viewer.png');
  await page.screenshot({ path: shot, fullPage: true });
  await testInfo.attach('playground viewer', { path: shot, contentType: 'image/png' });
  expect(dialogs).toEqual([]);
});

test('a session groups runs, and the filters narrow the list', async ({ page }) => {
  await openPlayground(page, playground());
  const before = (await page.locator('#session').textContent())!;
  expect(before).toMatch(/^[A-Za-z0-9_-]{21}$/);
  await page.getByRole('button', { name: 'new', exact: true }).click();
  await expect(page.locator('#session')).not.toHaveText(before);
  const session = (await page.locator('#session').textContent())!;
  expect(session).toMatch(/^[A-Za-z0-9_-]{21}$/);
  const first = await (async () => {
    await sendPrompt(page, 'How is cost computed?');
    return finishedRun(page);
  })();
  await sendPrompt(page, 'And what about latency?', { failure: 'rate-limit' });
  const second = await finishedRun(page, /^Rate limited/);

  await page.getByLabel('this session only').check();
  await expect(page.getByTestId('trace-row')).toHaveCount(2, { timeout: 20_000 });
  await expect(traceRow(page, first)).toContainText('ok');
  await expect(traceRow(page, second)).toContainText('error');
  await expect(traceRow(page, second).getByTestId('trace-row-name')).toHaveText('send prompt', { timeout: 20_000 });

  await page.getByLabel('status').selectOption('error');
  await expect(page.getByTestId('trace-row')).toHaveCount(1);
  await expect(traceRow(page, second)).toHaveCount(1);

  // The trace's detail line names the session.
  await traceRow(page, second).click();
  await expect(traceDetail(page)).toContainText(`session ${session}`);
});

test('a thumbs-up given long after the run still shows on its trace', async ({ page }) => {
  // The page's clock runs as usual, and jumps ahead below: the score comes when the trace's
  // spans ended well over the viewer's reload window ago, and changes nothing in the list.
  await page.clock.install();
  await openPlayground(page, playground());
  await sendPrompt(page, 'Rate me later');
  const traceId = await finishedRun(page);
  const detail = traceDetail(page);
  await expect(detail.getByTestId('trace-name')).toHaveText('send prompt', { timeout: 20_000 });
  await expect(traceRow(page, traceId)).toHaveCount(1);
  await page.clock.fastForward(30_000);
  await page.getByRole('button', { name: 'Thumbs up' }).click();
  await expect(page.locator('#feedback-note')).toContainText('user-feedback = 1');
  await expect(detail.getByTestId('score')).toHaveText(/user-feedback = 1/, { timeout: 20_000 });
});
