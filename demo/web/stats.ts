import type { NameStats, TraceStats } from '../../src/server/index';
import { fmtCost, fmtInt, fmtMs, fmtPercent, h, replace } from './dom';

/**
 * The stats panel, from the collector's `GET /api/stats`: latency percentiles of the runs and of
 * the model server, the error rate, and tokens and cost by model.
 */

const RUN = 'send prompt';
const MODEL_CALL = 'POST /v1/chat/completions';
const TOP_NAMES = 8;

const card = (testid: string, label: string, value: string, sub: string): HTMLElement =>
  h('div', { class: 'stat-card', dataset: { testid } }, h('div', { class: 'stat-label' }, label), h('div', { class: 'stat-value' }, value), h('div', { class: 'stat-sub muted' }, sub));

const plural = (n: number, word: string): string => `${fmtInt(n)} ${word}${n === 1 ? '' : 's'}`;

const latency = (row: NameStats | undefined): string => (row ? `${fmtMs(row.p50Ms)} / ${fmtMs(row.p95Ms)}` : '–');

export const renderStats = (el: HTMLElement, stats: TraceStats): void => {
  const run = stats.byName.find((n) => n.name === RUN);
  const call = stats.byName.find((n) => n.name === MODEL_CALL);
  const cost = stats.byModel.reduce((sum, m) => sum + m.costUsd, 0);
  const tokens = stats.byModel.reduce((sum, m) => sum + m.totalTokens, 0);

  const cards = h(
    'div',
    { class: 'stat-cards' },
    card('stat-run', 'run latency p50 / p95', latency(run), run ? `${plural(run.count, 'run')} ("${RUN}", click to last token)` : 'no runs yet'),
    card('stat-model', 'model server p50 / p95', latency(call), call ? `${plural(call.count, 'request')} (server span)` : 'no requests yet'),
    card('stat-errors', 'error rate', fmtPercent(stats.errorRate), `${fmtInt(stats.errors)} of ${fmtInt(stats.spans)} spans`),
    card('stat-cost', 'cost', fmtCost(cost), `${fmtInt(tokens)} tokens`),
  );

  const models = stats.byModel.length
    ? h(
        'table',
        { class: 'grid', dataset: { testid: 'stats-models' } },
        h('thead', {}, h('tr', {}, h('th', {}, 'model'), h('th', { class: 'num' }, 'calls'), h('th', { class: 'num' }, 'input'), h('th', { class: 'num' }, 'output'), h('th', { class: 'num' }, 'cost'))),
        h(
          'tbody',
          {},
          ...stats.byModel.map((m) =>
            h('tr', {}, h('td', {}, m.model), h('td', { class: 'num' }, fmtInt(m.count)), h('td', { class: 'num' }, fmtInt(m.inputTokens)), h('td', { class: 'num' }, fmtInt(m.outputTokens)), h('td', { class: 'num' }, fmtCost(m.costUsd))),
          ),
        ),
      )
    : h('p', { class: 'muted small' }, 'No generations yet.');

  const names = stats.byName.slice(0, TOP_NAMES);
  const spans = h(
    'table',
    { class: 'grid', dataset: { testid: 'stats-names' } },
    h('thead', {}, h('tr', {}, h('th', {}, 'span'), h('th', { class: 'num' }, 'count'), h('th', { class: 'num' }, 'errors'), h('th', { class: 'num' }, 'p50'), h('th', { class: 'num' }, 'p95'))),
    h(
      'tbody',
      {},
      ...names.map((n) =>
        h(
          'tr',
          {},
          h('td', { class: 'name-cell', title: n.name }, n.name),
          h('td', { class: 'num' }, fmtInt(n.count)),
          h('td', { class: `num${n.errors ? ' bad-text' : ''}` }, n.errors ? `${fmtInt(n.errors)} (${fmtPercent(n.errorRate)})` : '0'),
          h('td', { class: 'num' }, fmtMs(n.p50Ms)),
          h('td', { class: 'num' }, fmtMs(n.p95Ms)),
        ),
      ),
    ),
  );

  // Each table scrolls on its own in a narrow window, rather than the whole page sideways.
  replace(el, cards, h('div', { class: 'stat-tables' }, h('div', { class: 'scroll-x' }, h('h4', {}, 'Tokens and cost by model'), models), h('div', { class: 'scroll-x' }, h('h4', {}, `Latency by span name (top ${TOP_NAMES})`), spans)));
};
