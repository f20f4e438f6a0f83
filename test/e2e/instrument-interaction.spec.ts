import { test, expect } from '@playwright/test';
import { flush, pageErrors, ready, startServers, testPage, type Servers } from './instrument-fixtures';

// Interactions in real Chromium: the work a handler starts, also after awaits, becomes the
// children of the interaction span, and the backend sees the interaction's trace.

let s: Servers;
test.beforeAll(async () => {
  s = await startServers();
});
test.afterAll(async () => s.close());
test.beforeEach(() => s.reset());

const BODY = `
<button id="send" data-trace-name="send message">Send</button>
<button class="btn primary" id="">Go</button>
<form id="chat"><input name="q"><button type="submit">Ask</button></form>
<textarea id="prompt"></textarea>
<p id="status"></p>`;

const SETUP = `
  const tracer = window.tracer;
  document.getElementById('send').addEventListener('click', async () => {
    await Promise.resolve();
    await new Promise((r) => setTimeout(r, 50));
    const first = await fetch('/api/first');
    await first.json();
    await tracer.span('render', async () => {
      await (await fetch('/api/second')).text();
    });
    document.getElementById('status').textContent = 'done';
  });
  document.querySelector('.btn').addEventListener('click', () => { fetch('/api/go').then((r) => r.text()); });
  document.getElementById('chat').addEventListener('submit', (e) => {
    e.preventDefault();
    fetch('/api/ask').then((r) => r.text());
  });
  document.getElementById('prompt').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); setTimeout(() => fetch('/api/prompt'), 100); }
  });
`;

test('a click whose handler awaits twice and then fetches parents the fetches and spans', async ({ page }) => {
  await page.goto(s.page('/click.html', testPage({ init: '{}', setup: SETUP, body: BODY })));
  await ready(page);
  // Let the page load settle first, so it does not adopt what the click starts.
  await page.waitForTimeout(700);
  await page.click('#send');
  await expect(page.locator('#status')).toHaveText('done');
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'send message'))).toBeDefined();
  const spans = s.spans();
  const click = spans.find((x) => x.name === 'send message')!;
  const first = spans.find((x) => String(x.attrs['url.full']).endsWith('/api/first'))!;
  const render = spans.find((x) => x.name === 'render')!;
  const second = spans.find((x) => String(x.attrs['url.full']).endsWith('/api/second'))!;
  expect(click.parentId).toBeUndefined();
  expect(click.attrs).toMatchObject({ 'edgetrace.interaction.type': 'click', 'edgetrace.interaction.target': 'button#send' });
  expect(first.parentId).toBe(click.spanId);
  expect(render.parentId).toBe(click.spanId);
  expect(second.parentId).toBe(render.spanId);
  for (const x of [first, render, second]) expect(x.traceId).toBe(click.traceId);
  // The backend continues the click's trace.
  const header = s.seen.find((r) => r.path === '/api/first')!.headers.traceparent as string;
  expect(header.slice(3, 35)).toBe(click.traceId);
  expect(header.slice(36, 52)).toBe(first.spanId);
  // The interaction ends with its last piece of work, not when the idle wait ran out.
  // (Measured from the last child to end, whichever it is: a renderer pause can reorder them.)
  const lastWork = Math.max(first.endMs, render.endMs, second.endMs);
  expect(click.endMs).toBeGreaterThanOrEqual(lastWork - 1);
  expect(click.endMs - lastWork).toBeLessThan(100);
  expect(await pageErrors(page)).toEqual([]);
});

