import { describe, expect, it, vi } from 'vitest';
import { makeUser } from '../test/fixtures';
import { errorResponse, jsonResponse } from '../test/helpers';
import { ApiClient } from './client';
import { ApiError, friendlyMessage } from './errors';

/** The ApiError a call rejects with. */
async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

const user = makeUser('u', 'a@b.c', { name: 'A', created_at: '' });

function tokens(access: string, expiresIn = 900) {
  return { access_token: access, refresh_token: 'r', token_type: 'Bearer', expires_in: expiresIn, user };
}

describe('ApiClient', () => {
  it('maps error envelopes to ApiError and friendly words', async () => {
    const fetch = vi.fn(async () => errorResponse(401, 'invalid_credentials', 'invalid email or password'));
    const client = new ApiClient({ fetch, cookies: () => '' });
    const error = await failure(client.post('/api/v1/auth/login', { email: 'x', password: 'y' }));
    expect(error).toBeInstanceOf(ApiError);
    expect(error.code).toBe('invalid_credentials');
    expect(error.status).toBe(401);
    expect(friendlyMessage(error)).toBe('Email or password is wrong.');
    // a login 401 is not retried through a refresh
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('lists every broken password rule and reads Retry-After', async () => {
    const weak = new ApiError(422, { code: 'weak_password', message: 'weak', details: ['at least 12 characters', 'a digit'] });
    expect(friendlyMessage(weak)).toBe('Choose a stronger password: at least 12 characters; a digit.');
    const client = new ApiClient({
      fetch: async () => errorResponse(429, 'rate_limited', 'slow down') as Response,
      cookies: () => '',
    });
    const limited = await failure(client.get('/api/v1/models'));
    expect(limited.code).toBe('rate_limited');
    const withHeader = new Response(JSON.stringify({ error: { code: 'login_throttled', message: 'wait' } }), {
      status: 429,
      headers: { 'retry-after': '120' },
    });
    const locked = await failure(new ApiClient({ fetch: async () => withHeader, cookies: () => '' })
      .post('/api/v1/auth/login', {}));
    expect(friendlyMessage(locked)).toBe('Too many failed sign-ins. Try again in 2 minutes.');
  });

  it('falls back to the server message for unknown codes, and to the status for non-JSON', async () => {
    expect(friendlyMessage(new ApiError(409, { code: 'something_new', message: 'Server words.' }))).toBe('Server words.');
    const client = new ApiClient({ fetch: async () => new Response('<html>', { status: 502 }), cookies: () => '' });
    const e = await failure(client.get('/api/v1/x'));
    expect(e.code).toBe('server_error');
  });

  it('refreshes on a 401 with the CSRF cookie and retries with the new token', async () => {
    const calls: Array<{ url: string; auth: string | null; csrf: string | null }> = [];
    const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const headers = new Headers(init?.headers);
      const url = String(input);
      calls.push({ url, auth: headers.get('authorization'), csrf: headers.get('x-csrf-token') });
      if (url === '/api/v1/auth/refresh') return jsonResponse(200, tokens('new'));
      if (headers.get('authorization') === 'Bearer old') return errorResponse(401, 'token_expired', 'expired');
      return jsonResponse(200, { items: [] });
    });
    const client = new ApiClient({ fetch, cookies: () => 'other=1; confab_csrf=abc%3D' });
    client.setSession(tokens('old'));
    const result = await client.get<{ items: unknown[] }>('/api/v1/conversations');
    expect(result).toEqual({ items: [] });
    expect(calls.map((c) => c.url)).toEqual(['/api/v1/conversations', '/api/v1/auth/refresh', '/api/v1/conversations']);
    expect(calls[1].csrf).toBe('abc=');
    expect(calls[2].auth).toBe('Bearer new');
    expect(client.token).toBe('new');
  });

  it('shares one refresh between concurrent 401s', async () => {
    let refreshes = 0;
    const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = String(input);
      if (url === '/api/v1/auth/refresh') {
        refreshes++;
        await new Promise((r) => setTimeout(r, 5));
        return jsonResponse(200, tokens('new'));
      }
      return new Headers(init?.headers).get('authorization') === 'Bearer new'
        ? jsonResponse(200, { ok: true })
        : errorResponse(401, 'token_expired', 'expired');
    });
    const client = new ApiClient({ fetch, cookies: () => 'confab_csrf=x' });
    client.setSession(tokens('old'));
    await Promise.all([client.get('/a'), client.get('/b'), client.get('/c')]);
    expect(refreshes).toBe(1);
  });

  it('refreshes before a request when the token is about to expire', async () => {
    let now = 1_000_000;
    const urls: string[] = [];
    const fetch = vi.fn(async (input: RequestInfo | URL) => {
      urls.push(String(input));
      return String(input).endsWith('/refresh') ? jsonResponse(200, tokens('new')) : jsonResponse(200, {});
    });
    const client = new ApiClient({ fetch, cookies: () => 'confab_csrf=x', now: () => now });
    client.setSession(tokens('old', 60));
    now += 45_000; // 15 s left, under the margin
    await client.get('/api/v1/auth/me');
    expect(urls).toEqual(['/api/v1/auth/refresh', '/api/v1/auth/me']);
  });

  it('ends the session when the refresh is refused', async () => {
    const fetch = vi.fn(async (input: RequestInfo | URL) =>
      String(input).endsWith('/refresh')
        ? errorResponse(401, 'invalid_refresh_token', 'no')
        : errorResponse(401, 'token_expired', 'expired'),
    );
    const client = new ApiClient({ fetch, cookies: () => 'confab_csrf=x' });
    const changes: Array<unknown> = [];
    client.onSession((u) => changes.push(u));
    client.setSession(tokens('old'));
    const e = await failure(client.get('/api/v1/conversations'));
    expect(e.code).toBe('token_expired');
    expect(client.token).toBeNull();
    expect(changes).toEqual([user, null]);
  });

  it('restores nothing without the CSRF cookie', async () => {
    const fetch = vi.fn();
    const client = new ApiClient({ fetch, cookies: () => '' });
    expect(await client.refresh()).toBeNull();
    expect(fetch).not.toHaveBeenCalled();
  });
});
