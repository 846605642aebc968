import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { desktop, errorResponse, jsonResponse } from '../test/helpers';
import ResearchPage, { NO_KEY } from './ResearchPage';
import { fakeServer, renderSeo } from './testing';
import type { Research, VideoAudit } from './types';

vi.mock('react-chartjs-2', () => import('./chartMock'));

beforeEach(() => desktop());

const research: Research = {
  keyword: 'sourdough bread',
  competitors: [
    {
      video_id: 'abc123',
      title: 'Sourdough bread for beginners',
      channel_id: 'c1',
      channel_title: 'Bake With Ada',
      views: 1_234_567,
      likes: 1000,
      comments: 10,
      subscribers: 98_700,
      published_at: 1_760_000_000_000,
      duration_secs: 754,
      tags: ['sourdough', 'bread'],
      shared_tags: 2,
    },
  ],
  competition: {
    score: 64,
    level: 'medium',
    median_views: 1_234_567,
    median_subscribers: 98_700,
    keyword_in_title_share: 0.8,
    formula: 'score = 40 × views + 40 × subscribers + 20 × keyword share',
  },
  titles: { median_title_chars: 29, with_keyword: 0.8, with_number: 0.2, questions: 0.1, top_words: [{ word: 'beginners', count: 3 }] },
  common_tags: [
    { tag: 'sourdough', videos: 5 },
    { tag: 'starter', videos: 4 },
  ],
  tag_overlap: { shared: [{ tag: 'sourdough', videos: 5 }], missing: [{ tag: 'starter', videos: 4 }], share: 0.5 },
  fetched_at: 1_760_000_000_000,
};

const projects = () => jsonResponse(200, { items: [], next_cursor: null });

async function search(keyword: string) {
  await userEvent.type(await screen.findByLabelText('Keyword'), keyword);
  await userEvent.type(screen.getByLabelText('Region'), 'us');
  await userEvent.click(screen.getByRole('button', { name: 'Research' }));
}

describe('keyword research', () => {
  it('shows the competition, the top videos and the tags', async () => {
    const s = fakeServer({
      'GET /api/v1/seo/projects': projects,
      'GET /api/v1/seo/research': () => jsonResponse(200, research),
    });
    renderSeo(s.fetch, <ResearchPage />, '/seo/research', '/seo/research');
    await search('sourdough bread');
    const link = await screen.findByRole('link', { name: 'Sourdough bread for beginners' });
    expect(link).toHaveAttribute('href', 'https://www.youtube.com/watch?v=abc123');
    const row = link.closest('tr')!;
    expect(within(row).getByText('Bake With Ada')).toBeInTheDocument();
    expect(within(row).getByText('1,234,567')).toBeInTheDocument();
    expect(within(row).getByText('12:34')).toBeInTheDocument();
    expect(screen.getByLabelText('Competition medium')).toHaveTextContent('medium');
    expect(screen.getByText(/How it is worked out: score = 40/)).toBeInTheDocument();
    expect(within(screen.getByRole('list', { name: 'Missing tags' })).getByText('starter')).toBeInTheDocument();
    expect(screen.getByText(/scatter Videos: \(29,1234567\)/)).toBeInTheDocument();
    const call = s.find('GET', '/api/v1/seo/research')[0]!;
    expect([call.search.get('keyword'), call.search.get('region')]).toEqual(['sourdough bread', 'US']);
  });

  it('says an API key is needed, and shows no numbers, without one', async () => {
    const s = fakeServer({
      'GET /api/v1/seo/projects': projects,
      'GET /api/v1/seo/research': () => errorResponse(409, 'youtube_not_configured', 'no key'),
    });
    renderSeo(s.fetch, <ResearchPage />, '/seo/research', '/seo/research');
    await search('sourdough bread');
    expect(await screen.findByRole('alert')).toHaveTextContent(NO_KEY);
    expect(screen.getByRole('alert').textContent).toBe('Keyword research needs a YouTube API key (YOUTUBE_API_KEY).');
    expect(screen.queryByText(/Competition score/)).not.toBeInTheDocument();
    expect(screen.queryByRole('table')).not.toBeInTheDocument();
    expect(screen.queryByText(/\d+%/)).not.toBeInTheDocument();
  });

  it('audits a video with a score and its broken rules', async () => {
    const audit: VideoAudit = {
      video: { id: 'abc123', title: 'My bread', channel_id: 'c1', channel_title: 'Ada', views: 10, likes: 1, duration_secs: 60 },
      metadata: { title: 'My bread', description: '', tags: [] },
      report: {
        violations: [{ field: 'description', code: 'too_short', message: 'the description is empty', severity: 'warning' }],
        score: { total: 42, components: [] },
      },
    } as VideoAudit;
    const s = fakeServer({
      'GET /api/v1/seo/projects': projects,
      'POST /api/v1/seo/videos/audit': () => jsonResponse(200, audit),
    });
    renderSeo(s.fetch, <ResearchPage />, '/seo/research', '/seo/research');
    await userEvent.type(await screen.findByLabelText('Video to audit'), 'https://youtu.be/abc123');
    await userEvent.click(screen.getByRole('button', { name: 'Audit' }));
    expect(await screen.findByLabelText('Score 42 of 100')).toBeInTheDocument();
    expect(screen.getByText('The description is empty')).toBeInTheDocument();
    await waitFor(() => expect(s.find('POST', '/api/v1/seo/videos/audit')[0]!.body).toEqual({ video: 'https://youtu.be/abc123', primary_keyword: null }));
  });
});
