/** How often edgetrace caught one of its own errors, and whether to log them. */
const state = { count: 0, debug: false };

/** Turns logging of internal errors on or off (the `debug` option). */
export const setDebug = (on: boolean): void => {
  state.debug = on;
};

/** Number of internal errors caught since the page or process started. */
export const internalErrorCount = (): number => state.count;

/**
 * Counts an error edgetrace caught in its own code and logs it when `debug` is on.
 * It never throws, so it is safe as the last `.catch()` of any side chain.
 */
export const reportInternal = (error: unknown): void => {
  try {
    state.count++;
    if (state.debug) console.warn('[edgetrace] internal error (the host app is unaffected):', error);
  } catch {
    // Logging itself failed (a console replaced by the host, say); there is nowhere left to report.
  }
};

/** Logs a warning whatever `debug` is, for what the app must hear of (a setup mistake); never throws. */
export const warn = (message: string, ...detail: unknown[]): void => {
  try {
    console.warn(`[edgetrace] ${message}`, ...detail);
  } catch {
    // See reportInternal.
  }
};

/**
 * Logs a warning once per `key` when `debug` is on: for bounded loss and odd-but-usable options;
 * `always`, whatever `debug` is: for what is lost for good by a mistake the app can mend.
 */
export const warnOnce = (() => {
  const seen = new Set<string>();
  return (key: string, message: string, always?: boolean): void => {
    if ((!state.debug && !always) || seen.has(key)) return;
    seen.add(key);
    warn(message);
  };
})();
