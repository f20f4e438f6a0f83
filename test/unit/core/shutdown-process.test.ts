import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';

// A script that awaits shutdown() must get its answer even when the exporter never answers and
// holds nothing open: the deadline has to keep the process alive, or Node exits with the await
// unsettled (exit code 13) and the script's last lines never run. Only a real process shows it.

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'edgetrace-shutdown-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = async (source: string): Promise<{ status: number | null; stdout: string; stderr: string }> => {
  const outfile = join(dir, `script-${Math.random().toString(36).slice(2)}.mjs`);
  await build({ stdin: { contents: source, resolveDir: ROOT, loader: 'ts' }, bundle: true, format: 'esm', platform: 'node', outfile, logLevel: 'error' });
  const child = spawnSync(process.execPath, [outfile], { encoding: 'utf8', timeout: 20_000 });
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
};

/**
 * Script text for an exporter that answers after 50 ms, as a request over the network would (the
 * process must stay for it), and prints `exported` with the given field of each record.
 */
const lateExporter = (field: 'name' | 'kind'): string => `{
  export: (records) =>
    new Promise((resolve) => setTimeout(() => {
      console.log('exported ' + records.map((r) => r.${field}).join(','));
      resolve({ ok: true });
    }, 50)),
}`;

/**
 * Script text that serves `listener` on loopback, makes one request, then closes the server,
 * awaits `listener.drain()`, prints `drained` and exits.
 */
const ONE_REQUEST_THEN_DRAIN = `
  const server = createServer(listener).listen(0, '127.0.0.1', async () => {
    await (await fetch('http://127.0.0.1:' + server.address().port + '/', { headers: { connection: 'close' } })).text();
    server.close(() => void listener.drain().then(() => {
      console.log('drained');
      process.exit(0);
    }));
  });`;

/** What a script printed as `exported a,b` lines before it printed `marker` (which it must print), sorted. */
const exportedBefore = (stdout: string, marker: string): string[] => {
  expect(stdout).toContain(marker);
  const sent = stdout.slice(0, stdout.indexOf(marker));
  return [...sent.matchAll(/exported (.*)/g)].flatMap((m) => m[1]!.split(',')).sort();
};

describe('shutdown() in a process with nothing else pending', () => {
  // Bundling and a child process take seconds on a loaded machine.
  it('answers after batch.exportTimeoutMs when the exporter never does', { timeout: 30_000 }, async () => {
    const { status, stdout } = await run(`
      import { createTracer } from './src/core/tracer';
      const tracer = createTracer({
        exporter: { export: () => new Promise(() => undefined) },
        batch: { exportTimeoutMs: 300 },
      });
      tracer.withTrace('job', () => undefined);
      const started = Date.now();
      await tracer.shutdown();
      console.log('after shutdown ' + (Date.now() - started));
    `);
    expect(status).toBe(0);
    const waited = Number(/after shutdown (\d+)/.exec(stdout)?.[1]);
    expect(waited).toBeGreaterThanOrEqual(250);
  });

  it('answers after batch.exportTimeoutMs when a processor hangs in forceFlush', { timeout: 30_000 }, async () => {
    const { status, stdout } = await run(`
      import { createTracer } from './src/core/tracer';
      const tracer = createTracer({
        processors: [{ forceFlush: () => new Promise(() => undefined) }],
        batch: { exportTimeoutMs: 300 },
      });
      await tracer.flush();
      console.log('after flush');
    `);
    expect(status).toBe(0);
    expect(stdout).toContain('after flush');
  });
});

describe('init() in a script that simply ends', () => {
  it('sends what the global tracer holds before the process exits', { timeout: 30_000 }, async () => {
    // The exporter answers on a timer, as a request over the network would: the process must stay
    // for it, and end once it has answered.
    const { status, stdout } = await run(`
      import { init, getTracer } from './src/core/global';
      init({
        exporter: ${lateExporter('name')},
        // Longer than the script lives: only the exit flush can send it.
        batch: { delayMs: 60_000 },
      });
      getTracer().withTrace('job', (t) => t.span('step', () => undefined));
      console.log('script done');
    `);
    expect(status).toBe(0);
    expect(stdout).toContain('script done\nexported ');
    expect(stdout.match(/exported (.*)/)?.[1]?.split(',').sort()).toEqual(['job', 'step']);
  });
});

describe('init() in a script that ends with its trace still open', () => {
  /** Script text: init() with an exporter that prints `exported <name>`, and ` unfinished` for such a span. */
  const INIT_PRINTING = `
    import { init, getTracer } from './src/core/global';
    init({ exporter: { export: async (records) => {
      for (const r of records) console.log('exported ' + r.name + (r.attrs['edgetrace.unfinished'] ? ' unfinished' : ''));
      return { ok: true };
    } } });`;

  it('sends that trace, and its open spans, as unfinished, and says so', { timeout: 30_000 }, async () => {
    const { status, stdout, stderr } = await run(`
      ${INIT_PRINTING}
      // Never finished: a script that forgot, or a stream object it never read.
      const run = getTracer().createTrace('job');
      run.startSpan('step');
      run.span('done', () => undefined);
      console.log('script done');
    `);
    expect(status).toBe(0);
    expect(stdout.match(/exported .*/g)?.sort()).toEqual(['exported done', 'exported job unfinished', 'exported step unfinished']);
    expect(stderr).toContain('1 trace(s) were still open as the process ended: sent as unfinished');
  });

  it("leaves a trace the app's own beforeExit work finishes to it", { timeout: 30_000 }, async () => {
    const { status, stdout, stderr } = await run(`
      ${INIT_PRINTING}
      const run = getTracer().createTrace('job');
      // A drain at exit, as a queue consumer has: its last job ends the trace after some work.
      process.once('beforeExit', () => setTimeout(() => run.finish(), 30));
    `);
    expect(status).toBe(0);
    expect(stdout.match(/exported .*/g)).toEqual(['exported job']);
    expect(stderr).not.toContain('still open');
  });
});

