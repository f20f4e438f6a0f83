import { describe, it, expect, afterAll, vi } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli, CliError, CLOSE_GRACE_MS, DRAIN_MS, type RunningCollector } from '../../../src/server/cli';
import { connect, type AddressInfo } from 'node:net';
import { createServer } from 'node:http';
import { otlpBody, chatTrace } from './otlpFixtures';
import { openDatabase } from './sqlite';
import { createSqliteStore } from '../../../src/server/collector/sqliteStore';

const dir = mkdtempSync(join(tmpdir(), 'edgetrace-cli-'));
const running: RunningCollector[] = [];
afterAll(async () => {
  for (const r of running) await r.close();
  rmSync(dir, { recursive: true, force: true });
});

const io = (argv: string[], env: Record<string, string> = {}) => {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { argv, env, out: (l: string) => out.push(l), err: (l: string) => err.push(l) }, out, err };
};

/** Writes `raw` to the server and gives back everything it answers until it closes. */
const rawExchange = (url: string, raw: string, keepOpen = false): Promise<string> => {
  const { port } = new URL(url);
  return new Promise<string>((resolve) => {
    let got = '';
    const socket = connect(Number(port), '127.0.0.1', () => socket.write(raw));
    socket.on('data', (d) => (got += d.toString()));
    socket.on('close', () => resolve(got));
    socket.on('error', () => resolve(got));
    if (!keepOpen) setTimeout(() => socket.end(), 2000);
  });
};

