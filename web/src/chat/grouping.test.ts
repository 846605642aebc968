import { describe, expect, it } from 'vitest';
import type { Conversation } from '../api/types';
import { groupConversations } from './grouping';

function conv(id: string, updated: Date, pinned = false): Conversation {
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
});
