import { api, type ApiClient } from './client';
import { query } from './query';
import { followAnswer, type AnswerHandlers } from './sse';
import type {
  Conversation,
  Message,
  Model,
  Page,
  Params,
  PathMessage,
  Preset,
  Reaction,
  SearchHit,
  ShareLink,
} from './types';

const base = '/api/v1/conversations';

export interface ListFilter {
  limit?: number;
  cursor?: string;
  folder?: string;
  tag?: string;
  /** `true` lists archived conversations instead of the others. */
  archived?: boolean;
  pinned?: boolean;
}

export interface ConversationPatch {
  title?: string;
  model?: string | null;
  system_prompt?: string | null;
  params?: Params;
  pinned?: boolean;
  archived?: boolean;
  active_message_id?: string;
  folder?: string | null;
  tags?: string[];
}

export interface NewConversation {
  title?: string;
  model?: string;
  system_prompt?: string;
  params?: Params;
  folder?: string;
  tags?: string[];
  /** Take the system prompt and parameters of this preset (fields given here win). */
  preset_id?: string;
}

/** A new message (POST /api/v1/conversations/{id}/messages). */
export interface SendBody {
  /** May be empty when files are attached. */
  content: string;
  parent_id?: string | null;
  model?: string;
  /** Ids of the user's files (at most MAX_ATTACHMENTS), each clean or unscanned. */
  attachments?: string[];
}

export interface PresetInput {
  name: string;
  system_prompt: string | null;
  params: Params;
}

/** The chat endpoints over an ApiClient. */
export function chatApi(client: ApiClient = api) {
  async function stream(path: string, body: unknown, handlers: AnswerHandlers, signal?: AbortSignal) {
    const response = await client.fetch(
      path,
      {
        method: 'POST',
        body: JSON.stringify(body ?? {}),
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      },
      { signal },
    );
    if (!response.body) return null;
    return followAnswer(response.body, handlers);
  }

  return {
    models: () => client.get<{ items: Model[] }>('/api/v1/models').then((r) => r.items),

    list: (filter: ListFilter = {}) => client.get<Page<Conversation>>(`${base}${query({ ...filter })}`),
    /** Every page of a listing. */
    async listAll(filter: ListFilter = {}): Promise<Conversation[]> {
      const all: Conversation[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 20; i++) {
        const page = await client.get<Page<Conversation>>(`${base}${query({ ...filter, limit: 200, cursor })}`);
        all.push(...page.items);
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      return all;
    },
    get: (id: string) => client.get<Conversation>(`${base}/${id}`),
    create: (body: NewConversation = {}) => client.post<Conversation>(base, body),
    update: (id: string, patch: ConversationPatch) => client.patch<Conversation>(`${base}/${id}`, patch),
    remove: (id: string) => client.delete(`${base}/${id}`),
    messages: (id: string) => client.get<{ items: PathMessage[] }>(`${base}/${id}/messages`).then((r) => r.items),

    send: (
      id: string,
      body: SendBody,
      handlers: AnswerHandlers,
      signal?: AbortSignal,
    ) => stream(`${base}/${id}/messages`, body, handlers, signal),
    regenerate: (id: string, messageId: string, handlers: AnswerHandlers, signal?: AbortSignal, model?: string) =>
      stream(`${base}/${id}/messages/${messageId}/regenerate`, model ? { model } : {}, handlers, signal),
    async follow(id: string, messageId: string, offset: number, handlers: AnswerHandlers, signal?: AbortSignal) {
      const response = await client.fetch(
        `${base}/${id}/messages/${messageId}/stream?offset=${offset}`,
        { headers: { accept: 'text/event-stream' } },
        { signal },
      );
      if (!response.body) return null;
      return followAnswer(response.body, handlers);
    },
    stop: (id: string, messageId: string) => client.post<void>(`${base}/${id}/messages/${messageId}/stop`),

    /** Adds the reader's reaction (idempotent); the message's reactions after it. */
    react: (id: string, messageId: string, emoji: string) =>
      client
        .post<{ items: Reaction[] }>(`${base}/${id}/messages/${messageId}/reactions`, { emoji })
        .then((r) => r.items),
    /** Takes the reader's reaction back; the message's reactions after it. */
    unreact: (id: string, messageId: string, emoji: string) =>
      client
        .delete<{ items: Reaction[] }>(`${base}/${id}/messages/${messageId}/reactions/${encodeURIComponent(emoji)}`)
        .then((r) => r.items),

    presets: () => client.get<{ items: Preset[] }>('/api/v1/presets').then((r) => r.items),
    createPreset: (body: PresetInput) => client.post<Preset>('/api/v1/presets', body),
    updatePreset: (id: string, body: PresetInput) => client.request<Preset>('PUT', `/api/v1/presets/${id}`, body),
    removePreset: (id: string) => client.delete(`/api/v1/presets/${id}`),

    /** The conversation's share links, revoked ones included. */
    shares: (id: string) => client.get<{ items: ShareLink[] }>(`${base}/${id}/shares`).then((r) => r.items),
    /** A new link to a snapshot of the active branch (422 `nothing_to_share` when nothing is finished). */
    createShare: (id: string) => client.post<ShareLink>(`${base}/${id}/shares`),
    /** Revokes a share link: it stops working at once. */
    revokeShare: (token: string) => client.delete(`/api/v1/shares/${encodeURIComponent(token)}`),

    search: (q: string) => client.get<{ items: SearchHit[] }>(`/api/v1/search${query({ q })}`).then((r) => r.items),
  };
}

export type ChatApi = ReturnType<typeof chatApi>;
export const chat = chatApi();
export type { Message };
