import { AsyncLocalStorage } from 'node:async_hooks';
import ts from 'typescript';
import { afterEach, describe, expect, it } from 'vitest';
import { traced } from '../../../src/core/traced';
import { init, setTracer } from '../../../src/core/global';
import { alsContext, stackContext } from '../../../src/core/context';
import type { SpanRecord } from '../../../src/protocol';
import * as A from '../../../src/core/semconv';

const setup = (contextManager = stackContext()) => {
  const spans: SpanRecord[] = [];
  const tracer = init({ processors: [{ onEnd: (r) => spans.push(r) }], contextManager });
  return { spans, tracer };
};

/** A lazy query builder: it runs when then() is called, as Knex, Drizzle and Prisma queries do. */
class Query {
  filters: string[] = [];
  runs = 0;
  where(f: string): this {
    this.filters.push(f);
    return this;
  }
  then<R>(ok: (rows: string[]) => R): Promise<R> {
    this.runs++;
    return Promise.resolve(this.filters).then(ok);
  }
}

describe('traced', () => {
  afterEach(() => setTracer(undefined));

  it('wraps a function in a span of the given type with input and output', () => {
    const { spans } = setup();
    const search = traced('retriever', function search(query: string, k: number) {
      return [`${query}-1`, `${query}-2`].slice(0, k);
    });
    expect(search('cats', 1)).toEqual(['cats-1']);
    expect(spans).toHaveLength(1);
    expect(spans[0]).toMatchObject({ name: 'search' });
    expect(spans[0]?.attrs).toMatchObject({
      [A.OBSERVATION_TYPE]: 'retriever',
      [A.OBSERVATION_INPUT]: '["cats",1]',
      [A.OBSERVATION_OUTPUT]: '["cats-1"]',
    });
  });

  it('nests under the current span and keeps the function name and this', () => {
    const { spans, tracer } = setup();
    const obj = {
      factor: 3,
      times: traced({ type: 'tool', name: 'multiply' }, function (this: { factor: number }, n: number) {
        return n * this.factor;
      }),
    };
    tracer.withTrace('job', () => obj.times(2));
    const tool = spans.find((s) => s.name === 'multiply');
    const job = spans.find((s) => s.name === 'job');
    expect(tool?.parentId).toBe(job?.spanId);
    expect(tool?.attrs[A.OBSERVATION_OUTPUT]).toBe('6');
  });

  it('does not nest a duplicate span when the function re-enters itself', () => {
    const { spans } = setup();
    const fact: (n: number) => number = traced('chain', function fact(n: number): number {
      return n <= 1 ? 1 : n * fact(n - 1);
    });
    expect(fact(5)).toBe(120);
    expect(spans).toHaveLength(1);
  });

  it('wraps a plain function given to the decorator form, as the two-argument form does', () => {
    const { spans } = setup();
    const double = traced('tool')(function double(n: number) {
      return n * 2;
    });
    expect(double(21)).toBe(42);
    expect(spans.map((s) => [s.name, s.attrs[A.OBSERVATION_TYPE]])).toEqual([['double', 'tool']]);
  });

  it('still nests different traced functions', () => {
    const { spans } = setup();
    const tool = traced('tool', function tool() {
      return 1;
    });
    const agent = traced('agent', function agent() {
      return tool() + tool();
    });
    agent();
    expect(spans.map((s) => s.name)).toEqual(['tool', 'tool', 'agent']);
    expect(spans[0]?.parentId).toBe(spans[2]?.spanId);
  });

  it('records a rejection and passes it on', async () => {
    const { spans } = setup();
    const fail = traced('tool', async function fail() {
      throw new TypeError('bad tool');
    });
    await expect(fail()).rejects.toThrow(TypeError);
    expect(spans[0]?.status).toEqual({ code: 'error', message: 'bad tool' });
  });

  it('can leave input and output out', async () => {
    const { spans } = setup();
    const f = traced({ captureInput: false, captureOutput: false }, async function secret(x: string) {
      return x;
    });
    await f('pw');
    expect(spans[0]?.attrs[A.OBSERVATION_INPUT]).toBeUndefined();
    expect(spans[0]?.attrs[A.OBSERVATION_OUTPUT]).toBeUndefined();
  });

  it('returns a lazy thenable untouched instead of running it', async () => {
    const { spans, tracer } = setup();
    const users = traced('retriever', function users() {
      return new Query();
    });
    const q = users();
    expect(q).toBeInstanceOf(Query);
    expect(q.runs).toBe(0);
    expect(spans[0]?.name).toBe('users');
    const direct = tracer.withTrace('t', () => new Query());
    expect(direct.runs).toBe(0);
    await expect(q.where('active')).resolves.toEqual(['active']);
    expect(q.runs).toBe(1);
  });

  it('waits for an async callback also where the page replaced the global Promise (zone.js)', async () => {
    const { spans, tracer } = setup();
    const Native = globalThis.Promise;
    let result: Promise<unknown>;
    (globalThis as { Promise: unknown }).Promise = function ZoneAwarePromise() {};
    try {
      result = tracer.withTrace('zoned', async () => {
        await null;
        throw new Error('late');
      });
    } finally {
      globalThis.Promise = Native;
    }
    expect(spans).toHaveLength(0);
    await expect(result).rejects.toThrow('late');
    expect(spans[0]?.status).toEqual({ code: 'error', message: 'late' });
  });

  it('keeps the span of an async generator open while it is iterated, with its body in the span', async () => {
    const { spans, tracer } = setup(alsContext(AsyncLocalStorage));
    const seen: (string | undefined)[] = [];
    const stream = traced('generation', async function* stream(prompt: string) {
      seen.push(tracer.currentSpan()?.name);
      yield `${prompt}: `;
      await new Promise((r) => setTimeout(r, 30));
      seen.push(tracer.currentSpan()?.name);
      yield 'hello';
      yield ' world';
    });
    const out: string[] = [];
    await tracer.withTrace('chat', async () => {
      for await (const token of stream('q')) out.push(token);
    });
    expect(out.join('')).toBe('q: hello world');
    expect(seen).toEqual(['stream', 'stream']);
    const span = spans.find((s) => s.name === 'stream')!;
    expect(span.endMs - span.startMs).toBeGreaterThanOrEqual(25);
    expect(span.parentId).toBe(spans.find((s) => s.name === 'chat')?.spanId);
    expect(span.attrs).toMatchObject({ [A.OBSERVATION_OUTPUT]: 'q: hello world', [A.YIELDED_ITEMS]: 3, [A.OBSERVATION_INPUT]: 'q' });
  });

  it("collects a generator's text up to the input/output limit, not the shorter string limit", () => {
    const { spans } = setup();
    const tokens = traced('generation', function* tokens(n: number) {
      for (let i = 0; i < n; i++) yield 'token ';
    });
    // 30,000 characters: past maxStringLength (16,384), within maxIoLength (65,536).
    for (const _ of tokens(5_000));
    for (const _ of tokens(20_000));
    expect((spans[0]?.attrs[A.OBSERVATION_OUTPUT] as string).length).toBe(30_000);
    expect((spans[1]?.attrs[A.OBSERVATION_OUTPUT] as string).length).toBe(65_536);
    // Cut once as the observation's output and once as the trace's: the span is a trace's root.
    expect(spans[1]?.attrs[A.TRUNCATED]).toBe(2);
  });

  it('ends the span of a generator when the caller stops early, and records its throw', () => {
    const { spans } = setup();
    const count = traced('tool', function* count() {
      yield 1;
      yield 2;
      yield 3;
      return 'all';
    });
    for (const n of count()) if (n === 2) break;
    expect(spans).toHaveLength(1);
    expect(spans[0]?.attrs).toMatchObject({ [A.YIELDED_ITEMS]: 2 });
    const all = [...count()];
    expect(all).toEqual([1, 2, 3]);
    // Items that are not text: the output is the return value.
    expect(spans[1]?.attrs).toMatchObject({ [A.YIELDED_ITEMS]: 3, [A.OBSERVATION_OUTPUT]: 'all' });
    const broken = traced('tool', function* broken() {
      yield 'a';
      throw new RangeError('out of tokens');
    });
    const it = broken();
    expect(it.next().value).toBe('a');
    expect(() => it.next()).toThrow(RangeError);
    expect(spans[2]?.status).toEqual({ code: 'error', message: 'out of tokens' });
  });

  it('records an aborted token stream as cancelled, as a traced async function records it', async () => {
    const { spans } = setup(alsContext(AsyncLocalStorage));
    const controller = new AbortController();
    const stream = traced('generation', async function* stream(signal: AbortSignal) {
      yield 'hel';
      await new Promise((r) => setTimeout(r, 5));
      signal.throwIfAborted();
      yield 'lo';
    });
    const out: string[] = [];
    const reading = (async () => {
      for await (const token of stream(controller.signal)) {
        out.push(token);
        controller.abort();
      }
    })();
    await expect(reading).rejects.toMatchObject({ name: 'AbortError' });
    expect(out).toEqual(['hel']);
    const span = spans.find((s) => s.name === 'stream')!;
    expect(span.status.code).not.toBe('error');
    expect(span.events).toHaveLength(0);
    expect(span.attrs).toMatchObject({ [A.CANCELLED]: true, [A.OBSERVATION_STATUS_MESSAGE]: 'cancelled', [A.YIELDED_ITEMS]: 1, [A.OBSERVATION_OUTPUT]: 'hel' });
  });

  // The class syntax is compiled by TypeScript itself (standard decorators, or legacy ones with
  // `legacy`, as users compile them); the test's own transform does not lower decorators.
  const compile = (source: string, legacy = false): ((t: typeof traced) => any) => {
    const compilerOptions = { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.None, experimentalDecorators: legacy };
    const js = ts.transpileModule(source, { compilerOptions }).outputText;
    return new Function('traced', js) as (t: typeof traced) => any;
  };

  it('decorates with legacy decorators (experimentalDecorators) as with standard ones', async () => {
    const { spans } = setup();
    const source = `
      class Base {
        @traced('agent')
        run(task: string): string {
          return 'base:' + task;
        }
      }
      class Agent extends Base {
        constructor(public helper?: Agent) { super(); }
        @traced({ type: 'agent', captureInput: false })
        run(task: string): string {
          return this.helper ? 'boss got: ' + this.helper.run('part of ' + task) : super.run(task);
        }
        @traced('tool')
        static async create(): Promise<string> {
          return 'made';
        }
      }
      return Agent;`;
    // The emitted code calls TypeScript's __decorate with (prototype, name, descriptor).
    expect(ts.transpileModule(source, { compilerOptions: { experimentalDecorators: true } }).outputText).toContain('__decorate([');
    const Agent = compile(source, true)(traced);
    expect(new Agent(new Agent()).run('t')).toBe('boss got: base:part of t');
    await expect(Agent.create()).resolves.toBe('made');
    // The leaf's own run() and the Base run() it calls through super are one component.
    expect(spans.map((s) => s.name)).toEqual(['Agent.run', 'Agent.run', 'Agent.create']);
    const [leaf, boss, create] = spans;
    expect(leaf?.parentId).toBe(boss?.spanId);
    expect(leaf?.attrs[A.OBSERVATION_OUTPUT]).toBe('base:part of t');
    expect(boss?.attrs[A.OBSERVATION_INPUT]).toBeUndefined();
    expect(create?.attrs[A.OBSERVATION_TYPE]).toBe('tool');
  });

  it('decorates class methods as Class.method', async () => {
    const { spans } = setup();
    const Agent = compile(`
      class Agent {
        calls = 0;
        @traced('agent')
        async run(task: string): Promise<string> {
          this.calls++;
          return this.calls < 3 ? this.run(task) : 'done:' + task;
        }
      }
      return Agent;`)(traced);
    const agent = new Agent();
    // The recursive call happens after an await, where the page's stack context no longer
    // knows the span; each level becomes a span of its own, named after the class.
    await expect(agent.run('t')).resolves.toBe('done:t');
    expect(agent.calls).toBe(3);
    expect(spans.length).toBeGreaterThan(0);
    expect(spans.every((s) => s.name === 'Agent.run')).toBe(true);
    expect(spans[0]?.attrs[A.OBSERVATION_TYPE]).toBe('agent');
  });

  it('decorated synchronous recursion stays in one span', () => {
    const { spans } = setup();
    const Walker = compile(`
      class Walker {
        @traced('chain')
        depth(n: number): number {
          return n === 0 ? 0 : 1 + this.depth(n - 1);
        }
      }
      return Walker;`)(traced);
    expect(new Walker().depth(4)).toBe(4);
    expect(spans).toHaveLength(1);
    expect(spans[0]?.name).toBe('Walker.depth');
  });

  it('gives the same method on another instance (a sub-agent) a span of its own', () => {
    const { spans } = setup();
    const Agent = compile(`
      class Agent {
        constructor(public helper?: Agent) {}
        @traced('agent')
        run(task: string): string {
          return this.helper ? 'boss got: ' + this.helper.run('part of ' + task) : 'leaf did ' + task;
        }
      }
      return Agent;`)(traced);
    const boss = new Agent(new Agent());
    expect(boss.run('plan trip')).toBe('boss got: leaf did part of plan trip');
    expect(spans.map((s) => s.name)).toEqual(['Agent.run', 'Agent.run']);
    const [leaf, top] = spans;
    expect(leaf?.parentId).toBe(top?.spanId);
    expect(leaf?.attrs[A.OBSERVATION_INPUT]).toBe('part of plan trip');
    expect(leaf?.attrs[A.OBSERVATION_OUTPUT]).toBe('leaf did part of plan trip');
  });

  it('keeps a decorated override that calls its decorated super method in one span', () => {
    const { spans } = setup();
    const Child = compile(`
      class Base {
        @traced('agent')
        run(task: string): string {
          return 'base:' + task;
        }
      }
      class Child extends Base {
        @traced('agent')
        run(task: string): string {
          return 'child+' + super.run(task);
        }
      }
      return Child;`)(traced);
    expect(new Child().run('t')).toBe('child+base:t');
    expect(spans).toHaveLength(1);
    expect(spans[0]?.name).toBe('Child.run');
  });

  it('names a static method after its class', async () => {
    const { spans } = setup();
    const Agent = compile(`
      class Agent {
        @traced('agent')
        static async create(): Promise<string> {
          return 'made';
        }
      }
      return Agent;`)(traced);
    await expect(Agent.create()).resolves.toBe('made');
    expect(spans[0]?.name).toBe('Agent.create');
  });
});
