import type { Conversation } from '../api/types';

type RecencyKey = 'today' | 'yesterday' | 'week' | 'older';

export interface ConversationGroup {
  /** `pinned`, a recency key, or `folder:` and the folder's name. */
  key: 'pinned' | RecencyKey | `folder:${string}`;
  kind: 'pinned' | 'folder' | 'recent';
  label: string;
  /** The folder's name (kind `folder`). */
  folder?: string;
  items: Conversation[];
}

const LABELS: Record<'pinned' | RecencyKey, string> = {
  pinned: 'Pinned',
  today: 'Today',
  yesterday: 'Yesterday',
  week: 'Previous 7 days',
  older: 'Older',
};

function startOfDay(t: Date): number {
  return new Date(t.getFullYear(), t.getMonth(), t.getDate()).getTime();
}

const byName = (a: string, b: string) => a.localeCompare(b, undefined, { sensitivity: 'base' }) || a.localeCompare(b);

/**
 * Groups conversations for the sidebar: pinned first; then one group per folder (by name) for
 * the conversations in a folder; then the rest by the local calendar day of their last activity
 * (Today, Yesterday, Previous 7 days, Older). Newest first within each group. A pinned
 * conversation shows under Pinned even when it is in a folder. Empty groups are left out.
 */
export function groupConversations(conversations: Conversation[], now: Date = new Date()): ConversationGroup[] {
  const today = startOfDay(now);
  const day = 24 * 60 * 60 * 1000;
  // Calendar days, not 24-hour spans; DST shifts a day by an hour at most.
  const yesterday = startOfDay(new Date(today - day / 2));
  const weekAgo = startOfDay(new Date(today - 7 * day + day / 2));
  const pinned: Conversation[] = [];
  const folders = new Map<string, Conversation[]>();
  const recent: Record<RecencyKey, Conversation[]> = { today: [], yesterday: [], week: [], older: [] };
  for (const c of conversations) {
    if (c.pinned) {
      pinned.push(c);
      continue;
    }
    if (c.folder) {
      const items = folders.get(c.folder) ?? [];
      items.push(c);
      folders.set(c.folder, items);
      continue;
    }
    const t = Date.parse(c.updated_at);
    if (t >= today) recent.today.push(c);
    else if (t >= yesterday) recent.yesterday.push(c);
    else if (t >= weekAgo) recent.week.push(c);
    else recent.older.push(c);
  }
  const byRecency = (a: Conversation, b: Conversation) => Date.parse(b.updated_at) - Date.parse(a.updated_at);
  const groups: ConversationGroup[] = [];
  if (pinned.length) groups.push({ key: 'pinned', kind: 'pinned', label: LABELS.pinned, items: pinned.sort(byRecency) });
  for (const name of [...folders.keys()].sort(byName)) {
    groups.push({ key: `folder:${name}`, kind: 'folder', label: name, folder: name, items: folders.get(name)!.sort(byRecency) });
  }
  for (const k of Object.keys(recent) as RecencyKey[]) {
    if (recent[k].length) groups.push({ key: k, kind: 'recent', label: LABELS[k], items: recent[k].sort(byRecency) });
  }
  return groups;
}

/** Every folder in use, by name. */
export function foldersOf(conversations: Conversation[]): string[] {
  return [...new Set(conversations.map((c) => c.folder).filter((f): f is string => !!f))].sort(byName);
}

/** Every tag in use, by name. */
export function tagsOf(conversations: Conversation[]): string[] {
  return [...new Set(conversations.flatMap((c) => c.tags ?? []))].sort(byName);
}

/** The conversations with the tag; all of them without one. */
export function filterByTag(conversations: Conversation[], tag: string | null | undefined): Conversation[] {
  if (!tag) return conversations;
  return conversations.filter((c) => c.tags?.includes(tag));
}
