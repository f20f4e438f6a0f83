// Type-level assertions, checked by `tsc --noEmit` (npm run typecheck); nothing here runs.
import { expectTypeOf } from 'vitest';
import { createTracer, traced, type Generation, type Span, type Trace, type SpanRecord, type TelemetryRecord } from '../../src/index';

const tracer = createTracer();

// span() returns what the callback returns, sync or async.
expectTypeOf(tracer.createTrace('t').span('s', () => 42)).toEqualTypeOf<number>();
expectTypeOf(tracer.createTrace('t').span('s', async () => 'x')).toEqualTypeOf<Promise<string>>();
expectTypeOf(tracer.withTrace('t', (t) => t)).toEqualTypeOf<Trace>();

// generation() hands a Generation with the LLM setters.
tracer.createTrace('t').generation('llm', { model: 'm' }, (g) => {
  expectTypeOf(g).toEqualTypeOf<Generation>();
  expectTypeOf(g.setUsage).parameter(0).toEqualTypeOf<Record<string, number>>();
});

// traced() keeps the wrapped function's signature.
const wrapped = traced('tool', (a: string, b: number) => a.repeat(b));
expectTypeOf(wrapped).toEqualTypeOf<(a: string, b: number) => string>();

// Records are plain data: no methods, and a union discriminated by `rec`.
expectTypeOf<SpanRecord['rec']>().toEqualTypeOf<'span'>();
expectTypeOf<TelemetryRecord['rec']>().toEqualTypeOf<'span' | 'score'>();
expectTypeOf<Span['traceId']>().toEqualTypeOf<string>();

// The decorator form type-checks on a class method.
class Agent {
  @traced('agent')
  run(task: string): string {
    return task;
  }
}
expectTypeOf(new Agent().run).returns.toEqualTypeOf<string>();

// @ts-expect-error: unknown observation types are rejected
traced('banana', () => 1);
