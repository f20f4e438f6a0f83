import type { Trace } from '../core/trace';
import type { Tracer } from '../core/tracer';
import type { findInteraction } from './interaction';

/**
 * What `edgetrace/vitals` needs of the copy of edgetrace that instruments the page: its tracer,
 * its page-load trace and its recent interactions. Kept under a global key by that copy, so that
 * vitals loaded apart from it (an import beside the `<script>` tag, which bundles its own copy)
 * record on the tag's trace and match INP to the tag's clicks.
 */
export interface PageHost {
  tracer(): Tracer;
  getPageTrace(): Trace | undefined;
  setPageTrace(trace: Trace): void;
  findInteraction: typeof findInteraction;
}

/** The global key of the page's {@link PageHost}. */
export const PAGE_HOST = Symbol.for('edgetrace.pageHost');

/** The page's host, when a copy of edgetrace instruments the page. */
export const pageHost = (): PageHost | undefined => (globalThis as { [PAGE_HOST]?: PageHost })[PAGE_HOST];