test('interactions are named from data-trace-name or a short selector; submit and Enter count', async ({ page }) => {
  await page.goto(s.page('/names.html', testPage({ init: '{}', setup: SETUP, body: BODY })));
  await ready(page);
  await page.waitForTimeout(700);
  await page.click('.btn');
  await page.waitForTimeout(600);
  await page.fill('input[name=q]', 'hello');
  await page.press('input[name=q]', 'Enter');
  await page.waitForTimeout(600);
  await page.focus('#prompt');
  await page.keyboard.press('Enter');
  await expect.poll(async () => (await flush(page), s.spans().filter((x) => x.attrs['edgetrace.interaction.type']).length)).toBe(3);
  const spans = s.spans();
  const names = spans.filter((x) => x.attrs['edgetrace.interaction.type']).map((x) => x.name);
  expect(names).toEqual(['click button.btn.primary', 'submit form#chat', 'keydown textarea#prompt']);
  const parentOf = (path: string) => spans.find((x) => x.spanId === spans.find((y) => String(y.attrs['url.full']).endsWith(path))?.parentId)?.name;
  await expect.poll(async () => (await flush(page), s.spans().some((x) => String(x.attrs['url.full']).endsWith('/api/prompt')))).toBe(true);
  expect(parentOf('/api/go')).toBe('click button.btn.primary');
  expect(parentOf('/api/ask')).toBe('submit form#chat');
  expect(parentOf('/api/prompt')).toBe('keydown textarea#prompt');
  expect(await pageErrors(page)).toEqual([]);
});

test('a click on text or a blank spot is sent only when it starts something', async ({ page }) => {
  const body = `<h1>Chat</h1><p id="answer">An answer to read.</p><div class="card" id="c1">A card</div><div style="height:200px"></div><button id="noop">Noop</button>`;
  const setup = `
    document.getElementById('c1').addEventListener('click', () => { fetch('/api/card').then((r) => r.text()); });
    document.getElementById('noop').addEventListener('click', () => { document.title = 'noop'; });`;
  await page.goto(s.page('/minor.html', testPage({ init: '{}', setup, body })));
  await ready(page);
  await page.waitForTimeout(700);
  // Reading: clicks that select text or land on nothing.
  // (100 ms apart: two clicks within 50 ms are taken for one gesture.)
  for (let i = 0; i < 3; i++) {
    await page.click('#answer');
    await page.waitForTimeout(100);
  }
  await page.mouse.click(5, 150);
  await page.waitForTimeout(100);
  await page.click('#c1');
  await page.waitForTimeout(100);
  await page.click('#noop');
  const clicks = () => s.spans().filter((x) => x.attrs['edgetrace.interaction.type'] === 'click');
  await expect.poll(async () => (await flush(page), clicks().filter((x) => x.name === 'click button#noop' || x.name === 'click div#c1').length), { timeout: 10_000 }).toBe(2);
  // Past every interaction's idle end, nothing more comes.
  await page.waitForTimeout(1200);
  await flush(page);
  // The clicks on text and the blank spot are not sent: unless the renderer, on a loaded
  // machine, took 50 ms or more to get to them, which counts as a long task.
  const minor = clicks().filter((x) => x.name !== 'click button#noop' && x.name !== 'click div#c1');
  for (const x of minor) expect(x.endMs - x.startMs, x.name).toBeGreaterThanOrEqual(50);
  expect(clicks().length).toBe(2 + minor.length);
  const card = clicks().find((x) => x.name === 'click div#c1')!;
  expect(s.spans().find((x) => String(x.attrs['url.full']).endsWith('/api/card'))!.parentId).toBe(card.spanId);
  expect(await pageErrors(page)).toEqual([]);
});

test("selecting the answer's text while it streams leaves the generation's later requests with it", async ({ page }) => {
  const body = `<button id="ask">Ask</button><p id="answer">The answer so far.</p><p id="status"></p>`;
  const setup = `
    document.getElementById('ask').addEventListener('click', () => {
      window.et.currentSpan().generation('answer', { model: 'm' }, async () => {
        await (await fetch('/api/slow?ms=800')).text();
        await (await fetch('/api/after-answer')).text();
        document.getElementById('status').textContent = 'done';
      });
    });`;
  await page.goto(s.page('/select.html', testPage({ init: '{}', setup, body })));
  await ready(page);
  await page.waitForTimeout(700);
  await page.click('#ask');
  // Shortly before the first request is answered: the click is still the page's active
  // interaction (its idle time) when the generation makes its second request.
  await page.waitForTimeout(550);
  await page.click('#answer');
  await expect(page.locator('#status')).toHaveText('done');
  await expect.poll(async () => (await flush(page), s.spans().find((x) => String(x.attrs['url.full']).endsWith('/api/after-answer'))), { timeout: 10_000 }).toBeDefined();
  const spans = s.spans();
  const answer = spans.find((x) => x.name === 'answer')!;
  expect(spans.find((x) => String(x.attrs['url.full']).endsWith('/api/after-answer'))!.parentId).toBe(answer.spanId);
  expect(await pageErrors(page)).toEqual([]);
});

