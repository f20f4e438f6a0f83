import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test, type Locator, type Page } from '@playwright/test';
import { startPlayground, type Playground } from '../../demo/server/playground';

// Shared by the playground-*.spec.ts files: the real playground (collector, mock model server,
// Vite-served page) started in-process on a free port with a temporary database, and the steps a
// person takes in it. Needs the service worker built (`npm run build`; `npm test` does that).

interface TestPlayground {
  pg: Playground;
  close(): Promise<void>;
}

/** Starts the playground on a free port with its own database; nothing is forwarded anywhere. */
const startTestPlayground = async (): Promise<TestPlayground> => {
  const dir = await mkdtemp(join(tmpdir(), 'edgetrace-playground-'));
  const pg = await startPlayground({ port: 0, dbPath: join(dir, 'traces.db'), env: {}, log: () => undefined });
  return {
    pg,
    close: async () => {
      await pg.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
};

/**
 * One playground for all tests of a spec file: started before the first, closed after the last.
 * Call at the top level of the spec; the returned function gives the running playground.
 */
export const usePlayground = (): (() => Playground) => {
  let tp: TestPlayground | undefined;
  test.beforeAll(async () => {
    tp = await startTestPlayground();
  });
  test.afterAll(async () => {
    await tp?.close();
  });
  return () => {
    if (!tp) throw new Error('usePlayground(): the playground has not started');
    return tp.pg;
  };
};

/** Opens the page and waits until the service worker carries its spans. */
export const openPlayground = async (page: Page, pg: Playground): Promise<void> => {
  await page.goto(pg.url);
  await expect(page.getByTestId('transport')).toHaveText('service worker', { timeout: 20_000 });
};

export interface PromptOptions {
  model?: 'mock-mini' | 'mock-pro' | 'mock-deep';
  failure?: 'none' | 'error' | 'stall' | 'rate-limit';
}

/** Types a prompt, picks the model and failure mode, and clicks Send. */
export const sendPrompt = async (page: Page, text: string, opts: PromptOptions = {}): Promise<void> => {
  await page.getByRole('textbox', { name: 'Prompt', exact: true }).fill(text);
  await page.getByLabel(/^Model/).selectOption(opts.model ?? 'mock-mini');
  await page.getByLabel('Make the model…').selectOption(opts.failure ?? 'none');
  await page.getByRole('button', { name: 'Send', exact: true }).click();
};

export const runStatus = (page: Page): Locator => page.locator('#run-status');

/** Waits for the run to finish and returns its trace id (from the "trace … →" link). */
export const finishedRun = async (page: Page, status: RegExp = /^Done/, timeoutMs = 20_000): Promise<string> => {
  await expect(runStatus(page)).toHaveText(status, { timeout: timeoutMs });
  const link = page.locator('#run-metrics button');
  await expect(link).toBeVisible();
  const traceId = await link.getAttribute('title');
  expect(traceId).toMatch(/^[0-9a-f]{32}$/);
  return traceId!;
};

/** The open trace in the viewer. */
export const traceDetail = (page: Page): Locator => page.getByTestId('trace-detail');

/** The waterfall row of the span named `name` (exactly) in the open trace. */
export const spanRow = (page: Page, name: string): Locator =>
  traceDetail(page).getByTestId('span-row').filter({ has: page.getByTestId('span-name').getByText(name, { exact: true }) });

/** The trace list's row for `traceId`. */
export const traceRow = (page: Page, traceId: string): Locator => page.locator(`[data-testid="trace-row"][data-trace-id="${traceId}"]`);
