import type { DeliveryConfig } from '../src/protocol';
import { CONNECT_MESSAGE, SYNC_TAG } from '../src/transport/resolveDelivery';
import { startDelivery } from './startDelivery';
import { answerCalls } from './answerCalls';

/**
 * Options for `installTraceWorker()`: where to send and how, all optional. (Not `at`, when a
 * page's configuration was made: that is the pages' to send.)
 */
export interface TraceWorkerOptions extends Omit<DeliveryConfig, 'at'> {
  /**
   * Activate a new version at once and take control of open pages (`skipWaiting()` and
   * `clients.claim()`). Default false: an app's own worker decides that itself.
   */
  takeControl?: boolean | undefined;
  /** Logs the worker's internal errors to the console. Default false. */
  debug?: boolean | undefined;
}

// The few service-worker types we touch; the DOM lib this project compiles with has none of them.
interface ExtendableEvent extends Event {
  waitUntil(promise: Promise<unknown>): void;
}
interface ExtendableMessageEvent extends ExtendableEvent {
  data: { edgetrace?: unknown } | null;
  ports: readonly MessagePort[];
}
interface SyncEvent extends ExtendableEvent {
  tag: string;
}
interface WorkerScope {
  addEventListener(type: string, listener: (event: never) => void): void;
  removeEventListener(type: string, listener: (event: never) => void): void;
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  location: { href: string };
}

/**
 * How long an event keeps the worker alive after its own work, so a call arriving on a freshly
 * exposed port finds the worker still running; the flusher's own work then extends it further.
 */
const GRACE_MS = 1000;

/**
 * Wires the service worker's events to a delivery path: what {@link installTraceWorker} does
 * once the options are checked. The ready-made `edgetrace-sw.js` calls it directly, since its
 * options are fixed.
 */
export const startTraceWorker = (options: TraceWorkerOptions): (() => void) => {
  const { endpoint, headers, delivery, takeControl } = options;
  const scope = globalThis as unknown as WorkerScope;
  const d = startDelivery({
    transport: 'worker',
    own: { endpoint: endpoint && new URL(endpoint, scope.location.href).href, headers, delivery },
    onError: (error) => {
      if (options.debug) console.warn('[edgetrace] worker:', error);
    },
  });

  /** Keeps the worker alive until `work` is done and the flusher is idle (browsers cap this). */
  const keepAlive = (event: ExtendableEvent, work: Promise<unknown> = d.ready): void =>
    event.waitUntil(
      work
        .catch(() => undefined)
        .then(() => new Promise((resolve) => setTimeout(resolve, GRACE_MS)))
        .then(d.flusher.idle),
    );

  const listeners: Record<string, (event: never) => void> = {
    message(event: ExtendableMessageEvent) {
      const port = event.ports?.[0];
      if (event.data?.edgetrace !== CONNECT_MESSAGE || !port) return;
      answerCalls(d.api, port);
      keepAlive(event);
    },
    sync(event: SyncEvent) {
      // A rejected promise tells the browser to try the sync again later.
      if (event.tag === SYNC_TAG)
        event.waitUntil(
          d.ready
            .then(() => d.flusher.flush('sync'))
            .then((result) => {
              if (!result.ok) throw new Error(result.reason);
            }),
        );
    },
    online: () => d.flusher.start('online'),
    install(event: ExtendableEvent) {
      if (takeControl) event.waitUntil(scope.skipWaiting());
    },
    activate(event: ExtendableEvent) {
      // Not held for the flush: Chromium holds every navigation in scope until activation
      // settles, and while the receiver fails the flusher is never idle.
      if (takeControl) event.waitUntil(scope.clients.claim());
    },
  };
  const each = (method: 'addEventListener' | 'removeEventListener'): void => {
    for (const type in listeners) scope[method](type, listeners[type]!);
  };
  each('addEventListener');
  return () => {
    each('removeEventListener');
    d.stop();
  };
};