test('a long poll that starts just after a click is waited for, but does not keep the click adopting', async ({ page }) => {
  const body = `<button id="like" data-trace-name="like">Like</button><p id="status"></p>`;
  const setup = `
    document.getElementById('like').addEventListener('click', async () => {
      await (await fetch('/api/like', { method: 'POST' })).json();
      document.dispatchEvent(new Event('liked'));
    });
    // Other parts of the page: a long poll that happens to start 100 ms after the click's answer
    // was read, and a heartbeat 1 s after it, while that poll is open. (Timed from the answer, not
    // the click: on a loaded machine the answer can take longer than the 100 ms, and a poll that
    // starts right as the handler's work ends is a step of the handler's, as a timer of its own is.)
    document.addEventListener('liked', () => {
      setTimeout(async () => {
        for (let i = 0; i < 2; i++) await (await fetch('/api/slow?ms=1500')).json();
        document.getElementById('status').textContent = 'polled';
      }, 100);
      setTimeout(() => fetch('/api/heartbeat').then((r) => r.json()), 1000);
    }, { once: true });`;
  await page.goto(s.page('/poll.html', testPage({ init: '{}', setup, body })));
  await ready(page);
  await page.waitForTimeout(700);
  await page.click('#like');
  await expect(page.locator('#status')).toHaveText('polled', { timeout: 10_000 });
  await expect.poll(async () => (await flush(page), s.spans().find((x) => x.name === 'like')), { timeout: 10_000 }).toBeDefined();
  const spans = s.spans();
  const like = spans.find((x) => x.name === 'like')!;
  const byUrl = (part: string) => spans.filter((x) => String(x.attrs['url.full']).includes(part)).sort((a, b) => a.startMs - b.startMs);
  const [first, next] = byUrl('/api/slow');
  // The first poll is taken in (a timer of the handler's looks the same) and waited for.
  expect(first!.parentId).toBe(like.spanId);
  expect(like.endMs).toBeGreaterThanOrEqual(first!.endMs - 1);
  // But nothing of the click's own was open or moving: the heartbeats and the next poll are not its.
  expect(next!.traceId).not.toBe(like.traceId);
  expect(byUrl('/api/heartbeat').length).toBeGreaterThan(0);
  for (const x of byUrl('/api/heartbeat')) expect(x.traceId).not.toBe(like.traceId);
  expect(await pageErrors(page)).toEqual([]);
});

test('a control inside an open shadow root is named from its host, or from data-trace-name on the path', async ({ page }) => {
  const body = `<x-button id="save">Save</x-button><x-button id="delete" data-trace-name="delete doc">Delete</x-button>`;
  const setup = `
    // A design-system button (Shoelace, Material, Ionic): an open shadow root around a native button.
    customElements.define('x-button', class extends HTMLElement {
      constructor() { super(); this.attachShadow({ mode: 'open' }).innerHTML = '<button class="button" part="base"><slot></slot></button>'; }
    });
    document.getElementById('save').addEventListener('click', () => { fetch('/api/save').then((r) => r.text()); });
    document.getElementById('delete').addEventListener('click', () => { fetch('/api/delete').then((r) => r.text()); });`;
  await page.goto(s.page('/shadow.html', testPage({ init: '{}', setup, body })));
  await ready(page);
  await page.waitForTimeout(700);
  await page.click('#save');
  await page.waitForTimeout(100);
  await page.click('#delete');
  const clicks = () => s.spans().filter((x) => x.attrs['edgetrace.interaction.type'] === 'click');
  await expect.poll(async () => (await flush(page), clicks().length), { timeout: 10_000 }).toBe(2);
  expect(clicks().map((x) => x.name)).toEqual(['click x-button#save', 'delete doc']);
  expect(clicks().map((x) => x.attrs['edgetrace.interaction.target'])).toEqual(['x-button#save', 'x-button#delete']);
  const parentOf = (path: string) => s.spans().find((x) => x.spanId === s.spans().find((y) => String(y.attrs['url.full']).endsWith(path))?.parentId)?.name;
  expect(parentOf('/api/save')).toBe('click x-button#save');
  expect(parentOf('/api/delete')).toBe('delete doc');
  expect(await pageErrors(page)).toEqual([]);
});

