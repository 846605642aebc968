// Helpers for the files tests: a fake XMLHttpRequest the test answers, files as the server
// sends them, and the files page rendered signed in.
import { render } from '@testing-library/react';
import { MemoryRouter, Route, Routes } from 'react-router';
import { ApiClient } from '../api/client';
import { AuthProvider } from '../auth/AuthContext';
import { testUser } from '../test/fixtures';
import { ThemeProvider } from '../theme/ThemeContext';
import FilesPage from './FilesPage';
import type { FileView } from './types';

/**
 * An XMLHttpRequest whose answer the test gives: `respond`, `fail` (a network error) and
 * `progress`. Every sent request is in `FakeXHR.sent`; `FakeXHR.onSend` may answer at once.
 */
export class FakeXHR {
  static sent: FakeXHR[] = [];
  static onSend: ((xhr: FakeXHR) => void) | null = null;

  static reset() {
    FakeXHR.sent = [];
    FakeXHR.onSend = null;
  }

  method = '';
  url = '';
  headers: Record<string, string> = {};
  body: unknown = undefined;
  status = 0;
  responseText = '';
  aborted = false;
  done = false;
  private responseHeaders: Record<string, string> = {};
  upload: { onprogress: ((e: ProgressEvent) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  ontimeout: (() => void) | null = null;
  onabort: (() => void) | null = null;

  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name.toLowerCase()] = value;
  }
  getResponseHeader(name: string): string | null {
    return this.responseHeaders[name.toLowerCase()] ?? null;
  }
  send(body: unknown) {
    this.body = body;
    FakeXHR.sent.push(this);
    FakeXHR.onSend?.(this);
  }
  abort() {
    if (this.done) return;
    this.done = true;
    this.aborted = true;
    this.onabort?.();
  }

  // The test's side.
  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ loaded, total, lengthComputable: true } as ProgressEvent);
  }
  respond(status: number, body?: unknown, headers: Record<string, string> = {}) {
    if (this.done) return;
    this.done = true;
    this.status = status;
    this.responseText = body === undefined ? '' : JSON.stringify(body);
    this.responseHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    this.onload?.();
  }
  fail() {
    if (this.done) return;
    this.done = true;
    this.onerror?.();
  }
  /** The part of a resumable upload this PUT sends, from its url. */
  get part(): number {
    return Number(/\/parts\/(\d+)$/.exec(this.url)?.[1] ?? NaN);
  }
}

export function fileView(id: string, name: string, extra: Partial<FileView> = {}): FileView {
  return {
    id,
    name,
    content_type: 'application/pdf',
    kind: 'pdf',
    size: 2048,
    sha256: 'a'.repeat(64),
    state: 'clean',
    threat: null,
    width: null,
    height: null,
    has_thumbnail: false,
    created_at: '2026-03-01T12:00:00.000Z',
    scanned_at: '2026-03-01T12:00:01.000Z',
    ...extra,
  };
}

/** A signed-in client over `fetch`. */
export function signedIn(fetch: typeof globalThis.fetch): ApiClient {
  const client = new ApiClient({ fetch, cookies: () => '' });
  client.setSession({ access_token: 'tok', expires_in: 900, user: testUser });
  return client;
}

/** The files page at /files, signed in. */
export function renderFiles(fetch: typeof globalThis.fetch, pollMs?: number) {
  const client = signedIn(fetch);
  return render(
    <ThemeProvider>
      <AuthProvider client={client}>
        <MemoryRouter initialEntries={['/files']}>
          <Routes>
            <Route path="/files" element={<FilesPage pollMs={pollMs} />} />
            <Route path="/" element={<p>chat screen</p>} />
          </Routes>
        </MemoryRouter>
      </AuthProvider>
    </ThemeProvider>,
  );
}
