import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { makeUser } from '../test/fixtures';
import { desktop, jsonResponse } from '../test/helpers';
import type { SeriesPoint, UsageReport, UsageRow, UsageStats } from './api';
import { adminUser, fakeServer, renderAdmin, type Call } from './testing';
import { breakdown, describeSeries, requestsPerDay, tokensPerDay } from './usageData';

// chart.js needs a canvas, which jsdom lacks: the charts render their data as text here.
vi.mock('react-chartjs-2', () => {
  const fake =
    (kind: string) =>
    (props: { data: { labels: string[]; datasets: { label: string; data: number[] }[] }; 'aria-label'?: string }) => (
      <figure data-chart={kind} aria-label={props['aria-label']}>
        {props.data.datasets.map((d) => (
          <p key={d.label}>
            {kind} {d.label}: {props.data.labels.map((l, i) => `${l}=${d.data[i]}`).join(', ')}
          </p>
        ))}
      </figure>
    );
  return { Bar: fake('bar'), Line: fake('line') };
});

const ada = makeUser('0190aaaa-0000-7000-8000-0000000000a1', 'ada@example.com');

function stats(requests: number, tokens: number, extra: Partial<UsageStats> = {}): UsageStats {
  return {
    requests,
    errors: 0,
    prompt_tokens: tokens / 2,
    completion_tokens: tokens / 2,
    tokens,
    latency_avg_ms: 120,
    latency_p50_ms: 100,
    latency_p95_ms: 300,
    ...extra,
  };
}

const series: SeriesPoint[] = [
  { day: '2026-03-01', ...stats(3, 40) },
  { day: '2026-03-02', ...stats(5, 60, { errors: 1 }) },
];

function report(group_by: 'user' | 'model' | 'day'): UsageReport {
  const rows: UsageRow[] =
    group_by === 'user'
      ? [
          { key: ada.id, ...stats(6, 80) },
          { key: adminUser.id, ...stats(2, 20) },
        ]
      : group_by === 'model'
        ? [{ key: 'small', ...stats(8, 100) }]
        : series.map(({ day, ...s }) => ({ key: day, ...s }));
  return { group_by, from: '2026-03-01', to: '2026-03-02', totals: stats(8, 100, { errors: 1 }), rows, series };
}

beforeEach(() => desktop());
afterEach(() => vi.unstubAllGlobals());

describe('usage data', () => {
  it('makes per-day series for the charts', () => {
    expect(requestsPerDay(series)).toMatchObject({
      labels: ['2026-03-01', '2026-03-02'],
      datasets: [
        { label: 'Requests', data: [3, 5] },
        { label: 'Errors', data: [0, 1] },
      ],
    });
    expect(tokensPerDay(series).datasets.map((d) => d.data)).toEqual([
      [20, 30],
      [20, 30],
    ]);
    expect(describeSeries(series)).toBe(
      '8 requests and 100 tokens from 2026-03-01 to 2026-03-02; the busiest day was 2026-03-02 with 5 requests.',
    );
  });

  it('keeps the busiest rows and sums the rest as Other', () => {
    const rows = ['a', 'b', 'c', 'd'].map((key, i) => ({ key, ...stats(i + 1, (i + 1) * 10) }));
    const chart = breakdown(rows, (k) => k.toUpperCase(), 2);
    expect(chart.labels).toEqual(['D', 'C', 'Other (2)']);
    expect(chart.datasets[0].data).toEqual([4, 3, 3]);
    expect(chart.datasets[1].data).toEqual([40, 30, 30]);
  });
});

describe('Usage screen', { timeout: 90_000 }, () => {
  it('shows totals, charts and rows, switches the grouping and exports CSV', async () => {
    const createObjectURL = vi.fn((_blob: Blob) => 'blob:usage');
    vi.stubGlobal('URL', Object.assign(URL, { createObjectURL, revokeObjectURL: vi.fn() }));
    const clicked: HTMLAnchorElement[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this);
    });
    const server = fakeServer({
      'GET /api/v1/admin/usage': (call: Call) =>
        jsonResponse(200, report((call.search.get('group_by') as 'user' | 'model' | 'day') ?? 'user')),
      'GET /api/v1/auth/users': () => jsonResponse(200, { items: [adminUser, ada], next_cursor: null }),
      'GET /api/v1/admin/usage/export': () =>
        new Response('day,user_id,model\n', {
          headers: { 'content-type': 'text/csv', 'content-disposition': 'attachment; filename="usage-2026-03-01-2026-03-02.csv"' },
        }),
    });
    renderAdmin(server.fetch, '/admin/usage');
    const user = userEvent.setup();

    const perDay = await screen.findByText('bar Requests: 2026-03-01=3, 2026-03-02=5');
    expect(perDay.closest('figure')).toHaveAttribute('aria-label', expect.stringContaining('Requests per day: 8 requests'));
    expect(screen.getByText('line Completion tokens: 2026-03-01=20, 2026-03-02=30')).toBeInTheDocument();
    // the per-user breakdown names users by email
    expect(await screen.findByText('bar Requests: ada@example.com=6, root@example.com=2')).toBeInTheDocument();
    const adaRow = screen.getAllByText('ada@example.com').map((e) => e.closest('tr')).find(Boolean)!;
    expect(within(adaRow).getByText('80')).toBeInTheDocument();
    const query = server.find('GET', '/api/v1/admin/usage')[0].search;
    expect(query.get('group_by')).toBe('user');
    expect(query.get('from')).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(query.get('to')).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    const days = (Date.parse(query.get('to')!) - Date.parse(query.get('from')!)) / 86_400_000;
    expect(days).toBe(29);

    await user.click(screen.getByText('By model'));
    expect(await screen.findByText('bar Requests: small=8')).toBeInTheDocument();
    expect(server.find('GET', '/api/v1/admin/usage').at(-1)!.search.get('group_by')).toBe('model');

    await user.click(screen.getByText('By day'));
    await waitFor(() => expect(server.find('GET', '/api/v1/admin/usage').at(-1)!.search.get('group_by')).toBe('day'));
    await waitFor(() => expect(screen.queryByText(/^bar Requests: small/)).toBeNull());

    await user.click(screen.getByText('Export CSV'));
    await waitFor(() => expect(clicked).toHaveLength(1));
    expect(clicked[0].download).toBe('usage-2026-03-01-2026-03-02.csv');
    const exported = server.find('GET', '/api/v1/admin/usage/export')[0].search;
    expect(exported.get('format')).toBe('csv');
    expect(exported.get('from')).toBe(query.get('from'));
    expect(exported.get('to')).toBe(query.get('to'));
  });

  it('says when there were no requests, and shows errors in words', async () => {
    let fail = false;
    const empty: UsageReport = { ...report('user'), rows: [], totals: stats(0, 0), series: series.map((p) => ({ ...p, ...stats(0, 0) })) };
    const server = fakeServer({
      'GET /api/v1/admin/usage': () =>
        fail
          ? jsonResponse(422, { error: { code: 'invalid_range', message: 'the range spans 400 days; at most 366' } })
          : jsonResponse(200, empty),
    });
    renderAdmin(server.fetch, '/admin/usage');
    const user = userEvent.setup();
    expect(await screen.findByText('No requests from 2026-03-01 to 2026-03-02.')).toBeInTheDocument();
    expect(document.querySelector('figure[data-chart]')).toBeNull();
    fail = true;
    await user.click(screen.getByText('Refresh'));
    expect(await screen.findByText('the range spans 400 days; at most 366')).toBeInTheDocument();
  });
});
