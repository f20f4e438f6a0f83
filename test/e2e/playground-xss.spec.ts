import { randomBytes } from 'node:crypto';
import { test, expect } from '@playwright/test';
import { finishedRun, openPlayground, sendPrompt, spanRow, traceDetail, traceRow, usePlayground } from './playground-fixtures';

// Everything the viewer shows is data from senders it does not control. Markup in span names,
// attribute keys and values, event names, status messages, services and user ids must show as
// the characters it is, create no element and run nothing.

test.setTimeout(60_000);

const XSS = '<img src=x onerror=alert(1)>';
const SCRIPT = '<script>window.__pwned = 1</script><b onmouseover="window.__pwned = 2">bold?</b>';

const playground = usePlayground();

const str = (v: string) => ({ stringValue: v });

/** Posts a two-span trace full of markup to the collector, as any OTLP sender could. */
const postHostileTrace = async (url: string): Promise<string> => {
  const traceId = randomBytes(16).toString('hex');
  const root = randomBytes(8).toString('hex');
  const child = randomBytes(8).toString('hex');
  const t0 = BigInt(Date.now()) * 1_000_000n;
  const ns = (ms: number) => String(t0 + BigInt(ms) * 1_000_000n);
  const body = {
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: str(XSS) }] },
        scopeSpans: [
          {
            scope: { name: 'hostile' },
            spans: [
              {
                traceId,
                spanId: root,
                name: XSS,
                kind: 2,
                startTimeUnixNano: ns(0),
                endTimeUnixNano: ns(40),
                attributes: [
                  { key: 'user.id', value: str(XSS) },
                  { key: XSS, value: str(SCRIPT) },
                ],
                events: [{ name: XSS, timeUnixNano: ns(5), attributes: [{ key: 'detail', value: str(SCRIPT) }] }],
                status: { code: 2, message: SCRIPT },
              },
              { traceId, spanId: child, parentSpanId: root, name: SCRIPT, kind: 1, startTimeUnixNano: ns(10), endTimeUnixNano: ns(30) },
            ],
          },
        ],
      },
    ],
  };
  const res = await fetch(new URL('/v1/traces', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({});
  return traceId;
};

test('markup in names, attributes, events and users renders as text', async ({ page }) => {
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await openPlayground(page, playground());

  // A person can type markup too: the user name goes on the trace.
  const user = page.getByRole('banner').getByRole('textbox', { name: 'user' });
  await user.fill(XSS);
  await user.press('Tab');
  await sendPrompt(page, SCRIPT);
  const own = await finishedRun(page);
  await expect(page.getByTestId('answer')).toContainText(SCRIPT.slice(0, 40));

  const hostile = await postHostileTrace(playground().url);
  const row = traceRow(page, hostile);
  await expect(row.getByTestId('trace-row-name')).toHaveText(XSS, { timeout: 20_000 });
  await expect(row).toContainText(XSS);
  await expect(traceRow(page, own)).toContainText(XSS, { timeout: 20_000 });

  await row.click();
  const detail = traceDetail(page);
  await expect(detail.getByTestId('trace-name')).toHaveText(XSS);
  await expect(spanRow(page, SCRIPT)).toHaveCount(1);
  await spanRow(page, XSS).click();
  const span = detail.getByTestId('span-detail');
  await expect(span.getByTestId('span-detail-name')).toHaveText(XSS);
  await expect(span.getByTestId('span-attributes')).toContainText(`${XSS}${SCRIPT}`);
  await expect(span.getByTestId('span-events')).toContainText(XSS);
  await expect(span).toContainText(`error: ${SCRIPT}`);
  await expect(detail.locator('.legend')).toContainText(XSS);

  // Hover what would have had a handler, then check nothing was made or run.
  await page.getByText('bold?').first().hover();
  expect(await page.locator('img').count()).toBe(0);
  expect(await page.locator('body script').count()).toBe(0);
  expect(await page.locator('main b[onmouseover]').count()).toBe(0);
  expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
  expect(dialogs).toEqual([]);
});
