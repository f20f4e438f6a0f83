/**
 * Whether this code runs in a browser page (a window with a document). Some server renderers
 * define `document` as null, and `typeof null` is "object": that is no page.
 */
export const isPage = (): boolean => {
  const d = (globalThis as { document?: unknown }).document;
  return typeof d === 'object' && d !== null;
};

/** Whether this is a browser page whose events can be listened to: what the page instrumentations need. */
export const isBrowserPage = (): boolean => isPage() && typeof (globalThis as { addEventListener?: unknown }).addEventListener === 'function';

/** Whether this is a browser: a page, or a web or service worker (`importScripts` is theirs). */
export const isBrowser = (): boolean => isPage() || typeof (globalThis as { importScripts?: unknown }).importScripts === 'function';
