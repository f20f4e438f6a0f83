// Statuses whose responses carry no body (RFC 9110), and 101, whose body is a WebSocket.
const NO_BODY = new Set([101, 204, 205, 304]);

/**
 * Whether the response to a `method` request with this status has no body to wait for. Runtimes
 * may still hand out an empty `body` for one (Chromium does for 204 and HEAD).
 */
export const hasNoBody = (status: number, method: string): boolean => NO_BODY.has(status) || method.toUpperCase() === 'HEAD';
