import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { init, setTracer } from '../../src/core/global';

/** A loopback receiver that records each request's path, headers and JSON body. */
const receiver = async () => {
  const got: Array<{ url: string; headers: IncomingMessage['headers']; body: any }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ url: req.url ?? '', headers: req.headers, body: JSON.parse(body) });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { got, base, close: () => new Promise((r) => server.close(r)) };
};

describe('init', () => {
  afterEach(() => setTracer(undefined));

  it('sends spans to endpoint as OTLP/HTTP JSON with the given headers', async () => {
    const r = await receiver();
    const tracer = init({ endpoint: `${r.base}/v1/traces`, headers: { 'x-ingest-token': 'pub' }, serviceName: 'svc' });
    tracer.withTrace('t', (t) => t.span('c', () => undefined));
    await tracer.flush();
    await r.close();
    expect(r.got).toHaveLength(1);
    expect(r.got[0]?.url).toBe('/v1/traces');
    expect(r.got[0]?.headers['x-ingest-token']).toBe('pub');
    const spans = r.got[0]?.body.resourceSpans[0].scopeSpans[0].spans;
    expect(spans.map((s: { name: string }) => s.name).sort()).toEqual(['c', 't']);
  });

  it('loads the Langfuse exporter on demand and sends with Basic auth and the v4 header', async () => {
    const r = await receiver();
    const tracer = init({ langfuse: { publicKey: 'pk-lf-ü', secretKey: 'sk-lf-1', baseUrl: r.base } });
    tracer.withTrace('t', () => undefined);
    await tracer.flush();
    await r.close();
    expect(r.got[0]?.url).toBe('/api/public/otel/v1/traces');
    expect(r.got[0]?.headers.authorization).toBe(`Basic ${Buffer.from('pk-lf-ü:sk-lf-1', 'utf8').toString('base64')}`);
    expect(r.got[0]?.headers['x-langfuse-ingestion-version']).toBe('4');
  });
});
