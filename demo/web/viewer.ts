import type { TraceList, TraceStats, TraceSummary, TraceTree } from '../../src/server/index';
import { byId, fmtClock, fmtCost, fmtInt, fmtMs, h, replace } from './dom';
import { renderStats } from './stats';
import { renderTrace, type WaterfallState } from './waterfall';

/**
 * The trace viewer: recent traces from the collector's query API with filters, the waterfall of
 * the one picked, and the stats panel, polled while the tab is visible. The API is open to this
 * machine (the playground runs the collector with `readToken: false` on 127.0.0.1), so the page
 * reads it without a token; these requests are in the tracer's `ignoreUrls`.
 */

export interface ViewerOptions {
  /** The page's current session id, for "this session only". */
  session: () => string;
}

export interface Viewer {
  /** Shows this trace (waiting for its spans if none arrived yet). */
  select(traceId: string): void;
  /** Reloads the list now. */
  refresh(): void;
  /** Something more is on its way for this trace (a score): keep reloading it for a while. */
  watch(traceId: string): void;
}

/** How long a trace is reloaded after its last span ended, or after `watch()`. */
const WATCH_MS = 15_000;

const LIST_EVERY_MS = 1000;
/** How long a chosen trace that the list does not show yet is waited for before it is asked for. */
const LIST_WAIT_MS = 8000;
const STATS_EVERY_MS = 3000;

const getJson = async <T>(url: string): Promise<T | undefined> => {
  const res = await fetch(url, { headers: { accept: 'application/json' } });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
  return (await res.json()) as T;
};

/** What changes in a summary while spans are still arriving. */
const versionOf = (s: TraceSummary): string => `${s.spanCount}:${s.endMs}:${s.name}:${s.status}`;

