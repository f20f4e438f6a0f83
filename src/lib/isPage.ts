/**
 * Whether this code runs in a browser page (a window with a document). Some server renderers
 * define `document` as null, and `typeof null` is "object": that is no page.
 */
export const isPage = (): boolean => {
  const d = (globalThis as { document?: unknown }).document;
  return typeof d === 'object' && d !== null;
};
