/** How the page hands finished records to the delivery path (service worker or page outbox). */
// TODO(#3): worker URL, transport choice, batching and outbox bounds.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface TransportOptions {}
