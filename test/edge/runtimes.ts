import { spawn, type ChildProcess } from 'node:child_process';
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import type { AppEnv } from './fixtures/app';

// Starts the fixture app (./fixtures) in a real edge runtime from npm and gives the tests one
// way to send it requests, whatever the runtime.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = join(ROOT, 'test/edge/fixtures');
const BIN = join(ROOT, 'node_modules/.bin');

/** A running app. */
export interface RunningApp {
  /** Sends a request to the app; resolves when its body has been read in full. */
  request(path: string, init?: RequestInit): Promise<{ status: number; headers: Headers; text: string }>;
  /** Resolves when everything the request handed to waitUntil has settled (no-op where there is none). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** One runtime: how to bundle the app for it and how to start it. */
export interface Runtime {
  name: string;
  /** Whether the runtime gives the handler a waitUntil (else the middleware awaits its export). */
  hasWaitUntil: boolean;
  start(env: AppEnv): Promise<RunningApp>;
}

const tmp = mkdtempSync(join(tmpdir(), 'edgetrace-edge-'));
/** Removes the bundles. */
export const cleanUp = (): void => rmSync(tmp, { recursive: true, force: true });

// edge-runtime's VM has no module loader: point node:async_hooks at the global the test provides.
const alsFromGlobal: Plugin = {
  name: 'als-from-global',
  setup(b) {
    b.onResolve({ filter: /^node:async_hooks$/ }, () => ({ path: join(FIXTURES, 'edge-runtime-als.ts') }));
  },
};

export const bundle = async (entry: string, format: 'esm' | 'iife', plugins: Plugin[] = []): Promise<string> => {
  const outfile = join(tmp, `${entry}.${format === 'esm' ? 'mjs' : 'js'}`);
  await build({
    entryPoints: [join(FIXTURES, `${entry}.ts`)],
    bundle: true,
    format,
    // The browser build of nanoid uses crypto.getRandomValues, which every one of these has.
    platform: 'browser',
    target: 'es2022',
    external: ['node:*'],
    plugins,
    outfile,
    logLevel: 'error',
  });
  return outfile;
};

/** Reads a response the same way everywhere: status, headers and the whole body as text. */
const readAll = async (res: Response) => ({ status: res.status, headers: res.headers, text: await res.text() });

/** A child process that prints `{"port": n}` once it listens. */
const spawnServer = (cmd: string, args: string[]): Promise<{ child: ChildProcess; port: number }> =>
  new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: tmp, env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`${cmd} did not start in time: ${out} ${err}`));
    }, 30_000);
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, port: Number(m[1]) });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code}: ${out} ${err}`));
    });
  });

const overHttp = (child: ChildProcess, port: number): RunningApp => ({
  request: async (path, init) => readAll(await fetch(`http://127.0.0.1:${port}${path}`, init)),
  settled: async () => undefined,
  close: async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  },
});

export const RUNTIMES: Runtime[] = [
  {
    name: 'workerd',
    hasWaitUntil: true,
    async start(env) {
      const { Miniflare } = await import('miniflare');
      const scriptPath = await bundle('workerd', 'esm');
      const mf = new Miniflare({
        // The bundle as a file, as an app's test setup gives it: Miniflare then scans it for
        // imports, and refuses a bundle with an import() of a module named in a variable.
        modules: true,
        scriptPath,
        modulesRoot: tmp,
        compatibilityDate: '2025-09-01',
        compatibilityFlags: ['nodejs_compat'],
        bindings: { ...env },
      });
      await mf.ready;
      return {
        // miniflare's dispatchFetch returns once the Worker answered; waitUntil work goes on in workerd.
        request: async (path, init) => {
          const res = await mf.dispatchFetch(`http://localhost${path}`, init as never);
          return { status: res.status, headers: new Headers([...res.headers] as [string, string][]), text: await res.text() };
        },
        settled: async () => undefined,
        close: () => mf.dispose(),
      };
    },
  },
  {
    name: 'edge-runtime',
    hasWaitUntil: true,
    async start(env) {
      const { EdgeRuntime } = await import('edge-runtime');
      const code = readFileSync(await bundle('edge-runtime', 'iife', [alsFromGlobal]), 'utf8');
      const runtime = new EdgeRuntime({
        initialCode: `globalThis.__EDGE_ENV = ${JSON.stringify(env)};\n${code}`,
        extend: (context) => Object.assign(context, { AsyncLocalStorage }),
      });
      const pending: Promise<unknown>[] = [];
      return {
        request: async (path, init) => {
          const res = await runtime.dispatchFetch(`http://localhost${path}`, init);
          pending.push(res.waitUntil());
          return readAll(res);
        },
        settled: async () => {
          await Promise.all(pending.splice(0));
        },
        close: async () => undefined,
      };
    },
  },
  {
    name: 'deno',
    hasWaitUntil: false,
    async start(env) {
      const file = await bundle('deno', 'esm');
      const { child, port } = await spawnServer(join(BIN, 'deno'), ['run', '--allow-net', '--no-prompt', '--no-config', file, JSON.stringify(env)]);
      return overHttp(child, port);
    },
  },
  {
    name: 'bun',
    hasWaitUntil: false,
    async start(env) {
      const file = await bundle('bun', 'esm');
      const { child, port } = await spawnServer(join(BIN, 'bun'), ['run', file, JSON.stringify(env)]);
      return overHttp(child, port);
    },
  },
];
