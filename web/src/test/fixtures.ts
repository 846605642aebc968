// Data the tests share: users, conversations and messages as the server sends them.
import type { Conversation, PathMessage, User } from '../api/types';

export function makeUser(id: string, email: string, extra: Partial<User> = {}): User {
  return {
    id,
    email,
    name: email.split('@')[0],
    role: 'user',
    status: 'active',
    groups: [],
    must_change_password: false,
    created_at: '2026-02-01T10:00:00.000Z',
    ...extra,
  };
}

/** The signed-in user of the chat and app tests. */
export const testUser: User = makeUser('u', 'ada@example.com', { name: 'Ada', created_at: '' });

/**
 * One instant for every conversation a test makes: two made a millisecond apart would
 * otherwise sort by that millisecond, and the order the tests expect would be chance.
 */
const now = new Date().toISOString();

export function conversation(id: string, title: string, extra: Partial<Conversation> = {}): Conversation {
  return {
    id,
    title,
    model: null,
    system_prompt: null,
    params: {},
    folder: null,
    tags: [],
    pinned: false,
    archived: false,
    active_leaf_id: null,
    created_at: now,
    updated_at: now,
    ...extra,
  };
}

/** A message of conversation c1 on the active path, with no other branch. */
export function pathMessage(
  id: string,
  role: 'user' | 'assistant',
  content: string,
  parent: string | null,
  extra: Partial<PathMessage> = {},
): PathMessage {
  return {
    id,
    conversation_id: 'c1',
    parent_id: parent,
    role,
    content,
    status: 'complete',
    model: null,
    error: null,
    prompt_tokens: null,
    completion_tokens: null,
    created_at: '',
    updated_at: '',
    branches: { sibling_ids: [id], index: 0 },
    reactions: [],
    ...extra,
  };
}
