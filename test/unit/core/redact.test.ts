import { describe, expect, it } from 'vitest';
import { DEFAULT_SECRET_PATTERNS, REDACTED, redactSecrets, redactUrl, redactUrlsIn } from '../../../src/core/redact';
import { testTracer } from '../../helpers/collect';
import type { RedactOptions } from '../../../src/config';

describe('redactSecrets', () => {
  it.each([
    ['Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload', `Authorization: Bearer ${REDACTED}`],
    ['key sk-proj-abcdefghijklmnopqrstuvwx used', `key ${REDACTED} used`],
    ['langfuse sk-lf-1234567890abcdef1234', `langfuse ${REDACTED}`],
    ['aws AKIAIOSFODNN7EXAMPLE here', `aws ${REDACTED} here`],
    ['url?api_key=abcd1234efgh&x=1', `url?api_key=${REDACTED}&x=1`],
    ['{"password": "hunter22"}', `{"password": "${REDACTED}"}`],
    ['token ghp_abcdefghijklmnopqrstuvwxyz0123456789', `token ${REDACTED}`],
    // JSON text inside JSON (a request body among recorded arguments): the quotes are escaped.
    [JSON.stringify(JSON.stringify({ api_key: 'tvly-abcd1234efgh5678', q: 'x' })), `"{\\"api_key\\":\\"${REDACTED}\\",\\"q\\":\\"x\\"}"`],
    [JSON.stringify(JSON.stringify(JSON.stringify({ password: 'hunter22' }))).slice(1, -1), JSON.stringify(JSON.stringify(`{"password":"${REDACTED}"}`)).slice(1, -1)],
    ['password=ab\\cdefg x', `password=${REDACTED} x`],
    // A double-quoted value runs to its closing quote: a passphrase loses every word.
    ['{"password": "correct horse battery staple", "user": "bob"}', `{"password": "${REDACTED}", "user": "bob"}`],
    ['config password: "two words" end', `config password: "${REDACTED}" end`],
    ['refresh_token=1//0gAbCdEf expired', `refresh_token=${REDACTED} expired`],
    ['{"id_token":"eyJabc.def.ghi"}', `{"id_token":"${REDACTED}"}`],
    // The shortest string the default patterns are run on: 11 characters.
    ['token=abcde', `token=${REDACTED}`],
    ['secret=abcd', `secret=${REDACTED}`],
    ['apikey=1234', `apikey=${REDACTED}`],
  ])('redacts %s', (input, expected) => {
    expect(redactSecrets(input, DEFAULT_SECRET_PATTERNS)).toBe(expected);
  });

  it('redacts every occurrence, not only the first', () => {
    const out = redactSecrets('a sk-aaaaaaaaaaaaaaaaaaaa b sk-bbbbbbbbbbbbbbbbbbbb', DEFAULT_SECRET_PATTERNS);
    expect(out).toBe(`a ${REDACTED} b ${REDACTED}`);
  });

  it('leaves ordinary text alone', () => {
    const text = 'The skeleton key opened the basic door at 10:30; password reset flow explained; tokens: 1234, max_token=4096.';
    expect(redactSecrets(text, DEFAULT_SECRET_PATTERNS)).toBe(text);
  });
});

describe('redactUrl', () => {
  it.each([
    ['https://a.test/p?q=cats&key=1', `https://a.test/p?q=${REDACTED}&key=${REDACTED}`],
    ['/api/chat?session=abc#frag', `/api/chat?session=${REDACTED}`],
    ['https://a.test/p', 'https://a.test/p'],
    ['https://a.test/p#only-hash?x=1', 'https://a.test/p'],
    // A part without `=` is a value: magic links read `?<token>`.
    ['https://a.test/p?flag&x=', `https://a.test/p?${REDACTED}&x=${REDACTED}`],
    ['https://a.test/verify?8f3a9c2e7b1d4f60a5e2c9d8', `https://a.test/verify?${REDACTED}`],
    ['https://alice:hunter2@a.test/p?x=1', `https://a.test/p?x=${REDACTED}`],
    ['https://token@a.test:8443/p', 'https://a.test:8443/p'],
    ['https://a.test/users/@bob?x=1', `https://a.test/users/@bob?x=${REDACTED}`],
    // A hash router's route stays, its own query redacted; an anchor or a token in the fragment goes.
    ['https://a.test/app#/users/1', 'https://a.test/app#/users/1'],
    ['https://a.test/app?x=1#!/users/1?tab=2&t=abc', `https://a.test/app?x=${REDACTED}#!/users/1?tab=${REDACTED}&t=${REDACTED}`],
    ['https://a.test/cb#access_token=ya29.a0&state=1', 'https://a.test/cb'],
    ['/app#/search?q=cats', `/app#/search?q=${REDACTED}`],
    // An OAuth answer a hash router rewrote into a route keeps no code.
    ['https://app.test/#/state=abc&session_state=x&code=AUTHCODE123', `https://app.test/#/state=${REDACTED}&session_state=${REDACTED}&code=${REDACTED}`],
    ['https://app.test/#/state=a&code=b?x=1', `https://app.test/#/state=${REDACTED}&code=${REDACTED}`],
  ])('redacts %s', (input, expected) => {
    expect(redactUrl(input)).toBe(expected);
  });

  it('keeps allowed keys', () => {
    expect(redactUrl('/s?page=2&token=x', ['page'])).toBe(`/s?page=2&token=${REDACTED}`);
    expect(redactUrl('/s?debug&t=x', ['debug'])).toBe(`/s?debug&t=${REDACTED}`);
  });
});

