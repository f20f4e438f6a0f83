import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
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

export const startReceiver = async (): Promise<Receiver> => {
  const rx: Receiver = {
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
  };
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
