import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it } from 'vitest';
import { makeUser } from '../test/fixtures';
import { desktop, errorResponse, jsonResponse } from '../test/helpers';
import type { Group } from './api';
import { adminUser, fakeServer, renderAdmin } from './testing';

const ada = makeUser('0190aaaa-0000-7000-8000-0000000000a1', 'ada@example.com');
const bob = makeUser('0190aaaa-0000-7000-8000-0000000000b2', 'bob@example.com');
const GID = '0190cccc-0000-7000-8000-000000000001';

beforeEach(() => desktop());

describe('Groups screen', { timeout: 90_000 }, () => {
  it('creates a group, adds and removes members', async () => {
    let groups: Group[] = [{ id: GID, name: 'research', members: [ada.id], created_at: '2026-03-01T12:00:00.000Z' }];
    const server = fakeServer({
      'GET /api/v1/auth/groups': () => jsonResponse(200, { items: groups }),
      'GET /api/v1/auth/users': () => jsonResponse(200, { items: [adminUser, ada, bob], next_cursor: null }),
      'POST /api/v1/auth/groups': (call) => {
        const name = (call.body as { name: string }).name;
        if (name === 'research') return errorResponse(409, 'group_exists', 'a group named `research` already exists');
        const g = { id: 'g2', name, members: [], created_at: '2026-03-02T12:00:00.000Z' };
        groups = [...groups, g];
        return jsonResponse(201, g);
      },
      [`PUT /api/v1/auth/groups/${GID}/members/${bob.id}`]: () => {
        groups = groups.map((g) => (g.id === GID ? { ...g, members: [...g.members, bob.id] } : g));
        return new Response(null, { status: 204 });
      },
      [`DELETE /api/v1/auth/groups/${GID}/members/${ada.id}`]: () => {
        groups = groups.map((g) => (g.id === GID ? { ...g, members: g.members.filter((m) => m !== ada.id) } : g));
        return new Response(null, { status: 204 });
      },
    });
    renderAdmin(server.fetch, '/admin/groups');
    const user = userEvent.setup();
    // members are named by email
    expect(await screen.findByText('ada@example.com')).toBeInTheDocument();

    await user.type(screen.getByLabelText('Group name'), 'research');
    await user.click(screen.getByText('Create group'));
    expect(await screen.findByText('A group with this name already exists.')).toBeInTheDocument();
    await user.clear(screen.getByLabelText('Group name'));
    await user.type(screen.getByLabelText('Group name'), 'ops');
    await user.click(screen.getByText('Create group'));
    expect(await screen.findByText('ops')).toBeInTheDocument();
    expect(server.find('POST', '/api/v1/auth/groups').at(-1)!.body).toEqual({ name: 'ops' });

    await user.click(screen.getByLabelText('User to add to research'));
    const option = await screen.findAllByTitle('bob@example.com (bob)');
    await user.click(option[option.length - 1]);
    await user.click(screen.getByLabelText('Add member to research'));
    await waitFor(() => expect(server.find('PUT', `/api/v1/auth/groups/${GID}/members/${bob.id}`)).toHaveLength(1));
    expect(await screen.findByLabelText('Remove bob@example.com from research')).toBeInTheDocument();

    await user.click(screen.getByLabelText('Remove ada@example.com from research'));
    await waitFor(() => expect(screen.queryByLabelText('Remove ada@example.com from research')).toBeNull());
    expect(server.find('DELETE', `/api/v1/auth/groups/${GID}/members/${ada.id}`)).toHaveLength(1);
  });
});
