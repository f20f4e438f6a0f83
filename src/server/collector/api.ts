import { STATS_WINDOW_TOO_LARGE, type StatsQuery, type TraceQuery, type TraceStore } from './store';
import { isValidCursor } from './sqliteStore';

/** A JSON reply: status and body. */
export interface ApiReply {
  status: number;
  body: unknown;
}

/** gRPC-style error body, as OTLP receivers send it: `{ code, message }`. */
export const errorBody = (code: number, message: string): { code: number; message: string } => ({ code, message });

/** google.rpc.Code for a malformed request (400). */
export const INVALID_ARGUMENT = 3;
/** google.rpc.Code for something that does not exist (404). */
export const NOT_FOUND = 5;
/** google.rpc.Code for a request that did not arrive in time (408). */
export const DEADLINE_EXCEEDED = 4;

/** Thrown by the parameter readers; turned into a 400. */
class BadParam extends Error {}

// ISO-8601 as Date.parse reads it by the standard: a date, or a date and time with seconds,
// fractions and zone optional. Anything else Date.parse would guess at ("-1" as 2001, "foo 12"
// as December), in the server's own time zone.
const ISO_DATE_RE = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;

/** Epoch ms from `1732140000000` or an ISO-8601 date. */
const timeParam = (params: URLSearchParams, name: string): number | undefined => {
  const v = params.get(name);
  if (v === null || v === '') return undefined;
  const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : ISO_DATE_RE.test(v) ? Date.parse(v) : NaN;
  if (!Number.isFinite(n)) throw new BadParam(`"${name}" must be epoch milliseconds or an ISO-8601 date, got ${JSON.stringify(v.slice(0, 40))}`);
  return n;
};

const intParam = (params: URLSearchParams, name: string): number | undefined => {
  const v = params.get(name);
  if (v === null || v === '') return undefined;
  // Any larger number asks for as many as there may be: at most 500 are returned.
  if (!/^\d{1,15}$/.test(v) || Number(v) < 1) throw new BadParam(`"${name}" must be a whole number from 1 (at most 500 are returned), got ${JSON.stringify(v.slice(0, 40))}`);
  return Math.min(500, Number(v));
};

const textParam = (params: URLSearchParams, name: string): string | undefined => {
  const v = params.get(name);
  if (v === null || v === '') return undefined;
  if (v.length > 1000) throw new BadParam(`"${name}" is too long`);
  return v;
};

const TRACE_ID_RE = /^[0-9a-fA-F]{32}$/;

/** The stats window when the query names no start: the last day. */
const STATS_DEFAULT_MS = 24 * 3600 * 1000;

/**
 * Serves the query API under `/api`:
 * - `GET /api/traces?service=&name=&user=&session=&status=ok|error&from=&to=&limit=&cursor=`: a page
 *   of trace summaries, newest first, with `nextCursor`;
 * - `GET /api/traces/<traceId>`: the trace as a tree with its scores (404 when unknown);
 * - `GET /api/stats?from=&to=&service=&limit=`: span count, error rate, p50/p95 by span name,
 *   tokens and cost by model.
 * Returns undefined for paths it does not serve.
 */
export const serveApi = async (store: TraceStore, path: string, params: URLSearchParams): Promise<ApiReply | undefined> => {
  try {
    if (path === '/api/traces') {
      const q: TraceQuery = {};
      const service = textParam(params, 'service');
      const name = textParam(params, 'name');
      const user = textParam(params, 'user') ?? textParam(params, 'userId');
      const session = textParam(params, 'session') ?? textParam(params, 'sessionId');
      const status = textParam(params, 'status');
      const cursor = textParam(params, 'cursor');
      if (status !== undefined && status !== 'ok' && status !== 'error') throw new BadParam(`"status" must be ok or error, got ${JSON.stringify(status.slice(0, 40))}`);
      if (cursor !== undefined && !isValidCursor(cursor)) throw new BadParam('"cursor" must be a nextCursor value from a previous page');
      if (service !== undefined) q.service = service;
      if (name !== undefined) q.name = name;
      if (user !== undefined) q.userId = user;
      if (session !== undefined) q.sessionId = session;
      if (status !== undefined) q.status = status;
      if (cursor !== undefined) q.cursor = cursor;
      q.fromMs = timeParam(params, 'from');
      q.toMs = timeParam(params, 'to');
      q.limit = intParam(params, 'limit');
      return { status: 200, body: await store.listTraces(q) };
    }
    if (path.startsWith('/api/traces/')) {
      const id = decodeURIComponent(path.slice('/api/traces/'.length));
      if (!TRACE_ID_RE.test(id)) throw new BadParam('the trace id must be 32 hex characters');
      const tree = await store.getTrace(id.toLowerCase());
      return tree ? { status: 200, body: tree } : { status: 404, body: errorBody(NOT_FOUND, `no trace ${id.toLowerCase()} is stored`) };
    }
    if (path === '/api/stats') {
      // Without `from`, the last day: all-time stats read every stored span, and share the
      // process with ingest meanwhile.
      const q: StatsQuery = { fromMs: timeParam(params, 'from') ?? Date.now() - STATS_DEFAULT_MS, toMs: timeParam(params, 'to'), limit: intParam(params, 'limit') };
      const service = textParam(params, 'service');
      if (service !== undefined) q.service = service;
      return { status: 200, body: await store.stats(q) };
    }
    return undefined;
  } catch (error) {
    // A store's window too large to read at once is the query's to narrow; any other error is the store's.
    const tooLarge = error instanceof RangeError && (error as { code?: unknown }).code === STATS_WINDOW_TOO_LARGE;
    if (error instanceof BadParam || error instanceof URIError || tooLarge) return { status: 400, body: errorBody(INVALID_ARGUMENT, (error as Error).message) };
    throw error;
  }
};
