import { afterAll, afterEach, beforeAll } from 'vitest';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** One request a loopback receiver got. */
export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A server on 127.0.0.1 that records requests and answers as `reply` says (200 `{}` by default). */
export interface Receiver {
  base: string;
  received: Received[];
  reply: (req: Received, res: ServerResponse) => void;
  /** Resolves when `n` requests (matching `path`, when given) have arrived, or rejects after `timeoutMs`. */
  waitFor(n: number, path?: string, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

/** Starts a receiver; `into`, when given, is made the receiver (for one created before it starts). */
export const startReceiver = async (into?: Receiver): Promise<Receiver> => {
  const rx: Receiver = Object.assign(into ?? ({} as Receiver), {
    base: '',
    received: [],
    reply: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    },
    async waitFor(n, path, timeoutMs = 5000) {
      const t0 = Date.now();
      for (;;) {
        const got = rx.received.filter((r) => path === undefined || r.url.startsWith(path));
        if (got.length >= n) return got;
        if (Date.now() - t0 > timeoutMs) throw new Error(`waited ${timeoutMs} ms for ${n} request(s) to ${path ?? 'any path'}, got ${got.length}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  } satisfies Receiver);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let buf = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') buf = gunzipSync(buf);
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: buf.toString('utf8') };
      rx.received.push(r);
      rx.reply(r, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  rx.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return rx;
};

/**
 * For a test file whose tests serve a Node listener on loopback that calls a receiver: `rx`, one
 * receiver for the file, and `listen(listener)`, which serves it for the test that called it
 * (closed after the test, with what the receiver got and its reply reset).
 */
export const loopbackPerTest = (): { rx: Receiver; listen(listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> } => {
  const rx = {} as Receiver;
  let reply: Receiver['reply'];
  let server: Server | undefined;
  beforeAll(async () => {
    await startReceiver(rx);
    reply = rx.reply;
  });
  afterAll(() => rx.close());
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
    rx.received.length = 0;
    rx.reply = reply;
  });
  const listen = async (listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> => {
    server = createServer(listener);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
  };
  return { rx, listen };
};