describe('withNodeTracing in a server that closes without drain()', () => {
  it('sends the last batch before the process exits', { timeout: 30_000 }, async () => {
    const { status, stdout } = await run(`
      import { createServer } from 'node:http';
      import { withNodeTracing } from './src/server/nodeTracing';
      const listener = withNodeTracing((req, res) => res.end('ok'), {
        exporter: ${lateExporter('kind')},
        // Longer than the server lives: only the exit flush can send it.
        batch: { delayMs: 60_000 },
      });
      const server = createServer(listener).listen(0, '127.0.0.1', async () => {
        const res = await fetch('http://127.0.0.1:' + server.address().port + '/', { headers: { connection: 'close' } });
        await res.text();
        server.close(() => console.log('closed'));
      });
    `);
    expect(status).toBe(0);
    expect(stdout).toContain('closed\nexported server');
  });
});

describe('withNodeTracing drain() before exit', () => {
  it('keeps the process until a span the request left open has ended and been sent', { timeout: 30_000 }, async () => {
    const { status, stdout } = await run(`
      import { createServer } from 'node:http';
      import { withNodeTracing } from './src/server/nodeTracing';
      import { requestSpan } from './src/server/scope';
      const listener = withNodeTracing(
        (req, res) => {
          requestSpan().startSpan('left-open');
          res.end('ok');
        },
        { exporter: { export: async (records) => (console.log('exported ' + records.map((r) => r.name).sort().join(',')), { ok: true }) } },
      );
      ${ONE_REQUEST_THEN_DRAIN}
    `);
    expect(status).toBe(0);
    // Both spans were sent (in one batch or two) before drain() resolved.
    expect(exportedBefore(stdout, 'drained')).toEqual(['GET', 'left-open']);
  });
});

describe('withNodeTracing drain() after closeAllConnections()', () => {
  it('sends the spans of the requests the close cut', { timeout: 30_000 }, async () => {
    const { status, stdout } = await run(`
      import { createServer } from 'node:http';
      import { withNodeTracing } from './src/server/nodeTracing';
      import { requestSpan } from './src/server/scope';
      const listener = withNodeTracing(
        (req, res) => {
          // Never answers: only the close ends it.
          requestSpan().startSpan('inner').end();
          console.log('arrived');
        },
        { exporter: { export: async (records) => (console.log('exported ' + records.map((r) => r.name).sort().join(',')), { ok: true }) } },
      );
      const server = createServer(listener).listen(0, '127.0.0.1', () => {
        fetch('http://127.0.0.1:' + server.address().port + '/').catch(() => undefined);
        setTimeout(() => {
          server.close(() => void listener.drain().then(() => {
            console.log('drained');
            process.exit(0);
          }));
          server.closeAllConnections();
        }, 300);
      });
    `);
    expect(status).toBe(0);
    expect(exportedBefore(stdout, 'drained')).toEqual(['GET', 'inner']);
  });
});

describe('toNodeListener drain() before exit', () => {
  it('keeps the process until a span the handler left open has ended and been sent', { timeout: 30_000 }, async () => {
    const { status, stdout } = await run(`
      import { createServer } from 'node:http';
      import { toNodeListener } from './src/server/node';
      import { withTracing } from './src/server/withTracing';
      import { requestSpan } from './src/server/scope';
      const listener = toNodeListener(
        withTracing(
          () => {
            requestSpan().startSpan('left-open');
            return new Response('ok');
          },
          { exporter: { export: async (records) => (console.log('exported ' + records.map((r) => r.name).sort().join(',')), { ok: true }) } },
        ),
      );
      ${ONE_REQUEST_THEN_DRAIN}
    `);
    expect(status).toBe(0);
    expect(exportedBefore(stdout, 'drained')).toEqual(['GET', 'left-open']);
  });
});

describe('a script whose receiver cannot be reached', () => {
  it('says so once, and at the end how many records it could not send', { timeout: 30_000 }, async () => {
    const { status, stderr } = await run(`
      import { init, getTracer } from './src/index';
      // Nothing listens on the discard port of the loopback.
      init({ endpoint: 'http://127.0.0.1:9/v1/traces', serviceName: 'job' });
      const t = getTracer().createTrace('nightly');
      t.span('step', () => undefined);
      t.score('quality', 1);
      t.finish();
    `);
    expect(status).toBe(0);
    expect(stderr.match(/an export failed and is kept to be sent again/g)).toHaveLength(1);
    expect(stderr).toMatch(/3 record\(s\) were not sent before the process ended: network error/);
  });
});
