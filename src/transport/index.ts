import type { InitOptions, ResolvedInit } from '../config';
import type { Tracer } from '../core/tracer';
import { batchProcessor } from '../core/processors';
import { createOtlpExporter } from '../export/http';

/**
 * Connects a tracer made by `init()` to its delivery path. For now records go straight to
 * `endpoint` from memory; the service-worker outbox replaces this (TODO(#3)).
 */
export const setupTransport = (tracer: Tracer, opts: InitOptions, resolved: ResolvedInit): void => {
  if (resolved.endpoint && !opts.exporter) {
    tracer.addProcessor(batchProcessor(createOtlpExporter({ url: resolved.endpoint, headers: resolved.headers }), tracer.config.batch));
  }
};
