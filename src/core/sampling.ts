import { FLAG_SAMPLED } from '../propagation/traceparent';

/**
 * Head sampling by trace id: the same trace id gives the same answer in every process that uses
 * the same rate, so a trace is kept or dropped whole. Reads the right-most 8 hex digits, which the
 * W3C random flag promises are random.
 */
export const isSampledByRatio = (traceId: string, rate: number): boolean => {
  if (rate >= 1) return true;
  if (rate <= 0) return false;
  return parseInt(traceId.slice(-8), 16) / 0x1_0000_0000 < rate;
};

/**
 * Parent-based decision: a remote or local parent's sampled flag wins; a root span is sampled by ratio.
 * Returns the trace flags byte for the new span.
 */
export const sampleFlags = (traceId: string, rate: number, parentFlags?: number): number => {
  if (parentFlags !== undefined) return parentFlags;
  // New traces set the W3C Level 2 random flag (bit 1): our trace ids come from a CSPRNG.
  return (isSampledByRatio(traceId, rate) ? FLAG_SAMPLED : 0) | 2;
};
