/**
 * State every copy of edgetrace loaded in one process shares, kept on the global object under
 * `Symbol.for('edgetrace.<key>')`: a dev server that loads the app's modules apart from the
 * server's (Nuxt's bundles edgetrace into Nitro, and loads the app's own import of it through
 * Vite) has two copies, and the app's calls must still find the requests the server's copy
 * handles. `key` carries a number that changes with the state's shape. Found once per copy.
 */
export const processShared = <T extends object>(key: string, make: () => T): T =>
  sharedIfMade<T>(key) ?? ((globals[Symbol.for(`edgetrace.${key}`)] = make()), sharedIfMade<T>(key)!);

/** The state under `key` (see {@link processShared}), if some copy has made it. */
export const sharedIfMade = <T extends object>(key: string): T | undefined => {
  const value = found.get(key) ?? globals[Symbol.for(`edgetrace.${key}`)];
  if (value) found.set(key, value);
  return value as T | undefined;
};

// Read only when the functions above are called, after this module has run.
const globals = globalThis as Record<symbol, object | undefined>;
/** What this copy has found already, by key. */
const found = new Map<string, object>();
