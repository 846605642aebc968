import { fireEvent, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it } from 'vitest';
import type { User } from '../api/types';
import { makeUser } from '../test/fixtures';
import { desktop, errorResponse, jsonResponse } from '../test/helpers';
import { adminUser, fakeServer, renderAdmin, type Call } from './testing';

const ada = makeUser('0190aaaa-0000-7000-8000-0000000000a1', 'ada@example.com');
const bob = makeUser('0190aaaa-0000-7000-8000-0000000000b2', 'bob@example.com', { status: 'pending' });
const eve = makeUser('0190aaaa-0000-7000-8000-0000000000e3', 'eve@example.com', { status: 'disabled' });

function usersRoute(pages: Record<string, { items: User[]; next_cursor: string | null }>) {
  return (call: Call) => {
    // the directory's page of 200 and the screen's pages of 50
    if (call.search.get('limit') === '200') return jsonResponse(200, { items: [adminUser, ada, bob, eve], next_cursor: null });
    const key = call.search.get('cursor') ?? '';
    return jsonResponse(200, pages[key] ?? { items: [], next_cursor: null });
  };
}

/** The table row of a user (by its email cell; role queries over big antd tables are slow in jsdom). */
function row(email: string): HTMLElement {
  return screen.getByText(email).closest('tr') as HTMLElement;
}

async function findRow(email: string): Promise<HTMLElement> {
  return (await screen.findByText(email)).closest('tr') as HTMLElement;
}

beforeEach(() => desktop());

