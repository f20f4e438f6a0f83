import { afterEach, describe, expect, it, vi } from 'vitest';
import { resolveConfig, resolveInit } from '../../src/config';
import { init } from '../../src/core/global';
import { getStatus } from '../../src/transport/index';

describe('resolveConfig', () => {
  afterEach(() => {
    delete (globalThis as { document?: unknown }).document;
  });

  it('fills in defaults', () => {
    const cfg = resolveConfig({});
    expect(cfg.sampleRate).toBe(1);
    expect(cfg.maxAttributes).toBe(128);
    expect(cfg.resource['service.name']).toBe('unknown_service');
    expect(cfg.batch).toEqual({ maxBatchSize: 512, maxQueueSize: 2048, delayMs: 1000, exportTimeoutMs: 30_000 });
  });

  it('throws a TypeError naming the call, the option and the value', () => {
    expect(() => init({ sampleRate: '50%' as unknown as number })).toThrowError(
      new TypeError('[edgetrace] init(): "sampleRate" must be a number from 0 to 1, got "50%".'),
    );
  });

  it.each([
    [{ sampleRate: 2 }, 'sampleRate'],
    [{ sampleRate: Number.NaN }, 'sampleRate'],
    [{ sampleRate: '0.5' }, 'sampleRate'],
    [{ filter: { minDurationMs: '5' } }, 'filter.minDurationMs'],
    [{ limits: { maxEvents: '5' } }, 'limits.maxEvents'],
    [{ redact: { keepQueryKeys: 'page' } }, 'redact.keepQueryKeys'],
    [{ serviceName: '' }, 'serviceName'],
    [{ serviceName: 42 }, 'serviceName'],
    [{ limits: { maxAttributes: -1 } }, 'limits.maxAttributes'],
    [{ limits: { maxStringLength: 1.5 } }, 'limits.maxStringLength'],
    [{ limits: { maxIoLength: 8 } }, 'limits.maxIoLength'],
    [{ redact: { patterns: ['secret'] } }, 'redact.patterns'],
    [{ redact: 'yes' }, 'redact'],
    [{ filter: { minDurationMs: -3 } }, 'filter.minDurationMs'],
    [{ filter: { include: 'a' } }, 'filter.include'],
    [{ prices: { 'gpt-4o': { input: 'cheap' } } }, 'prices["gpt-4o"]'],
    [{ exporter: {} }, 'exporter'],
    [{ processors: {} }, 'processors'],
    [{ processors: [null] }, 'processors[0]'],
    [{ processors: [{ onEnd: () => undefined }, 5] }, 'processors[1]'],
    [{ debug: 'yes' }, 'debug'],
    [{ redact: { queryValues: 'yes' } }, 'redact.queryValues'],
    [{ redact: { defaults: 1 } }, 'redact.defaults'],
    [{ mask: 'x' }, 'mask'],
    [{ beforeSend: 1 }, 'beforeSend'],
    [{ batch: { maxBatchSize: 0 } }, 'batch.maxBatchSize'],
    [{ batch: { exportTimeoutMs: 0 } }, 'batch.exportTimeoutMs'],
  ])('rejects %j naming "%s"', (opts, option) => {
    expect(() => resolveConfig(opts as never)).toThrowError(TypeError);
    expect(() => resolveConfig(opts as never)).toThrowError(`"${option}"`);
  });

  it('rejects a Langfuse config without a public key', () => {
    expect(() => resolveInit({ langfuse: { publicKey: '' } })).toThrowError('"langfuse.publicKey"');
  });

  it('rejects a Langfuse config that could never send: no secret key, or a base URL that is not one', () => {
    expect(() => resolveInit({ langfuse: { publicKey: 'pk-lf-1' } })).toThrowError('"langfuse.secretKey" must be a non-empty string, got undefined');
    const keys = { publicKey: 'pk-lf-1', secretKey: 'sk-lf-1' };
    for (const baseUrl of [42, 'not a url', 'cloud.langfuse.com', '', 'https://cloud langfuse.com', 'http://[oops', 'https://ok.example:99999', 'ftp://lf.example']) {
      expect(() => resolveInit({ langfuse: { ...keys, baseUrl: baseUrl as string } })).toThrowError('"langfuse.baseUrl" must be an absolute http(s) URL');
    }
    expect(resolveInit({ langfuse: { ...keys, baseUrl: 'http://localhost:3000' } }).langfuse?.baseUrl).toBe('http://localhost:3000');
  });

  it('clamps maxBatchSize to maxQueueSize instead of throwing', () => {
    expect(resolveConfig({ batch: { maxBatchSize: 100, maxQueueSize: 10 } }).batch.maxBatchSize).toBe(10);
  });

  it('refuses a Langfuse secret key in a browser page and explains the collector relay', () => {
    (globalThis as { document?: unknown }).document = {};
    const opts = { langfuse: { publicKey: 'pk-lf-1', secretKey: 'sk-lf-1' } };
    expect(() => resolveInit(opts)).toThrowError(/"langfuse" cannot be used in a browser: .*secret key.*collector/);
    expect(() => init(opts)).toThrowError(/init\(\): "langfuse" cannot be used in a browser/);
    // The public key alone is told the same, not first that a secret key is missing.
    expect(() => resolveInit({ langfuse: { publicKey: 'pk-lf-1' } })).toThrowError(/"langfuse" cannot be used in a browser/);
    expect(() => resolveInit({ ...opts, dangerouslyAllowSecretInBrowser: true })).not.toThrow();
  });

  it('refuses a secret API key in the headers or ingest token a page sends, Basic credentials included', () => {
    (globalThis as { document?: unknown }).document = {};
    const lfKey = 'sk-lf-0a1b2c3d-4e5f-6789-abcd-ef0123456789';
    const basic = `Basic ${Buffer.from(`pk-lf-1:${lfKey}`).toString('base64')}`;
    const endpoint = 'https://lf.example/api/public/otel/v1/traces';
    expect(() => resolveInit({ endpoint, headers: { Authorization: basic } })).toThrowError(/init\(\): "headers\["Authorization"\]" holds a secret API key \(sk-…\), which anyone who opens the page can read/);
    expect(() => resolveInit({ endpoint, headers: { 'x-api-key': 'sk-proj-abcdefghijklmnop1234' } })).toThrowError('"headers["x-api-key"]" holds a secret API key');
    expect(() => init({ endpoint, ingestToken: lfKey })).toThrowError('init(): "ingestToken" holds a secret API key');
    // A user's own token, a public ingest token, and the page's escape hatch for local development.
    expect(() => resolveInit({ endpoint, headers: { Authorization: 'Bearer eyJhbGciOi.eyJzdWIiOiIx.c2lnbmF0dXJl', 'x-task': 'task-abcdefghijklmnopqrstu' } })).not.toThrow();
    expect(() => resolveInit({ endpoint, headers: { Authorization: 'Basic !!not base64!!' } })).not.toThrow();
    expect(() => resolveInit({ endpoint, ingestToken: 'pub_4f1c2a9e' } as never)).not.toThrow();
    expect(() => resolveInit({ endpoint, headers: { Authorization: basic }, dangerouslyAllowSecretInBrowser: true })).not.toThrow();
    // A server holds its keys.
    (globalThis as { document?: unknown }).document = undefined;
    expect(() => resolveInit({ endpoint, headers: { Authorization: basic } })).not.toThrow();
  });

  it('accepts a Langfuse secret key on a server, also one whose `document` is null', () => {
    expect(resolveInit({ langfuse: { publicKey: 'pk-lf-1', secretKey: 'sk-lf-1' } }).langfuse?.secretKey).toBe('sk-lf-1');
    (globalThis as { document?: unknown }).document = null;
    expect(resolveInit({ langfuse: { publicKey: 'pk-lf-1', secretKey: 'sk-lf-1' } }).langfuse?.secretKey).toBe('sk-lf-1');
  });

  it("takes a page's relative endpoint where there is no page (server-side rendering) as sending nothing, and says so once", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const tracer = init({ endpoint: '/v1/traces' });
      tracer.createTrace('rendered on the server').finish();
      expect((await getStatus()).transport).toBe('none');
      init({ endpoint: './v1/traces' });
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toContain('init(): "endpoint" "/v1/traces" is relative, and this runtime has no page');
    } finally {
      warn.mockRestore();
    }
  });

  it("refuses a page's endpoint that is a host without its scheme, or a path relative to the route", () => {
    (globalThis as { document?: unknown }).document = {};
    vi.stubGlobal('location', new URL('https://shop.example/app/chat'));
    try {
      for (const endpoint of ['collector.example.com/v1/traces', 'v1/traces', 'https:collector.example.com/v1/traces']) {
        expect(() => resolveInit({ endpoint })).toThrowError(
          `[edgetrace] init(): "endpoint" must be an http(s) URL with its scheme, or a path of the page ("/v1/traces"), got "${endpoint}".`,
        );
      }
      // Whitespace around it, as a multi-line data-endpoint attribute has, is URL parsing's to drop.
      for (const endpoint of ['/v1/traces', './v1/traces', '../v1/traces', '//collector.example.com/v1/traces', 'HTTPS://collector.example.com/v1/traces', ' https://c.example/v1/traces', '\n  /v1/traces\n']) {
        expect(resolveInit({ endpoint }).endpoint, endpoint).toBe(endpoint);
      }
    } finally {
      vi.unstubAllGlobals();
      (globalThis as { document?: unknown }).document = undefined;
    }
  });

  it('rejects a bad endpoint or headers at init', () => {
    expect(() => init({ endpoint: 42 as never })).toThrowError('"endpoint"');
    expect(() => init({ endpoint: 'https://c.test/v1/traces', headers: 'x' as never })).toThrowError('"headers"');
  });

  it('rejects at init an endpoint, header or token no request could carry', () => {
    // No page here: a relative endpoint has nothing to resolve against.
    expect(() => init({ endpoint: 'not a url' })).toThrowError('"endpoint" must be an absolute http(s) URL, got "not a url"');
    expect(() => init({ endpoint: 'https://c.test/v1/traces', headers: { 'x tenant': 'a' } })).toThrowError('"headers["x tenant"]"');
    expect(() => init({ endpoint: 'https://c.test/v1/traces', headers: { 'x-tenant': 'ключ' } })).toThrowError('"headers["x-tenant"]"');
    expect(() => init({ endpoint: 'https://c.test/v1/traces', ingestToken: 'токен-123456' })).toThrowError('"ingestToken"');
    // fetch refuses a URL with credentials; the message does not repeat the password.
    const withPassword = (): unknown => init({ endpoint: 'https://otlp:s3cretPw@c.test/v1/traces' });
    expect(withPassword).toThrowError('"endpoint" must be an absolute http(s) URL, got "https://[REDACTED]@c.test/v1/traces", with user:password');
    expect(withPassword).not.toThrowError('s3cretPw');
    expect(() => init({ endpoint: 'https://c.test/v1/traces', langfuse: { publicKey: 'pk', secretKey: 'sk', baseUrl: 'https://a:b@lf.test' } } as never)).toThrowError('"langfuse.baseUrl"');
  });

  it('rejects timeouts past what a timer can wait, and counts past 2^31 - 1', () => {
    expect(() => resolveConfig({ batch: { exportTimeoutMs: Number.MAX_SAFE_INTEGER } })).toThrowError('"batch.exportTimeoutMs" must be a whole number ≤ 2147483647');
    expect(() => resolveConfig({ batch: { delayMs: 2 ** 31 } })).toThrowError('"batch.delayMs"');
    expect(resolveConfig({ batch: { exportTimeoutMs: 2 ** 31 - 1 } }).batch.exportTimeoutMs).toBe(2 ** 31 - 1);
    expect(() => init({ endpoint: 'https://c.test/v1/traces', delivery: { requestTimeoutMs: 2 ** 31 } })).toThrowError('"delivery.requestTimeoutMs" must be a whole number ≤ 2147483647');
  });

  it('checks resource values and filter kinds and types, which would otherwise fail or drop every span', () => {
    expect(() => resolveConfig({ resource: { 'k8s.pod.uid': 1n as never } })).toThrowError('"resource["k8s.pod.uid"]" must be a string, number, boolean or an array of one of them');
    expect(() => resolveConfig({ resource: { cloud: { region: 'eu' } as never } })).toThrowError('"resource["cloud"]"');
    // A list with a hole would lose it in the encoders, moving the later values up.
    // eslint-disable-next-line no-sparse-arrays
    expect(() => resolveConfig({ resource: { 'host.ip': ['10.0.0.1', , '10.0.0.3'] as never } })).toThrowError('"resource["host.ip"]"');
    expect(() => resolveConfig({ resource: { tags: ['a', 1] as never } })).toThrowError('"resource["tags"]"');
    expect(resolveConfig({ resource: { region: 'eu', zones: ['a', 'b'], replicas: 3 } }).resource).toMatchObject({ region: 'eu', zones: ['a', 'b'], replicas: 3 });
    expect(() => resolveConfig({ filter: { kinds: ['SERVER' as never] } })).toThrowError('"filter.kinds" must be an array of "internal", "server"');
    expect(() => resolveConfig({ filter: { types: ['generations' as never] } })).toThrowError('"filter.types"');
    expect(resolveConfig({ filter: { kinds: ['server'], types: ['generation'] } }).filter).toEqual({ kinds: ['server'], types: ['generation'] });
  });

  it('adds the g flag to user redaction patterns so every match goes', () => {
    const cfg = resolveConfig({ redact: { patterns: [/acct-\d+/] } });
    expect(cfg.secretPatterns.at(-1)?.flags).toContain('g');
  });

  it('puts service, version and environment in the resource', () => {
    const cfg = resolveConfig({ serviceName: 'chat', serviceVersion: '1.2.0', environment: 'prod', resource: { region: 'eu' } });
    expect(cfg.resource).toMatchObject({ 'service.name': 'chat', 'service.version': '1.2.0', 'deployment.environment.name': 'prod', region: 'eu' });
  });
});