describe('redactUrlsIn', () => {
  it.each([
    // Chromium's frame for an inline script names the page's URL, OAuth code and all.
    ['at f (http://127.0.0.1:37133/cb?code=SECRET123&state=s1:5:77)', `at f (http://127.0.0.1:37133/cb?code=${REDACTED}&state=${REDACTED}:5:77)`],
    ['at http://alice:hunter2@h.test/app.js:1:2', 'at http://h.test/app.js:1:2'],
    ['load https://api.test/v1/me?token=abcd1234 failed.', `load https://api.test/v1/me?token=${REDACTED} failed.`],
    ['callback https://app.test/cb#access_token=ya29.a0', 'callback https://app.test/cb'],
    ['see http://[::1]:8080/x?y=1 and "https://b.test/?z=2"', `see http://[::1]:8080/x?y=${REDACTED} and "https://b.test/?z=${REDACTED}"`],
    ['no URL: a?b=c and 10:30', 'no URL: a?b=c and 10:30'],
    // A relative URL quoted by a fetch wrapper's error (ofetch's `FetchError`), and in a stack frame.
    ['[GET] "/api/users?email=jane@example.com&invite=8f3a9c2d": 404 Not Found', `[GET] "/api/users?email=${REDACTED}&invite=${REDACTED}": 404 Not Found`],
    ['at load (/assets/app.js?v=3:5:7)', `at load (/assets/app.js?v=${REDACTED}:5:7)`],
    ['/reset?token=abc sent', `/reset?token=${REDACTED} sent`],
    ['is it and/or? What is AI?', 'is it and/or? What is AI?'],
  ])('redacts %s', (input, expected) => {
    const out = redactUrlsIn(input);
    expect(out).toBe(expected);
    // Redacting again changes nothing: a value cleaned twice is stored as cleaned once.
    expect(redactUrlsIn(out)).toBe(out);
  });
});

