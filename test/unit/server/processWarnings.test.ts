import { describe, it, expect, vi } from 'vitest';
import { init, stop } from '../../../src/core/global';
import { withNodeTracing } from '../../../src/server/nodeTracing';
import { withTracing } from '../../../src/server/withTracing';
import { recorder } from '../../helpers/recorder';

// What a server process is told once when its setup moves work outside requests elsewhere. A file
// of its own: each warning is said once per process.

const warnings = async (fn: () => Promise<void> | void): Promise<string[]> => {
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  try {
    await fn();
    return warn.mock.calls.map((c) => String(c[0]));
  } finally {
    warn.mockRestore();
  }
};

describe('a server process told about work outside requests', () => {
  it('says once when a second service’s wrapper takes getTracer() outside requests; a hot reload of the same one is quiet', async () => {
    const { exporter } = recorder();
    const said = await warnings(() => {
      withNodeTracing((_req, res) => res.end(), { exporter, serviceName: 'api' });
      withNodeTracing((_req, res) => res.end(), { exporter, serviceName: 'api' });
      withNodeTracing((_req, res) => res.end(), { exporter, serviceName: 'admin' });
      withNodeTracing((_req, res) => res.end(), { exporter, serviceName: 'api' });
    });
    expect(said).toEqual([
      `[edgetrace] a second server wrapper ("admin") was made after "api": getTracer() outside requests (background jobs, a shutdown hook's flush) now records with "admin"'s tracer. drain() each listener before exit.`,
    ]);
  });

  it('says once that init() beside a server wrapper keeps getTracer() outside requests apart from the requests', async () => {
    const { exporter } = recorder();
    const said = await warnings(async () => {
      init({ exporter });
      const handler = withTracing(() => new Response('ok'), { exporter });
      for (let i = 0; i < 2; i++) await (await handler(new Request('http://app.test/'), {}, { waitUntil: () => undefined })).text();
      await stop();
    });
    expect(said.filter((m) => m.includes('init() or setTracer() was called in a process that a server wrapper'))).toHaveLength(1);
  });
});

describe('a server process whose global tracer comes from setTracer()', () => {
  it('is told as init() is, since getTracer() outside requests is then that tracer', async () => {
    vi.resetModules();
    // A fresh copy of the modules: the warning above was said once for this file's copy.
    const [{ setTracer, getTracer }, { withTracing: wrap }, { createTracer }] = await Promise.all([
      import('../../../src/core/global'),
      import('../../../src/server/withTracing'),
      import('../../../src/core/tracer'),
    ]);
    const { exporter } = recorder();
    const mine = createTracer({ exporter });
    const said = await warnings(async () => {
      setTracer(mine);
      const handler = wrap(() => new Response('ok'), { exporter });
      await (await handler(new Request('http://app.test/'), {}, { waitUntil: () => undefined })).text();
    });
    expect(getTracer()).toBe(mine);
    setTracer(undefined);
    expect(said.filter((m) => m.includes('setTracer() was called'))).toHaveLength(1);
  });
});

describe('wrappers whose tracer waits for the environment', () => {
  it('say nothing of a second service when one wraps the other (a Hono middleware inside withTracing(app.fetch))', async () => {
    vi.resetModules();
    const { withTracing: wrap } = await import('../../../src/server/withTracing');
    const said = await warnings(async () => {
      const middleware = wrap((_request: Request, next: () => Promise<Response>) => next(), { waitUntil: (p) => void p });
      const app = wrap((request: Request) => middleware(request, async () => new Response('ok')), { waitUntil: (p) => void p });
      for (let i = 0; i < 2; i++) await (await app(new Request('http://app.test/'))).text();
    });
    expect(said.filter((m) => m.includes('second server wrapper'))).toEqual([]);
  });
});

/**
 * A fresh copy of the server entry in a process with no wrapper yet (the tests above made some,
 * which the shared state still holds), the environment naming the service `admin` and sending
 * nothing; `fn` gets the copy's `withTracing` and `getTracer`, and what was said is returned.
 */
const freshProcess = async (fn: (wrap: typeof withTracing, outside: () => { config: { serviceName?: string } }) => Promise<void> | void): Promise<string[]> => {
  vi.resetModules();
  const [{ withTracing: wrap }, { getTracer: outside }] = await Promise.all([import('../../../src/server/withTracing'), import('../../../src/core/global')]);
  const requests = (globalThis as Record<symbol, { processWide?: unknown } | undefined>)[Symbol.for('edgetrace.requests.1')];
  if (requests) requests.processWide = undefined;
  vi.stubEnv('OTEL_SERVICE_NAME', 'admin');
  vi.stubEnv('TRACING_MODE', 'none');
  try {
    return (await warnings(() => fn(wrap, outside))).filter((m) => m.includes('second server wrapper'));
  } finally {
    vi.unstubAllEnvs();
  }
};

describe('a second service whose tracer waits for the environment', () => {
  it('is told of when its tracer is made, as the one it took the work from is another service', async () => {
    const { exporter } = recorder();
    const said = await freshProcess((wrap, outside) => {
      wrap(() => new Response('api'), { exporter, serviceName: 'api' });
      wrap(() => new Response('admin'), { waitUntil: (p) => void p });
      expect(outside().config.serviceName).toBe('admin');
    });
    expect(said).toEqual([
      `[edgetrace] a second server wrapper ("admin") was made after "api": getTracer() outside requests (background jobs, a shutdown hook's flush) now records with "admin"'s tracer. drain() each listener before exit.`,
    ]);
  });
});

describe('a wrapper made after one whose tracer waits for the environment', () => {
  it('keeps the work outside requests when the earlier one gets its first request', async () => {
    const { exporter } = recorder();
    const said = await freshProcess(async (wrap, outside) => {
      const admin = wrap(() => new Response('admin'), { waitUntil: (p) => void p });
      wrap(() => new Response('api'), { exporter, serviceName: 'api' });
      await (await admin(new Request('http://admin.test/'))).text();
      expect(outside().config.serviceName).toBe('api');
    });
    expect(said).toEqual([]);
  });
});
