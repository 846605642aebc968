import { fireEvent, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { desktop, jsonResponse } from '../test/helpers';
import { PackageEditor } from './PackageEditor';
import { fakeServer, pkg, renderSeo, type Call } from './testing';
import type { Package, ScoreReport, ScoreRequest } from './types';

beforeEach(() => desktop());

const target = { primary_keyword: 'sourdough bread', secondary_keywords: [], duration_secs: 180 };

/** The server's verdict: an error while the title is over 100 characters. */
function scoreRoute(call: Call) {
  const req = call.body as ScoreRequest;
  const long = [...req.title].length > 100;
  const report: ScoreReport = {
    violations: long
      ? [{ field: 'title', code: 'title_too_long', severity: 'error', message: `The title has ${[...req.title].length} characters; YouTube allows 100.` }]
      : [{ field: 'tags', code: 'tags_few', severity: 'warning', message: 'Add a few more tags.' }],
    score: {
      total: long ? 40 : 82,
      components: [
        {
          name: 'Title',
          points: long ? 5 : 20,
          max_points: 25,
          checks: [{ name: 'keyword in title', passed: true, detail: '' }, { name: 'length', passed: !long, detail: '' }],
          recommendations: long ? ['Shorten the title.'] : [],
        },
      ],
    },
  };
  return jsonResponse(200, report);
}

function renderEditor(initial: Package, onSave = vi.fn(async () => {})) {
  const server = fakeServer({ 'POST /api/v1/seo/score': scoreRoute });
  renderSeo(server.fetch, <PackageEditor initial={initial} project={target} onSave={onSave} />);
  return { server, onSave };
}

describe('the package editor counters', () => {
  it('counts the title in characters: 100 fits, 101 does not, multi-byte included', async () => {
    renderEditor(pkg({ title: 'é'.repeat(100) }));
    const counter = screen.getByLabelText('Title length');
    expect(counter).toHaveTextContent('100 / 100 characters');
    expect(counter).not.toHaveClass('over');
    fireEvent.change(screen.getByLabelText('Title'), { target: { value: 'é'.repeat(101) } });
    expect(screen.getByLabelText('Title length')).toHaveTextContent('101 / 100 characters');
    expect(screen.getByLabelText('Title length')).toHaveClass('over');
  });

  it('counts the description in bytes: 5,000 fits, 5,001 does not', () => {
    renderEditor(pkg({ description: 'é'.repeat(2_500) }));
    expect(screen.getByLabelText('Description size')).toHaveTextContent('5,000 / 5,000 bytes');
    fireEvent.change(screen.getByLabelText('Description'), { target: { value: `${'é'.repeat(2_500)}x` } });
    expect(screen.getByLabelText('Description size')).toHaveTextContent('5,001 / 5,000 bytes');
    expect(screen.getByLabelText('Description size')).toHaveClass('over');
  });

  it('counts tags the way YouTube does', () => {
    const { unmount } = renderSeo(fakeServer({ 'POST /api/v1/seo/score': scoreRoute }).fetch, (
      <PackageEditor initial={pkg({ tags: ['Foo-Baz'] })} project={target} onSave={vi.fn()} />
    ));
    expect(screen.getByLabelText('Tag budget')).toHaveTextContent('7 / 500');
    unmount();
    const second = renderSeo(fakeServer({ 'POST /api/v1/seo/score': scoreRoute }).fetch, (
      <PackageEditor initial={pkg({ tags: ['Foo Baz'] })} project={target} onSave={vi.fn()} />
    ));
    expect(screen.getByLabelText('Tag budget')).toHaveTextContent('9 / 500');
    second.unmount();
    renderEditor(pkg({ tags: ['a', 'b'] }));
    expect(screen.getByLabelText('Tag budget')).toHaveTextContent('3 / 500');
  });

  it('lists the hashtags of the description', () => {
    renderEditor(pkg({ description: 'Bread #sourdough #Baking and #sourdough again' }));
    const found = screen.getByRole('group', { name: 'Hashtags found' });
    expect(found).toHaveTextContent('Hashtags found (2)');
    expect(found).toHaveTextContent('#sourdough');
    expect(found).toHaveTextContent('#Baking');
  });
});

describe('live validation', () => {
  it('shows the server’s violation next to the field and disables Save until it is fixed', async () => {
    const { server, onSave } = renderEditor(pkg());
    // The first check of the package as it is: a warning, in orange.
    expect(await screen.findByText('Add a few more tags.')).toBeInTheDocument();
    expect(screen.getByText('Add a few more tags.').closest('li')).toHaveAttribute('data-severity', 'warning');
    const save = screen.getByRole('button', { name: /Save as new version/ });

    fireEvent.change(screen.getByLabelText('Title'), { target: { value: 'x'.repeat(101) } });
    const problem = await screen.findByText('The title has 101 characters; YouTube allows 100.');
    expect(problem.closest('li')).toHaveAttribute('data-severity', 'error');
    expect(save).toBeDisabled();
    expect(screen.getByLabelText('Score 40 of 100')).toBeInTheDocument();
    // Only the last state of the typing is sent (debounced).
    const titles = server.find('POST', '/api/v1/seo/score').map((c) => (c.body as ScoreRequest).title);
    expect(titles.at(-1)).toBe('x'.repeat(101));
    expect(titles.filter((t) => t.length > 0 && t !== pkg().title).length).toBe(1);

    fireEvent.change(screen.getByLabelText('Title'), { target: { value: 'Sourdough bread, the easy way' } });
    await waitFor(() => expect(screen.queryByText(/YouTube allows 100/)).not.toBeInTheDocument());
    await waitFor(() => expect(save).toBeEnabled());
    await userEvent.click(save);
    expect(onSave).toHaveBeenCalledWith(expect.objectContaining({ title: 'Sourdough bread, the easy way' }));
  });

  it('shows the server’s refusal of a save', async () => {
    const onSave = vi.fn(async () => {
      const { ApiError } = await import('../api/errors');
      throw new ApiError(422, {
        code: 'invalid_package',
        message: 'title (title_too_long): too long',
        details: ['title (title_too_long): too long'],
      });
    });
    renderEditor(pkg(), onSave);
    fireEvent.change(screen.getByLabelText('Title'), { target: { value: 'A new title for sourdough bread' } });
    const save = screen.getByRole('button', { name: /Save as new version/ });
    await waitFor(() => expect(save).toBeEnabled());
    await userEvent.click(save);
    expect(await screen.findByRole('alert')).toHaveTextContent('Not saved: title (title_too_long): too long.');
  });
});

