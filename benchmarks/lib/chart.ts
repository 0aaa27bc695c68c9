/**
 * The chart of `benchmarks/results.svg`: grouped bars, one group per scenario and one
 * series per implementation, drawn by ECharts' server-side SVG renderer (no DOM, no
 * canvas). A pure function of its input, like the markdown report.
 *
 * @module
 */
import type { BarSeriesOption } from 'echarts/charts';
import { BarChart } from 'echarts/charts';
import type {
  AriaComponentOption,
  GridComponentOption,
  LegendComponentOption,
  TitleComponentOption,
} from 'echarts/components';
import { AriaComponent, GridComponent, LegendComponent, TitleComponent } from 'echarts/components';
import type { ComposeOption } from 'echarts/core';
import { init, use } from 'echarts/core';
import { SVGRenderer } from 'echarts/renderers';

import { formatNumber } from './report.js';

use([AriaComponent, BarChart, GridComponent, LegendComponent, TitleComponent, SVGRenderer]);

type Option = ComposeOption<
  | AriaComponentOption
  | BarSeriesOption
  | GridComponentOption
  | LegendComponentOption
  | TitleComponentOption
>;

/** `ours` is drawn in the accent colour, `reference` in greys, `peer` in the palette. */
export type SeriesRole = 'ours' | 'reference' | 'peer';

/** One implementation: its figure per category, `null` where it has none. */
export interface BarSeries {
  readonly name: string;
  readonly role: SeriesRole;
  readonly values: readonly (number | null)[];
}

/** What `renderBarChart` draws. */
export interface BarChartSpec {
  readonly title: string;
  /** A second line under the title (units, how the figures were taken). */
  readonly subtitle: string;
  /** The y axis' name, e.g. `ns/msg`. */
  readonly unit: string;
  readonly categories: readonly string[];
  readonly series: readonly BarSeries[];
  /**
   * `'auto'` uses a log scale when the largest figure is more than 20 times the smallest.
   * @default 'auto'
   */
  readonly scale?: 'auto' | 'log' | 'linear';
  /** @default 1000 */
  readonly width?: number;
  /** @default 600 */
  readonly height?: number;
}

const OURS = '#d9480f';
const REFERENCES = ['#495057', '#868e96', '#ced4da'];
const PEERS = [
  '#1c7ed6',
  '#37b24d',
  '#7048e8',
  '#f59f00',
  '#0ca678',
  '#e64980',
  '#74c0fc',
  '#a9e34b',
  '#9775fa',
  '#ffc078',
];

/** The colour of each series, by role, in order. */
function colours(series: readonly BarSeries[]): string[] {
  let reference = 0;
  let peer = 0;
  return series.map((s) =>
    s.role === 'ours'
      ? OURS
      : s.role === 'reference'
        ? REFERENCES[reference++ % REFERENCES.length]!
        : PEERS[peer++ % PEERS.length]!,
  );
}

/** Whether the figures spread over more than `factor` (zero and negatives ignored). */
export function needsLogScale(series: readonly BarSeries[], factor = 20): boolean {
  const values = series.flatMap((s) => s.values.filter((v): v is number => v !== null && v > 0));
  if (values.length === 0) return false;
  return Math.max(...values) / Math.min(...values) > factor;
}

/**
 * Renders `spec` as a standalone SVG document (white background, legend on top, value
 * labels on the bars). A `null` figure leaves its slot empty.
 *
 * @throws RangeError when a series has not exactly one value per category.
 * @example
 * ```ts
 * const svg = renderBarChart({
 *   title: 'Throughput',
 *   subtitle: 'ns per message',
 *   unit: 'ns/msg',
 *   categories: ['A', 'B'],
 *   series: [{ name: 'sluice', role: 'ours', values: [400, 120] }],
 * });
 * ```
 */
export function renderBarChart(spec: BarChartSpec): string {
  for (const s of spec.series) {
    if (s.values.length !== spec.categories.length) {
      throw new RangeError(
        `Expected ${spec.categories.length} values for series '${s.name}', got ${s.values.length}`,
      );
    }
  }
  const width = spec.width ?? 1000;
  const height = spec.height ?? 600;
  const log = spec.scale === 'log' || (spec.scale !== 'linear' && needsLogScale(spec.series));
  const positive = spec.series.flatMap((s) =>
    s.values.filter((v): v is number => v !== null && v > 0),
  );
  // A log axis starts at the power of ten below the smallest bar, not at 1.
  const logMin =
    positive.length === 0 ? 1 : 10 ** Math.floor(Math.log10(Math.min(...positive)) - 1e-9);
  const colour = colours(spec.series);
  // The legend goes under the title and every line of the subtitle.
  const legendTop = 44 + 16 * spec.subtitle.split('\n').length;
  const option: Option = {
    animation: false,
    backgroundColor: '#ffffff',
    aria: { enabled: true, decal: { show: false } },
    color: colour,
    textStyle: { fontFamily: 'Helvetica, Arial, sans-serif' },
    title: {
      text: spec.title,
      subtext: spec.subtitle,
      left: 'center',
      top: 8,
      textStyle: { fontSize: 17 },
      subtextStyle: { fontSize: 12, color: '#495057' },
    },
    legend: { top: legendTop, left: 'center', itemGap: 14, textStyle: { fontSize: 12 } },
    // Room above the plot for two legend rows and the value labels of the tallest bars.
    grid: { top: legendTop + 90, left: 84, right: 24, bottom: 40 },
    xAxis: {
      type: 'category',
      data: [...spec.categories],
      axisTick: { alignWithLabel: false },
      axisLabel: { fontSize: 12, color: '#212529' },
    },
    yAxis: log
      ? {
          type: 'log',
          min: logMin,
          name: `${spec.unit} (log scale)`,
          nameLocation: 'middle',
          nameGap: 58,
          axisLabel: { formatter: (value: number) => formatNumber(value) },
        }
      : {
          type: 'value',
          name: spec.unit,
          nameLocation: 'middle',
          nameGap: 58,
          axisLabel: { formatter: (value: number) => formatNumber(value) },
        },
    series: spec.series.map((s): BarSeriesOption => ({
      type: 'bar',
      name: s.name,
      data: [...s.values],
      barGap: '8%',
      label: {
        show: true,
        position: 'top',
        rotate: 90,
        align: 'left',
        verticalAlign: 'middle',
        distance: 4,
        fontSize: 10,
        color: '#343a40',
        formatter: ({ value }) => (typeof value === 'number' ? formatNumber(value) : ''),
      },
    })),
  };
  const chart = init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption(option);
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}
