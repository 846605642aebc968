// Helpers for the chat screen's tests.
import { screen, waitFor } from '@testing-library/react';
import { expect, vi } from 'vitest';
import { chatApi } from '../api/chat';
import { ApiClient } from '../api/client';
import type { Conversation, User } from '../api/types';
import { errorResponse } from '../test/helpers';

export const testUser: User = {
  id: 'u',
  email: 'ada@example.com',
  name: 'Ada',
  role: 'user',
  status: 'active',
  groups: [],
  must_change_password: false,
  created_at: '',
};

export function conversation(id: string, title: string, extra: Partial<Conversation> = {}): Conversation {
  const now = new Date().toISOString();
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

export type Handler = (init: RequestInit | undefined, url: string) => Response | Promise<Response>;

/**
 * A fetch that answers `METHOD /path` (query left out) from the routes, and 404 otherwise.
 * `calls(key)` gives the requests to a route, with their JSON bodies.
 */
export function routes(table: Record<string, Handler>) {
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const key = `${init?.method ?? 'GET'} ${url.split('?')[0]}`;
    const route = table[key];
    return route ? route(init, url) : errorResponse(404, 'not_found', `no route ${key}`);
  });
  const calls = (key: string) =>
    fetch.mock.calls
      .filter(([u, init]) => `${init?.method ?? 'GET'} ${String(u).split('?')[0]}` === key)
      .map(([u, init]) => ({ url: String(u), body: init?.body ? JSON.parse(String(init.body)) : undefined }));
  return { fetch, calls };
}

/** A signed-in client over the fake fetch, and the chat API on it. */
export function signedIn(fetch: typeof globalThis.fetch) {
  const client = new ApiClient({ fetch, cookies: () => '' });
  client.setSession({ access_token: 'token', expires_in: 900, user: testUser });
  return { client, api: chatApi(client) };
}

/** The open dialog or drawer with this title (antd's test ids make `name` lookups unreliable). */
export async function openDialog(title: string): Promise<HTMLElement> {
  return waitFor(() => {
    const found = screen
      .getAllByRole('dialog')
      .filter((d) => d.querySelector('.ant-modal-title, .ant-drawer-title')?.textContent === title);
    expect(found.length).toBeGreaterThan(0);
    return found[found.length - 1];
  });
}

/** A desktop-wide window: antd's breakpoints match. */
export function desktop() {
  vi.spyOn(window, 'matchMedia').mockImplementation(
    (query: string) =>
      ({
        matches: query.includes('min-width'),
        media: query,
        onchange: null,
        addListener: () => {},
        removeListener: () => {},
        addEventListener: () => {},
        removeEventListener: () => {},
        dispatchEvent: () => false,
      }) as MediaQueryList,
  );
}
