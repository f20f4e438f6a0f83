import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { currentInteraction, interactionContext, INTERACTION_TIMED_OUT, requestParent, setPageContext } from '../../../src/instrument/interactionContext';
import { createTracer } from '../../../src/core/tracer';
import { setTracer } from '../../../src/core/global';
import { traced } from '../../../src/core/traced';
import type { SpanRecord } from '../../../src/protocol';

const setup = (opts: { idleMs?: number; timeoutMs?: number } = {}) => {
  const spans: SpanRecord[] = [];
  const ctx = interactionContext({ idleMs: 100, timeoutMs: 1000, now: () => Date.now(), ...opts });
  const tracer = createTracer({ contextManager: ctx, now: () => Date.now(), processors: [ctx.processor, { onEnd: (r) => spans.push(r) }] });
  return { ctx, tracer, spans, byName: (n: string) => spans.find((s) => s.name === n) };
};

/** The page load as navigation begins it: a loose interaction. */
const loadingPage = (ctx: ReturnType<typeof setup>['ctx'], tracer: ReturnType<typeof setup>['tracer']) => {
  const load = tracer.createTrace('page load');
  ctx.begin(load, { loose: true });
  return load;
};

describe('interactionContext', () => {
  beforeEach(() => {
    vi.useFakeTimers();
    vi.setSystemTime(1_700_000_000_000);
  });
  afterEach(() => vi.useRealTimers());

  it('makes the interaction the parent of spans started after awaits, and the stack win inside it', async () => {
    const { ctx, tracer, byName } = setup();
    const click = tracer.createTrace('click');
    ctx.begin(click);
    await Promise.resolve();
    const afterAwait = tracer.startSpan('after-await');
    tracer.span('outer', () => {
      tracer.startSpan('inner').end();
    });
    afterAwait.end();
    await vi.advanceTimersByTimeAsync(500);
    expect(byName('after-await')!.parentId).toBe(click.spanId);
    expect(byName('outer')!.parentId).toBe(click.spanId);
    expect(byName('inner')!.parentId).toBe(byName('outer')!.spanId);
    expect(byName('click')).toBeDefined();
  });

  it('stays open while work is open and ends at the end of the last work, after the idle gap', async () => {
    const { ctx, tracer, byName } = setup();
    const start = Date.now();
    const click = tracer.createTrace('click');
    ctx.begin(click);
    const fetch1 = tracer.startSpan('fetch-1');
    await vi.advanceTimersByTimeAsync(400);
    expect(ctx.current()).toBe(click);
    fetch1.end();
    const ended1 = Date.now();
    // The handler continues 50 ms later (a short timer): still the same interaction.
    await vi.advanceTimersByTimeAsync(50);
    expect(ctx.current()).toBe(click);
    const fetch2 = tracer.startSpan('fetch-2');
    await vi.advanceTimersByTimeAsync(30);
    fetch2.end();
    const ended2 = Date.now();
    expect(ended2 - ended1).toBe(80);
    await vi.advanceTimersByTimeAsync(99);
    expect(byName('click')).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2);
    expect(ctx.current()).toBeUndefined();
    const rec = byName('click')!;
    expect(rec.startMs).toBe(start);
    expect(rec.endMs).toBe(ended2);
    expect(byName('fetch-2')!.parentId).toBe(click.spanId);
  });

  it('adopts nothing after an idle gap: later work starts its own trace', async () => {
    const { ctx, tracer, byName } = setup();
    const click = tracer.createTrace('click');
    ctx.begin(click);
    await vi.advanceTimersByTimeAsync(150);
    tracer.startSpan('late').end();
    expect(byName('late')!.parentId).toBeUndefined();
    expect(byName('late')!.traceId).not.toBe(click.traceId);
  });

  it('stops adopting once its own work is quiet: a long poll taken in by time cannot keep it adopting', async () => {
    const { ctx, tracer, byName, spans } = setup({ idleMs: 100, timeoutMs: 30_000 });
    const click = tracer.createTrace('click');
    ctx.begin(click);
    const post = tracer.startSpan('POST /like');
    await vi.advanceTimersByTimeAsync(25);
    post.end();
    // A long poll's next request, 75 ms after the click's answer: taken in, as a timer of the
    // handler's would be.
    await vi.advanceTimersByTimeAsync(75);
    const poll = tracer.startSpan('GET /poll 1');
    await vi.advanceTimersByTimeAsync(300);
    // Nothing of the click's own is open and nothing started or ended since: a heartbeat is not its.
    tracer.startSpan('GET /heartbeat').end();
    await vi.advanceTimersByTimeAsync(1200);
    poll.end();
    const pollEnd = Date.now();
    // The poll's next request, as the last one ends, is not the click's either.
    tracer.startSpan('GET /poll 2').end();
    await vi.advanceTimersByTimeAsync(500);
    expect(byName('GET /poll 1')!.parentId).toBe(click.spanId);
    expect(byName('GET /heartbeat')!.parentId).toBeUndefined();
    expect(byName('GET /poll 2')!.parentId).toBeUndefined();
    // The work it took in is still waited for.
    expect(byName('click')!.endMs).toBe(pollEnd);
    expect(spans.filter((s) => s.traceId === click.traceId).map((s) => s.name).sort()).toEqual(['GET /poll 1', 'POST /like', 'click']);
  });

  it('keeps adopting the steps of a handler whose requests are slow, also after a wait or a timer', async () => {
    const { ctx, tracer, byName } = setup({ idleMs: 100, timeoutMs: 30_000 });
    const step = async (name: string, ms: number) => {
      const s = tracer.startSpan(name);
      await vi.advanceTimersByTimeAsync(ms);
      s.end();
    };
    // click → slow fetch → await body → slow fetch → await → fetch.
    const click = tracer.createTrace('click');
    ctx.begin(click);
    await step('first', 400);
    await step('second', 400);
    await step('third', 10);
    // click → a wait that makes no span (IndexedDB) → slow fetch → fetch.
    await vi.advanceTimersByTimeAsync(500);
    const other = tracer.createTrace('other');
    ctx.begin(other);
    await vi.advanceTimersByTimeAsync(20);
    await step('after wait', 400);
    await step('after wait, next', 10);
    // click → setTimeout(…, 60) → fetch.
    await vi.advanceTimersByTimeAsync(500);
    const timer = tracer.createTrace('timer');
    ctx.begin(timer);
    await vi.advanceTimersByTimeAsync(60);
    await step('from timer', 10);
    await vi.advanceTimersByTimeAsync(500);
    for (const name of ['first', 'second', 'third']) expect(byName(name)!.parentId, name).toBe(click.spanId);
    for (const name of ['after wait', 'after wait, next']) expect(byName(name)!.parentId, name).toBe(other.spanId);
    expect(byName('from timer')!.parentId).toBe(timer.spanId);
  });

  it('stops adopting at the timeout but waits for work it already started', async () => {
    const { ctx, tracer, byName } = setup({ timeoutMs: 1000 });
    const click = tracer.createTrace('click');
    ctx.begin(click);
    const stream = tracer.startSpan('stream');
    await vi.advanceTimersByTimeAsync(1100);
    expect(ctx.current()).toBeUndefined();
    expect(tracer.startSpan('unrelated').parentId).toBeUndefined();
    expect(byName('click')).toBeUndefined();
    await vi.advanceTimersByTimeAsync(2000);
    stream.end();
    const end = Date.now();
    await vi.advanceTimersByTimeAsync(200);
    expect(byName('click')!.endMs).toBe(end);
    expect(byName('click')!.attrs[INTERACTION_TIMED_OUT]).toBe(true);
    expect(byName('stream')!.attrs['edgetrace.unfinished']).toBeUndefined();
  });

  it('a newer interaction takes over at once; the older still ends with its own work', async () => {
    const { ctx, tracer, byName } = setup();
    const a = tracer.createTrace('a');
    ctx.begin(a);
    const aWork = tracer.startSpan('a-work');
    const b = tracer.createTrace('b');
    ctx.begin(b);
    expect(ctx.current()).toBe(b);
    expect(tracer.startSpan('b-work').parentId).toBe(b.spanId);
    aWork.end();
    await vi.advanceTimersByTimeAsync(300);
    expect(byName('a-work')!.parentId).toBe(a.spanId);
    expect(byName('a')).toBeDefined();
  });

  it('hold() keeps an interaction open for work that is not a span, ending at the given time', async () => {
    const { ctx, tracer, byName } = setup();
    const load = tracer.createTrace('page load');
    ctx.begin(load);
    const release = ctx.hold(load);
    await vi.advanceTimersByTimeAsync(700);
    expect(byName('page load')).toBeUndefined();
    const endAt = Date.now() - 20;
    release(endAt);
    await vi.advanceTimersByTimeAsync(150);
    expect(byName('page load')!.endMs).toBe(endAt);
  });

  it('endAll() ends every pending interaction at once (pagehide)', () => {
    const { ctx, tracer, byName } = setup();
    const a = tracer.createTrace('a');
    ctx.begin(a);
    ctx.endAll();
    expect(byName('a')).toBeDefined();
    expect(ctx.current()).toBeUndefined();
  });

  it('endAll() ends an interaction whose work has finished at that work, not at pagehide', async () => {
    const { ctx, tracer, byName } = setup({ idleMs: 1000 });
    const click = tracer.createTrace('click');
    ctx.begin(click);
    await Promise.resolve();
    const work = tracer.startSpan('GET');
    await vi.advanceTimersByTimeAsync(10);
    work.end();
    const workEnd = Date.now();
    // The page goes away within the idle gap, long after the work ended.
    await vi.advanceTimersByTimeAsync(400);
    ctx.endAll();
    expect(byName('click')!.endMs).toBe(workEnd);
    // Work still open at pagehide: the interaction ends then.
    const other = tracer.createTrace('other');
    ctx.begin(other);
    await Promise.resolve();
    tracer.startSpan('slow');
    await vi.advanceTimersByTimeAsync(50);
    ctx.endAll();
    expect(byName('other')!.endMs).toBe(Date.now());
  });

  it('a loose interaction (the page load) is not held past its deadline by open work, which goes on as its child', async () => {
    const { ctx, tracer, byName } = setup({ timeoutMs: 1000 });
    const load = loadingPage(ctx, tracer);
    const release = ctx.hold(load);
    const stream = tracer.startSpan('GET /events');
    const data = tracer.startSpan('GET /api/data');
    await vi.advanceTimersByTimeAsync(200);
    release();
    await vi.advanceTimersByTimeAsync(200);
    data.end();
    const dataEnd = Date.now();
    // Held while within the deadline, as a click is by its answer.
    await vi.advanceTimersByTimeAsync(500);
    expect(byName('page load')).toBeUndefined();
    await vi.advanceTimersByTimeAsync(200);
    expect(byName('page load')!.endMs).toBe(dataEnd);
    // Let go, not timed out: nothing of its own was still pending.
    expect(byName('page load')!.attrs[INTERACTION_TIMED_OUT]).toBeUndefined();
    expect(stream.isEnded).toBe(false);
    expect(ctx.current()).toBeUndefined();
    await vi.advanceTimersByTimeAsync(5000);
    stream.end();
    expect(byName('GET /events')!.parentId).toBe(load.spanId);
    expect(byName('GET /events')!.attrs['edgetrace.unfinished']).toBeUndefined();
  });

  it('a loose interaction stops adopting once its load is over and nothing happened for the idle time', async () => {
    const { ctx, tracer, byName } = setup({ idleMs: 100, timeoutMs: 5000 });
    const load = loadingPage(ctx, tracer);
    const release = ctx.hold(load);
    tracer.startSpan('GET /events');
    await vi.advanceTimersByTimeAsync(300);
    release();
    expect(ctx.current()).toBe(load);
    await vi.advanceTimersByTimeAsync(200);
    // A heartbeat a while later is not the load's.
    expect(ctx.current()).toBeUndefined();
    tracer.startSpan('GET /heartbeat').end();
    await vi.advanceTimersByTimeAsync(5000);
    expect(byName('page load')!.endMs).toBe(byName('page load')!.startMs + 300);
    expect(byName('GET /heartbeat')!.parentId).toBeUndefined();
  });

  it('at pagehide a loose interaction ends at its last finished work, and its work still open with the page', async () => {
    const { ctx, tracer, byName } = setup({ timeoutMs: 30_000 });
    const load = loadingPage(ctx, tracer);
    const release = ctx.hold(load);
    tracer.startSpan('GET /events');
    await vi.advanceTimersByTimeAsync(300);
    release();
    const loaded = Date.now();
    await vi.advanceTimersByTimeAsync(8000);
    ctx.endAll();
    expect(byName('page load')!.endMs).toBe(loaded);
    expect(byName('GET /events')!.endMs).toBe(Date.now());
    expect(byName('GET /events')!.attrs['edgetrace.unfinished']).toBe(true);
    // (A click's open work at pagehide still stretches the click to then: see the endAll() test.)
  });

  it('a page load whose load event has not come holds on at pagehide, and ends then', async () => {
    const { ctx, tracer, byName } = setup({ timeoutMs: 1000 });
    const load = loadingPage(ctx, tracer);
    ctx.hold(load);
    tracer.startSpan('GET /big.js');
    await vi.advanceTimersByTimeAsync(3000);
    expect(byName('page load')).toBeUndefined();
    ctx.endAll();
    expect(byName('page load')!.endMs).toBe(Date.now());
    expect(byName('page load')!.attrs[INTERACTION_TIMED_OUT]).toBe(true);
  });

  it('does not record a minor interaction that turns out to be nothing, and records one that is something', async () => {
    const { ctx, tracer, spans, byName } = setup();
    const begin = (name: string) => {
      const span = tracer.createTrace({ name, attributes: { 'edgetrace.interaction.type': 'click' } });
      ctx.begin(span, { minor: true });
      return span;
    };
    const idle = begin('click p');
    await vi.advanceTimersByTimeAsync(500);
    expect(idle.isEnded).toBe(true);
    expect(idle.isRecording).toBe(false);
    expect(spans).toEqual([]);
    // Each of these is something, on its own, quick: a card's handler that fetches, one that
    // records an error, one the app sets an attribute on, renames, tags, or scores.
    const cases: [string, (s: ReturnType<typeof begin>) => void][] = [
      ['click div.card', () => tracer.startSpan('GET /api/card').end()],
      ['click span', (s) => s.recordError(new Error('boom'))],
      ['click li', (s) => s.setAttribute('app.item', 3)],
      ['click em', (s) => s.update({ name: 'pick item' })],
      ['click b', (s) => s.addTag('picked')],
      ['click i', (s) => s.score('liked', 1)],
    ];
    for (const [name, act] of cases) {
      act(begin(name));
      await vi.advanceTimersByTimeAsync(500);
    }
    for (const name of ['click div.card', 'click span', 'click li', 'pick item', 'click b', 'click i']) expect(byName(name), name).toBeDefined();
    // And one whose handler blocks the page for 80 ms before any timer can run.
    const slow = begin('click td');
    vi.setSystemTime(Date.now() + 80);
    await vi.advanceTimersByTimeAsync(500);
    expect(byName(slow.name)).toBeDefined();
    // At pagehide a minor click is kept: it may be what took the page away.
    const leaving = begin('click div.row');
    ctx.endAll();
    expect(byName('click div.row')).toBeDefined();
    expect(leaving.isRecording).toBe(true);
    // A control's click is recorded even when it starts nothing (begin without minor).
    const button = tracer.createTrace('click button#noop');
    ctx.begin(button);
    await vi.advanceTimersByTimeAsync(500);
    expect(byName('click button#noop')).toBeDefined();
  });

  it('close() stops adopting and ignores later begin()', async () => {
    const { ctx, tracer } = setup();
    ctx.close();
    ctx.begin(tracer.createTrace('x'));
    expect(ctx.current()).toBeUndefined();
  });

  it('keeps at most 32 interactions pending', async () => {
    const { ctx, tracer, spans } = setup();
    for (let i = 0; i < 40; i++) {
      const t = tracer.createTrace(`i${i}`);
      ctx.begin(t);
      tracer.startSpan(`w${i}`);
    }
    expect(spans.filter((s) => /^i\d+$/.test(s.name))).toHaveLength(8);
  });

  describe('callbacks still awaited, as the parent of requests', () => {
    const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));
    /** What fetch and XHR do for a request: a span under requestParent(). */
    const request = (tracer: ReturnType<typeof setup>['tracer'], name: string) => tracer.startSpan(name, { parent: requestParent(tracer) ?? null }).end();
    let page: ReturnType<typeof setup>;
    beforeEach(() => {
      page = setup();
      setPageContext(page.ctx);
    });
    afterEach(() => setPageContext(undefined));

    it('keep a generation the parent of a request it makes after an await; spans the app starts stay with the interaction', async () => {
      const { ctx, tracer, byName } = page;
      const click = tracer.createTrace('click');
      ctx.begin(click);
      const answer = click.generation('answer', { model: 'gpt-4o' }, async () => {
        await tick();
        request(tracer, 'POST');
        tracer.startSpan('own-span').end();
        await tick();
        request(tracer, 'after-second-await');
      });
      await vi.advanceTimersByTimeAsync(20);
      await answer;
      // Settled: requests after it belong to the interaction again.
      request(tracer, 'later');
      await vi.advanceTimersByTimeAsync(500);
      const gen = byName('answer')!;
      expect(gen.parentId).toBe(click.spanId);
      expect(byName('POST')!.parentId).toBe(gen.spanId);
      expect(byName('after-second-await')!.parentId).toBe(gen.spanId);
      expect(byName('own-span')!.parentId).toBe(click.spanId);
      expect(byName('later')!.parentId).toBe(click.spanId);
    });

    it('give the innermost pending span: nested callbacks the deepest, side-by-side ones their shared parent', async () => {
      const { tracer, byName } = page;
      const run = tracer.withTrace('chat', async () => {
        await Promise.all(
          ['a', 'b'].map((n) =>
            tracer.span(n, async () => {
              await tick(n === 'a' ? 5 : 15);
              request(tracer, `${n}-work`);
            }),
          ),
        );
        request(tracer, 'chat-work');
      });
      await vi.advanceTimersByTimeAsync(10);
      // Only b is pending once a settled: b's request is b's.
      await vi.advanceTimersByTimeAsync(10);
      await run;
      const chat = byName('chat')!;
      // While a and b were both pending, a's request could only be placed under chat.
      expect(byName('a-work')!.parentId).toBe(chat.spanId);
      expect(byName('b-work')!.parentId).toBe(byName('b')!.spanId);
      expect(byName('chat-work')!.parentId).toBe(chat.spanId);
    });

    it('follow ancestry through a span between two pending callbacks', async () => {
      const { tracer, byName } = page;
      const chat = tracer.withTrace('chat', async (t) => {
        const step = t.startSpan('step');
        await tracer.withSpan(step, () =>
          tracer.span('gen', async () => {
            await tick();
            request(tracer, 'POST');
          }),
        );
        step.end();
      });
      await vi.advanceTimersByTimeAsync(10);
      await chat;
      expect(byName('POST')!.parentId).toBe(byName('gen')!.spanId);
    });

    it('give way to the interaction when they share no span', async () => {
      const { ctx, tracer, byName } = page;
      const one = tracer.withTrace('one', () => tick(50));
      const two = tracer.withTrace('two', () => tick(50));
      await vi.advanceTimersByTimeAsync(1);
      request(tracer, 'unplaced');
      const click = tracer.createTrace('click');
      ctx.begin(click);
      request(tracer, 'clicked');
      await vi.advanceTimersByTimeAsync(60);
      await Promise.all([one, two]);
      expect(byName('unplaced')!.parentId).toBeUndefined();
      expect(byName('clicked')!.parentId).toBe(click.spanId);
    });

    it('give way to an interaction that began after them', async () => {
      const { ctx, tracer, byName } = page;
      const chat = tracer.withTrace('chat', () => tick(50));
      await vi.advanceTimersByTimeAsync(5);
      request(tracer, 'before-click');
      const click = tracer.createTrace('second-click');
      ctx.begin(click);
      request(tracer, 'after-click');
      await vi.advanceTimersByTimeAsync(60);
      await chat;
      expect(byName('before-click')!.parentId).toBe(byName('chat')!.spanId);
      expect(byName('after-click')!.parentId).toBe(click.spanId);
    });

    it('keep their work from a click on no control, past that click\'s own handler', async () => {
      const { ctx, tracer, byName } = page;
      const chat = tracer.withTrace('chat', () => tick(50));
      await vi.advanceTimersByTimeAsync(5);
      // The user selects some of the answer while it streams.
      const select = tracer.createTrace('click p#answer');
      ctx.begin(select, { minor: true });
      request(tracer, 'in-handler');
      await vi.advanceTimersByTimeAsync(10);
      request(tracer, 'after-handler');
      await vi.advanceTimersByTimeAsync(60);
      await chat;
      expect(byName('in-handler')!.parentId).toBe(select.spanId);
      expect(byName('after-handler')!.parentId).toBe(byName('chat')!.spanId);
    });

    it('give way to a minor key press after its own handler, as it may be a send', async () => {
      const { ctx, tracer, byName } = page;
      const chat = tracer.withTrace('chat', () => tick(50));
      await vi.advanceTimersByTimeAsync(5);
      // Enter in the chat's text area while the answer streams: a new line, or the next question.
      const enter = tracer.createTrace('keydown textarea#prompt');
      ctx.begin(enter, { minor: 'key' });
      await vi.advanceTimersByTimeAsync(10);
      request(tracer, 'after-handler');
      await vi.advanceTimersByTimeAsync(60);
      await chat;
      expect(byName('after-handler')!.parentId).toBe(enter.spanId);
      await vi.advanceTimersByTimeAsync(200);
      expect(byName('keydown textarea#prompt')).toBeDefined();
    });

    it('leave the caller\'s own code right after the call out, so calls side by side stay siblings', async () => {
      const { ctx, tracer, byName, spans } = page;
      setTracer(tracer);
      try {
        const click = tracer.createTrace('click');
        ctx.begin(click);
        const ask = traced('generation', async function ask(q: string) {
          await tick();
          request(tracer, `POST ${q}`);
          return q;
        });
        const x = tracer.span('x', () => tick(10));
        request(tracer, 'beside-x');
        const asked = Promise.all([ask('a'), ask('b')]);
        await vi.advanceTimersByTimeAsync(20);
        await Promise.all([x, asked]);
        await vi.advanceTimersByTimeAsync(500);
        expect(byName('beside-x')!.parentId).toBe(click.spanId);
        const asks = spans.filter((s) => s.name === 'ask');
        expect(asks.map((s) => s.attrs['langfuse.observation.input']).sort()).toEqual(['a', 'b']);
        expect(asks.every((s) => s.parentId === click.spanId)).toBe(true);
      } finally {
        setTracer(undefined);
      }
    });

    it('keep the outer callback when more than 32 are pending', async () => {
      const { tracer, byName } = page;
      const chat = tracer.withTrace('chat', async () => {
        await Promise.all(Array.from({ length: 40 }, (_, i) => tracer.span(`part-${i}`, () => tick(5))));
        request(tracer, 'final');
        await tick(5);
        request(tracer, 'after-await');
      });
      await vi.advanceTimersByTimeAsync(20);
      await chat;
      expect(byName('final')!.parentId).toBe(byName('chat')!.spanId);
      expect(byName('after-await')!.parentId).toBe(byName('chat')!.spanId);
    });

    it('do not outlive their span, and stop counting after close()', async () => {
      const { ctx, tracer, byName } = page;
      let inside: ReturnType<typeof tracer.startSpan> | undefined;
      const job = tracer.withTrace('job', async (t) => {
        inside = t;
        await tick(20);
      });
      await vi.advanceTimersByTimeAsync(1);
      request(tracer, 'while-pending');
      inside!.end();
      request(tracer, 'after-end');
      ctx.close();
      const again = tracer.withTrace('again', () => tick(5));
      await vi.advanceTimersByTimeAsync(1);
      request(tracer, 'after-close');
      await vi.advanceTimersByTimeAsync(30);
      await Promise.all([job, again]);
      expect(byName('while-pending')!.parentId).toBe(byName('job')!.spanId);
      expect(byName('after-end')!.parentId).toBeUndefined();
      expect(byName('after-close')!.parentId).toBeUndefined();
    });
  });

  it('currentInteraction() returns the page\'s active interaction trace while its work runs, then nothing', async () => {
    const { ctx, tracer } = setup();
    expect(currentInteraction()).toBeUndefined();
    setPageContext(ctx);
    try {
      expect(currentInteraction()).toBeUndefined();
      const click = tracer.createTrace('click');
      ctx.begin(click);
      const work = tracer.startSpan('work');
      await Promise.resolve();
      expect(currentInteraction()).toBe(click);
      work.end();
      await vi.advanceTimersByTimeAsync(200);
      expect(currentInteraction()).toBeUndefined();
      // A plain span made the interaction (not a trace): nothing to return.
      ctx.begin(click.startSpan('not-a-trace'));
      expect(currentInteraction()).toBeUndefined();
    } finally {
      setPageContext(undefined);
    }
  });
});
