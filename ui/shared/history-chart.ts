import uPlot from 'uplot';
import { h } from './dom.js';
import { count } from './format.js';
import type { HistoryItem } from './types.js';

/** Series colours: requests first, then each metered metric. */
const COLOURS = ['#2f6fdf', '#d9822b', '#2e9d6b', '#9b59b6', '#c0392b', '#16a085'];

/**
 * The usage history as a uPlot chart: one x value per period (UTC), one
 * series per name (`requests` as bars, each metric a line), values `used`.
 * Periods the ledger has no row for count 0. Returns the element to insert;
 * the chart sizes itself to it once attached, and follows its width.
 */
export function historyChart(items: readonly HistoryItem[], options: { readonly title: string }): HTMLElement {
  const container = h('div', { class: 'history-chart', 'data-points': 0 });
  if (items.length === 0) {
    container.append(h('p', { class: 'empty' }, 'No usage recorded in this period yet.'));
    return container;
  }
  const periods = [...new Set(items.map((item) => Date.parse(item.period_start) / 1000))].sort((a, b) => a - b);
  const names = [...new Set(items.map((item) => item.name))].sort((a, b) => (a === 'requests' ? -1 : b === 'requests' ? 1 : a.localeCompare(b)));
  const step = periods.length > 1 ? periods[1]! - periods[0]! : 86_400;
  const index = new Map(periods.map((period, at) => [period, at]));
  const columns = names.map(() => periods.map(() => 0));
  for (const item of items) {
    const column = columns[names.indexOf(item.name)];
    const at = index.get(Date.parse(item.period_start) / 1000);
    if (column !== undefined && at !== undefined) column[at] = item.used;
  }
  container.setAttribute('data-points', String(periods.length));
  container.setAttribute('data-total', String(columns[0]?.reduce((sum, value) => sum + value, 0) ?? 0));
  const bars = uPlot.paths.bars?.({ size: [0.6, 40] });
  const series: uPlot.Series[] = [
    {},
    ...names.map((name, at): uPlot.Series => {
      const colour = COLOURS[at % COLOURS.length]!;
      return name === 'requests' && bars !== undefined
        ? { label: name, stroke: colour, fill: `${colour}99`, paths: bars, points: { show: false }, value: (_u, v) => (v === null ? '–' : count(v)) }
        : { label: name, stroke: colour, width: 2, value: (_u, v) => (v === null ? '–' : count(v)) };
    }),
  ];
  const opts: uPlot.Options = {
    title: options.title,
    width: 600,
    height: 240,
    series,
    tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), 'Etc/UTC'),
    // Half a period of room on each side, so the first and last bars show whole.
    scales: { x: { time: true, range: (_u, min, max) => [min - step / 2, max + step / 2] }, y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.1] } },
    axes: [{}, { values: (_u, ticks) => ticks.map((tick) => count(tick)) }],
    legend: { show: true },
    cursor: { drag: { x: false, y: false } },
  };
  const plot = new uPlot(opts, [periods, ...columns], container);
  const fit = (): void => {
    const width = container.clientWidth;
    if (width > 0) plot.setSize({ width, height: 240 });
  };
  // Follows the container's width; the observer goes with the container when it is replaced.
  new ResizeObserver(fit).observe(container);
  return container;
}
