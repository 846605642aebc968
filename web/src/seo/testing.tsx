// Helpers for the SEO studio's tests: a fake server keyed by "METHOD /path" and the studio's
// screens rendered signed in.
import { render } from '@testing-library/react';
import type { ReactNode } from 'react';
import { MemoryRouter, Route, Routes } from 'react-router';
import { vi } from 'vitest';
import { ApiClient } from '../api/client';
import { AuthProvider } from '../auth/AuthContext';
import { testUser } from '../test/fixtures';
import { errorResponse } from '../test/helpers';
import { ThemeProvider } from '../theme/ThemeContext';
import type { Package, Project, Version } from './types';

export interface Call {
  method: string;
  path: string;
  search: URLSearchParams;
  body: unknown;
}

export type Handler = (call: Call, init: RequestInit) => Response | Promise<Response>;

export function fakeServer(routes: Record<string, Handler>) {
  const calls: Call[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), 'http://localhost');
    const method = init.method ?? 'GET';
    const body = typeof init.body === 'string' ? (JSON.parse(init.body) as unknown) : undefined;
    const call: Call = { method, path: url.pathname, search: url.searchParams, body };
    calls.push(call);
    const route = routes[`${method} ${url.pathname}`];
    return route ? route(call, init) : errorResponse(404, 'not_found', `no route ${method} ${url.pathname}`);
  });
  const find = (method: string, path: string) => calls.filter((c) => c.method === method && c.path === path);
  return { fetch, calls, find };
}

/** `ui` signed in, inside the app's providers, at `path` of the studio's routes. */
export function renderSeo(fetch: typeof globalThis.fetch, ui: ReactNode, path = '/seo', route = '/seo/*') {
  const client = new ApiClient({ fetch, cookies: () => '' });
  client.setSession({ access_token: 'token', expires_in: 900, user: testUser });
  return render(
    <ThemeProvider>
      <AuthProvider client={client}>
        <MemoryRouter initialEntries={[path]}>
          <Routes>
            <Route path={route} element={ui} />
            {route !== '/seo/:projectId' && <Route path="/seo/:projectId" element={<p>project page</p>} />}
          </Routes>
        </MemoryRouter>
      </AuthProvider>
    </ThemeProvider>,
  );
}

export function project(id: string, topic: string, extra: Partial<Project> = {}): Project {
  return {
    id,
    owner: testUser.id,
    topic,
    primary_keyword: 'sourdough bread',
    secondary_keywords: [],
    language: 'en',
    tone: 'friendly',
    links: [],
    has_transcript: false,
    archived: false,
    latest_version: null,
    latest_score: null,
    created_at: 1_760_000_000_000,
    updated_at: 1_760_000_000_000,
    ...extra,
  };
}

export function pkg(extra: Partial<Package> = {}): Package {
  return {
    titles: [],
    title: 'Sourdough bread for beginners',
    description: 'Bake sourdough bread at home.\n\n#sourdough #baking',
    tags: ['sourdough bread', 'baking'],
    thumbnail_texts: ['First loaf'],
    ...extra,
  };
}

export function version(number: number, extra: Partial<Version> = {}): Version {
  return {
    project_id: 'p1',
    number,
    source: 'generated',
    author: testUser.id,
    package: pkg(),
    score: 70,
    created_at: 1_760_000_000_000 + number * 60_000,
    ...extra,
  };
}
