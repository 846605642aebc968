// Test helpers for the admin screens: a fake server keyed by "METHOD /path", and the admin
// console rendered signed in (the session restored from the refresh cookie, as in the app).
import { configure, render } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router';
import { vi } from 'vitest';
import { ApiClient } from '../api/client';
import type { User } from '../api/types';
import { AuthProvider } from '../auth/AuthContext';
import { makeUser } from '../test/fixtures';
import { errorResponse, jsonResponse } from '../test/helpers';
import { ThemeProvider } from '../theme/ThemeContext';
import AdminPage from './AdminPage';

// The screens are lazy chunks with antd tables: their first render in jsdom takes seconds.
configure({ asyncUtilTimeout: 10_000 });

export const adminUser: User = makeUser('0190aaaa-0000-7000-8000-000000000001', 'root@example.com', {
  name: 'Root',
  role: 'admin',
  created_at: '2026-01-01T00:00:00.000Z',
});

export interface Call {
  method: string;
  path: string;
  search: URLSearchParams;
  body: unknown;
  init: RequestInit;
}

export type Handler = (call: Call) => Response | Promise<Response>;

/** A fetch that answers from `routes`; every call is recorded. The refresh answers as `user`. */
export function fakeServer(routes: Record<string, Handler>, user: User = adminUser) {
  const calls: Call[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), 'http://localhost');
    const method = init.method ?? 'GET';
    let body: unknown;
    if (typeof init.body === 'string') {
      try {
        body = JSON.parse(init.body);
      } catch {
        body = init.body;
      }
    }
    const call: Call = { method, path: url.pathname, search: url.searchParams, body, init };
    const key = `${method} ${url.pathname}`;
    if (key === 'POST /api/v1/auth/refresh') {
      return jsonResponse(200, { access_token: 'tok', refresh_token: 'r', token_type: 'Bearer', expires_in: 900, user });
    }
    calls.push(call);
    const route = routes[key];
    if (route) return route(call);
    if (key === 'GET /api/v1/auth/users') return jsonResponse(200, { items: [], next_cursor: null });
    return errorResponse(404, 'not_found', `no route ${key}`);
  });
  const find = (method: string, path: string) => calls.filter((c) => c.method === method && c.path === path);
  return { fetch, calls, find };
}

/** The admin console at `path`, signed in. */
export function renderAdmin(fetch: typeof globalThis.fetch, path = '/admin/users') {
  const client = new ApiClient({ fetch, cookies: () => 'confab_csrf=tok' });
  return render(
    <ThemeProvider>
      <AuthProvider client={client}>
        <MemoryRouter initialEntries={[path]}>
          <Routes>
            <Route path="/admin/*" element={<AdminPage />} />
            <Route path="/" element={<p>chat screen</p>} />
          </Routes>
        </MemoryRouter>
      </AuthProvider>
    </ThemeProvider>,
  );
}
