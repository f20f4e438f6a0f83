import type { AttributeValue } from '../../src/index';
import type { SpanNode, TraceTree } from '../../src/server/index';
import { fmtClock, fmtCost, fmtInt, fmtMs, h, replace, shortId, thumbIcon, type Child } from './dom';

/**
 * One trace as a waterfall: every span of the page and of the server on one timeline, nested by
 * parent, each bar with its duration and kind, the generation's first token marked on its bar,
 * and the attributes and events of the span you click. Everything is built with DOM calls and
 * text nodes.
 */

const FIRST_TOKEN = 'langfuse.observation.completion_start_time';
const OBSERVATION_TYPE = 'langfuse.observation.type';

// Service colors stay the same from trace to trace: the page first, then the model server, then
// others in the order they show up.
const SERVICE_COLORS = new Map<string, number>([
  ['playground-web', 0],
  ['mock-model', 1],
]);
const colorOf = (service: string): string => {
  let i = SERVICE_COLORS.get(service);
  if (i === undefined) SERVICE_COLORS.set(service, (i = Math.min(SERVICE_COLORS.size, 5)));
  return `svc-${i}`;
};

/** Remembered between re-renders of the same trace, so a refresh keeps the open span. */
export interface WaterfallState {
  traceId?: string;
  spanId?: string;
  /** True once the person picked a span; until then the default follows the spans that arrive. */
  picked?: boolean;
}

interface Row {
  node: SpanNode;
  depth: number;
}

const flatten = (roots: readonly SpanNode[]): Row[] => {
  const out: Row[] = [];
  const stack: Row[] = [...roots].reverse().map((node) => ({ node, depth: 0 }));
  while (stack.length) {
    const row = stack.pop()!;
    out.push(row);
    for (let i = row.node.children.length - 1; i >= 0; i--) stack.push({ node: row.node.children[i]!, depth: row.depth + 1 });
  }
  return out;
};

/** Milliseconds from the span's start to its first token, when it is a generation that has one. */
export const firstTokenMs = (node: SpanNode): number | undefined => {
  const at = node.attrs[FIRST_TOKEN];
  if (typeof at !== 'string') return undefined;
  const t = Date.parse(at);
  return Number.isFinite(t) ? Math.max(0, t - node.startMs) : undefined;
};

const kindOf = (node: SpanNode): string => {
  const type = node.attrs[OBSERVATION_TYPE];
  return typeof type === 'string' && type !== 'span' ? type : node.kind;
};

/** Values as text: JSON text (inputs, outputs, usage) pretty-printed, arrays joined. */
const valueText = (v: AttributeValue | undefined): { text: string; block: boolean } => {
  if (Array.isArray(v)) return { text: v.map(String).join(', '), block: false };
  if (typeof v === 'string') {
    const t = v.trim();
    if ((t.startsWith('{') && t.endsWith('}')) || (t.startsWith('[') && t.endsWith(']'))) {
      try {
        return { text: JSON.stringify(JSON.parse(t), null, 2), block: true };
      } catch {
        // Not JSON after all.
      }
    }
    return { text: v, block: v.length > 80 || v.includes('\n') };
  }
  if (typeof v === 'number' && !Number.isInteger(v)) return { text: String(Number(v.toPrecision(6))), block: false };
  return { text: String(v), block: false };
};

const kvTable = (attrs: Record<string, AttributeValue>, testid: string): HTMLElement => {
  const keys = Object.keys(attrs).sort();
  if (!keys.length) return h('p', { class: 'muted small' }, 'none');
  return h(
    'table',
    { class: 'kv', dataset: { testid } },
    h(
      'tbody',
      {},
      ...keys.map((k) => {
        const { text, block } = valueText(attrs[k]);
        return h('tr', {}, h('th', {}, k), h('td', {}, block ? h('pre', {}, text) : text));
      }),
    ),
  );
};

