import * as hdr from 'hdr-histogram-js';

/** A latency histogram in microseconds (1 µs to 60 s, 3 significant digits). */
export const newHistogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
export type Histogram = ReturnType<typeof newHistogram>;

/** Histograms travel between processes as compressed base64. */
export const encode = (histogram: Histogram) => hdr.encodeIntoCompressedBase64(histogram);

export function merge(encoded: string[]): Histogram {
  const total = newHistogram();
  for (const text of encoded) total.add(hdr.decodeFromCompressedBase64(text));
  return total;
}

export interface LatencySummary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Percentiles in milliseconds. */
export function summarize(histogram: Histogram): LatencySummary {
  const ms = (micros: number) => Math.round(micros / 10) / 100;
  return {
    count: histogram.totalCount,
    p50: ms(histogram.getValueAtPercentile(50)),
    p90: ms(histogram.getValueAtPercentile(90)),
    p99: ms(histogram.getValueAtPercentile(99)),
    max: ms(histogram.maxValue),
  };
}

/** Message bodies carry the send time, so receivers measure POST→delivery on one clock. */
export const stampedBody = (sentAt: number, padding: number) => `t=${sentAt.toFixed(3)} ${'x'.repeat(padding)}`;
export const STAMP = /"body":"t=([\d.]+)/;

/** Lost and duplicated deliveries of one receiver against what it should have received. */
export function compare(expected: Iterable<number>, received: number[]): { lost: number; duplicated: number } {
  const seen = new Set<number>();
  let duplicated = 0;
  for (const id of received) {
    if (seen.has(id)) duplicated++;
    seen.add(id);
  }
  let lost = 0;
  for (const id of expected) if (!seen.has(id)) lost++;
  return { lost, duplicated };
}
