import { TRACER_KEYS } from '../config';
import type { WithTracingOptions } from './withTracing';
import { checkKeys as check, type AllKeys } from '../lib/checkKeys';

const WRAPPER_LIST = ['tracer', 'traceFetch', 'propagateTo', 'responseHeaders', 'spanName', 'route', 'onRequest', 'waitUntil'] as const satisfies readonly (keyof WithTracingOptions)[];
/** What the server wrappers add (`withNodeTracing` takes the same, with Node's request). */
const WRAPPER_KEYS: AllKeys<Omit<WithTracingOptions, (typeof TRACER_KEYS)[number]>, typeof WRAPPER_LIST> = WRAPPER_LIST;

const wrapperKeys: readonly string[] = [...TRACER_KEYS, ...WRAPPER_KEYS];

/**
 * Throws a `TypeError` naming the first key of `opts` that is no option of `call`, with the one it
 * is likely a typo of. `wrapper` says whether the wrappers' own options count.
 */
export const checkKeys = (opts: object, call: string, wrapper: boolean): void => check(call, opts, wrapper ? wrapperKeys : TRACER_KEYS);
