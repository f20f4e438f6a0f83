/**
 * Whether `v` is a fetch Response, or one as good for reading its status and headers (another
 * realm's, a polyfill's). Node's `res` is none: it has `statusCode`, and Express's `status` is a method.
 */
export const isResponseLike = (v: unknown): v is Response =>
  typeof v === 'object' && v !== null && typeof (v as Response).status === 'number' && typeof (v as Response).headers?.get === 'function';
