import { describe, it, expect, afterAll, vi } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpanRecord } from '../../../src/protocol';
import { fromEnv, otlpTracesUrl, parseOtlpHeaders, parseResourceAttributes, samplerRate } from '../../../src/server/fromEnv';
import { createJsonlExporter } from '../../../src/server/jsonl';
import { scoreRecord, spanRecord } from '../../helpers/records';

const span: SpanRecord = spanRecord(1, {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  name: 'GET',
  kind: 'server',
  startMs: 1732140000000,
  endMs: 1732140000012,
  attrs: { 'http.request.method': 'GET' },
  status: { code: 'ok' },
  resource: { attrs: { 'service.name': 'api' }, scope: { name: 'edgetrace' } },
});

/** A fetch that records what it was asked to send. */
const fakeFetch = () => {
  const calls: { url: string; headers: Headers; body: string }[] = [];
  const fetch = (async (url: string | URL | Request, init?: RequestInit) => {
    calls.push({ url: String(url), headers: new Headers(init?.headers), body: String(init?.body) });
    return new Response('{}', { status: 200 });
  }) as typeof globalThis.fetch;
  return { calls, fetch };
};

const dir = mkdtempSync(join(tmpdir(), 'edgetrace-env-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('fromEnv', () => {
  it('sends to Langfuse with Basic auth and the v4 ingestion header', async () => {
    const f = fakeFetch();
    const exporter = fromEnv(
      { TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk-lf-1', LANGFUSE_SECRET_KEY: 'sk-lf-2', LANGFUSE_BASE_URL: 'https://lf.example.com/', OTEL_SERVICE_NAME: 'api' },
      { fetch: f.fetch },
    );
    expect(exporter.mode).toBe('langfuse');
    expect(exporter.serviceName).toBe('api');
    expect(exporter.target).toBe('https://lf.example.com/api/public/otel/v1/traces');
    expect(await exporter.export([span])).toEqual({ ok: true });
    expect(f.calls[0]!.url).toBe('https://lf.example.com/api/public/otel/v1/traces');
    expect(f.calls[0]!.headers.get('authorization')).toBe(`Basic ${Buffer.from('pk-lf-1:sk-lf-2').toString('base64')}`);
    expect(f.calls[0]!.headers.get('x-langfuse-ingestion-version')).toBe('4');
  });

  it("trims an API path pasted into LANGFUSE_BASE_URL, so spans and scores reach Langfuse's own routes", async () => {
    const keys = { LANGFUSE_PUBLIC_KEY: 'pk-lf-1', LANGFUSE_SECRET_KEY: 'sk-lf-2' };
    const cases: [string, string][] = [
      ['https://lf.example.com/api/public', 'https://lf.example.com'],
      ['https://lf.example.com/api/public/', 'https://lf.example.com'],
      ['https://lf.example.com/api/public/otel', 'https://lf.example.com'],
      ['https://lf.example.com/api/public/otel/v1/traces', 'https://lf.example.com'],
      ['https://example.com/langfuse/api/public/otel/', 'https://example.com/langfuse'],
      ['https://example.com/langfuse', 'https://example.com/langfuse'],
    ];
    for (const [given, base] of cases) {
      const calls: string[] = [];
      // The ingestion endpoint is gone (Langfuse v4): scores then go to the scores API.
      const fetch = (async (url: string | URL | Request) => {
        calls.push(String(url));
        return new Response('{}', { status: String(url).endsWith('/ingestion') ? 404 : 200 });
      }) as typeof globalThis.fetch;
      const exporter = fromEnv({ ...keys, LANGFUSE_BASE_URL: given }, { fetch });
      expect(exporter.target, given).toBe(`${base}/api/public/otel/v1/traces`);
      expect(await exporter.export([span, scoreRecord()]), given).toEqual({ ok: true });
      expect(calls.sort(), given).toEqual([`${base}/api/public/ingestion`, `${base}/api/public/otel/v1/traces`, `${base}/api/public/scores`]);
    }
  });

  it('takes LANGFUSE_TRACING_ENVIRONMENT for spans without one, and logs and leaves out one Langfuse would store as default', async () => {
    const keys = { TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk' };
    const envOf = async (value: string) => {
      const f = fakeFetch();
      await fromEnv({ ...keys, LANGFUSE_TRACING_ENVIRONMENT: value }, { fetch: f.fetch }).export([span]);
      const attrs = JSON.parse(f.calls[0]!.body).resourceSpans[0].scopeSpans[0].spans[0].attributes as { key: string; value: { stringValue?: string } }[];
      return attrs.find((kv) => kv.key === 'langfuse.environment')?.value.stringValue;
    };
    expect(await envOf('staging')).toBe('staging');
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      expect(await envOf('Prod EU')).toBeUndefined();
      expect(String(warn.mock.calls[0]?.[0])).toBe(
        '[edgetrace] fromEnv(): "LANGFUSE_TRACING_ENVIRONMENT" must be letters, digits, "-" and "_" only (Langfuse stores any other value as "default"), got "Prod EU". It is ignored.',
      );
    } finally {
      warn.mockRestore();
    }
  });

  it('reads LANGFUSE_BASEURL and LANGFUSE_HOST as other names of LANGFUSE_BASE_URL', () => {
    const e = fromEnv({ TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk', LANGFUSE_HOST: 'http://localhost:3000' });
    expect(e.target).toBe('http://localhost:3000/api/public/otel/v1/traces');
    expect(fromEnv({ TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk' }).target).toBe('https://cloud.langfuse.com/api/public/otel/v1/traces');
    // Langfuse's JS SDK v3 name, without TRACING_MODE too; LANGFUSE_BASE_URL wins over both.
    expect(fromEnv({ LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk', LANGFUSE_BASEURL: 'https://lf.internal' }).target).toBe('https://lf.internal/api/public/otel/v1/traces');
    const all = { LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk', LANGFUSE_BASE_URL: 'https://a.test', LANGFUSE_BASEURL: 'https://b.test', LANGFUSE_HOST: 'https://c.test' };
    expect(fromEnv(all).target).toBe('https://a.test/api/public/otel/v1/traces');
    expect(() => fromEnv({ LANGFUSE_BASEURL: 'lf.internal' })).toThrowError('LANGFUSE_BASEURL is set but LANGFUSE_SECRET_KEY is not');
    expect(() => fromEnv({ ...all, LANGFUSE_BASE_URL: undefined, LANGFUSE_BASEURL: 'lf.internal' })).toThrowError('LANGFUSE_BASEURL');
  });

  it('says once that nothing is sent when no variable chose an exporter, and not when TRACING_MODE=none did', async () => {
    vi.resetModules();
    const fresh = (await import('../../../src/server/fromEnv')).fromEnv;
    const info = vi.spyOn(console, 'info').mockImplementation(() => undefined);
    try {
      expect(fresh({ TRACING_MODE: 'none' }).mode).toBe('none');
      expect(info).not.toHaveBeenCalled();
      // next build loads route modules without the variables meant for run time: not said there.
      expect(fresh({ NEXT_PHASE: 'phase-production-build' }).mode).toBe('none');
      expect(info).not.toHaveBeenCalled();
      expect(fresh({}).mode).toBe('none');
      expect(fresh({ PATH: '/bin' }).mode).toBe('none');
      expect(info).toHaveBeenCalledTimes(1);
      expect(String(info.mock.calls[0]![0])).toMatch(/no exporter configured .*OTEL_EXPORTER_OTLP_ENDPOINT.*spans are not sent/);
    } finally {
      info.mockRestore();
    }
  });

  it('names a variable set under a near-miss name, where the one it is likely a typo of is missing', async () => {
    vi.resetModules();
    const fresh = (await import('../../../src/server/fromEnv')).fromEnv;
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      // Other variables of OpenTelemetry and Langfuse, and other names, are no typos.
      const others = { OTEL_EXPORTER_OTLP_LOGS_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', LANGFUSE_RELEASE: 'v1', LANGFUSE_DEBUG: 'true', TRACING_ENABLED: '1', OTEL_EXPORTER_OTLP_ENDPOINTX: '' };
      expect(fresh({ ...others, OTEL_EXPORTER_OTLP_ENDPOINTS: 'http://c:4318', otel_exporter_otlp_enpoint: 'http://c:4318' }).mode).toBe('none');
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toBe(
        '[edgetrace] fromEnv(): no exporter configured (TRACING_MODE, OTEL_EXPORTER_OTLP_ENDPOINT and the LANGFUSE_* keys are unset; OTEL_EXPORTER_OTLP_ENDPOINTS is set: did you mean OTEL_EXPORTER_OTLP_ENDPOINT?; otel_exporter_otlp_enpoint is set: did you mean OTEL_EXPORTER_OTLP_ENDPOINT?), so spans are not sent. Set TRACING_MODE=none to say that is meant.',
      );
    } finally {
      warn.mockRestore();
    }
    // Half a configuration, or a mode without its variable, names the near miss too; never its value.
    expect(() => fromEnv({ LANGFUSE_PUBLICKEY: 'pk-lf-1', LANGFUSE_SECRET_KEY: 'sk-lf-very-secret' })).toThrow(
      '[edgetrace] fromEnv(): LANGFUSE_SECRET_KEY is set but LANGFUSE_PUBLIC_KEY is not (LANGFUSE_PUBLICKEY is set: did you mean LANGFUSE_PUBLIC_KEY?); set both (or TRACING_MODE to choose a mode).',
    );
    expect(() => fromEnv({ TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk-lf-1', LANGFUSE_SECRETKEY: 'sk-lf-very-secret' })).toThrow(
      '[edgetrace] fromEnv(): TRACING_MODE=langfuse needs LANGFUSE_SECRET_KEY (the project secret key, sk-lf-…), which is not set (LANGFUSE_SECRETKEY is set: did you mean LANGFUSE_SECRET_KEY?).',
    );
    expect(() => fromEnv({ TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENPOINT: 'http://c:4318' })).toThrow(/which is not set \(OTEL_EXPORTER_OTLP_ENPOINT is set: did you mean OTEL_EXPORTER_OTLP_ENDPOINT\?\)\.$/);
  });

  it("reads Deno's allowed variables one by one, and says when Deno let it read none", async () => {
    vi.resetModules();
    const fresh = await import('../../../src/server/fromEnv');
    const info = vi.spyOn(console, 'info').mockImplementation(() => undefined);
    const refuse = (): never => {
      throw new Error('NotCapable: Requires env access, run again with the --allow-env flag');
    };
    const allowed: Record<string, string> = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    vi.stubGlobal('Deno', { env: { toObject: refuse, get: (name: string) => allowed[name] ?? refuse() } });
    try {
      // --allow-env=OTEL_EXPORTER_OTLP_ENDPOINT: the whole environment is refused, that one is not.
      expect(fresh.processEnv()).toEqual(allowed);
      expect(fresh.fromEnv(fresh.processEnv()).target).toBe('http://127.0.0.1:4318/v1/traces');
      const denoEnv = (globalThis as unknown as { Deno: { env: Parameters<typeof fresh.fromEnv>[0] } }).Deno.env;
      expect(fresh.fromEnv(denoEnv).target).toBe('http://127.0.0.1:4318/v1/traces');
      // No --allow-env at all.
      delete allowed.OTEL_EXPORTER_OTLP_ENDPOINT;
      expect(() => fresh.fromEnv(denoEnv)).toThrow(/"env" must be readable \(Deno needs --allow-env\)/);
      expect(fresh.processEnv()).toEqual({});
      expect(fresh.fromEnv(fresh.processEnv()).mode).toBe('none');
      expect(info).toHaveBeenCalledTimes(1);
      expect(String(info.mock.calls[0]![0])).toMatch(/Deno refused to read the environment.*--allow-env \(or --allow-env=TRACING_MODE,.*OTEL_EXPORTER_OTLP_ENDPOINT,/);
    } finally {
      vi.unstubAllGlobals();
      info.mockRestore();
    }
  });

  it('gives its HTTP exporters the timeoutMs it is given', async () => {
    vi.useFakeTimers();
    try {
      const hang = (async (_url: string | URL | Request, init?: RequestInit) =>
        new Promise<Response>((_, reject) => init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))))) as typeof fetch;
      for (const env of [
        { TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' },
        { TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk' },
      ]) {
        let result: unknown;
        void fromEnv(env, { fetch: hang, timeoutMs: 30_000 })
          .export([span])
          .then((r) => (result = r));
        await vi.advanceTimersByTimeAsync(10_001);
        expect(result, env.TRACING_MODE).toBeUndefined();
        await vi.advanceTimersByTimeAsync(20_000);
        expect(result, env.TRACING_MODE).toMatchObject({ ok: false, retryable: true, reason: expect.stringMatching(/30000 ms/) });
      }
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses an option it does not have, naming the likely one', () => {
    const env = { TRACING_MODE: 'none' };
    expect(() => fromEnv(env, { timeout: 30_000 } as never)).toThrow('[edgetrace] fromEnv(): "timeout" is not an option (did you mean "timeoutMs"?).');
    expect(() => fromEnv(env, null as never)).toThrow(/fromEnv\(\): "options" must be an object/);
    expect(() => fromEnv(env, { fetch: globalThis.fetch, timeoutMs: 5000 })).not.toThrow();
  });

  it('names the missing variable', () => {
    expect(() => fromEnv({ TRACING_MODE: 'langfuse', LANGFUSE_SECRET_KEY: 'sk' })).toThrow(/LANGFUSE_PUBLIC_KEY/);
    expect(() => fromEnv({ TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk' })).toThrow(
      '[edgetrace] fromEnv(): TRACING_MODE=langfuse needs LANGFUSE_SECRET_KEY (the project secret key, sk-lf-…), which is not set.',
    );
    expect(() => fromEnv({ TRACING_MODE: 'otlp' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(() => fromEnv({ TRACING_MODE: 'zipkin' })).toThrow(/"TRACING_MODE" must be one of langfuse, otlp, console, jsonl, none, got "zipkin"/);
    expect(() => fromEnv({ TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    expect(() => fromEnv({ TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk', LANGFUSE_BASE_URL: 'nope' })).toThrow(/LANGFUSE_BASE_URL/);
  });

  it('refuses Langfuse keys that look swapped, naming both variables and showing neither key', () => {
    const secret = 'sk-lf-0123-very-secret';
    const swapped = '[edgetrace] fromEnv(): LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY look swapped:';
    for (const mode of [{ TRACING_MODE: 'langfuse' }, {}]) {
      const both = () => fromEnv({ ...mode, LANGFUSE_PUBLIC_KEY: secret, LANGFUSE_SECRET_KEY: 'pk-lf-4567' });
      expect(both).toThrow(TypeError);
      expect(both).toThrow(`${swapped} LANGFUSE_PUBLIC_KEY holds a secret key (sk-lf-…) and LANGFUSE_SECRET_KEY holds a public key (pk-lf-…); the public key is pk-lf-…, the secret key sk-lf-….`);
      expect(() => fromEnv({ ...mode, LANGFUSE_PUBLIC_KEY: secret, LANGFUSE_SECRET_KEY: secret })).toThrow(`${swapped} LANGFUSE_PUBLIC_KEY holds a secret key (sk-lf-…);`);
      expect(() => fromEnv({ ...mode, LANGFUSE_PUBLIC_KEY: 'pk-lf-4567', LANGFUSE_SECRET_KEY: 'pk-lf-4567' })).toThrow(`${swapped} LANGFUSE_SECRET_KEY holds a public key (pk-lf-…);`);
    }
    expect(() => fromEnv({ LANGFUSE_PUBLIC_KEY: secret, LANGFUSE_SECRET_KEY: 'pk-lf-4567' })).toThrow(/^(?![\s\S]*(0123|4567))/);
    expect(fromEnv({ LANGFUSE_PUBLIC_KEY: 'pk-lf-1', LANGFUSE_SECRET_KEY: 'sk-lf-2' }).mode).toBe('langfuse');
  });

  it('sends OTLP to the base endpoint plus /v1/traces, with the headers', async () => {
    const f = fakeFetch();
    const e = fromEnv(
      { TRACING_MODE: 'OTLP', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/', OTEL_EXPORTER_OTLP_HEADERS: 'api-key=abc%20def, X-Tenant = t1 ,' },
      { fetch: f.fetch },
    );
    await e.export([span]);
    expect(f.calls[0]!.url).toBe('http://collector:4318/v1/traces');
    expect(f.calls[0]!.headers.get('api-key')).toBe('abc def');
    expect(f.calls[0]!.headers.get('x-tenant')).toBe('t1');
    expect(JSON.parse(f.calls[0]!.body).resourceSpans[0].scopeSpans[0].spans[0].spanId).toBe(span.spanId);
  });

  it('builds the trace URL as OpenTelemetry says', () => {
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe('http://c:4318/v1/traces');
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/prefix' })).toBe('http://c:4318/prefix/v1/traces');
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/v1/traces' })).toBe('http://c:4318/v1/traces');
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t/custom' })).toBe('http://t/custom');
    expect(otlpTracesUrl({})).toBeUndefined();
    // The path goes on the base's path, not after its query.
    expect(otlpTracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/p?api_key=k1' })).toBe('http://c:4318/p/v1/traces?api_key=k1');
  });

  it('names its target without the query the URL carries, and refuses user:password without repeating it', async () => {
    const f = fakeFetch();
    const e = fromEnv({ TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.com/?api_key=VENDORKEY' }, { fetch: f.fetch });
    expect(e.target).toBe('https://otel.example.com/v1/traces');
    await e.export([span]);
    // The request itself still goes where it was configured to.
    expect(f.calls[0]!.url).toContain('api_key=VENDORKEY');
    // fetch refuses to send to a URL with credentials: every export would fail.
    const withPassword = (): unknown => fromEnv({ TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://ingest:S3cretPass@otel.example.com' });
    expect(withPassword).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT.*"https:\/\/\[REDACTED\]@otel\.example\.com".*user:password/);
    expect(withPassword).not.toThrow(/S3cretPass/);
    expect(() => fromEnv({ TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk', LANGFUSE_BASE_URL: 'https://u:p@lf.example.com' })).toThrow(/LANGFUSE_BASE_URL/);
  });

  it('parses OTEL_EXPORTER_OTLP_HEADERS and rejects malformed ones by name', () => {
    expect(parseOtlpHeaders('a=1,b=x%3Dy,c=')).toEqual({ a: '1', b: 'x=y', c: '' });
    expect(() => parseOtlpHeaders('novalue')).toThrow(/OTEL_EXPORTER_OTLP_HEADERS/);
    // These headers carry credentials: a malformed list is described, never echoed.
    expect(() => parseOtlpHeaders('Authorization: Bearer sk-live-abcdef123456')).toThrow(/^(?!.*sk-live).*position 1/);
    expect(() => fromEnv({ TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_EXPORTER_OTLP_TRACES_HEADERS: '=x' })).toThrow(/OTEL_EXPORTER_OTLP_TRACES_HEADERS/);
  });

  it('names the missing partner of half a configuration when TRACING_MODE is unset', () => {
    expect(() => fromEnv({ LANGFUSE_PUBLIC_KEY: 'pk-lf-1' })).toThrow(/LANGFUSE_PUBLIC_KEY is set but LANGFUSE_SECRET_KEY is not/);
    expect(() => fromEnv({ LANGFUSE_SECRET_KEY: 'sk-lf-1' })).toThrow(/LANGFUSE_SECRET_KEY is set but LANGFUSE_PUBLIC_KEY is not/);
    expect(() => fromEnv({ LANGFUSE_BASE_URL: 'https://lf.test' })).toThrow(/LANGFUSE_SECRET_KEY is not/);
    expect(() => fromEnv({ OTEL_EXPORTER_OTLP_HEADERS: 'a=1' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT is not/);
    expect(() => fromEnv({ LANGFUSE_PUBLIC_KEY: 'pk-lf-1', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toThrow(/LANGFUSE_SECRET_KEY/);
    // A mode chosen by name reads only its own variables.
    expect(fromEnv({ TRACING_MODE: 'none', LANGFUSE_PUBLIC_KEY: 'pk-lf-1' }).mode).toBe('none');
  });

  it('reads Deno.env, whose variables are behind toObject()', () => {
    const denoEnv = { toObject: () => ({ TRACING_MODE: 'console', OTEL_SERVICE_NAME: 'deno-svc' }), get: () => undefined };
    const exporter = fromEnv(denoEnv);
    expect(exporter.mode).toBe('console');
    expect(exporter.serviceName).toBe('deno-svc');
    const denied = { toObject: () => { throw new Error('NotCapable: Requires env access'); } };
    expect(() => fromEnv(denied)).toThrow('"env" must be readable (Deno needs --allow-env)');
  });

  it('infers the mode when TRACING_MODE is unset', () => {
    expect(fromEnv({}).mode).toBe('none');
    expect(fromEnv({ LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk' }).mode).toBe('langfuse');
    expect(fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c' }).mode).toBe('otlp');
    // Bindings that are not strings (a KV namespace) are ignored: what is left is half a configuration.
    expect(fromEnv({ TRACING_ENV_NOTE: {} }).mode).toBe('none');
    expect(() => fromEnv({ LANGFUSE_PUBLIC_KEY: {}, LANGFUSE_SECRET_KEY: 'sk' })).toThrow(/LANGFUSE_PUBLIC_KEY is not/);
  });

  it('prints in console mode and drops in none mode', async () => {
    expect(await fromEnv({ TRACING_MODE: 'none' }).export([span])).toEqual({ ok: true });
    expect(fromEnv({ TRACING_MODE: 'console' }).target).toBe('console');
  });

  it('appends one JSON line per record in jsonl mode', async () => {
    const path = join(dir, 'nested', 'spans.jsonl');
    const e = fromEnv({ TRACING_MODE: 'jsonl', TRACING_JSONL_PATH: path });
    expect(e.target).toBe(path);
    expect(await e.export([span, { ...span, spanId: '1111111111111111' }])).toEqual({ ok: true });
    expect(await e.export([{ ...span, spanId: '2222222222222222' }])).toEqual({ ok: true });
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as SpanRecord).spanId)).toEqual([span.spanId, '1111111111111111', '2222222222222222']);
  });
});

describe('createJsonlExporter', () => {
  it('keeps concurrent batches whole and in order', async () => {
    const path = join(dir, 'order.jsonl');
    const e = createJsonlExporter({ path });
    await Promise.all(Array.from({ length: 20 }, (_, i) => e.export([{ ...span, name: `n${i}` }, { ...span, name: `n${i}b` }])));
    await e.shutdown!();
    const names = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as SpanRecord).name);
    expect(names).toEqual(Array.from({ length: 20 }, (_, i) => [`n${i}`, `n${i}b`]).flat());
  });

  it('reports a write error as retryable', async () => {
    const e = createJsonlExporter({ path: join(dir, 'order.jsonl', 'not-a-dir', 'x.jsonl') });
    const result = await e.export([span]);
    expect(result.ok).toBe(false);
    expect(result).toMatchObject({ retryable: true });
  });
});

describe('fromEnv, variables that describe, compress or sample', () => {
  describe('OTEL_RESOURCE_ATTRIBUTES', () => {
    it('parses percent-encoded pairs, every value a string', () => {
      expect(parseResourceAttributes(' service.namespace = shop , k%2C1=a%3Db%20c,empty=,deployment.environment.name=prod ,')).toEqual({
        'service.namespace': 'shop',
        'k,1': 'a=b c',
        empty: '',
        'deployment.environment.name': 'prod',
      });
    });

    it('keeps a % that starts no escape as written, as the header variables do', () => {
      expect(parseResourceAttributes('build.note=50%,a%ZZ=%E0%A4%A')).toEqual({ 'build.note': '50%', 'a%ZZ': '%E0%A4%A' });
    });

    it('throws naming the variable and a pair without = or key; fromEnv logs that and leaves the variable out', () => {
      expect(() => parseResourceAttributes('a=1,novalue')).toThrow(/fromEnv\(\): "OTEL_RESOURCE_ATTRIBUTES" must be a list of key=value pairs.*got "novalue"/);
      expect(() => parseResourceAttributes('=1')).toThrow(/OTEL_RESOURCE_ATTRIBUTES.*got "=1"/);
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        // A typo in how spans are described must not stop them being sent.
        const exporter = fromEnv({ TRACING_MODE: 'console', OTEL_RESOURCE_ATTRIBUTES: 'team=a,oops', OTEL_SERVICE_NAME: 'api' });
        expect(exporter).toMatchObject({ mode: 'console', serviceName: 'api', resource: undefined });
        expect(warn).toHaveBeenCalledTimes(1);
        expect(warn.mock.calls[0]![0]).toMatch(/^\[edgetrace\] fromEnv\(\): "OTEL_RESOURCE_ATTRIBUTES" must be .*got "oops"\. It is ignored\.$/);
      } finally {
        warn.mockRestore();
      }
    });

    it('is carried as resource, its service.name under OTEL_SERVICE_NAME', () => {
      const attrs = { TRACING_MODE: 'console', OTEL_RESOURCE_ATTRIBUTES: 'service.name=shop,team=checkout' };
      expect(fromEnv(attrs)).toMatchObject({ serviceName: 'shop', resource: { 'service.name': 'shop', team: 'checkout' } });
      expect(fromEnv({ ...attrs, OTEL_SERVICE_NAME: 'api' })).toMatchObject({ serviceName: 'api', resource: { team: 'checkout' } });
      expect(fromEnv({ TRACING_MODE: 'console' }).resource).toBeUndefined();
    });
  });

  describe('OTEL_EXPORTER_OTLP_COMPRESSION', () => {
    const sentWith = async (env: Record<string, string>) => {
      const f = fakeFetch();
      const calls: RequestInit[] = [];
      const fetch = ((url: string, init?: RequestInit) => (calls.push(init!), f.fetch(url, init))) as typeof globalThis.fetch;
      await fromEnv(env, { fetch }).export([span]);
      return new Headers(calls[0]!.headers).get('content-encoding');
    };
    const otlp = { TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'https://rx.example' };
    const langfuse = { LANGFUSE_PUBLIC_KEY: 'pk-lf-1', LANGFUSE_SECRET_KEY: 'sk-lf-2' };

    it('gzips OTLP and Langfuse span requests, the traces variable over the general one', async () => {
      expect(await sentWith(otlp)).toBeNull();
      expect(await sentWith({ ...otlp, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' })).toBe('gzip');
      expect(await sentWith({ ...otlp, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none' })).toBeNull();
      expect(await sentWith({ ...otlp, OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'GZIP' })).toBe('gzip');
      expect(await sentWith({ ...langfuse, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' })).toBe('gzip');
    });

    it('logs any other value and sends uncompressed; modes that do not send over HTTP never read it', async () => {
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        expect(await sentWith({ ...otlp, OTEL_EXPORTER_OTLP_COMPRESSION: 'zstd' })).toBeNull();
        expect(warn.mock.calls.map((c) => c[0])).toEqual(['[edgetrace] fromEnv(): "OTEL_EXPORTER_OTLP_COMPRESSION" must be "gzip" or "none", got "zstd". It is ignored.']);
        expect(await sentWith({ ...otlp, OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip', OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'br' })).toBeNull();
        expect(warn.mock.calls[1]![0]).toContain('"OTEL_EXPORTER_OTLP_TRACES_COMPRESSION"');
        fromEnv({ TRACING_MODE: 'console', OTEL_EXPORTER_OTLP_COMPRESSION: 'bogus' });
        expect(warn).toHaveBeenCalledTimes(2);
      } finally {
        warn.mockRestore();
      }
    });
  });

  describe('OTEL_TRACES_SAMPLER and LANGFUSE_SAMPLE_RATE', () => {
    const warned = (fn: () => unknown): { value: unknown; said: string[] } => {
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
      try {
        return { value: fn(), said: warn.mock.calls.map((c) => String(c[0])) };
      } finally {
        warn.mockRestore();
      }
    };

    it("reads OpenTelemetry's samplers as the rate of new traces, the parent-based forms in silence", () => {
      const cases: [Record<string, string>, number | undefined][] = [
        [{}, undefined],
        [{ OTEL_TRACES_SAMPLER: 'parentbased_always_on' }, 1],
        [{ OTEL_TRACES_SAMPLER: 'parentbased_always_off' }, 0],
        [{ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }, 0.25],
        [{ OTEL_TRACES_SAMPLER: 'PARENTBASED_TRACEIDRATIO', OTEL_TRACES_SAMPLER_ARG: ' .5 ' }, 0.5],
        [{ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '1e-2' }, 0.01],
        // OpenTelemetry's default argument.
        [{ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio' }, 1],
      ];
      for (const [env, rate] of cases) {
        const { value, said } = warned(() => samplerRate(env));
        expect([env, value, said]).toEqual([env, rate, []]);
      }
    });

    it('reads the samplers that ignore a caller as their parent-based forms, and says so', () => {
      for (const [sampler, rate] of [['always_on', 1], ['always_off', 0], ['traceidratio', 0.1]] as const) {
        const { value, said } = warned(() => samplerRate({ OTEL_TRACES_SAMPLER: sampler, OTEL_TRACES_SAMPLER_ARG: '0.1' }));
        expect(value).toBe(rate);
        expect(said).toEqual([`[edgetrace] fromEnv(): OTEL_TRACES_SAMPLER=${sampler} is read as parentbased_${sampler}: a trace continued from a caller keeps the caller's sampled flag.`]);
      }
      // Once per process: a collector forwarding to two targets reads the variables twice.
      expect(warned(() => samplerRate({ OTEL_TRACES_SAMPLER: 'always_on' }))).toEqual({ value: 1, said: [] });
    });

    it('logs and leaves out a sampler it has not and an argument that is no share, as OpenTelemetry does', () => {
      for (const sampler of ['parentbased_jaeger_remote', 'xray', 'ratio']) {
        const { value, said } = warned(() => samplerRate({ OTEL_TRACES_SAMPLER: sampler }));
        expect(value).toBeUndefined();
        expect(said).toEqual([
          `[edgetrace] fromEnv(): "OTEL_TRACES_SAMPLER" must be one of always_on, always_off, traceidratio, each also as parentbased_…, got "${sampler}". It is ignored.`,
        ]);
      }
      for (const arg of ['10%', '1.5', '-0.1', 'half', '0x1']) {
        const { value, said } = warned(() => samplerRate({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: arg }));
        expect(value).toBe(1);
        expect(said).toEqual([
          `[edgetrace] fromEnv(): "OTEL_TRACES_SAMPLER_ARG" must be a number from 0 to 1 for parentbased_traceidratio, got "${arg}"; the rate is 1. It is ignored.`,
        ]);
      }
    });

    it("carries the rate on the exporter in every mode, LANGFUSE_SAMPLE_RATE's when OpenTelemetry's sampler is unset", () => {
      const langfuse = { LANGFUSE_PUBLIC_KEY: 'pk-lf-1', LANGFUSE_SECRET_KEY: 'sk-lf-2' };
      expect(fromEnv(langfuse).sampleRate).toBeUndefined();
      // Said once: Langfuse's JS SDK v4 and later do not read the variable, so it may be new to the service.
      const lowered = warned(() => fromEnv({ ...langfuse, LANGFUSE_SAMPLE_RATE: '0.2' }));
      expect((lowered.value as { sampleRate?: number }).sampleRate).toBe(0.2);
      expect(lowered.said).toEqual([
        "[edgetrace] fromEnv(): LANGFUSE_SAMPLE_RATE=0.2 keeps that share of new traces (Langfuse's JS SDK v4 and later leave the variable unread; its Python SDK reads it as edgetrace does).",
      ]);
      expect(warned(() => fromEnv({ ...langfuse, LANGFUSE_SAMPLE_RATE: '0.3' })).said).toEqual([]);
      expect(fromEnv({ TRACING_MODE: 'console', LANGFUSE_SAMPLE_RATE: '0' }).sampleRate).toBe(0);
      expect(fromEnv({ TRACING_MODE: 'none', OTEL_TRACES_SAMPLER: 'parentbased_always_off' }).sampleRate).toBe(0);
      const invalid = warned(() => fromEnv({ ...langfuse, LANGFUSE_SAMPLE_RATE: '20%' }));
      expect((invalid.value as { sampleRate?: number }).sampleRate).toBeUndefined();
      expect(invalid.said).toEqual(['[edgetrace] fromEnv(): "LANGFUSE_SAMPLE_RATE" must be a number from 0 to 1, got "20%". It is ignored.']);
      const both = warned(() => fromEnv({ ...langfuse, LANGFUSE_SAMPLE_RATE: '0.2', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.5' }));
      expect((both.value as { sampleRate?: number }).sampleRate).toBe(0.5);
      expect(both.said).toEqual(["[edgetrace] fromEnv(): OTEL_TRACES_SAMPLER asks for a rate of 0.5 and LANGFUSE_SAMPLE_RATE for 0.2; OTEL_TRACES_SAMPLER's is used."]);
      expect(fromEnv({ ...langfuse, LANGFUSE_RELEASE: 'abc123' }).release).toBe('abc123');
      expect(fromEnv(langfuse).release).toBeUndefined();
      // The same rate twice is no conflict.
      expect(warned(() => fromEnv({ ...langfuse, LANGFUSE_SAMPLE_RATE: '1', OTEL_TRACES_SAMPLER: 'parentbased_always_on' })).said).toEqual([]);
    });
  });
});
