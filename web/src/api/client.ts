import { ApiError, errorFromResponse } from './errors';
import type { TokenResponse, User } from './types';

export const CSRF_COOKIE = 'confab_csrf';
export const CSRF_HEADER = 'x-csrf-token';

/** Refresh this many milliseconds before the access token expires. */
const REFRESH_MARGIN_MS = 30_000;

export function readCookie(name: string, cookies: string = document.cookie): string | null {
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return null;
}

/** Paths whose 401 means "wrong credentials", not "refresh and retry". */
const NO_RETRY = ['/api/v1/auth/login', '/api/v1/auth/register', '/api/v1/auth/refresh', '/api/v1/auth/password/reset'];

export interface ClientOptions {
  fetch?: typeof fetch;
  cookies?: () => string;
  now?: () => number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

/**
 * Talks to the Confab API: keeps the access token in memory only, sends it as a Bearer
 * header, refreshes it through the HttpOnly cookie (with the CSRF double-submit header)
 * before it expires and once after a 401, and turns error envelopes into `ApiError`s.
 */
export class ApiClient {
  private accessToken: string | null = null;
  private expiresAt = 0;
  private refreshing: Promise<TokenResponse | null> | null = null;
  private listeners = new Set<(user: User | null) => void>();
  private readonly doFetch: typeof fetch;
  private readonly cookies: () => string;
  private readonly now: () => number;

  constructor(options: ClientOptions = {}) {
    this.doFetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.cookies = options.cookies ?? (() => (typeof document === 'undefined' ? '' : document.cookie));
    this.now = options.now ?? (() => Date.now());
  }

  get token(): string | null {
    return this.accessToken;
  }

  /** Called with the user on every sign-in or refresh, and null when the session ends. */
  onSession(listener: (user: User | null) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setSession(tokens: { access_token: string; expires_in: number; user: User }): void {
    this.accessToken = tokens.access_token;
    this.expiresAt = this.now() + tokens.expires_in * 1000;
    this.listeners.forEach((l) => l(tokens.user));
  }

  clearSession(): void {
    const had = this.accessToken !== null;
    this.accessToken = null;
    this.expiresAt = 0;
    if (had) this.listeners.forEach((l) => l(null));
  }

  /**
   * New tokens from the refresh cookie; null when there is no session to restore.
   * Concurrent callers share one request (the server rotates refresh tokens).
   */
  refresh(): Promise<TokenResponse | null> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<TokenResponse | null> {
    const csrf = readCookie(CSRF_COOKIE, this.cookies());
    if (!csrf) {
      this.clearSession();
      return null;
    }
    let response: Response;
    try {
      response = await this.doFetch('/api/v1/auth/refresh', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { [CSRF_HEADER]: csrf },
      });
    } catch {
      throw new ApiError(0, { code: 'network_error', message: 'Cannot reach the server.' });
    }
    if (!response.ok) {
      const error = await errorFromResponse(response);
      if (response.status === 401 || response.status === 403) {
        this.clearSession();
        return null;
      }
      throw error;
    }
    const tokens = (await response.json()) as TokenResponse;
    this.setSession(tokens);
    return tokens;
  }

  /** A token valid for a while yet, refreshing first when it is about to expire. */
  async freshToken(): Promise<string | null> {
    if (this.accessToken && this.now() > this.expiresAt - REFRESH_MARGIN_MS) {
      try {
        await this.refresh();
      } catch {
        // keep the old token; the request's own 401 will tell
      }
    }
    return this.accessToken;
  }

  /** A raw request with auth; retries once after refreshing on 401. Throws ApiError when not ok. */
  async fetch(path: string, init: RequestInit = {}, options: RequestOptions = {}): Promise<Response> {
    const retryable = !NO_RETRY.includes(path);
    const send = async (token: string | null) => {
      const headers = new Headers(init.headers);
      if (token) headers.set('authorization', `Bearer ${token}`);
      for (const [k, v] of Object.entries(options.headers ?? {})) headers.set(k, v);
      try {
        return await this.doFetch(path, {
          ...init,
          headers,
          credentials: 'same-origin',
          signal: options.signal ?? init.signal,
        });
      } catch (e) {
        if (e instanceof Error && e.name === 'AbortError') throw e;
        throw new ApiError(0, { code: 'network_error', message: 'Cannot reach the server.' });
      }
    };
    const token = retryable ? await this.freshToken() : this.accessToken;
    let response = await send(token);
    if (response.status === 401 && retryable && token) {
      const tokens = await this.refresh().catch(() => null);
      if (tokens) response = await send(tokens.access_token);
    }
    if (!response.ok) {
      const error = await errorFromResponse(response);
      if (response.status === 401 && retryable && token) this.clearSession();
      throw error;
    }
    return response;
  }

  async request<T>(method: string, path: string, body?: unknown, options: RequestOptions = {}): Promise<T> {
    const init: RequestInit = { method };
    if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { 'content-type': 'application/json' };
    }
    const response = await this.fetch(path, init, options);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, options?: RequestOptions) {
    return this.request<T>('GET', path, undefined, options);
  }
  post<T>(path: string, body?: unknown, options?: RequestOptions) {
    return this.request<T>('POST', path, body, options);
  }
  patch<T>(path: string, body: unknown, options?: RequestOptions) {
    return this.request<T>('PATCH', path, body, options);
  }
  delete<T = void>(path: string, options?: RequestOptions) {
    return this.request<T>('DELETE', path, undefined, options);
  }

  /** Ends the session on the server (cookie + CSRF, and the bearer) and forgets the token. */
  async logout(): Promise<void> {
    const csrf = readCookie(CSRF_COOKIE, this.cookies());
    const headers: Record<string, string> = {};
    if (csrf) headers[CSRF_HEADER] = csrf;
    if (this.accessToken) headers.authorization = `Bearer ${this.accessToken}`;
    try {
      await this.doFetch('/api/v1/auth/logout', { method: 'POST', headers, credentials: 'same-origin' });
    } catch {
      // signed out locally either way
    }
    this.clearSession();
  }
}

/** The app's one client. */
export const api = new ApiClient();
