import request from 'supertest';

/** The Prometheus text of `GET /metrics`. */
export async function scrapeMetrics(baseUrl: string): Promise<string> {
  const res = await request(baseUrl).get('/metrics');
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status}`);
  return res.text;
}

/** The value of one series (name plus exact labels) in Prometheus text; 0 when absent. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels)
    .map(([key, value]) => `${key}="${value}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = (match[2] ?? '').split(',').filter(Boolean).sort().join(',');
    if (have === wanted) return Number(match[3]);
  }
  return 0;
}
