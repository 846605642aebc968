import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { makeUser } from '../test/fixtures';
import { desktop, jsonResponse } from '../test/helpers';
import { adminUser, fakeServer, renderAdmin } from './testing';

describe('AdminPage', { timeout: 90_000 }, () => {
  it('tells a non-admin that the console is for admins only, without calling admin APIs', async () => {
    const server = fakeServer({}, makeUser('u1', 'ada@example.com'));
    renderAdmin(server.fetch, '/admin/users');
    expect(await screen.findByText('Admins only')).toBeInTheDocument();
    expect(screen.getByRole('link', { name: /Back to chat/ })).toHaveAttribute('href', '/');
    expect(server.calls.filter((c) => c.path.startsWith('/api/v1/admin') || c.path === '/api/v1/auth/users')).toEqual([]);
  });

  it('shows the sections as links and switches between them', async () => {
    desktop();
    const server = fakeServer({
      'GET /api/v1/auth/users': () => jsonResponse(200, { items: [adminUser], next_cursor: null }),
      'GET /api/v1/auth/groups': () => jsonResponse(200, { items: [] }),
    });
    renderAdmin(server.fetch, '/admin');
    const nav = await screen.findByRole('navigation', { name: 'Admin sections' });
    for (const name of ['Users', 'Groups', 'Usage', 'Audit log', 'Background tasks', 'Settings']) {
      expect(within(nav).getByRole('link', { name })).toBeInTheDocument();
    }
    expect(await screen.findByRole('heading', { name: 'Users' })).toBeInTheDocument();
    expect(within(nav).getByRole('link', { name: 'Users' })).toHaveAttribute('aria-current', 'page');

    await userEvent.setup().click(within(nav).getByRole('link', { name: 'Groups' }));
    expect(await screen.findByRole('heading', { name: 'Groups' })).toBeInTheDocument();
    expect(await screen.findByText('No groups yet.')).toBeInTheDocument();
    expect(screen.getByRole('link', { name: /Back to chat/ })).toHaveAttribute('href', '/');
  });

  it('puts the sections in a drawer at phone width', async () => {
    const server = fakeServer({
      'GET /api/v1/auth/users': () => jsonResponse(200, { items: [adminUser], next_cursor: null }),
    });
    renderAdmin(server.fetch, '/admin/users');
    const open = await screen.findByRole('button', { name: 'Open admin menu' });
    expect(screen.queryByRole('navigation', { name: 'Admin sections' })).toBeNull();
    await userEvent.setup().click(open);
    const nav = await screen.findByRole('navigation', { name: 'Admin sections' });
    expect(within(nav).getByRole('link', { name: 'Background tasks' })).toHaveAttribute('href', '/admin/jobs');
  });
});
