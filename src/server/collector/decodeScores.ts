import type { ScoreRecord } from '../../protocol';

/** What a score request came to. */
export type ScoreDecodeResult =
  | { ok: true; scores: ScoreRecord[]; rejected: number; errors: string[] }
  | { ok: false; message: string };

const TRACE_ID_RE = /^[0-9a-f]{32}$/;
const SPAN_ID_RE = /^[0-9a-f]{16}$/;
const DATA_TYPES = new Set(['NUMERIC', 'BOOLEAN', 'CATEGORICAL', 'TEXT']);
// Langfuse's own bounds (ingestion zod schemas): ids up to 800 characters; names are kept short.
const MAX_ID = 800;
const MAX_NAME = 1000;
const MAX_TEXT = 16_384;
const MAX_ERRORS = 10;

/** A plain object whose JSON fits the text bound: what `score()` makes of its metadata option. */
const isMetadata = (m: unknown): boolean => {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return false;
  try {
    return JSON.stringify(m).length <= MAX_TEXT;
  } catch {
    return false;
  }
};

const check = (raw: unknown, path: string): ScoreRecord | string => {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return `${path} must be a ScoreRecord object`;
  const s = raw as Record<string, unknown>;
  if (typeof s.id !== 'string' || !s.id || s.id.length > MAX_ID || /[\r\n]/.test(s.id)) return `${path}.id must be a string of 1 to ${MAX_ID} characters`;
  if (typeof s.traceId !== 'string' || !TRACE_ID_RE.test(s.traceId) || /^0+$/.test(s.traceId)) return `${path}.traceId must be 32 lowercase hex characters`;
  if (s.observationId !== undefined && (typeof s.observationId !== 'string' || !SPAN_ID_RE.test(s.observationId))) {
    return `${path}.observationId must be 16 lowercase hex characters`;
  }
  if (typeof s.name !== 'string' || !s.name || s.name.length > MAX_NAME) return `${path}.name must be a string of 1 to ${MAX_NAME} characters`;
  const value = s.value;
  if (!(typeof value === 'number' && Number.isFinite(value)) && !(typeof value === 'string' && value.length <= MAX_TEXT)) {
    return `${path}.value must be a finite number or a string`;
  }
  if (s.dataType !== undefined && !DATA_TYPES.has(s.dataType as string)) return `${path}.dataType must be NUMERIC, BOOLEAN, CATEGORICAL or TEXT`;
  if (s.comment !== undefined && (typeof s.comment !== 'string' || s.comment.length > MAX_TEXT)) return `${path}.comment must be a string`;
  if (s.metadata !== undefined && !isMetadata(s.metadata)) return `${path}.metadata must be an object of at most ${MAX_TEXT} characters as JSON`;
  if (s.configId !== undefined && (typeof s.configId !== 'string' || !s.configId || s.configId.length > MAX_ID)) return `${path}.configId must be a string of 1 to ${MAX_ID} characters`;
  if (s.sessionId !== undefined && (typeof s.sessionId !== 'string' || s.sessionId.length > MAX_ID)) return `${path}.sessionId must be a string`;
  if (s.environment !== undefined && (typeof s.environment !== 'string' || s.environment.length > 40)) return `${path}.environment must be a string of at most 40 characters`;
  if (typeof s.timeMs !== 'number' || !Number.isFinite(s.timeMs) || s.timeMs <= 0) return `${path}.timeMs must be epoch milliseconds`;
  const out: ScoreRecord = { v: 1, rec: 'score', id: s.id, traceId: s.traceId, name: s.name, value: value as number | string, timeMs: s.timeMs };
  if (s.observationId !== undefined) out.observationId = s.observationId as string;
  if (s.sessionId !== undefined) out.sessionId = s.sessionId as string;
  if (s.dataType !== undefined) out.dataType = s.dataType as ScoreRecord['dataType'];
  if (s.comment !== undefined) out.comment = s.comment as string;
  if (s.metadata !== undefined) out.metadata = s.metadata as ScoreRecord['metadata'];
  if (s.configId !== undefined) out.configId = s.configId as string;
  if (s.environment !== undefined) out.environment = s.environment as string;
  return out;
};

/**
 * Reads a `POST /v1/scores` body: a JSON array of `ScoreRecord`s (what `trace.score()` makes), or
 * `{ "scores": [...] }`. Bad records are rejected one by one with a reason; never throws.
 */
export const decodeScores = (body: unknown): ScoreDecodeResult => {
  const list = Array.isArray(body) ? body : typeof body === 'object' && body !== null ? (body as { scores?: unknown }).scores : undefined;
  if (!Array.isArray(list)) return { ok: false, message: 'the body must be a JSON array of score records, or {"scores": [...]}' };
  const scores: ScoreRecord[] = [];
  const errors: string[] = [];
  let rejected = 0;
  for (let i = 0; i < list.length; i++) {
    const r = check(list[i], `scores[${i}]`);
    if (typeof r === 'string') {
      rejected++;
      if (errors.length < MAX_ERRORS) errors.push(r);
    } else scores.push(r);
  }
  return { ok: true, scores, rejected, errors };
};
