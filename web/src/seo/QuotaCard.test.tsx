import { screen } from '@testing-library/react';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { desktop, jsonResponse } from '../test/helpers';
import { QuotaCard, resetWords } from './QuotaCard';
import { fakeServer, renderSeo } from './testing';
import type { QuotaView } from './types';

vi.mock('react-chartjs-2', () => import('./chartMock'));

beforeEach(() => desktop());

const quota: QuotaView = {
  usage: [
    { day: '2026-12-01', bucket: 'daily_units', used: 9_000, limit: 10_000, exhausted: false },
    { day: '2026-12-01', bucket: 'search_calls', used: 100, limit: 100, exhausted: true },
    { day: '2026-12-02', bucket: 'daily_units', used: 1_200, limit: 10_000, exhausted: false },
    { day: '2026-12-02', bucket: 'search_calls', used: 12, limit: 100, exhausted: false },
  ],
  next_reset: '2026-12-03T08:00:00Z',
  api_key: false,
};

describe('the quota card', () => {
  it('shows the next reset, the exhausted buckets and the usage per day', async () => {
    const s = fakeServer({ 'GET /api/v1/seo/quota': () => jsonResponse(200, quota) });
    renderSeo(s.fetch, <QuotaCard />);
    expect(await screen.findByText(resetWords('2026-12-03T08:00:00Z'))).toBeInTheDocument();
    expect(screen.getByText('(midnight Pacific time)')).toBeInTheDocument();
    expect(screen.getByText('Exhausted')).toBeInTheDocument();
    expect(screen.getByText('Searches on 2026-12-01')).toBeInTheDocument();
    expect(screen.getByLabelText('Quota units on 2026-12-02')).toHaveTextContent('1,200 / 10,000');
    expect(screen.getByText('bar Used: 2026-12-01=100, 2026-12-02=12')).toBeInTheDocument();
    expect(screen.getByText(/No YouTube API key is configured/)).toBeInTheDocument();
    expect(s.find('GET', '/api/v1/seo/quota')[0]!.search.get('days')).toBe('7');
  });
});
