import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

// Drives `npm run w3c-service` over HTTP the way the official W3C trace-context suite does
// (../shared/reference/w3c-trace-context/HARNESS.md): a loopback "harness" records callbacks, the
// service is POSTed a JSON list of callback URLs with the headers under test, and the test reads
// the headers of the callbacks. Requests are written byte for byte on a socket, so repeated
// header lines, odd casing and whitespace really go over the wire. Every case of EDGE_CASES.md
// that a service can show is here, checked at SPEC_LEVEL=2 / STRICT_LEVEL=2.

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Callback {
  headers: [string, string][];
  body: unknown;
}

let harness: Server;
let harnessBase = '';
const scopes = new Map<string, Callback[]>();
let service: ChildProcess;
let serviceUrl: URL;
let scopeCounter = 0;

beforeAll(async () => {
  harness = createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      // Like the harness, a callback counts only once its body parses as JSON.
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        res.writeHead(400).end();
        return;
      }
      const scope = (req.url ?? '').slice(1).split('.')[0]!;
      const headers: [string, string][] = [];
      for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i]!.toLowerCase(), req.rawHeaders[i + 1]!]);
      const list = scopes.get(scope) ?? [];
      list.push({ headers, body });
      scopes.set(scope, list);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => harness.listen(0, '127.0.0.1', resolve));
  harnessBase = `http://127.0.0.1:${(harness.address() as AddressInfo).port}`;

  // The command the suite's operator runs; detached so the whole npm → node group can be ended.
  service = spawn('npm', ['run', '--silent', 'w3c-service', '--', '--port', '0'], { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  serviceUrl = await new Promise<URL>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`w3c-service did not start: ${out} ${err}`)), 20_000);
    service.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    service.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(new URL(m[1]!));
      }
    });
    service.once('exit', (code) => reject(new Error(`w3c-service exited with ${code}: ${out} ${err}`)));
  });
}, 30_000);

afterAll(async () => {
  if (service?.pid) {
    try {
      process.kill(-service.pid, 'SIGTERM');
    } catch {
      // already gone
    }
  }
  harness?.closeAllConnections();
  await new Promise<void>((resolve) => harness?.close(() => resolve()));
});

/** Sends exactly these header lines (and the JSON list of callbacks) to the service; returns its status. */
const rawPost = (headerLines: readonly string[], body: string): Promise<number> =>
  new Promise((resolve, reject) => {
    const socket = connect(Number(serviceUrl.port), serviceUrl.hostname);
    let reply = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (reply += c));
    socket.on('error', reject);
    socket.on('end', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(reply);
      if (m) resolve(Number(m[1]));
      else reject(new Error(`no HTTP reply: ${JSON.stringify(reply.slice(0, 100))}`));
    });
    const head = [
      `POST ${serviceUrl.pathname} HTTP/1.1`,
      `Host: ${serviceUrl.host}`,
      'Accept: application/json',
      'Content-Type: application/json',
      ...headerLines,
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Connection: close',
      '',
      '',
    ].join('\r\n');
    // Not end(): a half-closed socket reads as a client that went away.
    socket.write(head + body);
  });

/**
 * One harness step: POSTs the headers under test with `n` callback URLs, and returns the
 * callbacks' trace headers. Checks that every callback arrived before the service answered.
 */
const step = async (headers: ReadonlyArray<readonly [string, string]>, n = 1) => {
  const scope = `scope${++scopeCounter}`;
  const body = JSON.stringify(Array.from({ length: n }, (_, i) => ({ url: `${harnessBase}/${scope}.${i}`, arguments: [] })));
  const status = await rawPost(
    headers.map(([k, v]) => `${k}: ${v}`),
    body,
  );
  expect(status).toBe(200);
  const calls = scopes.get(scope) ?? [];
  expect(calls).toHaveLength(n);
  return calls.map((c) => {
    const tp = c.headers.filter(([k]) => k === 'traceparent').map(([, v]) => v);
    const ts = c.headers.filter(([k]) => k === 'tracestate').map(([, v]) => v);
    expect(tp).toHaveLength(1);
    expect(ts.length).toBeLessThanOrEqual(1);
    expect(c.body).toEqual([]);
    return { traceparent: parseTp(tp[0]!), tracestate: ts[0] === undefined ? undefined : parseTs(ts[0]) };
  });
};

