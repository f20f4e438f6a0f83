import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer as createViteServer, type ViteDevServer } from 'vite';
import { createCollector, createOtlpExporter, fromEnv, openSqliteStore, toNodeListener } from '../../src/server/index';
import type { Collector, EnvExporter } from '../../src/server/index';
import { createMockModel } from './mockModel';
import { within } from '../../src/lib/within';

/**
 * The playground behind `npm start`: one Node process, one URL, serving
 * - the collector (`createCollector` with the SQLite store): `/v1/traces`, `/v1/scores`, and the
 *   query API the viewer reads (`/api/traces`, `/api/traces/<id>`, `/api/stats`);
 * - the mock model server (`/v1/chat/completions`, `/v1/models`), traced with `withTracing`;
 * - the service worker, `dist/edgetrace-sw.js`, at `/edgetrace-sw.js`;
 * - the demo page through Vite in middleware mode, so the TypeScript in demo/ and src/ compiles on
 *   the fly (and edits reload the page);
 * - `/demo/state`: the "offline" switch of the delivery panel.
 *
 * It listens on 127.0.0.1 only: the query API is open (`readToken: false`), which is fine for a
 * page on your own machine and nowhere else.
 */

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB_ROOT = join(REPO_ROOT, 'demo/web');
const SW_FILE = join(REPO_ROOT, 'dist/edgetrace-sw.js');

/** Default database file, under the git-ignored `.edgetrace/`. */
export const DEFAULT_PLAYGROUND_DB = '.edgetrace/playground.db';
/** Default port; another free one is picked when it is taken. */
export const DEFAULT_PORT = 5173;
const HOST = '127.0.0.1';

/** Options of {@link startPlayground}. Every field is optional. */
export interface PlaygroundOptions {
  /** Port to listen on. Default 5173; 0 picks a free one. */
  port?: number;
  /** When `port` is taken, listen on a free one instead of failing. Default true. */
  fallbackPort?: boolean;
  /** SQLite file for the collector, relative to the repository root. Default `.edgetrace/playground.db`. */
  dbPath?: string;
  /**
   * Environment for forwarding: with `LANGFUSE_PUBLIC_KEY` and `LANGFUSE_SECRET_KEY` (and
   * `LANGFUSE_BASE_URL`) the collector also sends to Langfuse; with `OTEL_EXPORTER_OTLP_ENDPOINT`
   * to an OTLP receiver. Default `process.env`.
   */
  env?: Record<string, string | undefined>;
  /** Multiplies the mock model's delays (1 is its own pace). Default 1. */
  pace?: number;
  /** Where start-up lines and errors go. Default `console.log`. */
  log?: (line: string) => void;
}

/** A running playground. */
export interface Playground {
  /** `http://127.0.0.1:<port>/`. */
  readonly url: string;
  readonly port: number;
  /** Absolute path of the SQLite file. */
  readonly dbPath: string;
  readonly collector: Collector;
  /** Where the collector forwards besides its store (URLs, never keys). */
  readonly forwarding: readonly string[];
  /** Stops everything: the HTTP server, streams in flight, Vite, pending exports, the database. */
  close(): Promise<void>;
}

/** The state behind `/demo/state`. */
interface DemoState {
  /** The delivery panel's switch: ingest requests from browsers get their connection dropped. */
  offline: boolean;
}

/** Forward targets from the environment: Langfuse when both keys are set, OTLP when an endpoint is. */
const forwardTargets = (env: Record<string, string | undefined>, log: (line: string) => void): EnvExporter[] => {
  const out: EnvExporter[] = [];
  const has = (name: string): boolean => typeof env[name] === 'string' && env[name]!.trim() !== '';
  if (has('LANGFUSE_PUBLIC_KEY') && has('LANGFUSE_SECRET_KEY')) out.push(fromEnv({ ...env, TRACING_MODE: 'langfuse' }));
  else if (has('LANGFUSE_PUBLIC_KEY') || has('LANGFUSE_SECRET_KEY')) {
    log('  note        Langfuse needs both LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY; not forwarding to Langfuse.');
  }
  if (has('OTEL_EXPORTER_OTLP_ENDPOINT') || has('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')) out.push(fromEnv({ ...env, TRACING_MODE: 'otlp' }));
  return out;
};

const readJsonBody = async (req: IncomingMessage): Promise<unknown> => {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > 10_000) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as unknown;
};

const sendJson = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
};

const listen = (server: Server, port: number): Promise<void> =>
  new Promise((resolveListen, reject) => {
    const onError = (error: Error): void => {
      server.off('listening', onListening);
      reject(error);
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolveListen();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, HOST);
  });

/**
 * Starts the playground and resolves once it answers on its URL. Tests start one per spec on a
 * free port with a temporary database: `startPlayground({ port: 0, dbPath })`.
 */
