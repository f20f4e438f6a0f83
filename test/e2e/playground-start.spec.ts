import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, expect } from '@playwright/test';
import { DEFAULT_PORT } from '../../demo/server/playground';

// `npm start` after its build step: `node demo/start.js` prints one URL, serves the page, the
// service worker and the collector there, moves to a free port when its port is taken, and stops
// cleanly on Ctrl-C (SIGINT).

test.setTimeout(60_000);

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * The local addresses `pid` listens on for TCP, from /proc: the socket inodes among its open files,
 * looked up in the kernel's tables. Hex as the kernel writes them: `0100007F:1F90` is 127.0.0.1:8080.
 */
const listeningAddresses = async (pid: number): Promise<string[]> => {
  const inodes = new Set<string>();
  for (const fd of await readdir(`/proc/${pid}/fd`)) {
    const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m) inodes.add(m[1]!);
  }
  const out: string[] = [];
  for (const table of ['tcp', 'tcp6']) {
    const rows = (await readFile(`/proc/${pid}/net/${table}`, 'utf8')).trim().split('\n').slice(1);
    for (const row of rows) {
      const f = row.trim().split(/\s+/);
      // f[1] local address, f[3] state (0A: LISTEN), f[9] inode.
      if (f[3] === '0A' && inodes.has(f[9]!)) out.push(f[1]!);
    }
  }
  return out;
};

/** This process's environment without what would make the playground forward, or choose its port. */
const cleanEnv = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(LANGFUSE_|OTEL_|TRACING_|PORT$)/.test(k)) env[k] = v;
  return env;
};

test('start.js prints one URL, answers on it, and exits 0 on SIGINT', async () => {
  // The default port, taken (by this test, or already by something else): the playground moves
  // to a free one.
  const taken = DEFAULT_PORT;
  const blocker = createServer();
  await new Promise<void>((resolve) => {
    blocker.once('error', () => resolve());
    blocker.listen(taken, '127.0.0.1', resolve);
  });
  const dir = await mkdtemp(join(tmpdir(), 'edgetrace-start-'));
  const child = spawn(process.execPath, ['demo/start.js'], {
    cwd: ROOT,
    env: { ...cleanEnv(), EDGETRACE_DB: join(dir, 'traces.db') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await expect.poll(() => out, { timeout: 30_000 }).toMatch(/Ctrl-C stops it/);
    const urls = out.match(/http:\/\/[^\s]+/g) ?? [];
    expect(urls).toHaveLength(1);
    const url = urls[0]!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(url).not.toContain(`:${taken}/`);
    expect(out).toContain(`port ${taken} is taken`);

    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<title>edgetrace playground</title>');
    const worker = await fetch(new URL('/edgetrace-sw.js', url));
    expect(worker.status).toBe(200);
    expect(worker.headers.get('content-type')).toContain('javascript');
    expect(await (await fetch(new URL('/health', url))).json()).toMatchObject({ ok: true, store: true });
    expect((await (await fetch(new URL('/api/traces', url))).json()).traces).toEqual([]);

    // The query API is open without a token because only this machine can reach it: nothing the
    // process runs (Vite's module loader included) may listen on another interface.
    const listening = await listeningAddresses(child.pid!);
    expect(listening.length).toBeGreaterThan(0);
    expect(listening.filter((a) => !/^(0100007F|00000000000000000000000001000000):/.test(a))).toEqual([]);

    child.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('stopped: servers closed, database closed.');
    await expect(fetch(url)).rejects.toThrow();
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    blocker.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('start.js refuses a PORT that is taken, naming it, rather than move to another origin', async () => {
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = (blocker.address() as AddressInfo).port;
  const dir = await mkdtemp(join(tmpdir(), 'edgetrace-port-'));
  const child = spawn(process.execPath, ['demo/start.js'], {
    cwd: ROOT,
    env: { ...cleanEnv(), PORT: String(taken), EDGETRACE_DB: join(dir, 'traces.db') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  try {
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).not.toBe(0);
    expect(out).toContain(`port ${taken} (PORT) is taken`);
    expect(out).not.toMatch(/http:\/\/127\.0\.0\.1:\d+\//);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    blocker.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('on close, the model server hands over the spans an outage of the forward target held back', async () => {
  // An OTLP receiver standing in for Langfuse: down (503) until the test lets it answer.
  const { createServer: createHttpServer } = await import('node:http');
  const { startPlayground } = await import('../../demo/server/playground');
  let up = false;
  const taken: string[] = [];
  const rx = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!up) return void res.writeHead(503, { 'retry-after': '1' }).end();
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { resourceSpans?: { scopeSpans: { spans: { name: string }[] }[] }[] };
      for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans) for (const s of ss.spans) taken.push(s.name);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((done) => rx.listen(0, '127.0.0.1', done));
  const dir = await mkdtemp(join(tmpdir(), 'edgetrace-close-'));
  const endpoint = `http://127.0.0.1:${(rx.address() as AddressInfo).port}`;
  const pg = await startPlayground({ port: 0, dbPath: join(dir, 'traces.db'), env: { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }, pace: 0.05, log: () => undefined });
  try {
    const res = await fetch(new URL('/v1/chat/completions', pg.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'mock-mini', messages: [{ role: 'user', content: 'hello' }] }),
    });
    expect(res.status).toBe(200);
    await res.text();
    // The request's export reached the collector, whose forward failed: nothing taken yet.
    await new Promise((r) => setTimeout(r, 500));
    expect(taken).toEqual([]);
    up = true;
  } finally {
    await pg.close();
    await new Promise<void>((done) => rx.close(() => done()));
    await rm(dir, { recursive: true, force: true });
  }
  expect(taken).toEqual(expect.arrayContaining(['POST /v1/chat/completions', 'prefill', 'decode']));
});
