import type { Attributes } from '../protocol';

/** `navigator.userAgentData` (User-Agent Client Hints, Chromium): the values any page may read. */
interface UserAgentData {
  brands?: readonly { brand?: unknown; version?: unknown }[];
  mobile?: unknown;
  platform?: unknown;
}

/**
 * OpenTelemetry's browser resource attributes, read from `navigator` in a page or a worker:
 * `user_agent.original`, `browser.language`, and where the browser has User-Agent Client Hints,
 * `browser.brands` (`"<brand> <major version>"`), `browser.platform` and `browser.mobile`.
 * Only what every page may read without asking. A value of another type (a polyfill gone wrong)
 * is left out, as is everything after a getter that throws.
 */
export const browserResource = (nav: unknown = (globalThis as { navigator?: unknown }).navigator): Attributes => {
  const out: Attributes = {};
  try {
    const n = nav as { userAgent?: unknown; language?: unknown; userAgentData?: UserAgentData } | undefined;
    const str = (key: string, v: unknown): void => void (typeof v === 'string' && v && (out[key] = v));
    str('user_agent.original', n?.userAgent);
    str('browser.language', n?.language);
    const hints = n?.userAgentData;
    if (hints) {
      str('browser.platform', hints.platform);
      if (typeof hints.mobile === 'boolean') out['browser.mobile'] = hints.mobile;
      const brands = Array.isArray(hints.brands) ? hints.brands.filter((b) => typeof b?.brand === 'string' && typeof b.version === 'string').map((b) => `${b.brand} ${b.version}`) : [];
      if (brands.length) out['browser.brands'] = brands;
    }
  } catch {
    // A navigator whose getters throw (a locked-down page): the spans go without these.
  }
  return out;
};
