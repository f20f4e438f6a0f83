import type { InitOptions } from '../config';
import type { Tracer } from '../core/tracer';

/** Undoes what a setup or instrumentation did. */
export type Stop = () => void;

/**
 * Turns on the browser instrumentations `init()` asks for and returns one `Stop` for all.
 * No instrumentation yet (TODO(#4)).
 */
export const setupInstrumentation = (_tracer: Tracer, _opts: InitOptions): Stop => () => undefined;
