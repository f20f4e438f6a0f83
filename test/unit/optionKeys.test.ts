import { afterEach, describe, expect, it, vi } from 'vitest';
import { init, stop } from '../../src/core/global';
import { createTracer } from '../../src/core/tracer';
import { createMemoryExporter } from '../../src/export/memory';
import { createOtlpExporter } from '../../src/export/http';
import { createLangfuseExporter } from '../../src/export/langfuse';
import { createConsoleExporter } from '../../src/export/console';
import { createJsonlExporter } from '../../src/server/jsonl';
import { createCollector } from '../../src/server/collector/createCollector';
import { instrumentVitals } from '../../src/vitals';
import { installTraceWorker } from '../../worker/index';
import { checkKeys } from '../../src/lib/checkKeys';

// A misspelt option is a configuration mistake like a wrong value: it throws at the call that
// takes it, naming the key and the option it is likely a typo of, instead of being ignored.
describe('unknown option keys', () => {
  afterEach(() => stop());

  it('init() refuses a misspelt option of any of its parts, and suggests the right one', () => {
    const cases: [object, string][] = [
      [{ propagateTO: ['https://api.example.com'] }, '"propagateTO" is not an option (did you mean "propagateTo"?).'],
      [{ endpont: '/v1/traces' }, '"endpont" is not an option (did you mean "endpoint"?).'],
      [{ serviceNmae: 'web' }, '"serviceNmae" is not an option (did you mean "serviceName"?).'],
      [{ workerURL: '/sw.js' }, '"workerURL" is not an option (did you mean "workerUrl"?).'],
      [{ tracesSampleRate: 0.5 }, '"tracesSampleRate" is not an option.'],
      [{ limits: { maxAtributes: 5 } }, '"limits.maxAtributes" is not an option (did you mean "limits.maxAttributes"?).'],
      [{ redact: { pattern: [/x/g] } }, '"redact.pattern" is not an option (did you mean "redact.patterns"?).'],
      [{ filter: { minDuration: 5 } }, '"filter.minDuration" is not an option (did you mean "filter.minDurationMs"?).'],
      [{ batch: { wait: 10 } }, '"batch.wait" is not an option.'],
      [{ instrument: { fetches: false } }, '"instrument.fetches" is not an option (did you mean "instrument.fetch"?).'],
      [{ delivery: { maxBatchRecord: 10 } }, '"delivery.maxBatchRecord" is not an option (did you mean "delivery.maxBatchRecords"?).'],
      [{ pageBuffer: { maxRecord: 10 } }, '"pageBuffer.maxRecord" is not an option (did you mean "pageBuffer.maxRecords"?).'],
      [{ langfuse: { publicKey: 'pk-lf-1', secretKey: 'sk-lf-1', baseURL: 'http://localhost:3000' } }, '"langfuse.baseURL" is not an option (did you mean "langfuse.baseUrl"?).'],
      // The start or end of an option's name, as other SDKs and the tag's attributes spell it.
      [{ service: 'web' }, '"service" is not an option (did you mean "serviceName"?).'],
      [{ propagate: ['https://api.example.com'] }, '"propagate" is not an option (did you mean "propagateTo"?).'],
      [{ token: 'pub_1' }, '"token" is not an option (did you mean "ingestToken"?).'],
      [{ url: '/v1/traces' }, '"url" is not an option.'],
    ];
    for (const [opts, message] of cases) expect(() => init(opts as never), JSON.stringify(opts)).toThrowError(new TypeError(`[edgetrace] init(): ${message}`));
  });

  it('init() takes every option it documents, and a key given as undefined counts as given', () => {
    const exporter = createMemoryExporter();
    expect(() =>
      init({
        exporter,
        serviceName: 'web',
        sampleRate: 1,
        limits: { maxAttributes: 10, maxStringLength: 100, maxEvents: 10, maxLinks: 2 },
        redact: { patterns: [], defaults: true, queryValues: true, keepQueryKeys: [] },
        filter: { minDurationMs: 0, include: [], exclude: [], types: ['span'], kinds: ['internal'] },
        batch: { maxBatchSize: 1, maxQueueSize: 2, delayMs: 1, exportTimeoutMs: 10 },
        instrument: { fetch: false, xhr: false, streams: false, interactions: false, navigation: false, errors: false, session: false },
        propagateTo: [],
        ignoreUrls: [],
        delivery: { maxBatchRecords: 10, requestTimeoutMs: 100 },
        pageBuffer: { maxRecords: 10, batchRecords: 5, maxDelayMs: 10 },
        transport: 'memory',
      }),
    ).not.toThrow();
    expect(() => init({ exporter, sampelRate: undefined } as never)).toThrowError('"sampelRate" is not an option (did you mean "sampleRate"?)');
  });

  it('createTracer() refuses keys of init() it does not take', () => {
    expect(() => createTracer({ endpoint: '/v1/traces' } as never)).toThrowError('[edgetrace] createTracer(): "endpoint" is not an option.');
    expect(() => createTracer({ limits: { maxEvent: 1 } } as never)).toThrowError('[edgetrace] createTracer(): "limits.maxEvent" is not an option (did you mean "limits.maxEvents"?)');
    expect(createTracer({ serviceName: 'svc' }).config.serviceName).toBe('svc');
  });

  it('the exporters, the collector and vitals refuse unknown keys too', () => {
    expect(() => createOtlpExporter({ url: 'http://localhost:4318/v1/traces', header: {} } as never)).toThrowError('[edgetrace] createOtlpExporter(): "header" is not an option (did you mean "headers"?)');
    expect(() => createOtlpExporter({ url: 'http://localhost:4318/v1/traces', scoresUrl: 42 } as never)).toThrowError('"scoresUrl" must be an http(s) URL or false, got 42');
    expect(() => createLangfuseExporter({ publicKey: 'pk', secretKey: 'sk', host: 'http://localhost:3000' } as never)).toThrowError('[edgetrace] createLangfuseExporter(): "host" is not an option.');
    expect(() => createLangfuseExporter({ publicKey: 'pk', secretKey: 'sk', environment: 7 } as never)).toThrowError('"environment" must be letters, digits, "-" and "_" only (Langfuse stores any other value as "default"), got 7');
    expect(() => createConsoleExporter({ logger: console.log } as never)).toThrowError('[edgetrace] createConsoleExporter(): "logger" is not an option.');
    expect(() => createConsoleExporter({ log: 'yes' } as never)).toThrowError('"log" must be a function');
    expect(() => createJsonlExporter({ file: 'x.jsonl' } as never)).toThrowError('[edgetrace] createJsonlExporter(): "file" is not an option.');
    expect(() => createJsonlExporter({ path: '' })).toThrowError('"path" must be a non-empty file path');
    const forward = createMemoryExporter();
    expect(() => createCollector({ forward, readtoken: 'x'.repeat(8) } as never)).toThrowError('[edgetrace] createCollector(): "readtoken" is not an option (did you mean "readToken"?)');
    expect(() => createCollector({ forward, rateLimit: { perSec: 5 } } as never)).toThrowError('"rateLimit.perSec" is not an option (did you mean "rateLimit.perSecond"?).');
    expect(() => createCollector({ forward, limits: { maxDepht: 5 } } as never)).toThrowError('"limits.maxDepht" is not an option (did you mean "limits.maxDepth"?)');
    expect(() => createCollector({ forward, limits: { maxDepth: 0 } })).toThrowError('"limits.maxDepth" must be a whole number ≥ 1, got 0');
    expect(() => createCollector({ forward, retryAfterSec: '10' } as never)).toThrowError('"retryAfterSec" must be a whole number ≥ 1, got "10"');
    expect(() => createCollector({ forward, basePath: 'telemetry' })).toThrowError('"basePath" must be a path such as "/telemetry", got "telemetry"');
    expect(() => createCollector({ forward, onError: 'log' } as never)).toThrowError('"onError" must be a function');
    expect(() => createCollector({ forward, basePath: '/telemetry/', limits: { maxDepth: 4 }, rateLimit: { perSecond: 5 } })).not.toThrow();
    expect(() => instrumentVitals({ reportAllChange: true } as never)).toThrowError('[edgetrace] instrumentVitals(): "reportAllChange" is not an option (did you mean "reportAllChanges"?)');
    expect(() => instrumentVitals({ reportAllChanges: 'yes' } as never)).toThrowError('"reportAllChanges" must be true or false');
  });

  it("installTraceWorker() warns of an unknown key rather than stop the site's worker from installing", () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      // Outside a service worker it then throws for that, so the warning came first.
      expect(() => installTraceWorker({ endpoint: '/v1/traces', takeControll: true } as never)).toThrowError('must run in a service worker');
      expect(() => installTraceWorker({ delivery: { backoffCap: 1 } } as never)).toThrowError('must run in a service worker');
      expect(warn.mock.calls.map((c) => c[0])).toEqual([
        '[edgetrace] installTraceWorker(): "takeControll" is not an option (did you mean "takeControl"?).',
        '[edgetrace] installTraceWorker(): "delivery.backoffCap" is not an option (did you mean "delivery.backoffCapMs"?).',
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it('suggests by case first, then by a letter or two, and nothing for what is far from every option', () => {
    const known = ['maxEvents', 'maxLinks'];
    expect(() => checkKeys('f()', { MAXEVENTS: 1 }, known)).toThrowError('"MAXEVENTS" is not an option (did you mean "maxEvents"?)');
    expect(() => checkKeys('f()', { maxLink: 1 }, known)).toThrowError('(did you mean "maxLinks"?)');
    expect(() => checkKeys('f()', { colour: 1 }, known)).toThrowError(/"colour" is not an option\.$/);
    expect(() => checkKeys('f()', { maxEvents: 1, maxLinks: 2 }, known)).not.toThrow();
  });
});
