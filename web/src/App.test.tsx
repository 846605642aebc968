import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import App from './App';
import { api } from './api/client';
import { conversation, pathMessage, testUser as user } from './test/fixtures';
import { desktop, jsonResponse, routes, type Handler } from './test/helpers';

const now = new Date().toISOString();
const message = (id: string, role: 'user' | 'assistant', content: string, parent: string | null) =>
  pathMessage(id, role, content, parent, {
    model: 'm',
    created_at: now,
    updated_at: now,
    branches: { sibling_ids: role === 'assistant' ? ['x', id] : [id], index: role === 'assistant' ? 1 : 0 },
  });

function serve(table: Record<string, Handler>) {
  const { fetch } = routes(table);
  vi.stubGlobal('fetch', fetch);
  vi.stubGlobal('WebSocket', undefined);
  return fetch;
}

afterEach(() => {
  vi.unstubAllGlobals();
  api.clearSession();
  document.cookie = 'confab_csrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT';
  window.history.replaceState(null, '', '/');
});

describe('App', () => {
  it('sends a signed-out visitor to sign in', async () => {
    serve({});
    render(<App />);
    expect(await screen.findByRole('heading', { name: 'Sign in' })).toBeInTheDocument();
    expect(window.location.pathname).toBe('/signin');
  });

  it('restores the session from the cookie and shows conversations, messages and branches', async () => {
    document.cookie = 'confab_csrf=tok';
    const fetch = serve({
      'POST /api/v1/auth/refresh': () =>
        jsonResponse(200, { access_token: 'a', refresh_token: 'r', token_type: 'Bearer', expires_in: 900, user }),
      'GET /api/v1/models': () => jsonResponse(200, { items: [{ id: 'm', provider: 'p', default: true, local: null, context_tokens: null }] }),
      'GET /api/v1/conversations': () =>
        jsonResponse(200, { items: [conversation('c1', 'Rust questions'), conversation('c2', 'Pinned one', { pinned: true })], next_cursor: null }),
      'GET /api/v1/conversations/c1/messages': () =>
        jsonResponse(200, { items: [message('q', 'user', 'How?', null), message('r', 'assistant', 'Like `this`.', 'q')] }),
    });
    window.history.replaceState(null, '', '/c/c1');
    desktop();
    render(<App />);
    const nav = await screen.findByRole('navigation', { name: 'Conversations' });
    expect(await within(nav).findByRole('link', { name: /Rust questions/ })).toHaveAttribute('aria-current', 'page');
    expect(within(nav).getAllByRole('heading').map((h) => h.textContent)).toEqual(['Pinned', 'Today']);
    expect(await screen.findByText('How?')).toBeInTheDocument();
    const answer = screen.getByRole('article', { name: 'Assistant message' });
    expect(within(answer).getByText('2/2')).toBeInTheDocument();
    expect(within(answer).getByRole('button', { name: 'Next branch' })).toBeDisabled();
    expect(within(answer).getByRole('button', { name: 'Previous branch' })).toBeEnabled();
    expect(screen.getByRole('textbox', { name: 'Message' })).toBeInTheDocument();
    const refresh = fetch.mock.calls.find(([u]) => u === '/api/v1/auth/refresh');
    expect(new Headers(refresh![1]!.headers).get('x-csrf-token')).toBe('tok');
    const list = fetch.mock.calls.find(([u]) => String(u).startsWith('/api/v1/conversations?'));
    expect(new Headers(list![1]!.headers).get('authorization')).toBe('Bearer a');

    await userEvent.setup().click(screen.getByRole('link', { name: 'Settings' }));
    expect(await screen.findByRole('heading', { name: 'Settings' })).toBeInTheDocument();
  });

  it('collapses the sidebar into a drawer at phone width', async () => {
    document.cookie = 'confab_csrf=tok';
    serve({
      'POST /api/v1/auth/refresh': () =>
        jsonResponse(200, { access_token: 'a', refresh_token: 'r', token_type: 'Bearer', expires_in: 900, user }),
      'GET /api/v1/models': () => jsonResponse(200, { items: [] }),
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [conversation('c1', 'Phone chat')], next_cursor: null }),
    });
    render(<App />);
    const open = await screen.findByRole('button', { name: 'Open sidebar' });
    expect(screen.queryByRole('navigation', { name: 'Conversations' })).toBeNull();
    await userEvent.setup().click(open);
    const nav = await screen.findByRole('navigation', { name: 'Conversations' });
    expect(await within(nav).findByRole('link', { name: /Phone chat/ })).toBeInTheDocument();
    expect(screen.getByText('No model is installed yet; an administrator can add one.')).toBeInTheDocument();
  });
});