test("a submit button's click joins its submit however long the click's handler runs", async ({ page }) => {
  const body = `<form id="order"><input name="qty" value="1"><button id="place">Place order</button></form>`;
  const setup = `
    // A heavy synchronous re-render in the click handler: the submit comes 80 ms after the click.
    document.getElementById('place').addEventListener('click', () => { const t = performance.now(); while (performance.now() - t < 80); });
    document.getElementById('order').addEventListener('submit', (e) => { e.preventDefault(); fetch('/api/order', { method: 'POST' }).then((r) => r.text()); });`;
  await page.goto(s.page('/slow-submit.html', testPage({ init: '{}', setup, body })));
  await ready(page);
  await page.waitForTimeout(700);
  await page.click('#place');
  await expect.poll(async () => (await flush(page), s.spans().some((x) => String(x.attrs['url.full']).endsWith('/api/order'))), { timeout: 10_000 }).toBe(true);
  await page.waitForTimeout(700);
  await flush(page);
  const interactions = s.spans().filter((x) => x.attrs['edgetrace.interaction.type']);
  expect(interactions.map((x) => x.name)).toEqual(['submit form#order']);
  expect(s.spans().find((x) => String(x.attrs['url.full']).endsWith('/api/order'))!.parentId).toBe(interactions[0]!.spanId);
  expect(await pageErrors(page)).toEqual([]);
});

test("two quick clicks on two buttons are two interactions; a label's click passed on to its checkbox is one", async ({ page }) => {
  const body = `<button id="up">Thumbs up</button><button id="retry">Retry</button><label id="agree-label">Agree <input type="checkbox" id="agree"></label>`;
  const setup = `
    document.getElementById('up').addEventListener('click', () => { fetch('/api/feedback').then((r) => r.text()); });
    document.getElementById('retry').addEventListener('click', () => { fetch('/api/retry').then((r) => r.text()); });
    document.getElementById('agree').addEventListener('click', () => { fetch('/api/agree').then((r) => r.text()); });`;
  await page.goto(s.page('/quick-clicks.html', testPage({ init: '{}', setup, body })));
  await ready(page);
  await page.waitForTimeout(700);
  // 10 ms apart, each in a task of its own, as a fast user or a test runner clicks.
  await page.evaluate(() => {
    document.getElementById('up')!.click();
    setTimeout(() => document.getElementById('retry')!.click(), 10);
  });
  await page.waitForTimeout(300);
  await page.click('#agree-label');
  await expect.poll(async () => (await flush(page), s.spans().filter((x) => /\/api\/(feedback|retry|agree)$/.test(String(x.attrs['url.full']))).length), { timeout: 10_000 }).toBe(3);
  await page.waitForTimeout(700);
  await flush(page);
  const spans = s.spans();
  const interactions = spans.filter((x) => x.attrs['edgetrace.interaction.type']);
  expect(interactions.map((x) => x.name).sort()).toEqual(['click button#retry', 'click button#up', 'click label#agree-label']);
  const parentOf = (path: string) => interactions.find((i) => i.spanId === spans.find((x) => String(x.attrs['url.full']).endsWith(path))!.parentId)?.name;
  expect([parentOf('/api/feedback'), parentOf('/api/retry'), parentOf('/api/agree')]).toEqual(['click button#up', 'click button#retry', 'click label#agree-label']);
  expect(await pageErrors(page)).toEqual([]);
});

