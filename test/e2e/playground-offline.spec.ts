import { test, expect } from '@playwright/test';
import { finishedRun, openPlayground, sendPrompt, traceRow, usePlayground } from './playground-fixtures';

// The delivery panel's offline switch: while it is on, trace uploads from the browser fail as on
// a dead network, the service worker holds the spans in its outbox, and the viewer shows those
// runs with only their server spans. Back online, the backlog is delivered and the runs fill in.

test.setTimeout(60_000);

const playground = usePlayground();

const outboxCount = async (page: import('@playwright/test').Page, key: string): Promise<number> =>
  Number(((await page.getByTestId(`outbox-${key}`).locator('dd').textContent()) ?? '').replace(/,/g, ''));

test('offline, two runs wait in the outbox; back online, both traces appear whole', async ({ page }) => {
  await openPlayground(page, playground());
  const offline = page.getByRole('switch', { name: /Offline/ });
  await page.locator('label.switch').click();
  await expect(offline).toBeChecked();

  await sendPrompt(page, 'What happens to spans when the network is down?');
  const first = await finishedRun(page);
  await sendPrompt(page, 'And when it comes back?', { model: 'mock-pro' });
  const second = await finishedRun(page);

  // The worker tried and failed: the page's spans are queued, not delivered.
  await expect(page.locator('#delivery-error')).toContainText('network error', { timeout: 15_000 });
  await expect.poll(() => outboxCount(page, 'queued'), { timeout: 15_000 }).toBeGreaterThanOrEqual(6);
  const deliveredBefore = await outboxCount(page, 'delivered');

  // The server's half of each run arrived on its own: the rows carry the server span's name.
  for (const id of [first, second]) {
    await expect(traceRow(page, id).getByTestId('trace-row-name')).toHaveText('POST /v1/chat/completions', { timeout: 20_000 });
  }

  await page.locator('label.switch').click();
  await expect(offline).not.toBeChecked();
  for (const id of [first, second]) {
    await expect(traceRow(page, id).getByTestId('trace-row-name')).toHaveText('send prompt', { timeout: 30_000 });
    await expect(traceRow(page, id).locator('td').nth(7)).toHaveText('9');
  }
  await expect.poll(() => outboxCount(page, 'queued'), { timeout: 15_000 }).toBe(0);
  expect(await outboxCount(page, 'delivered')).toBeGreaterThan(deliveredBefore);
  await expect(page.getByTestId('outbox-dropped').locator('dd')).toHaveText('0');
});
