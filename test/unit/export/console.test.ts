import { describe, it, expect } from 'vitest';
import type { ScoreRecord, SpanRecord } from '../../../src/protocol';
import { createConsoleExporter, formatTree } from '../../../src/export/console';

const T1 = 'a'.repeat(32);
const T2 = 'b'.repeat(32);

const span = (spanId: string, over: Partial<SpanRecord> = {}): SpanRecord => ({
  v: 1,
  rec: 'span',
  traceId: T1,
  spanId: spanId.padStart(16, '0'),
  flags: 1,
  name: spanId,
  kind: 'internal',
  startMs: 1000,
  endMs: 1010,
  attrs: {},
  events: [],
  links: [],
  status: { code: 'unset' },
  resource: { attrs: {}, scope: { name: 'edgetrace' } },
  ...over,
});

const id = (s: string) => s.padStart(16, '0');

describe('formatTree', () => {
  it('prints one indented tree per trace, children ordered by start', () => {
    const text = formatTree([
      span('c2', { parentId: id('root'), startMs: 1005, endMs: 1006 }),
      span('root', { kind: 'server', startMs: 1000, endMs: 1012.34 }),
      span('c1', { parentId: id('root'), startMs: 1001, endMs: 1003.5 }),
      span('g1', { parentId: id('c1'), startMs: 1002, endMs: 1003, kind: 'client' }),
    ]);
    expect(text).toBe(
      [
        `trace ${T1}`,
        '  root  server  12.3 ms',
        '    c1  internal  2.5 ms',
        '      g1  client  1.0 ms',
        '    c2  internal  1.0 ms',
      ].join('\n'),
    );
  });

  it('marks errors with their message', () => {
    const text = formatTree([span('x', { status: { code: 'error', message: 'boom' } }), span('y', { startMs: 1001, status: { code: 'error' } })]);
    expect(text).toContain('x  internal  10.0 ms  [error: boom]');
    expect(text).toContain('y  internal  9.0 ms  [error]');
  });

  it('shows key attributes compactly and shortens long values', () => {
    const text = formatTree([
      span('llm', {
        attrs: {
          'langfuse.observation.type': 'generation',
          'gen_ai.request.model': 'gpt-4o',
          'langfuse.observation.model.name': 'ignored-second-model',
          'gen_ai.usage.input_tokens': 812,
          'url.full': 'https://api.example.com/' + 'x'.repeat(100),
          other: 'not shown',
        },
      }),
    ]);
    const line = text.split('\n')[1]!;
    expect(line).toMatch(/^ {2}llm {2}internal {2}10\.0 ms {2}\{type=generation model=gpt-4o in=812 url=https:\/\/api\.example\.com\/x+…\}$/);
    expect(line).not.toContain('other');
    // The model that answered, when the response named it, in place of the one asked for.
    const answered = formatTree([span('llm', { attrs: { 'gen_ai.request.model': 'gpt-4o', 'gen_ai.response.model': 'gpt-4o-2024-08-06' } })]);
    expect(answered.split('\n')[1]).toContain('{model=gpt-4o-2024-08-06}');
  });

  it('keeps traces apart in first-seen order', () => {
    const text = formatTree([span('a'), span('b', { traceId: T2 }), span('c', { startMs: 999 })]);
    expect(text.split('\n')).toEqual([`trace ${T1}`, '  c  internal  11.0 ms', '  a  internal  10.0 ms', `trace ${T2}`, '  b  internal  10.0 ms']);
  });

  it('prints spans whose parent is missing as roots', () => {
    const text = formatTree([span('orphan', { parentId: id('gone') })]);
    expect(text.split('\n')[1]).toBe('  orphan  internal  10.0 ms');
  });

  it('prints every span of a parent cycle exactly once', () => {
    const text = formatTree([span('p', { parentId: id('q') }), span('q', { parentId: id('p') }), span('self', { parentId: id('self') })]);
    const lines = text.split('\n');
    expect(lines).toHaveLength(4);
    expect(lines.filter((l) => l.trim().startsWith('p ')).length).toBe(1);
    expect(lines.filter((l) => l.trim().startsWith('q ')).length).toBe(1);
  });

  it('returns an empty string for no spans', () => {
    expect(formatTree([])).toBe('');
  });
});

describe('createConsoleExporter', () => {
  const score: ScoreRecord = { v: 1, rec: 'score', id: 's', traceId: T1, name: 'helpful', value: 1, comment: 'great', timeMs: 1 };

  it('logs the trees and scores of a batch and succeeds', async () => {
    const out: string[] = [];
    const result = await createConsoleExporter({ log: (t) => out.push(t) }).export([span('root'), score]);
    expect(result).toEqual({ ok: true });
    expect(out).toHaveLength(1);
    expect(out[0]).toBe(`trace ${T1}\n  root  internal  10.0 ms\nscore helpful=1  trace ${T1}  "great"`);
  });

  it('logs nothing for an empty batch', async () => {
    const out: string[] = [];
    await createConsoleExporter({ log: (t) => out.push(t) }).export([]);
    expect(out).toEqual([]);
  });

  it('succeeds even when the logger throws', async () => {
    const exporter = createConsoleExporter({
      log: () => {
        throw new Error('closed');
      },
    });
    expect(await exporter.export([span('x')])).toEqual({ ok: true });
  });
});
