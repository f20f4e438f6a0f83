import { flushNow, getStatus, subscribe } from '../../src/index';
import type { DeliveryStatus } from '../../src/index';
import { byId, fmtInt, fmtMs, h, replace } from './dom';

/**
 * The delivery panel: the outbox as `subscribe()` reports it (the service worker posts every
 * change), and the offline switch, which asks the demo server to drop trace uploads from browsers.
 */

const TRANSPORTS: Record<DeliveryStatus['transport'], string> = {
  worker: 'service worker',
  page: 'page outbox (no service worker)',
  memory: 'memory only',
  none: 'starting…',
};

export const startDeliveryPanel = (): void => {
  const outbox = byId('outbox');
  const transport = byId('transport');
  const errorBox = byId('delivery-error');
  const offline = byId<HTMLInputElement>('offline');
  const flush = byId<HTMLButtonElement>('flush');
  let last: DeliveryStatus | undefined;
  let flushNote = '';

  const tile = (key: string, label: string, value: string, tone = ''): HTMLElement =>
    h('div', { class: `tile ${tone}`, dataset: { testid: `outbox-${key}` } }, h('dt', {}, label), h('dd', {}, value));

  const render = (): void => {
    const s = last;
    if (!s) return;
    transport.textContent = TRANSPORTS[s.transport];
    transport.className = `pill ${s.transport === 'worker' ? 'good' : s.transport === 'none' ? 'muted' : 'warn'}`;
    const wait = s.nextAttemptAt !== undefined ? s.nextAttemptAt - Date.now() : undefined;
    replace(
      outbox,
      tile('queued', 'queued', fmtInt(s.queued), s.queued > 0 ? 'warn' : ''),
      tile('inflight', 'in flight', fmtInt(s.inFlight), s.inFlight > 0 ? 'busy' : ''),
      tile('delivered', 'delivered', fmtInt(s.delivered), 'good'),
      tile('dropped', 'dropped', fmtInt(s.dropped), s.dropped > 0 ? 'bad' : ''),
      tile('dead', 'dead letters', fmtInt(s.deadLettered), s.deadLettered > 0 ? 'bad' : ''),
      tile('circuit', 'circuit', s.circuit, s.circuit === 'closed' ? '' : s.circuit === 'open' ? 'bad' : 'warn'),
      tile('next', 'next attempt', wait === undefined ? '–' : wait <= 0 ? 'now' : wait < 1000 ? `in ${fmtMs(wait)}` : `in ${Math.ceil(wait / 1000)} s`),
    );
    // A refusal (dead letter) stays the last error after later successes; once nothing waits and
    // the circuit is closed, show it as the error delivery got past.
    const healthy = s.queued === 0 && s.circuit === 'closed' && s.nextAttemptAt === undefined;
    const lines = [s.lastError ? `${healthy ? 'recovered from' : 'last error'}: ${s.lastError}` : '', flushNote].filter(Boolean);
    errorBox.hidden = lines.length === 0;
    replace(errorBox, ...lines.flatMap((line, i) => (i ? [h('br'), line] : [line])));
  };

  subscribe((s) => {
    last = s;
    render();
  });
  // The countdown moves on between reports, and a report missed while the worker restarted
  // is picked up here.
  setInterval(() => {
    getStatus()
      .then((s) => {
        last = s;
        render();
      })
      .catch(() => undefined);
  }, 1000);

  const showOffline = (isOffline: boolean): void => {
    offline.checked = isOffline;
    document.body.classList.toggle('is-offline', isOffline);
  };
  fetch('/demo/state')
    .then((r) => r.json() as Promise<{ offline: boolean }>)
    .then((s) => showOffline(s.offline))
    .catch(() => undefined);

  const doFlush = async (): Promise<void> => {
    flush.disabled = true;
    flushNote = 'flushing…';
    render();
    const result = await flushNow();
    flushNote = result.ok ? `flushNow(): sent ${result.sent} record${result.sent === 1 ? '' : 's'}` : `flushNow(): ${result.reason}`;
    flush.disabled = false;
    render();
  };
  flush.addEventListener('click', () => void doFlush());

  offline.addEventListener('change', () => {
    const want = offline.checked;
    offline.disabled = true;
    fetch('/demo/state', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ offline: want }) })
      .then((r) => r.json() as Promise<{ offline: boolean }>)
      .then((s) => {
        showOffline(s.offline);
        // Back online: deliver the backlog now rather than at the next scheduled retry.
        if (!s.offline) return doFlush();
        flushNote = '';
        return undefined;
      })
      .catch(() => showOffline(!want))
      .finally(() => {
        offline.disabled = false;
      });
  });
};
