import { describe, expect, it } from 'vitest';
import type { Conversation } from '../api/types';
import { filterByTag, foldersOf, groupConversations, tagsOf } from './grouping';

function conv(
  id: string,
  updated: Date,
  pinned = false,
  extra: Partial<Pick<Conversation, 'folder' | 'tags'>> = {},
): Conversation {
  return {
    id,
    title: id,
    model: null,
    system_prompt: null,
    params: {},
    folder: null,
    tags: [],
    pinned,
    archived: false,
    active_leaf_id: null,
    created_at: updated.toISOString(),
    updated_at: updated.toISOString(),
    ...extra,
  };
}

describe('groupConversations', () => {
  const now = new Date(2026, 4, 20, 9, 30); // 20 May, 09:30 local
  const at = (day: number, hour: number) => new Date(2026, 4, day, hour, 0);

  it('puts pinned first, then Today, Yesterday, Previous 7 days, Older by calendar day', () => {
    const groups = groupConversations(
      [
        conv('older', at(1, 12)),
        conv('today-early', at(20, 0)),
        conv('yesterday-late', at(19, 23)),
        conv('pinned-old', at(2, 12), true),
        conv('week', at(14, 8)),
        conv('today-late', at(20, 9)),
        conv('eight-days', at(12, 8)),
        conv('yesterday-early', at(19, 0)),
      ],
      now,
    );
    expect(groups.map((g) => g.label)).toEqual(['Pinned', 'Today', 'Yesterday', 'Previous 7 days', 'Older']);
    expect(groups.map((g) => g.items.map((c) => c.id))).toEqual([
      ['pinned-old'],
      ['today-late', 'today-early'],
      ['yesterday-late', 'yesterday-early'],
      ['week'],
      ['eight-days', 'older'],
    ]);
  });

  it('leaves out empty groups', () => {
    const groups = groupConversations([conv('a', at(20, 8))], now);
    expect(groups).toHaveLength(1);
    expect(groups[0].key).toBe('today');
    expect(groupConversations([], now)).toEqual([]);
  });

  it('puts conversations in a folder under the folder, by name, between Pinned and the days', () => {
    const groups = groupConversations(
      [
        conv('today', at(20, 8)),
        conv('w-old', at(1, 8), false, { folder: 'Work' }),
        conv('w-new', at(20, 9), false, { folder: 'Work' }),
        conv('a', at(19, 8), false, { folder: 'archive ideas' }),
        conv('pinned-in-folder', at(18, 8), true, { folder: 'Work' }),
        conv('older', at(2, 8)),
      ],
      now,
    );
    expect(groups.map((g) => [g.kind, g.label])).toEqual([
      ['pinned', 'Pinned'],
      ['folder', 'archive ideas'],
      ['folder', 'Work'],
      ['recent', 'Today'],
      ['recent', 'Older'],
    ]);
    expect(groups.map((g) => g.items.map((c) => c.id))).toEqual([
      ['pinned-in-folder'],
      ['a'],
      ['w-new', 'w-old'],
      ['today'],
      ['older'],
    ]);
    expect(groups[2]).toMatchObject({ key: 'folder:Work', folder: 'Work' });
  });

  it('lists folders and tags in use, and filters by a tag', () => {
    const list = [
      conv('a', at(20, 8), false, { folder: 'Work', tags: ['rust', 'ideas'] }),
      conv('b', at(20, 7), false, { tags: ['ideas'] }),
      conv('c', at(20, 6), false, { folder: 'Home' }),
    ];
    expect(foldersOf(list)).toEqual(['Home', 'Work']);
    expect(tagsOf(list)).toEqual(['ideas', 'rust']);
    expect(filterByTag(list, 'ideas').map((c) => c.id)).toEqual(['a', 'b']);
    expect(filterByTag(list, 'rust').map((c) => c.id)).toEqual(['a']);
    expect(filterByTag(list, null)).toBe(list);
  });
});
