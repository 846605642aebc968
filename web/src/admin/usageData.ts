// Shapes the usage report into chart data (no chart.js here, so it is tested without canvas).
import type { SeriesPoint, UsageRow } from './api';

export interface ChartDataset {
  label: string;
  data: number[];
  backgroundColor: string;
  borderColor: string;
  yAxisID?: string;
}

export interface ChartData {
  labels: string[];
  datasets: ChartDataset[];
}

export const PALETTE = {
  requests: '#1677ff',
  errors: '#ff4d4f',
  prompt: '#13c2c2',
  completion: '#722ed1',
};

/** One dataset in `color`, its fill a translucent shade of it. */
function dataset(label: string, data: number[], color: string, yAxisID?: string): ChartDataset {
  return { label, data, backgroundColor: `${color}99`, borderColor: color, ...(yAxisID ? { yAxisID } : {}) };
}

/** Requests and errors per day of the range (a bar chart). */
export function requestsPerDay(series: SeriesPoint[]): ChartData {
  return {
    labels: series.map((p) => p.day),
    datasets: [
      dataset('Requests', series.map((p) => p.requests), PALETTE.requests),
      dataset('Errors', series.map((p) => p.errors), PALETTE.errors),
    ],
  };
}

/** Prompt and completion tokens per day (a line chart). */
export function tokensPerDay(series: SeriesPoint[]): ChartData {
  return {
    labels: series.map((p) => p.day),
    datasets: [
      dataset('Prompt tokens', series.map((p) => p.prompt_tokens), PALETTE.prompt),
      dataset('Completion tokens', series.map((p) => p.completion_tokens), PALETTE.completion),
    ],
  };
}

/**
 * The rows with the most requests (the first `top`), the rest summed as one "Other" bar, with
 * requests and tokens side by side.
 */
export function breakdown(rows: UsageRow[], labelOf: (key: string) => string, top = 10): ChartData {
  const sorted = [...rows].sort((a, b) => b.requests - a.requests || b.tokens - a.tokens);
  const head = sorted.slice(0, top);
  const rest = sorted.slice(top);
  const labels = head.map((r) => labelOf(r.key));
  const requests = head.map((r) => r.requests);
  const tokens = head.map((r) => r.tokens);
  if (rest.length) {
    labels.push(`Other (${rest.length})`);
    requests.push(rest.reduce((n, r) => n + r.requests, 0));
    tokens.push(rest.reduce((n, r) => n + r.tokens, 0));
  }
  return {
    labels,
    datasets: [
      dataset('Requests', requests, PALETTE.requests, 'y'),
      dataset('Tokens', tokens, PALETTE.completion, 'y1'),
    ],
  };
}

/** A one-sentence description of a series for screen readers (the canvas has no text). */
export function describeSeries(series: SeriesPoint[]): string {
  if (series.length === 0) return 'No days in the range.';
  const requests = series.reduce((n, p) => n + p.requests, 0);
  const tokens = series.reduce((n, p) => n + p.tokens, 0);
  const busiest = series.reduce((a, b) => (b.requests > a.requests ? b : a));
  return `${requests.toLocaleString()} requests and ${tokens.toLocaleString()} tokens from ${series[0].day} to ${
    series[series.length - 1].day
  }; the busiest day was ${busiest.day} with ${busiest.requests.toLocaleString()} requests.`;
}
