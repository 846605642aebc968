import type { Conversation } from '../api/types';

export interface ConversationGroup {
  key: 'pinned' | 'today' | 'yesterday' | 'week' | 'older';
  label: string;
  items: Conversation[];
}

const LABELS: Record<ConversationGroup['key'], string> = {
  pinned: 'Pinned',
  today: 'Today',
  yesterday: 'Yesterday',
  week: 'Previous 7 days',
  older: 'Older',
};

function startOfDay(t: Date): number {
  return new Date(t.getFullYear(), t.getMonth(), t.getDate()).getTime();
}

/**
 * Groups conversations for the sidebar: pinned first, then by the local calendar day of their
 * last activity (Today, Yesterday, Previous 7 days, Older), newest first within each group.
 * Empty groups are left out.
 */
export function groupConversations(conversations: Conversation[], now: Date = new Date()): ConversationGroup[] {
  const today = startOfDay(now);
  const day = 24 * 60 * 60 * 1000;
  // Calendar days, not 24-hour spans; DST shifts a day by an hour at most.
  const yesterday = startOfDay(new Date(today - day / 2));
  const weekAgo = startOfDay(new Date(today - 7 * day + day / 2));
  const buckets: Record<ConversationGroup['key'], Conversation[]> = {
    pinned: [],
    today: [],
    yesterday: [],
    week: [],
    older: [],
  };
  for (const c of conversations) {
    if (c.pinned) {
      buckets.pinned.push(c);
      continue;
    }
    const t = Date.parse(c.updated_at);
    if (t >= today) buckets.today.push(c);
    else if (t >= yesterday) buckets.yesterday.push(c);
    else if (t >= weekAgo) buckets.week.push(c);
    else buckets.older.push(c);
  }
  const byRecency = (a: Conversation, b: Conversation) => Date.parse(b.updated_at) - Date.parse(a.updated_at);
  return (Object.keys(buckets) as ConversationGroup['key'][])
    .filter((k) => buckets[k].length > 0)
    .map((k) => ({ key: k, label: LABELS[k], items: buckets[k].sort(byRecency) }));
}
