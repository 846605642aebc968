// Test helpers for the admin screens: a fake server keyed by "METHOD /path", and the admin
// console rendered signed in (the session restored from the refresh cookie, as in the app).
import { configure, render } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router';
import { vi } from 'vitest';
import { ApiClient } from '../api/client';
import type { User } from '../api/types';
import { AuthProvider } from '../auth/AuthContext';
import { errorResponse, jsonResponse } from '../test/helpers';
import { ThemeProvider } from '../theme/ThemeContext';
import AdminPage from './AdminPage';

// The screens are lazy chunks with antd tables: their first render in jsdom takes seconds.
configure({ asyncUtilTimeout: 10_000 });

export const adminUser: User = {
  id: '0190aaaa-0000-7000-8000-000000000001',
  email: 'root@example.com',
  name: 'Root',
  role: 'admin',
  status: 'active',
  groups: [],
  must_change_password: false,
  created_at: '2026-01-01T00:00:00.000Z',
};

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

/** A server-sent event stream the test writes to; it fails when the request is aborted. */
export function sseStream(signal?: AbortSignal | null) {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let open = true;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
  });
  signal?.addEventListener('abort', () => {
    if (open) {
      open = false;
      controller.error(new DOMException('Aborted', 'AbortError'));
    }
  });
  return {
    response: () => new Response(stream, { status: 200, headers: { 'content-type': 'text/event-stream' } }),
    send(event: string, data: unknown) {
      if (open) controller.enqueue(encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
    },
    close() {
      if (open) {
        open = false;
        controller.close();
      }
    },
  };
}
