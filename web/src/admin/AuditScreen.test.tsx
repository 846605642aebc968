import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import dayjs from 'dayjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { desktop, jsonResponse } from '../test/helpers';
import type { AuditEntry, VerifyReport } from './api';
import { auditParams } from './AuditScreen';
import { adminUser, fakeServer, renderAdmin, type Call } from './testing';

function entry(seq: number, action: string, outcome = 'success'): AuditEntry {
  return {
    id: `e${seq}`,
    seq,
    at: `2026-03-0${seq}T12:00:00.000Z`,
    actor: adminUser.id,
    action,
    target: `target-${seq}`,
    outcome,
    ip: '10.0.0.1',
    user_agent: 'test',
    request_id: `req-${seq}`,
    details: { n: seq },
    prev_hash: '0'.repeat(64),
    hash: `${seq}`.repeat(64),
  };
}

const intact: VerifyReport = { entries: 3, archived_entries: 0, archive_files_checked: 0, head_seq: 3, first_broken: null };

function auditRoute(call: Call) {
  return call.search.get('cursor') === 'c1'
    ? jsonResponse(200, { items: [entry(1, 'auth.login', 'failure')], next_cursor: null })
    : jsonResponse(200, { items: [entry(3, 'auth.user_locked'), entry(2, 'auth.login', 'failure')], next_cursor: 'c1' });
}

beforeEach(() => desktop());
afterEach(() => vi.unstubAllGlobals());

describe('auditParams', () => {
  it('drops empty filters and sends times as RFC 3339', () => {
    const from = dayjs('2026-03-01T08:30:00Z');
    expect(auditParams({ action: ' auth.* ', target: '', from, to: null })).toEqual({
      actor: undefined,
      action: 'auth.*',
      target: undefined,
      outcome: undefined,
      from: '2026-03-01T08:30:00.000Z',
      to: undefined,
    });
  });
});

