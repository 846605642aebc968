import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { MemoryRouter, Route, Routes } from 'react-router';
import { describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../api/client';
import { AuthProvider } from '../auth/AuthContext';
import { errorResponse, jsonResponse } from '../test/helpers';
import { SignIn } from './SignIn';

function renderSignIn(fetch: typeof globalThis.fetch) {
  const client = new ApiClient({ fetch, cookies: () => '' });
  render(
    <AuthProvider client={client}>
      <MemoryRouter initialEntries={['/signin']}>
        <Routes>
          <Route path="/signin" element={<SignIn />} />
          <Route path="/pending" element={<p>pending screen</p>} />
          <Route path="/" element={<p>chat screen</p>} />
        </Routes>
      </MemoryRouter>
    </AuthProvider>,
  );
  return client;
}

async function fillAndSubmit() {
  const user = userEvent.setup();
  await user.type(screen.getByLabelText('Email'), 'ada@example.com');
  await user.type(screen.getByLabelText('Password'), 'secret-password');
  await user.click(screen.getByRole('button', { name: 'Sign in' }));
}

describe('SignIn', () => {
  it('shows the friendly error for wrong credentials', async () => {
    const fetch = vi.fn(async (_input: RequestInfo | URL, _init?: RequestInit) =>
      errorResponse(401, 'invalid_credentials', 'invalid email or password'),
    );
    renderSignIn(fetch);
    await fillAndSubmit();
    expect(await screen.findByRole('alert')).toHaveTextContent('Email or password is wrong.');
    expect(fetch).toHaveBeenCalledWith('/api/v1/auth/login', expect.objectContaining({ method: 'POST' }));
    const body = JSON.parse(String(fetch.mock.calls[0]![1]!.body));
    expect(body).toEqual({ email: 'ada@example.com', password: 'secret-password' });
  });

  it('goes to the pending-approval screen for a pending account', async () => {
    renderSignIn(vi.fn(async () => errorResponse(403, 'account_pending', 'pending')));
    await fillAndSubmit();
    expect(await screen.findByText('pending screen')).toBeInTheDocument();
  });

  it('signs in and keeps the token in memory', async () => {
    const user = { id: 'u', email: 'ada@example.com', name: 'Ada', role: 'user', status: 'active', groups: [], must_change_password: false, created_at: '' };
    const client = renderSignIn(
      vi.fn(async () =>
        jsonResponse(200, { access_token: 'tok', refresh_token: 'r', token_type: 'Bearer', expires_in: 900, user }),
      ),
    );
    await fillAndSubmit();
    await waitFor(() => expect(screen.getByText('chat screen')).toBeInTheDocument());
    expect(client.token).toBe('tok');
    expect(localStorage.length).toBe(0);
  });

  it('validates the form before calling the server', async () => {
    const fetch = vi.fn();
    renderSignIn(fetch);
    await userEvent.setup().click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByText('Enter your email address.')).toBeInTheDocument();
    expect(fetch).not.toHaveBeenCalled();
  });
});