const spanDetail = (node: SpanNode, t0: number, service: string): HTMLElement => {
  const ft = firstTokenMs(node);
  const events = node.events ?? [];
  const facts: [string, Child][] = [
    ['span id', node.spanId],
    ['parent', node.parentId ? `${node.parentId}${node.remoteParent ? ' (remote: from traceparent)' : ''}` : '– (root)'],
    ['service', service],
    ['kind', `${node.kind}${kindOf(node) !== node.kind ? ` · ${kindOf(node)}` : ''}`],
    ['start', `+${fmtMs(node.startMs - t0)} (${fmtClock(node.startMs)})`],
    ['duration', fmtMs(node.durationMs)],
    ['status', node.status?.message ? `${node.status.code}: ${node.status.message}` : (node.status?.code ?? 'unset')],
  ];
  if (ft !== undefined) facts.push(['first token', fmtMs(ft)]);
  return h(
    'div',
    { class: 'span-detail', dataset: { testid: 'span-detail' } },
    h('h3', {}, h('span', { dataset: { testid: 'span-detail-name' } }, node.name), ' ', h('span', { class: `pill kind-${kindOf(node)}` }, kindOf(node))),
    h('dl', { class: 'facts' }, ...facts.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('h4', {}, `Attributes (${Object.keys(node.attrs).length})`),
    kvTable(node.attrs, 'span-attributes'),
    h('h4', {}, `Events (${events.length})`),
    events.length
      ? h(
          'table',
          { class: 'kv events', dataset: { testid: 'span-events' } },
          h(
            'tbody',
            {},
            ...events.map((e) =>
              h(
                'tr',
                {},
                h('th', {}, `+${fmtMs(e.timeMs - node.startMs)}`),
                h(
                  'td',
                  {},
                  h('b', {}, e.name),
                  ...Object.entries(e.attrs ?? {}).map(([k, v]) => h('div', { class: 'small' }, `${k} = `, valueText(v).text)),
                ),
              ),
            ),
          ),
        )
      : h('p', { class: 'muted small' }, 'none'),
    h('details', {}, h('summary', {}, 'Resource'), kvTable(node.resource?.attrs ?? {}, 'span-resource')),
  );
};

/** Renders `tree` into `el`; clicking a row shows that span's details below the waterfall. */
export const renderTrace = (el: HTMLElement, tree: TraceTree, state: WaterfallState): void => {
  const rows = flatten(tree.roots);
  if (state.traceId !== tree.summary.traceId) {
    state.traceId = tree.summary.traceId;
    state.picked = false;
  }
  if (!state.picked) {
    // Open the generation first: it carries the first token, the usage and the cost. (The
    // server's spans often arrive before the page's, so this is decided again on each render.)
    state.spanId = rows.find((r) => kindOf(r.node) === 'generation')?.node.spanId ?? rows[0]?.node.spanId;
  }
  const t0 = Math.min(...rows.map((r) => r.node.startMs));
  const t1 = Math.max(...rows.map((r) => r.node.endMs));
  const total = Math.max(1, t1 - t0);
  const services: string[] = [];
  const serviceOf = (node: SpanNode): string => node.service ?? String(node.resource?.attrs?.['service.name'] ?? 'unknown');
  for (const r of rows) if (!services.includes(serviceOf(r.node))) services.push(serviceOf(r.node));
  const svcClass = (node: SpanNode): string => colorOf(serviceOf(node));
  const hasFirstToken = rows.some((r) => firstTokenMs(r.node) !== undefined);
  const hasEvents = rows.some((r) => (r.node.events ?? []).length > 0);
  const pct = (ms: number): string => `${Math.max(0, Math.min(100, (ms / total) * 100)).toFixed(3)}%`;

  const detailBox = h('div', { class: 'detail-box' });
  const showDetail = (): void => {
    const row = rows.find((r) => r.node.spanId === state.spanId) ?? rows[0];
    for (const r of Array.from(el.querySelectorAll('.wf-row'))) r.classList.toggle('selected', (r as HTMLElement).dataset.spanId === row?.node.spanId);
    replace(detailBox, row ? spanDetail(row.node, t0, serviceOf(row.node)) : null);
  };

  const wfRows = rows.map(({ node, depth }) => {
    const start = node.startMs - t0;
    const ft = firstTokenMs(node);
    const isError = node.status?.code === 'error';
    const bar = h(
      'div',
      {
        class: `wf-bar ${svcClass(node)}${isError ? ' error' : ''}${kindOf(node) === 'generation' ? ' generation' : ''}`,
        style: { left: pct(start), width: `max(2px, ${pct(node.durationMs)})` },
        title: `${node.name}: ${fmtMs(node.durationMs)}`,
      },
      ft !== undefined && node.durationMs > 0
        ? h('span', { class: 'wf-first-token', style: { left: `${Math.min(100, (ft / node.durationMs) * 100).toFixed(2)}%` }, title: `first token after ${fmtMs(ft)}` })
        : null,
    );
    const duration = h(
      'span',
      { class: 'wf-dur', style: { left: pct(start + node.durationMs) } },
      fmtMs(node.durationMs),
    );
    const eventDots = (node.events ?? []).map((e) =>
      h('span', { class: 'wf-event', style: { left: pct(e.timeMs - t0) }, title: `${e.name} at +${fmtMs(e.timeMs - node.startMs)}` }),
    );
    const row = h(
      'div',
      {
        class: 'wf-row',
        dataset: { spanId: node.spanId, testid: 'span-row', service: serviceOf(node), kind: kindOf(node) },
        attrs: { role: 'button', tabindex: 0 },
        onClick: () => {
          state.spanId = node.spanId;
          state.picked = true;
          showDetail();
        },
      },
      h(
        'div',
        { class: 'wf-label', style: { paddingLeft: `${depth * 14 + 8}px` }, title: `${node.name} (${serviceOf(node)})` },
        h('span', { class: `dot ${svcClass(node)}` }),
        h('span', { class: 'wf-name', dataset: { testid: 'span-name' } }, node.name),
        h('span', { class: `kind kind-${kindOf(node)}` }, kindOf(node)),
        isError ? h('span', { class: 'err-mark', title: node.status?.message ?? 'error' }, '!') : null,
        ft !== undefined ? h('span', { class: 'first-token', dataset: { testid: 'first-token' } }, `first token ${fmtMs(ft)}`) : null,
      ),
      h('div', { class: 'wf-track' }, bar, ...eventDots, duration),
    );
    row.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        state.spanId = node.spanId;
        state.picked = true;
        showDetail();
      }
    });
    return row;
  });

  const s = tree.summary;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => h('span', { class: 'tick', style: { left: `${f * 100}%` } }, f ? fmtMs(f * total) : '0'));
  const scores = tree.scores.map((sc) =>
    h(
      'span',
      { class: `pill score ${sc.value === 1 ? 'good' : sc.value === 0 ? 'bad' : ''}`, title: sc.comment ?? '', dataset: { testid: 'score' } },
      sc.dataType === 'BOOLEAN' ? thumbIcon(sc.value !== 1) : null,
      ` ${sc.name} = ${String(sc.value)}`,
    ),
  );

  replace(
    el,
    h(
      'div',
      { class: 'trace-head' },
      h('div', { class: 'trace-name', dataset: { testid: 'trace-name' } }, s.name),
      h('span', { class: `status ${s.status}` }, s.status),
      ...scores,
    ),
    h(
      'div',
      { class: 'trace-meta muted' },
      h('code', { title: s.traceId }, shortId(s.traceId)),
      ` · ${fmtMs(s.durationMs)} · ${s.spanCount} spans`,
      s.userId ? ` · user ${s.userId}` : null,
      s.sessionId ? ` · session ${s.sessionId}` : null,
      s.inputTokens || s.outputTokens ? ` · ${fmtInt(s.inputTokens)} in / ${fmtInt(s.outputTokens)} out tokens` : null,
      s.costUsd ? ` · ${fmtCost(s.costUsd)}` : null,
    ),
    h(
      'div',
      { class: 'legend' },
      ...services.map((name) => h('span', { class: 'legend-item' }, h('span', { class: `dot ${colorOf(name)}` }), name)),
      hasFirstToken ? h('span', { class: 'legend-item' }, h('span', { class: 'wf-first-token legend-tick' }), 'first token') : null,
      hasEvents ? h('span', { class: 'legend-item' }, h('span', { class: 'wf-event legend-dot' }), 'event') : null,
    ),
    h('div', { class: 'wf', dataset: { testid: 'waterfall' } }, h('div', { class: 'wf-axis' }, h('div', {}), h('div', { class: 'wf-ticks' }, ...ticks)), ...wfRows),
    detailBox,
  );
  showDetail();
};
