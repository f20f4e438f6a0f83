import type { Exporter } from '../protocol';

/**
 * An exporter that loads its real implementation on first use, so code only some pages need (the
 * OTLP encoder where a service worker does the sending, Langfuse from the page) stays out of
 * everyone's start-up bundle. A failed load is a retryable result, and the next export tries again.
 */
export const lazyExporter = (load: () => Promise<Exporter>): Exporter => {
  let loaded: Promise<Exporter> | undefined;
  return {
    export: async (records) => {
      try {
        return await (await (loaded ??= load())).export(records);
      } catch (error) {
        loaded = undefined;
        return { ok: false, retryable: true, reason: `exporter failed to load: ${String(error)}` };
      }
    },
  };
};
