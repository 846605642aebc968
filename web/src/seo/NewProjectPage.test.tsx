import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it } from 'vitest';
import { desktop, errorResponse, jsonResponse } from '../test/helpers';
import NewProjectPage from './NewProjectPage';
import { fakeServer, project, renderSeo } from './testing';

beforeEach(() => desktop());

async function fillRequired() {
  await userEvent.type(screen.getByLabelText('Topic'), 'Sourdough for beginners');
  await userEvent.type(screen.getByLabelText('Primary keyword'), 'sourdough bread');
}

describe('a new project', () => {
  it('is created with the duration in seconds and a transcript loaded from a file, then opened', async () => {
    const s = fakeServer({ 'POST /api/v1/seo/projects': () => jsonResponse(201, project('p9', 'Sourdough for beginners')) });
    renderSeo(s.fetch, <NewProjectPage />, '/seo/new', '/seo/new');
    await fillRequired();
    await userEvent.type(screen.getByLabelText('Duration'), '3:05');
    const srt = '1\n00:00:00,000 --> 00:00:02,000\nHello\n';
    await userEvent.upload(screen.getByLabelText('Transcript file'), new File([srt], 'talk.srt', { type: 'text/plain' }));
    expect(await screen.findByDisplayValue(/00:00:00,000 --> 00:00:02,000/)).toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Create project' }));
    expect(await screen.findByText('project page')).toBeInTheDocument();
    expect(s.find('POST', '/api/v1/seo/projects')[0]!.body).toMatchObject({
      topic: 'Sourdough for beginners',
      primary_keyword: 'sourdough bread',
      language: 'en',
      duration_secs: 185,
      transcript: srt.trim(),
    });
  });

  it('shows the server’s field problems under the fields they name', async () => {
    const s = fakeServer({
      'POST /api/v1/seo/projects': () =>
        errorResponse(422, 'invalid_fields', '2 fields need fixing', {
          details: ['language: not a language tag', 'primary_keyword: primary_keyword is longer than 100 characters'],
        }),
    });
    renderSeo(s.fetch, <NewProjectPage />, '/seo/new', '/seo/new');
    await fillRequired();
    await userEvent.click(screen.getByRole('button', { name: 'Create project' }));
    expect(await screen.findByText('Not a language tag.')).toBeInTheDocument();
    expect(screen.getByText('Primary_keyword is longer than 100 characters.')).toBeInTheDocument();
  });

  it('shows why a transcript was refused, with its line', async () => {
    const s = fakeServer({
      'POST /api/v1/seo/projects': () =>
        errorResponse(422, 'invalid_transcript', 'the transcript cannot be read: line 6: expected a time range'),
    });
    renderSeo(s.fetch, <NewProjectPage />, '/seo/new', '/seo/new');
    await fillRequired();
    await userEvent.click(screen.getByRole('button', { name: 'Create project' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('The transcript could not be read. Line 6: expected a time range.');
  });
});
