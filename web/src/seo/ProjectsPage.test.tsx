import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it } from 'vitest';
import { desktop, jsonResponse } from '../test/helpers';
import ProjectsPage from './ProjectsPage';
import { fakeServer, project, renderSeo } from './testing';

beforeEach(() => desktop());

const all = [
  project('p1', 'Sourdough bread for beginners', { latest_score: 86, latest_version: 2 }),
  project('p2', 'Espresso at home', { primary_keyword: 'espresso' }),
];

function server() {
  return fakeServer({
    'GET /api/v1/seo/projects': (call) => {
      const q = call.search.get('q')?.toLowerCase() ?? '';
      const archived = call.search.get('archived') === 'true';
      const items = archived ? [] : all.filter((p) => !q || p.topic.toLowerCase().includes(q) || p.primary_keyword.includes(q));
      return jsonResponse(200, { items, next_cursor: null });
    },
    'PATCH /api/v1/seo/projects/p2': (call) => jsonResponse(200, { ...all[1], ...(call.body as object) }),
  });
}

describe('the projects list', () => {
  it('lists the projects with their score and searches them', async () => {
    const s = server();
    renderSeo(s.fetch, <ProjectsPage />);
    expect(await screen.findByRole('link', { name: 'Espresso at home' })).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Sourdough bread for beginners' })).toBeInTheDocument();
    expect(screen.getByLabelText('Score 86 of 100')).toBeInTheDocument();

    const search = screen.getByRole('searchbox', { name: 'Search projects' });
    await userEvent.type(search, 'espresso{Enter}');
    await waitFor(() => expect(screen.queryByRole('link', { name: 'Sourdough bread for beginners' })).not.toBeInTheDocument());
    expect(screen.getByRole('link', { name: 'Espresso at home' })).toBeInTheDocument();
    expect(s.find('GET', '/api/v1/seo/projects').at(-1)!.search.get('q')).toBe('espresso');
    expect(s.find('GET', '/api/v1/seo/projects').at(-1)!.search.get('archived')).toBe('false');

    await userEvent.clear(search);
    await userEvent.type(search, 'nothing like it{Enter}');
    expect(await screen.findByText('No project matches your search.')).toBeInTheDocument();
  });

  it('archives a project, which leaves the list', async () => {
    const s = server();
    renderSeo(s.fetch, <ProjectsPage />);
    const row = (await screen.findByRole('link', { name: 'Espresso at home' })).closest('tr')!;
    await userEvent.click(within(row).getByRole('button', { name: 'Archive Espresso at home' }));
    await waitFor(() => expect(screen.queryByRole('link', { name: 'Espresso at home' })).not.toBeInTheDocument());
    expect(s.find('PATCH', '/api/v1/seo/projects/p2')[0]!.body).toEqual({ archived: true });
  });
});
