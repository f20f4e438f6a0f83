/**
 * A Node built-in module, through `process.getBuiltinModule` (Node 20.16+, Deno, Bun), or
 * undefined where there is none (Workers, Vercel Edge, browsers).
 *
 * Not `import()`: a literal specifier makes bundlers for Workers and browsers try to resolve the
 * module, and one held in a variable makes Miniflare refuse the whole Worker bundle
 * (ERR_MODULE_DYNAMIC_SPEC), though the code that needs it never runs there.
 */
export const builtin = <T>(id: string): T | undefined =>
  (globalThis as { process?: { getBuiltinModule?(id: string): unknown } }).process?.getBuiltinModule?.(id) as T | undefined;
