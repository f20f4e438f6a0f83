import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll } from 'vitest';

/** One request as a loopback recorder saw it. */
export interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Answers a recorded request; `index` counts from 0 since the last reset. */
export type Reply = (res: ServerResponse, req: Recorded, index: number) => void;

/**
 * An HTTP server on 127.0.0.1 for one test file: it records every request and answers with
 * `reply`, which a test may replace. Started before the file's tests, emptied and given back
 * `defaultReply` after each test, closed at the end (hooks registered here).
 */
export const loopbackRecorder = (defaultReply: Reply = (res) => void res.end('{}')) => {
  const state = { base: '', requests: [] as Recorded[], reply: defaultReply };
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const r: Recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
      state.requests.push(r);
      state.reply(res, r, state.requests.length - 1);
    });
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    state.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    state.requests = [];
    state.reply = defaultReply;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return state;
};
