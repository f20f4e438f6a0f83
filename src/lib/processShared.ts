/**
 * State every copy of edgetrace loaded in one process shares, kept on the global object under
 * `Symbol.for('edgetrace.<key>')`: a dev server that loads the app's modules apart from the
 * server's (Nuxt's bundles edgetrace into Nitro, and loads the app's own import of it through
 * Vite) has two copies, and the app's calls must still find the requests the server's copy
 * handles. `key` carries a number that changes with the state's shape.
 */
export const processShared = <T extends object>(key: string, make: () => T): T => {
  const g = globalThis as Record<symbol, T | undefined>;
  return (g[Symbol.for(`edgetrace.${key}`)] ??= make());
};

/** The state under `key` (see {@link processShared}), if some copy has made it. */
export const sharedIfMade = <T extends object>(key: string): T | undefined => (globalThis as Record<symbol, T | undefined>)[Symbol.for(`edgetrace.${key}`)];