// Each test renders the console with antd in jsdom: seconds each on a busy machine.
describe('Users screen', { timeout: 90_000 }, () => {
  it('lists users, highlights the pending one and approves it', async () => {
    const server = fakeServer({
      'GET /api/v1/auth/users': usersRoute({ '': { items: [adminUser, ada, bob, eve], next_cursor: null } }),
      [`POST /api/v1/auth/users/${bob.id}/approve`]: () => jsonResponse(200, { ...bob, status: 'active' }),
    });
    renderAdmin(server.fetch);
    expect(await findRow('bob@example.com')).toHaveClass('admin-row-pending');
    expect(row('ada@example.com')).not.toHaveClass('admin-row-pending');
    expect(within(row('eve@example.com')).getByText('disabled')).toBeInTheDocument();
    expect(within(row('ada@example.com')).queryByLabelText(/Approve/)).toBeNull();

    await userEvent.setup().click(screen.getByLabelText('Approve bob@example.com'));
    await waitFor(() => expect(screen.queryByLabelText('Approve bob@example.com')).toBeNull());
    expect(server.find('POST', `/api/v1/auth/users/${bob.id}/approve`)).toHaveLength(1);
    expect(within(row('bob@example.com')).getByText('active')).toBeInTheDocument();
    expect(row('bob@example.com')).not.toHaveClass('admin-row-pending');
  });

  it('searches and filters by status on the server, and pages with the cursor', async () => {
    const server = fakeServer({
      'GET /api/v1/auth/users': usersRoute({
        '': { items: [adminUser, ada], next_cursor: 'c2' },
        c2: { items: [bob], next_cursor: null },
      }),
    });
    renderAdmin(server.fetch);
    const user = userEvent.setup();
    await findRow('ada@example.com');
    await user.click(screen.getByText('Load more'));
    expect(await findRow('bob@example.com')).toBeInTheDocument();
    expect(row('ada@example.com')).toBeInTheDocument();
    expect(screen.queryByText('Load more')).toBeNull();

    await user.type(screen.getByLabelText('Search users'), 'ada{Enter}');
    await waitFor(() => {
      const lists = server.find('GET', '/api/v1/auth/users').filter((c) => c.search.get('limit') === '50');
      expect(lists.at(-1)!.search.get('q')).toBe('ada');
    });

    await user.click(screen.getByLabelText('Status'));
    await user.click(await screen.findByTitle('Pending approval'));
    await waitFor(() => {
      const last = server.find('GET', '/api/v1/auth/users').filter((c) => c.search.get('limit') === '50').at(-1)!;
      expect(last.search.get('status')).toBe('pending');
      expect(last.search.get('q')).toBe('ada');
      expect(last.search.get('cursor')).toBeNull();
    });
  });

  it('locks after confirmation, and says why when the server refuses', async () => {
    const server = fakeServer({
      'GET /api/v1/auth/users': usersRoute({ '': { items: [adminUser, ada, eve], next_cursor: null } }),
      [`POST /api/v1/auth/users/${ada.id}/lock`]: () => jsonResponse(200, { ...ada, status: 'disabled' }),
      [`POST /api/v1/auth/users/${eve.id}/unlock`]: () =>
        errorResponse(409, 'last_admin', 'this is the only active admin; make another admin first'),
    });
    renderAdmin(server.fetch);
    const user = userEvent.setup();
    await findRow('ada@example.com');
    expect(within(row('root@example.com')).getByLabelText('Lock root@example.com')).toBeDisabled();

    await user.click(screen.getByLabelText('Lock ada@example.com'));
    expect(server.find('POST', `/api/v1/auth/users/${ada.id}/lock`)).toHaveLength(0);
    const confirm = await waitFor(() => {
      const pop = document.querySelector('.ant-popconfirm');
      expect(pop).not.toBeNull();
      return pop as HTMLElement;
    });
    expect(confirm).toHaveTextContent('Lock ada@example.com?');
    await user.click(within(confirm).getByRole('button', { name: 'Lock' }));
    expect(await within(row('ada@example.com')).findByLabelText('Unlock ada@example.com')).toBeInTheDocument();
    expect(server.find('POST', `/api/v1/auth/users/${ada.id}/lock`)).toHaveLength(1);

    await user.click(screen.getByLabelText('Unlock eve@example.com'));
    expect(await screen.findByText('This is the only active administrator. Make another user an admin first.')).toBeInTheDocument();
  });

  it('changes a role with PATCH', async () => {
    const server = fakeServer({
      'GET /api/v1/auth/users': usersRoute({ '': { items: [adminUser, ada], next_cursor: null } }),
      [`PATCH /api/v1/auth/users/${ada.id}`]: () => jsonResponse(200, { ...ada, role: 'admin' }),
    });
    renderAdmin(server.fetch);
    const user = userEvent.setup();
    await findRow('ada@example.com');
    await user.click(screen.getByLabelText('Role of ada@example.com'));
    const options = await screen.findAllByTitle('Admin');
    await user.click(options[options.length - 1]);
    await waitFor(() => expect(server.find('PATCH', `/api/v1/auth/users/${ada.id}`)).toHaveLength(1));
    expect(server.find('PATCH', `/api/v1/auth/users/${ada.id}`)[0].body).toEqual({ role: 'admin' });
  });

  it('asks before an admin removes their own admin role', async () => {
    const server = fakeServer({
      'GET /api/v1/auth/users': usersRoute({ '': { items: [adminUser, ada], next_cursor: null } }),
      [`PATCH /api/v1/auth/users/${adminUser.id}`]: () => jsonResponse(200, { ...adminUser, role: 'user' }),
    });
    renderAdmin(server.fetch);
    const user = userEvent.setup();
    await findRow('root@example.com');
    await user.click(screen.getByLabelText('Role of root@example.com'));
    const options = await screen.findAllByTitle('User');
    await user.click(options[options.length - 1]);
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent('Remove your own admin role?');
    expect(server.find('PATCH', `/api/v1/auth/users/${adminUser.id}`)).toHaveLength(0);
    await user.click(within(dialog).getByRole('button', { name: 'Remove my admin role' }));
    await waitFor(() => expect(server.find('PATCH', `/api/v1/auth/users/${adminUser.id}`)).toHaveLength(1));
    expect(server.find('PATCH', `/api/v1/auth/users/${adminUser.id}`)[0].body).toEqual({ role: 'user' });
  });

  it('resets a password and shows the temporary one once, with a copy button', async () => {
    const server = fakeServer({
      'GET /api/v1/auth/users': usersRoute({ '': { items: [adminUser, ada], next_cursor: null } }),
      [`POST /api/v1/auth/users/${ada.id}/password-reset`]: () =>
        jsonResponse(200, { user_id: ada.id, temporary_password: 'Tmp-4821-xyz' }),
    });
    renderAdmin(server.fetch);
    const user = userEvent.setup();
    await findRow('ada@example.com');
    await user.click(screen.getByLabelText('More actions for ada@example.com'));
    await user.click(await screen.findByText('Reset password'));
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent('Reset the password of ada@example.com?');
    expect(dialog).toHaveTextContent('their API keys are revoked');
    await user.click(within(dialog).getByRole('button', { name: 'Reset password' }));
    expect(await screen.findByLabelText('Temporary password')).toHaveValue('Tmp-4821-xyz');
    expect(screen.getByLabelText('Copy temporary password')).toBeInTheDocument();
    expect(server.find('POST', `/api/v1/auth/users/${ada.id}/password-reset`)).toHaveLength(1);
    await user.click(screen.getByText('Done'));
    await waitFor(() => expect(screen.queryByLabelText('Temporary password')).toBeNull());
  });

  it('deletes a user after confirmation and shows the background job', async () => {
    const jobId = '0190aaaa-0000-7000-8000-00000000j0b1'.replace('j0b1', 'abcd');
    const server = fakeServer({
      'GET /api/v1/auth/users': usersRoute({ '': { items: [adminUser, ada], next_cursor: null } }),
      [`DELETE /api/v1/auth/users/${ada.id}`]: () => jsonResponse(202, { user_id: ada.id, job_id: jobId }),
    });
    renderAdmin(server.fetch);
    const user = userEvent.setup();
    await findRow('ada@example.com');
    await user.click(screen.getByLabelText('More actions for ada@example.com'));
    fireEvent.click(await screen.findByText('Delete user'));
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent('Delete ada@example.com?');
    expect(server.find('DELETE', `/api/v1/auth/users/${ada.id}`)).toHaveLength(0);
    await user.click(within(dialog).getByRole('button', { name: 'Delete user' }));
    const notice = await screen.findByText('Deleting ada@example.com');
    expect(notice.closest('[role="status"]')).toHaveTextContent(jobId);
    expect(within(notice.closest('[role="status"]') as HTMLElement).getByRole('link', { name: 'Background tasks' })).toHaveAttribute(
      'href',
      '/admin/jobs',
    );
    expect(server.find('DELETE', `/api/v1/auth/users/${ada.id}`)).toHaveLength(1);
  });
});
