import { getSessionId, init, newSession, setUser } from '../../src/index';
import type { SpanRecord } from '../../src/index';
import { PRICES } from '../models';
import { byId } from './dom';
import { startDeliveryPanel } from './deliveryPanel';
import { startRunPanel } from './runPanel';
import { startViewer } from './viewer';

// The playground page: the SDK traces it (clicks, the generation, the streamed fetch), a service
// worker delivers its spans to the local collector, and the viewer reads them back.

/**
 * Clicks that start no work (picking a model, opening a trace in the viewer) would each become a
 * one-span trace and bury the runs. Their interaction spans are dropped unless a child span of
 * the same trace ended first; children always end before their interaction does.
 */
const dropIdleInteractions = (): ((span: SpanRecord) => SpanRecord | null) => {
  const busy = new Set<string>();
  return (span) => {
    if (span.parentId) {
      if (busy.size > 1000) busy.clear();
      busy.add(span.traceId);
      return span;
    }
    if (span.attrs['edgetrace.interaction.type'] === undefined) return span;
    return busy.delete(span.traceId) ? span : null;
  };
};

const tracer = init({
  endpoint: '/v1/traces',
  serviceName: 'playground-web',
  serviceVersion: '0.1.0',
  environment: 'local',
  release: 'playground',
  // The same prices the mock model server uses, so each generation records its cost.
  prices: PRICES,
  // The viewer's own polling and the demo's controls are not part of what we trace.
  ignoreUrls: ['/api/', '/demo/'],
  beforeSend: dropIdleInteractions(),
  // Deliver quickly so the viewer fills in soon after a run; retry no slower than every 15 s.
  delivery: { flushIntervalMs: 300, backoffCapMs: 15_000 },
});

// --- user and session ---

const USER_KEY = 'playground.user';
const userInput = byId<HTMLInputElement>('user');
userInput.value = localStorage.getItem(USER_KEY) ?? 'ada';
setUser(userInput.value.trim() || undefined);
userInput.addEventListener('change', () => {
  const user = userInput.value.trim();
  localStorage.setItem(USER_KEY, user);
  setUser(user || undefined);
});

// The SDK keeps the session id per tab (sessionStorage) and puts it on every trace; "new" starts
// another with newSession(). A page that has not traced yet has none, so start one for the label.
if (!getSessionId()) newSession();
const currentSession = (): string => getSessionId() ?? '';
const sessionEl = byId('session');
const showSession = (): void => {
  sessionEl.textContent = currentSession();
};
showSession();

const viewer = startViewer({ session: currentSession });
byId('new-session').addEventListener('click', () => {
  newSession();
  showSession();
  viewer.refresh();
});

startRunPanel({ tracer, onRun: showSession, openTrace: (traceId) => viewer.select(traceId), onScore: (traceId) => viewer.watch(traceId) });
startDeliveryPanel();

// Where the collector forwards (Langfuse, an OTLP receiver), from the server.
fetch('/demo/state')
  .then((r) => r.json() as Promise<{ forwarding: string[]; store: string }>)
  .then((s) => {
    const el = byId('forwarding');
    el.textContent = s.forwarding.length ? `collector: SQLite + ${s.forwarding.map((u) => new URL(u).host).join(', ')}` : 'collector: local SQLite';
    el.title = [`store: ${s.store}`, ...s.forwarding.map((u) => `forwarding to ${u}`)].join('\n');
  })
  .catch(() => undefined);
