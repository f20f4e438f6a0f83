import { describe, it, expect, beforeEach, afterEach, afterAll, vi } from 'vitest';
import { openDatabase } from './sqlite';
import { cpSync, mkdirSync, mkdtempSync, rmSync, existsSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createSqliteStore, openSqliteStore, type SqliteDatabase } from '../../../src/server/collector/sqliteStore';
import { buildTree, MAX_TREE_DEPTH, type TraceStore } from '../../../src/server/collector/store';
import { explainSqliteError } from '../../../src/server/collector/sqliteFile';
import type { ScoreRecord } from '../../../src/protocol';
import { chatTrace, spanRecord } from './otlpFixtures';
import { scoreRecord } from '../../helpers/records';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

/**
 * Bundles `code`, which calls `openSqliteStore`, into the CommonJS file `outfile`, as an app's
 * bundler would: better-sqlite3 left out, to be found at run time, and no `import.meta.url`.
 */
const bundleApp = async (outfile: string, code: string): Promise<void> => {
  const { build } = await import('esbuild');
  await build({
    stdin: { contents: `import { openSqliteStore } from './src/server/collector/sqliteStore';\n${code}`, resolveDir: ROOT, loader: 'ts' },
    bundle: true,
    format: 'cjs',
    platform: 'node',
    external: ['better-sqlite3'],
    outfile,
    logLevel: 'silent',
  });
};

const T1 = 'a1000000000000000000000000000001';
const T2 = 'a2000000000000000000000000000002';
const T3 = 'a3000000000000000000000000000003';
const BASE = 1_732_140_000_000;

let store: TraceStore;
beforeEach(() => {
  store = createSqliteStore(openDatabase());
});
afterEach(() => store.close());

