/**
 * The worker's side of the page's comlink connection: answers the calls `wrap(port)` sends
 * (`api.enqueue(records)` on the page becomes an `APPLY` message here) with comlink's own reply
 * messages. comlink's `expose()` would do the same, but it bundles the page half of comlink too
 * (its proxy transfer handler builds a `wrap()`), about a fifth of the service worker; this
 * worker only ever answers plain method calls, so that is all this handles:
 * - `APPLY` of the API object's own methods, with plain (structured-clone) arguments;
 * - `RELEASE`, which answers and then closes the port;
 * - anything else (`GET`, `SET`, `CONSTRUCT`, `ENDPOINT`, proxied arguments, inherited
 *   members) is answered with a TypeError, which the page's call rejects with.
 *
 * The message shapes are comlink 4's (see its `expose()` and `wrap()`); the unit test drives
 * this with comlink's real `wrap()`, so a change of format there fails here first.
 */

interface Call {
  id?: unknown;
  type?: unknown;
  path?: unknown;
  argumentList?: Array<{ type?: unknown; value?: unknown }>;
}

const reject = (message: string): never => {
  throw new TypeError(`[edgetrace] worker: ${message}`);
};

/**
 * comlink's wire form of a thrown value: its "throw" transfer handler. Without the stack: the
 * API's methods never reject (startDelivery's `safe`), so only this module's own refusals of a
 * malformed call get here, and their stack says nothing the message does not.
 */
const thrown = (value: unknown): unknown => ({
  type: 'HANDLER',
  name: 'throw',
  value: value instanceof Error ? { isError: true, value: { message: value.message, name: value.name } } : { isError: false, value },
});

/** Answers comlink calls on `port` with `api`'s own methods. */
export const answerCalls = (api: object, port: MessagePort): void => {
  port.addEventListener('message', (event: MessageEvent) => {
    const call = event.data as Call | null;
    if (!call || !call.id) return;
    const { id, type } = call;
    let result: unknown;
    try {
      if (type === 'APPLY') {
        const path = call.path;
        const name = Array.isArray(path) && path.length === 1 ? path[0] : undefined;
        // Own methods only: a name like "constructor" or "__proto__" reaches nothing else.
        const fn = typeof name === 'string' && {}.hasOwnProperty.call(api, name) ? (api as Record<string, unknown>)[name] : undefined;
        if (typeof fn !== 'function') reject(`no method ${path as string}`);
        const args = (call.argumentList ?? []).map((a) => (a.type === 'RAW' ? a.value : reject('plain arguments only')));
        result = (fn as (...a: unknown[]) => unknown).apply(api, args);
      } else if (type !== 'RELEASE') reject(`${type as string} is not supported`);
    } catch (error) {
      result = Promise.reject(error);
    }
    Promise.resolve(result)
      .then((value) => ({ type: 'RAW', value }), thrown)
      .then((reply) => {
        try {
          port.postMessage({ ...(reply as object), id });
        } catch (error) {
          // A reply structured clone cannot copy: the page's call rejects with the DataCloneError.
          port.postMessage({ ...(thrown(error) as object), id });
        }
        if (type === 'RELEASE') port.close();
      })
      .catch(() => undefined);
  });
  port.start();
};
