import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

type Percentiles = { p50: number; p90: number; p99: number; max: number };

interface ChartInput {
  capacity?: Array<{ system: string; capacity: number; cpuMsPerMessage: number; atCapacity?: { sse: Percentiles; poll: Percentiles | undefined } | undefined }>;
  busy?: { poll: { cpuMicrosPerDelivery: number }; sse: { cpuMicrosPerDelivery: number } };
  sends?: { acknowledgedPerSecond: number; baselinePerSecond: number };
  poll?: { requestsPerSecond: number; baselineRequestsPerSecond: number };
  fanout?: { cpuMicrosPerDelivery: number; baselineCpuMicrosPerDelivery: number };
}

/**
 * One SVG: each system's capacity, the POST→delivery percentiles at each system's capacity
 * (streams or sockets, and postline's long-pollers), and each cost figure beside its baseline.
 */
export async function renderChart(results: ChartInput): Promise<string> {
  const runs = results.capacity ?? [];
  const capacities = runs.map((run) => ({ system: run.system, rate: run.capacity, cpu: run.cpuMsPerMessage }));
  const latency = runs.flatMap((run) => {
    const at = run.atCapacity;
    if (!at) return [];
    const paths = [{ path: `${run.system}${run.system.startsWith('postline') ? ' SSE' : ''}`, summary: at.sse }, ...(at.poll ? [{ path: `${run.system} long-poll`, summary: at.poll }] : [])];
    return paths.flatMap(({ path, summary }) => (['p50', 'p90', 'p99', 'max'] as const).map((percentile) => ({ path, percentile, ms: summary[percentile] })));
  });
  const versus = [
    ...(results.sends ? [{ figure: 'durable sends / s', who: 'postline', value: results.sends.acknowledgedPerSecond }, { figure: 'durable sends / s', who: 'baseline', value: results.sends.baselinePerSecond }] : []),
    ...(results.poll ? [{ figure: 'long-polls / s', who: 'postline', value: results.poll.requestsPerSecond }, { figure: 'long-polls / s', who: 'baseline', value: results.poll.baselineRequestsPerSecond }] : []),
    ...(results.fanout ? [{ figure: 'CPU µs / delivery', who: 'postline', value: results.fanout.cpuMicrosPerDelivery }, { figure: 'CPU µs / delivery', who: 'baseline', value: results.fanout.baselineCpuMicrosPerDelivery }] : []),
    ...(results.busy ? [{ figure: 'busy threads: µs / delivery', who: 'long-poll', value: results.busy.poll.cpuMicrosPerDelivery }, { figure: 'busy threads: µs / delivery', who: 'SSE', value: results.busy.sse.cpuMicrosPerDelivery }] : []),
  ];
  const perSystem = (title: string, field: string, unit: string) => ({
    title,
    data: { values: capacities },
    mark: 'bar' as const,
    width: 170,
    encoding: {
      x: { field: 'system', type: 'nominal' as const, sort: null, title: null },
      y: { field, type: 'quantitative' as const, title: unit },
      color: { field: 'system', type: 'nominal' as const, title: null, legend: null },
    },
  });
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: 'postline benchmark (peers and baselines measured in the same run)',
    resolve: { scale: { color: 'independent' } },
    vconcat: [
      {
        resolve: { scale: { color: 'independent' } },
        hconcat: [
          perSystem('capacity (msg/s at stream p99 ≤ 50 ms)', 'rate', 'msg/s'),
          perSystem('CPU per message (ms, instances + Postgres)', 'cpu', 'ms'),
          {
            title: 'POST→delivery at each system’s capacity (ms)',
            data: { values: latency },
            mark: 'bar',
            width: 320,
            encoding: {
              x: { field: 'percentile', type: 'nominal', sort: ['p50', 'p90', 'p99', 'max'], title: null },
              xOffset: { field: 'path', sort: null },
              y: { field: 'ms', type: 'quantitative', title: 'ms', scale: { type: 'symlog' } },
              color: { field: 'path', type: 'nominal', title: null, sort: null, legend: { labelLimit: 240 } },
            },
          },
        ],
      },
      {
        title: 'postline vs baseline',
        data: { values: versus },
        mark: 'bar',
        width: 100,
        encoding: {
          column: { field: 'figure', type: 'nominal', title: null },
          x: { field: 'who', type: 'nominal', title: null },
          y: { field: 'value', type: 'quantitative', title: null },
          color: { field: 'who', type: 'nominal', title: null, scale: { domain: ['baseline', 'postline', 'SSE', 'long-poll'], range: ['#999999', '#2ca02c', '#1f77b4', '#ff7f0e'] } },
        },
        resolve: { scale: { x: 'independent', y: 'independent' } },
      },
    ],
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}
