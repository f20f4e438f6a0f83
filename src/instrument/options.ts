/** Which browser instrumentations `init()` turns on. */
// TODO(#4): fetch, streams, interactions, navigation, errors, session, propagateTo.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface InstrumentOptions {}
