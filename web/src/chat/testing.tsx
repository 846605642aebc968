// Helpers for the chat screen's tests.
import { screen, waitFor } from '@testing-library/react';
import { expect } from 'vitest';
import { chatApi } from '../api/chat';
import { ApiClient } from '../api/client';
import { testUser } from '../test/fixtures';

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
