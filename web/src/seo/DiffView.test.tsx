import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { DiffView } from './DiffView';
import type { PackageDiff } from './types';

const diff: PackageDiff = {
  title: { before: 'Sourdough bread', after: 'Sourdough bread for beginners' },
  tags_added: ['bread recipe'],
  tags_removed: ['baking'],
  tags_same: false,
  description_changed: true,
  description: [
    { kind: 'same', text: 'Bake sourdough at home.' },
    { kind: 'removed', text: 'Old line' },
    { kind: 'added', text: 'New line' },
  ],
  thumbnail_texts_added: [],
  thumbnail_texts_removed: [],
};

describe('the diff view', () => {
  it('shows the title change, the tags added and removed, and the description line by line', () => {
    render(<DiffView diff={diff} from={1} to={2} />);
    const title = screen.getByLabelText('Title change');
    expect(title).toHaveTextContent('- Sourdough bread');
    expect(title).toHaveTextContent('+ Sourdough bread for beginners');
    expect(screen.getByLabelText('Tag added: bread recipe')).toBeInTheDocument();
    expect(screen.getByLabelText('Tag removed: baking')).toBeInTheDocument();
    const lines = within(screen.getByLabelText('Description changes')).getAllByText(/line|Bake/);
    expect(lines.map((l) => [l.getAttribute('data-kind'), l.textContent])).toEqual([
      ['same', '  Bake sourdough at home.'],
      ['removed', '- Old line'],
      ['added', '+ New line'],
    ]);
    expect(lines[1]).toHaveClass('removed');
    expect(lines[2]).toHaveClass('added');
  });

  it('says when nothing changed', () => {
    render(
      <DiffView
        diff={{ ...diff, title: null, tags_added: [], tags_removed: [], tags_same: true, description_changed: false, description: [] }}
        from={2}
        to={3}
      />,
    );
    expect(screen.getByText('These versions are the same.')).toBeInTheDocument();
    expect(screen.getByText('Title unchanged.')).toBeInTheDocument();
    expect(screen.getByText('Tags unchanged.')).toBeInTheDocument();
  });
});