// The harness's own reading of what we send: version 00, lowercase hex, non-zero ids.
const parseTp = (value: string) => {
  const m = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value);
  expect(m, `traceparent ${value}`).not.toBeNull();
  const [, version, traceId, parentId, flags] = m!;
  expect(version).toBe('00');
  expect(traceId).not.toMatch(/^0+$/);
  expect(parentId).not.toMatch(/^0+$/);
  return { traceId: traceId!, parentId: parentId!, flags: flags! };
};

// A strict tracestate parser like the harness's: any malformed member is an ERROR for the test.
const KEY_RE = /^[a-z0-9][_0-9a-z\-*/@]{0,255}$/;
const VALUE_RE = /^[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;
const parseTs = (value: string): string[] => {
  expect(value, 'an empty tracestate header must not be sent').not.toBe('');
  const members = value.split(',').map((m) => m.replace(/^[ \t]+|[ \t]+$/g, '')).filter(Boolean);
  expect(members.length).toBeLessThanOrEqual(32);
  expect(value.length).toBeLessThanOrEqual(512);
  for (const m of members) {
    const eq = m.indexOf('=');
    expect(eq, `member ${m}`).toBeGreaterThan(0);
    expect(m.slice(0, eq), `key of ${m}`).toMatch(KEY_RE);
    expect(m.slice(eq + 1), `value of ${m}`).toMatch(VALUE_RE);
  }
  return members;
};

const TRACE = '12345678901234567890123456789012';
const PARENT = '1234567890123456';
const tp = (flags = '01', trace = TRACE, parent = PARENT, version = '00') => `${version}-${trace}-${parent}-${flags}`;

const continues = async (headers: ReadonlyArray<readonly [string, string]>, flags = '01') => {
  const [cb] = await step(headers);
  expect(cb!.traceparent.traceId).toBe(TRACE);
  expect(cb!.traceparent.parentId).not.toBe(PARENT);
  expect(cb!.traceparent.flags).toBe(flags);
  return cb!;
};

const restarts = async (headers: ReadonlyArray<readonly [string, string]>, incomingTraceId = TRACE) => {
  const [cb] = await step(headers);
  expect(cb!.traceparent.traceId).not.toBe(incomingTraceId);
  // A tracestate never survives a traceparent that was rejected.
  expect(cb!.tracestate).toBeUndefined();
  return cb!;
};

describe('W3C test service: traceparent', () => {
  it('starts a valid new trace when no traceparent comes in', async () => {
    const [cb] = await step([]);
    expect(cb!.tracestate).toBeUndefined();
    // New traces set the Level 2 random flag next to sampled.
    expect(cb!.traceparent.flags).toBe('03');
  });

  it('continues a valid version-00 traceparent with a new parent id and the same flags', async () => {
    await continues([['traceparent', tp('01')]]);
    await continues([['traceparent', tp('00')]], '00');
  });

  it('reads the header name in any casing', async () => {
    await continues([['TraceParent', tp()]]);
    await continues([['TRACEPARENT', tp()], ['TRACESTATE', 'foo=1']]);
    const cb = await continues([['traceParent', tp()], ['TraceState', 'foo=1']]);
    expect(cb.tracestate).toEqual(['foo=1']);
  });

  it('trims spaces and tabs around the value', async () => {
    await continues([['traceparent', ` ${tp()}`]]);
    await continues([['traceparent', `${tp()} `]]);
    await continues([['traceparent', `\t ${tp()} \t`]]);
  });

  it('starts a new trace for two traceparent header lines', async () => {
    await restarts([
      ['traceparent', tp('01')],
      ['traceparent', tp('01', '12345678901234567890123456789011', '1234567890123455')],
    ]);
    // Same value twice is still two fields.
    await restarts([
      ['traceparent', tp()],
      ['traceparent', tp()],
    ]);
  });

  it('ignores wrong header names', async () => {
    await restarts([['trace-parent', tp()]]);
    await restarts([['trace.parent', tp()]]);
    await restarts([['trace_parent', tp()], ['tracestate', 'foo=1']]);
  });

  it('accepts a future version with four fields or more, and restarts otherwise', async () => {
    await continues([['traceparent', tp('01', TRACE, PARENT, 'cc')]]);
    await continues([['traceparent', `${tp('01', TRACE, PARENT, 'cc')}-what-the-future-will-be-like`]]);
    await restarts([['traceparent', `${tp('01', TRACE, PARENT, 'cc')}.what-the-future-will-be-like`]]);
    await restarts([['traceparent', tp('01', TRACE, PARENT, 'ff')]]);
  });

  it('keeps only known flag bits from a future version', async () => {
    await continues([['traceparent', tp('ff', TRACE, PARENT, 'cc')]], '03');
  });

  it('rejects version 00 with anything after the flags', async () => {
    await restarts([['traceparent', `${tp()}-extra`]]);
    await restarts([['traceparent', `${tp()}.`]]);
    await restarts([['traceparent', `${tp()}-`]]);
  });

  it('rejects malformed versions', async () => {
    for (const v of ['0x', '.0', '0.', '0', '000', 'ZZ', 'Cc']) await restarts([['traceparent', `${v}-${TRACE}-${PARENT}-01`]]);
  });

  it('rejects malformed trace ids', async () => {
    for (const t of [
      '00000000000000000000000000000000',
      '1234567890123456789012345678901',
      '123456789012345678901234567890123',
      '1234567890123456789012345678901.',
      '1234567890123456789012345678901Z',
      'ABCDEF78901234567890123456789012',
    ]) {
      await restarts([['traceparent', `00-${t}-${PARENT}-01`]], t);
    }
    await restarts([['traceparent', `00--${PARENT}-01`]]);
  });

  it('rejects malformed parent ids', async () => {
    for (const p of ['0000000000000000', '123456789012345', '12345678901234567', '123456789012345.', 'ABCDEF7890123456']) {
      await restarts([['traceparent', `00-${TRACE}-${p}-01`]]);
    }
    await restarts([['traceparent', `00-${TRACE}--01`]]);
  });

  it('rejects malformed flags', async () => {
    for (const f of ['.0', '0.', '0', '000', '0Z', 'AB']) await restarts([['traceparent', `00-${TRACE}-${PARENT}-${f}`]]);
  });

  it('rejects garbage and too few parts', async () => {
    await restarts([['traceparent', 'invalid!']]);
    await restarts([['traceparent', `00-${TRACE}`]]);
    await restarts([['traceparent', '']]);
  });

  it('carries the random flag (SPEC_LEVEL=2), alone and with sampled', async () => {
    await continues([['traceparent', tp('02')]], '02');
    await continues([['traceparent', tp('03')]], '03');
  });

  it('gives three callbacks one trace id and three distinct new parent ids', async () => {
    const cbs = await step([['traceparent', tp('01')], ['tracestate', 'foo=1']], 3);
    const ids = new Set(cbs.map((c) => c.traceparent.parentId));
    expect(ids.size).toBe(3);
    expect(ids.has(PARENT)).toBe(false);
    for (const c of cbs) {
      expect(c.traceparent.traceId).toBe(TRACE);
      expect(c.tracestate).toEqual(['foo=1']);
    }
  });

  it('gives three callbacks one new trace id when the incoming traceparent is invalid', async () => {
    const cbs = await step([['traceparent', `00-${TRACE}-0000000000000000-01`]], 3);
    const traceIds = new Set(cbs.map((c) => c.traceparent.traceId));
    expect(traceIds.size).toBe(1);
    expect(traceIds.has(TRACE)).toBe(false);
    expect(new Set(cbs.map((c) => c.traceparent.parentId)).size).toBe(3);
  });
});

describe('W3C test service: tracestate', () => {
  it('passes a valid tracestate on unchanged', async () => {
    const cb = await continues([['traceparent', tp()], ['tracestate', 'foo=1,bar=2']]);
    expect(cb.tracestate).toEqual(['foo=1', 'bar=2']);
  });

  it('drops tracestate without a traceparent, or with an invalid one', async () => {
    const [cb] = await step([['tracestate', 'foo=1']]);
    expect(cb!.tracestate).toBeUndefined();
    await restarts([['traceparent', `00-${TRACE}-${PARENT}-0Z`], ['tracestate', 'foo=1']]);
  });

  it('joins several tracestate header lines in order', async () => {
    const cb = await continues([['traceparent', tp()], ['tracestate', 'foo=1'], ['tracestate', 'bar=2']]);
    expect(cb.tracestate).toEqual(['foo=1', 'bar=2']);
    const cb2 = await continues([['traceparent', tp()], ['tracestate', 'bar=2'], ['tracestate', 'foo=1']]);
    expect(cb2.tracestate).toEqual(['bar=2', 'foo=1']);
  });

  it('accepts empty tracestate headers and never sends an empty one', async () => {
    const alone = await continues([['traceparent', tp()], ['tracestate', '']]);
    expect(alone.tracestate).toBeUndefined();
    const mixed = await continues([['traceparent', tp()], ['tracestate', ''], ['tracestate', 'foo=1'], ['tracestate', '']]);
    expect(mixed.tracestate).toEqual(['foo=1']);
  });

  it('ignores spaces and tabs around members, and empty members', async () => {
    const cb = await continues([['traceparent', tp()], ['tracestate', 'foo=1 \t , \t bar=2, \t ']]);
    expect(cb.tracestate).toEqual(['foo=1', 'bar=2']);
    const cb2 = await continues([['traceparent', tp()], ['tracestate', 'a=1,,b=2']]);
    expect(cb2.tracestate).toEqual(['a=1', 'b=2']);
  });

  it('keeps 32 members and drops all of a 33-member tracestate', async () => {
    const members = Array.from({ length: 33 }, (_, i) => `k${i}=${i}`);
    const ok = await continues([['traceparent', tp()], ['tracestate', members.slice(0, 32).join(',')]]);
    expect(ok.tracestate).toEqual(members.slice(0, 32));
    const tooMany = await continues([['traceparent', tp()], ['tracestate', members.join(',')]]);
    expect(tooMany.tracestate).toBeUndefined();
    // Also when the 33 come in two header lines.
    const split = await continues([['traceparent', tp()], ['tracestate', members.slice(0, 20).join(',')], ['tracestate', members.slice(20).join(',')]]);
    expect(split.tracestate).toBeUndefined();
  });

  it('drops the whole tracestate when one member is malformed (STRICT_LEVEL=2)', async () => {
    for (const bad of ['@foo=1,bar=2', 'foo=,bar=3', 'FOO=1,bar=2', 'foo =1,bar=2', 'foo.bar=1,bar=2', 'foo=1=,bar=2', 'foo,bar=2', 'bar=2,foo=bar=baz']) {
      const cb = await continues([['traceparent', tp()], ['tracestate', bad]]);
      expect(cb.tracestate, bad).toBeUndefined();
    }
  });

  it('accepts every character the value grammar allows', async () => {
    let all = '';
    for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x2c && c !== 0x3d) all += String.fromCharCode(c);
    // A value may not end with a space; the rest are all allowed.
    const value = all.trim();
    const cb = await continues([['traceparent', tp()], ['tracestate', `foo=${value}`]]);
    expect(cb.tracestate).toEqual([`foo=${value}`]);
  });

  it('uses the current key grammar (digits first, @ anywhere after)', async () => {
    for (const key of ['foo@', 'foo@@bar', 'foo@bar@baz', '1special', `${'t'.repeat(242)}@v`, 'baz-', 'baz*bar', 'baz/']) {
      const cb = await continues([['traceparent', tp()], ['tracestate', `${key}=1`]]);
      expect(cb.tracestate, key).toEqual([`${key}=1`]);
    }
  });

  it('checks key and value length limits', async () => {
    const key256 = `k${'a'.repeat(255)}`;
    const ok = await continues([['traceparent', tp()], ['tracestate', `${key256}=1`]]);
    expect(ok.tracestate).toEqual([`${key256}=1`]);
    const long = await continues([['traceparent', tp()], ['tracestate', `${key256}a=1`]]);
    expect(long.tracestate).toBeUndefined();
    const v256 = 'v'.repeat(256);
    const okv = await continues([['traceparent', tp()], ['tracestate', `foo=${v256}`]]);
    expect(okv.tracestate).toEqual([`foo=${v256}`]);
    const longv = await continues([['traceparent', tp()], ['tracestate', `foo=${v256}v`]]);
    expect(longv.tracestate).toBeUndefined();
  });

  it('keeps one entry of a duplicated key', async () => {
    const cb = await continues([['traceparent', tp()], ['tracestate', 'foo=1,foo=2']]);
    expect(cb.tracestate).toEqual(['foo=1']);
    const split = await continues([['traceparent', tp()], ['tracestate', 'foo=1'], ['tracestate', 'foo=2']]);
    expect(split.tracestate).toEqual(['foo=1']);
  });

  it('sends at most 512 characters, removing whole entries', async () => {
    const members = Array.from({ length: 10 }, (_, i) => `k${i}=${String(i).repeat(60)}`);
    const cb = await continues([['traceparent', tp()], ['tracestate', members.join(',')]]);
    const sent = cb.tracestate!;
    expect(sent.join(',').length).toBeLessThanOrEqual(512);
    expect(sent).toEqual(members.slice(0, sent.length));
  });
});
