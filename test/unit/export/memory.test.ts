import { describe, it, expect } from 'vitest';
import type { ScoreRecord, SpanRecord } from '../../../src/protocol';
import { createMemoryExporter } from '../../../src/export/memory';
import { noneExporter } from '../../../src/export/none';
import { spanRecord } from '../../helpers/records';

const span: SpanRecord = spanRecord(1, { spanId: 'b'.repeat(16), name: 's' });
const score: ScoreRecord = { v: 1, rec: 'score', id: 'x', traceId: 'a'.repeat(32), name: 'n', value: 1, timeMs: 1 };

describe('createMemoryExporter', () => {
  it('keeps every exported record in order and splits spans from scores', async () => {
    const mem = createMemoryExporter();
    expect(await mem.export([span, score])).toEqual({ ok: true });
    await mem.export([span]);
    expect(mem.records).toEqual([span, score, span]);
    expect(mem.spans()).toEqual([span, span]);
    expect(mem.scores()).toEqual([score]);
  });

  it('forgets everything on reset, keeping the same records array', async () => {
    const mem = createMemoryExporter();
    const records = mem.records;
    await mem.export([span]);
    mem.reset();
    expect(mem.records).toBe(records);
    expect(mem.records).toHaveLength(0);
    await expect(mem.shutdown()).resolves.toBeUndefined();
  });
});

describe('noneExporter', () => {
  it('drops records and reports success', async () => {
    expect(await noneExporter.export([span, score])).toEqual({ ok: true });
    await expect(noneExporter.shutdown!()).resolves.toBeUndefined();
  });
});
