import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

type Percentiles = { p50: number; p90: number; p99: number; max: number };

interface ChartInput {
  e2e?: { capacity: number; atCapacity?: { sse: Percentiles; poll: Percentiles } | undefined };
  busy?: { poll: { cpuMicrosPerDelivery: number }; sse: { cpuMicrosPerDelivery: number } };
  sends?: { acknowledgedPerSecond: number; baselinePerSecond: number };
  poll?: { requestsPerSecond: number; baselineRequestsPerSecond: number };
  fanout?: { cpuMicrosPerDelivery: number; baselineCpuMicrosPerDelivery: number };
}

/** One SVG: end-to-end latency percentiles at capacity, and each throughput/cost figure beside its baseline. */
export async function renderChart(results: ChartInput): Promise<string> {
  const atCapacity = results.e2e?.atCapacity;
  const latency = atCapacity
    ? (['sse', 'poll'] as const).flatMap((path) =>
        (['p50', 'p90', 'p99', 'max'] as const).map((percentile) => ({ path: path === 'sse' ? 'SSE' : 'long-poll', percentile, ms: atCapacity[path][percentile] })),
      )
    : [];
  const versus = [
    ...(results.sends ? [{ figure: 'durable sends / s', who: 'postline', value: results.sends.acknowledgedPerSecond }, { figure: 'durable sends / s', who: 'baseline', value: results.sends.baselinePerSecond }] : []),
    ...(results.poll ? [{ figure: 'long-polls / s', who: 'postline', value: results.poll.requestsPerSecond }, { figure: 'long-polls / s', who: 'baseline', value: results.poll.baselineRequestsPerSecond }] : []),
    ...(results.fanout ? [{ figure: 'CPU µs / delivery', who: 'postline', value: results.fanout.cpuMicrosPerDelivery }, { figure: 'CPU µs / delivery', who: 'baseline', value: results.fanout.baselineCpuMicrosPerDelivery }] : []),
    ...(results.busy ? [{ figure: 'busy threads: µs / delivery', who: 'long-poll', value: results.busy.poll.cpuMicrosPerDelivery }, { figure: 'busy threads: µs / delivery', who: 'SSE', value: results.busy.sse.cpuMicrosPerDelivery }] : []),
  ];
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'postline benchmark (baselines measured in the same run)',
    resolve: { scale: { color: 'independent' } },
    hconcat: [
      {
        title: `POST→delivery latency at capacity, ${results.e2e?.capacity ?? 0} msg/s (ms)`,
        data: { values: latency },
        mark: 'bar',
        width: 260,
        encoding: {
          x: { field: 'percentile', type: 'nominal', sort: ['p50', 'p90', 'p99', 'max'], title: null },
          xOffset: { field: 'path' },
          y: { field: 'ms', type: 'quantitative', title: 'ms', scale: { type: 'symlog' } },
          color: { field: 'path', type: 'nominal', title: null, scale: { range: ['#1f77b4', '#ff7f0e'] } },
        },
      },
      {
        title: 'postline vs baseline',
        data: { values: versus },
        mark: 'bar',
        width: 120,
        encoding: {
          column: { field: 'figure', type: 'nominal', title: null },
          x: { field: 'who', type: 'nominal', title: null },
          y: { field: 'value', type: 'quantitative', title: null },
          color: { field: 'who', type: 'nominal', title: null, scale: { domain: ['baseline', 'postline', 'SSE', 'long-poll'], range: ['#999999', '#2ca02c', '#1f77b4', '#ff7f0e'] } },
        },
        resolve: { scale: { y: 'independent' } },
      },
    ],
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