describe('redaction in spans', () => {
  it('redacts attribute values, URL query values, input and event attributes by default', () => {
    const { tracer, byName } = testTracer();
    const s = tracer.startSpan('s');
    s.setAttribute('http.request.header.authorization', 'Bearer abcdefghijklmnop');
    s.setAttribute('url.full', 'https://api.test/v1?user=bob&q=x');
    s.setInput({ apiKey: 'sk-abcdefghijklmnopqrstu' });
    s.recordEvent('log', { line: 'api_key=zzzzzzzzzzzz' });
    s.end();
    const r = byName('s');
    expect(r.attrs['http.request.header.authorization']).toBe(`Bearer ${REDACTED}`);
    expect(r.attrs['url.full']).toBe(`https://api.test/v1?user=${REDACTED}&q=${REDACTED}`);
    expect(r.attrs['langfuse.observation.input']).toBe(`{"apiKey":"${REDACTED}"}`);
    expect(r.events[0]?.attrs?.line).toBe(`api_key=${REDACTED}`);
  });

  it('redacts the URLs quoted in error messages, stack traces, status messages and names, not in other attributes', () => {
    const { tracer, byName } = testTracer();
    const s = tracer.startSpan('GET https://api.test/x?token=abc');
    const error = new Error('load https://api.test/me?token=abcd1234 failed');
    error.stack = 'Error: load failed\n    at cb (https://app.test/cb?code=SECRET123&state=s1:5:77)';
    s.recordError(error);
    s.setAttribute('prompt', 'summarise https://news.test/a?id=42');
    s.setAttribute('links', ['https://a.test/?k=v']);
    s.end();
    const r = byName(`GET https://api.test/x?token=${REDACTED}`);
    const ex = r.events[0]!.attrs!;
    expect(ex['exception.message']).toBe(`load https://api.test/me?token=${REDACTED} failed`);
    expect(ex['exception.stacktrace']).toBe(`Error: load failed\n    at cb (https://app.test/cb?code=${REDACTED}&state=${REDACTED}:5:77)`);
    expect(r.status).toEqual({ code: 'error', message: `load https://api.test/me?token=${REDACTED} failed` });
    expect(r.attrs['langfuse.observation.status_message']).toBe(`load https://api.test/me?token=${REDACTED} failed`);
    // What the app wrote as data stays as written.
    expect(r.attrs.prompt).toBe('summarise https://news.test/a?id=42');
    expect(r.attrs.links).toEqual(['https://a.test/?k=v']);
    // Query values kept: fragments and credentials still go.
    const kept = testTracer({ redact: { queryValues: false } });
    const k = kept.tracer.startSpan('GET https://api.test/x?q=cats');
    k.setAttribute('url.full', 'https://u:pw@app.test/cb?q=cats&code=1#/cb?code=oauth123&state=s1');
    k.setAttribute('url.query', 'q=cats');
    k.recordError(new Error('connect https://svc:Pa55word99@db.internal/x?q=1 refused'));
    k.end();
    const kr = kept.byName('GET https://api.test/x?q=cats');
    expect(kr.attrs['url.full']).toBe('https://app.test/cb?q=cats&code=1#/cb?code=oauth123&state=s1');
    expect(kr.attrs['url.query']).toBe('q=cats');
    expect(kr.events[0]!.attrs!['exception.message']).toBe('connect https://db.internal/x?q=1 refused');
    const token = testTracer({ redact: { queryValues: false } });
    token.tracer.startSpan('s').setAttribute('url.full', 'https://app.test/cb#access_token=ya29.a0&state=xyz').end();
    expect(token.byName('s').attrs['url.full']).toBe('https://app.test/cb');
    // A secret-named query key just before the fragment does not take the fragment's `#` with it.
    const cb = 'https://app.test/cb?token=abc12345#access_token=ya29.a0&email=jane@example.com&id_token_hint=XYZ';
    const cases: [RedactOptions | undefined, string][] = [
      [undefined, `https://app.test/cb?token=${REDACTED}`],
      [{ queryValues: false }, `https://app.test/cb?token=${REDACTED}`],
      [{ keepQueryKeys: ['email'] }, `https://app.test/cb?token=${REDACTED}`],
    ];
    for (const [redact, full] of cases) {
      const t = testTracer({ redact });
      t.tracer.startSpan('s').setAttribute('url.full', cb).end();
      t.tracer.startSpan('e').recordError(new Error(`load ${cb} failed`)).end();
      expect(t.byName('s').attrs['url.full']).toBe(full);
      expect(t.byName('e').events[0]!.attrs!['exception.message']).toBe(`load ${full} failed`);
    }
    // All of it off.
    const off = testTracer({ redact: false });
    off.tracer.startSpan('s').setAttribute('url.full', 'https://u:pw@api.test/x?token=abc#t=1').end();
    expect(off.byName('s').attrs['url.full']).toBe('https://u:pw@api.test/x?token=abc#t=1');
  });

  it('applies user patterns and can be turned off', () => {
    const custom = testTracer({ redact: { patterns: [/acct-\d{4,}/] } });
    custom.tracer.startSpan('s').setAttribute('note', 'paid from acct-123456 and acct-999999').end();
    expect(custom.byName('s').attrs.note).toBe(`paid from ${REDACTED} and ${REDACTED}`);
    // Shorter than any default pattern can match, but a user's pattern can.
    const pin = testTracer({ redact: { patterns: [/\b\d{6}\b/], defaults: false } });
    pin.tracer.startSpan('s').setAttribute('pin', 'pin 123456').setAttribute('short', 'id 42').end();
    expect(pin.byName('s').attrs).toMatchObject({ pin: `pin ${REDACTED}`, short: 'id 42' });
    expect(redactSecrets('pin 123456', [/\b\d{6}\b/g])).toBe(`pin ${REDACTED}`);
    // A user's groups capture the secret itself: the whole match goes, not just what follows group 1.
    const grouped = testTracer({ redact: { patterns: [/pin=(\d+)/, /(\d{4})-(\d{4})-(\d{4})-(\d{4})/] } });
    grouped.tracer.startSpan('s').setAttribute('note', 'user pin=482915 paid with 4111-1111-1111-1111').setInput({ card: '4111-1111-1111-1111' }).end();
    expect(grouped.byName('s').attrs.note).toBe(`user ${REDACTED} paid with ${REDACTED}`);
    expect(grouped.byName('s').attrs['langfuse.observation.input']).toBe(`{"card":"${REDACTED}"}`);
    const off = testTracer({ redact: false });
    off.tracer.startSpan('s').setAttribute('url.full', '/x?a=1').setAttribute('t', 'Bearer abcdefghijklmnop').end();
    expect(off.byName('s').attrs).toMatchObject({ 'url.full': '/x?a=1', t: 'Bearer abcdefghijklmnop' });
  });
});
