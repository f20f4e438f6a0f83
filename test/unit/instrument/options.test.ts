import { describe, expect, it } from 'vitest';
import { resolveInstrument } from '../../../src/instrument/options';
import { toUrlTest, anyUrl } from '../../../src/lib/matchUrl';

describe('resolveInstrument', () => {
  it('turns every instrumentation on with defaults when nothing is given', () => {
    const r = resolveInstrument({});
    expect(r).toMatchObject({
      fetch: true,
      xhr: true,
      streams: true,
      interactions: true,
      navigation: true,
      errors: true,
      session: true,
      interactionIdleMs: 500,
      interactionTimeoutMs: 30_000,
      sessionTimeoutMs: 1_800_000,
      propagateTo: [],
      ignoreUrls: [],
    });
  });

  it('turns everything off with instrument: false and single ones off by name', () => {
    const off = resolveInstrument({ instrument: false });
    expect([off.fetch, off.xhr, off.interactions, off.navigation, off.errors, off.session]).toEqual([false, false, false, false, false, false]);
    const some = resolveInstrument({ instrument: { xhr: false, session: false } });
    expect(some).toMatchObject({ fetch: true, xhr: false, session: false, interactions: true });
  });

  it('names the option, what was expected and what came in', () => {
    expect(() => resolveInstrument({ propagateTo: 'https://api.test' as never })).toThrow(
      '[edgetrace] init(): "propagateTo" must be an array of URL strings and RegExps, got "https://api.test".',
    );
    expect(() => resolveInstrument({ ignoreUrls: [42] as never })).toThrow('"ignoreUrls[0]" must be a URL with its scheme ("https://api.example.com"), a path ("/api/") or a RegExp, got 42.');
    expect(() => resolveInstrument({ ignoreUrls: 'x' as never })).toThrow('"ignoreUrls" must be an array');
    // Targets written as other SDKs take them would resolve as paths of the page and match nothing.
    for (const [i, bad] of [[1, 'api.example.com'], [1, 'localhost:3000'], [1, '*'], [1, ''], [1, 'https://']] as const) {
      expect(() => resolveInstrument({ propagateTo: ['https://ok.example', bad] })).toThrow(`"propagateTo[${i}]" must be a URL with its scheme ("https://api.example.com"), a path ("/api/") or a RegExp, got ${JSON.stringify(bad)}.`);
    }
    expect(resolveInstrument({ propagateTo: ['https://api.example.com', 'http://localhost:3000/v1/', '/api/', './rel/', '../up/', '//cdn.example.com/', /^https:\/\/x\//] }).propagateTo).toHaveLength(7);
    expect(() => resolveInstrument({ instrument: 'all' as never })).toThrow('"instrument" must be false or an object of booleans, got "all"');
    expect(() => resolveInstrument({ instrument: { fetch: 'yes' as never } })).toThrow('"instrument.fetch" must be a boolean, got "yes"');
    expect(() => resolveInstrument({ interactionIdleMs: -1 })).toThrow('"interactionIdleMs" must be a number of milliseconds > 0 and ≤ 2147483647, got -1');
    expect(() => resolveInstrument({ interactionTimeoutMs: 2 ** 31 })).toThrow('"interactionTimeoutMs" must be a number of milliseconds > 0 and ≤ 2147483647');
    expect(() => resolveInstrument({ sessionTimeoutMs: Number.NaN })).toThrow('"sessionTimeoutMs"');
    expect(() => resolveInstrument({ interactionIdleMs: 1000, interactionTimeoutMs: 10 })).toThrow('"interactionTimeoutMs" must be at least interactionIdleMs (1000), got 10');
  });

  it('throws TypeError', () => {
    expect(() => resolveInstrument({ propagateTo: [null] as never })).toThrow(TypeError);
  });
});

describe('toUrlTest', () => {
  const test = (pattern: string | RegExp, url: string, base?: string): boolean => {
    const u = new URL(url);
    return toUrlTest(pattern, base)(u.href, u.origin);
  };

  it('matches an origin-only string by exact origin, never by prefix of the host', () => {
    expect(test('https://api.example.com', 'https://api.example.com/v1/chat')).toBe(true);
    expect(test('https://api.example.com/', 'https://api.example.com/v1/chat')).toBe(true);
    expect(test('https://api.example.com', 'https://api.example.com.evil.test/v1')).toBe(false);
    expect(test('https://api.example.com', 'http://api.example.com/v1')).toBe(false);
    expect(test('https://api.example.com', 'https://api.example.com:8443/v1')).toBe(false);
  });

  it('matches other strings as URL prefixes, relative ones against the base', () => {
    expect(test('https://api.example.com/v1/', 'https://api.example.com/v1/chat')).toBe(true);
    expect(test('https://api.example.com/v1/', 'https://api.example.com/v2/chat')).toBe(false);
    expect(test('/v1/traces', 'https://app.test/v1/traces', 'https://app.test/page')).toBe(true);
    expect(test('/v1/traces', 'https://other.test/v1/traces', 'https://app.test/page')).toBe(false);
  });

  it('never matches a string as a substring', () => {
    expect(test('api.example.com', 'https://evil.test/?next=api.example.com')).toBe(false);
  });

  it('tests RegExps on the full URL, also with the g flag, repeatably', () => {
    const re = /api\.example\.com/g;
    expect(test(re, 'https://api.example.com/x')).toBe(true);
    expect(test(re, 'https://api.example.com/x')).toBe(true);
    expect(test(/^https:\/\/[^/]*\.internal\//, 'https://svc.internal/x')).toBe(true);
  });

  it('anyUrl is false for no patterns', () => {
    expect(anyUrl([], 'https://a.test/', 'https://a.test')).toBe(false);
  });
});
