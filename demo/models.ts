/**
 * The mock models, shared by the page (its tracer's `prices`, the model picker) and the mock model
 * server (timing). Prices are USD per token, in the shape `init({ prices })` takes, so the cost the
 * page records is the cost the viewer shows.
 */

/** One mock model: how fast it answers and what it costs. */
export interface MockModel {
  id: string;
  /** Shown in the model picker. */
  label: string;
  /** Typical time from request to first token, ms (each request varies around it). */
  firstTokenMs: number;
  /** Typical decoding speed once tokens flow. */
  tokensPerSecond: number;
  /** USD per token, by usage type. */
  price: { input: number; output: number };
}

export const MODELS: readonly MockModel[] = [
  { id: 'mock-mini', label: 'mock-mini · fast', firstTokenMs: 280, tokensPerSecond: 90, price: { input: 0.15e-6, output: 0.6e-6 } },
  { id: 'mock-pro', label: 'mock-pro · balanced', firstTokenMs: 650, tokensPerSecond: 45, price: { input: 2.5e-6, output: 10e-6 } },
  { id: 'mock-deep', label: 'mock-deep · slow start', firstTokenMs: 1600, tokensPerSecond: 60, price: { input: 3e-6, output: 15e-6 } },
];

export const DEFAULT_MODEL = 'mock-mini';

/** The page tracer's price table: model name → USD per token. */
export const PRICES: Record<string, Record<string, number>> = Object.fromEntries(MODELS.map((m) => [m.id, { ...m.price }]));

export const findModel = (id: unknown): MockModel | undefined => MODELS.find((m) => m.id === id);

/** How the mock model server can be told to misbehave (the page's "Make the model…" picker). */
export type FailureMode = 'none' | 'error' | 'stall' | 'rate-limit';

export const FAILURE_MODES: readonly { id: FailureMode; label: string }[] = [
  { id: 'none', label: 'answer normally' },
  { id: 'error', label: 'fail with HTTP 500' },
  { id: 'stall', label: 'stall mid-answer' },
  { id: 'rate-limit', label: 'rate-limit (429 + Retry-After)' },
];

/** Seconds the mock server asks a rate-limited client to wait. */
export const RATE_LIMIT_RETRY_AFTER_S = 2;
