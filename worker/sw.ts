import { startTraceWorker } from './startTraceWorker';

// The ready-made `edgetrace-sw.js` for apps without a service worker of their own: register it
// (the SDK does, from `workerUrl`) and pages configure the endpoint. It takes control at once;
// it has no fetch handler, so it never sits in the way of the app's requests.
startTraceWorker({ takeControl: true });