export const startViewer = (opts: ViewerOptions): Viewer => {
  const rows = byId('trace-rows');
  const nameFilter = byId<HTMLSelectElement>('filter-name');
  const userFilter = byId<HTMLInputElement>('filter-user');
  const statusFilter = byId<HTMLSelectElement>('filter-status');
  const sessionFilter = byId<HTMLInputElement>('filter-session');
  const live = byId<HTMLInputElement>('live');
  const updated = byId('updated');
  const detail = byId('trace-detail');
  const statsEl = byId('stats');

  const waterfall: WaterfallState = {};
  let selected: string | undefined;
  /** The trace `watch()` named, reloaded until `watchUntil`. */
  let watched: string | undefined;
  let watchUntil = 0;
  let shownVersion = '';
  let listShown = '';
  /** The trace ids of the last list, and when the open trace was chosen. */
  let listed = new Set<string>();
  let selectedAt = 0;
  let scoresShown = '';
  const names = new Set<string>();
  let busy = false;
  let lastStatsMs = 0;

  const query = (): string => {
    const p = new URLSearchParams({ limit: '40' });
    if (nameFilter.value) p.set('name', nameFilter.value);
    if (userFilter.value.trim()) p.set('user', userFilter.value.trim());
    if (statusFilter.value) p.set('status', statusFilter.value);
    if (sessionFilter.checked) p.set('session', opts.session());
    return p.toString();
  };

  const addNames = (traces: readonly TraceSummary[]): void => {
    let added = false;
    for (const t of traces) {
      if (names.has(t.name)) continue;
      names.add(t.name);
      added = true;
    }
    if (!added) return;
    const current = nameFilter.value;
    replace(nameFilter, h('option', { attrs: { value: '' } }, 'any'), ...[...names].sort().map((n) => h('option', { attrs: { value: n } }, n)));
    nameFilter.value = current;
  };

  const renderRows = (traces: readonly TraceSummary[]): void => {
    if (!traces.length) {
      replace(rows, h('tr', {}, h('td', { class: 'empty', attrs: { colspan: 8 } }, 'No traces yet. Send a prompt: its trace shows up here a moment later.')));
      return;
    }
    replace(
      rows,
      ...traces.map((t) => {
        const tokens = t.inputTokens + t.outputTokens;
        const row = h(
          'tr',
          {
            class: `${t.traceId === selected ? 'selected' : ''}${t.status === 'error' ? ' error' : ''}`,
            dataset: { traceId: t.traceId, testid: 'trace-row' },
            attrs: { tabindex: 0 },
            onClick: () => select(t.traceId),
          },
          h('td', { class: 'muted' }, fmtClock(t.startMs)),
          h('td', { class: 'name-cell', title: t.name, dataset: { testid: 'trace-row-name' } }, t.name),
          h('td', { class: 'name-cell', title: t.userId ?? '' }, t.userId ?? '–'),
          h('td', { class: 'num' }, fmtMs(t.durationMs)),
          h('td', {}, h('span', { class: `status ${t.status}` }, t.status)),
          h('td', { class: 'num', title: `${t.inputTokens} in, ${t.outputTokens} out` }, tokens ? fmtInt(tokens) : '–'),
          h('td', { class: 'num' }, fmtCost(t.costUsd)),
          h('td', { class: 'num' }, fmtInt(t.spanCount)),
        );
        row.addEventListener('keydown', (e) => {
          if (e.key === 'Enter') select(t.traceId);
        });
        return row;
      }),
    );
  };

  const waiting = (id: string): void => {
    shownVersion = '';
    replace(detail, h('p', { class: 'muted', dataset: { testid: 'trace-waiting' } }, `Waiting for the spans of trace ${id.slice(0, 8)} to reach the collector…`));
  };

  const loadTrace = async (): Promise<void> => {
    const id = selected;
    if (!id) return;
    // A run's trace opened as it starts is not in the collector yet: wait for the list to show
    // it rather than ask for it (each 404 is an error line in the console). Past a few seconds,
    // or with filters that leave it out of the list, ask all the same.
    if (!listed.has(id) && Date.now() - selectedAt < LIST_WAIT_MS) return waiting(id);
    const tree = await getJson<TraceTree>(`/api/traces/${id}`);
    if (id !== selected) return;
    if (!tree) return waiting(id);
    const scores = JSON.stringify(tree.scores.map((s) => s.id));
    // Re-render only when something changed, so an open span keeps its place on the page.
    if (versionOf(tree.summary) === shownVersion && scores === scoresShown) return;
    shownVersion = versionOf(tree.summary);
    scoresShown = scores;
    renderTrace(detail, tree, waterfall);
  };

  const tick = async (force = false): Promise<void> => {
    if (busy) return;
    if (!force && (!live.checked || document.visibilityState !== 'visible')) return;
    busy = true;
    try {
      const list = await getJson<TraceList>(`/api/traces?${query()}`);
      const traces = list?.traces ?? [];
      listed = new Set(traces.map((t) => t.traceId));
      addNames(traces);
      const shown = JSON.stringify(traces.map((t) => [t.traceId, versionOf(t), t.userId, t.inputTokens, t.outputTokens, t.costUsd]));
      if (shown !== listShown || force) {
        listShown = shown;
        renderRows(traces);
      }
      if (selected) {
        const summary = traces.find((t) => t.traceId === selected);
        // Reload the open trace while its spans are still arriving, and while a score given to
        // it later (which changes nothing in the list) may still be on its way.
        const recent = Date.now() - (summary?.endMs ?? 0) < WATCH_MS || (watched === selected && Date.now() < watchUntil);
        if (!summary || versionOf(summary) !== shownVersion || force || recent) await loadTrace().catch(() => undefined);
      }
      if (force || Date.now() - lastStatsMs >= STATS_EVERY_MS) {
        lastStatsMs = Date.now();
        const stats = await getJson<TraceStats>('/api/stats');
        if (stats) renderStats(statsEl, stats);
      }
      updated.textContent = `updated ${fmtClock(Date.now())}`;
      updated.classList.remove('bad-text');
    } catch (error) {
      updated.textContent = `cannot reach the collector (${error instanceof Error ? error.message : String(error)})`;
      updated.classList.add('bad-text');
    } finally {
      busy = false;
    }
  };

  const select = (traceId: string): void => {
    selected = traceId;
    selectedAt = Date.now();
    shownVersion = '';
    scoresShown = '';
    for (const tr of Array.from(rows.querySelectorAll('tr'))) tr.classList.toggle('selected', (tr as HTMLElement).dataset.traceId === traceId);
    loadTrace().catch(() => undefined);
  };

  for (const el of [nameFilter, statusFilter, sessionFilter]) el.addEventListener('change', () => void tick(true));
  userFilter.addEventListener('change', () => void tick(true));
  live.addEventListener('change', () => void tick(true));
  setInterval(() => void tick(), LIST_EVERY_MS);
  void tick(true);

  return {
    select,
    refresh: () => void tick(true),
    watch: (traceId) => {
      watched = traceId;
      watchUntil = Date.now() + WATCH_MS;
    },
  };
};
