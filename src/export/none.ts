import type { Exporter } from '../protocol';

/** An exporter that drops every record and reports success, for tracing switched off. */
export const noneExporter: Exporter = {
  export: () => Promise.resolve({ ok: true }),
  shutdown: () => Promise.resolve(),
};