// Each test renders the console with antd in jsdom: seconds each on a busy machine.
describe('Audit log screen', { timeout: 90_000 }, () => {
  it('turns the filters into the query and loads more with the cursor', async () => {
    const server = fakeServer({
      'GET /api/v1/admin/audit': auditRoute,
      'GET /api/v1/auth/users': () => jsonResponse(200, { items: [adminUser], next_cursor: null }),
    });
    renderAdmin(server.fetch, '/admin/audit');
    const user = userEvent.setup();
    expect(await screen.findByText('auth.user_locked')).toBeInTheDocument();
    const first = server.find('GET', '/api/v1/admin/audit')[0];
    expect([...first.search.entries()]).toEqual([['limit', '50']]);

    await user.type(screen.getByLabelText('Action'), 'auth.*');
    await user.type(screen.getByLabelText('Target'), 'target-2');
    await user.click(screen.getAllByLabelText('Outcome')[0]);
    const failure = await screen.findAllByTitle('Failure');
    await user.click(failure[failure.length - 1]);
    await user.click(screen.getByText('Apply filters'));
    await waitFor(() => expect(server.find('GET', '/api/v1/admin/audit')).toHaveLength(2));
    const filtered = server.find('GET', '/api/v1/admin/audit')[1].search;
    expect(Object.fromEntries(filtered)).toEqual({ action: 'auth.*', target: 'target-2', outcome: 'failure', limit: '50' });

    await user.click(await screen.findByText('Load more'));
    expect(await screen.findByText('target-1')).toBeInTheDocument();
    const more = server.find('GET', '/api/v1/admin/audit')[2].search;
    expect(Object.fromEntries(more)).toEqual({
      action: 'auth.*',
      target: 'target-2',
      outcome: 'failure',
      limit: '50',
      cursor: 'c1',
    });
    // appended, not replaced; and no more pages
    expect(screen.getByText('target-3')).toBeInTheDocument();
    expect(screen.queryByText('Load more')).toBeNull();
    // the actor's id is shown as their email
    expect(screen.getAllByText('root@example.com').length).toBeGreaterThan(0);
  });

  it('shows the server’s words for a bad filter', async () => {
    const server = fakeServer({
      'GET /api/v1/admin/audit': (call) =>
        call.search.get('action')
          ? jsonResponse(422, { error: { code: 'invalid_filter', message: 'action: `*` may only end a prefix, as in `auth.*`' } })
          : auditRoute(call),
    });
    renderAdmin(server.fetch, '/admin/audit');
    const user = userEvent.setup();
    await screen.findByText('auth.user_locked');
    await user.type(screen.getByLabelText('Action'), 'a*b');
    await user.click(screen.getByText('Apply filters'));
    expect(await screen.findByText('action: `*` may only end a prefix, as in `auth.*`')).toBeInTheDocument();
  });

  it('verifies the chain and reports a break in words', async () => {
    let report: VerifyReport = intact;
    const server = fakeServer({
      'GET /api/v1/admin/audit': auditRoute,
      'GET /api/v1/admin/audit/verify': () => jsonResponse(200, report),
    });
    renderAdmin(server.fetch, '/admin/audit');
    const user = userEvent.setup();
    await screen.findByText('auth.user_locked');
    await user.click(screen.getByText('Verify chain'));
    expect(await screen.findByText('The audit chain is intact.')).toBeInTheDocument();
    expect(screen.getByText(/3 entries checked in the database/)).toBeInTheDocument();

    report = {
      ...intact,
      first_broken: { seq: 2, id: 'e2', kind: 'hash_mismatch', reason: 'the stored hash does not match the entry' },
    };
    await user.click(screen.getByText('Verify chain'));
    expect(await screen.findByText('The audit chain is broken at entry 2 (id e2).')).toBeInTheDocument();
    expect(screen.getByText(/the stored hash does not match the entry/)).toBeInTheDocument();
  });

  it('exports with the filters through an authenticated download', async () => {
    const createObjectURL = vi.fn((_blob: Blob) => 'blob:audit');
    const revokeObjectURL = vi.fn();
    vi.stubGlobal('URL', Object.assign(URL, { createObjectURL, revokeObjectURL }));
    const clicked: HTMLAnchorElement[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this);
    });
    const csv = 'seq,id,at\r\n1,e1,2026-03-01T12:00:00Z\r\n';
    const server = fakeServer({
      'GET /api/v1/admin/audit': auditRoute,
      'GET /api/v1/admin/audit/export': (c) =>
        c.search.get('format') === 'csv'
          ? new Response(csv, {
              status: 200,
              headers: { 'content-type': 'text/csv', 'content-disposition': 'attachment; filename="audit-12.csv"' },
            })
          : new Response('{}\n', { status: 200, headers: { 'content-type': 'application/x-ndjson' } }),
    });
    renderAdmin(server.fetch, '/admin/audit');
    const user = userEvent.setup();
    await screen.findByText('auth.user_locked');
    await user.type(screen.getByLabelText('Action'), 'auth.*');
    await user.click(screen.getByText('Apply filters'));
    await waitFor(() => expect(server.find('GET', '/api/v1/admin/audit')).toHaveLength(2));
    await user.click(screen.getByText('Export CSV'));

    await waitFor(() => expect(clicked).toHaveLength(1));
    const call = server.find('GET', '/api/v1/admin/audit/export')[0];
    expect(Object.fromEntries(call.search)).toEqual({ action: 'auth.*', format: 'csv' });
    expect(new Headers(call.init.headers).get('authorization')).toBe('Bearer tok');
    expect(clicked[0].download).toBe('audit-12.csv');
    expect(clicked[0].href).toBe('blob:audit');
    expect(await createObjectURL.mock.calls[0][0].text()).toBe(csv);
    expect(await screen.findByText('Downloaded audit-12.csv')).toBeInTheDocument();

    await user.click(screen.getByText('Export JSONL'));
    await waitFor(() => expect(server.find('GET', '/api/v1/admin/audit/export')).toHaveLength(2));
    expect(server.find('GET', '/api/v1/admin/audit/export')[1].search.get('format')).toBe('jsonl');
    await waitFor(() => expect(clicked).toHaveLength(2));
    expect(clicked[1].download).toBe('audit.jsonl');
    expect(document.querySelector('.ant-alert-error')).toBeNull();
  });
});
