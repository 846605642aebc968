import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it } from 'vitest';
import { desktop, jsonResponse, sseStream } from '../test/helpers';
import ProjectEditor from './ProjectEditor';
import { fakeServer, pkg, project, renderSeo, version } from './testing';
import type { PackageDiff, Version } from './types';

beforeEach(() => desktop());

const channel = () => jsonResponse(200, { status: 'none', connected_at: null, can_connect: true, operator_channel: false });

const report = {
  violations: [],
  score: { total: 88, components: [{ name: 'keyword_alignment', points: 15, max_points: 15, checks: [], recommendations: [] }] },
};

describe('the project editor', () => {
  it('generates with progress from the feed, then shows the new version’s package', async () => {
    let versions: Version[] = [];
    let feed: ReturnType<typeof sseStream> | null = null;
    const s = fakeServer({
      'GET /api/v1/seo/projects/p1': () => jsonResponse(200, project('p1', 'Sourdough bread for beginners')),
      'GET /api/v1/seo/channel': channel,
      'GET /api/v1/seo/projects/p1/versions': () => jsonResponse(200, { items: versions }),
      'POST /api/v1/seo/projects/p1/generation': () =>
        jsonResponse(202, { job_id: 'j1', project_id: 'p1', state: 'queued' }),
      'GET /api/v1/seo/projects/p1/generation/events': (_, init) => {
        feed = sseStream(init.signal);
        return feed.response();
      },
      'POST /api/v1/seo/score': () => jsonResponse(200, report),
    });
    renderSeo(s.fetch, <ProjectEditor />, '/seo/p1', '/seo/:projectId');
    await userEvent.click(await screen.findByRole('button', { name: /Generate/ }));
    await waitFor(() => expect(feed).not.toBeNull());
    feed!.send('state', { job_id: 'j1', project_id: 'p1', state: 'queued' });
    feed!.send('progress', { project_id: 'p1', job_id: 'j1', stage: 'analysis', percent: 30 });
    const progress = await screen.findByRole('status', { name: 'Generation progress' });
    await within(progress).findByText('Understanding what the video is about…');
    expect(within(progress).getByText('30%')).toBeInTheDocument();

    versions = [version(1, { score: 88, package: pkg({ title: 'Sourdough bread, step by step' }) })];
    feed!.send('completed', { project_id: 'p1', job_id: 'j1', version: 1, score: 88 });
    feed!.close();
    expect(await screen.findByText('Package — version 1')).toBeInTheDocument();
    expect(screen.getByLabelText('Title')).toHaveValue('Sourdough bread, step by step');
    expect(screen.getByText('A new version is ready (score 88).')).toBeInTheDocument();
    expect((await screen.findAllByLabelText('Score 88 of 100')).length).toBeGreaterThan(0);
    expect(await screen.findByText(/Keyword alignment: 15 \/ 15/)).toBeInTheDocument();
  });

  it('tells in words why a generation failed', async () => {
    let feed: ReturnType<typeof sseStream> | null = null;
    const s = fakeServer({
      'GET /api/v1/seo/projects/p1': () => jsonResponse(200, project('p1', 'Bread')),
      'GET /api/v1/seo/channel': channel,
      'GET /api/v1/seo/projects/p1/versions': () => jsonResponse(200, { items: [] }),
      'POST /api/v1/seo/projects/p1/generation': () => jsonResponse(202, { job_id: 'j1', project_id: 'p1', state: 'queued' }),
      'GET /api/v1/seo/projects/p1/generation/events': (_, init) => {
        feed = sseStream(init.signal);
        return feed.response();
      },
    });
    renderSeo(s.fetch, <ProjectEditor />, '/seo/p1', '/seo/:projectId');
    await userEvent.click(await screen.findByRole('button', { name: /Generate/ }));
    await waitFor(() => expect(feed).not.toBeNull());
    feed!.send('failed', { project_id: 'p1', job_id: 'j1', code: 'no_model', message: 'no model' });
    expect(await screen.findByRole('alert')).toHaveTextContent('No model is set up for the SEO studio.');
  });

  it('saves the details without touching the transcript it did not change', async () => {
    const s = fakeServer({
      'GET /api/v1/seo/projects/p1': () => jsonResponse(200, project('p1', 'Bread', { has_transcript: true })),
      'GET /api/v1/seo/projects/p1/transcript': () =>
        jsonResponse(200, { format: 'text', segments: [{ start_ms: 0, end_ms: 0, text: 'Hello bakers' }], text: 'Hello bakers' }),
      'GET /api/v1/seo/channel': channel,
      'GET /api/v1/seo/projects/p1/versions': () => jsonResponse(200, { items: [] }),
      'PATCH /api/v1/seo/projects/p1': (call) => jsonResponse(200, { ...project('p1', 'Bread'), ...(call.body as object), has_transcript: true }),
    });
    renderSeo(s.fetch, <ProjectEditor />, '/seo/p1', '/seo/:projectId');
    await userEvent.click(await screen.findByText('Video details'));
    expect(await screen.findByLabelText('Transcript')).toHaveValue('Hello bakers');
    const topic = screen.getByLabelText('Topic');
    await userEvent.clear(topic);
    await userEvent.type(topic, 'Bread at home');
    await userEvent.click(screen.getByRole('button', { name: 'Save details' }));
    await waitFor(() => expect(s.find('PATCH', '/api/v1/seo/projects/p1')).toHaveLength(1));
    const body = s.find('PATCH', '/api/v1/seo/projects/p1')[0]!.body as Record<string, unknown>;
    expect(body.topic).toBe('Bread at home');
    expect(body).not.toHaveProperty('transcript');
  });

  it('compares two selected versions', async () => {
    const diff: PackageDiff = {
      title: { before: 'Old title', after: 'New title' },
      tags_added: [],
      tags_removed: [],
      tags_same: true,
      description_changed: false,
      description: [],
      thumbnail_texts_added: [],
      thumbnail_texts_removed: [],
    };
    const s = fakeServer({
      'GET /api/v1/seo/projects/p1': () => jsonResponse(200, project('p1', 'Bread', { latest_version: 2 })),
      'GET /api/v1/seo/channel': channel,
      'GET /api/v1/seo/projects/p1/versions': () => jsonResponse(200, { items: [version(2, { source: 'edited' }), version(1)] }),
      'GET /api/v1/seo/projects/p1/diff': () => jsonResponse(200, diff),
      'POST /api/v1/seo/score': () => jsonResponse(200, report),
    });
    renderSeo(s.fetch, <ProjectEditor />, '/seo/p1', '/seo/:projectId');
    await userEvent.click(await screen.findByLabelText('Select version 1'));
    await userEvent.click(screen.getByLabelText('Select version 2'));
    await userEvent.click(screen.getByRole('button', { name: /Compare selected/ }));
    expect(await screen.findByLabelText('Title change')).toHaveTextContent('+ New title');
    const call = s.find('GET', '/api/v1/seo/projects/p1/diff')[0]!;
    expect([call.search.get('from'), call.search.get('to')]).toEqual(['1', '2']);
  });
});
