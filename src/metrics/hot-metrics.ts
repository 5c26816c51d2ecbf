import type { Registry } from 'prom-client';

/**
 * Counters and histograms for the request path: a label combination is
 * resolved once to a cell (`labels(...)`), kept, and updated with plain
 * arithmetic; the registry reads every cell when Prometheus scrapes.
 * prom-client's own `labels()` children validate and hash their labels on
 * every call, which is per-request work the hot path does not need
 * (envoyproxy/ratelimit resolves its stats per limit the same way).
 *
 * The exposition (names, types, labels, buckets, `_sum`/`_count`) is what a
 * prom-client metric of the same definition writes. Label values must be
 * bounded — configured names and fixed outcome sets — as every metric's are.
 */

interface MetricValue {
  readonly metricName?: string;
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

interface MetricDefinition<L extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly registers: readonly Registry[];
}

/** Cells by their label values joined with a separator that no label value holds. */
abstract class CellFamily<L extends string, Cell> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly L[];
  readonly aggregator = 'sum';
  protected readonly cells = new Map<string, { readonly labels: Record<string, string>; readonly cell: Cell }>();

  constructor(definition: MetricDefinition<L>) {
    this.name = definition.name;
    this.help = definition.help;
    this.labelNames = definition.labelNames;
    for (const registry of definition.registers) registry.registerMetric(this as never);
  }

  /** The cell of these label values (in `labelNames` order), created on first use. Resolve it once and keep it. */
  labels(...values: string[]): Cell {
    const key = values.join('\u0000');
    const found = this.cells.get(key);
    if (found !== undefined) return found.cell;
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: expected ${this.labelNames.length} label values`);
    const labels: Record<string, string> = {};
    this.labelNames.forEach((name, index) => (labels[name] = values[index]!));
    const cell = this.newCell();
    this.cells.set(key, { labels, cell });
    return cell;
  }

  /** Forgets every cell (cells resolved before keep counting, unseen). */
  reset(): void {
    this.cells.clear();
  }

  protected abstract newCell(): Cell;
}

/** One counter time series. */
export class CounterCell {
  value = 0;
  inc(amount = 1): void {
    this.value += amount;
  }
}

/** A counter family; `inc(labels)` for cold paths, `labels(...)` kept for hot ones. */
export class HotCounter<L extends string> extends CellFamily<L, CounterCell> {
  readonly type = 'counter';

  /** Adds `amount` to the series of `labels` (resolves the cell each call: for cold paths). */
  inc(labels: Readonly<Record<L, string>>, amount = 1): void {
    this.labels(...this.labelNames.map((name) => labels[name])).inc(amount);
  }

  /** What the registry exposes. */
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const { labels, cell } of this.cells.values()) values.push({ labels, value: cell.value });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  protected newCell(): CounterCell {
    return new CounterCell();
  }
}

/** One histogram time series: a count per bucket (non-cumulative), the sum and the count. */
export class HistogramCell {
  readonly #bounds: readonly number[];
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Float64Array(bounds.length);
  }

  /** Records one observation, in the histogram's unit (seconds). */
  observe(value: number): void {
    const bounds = this.#bounds;
    let index = 0;
    while (index < bounds.length && value > bounds[index]!) index++;
    if (index < bounds.length) this.counts[index]! += 1;
    this.sum += value;
    this.count += 1;
  }
}

/** A histogram family with fixed bucket bounds (upper bounds, ascending; `+Inf` is implied). */
export class HotHistogram<L extends string> extends CellFamily<L, HistogramCell> {
  readonly type = 'histogram';
  readonly #bounds: readonly number[];

  constructor(definition: MetricDefinition<L> & { readonly buckets: readonly number[] }) {
    super(definition);
    this.#bounds = [...definition.buckets];
  }

  /** Records one observation for `labels` (resolves the cell each call: for cold paths). */
  observe(labels: Readonly<Record<L, string>>, value: number): void {
    this.labels(...this.labelNames.map((name) => labels[name])).observe(value);
  }

  /** What the registry exposes: cumulative `_bucket` series with `le`, then `_sum` and `_count`. */
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const { labels, cell } of this.cells.values()) {
      let cumulative = 0;
      this.#bounds.forEach((bound, index) => {
        cumulative += cell.counts[index]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: bound, ...labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: cell.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: cell.sum });
      values.push({ metricName: `${this.name}_count`, labels, value: cell.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  protected newCell(): HistogramCell {
    return new HistogramCell(this.#bounds);
  }
}