test('clicking into a text field and Enter in a text area are sent only when they start something', async ({ page }) => {
  const body = `<textarea id="notes"></textarea><div id="editor" contenteditable="true"><p>Doc</p></div><input id="title"><textarea id="chat"></textarea><button id="done">Done</button>`;
  const setup = `
    document.getElementById('chat').addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); fetch('/api/chat').then((r) => r.text()); } });`;
  await page.goto(s.page('/typing.html', testPage({ init: '{}', setup, body })));
  await ready(page);
  await page.waitForTimeout(700);
  // (100 ms apart: two events within 50 ms are taken for one gesture.)
  const pause = () => page.waitForTimeout(100);
  await page.click('#notes');
  await pause();
  await page.keyboard.type('one');
  await page.keyboard.press('Enter');
  await pause();
  await page.keyboard.press('Enter');
  await pause();
  await page.click('#editor');
  await pause();
  await page.keyboard.press('Enter');
  await pause();
  await page.click('#title');
  await pause();
  await page.focus('#chat');
  await page.keyboard.press('Enter');
  await pause();
  await page.click('#done');
  const interactions = () => s.spans().filter((x) => x.attrs['edgetrace.interaction.type']);
  await expect.poll(async () => (await flush(page), interactions().map((x) => x.name)), { timeout: 10_000 }).toEqual(expect.arrayContaining(['keydown textarea#chat', 'click button#done']));
  await page.waitForTimeout(700);
  await flush(page);
  // The rest are not sent: unless the renderer, on a loaded machine, took 50 ms or more to get
  // to them, which counts as a long task.
  const rest = interactions().filter((x) => x.name !== 'keydown textarea#chat' && x.name !== 'click button#done');
  for (const x of rest) expect(x.endMs - x.startMs, x.name).toBeGreaterThanOrEqual(50);
  const chat = interactions().find((x) => x.name === 'keydown textarea#chat')!;
  expect(s.spans().find((x) => String(x.attrs['url.full']).endsWith('/api/chat'))!.parentId).toBe(chat.spanId);
  expect(await pageErrors(page)).toEqual([]);
});

test('Enter and Space count on the roles they activate, and a link only with an href', async ({ page }) => {
  const body = `
    <div role="link" id="rl" tabindex="0">Role link</div>
    <div role="dialog" id="dlg" tabindex="-1">Dialog</div>
    <a role="button" tabindex="0" id="menu">Menu item</a>
    <div role="checkbox" id="check" tabindex="0">Check</div>
    <button id="done">Done</button>`;
  const setup = `
    const act = (id, path) => document.getElementById(id).addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); fetch(path).then((r) => r.text()); }
    });
    act('menu', '/api/menu');
    act('check', '/api/check');`;
  await page.goto(s.page('/roles.html', testPage({ init: '{}', setup, body })));
  await ready(page);
  await page.waitForTimeout(700);
  // (100 ms apart: two events within 50 ms are taken for one gesture.)
  const press = async (selector: string, key: string) => {
    await page.focus(selector);
    await page.keyboard.press(key);
    await page.waitForTimeout(100);
  };
  await press('#rl', 'Space');
  await press('#rl', 'Enter');
  await press('#dlg', 'Space');
  await press('#dlg', 'Enter');
  await press('#menu', 'Enter');
  await press('#check', 'Space');
  await page.click('#done');
  const interactions = () => s.spans().filter((x) => x.attrs['edgetrace.interaction.type']);
  await expect.poll(async () => (await flush(page), interactions().some((x) => x.name === 'click button#done')), { timeout: 10_000 }).toBe(true);
  await page.waitForTimeout(700);
  await flush(page);
  expect(interactions().map((x) => `${x.name} ${x.attrs['edgetrace.interaction.key'] ?? ''}`.trim())).toEqual([
    'keydown div#rl Enter',
    'keydown a#menu Enter',
    'keydown div#check Space',
    'click button#done',
  ]);
  const parentOf = (path: string) => s.spans().find((x) => x.spanId === s.spans().find((y) => String(y.attrs['url.full']).endsWith(path))?.parentId)?.name;
  expect(parentOf('/api/menu')).toBe('keydown a#menu');
  expect(parentOf('/api/check')).toBe('keydown div#check');
  expect(await pageErrors(page)).toEqual([]);
});