export const startPlayground = async (opts: PlaygroundOptions = {}): Promise<Playground> => {
  const log = opts.log ?? ((line: string) => console.log(line));
  const env = opts.env ?? process.env;
  const port = opts.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new TypeError(`startPlayground(): "port" must be a port number, got ${String(opts.port)}.`);
  const dbPath = resolve(REPO_ROOT, opts.dbPath ?? DEFAULT_PLAYGROUND_DB);
  const state: DemoState = { offline: false };
  const errorLine = (where: string) => (error: unknown) => log(`  ${where}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);

  try {
    await readFile(SW_FILE);
  } catch {
    throw new Error(`The service worker ${relative(REPO_ROOT, SW_FILE)} is missing: run \`npm run build\` (or \`npx vite build --mode sw\`) first.`);
  }

  const forward = forwardTargets(env, log);
  const store = await openSqliteStore({ path: dbPath });
  // The query API is open: the page reads it without a token, and the server listens on
  // loopback only. Anything reachable from other machines must use a readToken instead.
  const collector = createCollector({ store, forward, readToken: false, onError: errorLine('collector') });
  const collectorListener = toNodeListener(collector.fetch, { onError: errorLine('collector') });

  // The mock model's spans go to the same collector, in-process: the OTLP exporter a real
  // backend would use, with a fetch that calls the collector's handler instead of the network.
  const model = createMockModel({
    pace: opts.pace,
    exporter: createOtlpExporter({
      url: 'http://playground.internal/v1/traces',
      fetch: (input, init) => collector.fetch(new Request(input, init)),
    }),
  });
  // A stream that Ctrl-C cuts fails with the shutdown's own error: not one to print on the way out.
  const modelError = errorLine('mock model');
  const modelListener = toNodeListener(model.fetch, { onError: (error) => closing || modelError(error) });

  const httpServer = createHttpServer();
  let vite: ViteDevServer;
  try {
    vite = await createViteServer({
      configFile: false,
      root: WEB_ROOT,
      appType: 'spa',
      logLevel: 'warn',
      clearScreen: false,
      cacheDir: join(REPO_ROOT, 'node_modules/.vite/playground'),
      server: { middlewareMode: true, hmr: { server: httpServer }, fs: { allow: [REPO_ROOT] } },
      // The SDK's browser dependencies are pre-bundled once at start, so the first page load does
      // not discover them and reload itself.
      optimizeDeps: { include: ['nanoid', 'idb', 'comlink'], noDiscovery: true },
    });
  } catch (error) {
    await collector.close();
    throw error;
  }

  const serveWorker = async (path: string, res: ServerResponse): Promise<void> => {
    const file = path.endsWith('.map') ? `${SW_FILE}.map` : SW_FILE;
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': path.endsWith('.map') ? 'application/json' : 'text/javascript; charset=utf-8', 'cache-control': 'no-cache' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`${relative(REPO_ROOT, file)} not found: run \`npm run build\` first.`);
    }
  };

  const demoState = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method === 'POST') {
      let body: unknown;
      try {
        body = await readJsonBody(req);
      } catch {
        sendJson(res, 400, { error: 'send JSON like {"offline": true}' });
        return;
      }
      const offline = (body as { offline?: unknown } | null)?.offline;
      if (typeof offline !== 'boolean') {
        sendJson(res, 400, { error: '"offline" must be true or false' });
        return;
      }
      state.offline = offline;
    } else if (req.method !== 'GET') {
      sendJson(res, 405, { error: 'use GET or POST' });
      return;
    }
    sendJson(res, 200, {
      offline: state.offline,
      forwarding: forward.map((f) => f.target),
      store: relative(REPO_ROOT, dbPath).startsWith('..') ? dbPath : relative(REPO_ROOT, dbPath),
    });
  };

  httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (path === '/v1/traces' || path === '/v1/scores') {
      // The offline switch: the connection is dropped before any answer, as a dead network
      // would. The worker sees a network error, keeps the batch and retries with backoff.
      if (state.offline) {
        req.socket.destroy();
        return;
      }
      collectorListener(req, res);
      return;
    }
    if (path.startsWith('/api/') || path === '/health') {
      collectorListener(req, res);
      return;
    }
    if (path === '/v1/chat/completions' || path === '/v1/models') {
      modelListener(req, res);
      return;
    }
    if (path === '/edgetrace-sw.js' || path === '/edgetrace-sw.js.map') {
      serveWorker(path, res).catch(errorLine('service worker'));
      return;
    }
    if (path === '/demo/state') {
      demoState(req, res).catch(errorLine('demo state'));
      return;
    }
    vite.middlewares(req, res, () => {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`Nothing at ${path}`);
    });
  });

  try {
    try {
      await listen(httpServer, port);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0 || opts.fallbackPort === false) throw error;
      log(`  port ${port} is taken; using a free one.`);
      await listen(httpServer, 0);
    }
  } catch (error) {
    await vite.close();
    await collector.close();
    throw error;
  }
  const actualPort = (httpServer.address() as AddressInfo).port;
  const url = `http://${HOST}:${actualPort}/`;

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      model.close();
      const closed = new Promise<void>((done) => httpServer.close(() => done()));
      httpServer.closeAllConnections();
      await vite.close();
      // A connection that does not close within a few seconds must not hold up the exit.
      await within(closed, 3000, () => undefined);
      await modelListener.drain();
      // The model server's spans that an export could not hand over yet (the collector answered
      // 503 while Langfuse was down) wait for the next request's flush: there is none now.
      await within(model.tracer.shutdown(), 5000, () => undefined);
      await collectorListener.drain();
      await collector.close();
    })());

  return {
    url,
    port: actualPort,
    dbPath: isAbsolute(dbPath) ? dbPath : resolve(dbPath),
    collector,
    forwarding: forward.map((f) => f.target),
    close,
  };
};