const dir = mkdtempSync(join(tmpdir(), 'edgetrace-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the SQLite store', () => {
  it('is idempotent on (traceId, spanId)', async () => {
    const spans = chatTrace(T1, BASE);
    expect(await store.insertSpans(spans)).toBe(3);
    expect(await store.insertSpans(spans)).toBe(0);
    expect(await store.insertSpans([spans[0]!, spanRecord({ traceId: T1, spanId: 'c'.repeat(16), parentId: spans[0]!.spanId })])).toBe(1);
    const { traces } = await store.listTraces();
    expect(traces).toHaveLength(1);
    expect(traces[0]!.spanCount).toBe(4);
  });

  it('summarises a trace: root name, services, user, time range, errors, tokens and cost', async () => {
    // The server's spans arrive before the browser's root: its request span, whose parent is
    // remote, names the trace until then, whatever the order of the batch.
    const [root, server, gen] = chatTrace(T1, BASE, { error: true, user: 'u1', cost: 0.25 });
    await store.insertSpans([gen!, server!]);
    let [summary] = (await store.listTraces()).traces;
    expect(summary).toMatchObject({ name: 'POST /api/chat', service: 'api' });
    await store.insertSpans([root!]);
    [summary] = (await store.listTraces()).traces;
    expect(summary).toEqual({
      traceId: T1,
      name: 'chat-turn',
      service: 'web',
      userId: 'u1',
      sessionId: 's-u1',
      startMs: BASE,
      endMs: BASE + 100,
      durationMs: 100,
      spanCount: 3,
      errorCount: 1,
      status: 'error',
      inputTokens: 100,
      outputTokens: 20,
      costUsd: 0.25,
    });
  });

  it('names a trace by the trace name its spans carry until its root arrives, and by the root after', async () => {
    // Every page span carries the trace's name as it was when the span ended; the root, renamed
    // later, carries the final one.
    const [root, server] = chatTrace(T1, BASE);
    const web = root!.resource;
    const early = spanRecord({ traceId: T1, parentId: root!.spanId, name: 'GET /config', attrs: { 'langfuse.trace.name': 'draft' }, resource: web });
    const late = spanRecord({ traceId: T1, parentId: root!.spanId, name: 'GET /more', attrs: { 'langfuse.trace.name': 'chat-turn' }, resource: web });
    await store.insertSpans([server!, early]);
    let [summary] = (await store.listTraces()).traces;
    expect(summary).toMatchObject({ name: 'draft', service: 'web' });
    await store.insertSpans([root!]);
    await store.insertSpans([spanRecord({ ...early, spanId: 'd'.repeat(16) })]);
    [summary] = (await store.listTraces()).traces;
    expect(summary).toMatchObject({ name: 'chat-turn', service: 'web' });
    await store.insertSpans([late]);
    [summary] = (await store.listTraces()).traces;
    expect(summary).toMatchObject({ name: 'chat-turn', spanCount: 5 });
  });

  it('keeps service names with a comma or a percent sign apart from look-alikes, in the list as in stats', async () => {
    const ids = async (q: Parameters<TraceStore['listTraces']>[0]) => (await store.listTraces(q)).traces.map((t) => t.traceId);
    const odd = ['b5000000000000000000000000000005', 'b6000000000000000000000000000006', 'b7000000000000000000000000000007'];
    const names = ['eu,web', 'eu_web', 'eu%2Cweb'];
    for (const [i, service] of names.entries()) {
      await store.insertSpans([spanRecord({ traceId: odd[i]!, name: 'odd', startMs: BASE + 4000 + i, endMs: BASE + 4001 + i, resource: { attrs: { 'service.name': service }, scope: { name: 'x' } } })]);
    }
    for (const [i, service] of names.entries()) {
      expect(await ids({ service })).toEqual([odd[i]]);
      expect((await store.stats({ service, fromMs: BASE })).spans).toBe(1);
    }
  });

  it('filters the trace list and pages through it newest first', async () => {
    await store.insertSpans(chatTrace(T1, BASE, { user: 'u1' }));
    await store.insertSpans(chatTrace(T2, BASE + 1000, { user: 'u2', error: true }));
    await store.insertSpans(chatTrace(T3, BASE + 2000, { user: 'u1' }));
    await store.insertSpans([spanRecord({ traceId: 'a4000000000000000000000000000004', name: 'solo', startMs: BASE + 3000, endMs: BASE + 3001, resource: { attrs: { 'service.name': 'batch' }, scope: { name: 'x' } } })]);
    const ids = async (q: Parameters<TraceStore['listTraces']>[0]) => (await store.listTraces(q)).traces.map((t) => t.traceId);
    expect(await ids({})).toEqual(['a4000000000000000000000000000004', T3, T2, T1]);
    expect(await ids({ userId: 'u1' })).toEqual([T3, T1]);
    expect(await ids({ sessionId: 's-u2' })).toEqual([T2]);
    expect(await ids({ status: 'error' })).toEqual([T2]);
    expect(await ids({ status: 'ok', service: 'api' })).toEqual([T3, T1]);
    expect(await ids({ service: 'batch' })).toEqual(['a4000000000000000000000000000004']);
    expect(await ids({ name: 'chat-turn', fromMs: BASE + 500, toMs: BASE + 2000 })).toEqual([T2]);
    const p1 = await store.listTraces({ limit: 3 });
    expect(p1.traces).toHaveLength(3);
    expect(p1.nextCursor).toBeDefined();
    const p2 = await store.listTraces({ limit: 3, cursor: p1.nextCursor });
    expect(p2.traces.map((t) => t.traceId)).toEqual([T1]);
    expect(p2.nextCursor).toBeUndefined();
  });

  it('returns a whole trace as a tree with its scores', async () => {
    await store.insertSpans(chatTrace(T1, BASE));
    const score: ScoreRecord = { v: 1, rec: 'score', id: 'sc1', traceId: T1, name: 'helpful', value: 1, timeMs: BASE + 200 };
    await store.insertScores([score]);
    await store.insertScores([{ ...score, value: 0 }]);
    const tree = (await store.getTrace(T1))!;
    expect(tree.summary.traceId).toBe(T1);
    expect(tree.roots).toHaveLength(1);
    const root = tree.roots[0]!;
    expect(root).toMatchObject({ name: 'chat-turn', service: 'web', durationMs: 100 });
    expect(root.children[0]).toMatchObject({ name: 'POST /api/chat', service: 'api' });
    expect(root.children[0]!.children[0]).toMatchObject({ name: 'llm', attrs: { 'gen_ai.usage.input_tokens': 100 } });
    expect(tree.scores).toEqual([{ ...score, value: 0 }]);
    expect(await store.getTrace(T2)).toBeUndefined();
  });

  it('replaces a score given again under its id with a newer one, not with an older copy or one for another trace', async () => {
    await store.insertSpans(chatTrace(T1, BASE));
    const up: ScoreRecord = { v: 1, rec: 'score', id: 'feedback-1', traceId: T1, name: 'helpful', value: 1, timeMs: BASE + 200 };
    const down = { ...up, value: 0, timeMs: BASE + 900 };
    await store.insertScores([up]);
    await store.insertScores([down]);
    await store.insertScores([up]);
    // Nor with one for another trace under the same id.
    await store.insertSpans(chatTrace(T2, BASE));
    await store.insertScores([{ ...down, traceId: T2, timeMs: BASE + 1_000 }]);
    expect((await store.getTrace(T1))!.scores).toEqual([down]);
    expect((await store.getTrace(T2))!.scores).toEqual([]);
  });

  it('keeps NaN and the infinities by their OTLP/JSON names, which JSON alone would store as null', async () => {
    const attrs = { ratio: Number.NaN, limit: Number.POSITIVE_INFINITY, floor: Number.NEGATIVE_INFINITY, note: 'null', list: [1.5, Number.NaN] };
    await store.insertSpans([spanRecord({ traceId: T1, attrs, events: [{ name: 'e', timeMs: BASE, attrs: { x: Number.NaN } }] })]);
    const span = (await store.getTrace(T1))!.roots[0]!;
    expect(span.attrs).toEqual({ ratio: 'NaN', limit: 'Infinity', floor: '-Infinity', note: 'null', list: [1.5, 'NaN'] });
    expect(span.events).toEqual([{ name: 'e', timeMs: BASE, attrs: { x: 'NaN' } }]);
  });

  it('computes count, error rate, p50/p95 by name, and tokens and cost by model', async () => {
    const spans = Array.from({ length: 20 }, (_, i) =>
      spanRecord({ traceId: T1, name: 'db', startMs: BASE + i, endMs: BASE + i + (i + 1), status: i < 2 ? { code: 'error' } : { code: 'ok' } }),
    );
    await store.insertSpans(spans);
    await store.insertSpans(chatTrace(T2, BASE, { model: 'gpt-4o', cost: 0.1 }));
    await store.insertSpans(chatTrace(T3, BASE, { model: 'gpt-4o', cost: 0.2 }));
    await store.insertSpans(chatTrace('a5000000000000000000000000000005', BASE, { model: 'claude', cost: 0.5 }));
    const stats = await store.stats({ fromMs: BASE - 1, toMs: BASE + 10_000 });
    expect(stats.spans).toBe(29);
    expect(stats.errors).toBe(2);
    expect(stats.errorRate).toBeCloseTo(2 / 29);
    const db = stats.byName.find((n) => n.name === 'db')!;
    // Durations 1..20 ms: nearest rank p50 = 10th = 10 ms, p95 = 19th = 19 ms.
    expect(db).toEqual({ name: 'db', count: 20, errors: 2, errorRate: 0.1, p50Ms: 10, p95Ms: 19 });
    expect(stats.byModel).toEqual([
      { model: 'claude', count: 1, inputTokens: 100, outputTokens: 20, totalTokens: 120, costUsd: 0.5 },
      { model: 'gpt-4o', count: 2, inputTokens: 200, outputTokens: 40, totalTokens: 240, costUsd: 0.3 },
    ]);
    expect((await store.stats({ service: 'web' })).spans).toBe(23);
    expect((await store.stats({ fromMs: BASE + 100_000 })).spans).toBe(0);
  });

  it('reads a long window in chunks, writing the batches that arrive meanwhile, with the same figures', async () => {
    // 5,001 spans of one name (durations 1..5001 ms, every tenth an error) and 2,000 of another
    // service: stats read 2,000 at a time.
    for (let k = 0; k < 5; k++) {
      await store.insertSpans(
        Array.from({ length: 1000 }, (_, i) => {
          const n = k * 1000 + i;
          return spanRecord({ name: 'render', startMs: BASE + n, endMs: BASE + n + n + 1, status: n % 10 === 0 ? { code: 'error' } : { code: 'ok' } });
        }),
      );
    }
    await store.insertSpans([spanRecord({ name: 'render', startMs: BASE + 5000, endMs: BASE + 10_001 })]);
    const api = { attrs: { 'service.name': 'api' }, scope: { name: 'x' } };
    await store.insertSpans(Array.from({ length: 2000 }, (_, i) => spanRecord({ name: 'query', startMs: BASE + i, endMs: BASE + i + 1, resource: api })));
    const order: string[] = [];
    const all = Promise.resolve(store.stats({ fromMs: BASE })).then((r) => {
      order.push('stats');
      return r;
    });
    const written = Promise.resolve(store.insertSpans([spanRecord({ traceId: T1, startMs: BASE - 10, endMs: BASE - 5 })])).then(() => order.push('insert'));
    const [stats] = await Promise.all([all, written]);
    expect(order).toEqual(['insert', 'stats']);
    expect(stats.spans).toBe(7001);
    expect(stats.errors).toBe(500);
    // Nearest rank over 1..5001: p50 the 2,501st, p95 the 4,751st.
    expect(stats.byName).toEqual([
      { name: 'render', count: 5001, errors: 500, errorRate: 500 / 5001, p50Ms: 2501, p95Ms: 4751 },
      { name: 'query', count: 2000, errors: 0, errorRate: 0, p50Ms: 1, p95Ms: 1 },
    ]);
    expect((await store.stats({ fromMs: BASE, service: 'api' })).spans).toBe(2000);
    expect((await store.stats({ fromMs: BASE, toMs: BASE + 1000 })).spans).toBe(2000);
  });

  it('reads tokens and cost from Langfuse usage and cost details too', async () => {
    await store.insertSpans([
      spanRecord({
        traceId: T1,
        attrs: {
          'langfuse.observation.model.name': 'm',
          'langfuse.observation.usage_details': '{"input":5,"output":7}',
          'langfuse.observation.cost_details': '{"input":0.001,"total":0.003}',
        },
      }),
    ]);
    expect((await store.stats()).byModel).toEqual([{ model: 'm', count: 1, inputTokens: 5, outputTokens: 7, totalTokens: 12, costUsd: 0.003 }]);
  });

  it('prunes whole traces whose last span ended before the cutoff', async () => {
    await store.insertSpans(chatTrace(T1, BASE));
    await store.insertSpans(chatTrace(T2, BASE + 10_000));
    await store.insertScores([{ v: 1, rec: 'score', id: 'old', traceId: T1, name: 'n', value: 1, timeMs: BASE + 50 }]);
    expect(await store.prune(BASE + 5_000)).toEqual({ traces: 1, spans: 3, scores: 1 });
    expect((await store.listTraces()).traces.map((t) => t.traceId)).toEqual([T2]);
    expect(await store.getTrace(T1)).toBeUndefined();
    expect((await store.stats()).spans).toBe(3);
  });

  it('prunes in small transactions, writing the batches that arrive meanwhile, and keeps the WAL small', async () => {
    const file = join(dir, 'prune-chunks.db');
    const db = openDatabase(file);
    const big = createSqliteStore(db);
    try {
      // The WAL is cut back after a checkpoint, not left as large as the largest transaction.
      expect(db.prepare('PRAGMA journal_size_limit').get()).toEqual({ journal_size_limit: 32 * 1024 * 1024 });
      // 40 traces of 100 spans to prune, each with a score, and one orphan score.
      for (let t = 0; t < 40; t++) {
        const traceId = `c${String(t).padStart(31, '0')}`;
        await big.insertSpans(Array.from({ length: 100 }, (_, i) => spanRecord({ traceId, startMs: BASE + i, endMs: BASE + i + 1, attrs: { pad: 'x'.repeat(500) } })));
        await big.insertScores([scoreRecord({ id: `s${t}`, traceId, timeMs: BASE })]);
      }
      await big.insertScores([scoreRecord({ id: 'orphan', traceId: 'f'.repeat(32), timeMs: BASE })]);
      // Small enough to be passed here: WAL frames are written over once a checkpoint copied them.
      db.exec('PRAGMA wal_autocheckpoint = 100');
      db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      const order: string[] = [];
      const pruned = Promise.resolve(big.prune(BASE + 5_000)).then((r) => {
        order.push('prune');
        return r;
      });
      const written = Promise.resolve(big.insertSpans([spanRecord({ traceId: T1, startMs: BASE + 10_000, endMs: BASE + 10_001 })])).then(() => order.push('insert'));
      // A second prune meanwhile joins the first.
      const joined = big.prune(BASE + 5_000);
      await written;
      expect(await pruned).toEqual({ traces: 40, spans: 4000, scores: 41 });
      expect(await joined).toEqual({ traces: 40, spans: 4000, scores: 41 });
      // One transaction for all would have put nearly every page of the file in the WAL at once.
      expect(statSync(`${file}-wal`).size).toBeLessThan(statSync(file).size / 3);
      expect(order).toEqual(['insert', 'prune']);
      expect((await big.listTraces()).traces.map((t) => t.traceId)).toEqual([T1]);
    } finally {
      big.close();
    }
  });

  it('stops writing while its disk is nearly full, and writes again once a prune freed pages in the file', async () => {
    const real = process.getBuiltinModule.bind(process);
    const fs = process.getBuiltinModule('node:fs');
    // 100 GB, of which freeBytes are free: the reserve is 64 MB.
    let freeBytes = 1e9;
    const disk = { bsize: 4096, blocks: 25_000_000, get bavail() { return Math.floor(freeBytes / 4096); } };
    const spy = vi.spyOn(process, 'getBuiltinModule').mockImplementation(((id: string) => (id === 'node:fs' ? { ...fs, statfsSync: () => disk } : real(id))) as typeof process.getBuiltinModule);
    const file = join(dir, 'full.db');
    const s = createSqliteStore(openDatabase(file));
    try {
      await s.insertSpans(Array.from({ length: 50 }, (_, i) => spanRecord({ traceId: T1, startMs: BASE + i, endMs: BASE + i + 1, attrs: { pad: 'x'.repeat(2000) } })));
      freeBytes = 64 * 1024 * 1024 - 100_000;
      const refused = await Promise.allSettled([s.insertSpans(chatTrace(T2, BASE + 10_000))]);
      expect(refused[0]).toMatchObject({ status: 'rejected', reason: { code: 'SQLITE_FULL' } });
      expect(String((refused[0] as PromiseRejectedResult).reason)).toMatch(/full\.db has 63\.9 MB free .*stops writing below 64 MB, which pruning needs/);
      expect(() => s.insertScores([scoreRecord()])).toThrow(/MB free/);
      // What the prune frees is reused by the next writes: room enough again.
      expect(await s.prune(BASE + 5_000)).toMatchObject({ traces: 1, spans: 50 });
      expect(await s.insertSpans(chatTrace(T2, BASE + 10_000))).toBe(3);
    } finally {
      spy.mockRestore();
      s.close();
    }
  });

  it('says when its file was deleted or replaced while open', async () => {
    const file = join(dir, 'moved.db');
    const s = createSqliteStore(openDatabase(file));
    try {
      expect(s.check?.()).toBeUndefined();
      rmSync(file);
      expect(s.check?.()).toMatch(/moved\.db was deleted while open: what is stored now goes to the old file and is lost when the collector stops; restart it/);
      writeFileSync(file, '');
      expect(s.check?.()).toMatch(/moved\.db was replaced while open/);
      // In memory there is no file to lose.
      expect(store.check?.()).toBeUndefined();
    } finally {
      s.close();
    }
    // Its whole folder gone: writes are not refused for the disk check's own failure.
    const folder = join(dir, 'gone');
    mkdirSync(folder);
    const g = createSqliteStore(openDatabase(join(folder, 'gone.db')));
    try {
      rmSync(folder, { recursive: true });
      expect(g.check?.()).toMatch(/gone\.db was deleted while open/);
      await expect(Promise.resolve(g.insertSpans([spanRecord({ name: 'after' })]))).resolves.toBe(1);
    } finally {
      g.close();
    }
  });

  it('says what SQLite means when the folder of the file is read-only', () => {
    const error = Object.assign(new Error('attempt to write a readonly database'), { code: 'SQLITE_READONLY_DIRECTORY' });
    const explained = explainSqliteError(error, '/data/traces.db') as Error & { code: string };
    expect(explained.message).toBe(
      "attempt to write a readonly database: its folder is not writable: SQLite's WAL mode creates /data/traces.db-wal and /data/traces.db-shm beside the file",
    );
    expect(explained.code).toBe('SQLITE_READONLY_DIRECTORY');
    expect(explained.cause).toBe(error);
    // Errors it has nothing to add to pass through unchanged.
    const other = new Error('no such table: x');
    expect(explainSqliteError(other, '/data/traces.db')).toBe(other);
  });

  it('keeps the resource of each span when two processes share the file and one of them prunes', async () => {
    const file = join(dir, 'shared.db');
    const a = createSqliteStore(openDatabase(file));
    const b = createSqliteStore(openDatabase(file));
    const res = (service: string) => ({ attrs: { 'service.name': service }, scope: { name: 'x' } });
    const span = (traceId: string, service: string, at: number) =>
      spanRecord({ traceId, spanId: traceId.slice(0, 16), name: service, startMs: at, endMs: at + 1, resource: res(service) });
    try {
      await b.insertSpans([span(T1, 'web-v1', BASE)]);
      // A prunes that trace: the resource row is no longer used by any span.
      expect(await a.prune(BASE + 5_000)).toMatchObject({ traces: 1 });
      await b.insertSpans([span(T2, 'web-v1', BASE + 10_000)]);
      await a.insertSpans([span(T3, 'other-service', BASE + 20_000)]);
      for (const store of [a, b]) {
        const tree = (await store.getTrace(T2))!;
        expect(tree.roots[0]!.resource.attrs['service.name']).toBe('web-v1');
      }
    } finally {
      a.close();
      b.close();
    }
  });

  it('keeps the scores of a kept trace, whatever time their sender gave them', async () => {
    await store.insertSpans(chatTrace(T2, BASE + 10_000));
    await store.insertScores([scoreRecord({ id: 'stale-clock', traceId: T2, name: 'n', timeMs: BASE - 1_000_000 })]);
    await store.insertScores([scoreRecord({ id: 'orphan', traceId: 'f'.repeat(32), name: 'n', timeMs: BASE })]);
    await store.prune(BASE + 5_000);
    expect((await store.getTrace(T2))!.scores.map((x) => x.id)).toEqual(['stale-clock']);
  });

  it('returns a trace of very large spans only up to a bound of bytes, the first span always', async () => {
    // Bytes, not characters: 'é' is two of them in the stored UTF-8.
    const big = 'é'.repeat(8.5 * 1024 * 1024);
    const spans = Array.from({ length: 3 }, (_, i) => spanRecord({ traceId: T1, name: `big${i}`, startMs: BASE + i, endMs: BASE + i + 1, attrs: { payload: big } }));
    await store.insertSpans(spans);
    const tree = (await store.getTrace(T1))!;
    // 17 MB, then 17 more starting below the 32 MB bound; the third would start past it.
    expect(tree.roots.map((r) => r.name)).toEqual(['big0', 'big1']);
    expect(tree.summary.spanCount).toBe(3);
  });

  it('returns a bounded number of scores with a trace', async () => {
    await store.insertSpans(chatTrace(T1, BASE));
    const many = Array.from({ length: 1500 }, (_, i) => scoreRecord({ id: `s${i}`, traceId: T1, name: 'n', value: i, timeMs: BASE + i }));
    await store.insertScores(many);
    expect((await store.getTrace(T1))!.scores).toHaveLength(1000);
  });

  it('opens a file with better-sqlite3, creating its folder, and keeps data across opens', async () => {
    const path = join(dir, 'deep', 'traces.db');
    const s1 = await openSqliteStore({ path });
    await s1.insertSpans(chatTrace(T1, BASE));
    await s1.close();
    expect(existsSync(path)).toBe(true);
    const s2 = await openSqliteStore({ path });
    expect((await s2.listTraces()).traces).toHaveLength(1);
    await s2.close();
  });

  it('finds better-sqlite3 from the app when bundled into a CommonJS file without import.meta.url', { timeout: 30_000 }, async () => {
    const outfile = join(dir, 'bundled-app.cjs');
    const db = join(dir, 'bundled.db');
    await bundleApp(outfile, `openSqliteStore({ path: ${JSON.stringify(db)} }).then(async (s) => { console.log('opened'); await s.close(); }, (e) => { console.log(String(e)); process.exitCode = 1; });`);
    // Run from the app's folder (here the repository, where better-sqlite3 is installed).
    const child = spawnSync(process.execPath, [outfile], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
    expect(child.stdout.trim()).toBe('opened');
    expect(existsSync(db)).toBe(true);
  });

  it('says when better-sqlite3 is installed without its native build (an install script not allowed to run)', { timeout: 30_000 }, async () => {
    // An app whose better-sqlite3 has its JavaScript but no build/ folder.
    const app = join(dir, 'unbuilt-app');
    for (const pkg of ['better-sqlite3', 'bindings', 'file-uri-to-path']) {
      cpSync(join(ROOT, 'node_modules', pkg), join(app, 'node_modules', pkg), { recursive: true, filter: (src) => !src.includes(`${pkg}/build`) && !src.includes(`${pkg}/deps`) && !src.includes(`${pkg}/src`) });
    }
    const outfile = join(app, 'bundled-app.cjs');
    await bundleApp(outfile, `openSqliteStore({ path: 'x.db' }).then(() => console.log('opened'), (e) => console.log(e.message));`);
    const child = spawnSync(process.execPath, [outfile], { cwd: app, encoding: 'utf8', timeout: 20_000 });
    expect(child.stdout.trim()).toMatch(
      /^\[edgetrace\] openSqliteStore\(\): better-sqlite3 is installed but its native module did not load: its install script did not run \(allow it, as npm 12 asks in package\.json's "allowScripts", then `npm rebuild better-sqlite3`\), or it was built for another Node version \(`npm rebuild better-sqlite3`\)\. Could not locate the bindings file\.$/,
    );
  });

  it('names the file when it cannot be used: a folder, a file that is no database', async () => {
    await expect(openSqliteStore({ path: dir })).rejects.toThrow(`openSqliteStore(): cannot open the database at ${JSON.stringify(dir)}: unable to open database file`);
    const notDb = join(dir, 'notes.txt');
    writeFileSync(notDb, 'plain text, long enough to be read as a page header by SQLite '.repeat(4));
    await expect(openSqliteStore({ path: notDb })).rejects.toThrow(`cannot open the database at ${JSON.stringify(notDb)}: file is not a database`);
  });

  it('stores a lone surrogate in its columns as U+FFFD, so the filters find the text', async () => {
    const db = openDatabase();
    const own = createSqliteStore(db);
    try {
      const span = spanRecord({ traceId: T1, name: 'na\u0000me\ud800x', attrs: { 'user.id': 'u\udfff1', 'session.id': 's\ud83d' } });
      await own.insertSpans([span]);
      // SQLite's own reading of the column: valid UTF-8 (hex of U+FFFD is EFBFBD).
      const hex = db.prepare('SELECT hex(name) AS h FROM spans').get() as { h: string };
      expect(hex.h).toBe('6E61006D65EFBFBD78');
      const { traces } = await own.listTraces({ userId: 'u\ufffd1', sessionId: 's\ufffd', name: 'na\u0000me\ufffdx' });
      expect(traces.map((t) => t.name)).toEqual(['na\u0000me\ufffdx']);
      expect((await own.getTrace(T1))!.roots[0]!.name).toBe('na\u0000me\ufffdx');
      await own.insertScores([scoreRecord({ traceId: T1, id: 'sc\ud800' })]);
      expect((await own.getTrace(T1))!.scores).toHaveLength(1);
    } finally {
      await own.close();
    }
  });

  it('refuses a database from a newer schema', () => {
    const db = openDatabase();
    db.exec('PRAGMA user_version = 99');
    expect(() => createSqliteStore(db)).toThrow(/schema version 99/);
  });

  it('rolls back a failed batch entirely', async () => {
    const spans = chatTrace(T1, BASE);
    // A record JSON.stringify cannot handle fails the whole batch.
    const bad = spanRecord({ traceId: T1, attrs: { n: 1 } });
    (bad.attrs as Record<string, unknown>).big = BigInt(1);
    await expect(store.insertSpans([...spans, bad])).rejects.toThrow();
    expect((await store.listTraces()).traces).toHaveLength(0);
    expect(await store.insertSpans(spans)).toBe(3);
    // The resources written by the failed batch were rolled back too, and are written again.
    const tree = (await store.getTrace(T1))!;
    expect(tree.roots[0]!.resource.attrs['service.name']).toBe('web');
    expect(tree.roots[0]!.children[0]!.resource).toEqual({ attrs: { 'service.name': 'api' }, scope: { name: 'edgetrace' } });
  });
});

describe('the SQLite store: group commit', () => {
  it('writes batches that arrive together in one transaction, and isolates a bad one', async () => {
    const a = chatTrace(T1, BASE);
    const b = chatTrace(T2, BASE);
    const bad = spanRecord({ traceId: T3 });
    (bad.attrs as Record<string, unknown>).big = BigInt(1);
    const results = await Promise.allSettled([store.insertSpans(a), store.insertSpans([bad]), store.insertSpans(b), store.insertSpans(a)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect((results[0] as PromiseFulfilledResult<number>).value).toBe(3);
    expect((results[3] as PromiseFulfilledResult<number>).value).toBe(0);
    expect((await store.listTraces()).traces.map((t) => t.traceId).sort()).toEqual([T1, T2]);
  });

  it('fails writes fast while another connection holds the write lock, and writes again once it lets go', async () => {
    const file = join(dir, 'busy.db');
    const db = openDatabase(file);
    const s = createSqliteStore(db);
    const other = openDatabase(file);
    const exec = db.exec.bind(db);
    const begun: string[] = [];
    db.exec = (sql: string) => {
      if (/^BEGIN/.test(sql)) begun.push(sql);
      return exec(sql);
    };
    try {
      await s.insertSpans(chatTrace(T1, BASE));
      other.exec('BEGIN IMMEDIATE');
      begun.length = 0;
      const started = Date.now();
      const results = await Promise.allSettled([T2, T3].map((t) => s.insertSpans(chatTrace(t, BASE))));
      const waitedMs = Date.now() - started;
      other.exec('ROLLBACK');
      // A busy database is no batch's fault: both fail together, after one short wait (not
      // better-sqlite3's 5 s, once per batch, with the server standing still).
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
      expect(begun).toEqual(['BEGIN IMMEDIATE']);
      // SQLite's words, and what they usually mean here.
      expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/database is locked: another process may be using \S*busy\.db \(a second collector on the same file\?\)/);
      expect(waitedMs).toBeLessThan(2_000);
      expect(await s.insertSpans(chatTrace(T2, BASE))).toBe(3);
    } finally {
      other.close();
      await s.close();
    }
  });

  it('commits what is queued when closed', async () => {
    const path = join(dir, 'close.db');
    const s = await openSqliteStore({ path });
    const pending = s.insertSpans(chatTrace(T1, BASE));
    await s.close();
    expect(await pending).toBe(3);
    const again = await openSqliteStore({ path });
    expect((await again.listTraces()).traces).toHaveLength(1);
    await again.close();
  });
});

describe('buildTree', () => {
  type TreeNode = ReturnType<typeof buildTree>[number];
  /** Nodes from `node` down its first children. */
  const chainLength = (node: TreeNode): number => {
    let n = 0;
    for (let c: TreeNode | undefined = node; c; c = c.children[0]) n++;
    return n;
  };

  it('makes orphans and parent cycles roots, with every span once', () => {
    const a = spanRecord({ traceId: T1, spanId: 'a'.repeat(16), parentId: 'b'.repeat(16), startMs: 1 });
    const b = spanRecord({ traceId: T1, spanId: 'b'.repeat(16), parentId: 'a'.repeat(16), startMs: 2 });
    const orphan = spanRecord({ traceId: T1, spanId: 'c'.repeat(16), parentId: 'f'.repeat(16), startMs: 3 });
    const self = spanRecord({ traceId: T1, spanId: 'd'.repeat(16), parentId: 'd'.repeat(16), startMs: 4 });
    const roots = buildTree([a, b, orphan, self]);
    const seen: string[] = [];
    const walk = (n: (typeof roots)[number]) => {
      seen.push(n.spanId);
      n.children.forEach(walk);
    };
    roots.forEach(walk);
    expect(seen.sort()).toEqual([a.spanId, b.spanId, orphan.spanId, self.spanId].sort());
    expect(() => JSON.stringify(roots)).not.toThrow();
  });

  it('cuts a chain of ten thousand spans into roots no deeper than MAX_TREE_DEPTH, which JSON can write', () => {
    const chain = Array.from({ length: 10_000 }, (_, i) =>
      spanRecord({ traceId: T1, spanId: (i + 1).toString(16).padStart(16, '0'), parentId: i ? i.toString(16).padStart(16, '0') : undefined, startMs: i }),
    );
    const roots = buildTree(chain);
    expect(roots).toHaveLength(Math.ceil(10_000 / MAX_TREE_DEPTH));
    expect(roots.map(chainLength).slice(0, 2)).toEqual([MAX_TREE_DEPTH, MAX_TREE_DEPTH]);
    // Each cut keeps its parent's id: the chain reads on from where the last root ended.
    expect(roots[1]!.parentId).toBe(MAX_TREE_DEPTH.toString(16).padStart(16, '0'));
    expect(JSON.stringify(roots).length).toBeGreaterThan(0);
  });

  it('cuts a parent cycle longer than MAX_TREE_DEPTH the same way, every cut root keeping its children', () => {
    const n = 600;
    const id = (i: number) => (i + 1).toString(16).padStart(16, '0');
    const cycle = Array.from({ length: n }, (_, i) => spanRecord({ traceId: T1, spanId: id(i), parentId: id((i + n - 1) % n), startMs: i }));
    const roots = buildTree(cycle);
    expect(roots.map(chainLength)).toEqual([MAX_TREE_DEPTH, MAX_TREE_DEPTH, n - 2 * MAX_TREE_DEPTH]);
  });
});