describe('edgetrace CLI', () => {
  it('collect: answers requests Node cannot parse with a JSON Status, and a stalled upload does not hold close()', async () => {
    const r = (await runCli(io(['collect', '--port', '0', '--db', ':memory:']).io))!;
    for (const raw of ['BREW / HTTP/1.1\r\nHost: x\r\n\r\n', 'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n']) {
      const reply = await rawExchange(r.url, raw);
      expect(reply).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
      const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { code: number; message: string };
      expect(body.code).toBe(3);
      expect(body.message).toMatch(/^the request could not be read as HTTP\/1\.1 \(HPE_/);
    }
    // Expect: 100-continue over the limit: the 413 comes first, without the invitation to send.
    const asked = await rawExchange(r.url, 'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 99999999\r\n\r\n');
    expect(asked).toMatch(/^HTTP\/1\.1 413 /);
    // Within it, the sender is asked to go on.
    const small = await rawExchange(r.url, 'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n');
    expect(small).toMatch(/^HTTP\/1\.1 100 Continue\r\n/);
    // Headers and part of a body, then nothing: a deploy's SIGTERM must still end the process.
    const stalled = rawExchange(r.url, 'POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{', true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const t0 = Date.now();
    await r.close();
    expect(Date.now() - t0).toBeLessThan(CLOSE_GRACE_MS + 2000);
    await stalled;
  }, 15_000);

  it('collect: close() still answers a request that arrived whole and waits on a slow forward target', async () => {
    // The target answers after the grace: cut then, the sender would send again what it took.
    let hits = 0;
    const target = createServer((req, res) => {
      hits++;
      req.resume();
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'), CLOSE_GRACE_MS + 1000);
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
      const { io: cliIo, err } = io(['collect', '--port', '0', '--no-db', '--forward', 'otlp'], { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
      const r = (await runCli(cliIo))!;
      const sent = fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(otlpBody(chatTrace('c2'.padEnd(32, '0'), Date.now()))) });
      while (hits === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const t0 = Date.now();
      await r.close();
      const res = await sent;
      expect(res.status).toBe(200);
      expect(hits).toBe(1);
      // Done once answered: the client's kept-alive connection is closed with the answer, not waited for.
      expect(Date.now() - t0).toBeLessThan(DRAIN_MS);
      expect(err).toEqual([]);
    } finally {
      target.closeAllConnections();
      target.close();
    }
  }, 15_000);

  it('collect: closes within the drain time while a forward target hangs, saying what it leaves', async () => {
    expect(DRAIN_MS).toBeLessThan(10_000);
    let hits = 0;
    const target = createServer((req) => {
      hits++;
      req.resume();
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
      const { io: cliIo, err } = io(['collect', '--port', '0', '--no-db', '--forward', 'otlp', '--drain-seconds', '1'], { OTEL_EXPORTER_OTLP_ENDPOINT: endpoint });
      const r = (await runCli(cliIo))!;
      const sent = fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(otlpBody(chatTrace('c5'.padEnd(32, '0'), Date.now()))) }).then(
        (res) => res.status,
        () => 'cut',
      );
      while (hits === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      const t0 = Date.now();
      await r.close();
      expect(Date.now() - t0).toBeLessThan(2500);
      // Not acknowledged: the sender sends it again.
      expect(await sent).toBe('cut');
      expect(err).toEqual([
        `edgetrace collect: closing after 1 s without waiting longer for 1 request(s) still being answered, 3 record(s) to forward[0] (${endpoint}/v1/traces); what was not acknowledged is sent again by its senders`,
      ]);
    } finally {
      target.closeAllConnections();
      target.close();
    }
  });

  it('collect: stores what it receives in the SQLite file and serves it to the read token', async () => {
    const db = join(dir, 'sub', 'traces.db');
    const { io: cliIo, out } = io(['collect', '--port', '0', '--db', db, '--ingest-token', 'ingest-123456', '--read-token', 'read-1234567', '--allow-origin', 'https://app.example.com']);
    const r = (await runCli(cliIo))!;
    running.push(r);
    expect(existsSync(db)).toBe(true);
    expect(out[0]).toBe(`edgetrace collector listening on ${r.url}`);
    // A token given is not printed into the logs; a made-up one is (next test).
    expect(out.join('\n')).not.toContain('read-1234567');
    expect(out.join('\n')).toContain('with the read token given');
    const traceId = 'c1'.padEnd(32, '0');
    const res = await fetch(`${r.url}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer ingest-123456', origin: 'https://app.example.com' },
      body: JSON.stringify(otlpBody(chatTrace(traceId, Date.now()))),
    });
    expect(res.status).toBe(200);
    const list = (await (await fetch(`${r.url}/api/traces`, { headers: { authorization: 'Bearer read-1234567' } })).json()) as { traces: { traceId: string }[] };
    expect(list.traces.map((t) => t.traceId)).toEqual([traceId]);
    expect((await fetch(`${r.url}/api/traces`, { headers: { authorization: 'Bearer ingest-123456' } })).status).toBe(401);
  });

  it('collect: prunes at start and logs what each prune removed', async () => {
    const db = join(dir, 'old.db');
    const old = createSqliteStore(openDatabase(db));
    await old.insertSpans(chatTrace('c3'.padEnd(32, '0'), Date.now() - 3 * 86_400_000));
    await old.close();
    const { io: cliIo, out } = io(['collect', '--port', '0', '--db', db, '--retention-days', '1']);
    running.push((await runCli(cliIo))!);
    while (!out.some((l) => l.includes('pruned'))) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(out.find((l) => l.includes('pruned'))).toMatch(/^edgetrace collect: pruned 1 trace\(s\), 3 span\(s\) and 0 score\(s\) older than \d{4}-\d\d-\d\dT[\d:.]+Z in \d+\.\d s$/);
  });

  it('collect --trust-proxy: each client behind the proxy gets its own rate limit', async () => {
    const r = (await runCli(io(['collect', '--port', '0', '--db', ':memory:', '--rate-limit', '1', '--rate-burst', '1', '--trust-proxy', '1']).io))!;
    running.push(r);
    const send = (client: string) =>
      fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': client }, body: '{}' }).then((res) => res.status);
    expect([await send('198.51.100.1'), await send('198.51.100.2'), await send('198.51.100.1')]).toEqual([200, 200, 429]);
  });

  it('collect: makes up a read token when none is given, and --open-read needs none', async () => {
    const a = io(['collect', '--port', '0', '--db', ':memory:']);
    const r = (await runCli(a.io))!;
    running.push(r);
    const token = /Bearer ([0-9a-f]{36})/.exec(a.out.join('\n'))![1]!;
    expect((await fetch(`${r.url}/api/stats`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    const b = io(['collect', '--port', '0', '--db', ':memory:', '--open-read']);
    const open = (await runCli(b.io))!;
    running.push(open);
    expect((await fetch(`${open.url}/api/stats`)).status).toBe(200);
    expect(b.err).toEqual([]);
    // On every interface (a container), the open API still answers this machine only: said at start.
    const c = io(['collect', '--port', '0', '--db', ':memory:', '--open-read', '--host', '0.0.0.0']);
    running.push((await runCli(c.io))!);
    expect(c.err.join('\n')).toMatch(/--open-read answers this machine only.*0\.0\.0\.0.*--read-token/);
    // The flag wins over a token in the environment, and says so.
    const d = io(['collect', '--port', '0', '--db', ':memory:', '--open-read'], { EDGETRACE_READ_TOKEN: 'read-1234567' });
    const flagged = (await runCli(d.io))!;
    running.push(flagged);
    expect((await fetch(`${flagged.url}/api/stats`)).status).toBe(200);
    expect(d.err).toEqual(['edgetrace collect: --open-read leaves EDGETRACE_READ_TOKEN unused: the query API takes no token']);
  });

  it('collect: logs a failure it expects (a forward target down) as one line with its cause, not a stack', async () => {
    const { io: cliIo, err } = io(['collect', '--port', '0', '--no-db', '--forward', 'otlp'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9' });
    const r = (await runCli(cliIo))!;
    running.push(r);
    const res = await fetch(`${r.url}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(otlpBody(chatTrace('c4'.padEnd(32, '0'), Date.now()))) });
    expect(res.status).toBe(503);
    expect(err).toHaveLength(1);
    expect(err[0]).toMatch(/^edgetrace collect: forwarding to forward\[0\] \(http:\/\/127\.0\.0\.1:9\/v1\/traces\) failed: network error: fetch failed/);
    expect(err[0]).not.toContain('\n');
  });

  it('collect --forward reads credentials from the environment and names what is missing', async () => {
    await expect(runCli(io(['collect', '--port', '0', '--db', ':memory:', '--forward', 'langfuse'], { LANGFUSE_PUBLIC_KEY: 'pk' }).io)).rejects.toThrow(
      /LANGFUSE_SECRET_KEY/,
    );
    await expect(runCli(io(['collect', '--forward', 'zipkin']).io)).rejects.toThrow(CliError);
    const ok = io(['collect', '--port', '0', '--no-db', '--forward', 'otlp'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9/base' });
    const r = (await runCli(ok.io))!;
    running.push(r);
    expect(ok.out.join('\n')).toContain('forward http://127.0.0.1:9/base/v1/traces');
    expect(ok.out.join('\n')).toContain('store   none');
    // Nothing to query without a store: the banner offers no query API (it would answer 404).
    expect(ok.out.join('\n')).not.toContain('/api/traces');
  });

  it('collect --forward reads no sampler: the collector forwards all it gets, and says nothing of the variables', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const env = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_TRACES_SAMPLER: 'always_off', LANGFUSE_SAMPLE_RATE: '0.5' };
      const r = (await runCli(io(['collect', '--port', '0', '--no-db', '--forward', 'otlp', '--forward', 'otlp'], env).io))!;
      running.push(r);
      expect(warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('SAMPLE'))).toEqual([]);
    } finally {
      warn.mockRestore();
    }
  });

  it('rejects mistakes with a usage error', async () => {
    await expect(runCli(io(['frobnicate']).io)).rejects.toThrow(/unknown command/);
    await expect(runCli(io(['collect', '--port', 'x']).io)).rejects.toThrow(/--port/);
    await expect(runCli(io(['collect', '--no-db']).io)).rejects.toThrow(/--no-db needs/);
    // The collector's own checks, named by the flag the person typed.
    await expect(runCli(io(['collect', '--port', '0', '--db', ':memory:', '--allow-origin', 'app.example.com']).io)).rejects.toThrow(/^createCollector\(\): --allow-origin must be/);
    await expect(runCli(io(['collect', '--port', '0', '--db', ':memory:', '--ingest-token', 'short']).io)).rejects.toThrow(/--ingest-token/);
    await expect(runCli(io(['collect', '--bogus']).io)).rejects.toThrow(CliError);
    await expect(runCli(io(['collect', '--trust-proxy', '1.5']).io)).rejects.toThrow(/--trust-proxy must be a whole number/);
    // Empty or hexadecimal values are mistakes, not 0 (a random port, no retention, no limit).
    await expect(runCli(io(['collect', '--port=']).io)).rejects.toThrow(/--port/);
    await expect(runCli(io(['collect', '--port', '0x10']).io)).rejects.toThrow(/--port/);
    await expect(runCli(io(['collect', '--retention-days=']).io)).rejects.toThrow(/--retention-days/);
    // An empty host would listen on every interface.
    await expect(runCli(io(['collect', '--host=']).io)).rejects.toThrow(/--host must not be empty/);
    // A store that cannot be opened is a usage error that says where, not a stack trace.
    const notAFile = join(dir, 'a-directory');
    mkdirSync(notAFile);
    await expect(runCli(io(['collect', '--db', notAFile, '--port', '0']).io)).rejects.toThrow(new RegExp(`cannot open the store at ${notAFile}`));
    await expect(runCli(io(['collect', '--db', notAFile, '--port', '0']).io)).rejects.toThrow(CliError);
    const help = io(['help']);
    expect(await runCli(help.io)).toBeUndefined();
    expect(help.out[0]).toMatch(/^usage: edgetrace collect/);
    // Asked for after the command too, as most CLIs take it: usage, not "unknown option".
    for (const flag of ['--help', '-h']) {
      const after = io(['collect', '--port', '0', flag]);
      expect(await runCli(after.io)).toBeUndefined();
      expect(after.out[0]).toMatch(/^usage: edgetrace collect/);
    }
  });
});
