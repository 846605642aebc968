import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { App as AntApp } from 'antd';
import { MemoryRouter } from 'react-router';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Conversation } from '../api/types';
import { conversation } from '../test/fixtures';
import { Sidebar, type SidebarProps } from './Sidebar';
import { openDialog } from './testing';

function renderSidebar(props: Partial<SidebarProps> & { conversations: Conversation[] }) {
  const handlers = {
    onNew: vi.fn(),
    onSearch: vi.fn(),
    onRename: vi.fn(),
    onPin: vi.fn(),
    onArchive: vi.fn(),
    onUnarchive: vi.fn(),
    onDelete: vi.fn(),
    onMove: vi.fn(),
    onTags: vi.fn(),
    onShowArchived: vi.fn(),
  };
  render(
    <AntApp>
      <MemoryRouter>
        <Sidebar {...handlers} {...props} />
      </MemoryRouter>
    </AntApp>,
  );
  return handlers;
}

const list = [
  conversation('c1', 'Borrow checker', { folder: 'Rust', tags: ['rust', 'learning'] }),
  conversation('c2', 'Lifetimes', { folder: 'Rust', tags: ['rust'] }),
  conversation('c3', 'Bread recipe', { tags: ['cooking'] }),
  conversation('c4', 'Untagged chat'),
];

/** The conversations listed, by title. */
const titles = (nav: HTMLElement) =>
  within(nav)
    .queryAllByRole('link')
    .map((a) => a.getAttribute('title'))
    .filter((t) => t !== null);

afterEach(() => localStorage.clear());


describe('Sidebar', () => {
  it('shows folders as collapsible sections and tags under the titles', async () => {
    renderSidebar({ conversations: list });
    const nav = screen.getByRole('navigation', { name: 'Conversations' });
    expect(within(nav).getAllByRole('heading').map((h) => h.textContent)).toEqual(['Rust2', 'Today']);
    expect(within(nav).getByRole('heading', { name: 'Rust' })).toBeInTheDocument();
    const folder = within(nav).getByRole('button', { name: 'Rust' });
    expect(folder).toHaveAttribute('aria-expanded', 'true');
    expect(titles(nav)).toEqual(['Borrow checker', 'Lifetimes', 'Bread recipe', 'Untagged chat']);
    expect(within(nav).getAllByRole('button', { name: 'Filter by tag rust' })).toHaveLength(2);

    await userEvent.setup().click(folder);
    expect(folder).toHaveAttribute('aria-expanded', 'false');
    expect(titles(nav)).toEqual(['Bread recipe', 'Untagged chat']);
    // Remembered for the next visit.
    expect(JSON.parse(localStorage.getItem('confab.collapsedFolders')!)).toEqual(['Rust']);
  });

  it('filters by a tag clicked under a title, and clears the filter', async () => {
    renderSidebar({ conversations: list });
    const nav = screen.getByRole('navigation', { name: 'Conversations' });
    const user = userEvent.setup();
    await user.click(within(nav).getAllByRole('button', { name: 'Filter by tag rust' })[0]);
    expect(titles(nav)).toEqual(['Borrow checker', 'Lifetimes']);
    expect(within(nav).getAllByRole('button', { name: 'Filter by tag rust' })[0]).toHaveAttribute('aria-pressed', 'true');

    // The pressed tag again: no filter.
    await user.click(within(nav).getAllByRole('button', { name: 'Filter by tag rust' })[0]);
    expect(titles(nav)).toHaveLength(4);

    await user.click(within(nav).getByRole('button', { name: 'Filter by tag cooking' }));
    expect(titles(nav)).toEqual(['Bread recipe']);

    await user.click(within(nav).getByRole('button', { name: 'Clear tag filter' }));
    expect(titles(nav)).toEqual(['Borrow checker', 'Lifetimes', 'Bread recipe', 'Untagged chat']);
    expect(within(nav).queryByRole('button', { name: 'Clear tag filter' })).toBeNull();
  });

  it('filters from the tag list too', async () => {
    renderSidebar({ conversations: list });
    const user = userEvent.setup();
    await user.click(screen.getByRole('combobox', { name: 'Filter by tag' }));
    await user.click(await screen.findByTitle('#learning'));
    const nav = screen.getByRole('navigation', { name: 'Conversations' });
    expect(titles(nav)).toEqual(['Borrow checker']);
  });

  it('moves a conversation to an existing, a new or no folder', async () => {
    const handlers = renderSidebar({ conversations: list });
    const user = userEvent.setup();

    await user.click(screen.getByRole('button', { name: 'Actions for Bread recipe' }));
    await user.click(await screen.findByText('Move to folder…'));
    const dialog = await openDialog('Move to folder');
    await user.type(within(dialog).getByRole('combobox', { name: 'Folder' }), 'Kitchen');
    await user.click(within(dialog).getByRole('button', { name: 'Move' }));
    expect(handlers.onMove).toHaveBeenLastCalledWith(list[2], 'Kitchen');

    await user.click(screen.getByRole('button', { name: 'Actions for Untagged chat' }));
    await user.click((await screen.findAllByText('Move to folder…')).at(-1)!);
    const again = await openDialog('Move to folder');
    await user.click(within(again).getByRole('button', { name: 'Rust' }));
    await user.click(within(again).getByRole('button', { name: 'Move' }));
    expect(handlers.onMove).toHaveBeenLastCalledWith(list[3], 'Rust');

    await user.click(screen.getByRole('button', { name: 'Actions for Lifetimes' }));
    await user.click((await screen.findAllByText('Move to folder…')).at(-1)!);
    const third = await openDialog('Move to folder');
    expect(within(third).getByRole('combobox', { name: 'Folder' })).toHaveValue('Rust');
    await user.click(within(third).getByRole('button', { name: 'No folder' }));
    expect(handlers.onMove).toHaveBeenLastCalledWith(list[1], null);
  });

  it('edits tags', async () => {
    const handlers = renderSidebar({ conversations: list });
    const user = userEvent.setup();
    await user.click(screen.getByRole('button', { name: 'Actions for Bread recipe' }));
    await user.click(await screen.findByText('Edit tags…'));
    const dialog = await openDialog('Edit tags');
    await user.type(within(dialog).getByRole('combobox', { name: 'Tags' }), 'Baking{Enter}');
    await user.click(within(dialog).getByRole('button', { name: 'Save' }));
    expect(handlers.onTags).toHaveBeenCalledWith(list[2], ['cooking', 'baking']);
  });

  it('shows the archived conversations, to unarchive', async () => {
    const archived = [conversation('a1', 'Old trip plans', { archived: true })];
    const handlers = renderSidebar({ conversations: list, showArchived: true, archived });
    const nav = screen.getByRole('navigation', { name: 'Conversations' });
    expect(within(nav).getAllByRole('heading').map((h) => h.textContent)).toEqual(['Archived']);
    expect(titles(nav)).toEqual(['Old trip plans']);
    expect(within(nav).getByRole('button', { name: 'Archived conversations' })).toHaveAttribute('aria-pressed', 'true');
    const user = userEvent.setup();
    await user.click(within(nav).getByRole('button', { name: 'Actions for Old trip plans' }));
    await user.click(await screen.findByText('Unarchive'));
    expect(handlers.onUnarchive).toHaveBeenCalledWith(archived[0]);
    await user.click(within(nav).getByRole('button', { name: 'Back to conversations' }));
    await waitFor(() => expect(handlers.onShowArchived).toHaveBeenCalledWith(false));
  });
});
