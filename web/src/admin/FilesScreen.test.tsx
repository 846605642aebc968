import { screen, within } from '@testing-library/react';
import { beforeEach, describe, expect, it } from 'vitest';
import { makeUser } from '../test/fixtures';
import { desktop, jsonResponse } from '../test/helpers';
import { fileView } from '../files/testing';
import type { AdminFileView, StorageReport } from '../files/types';
import { adminUser, fakeServer, renderAdmin } from './testing';

const ada = makeUser('0190aaaa-0000-7000-8000-00000000000a', 'ada@example.com', { name: 'Ada Lovelace' });
const bob = makeUser('0190aaaa-0000-7000-8000-00000000000b', 'bob@example.com', { name: 'Bob' });

const infected: AdminFileView = {
  ...fileView('f-evil', 'invoice.docm', { kind: 'document', content_type: 'application/vnd.ms-word.document.macroEnabled.12' }),
  state: 'infected',
  threat: 'Win.Trojan.Emotet-1234',
  owner: ada.id,
};
const pending: AdminFileView = {
  ...fileView('f-wait', 'photos.zip', { kind: 'archive', content_type: 'application/zip', scanned_at: null }),
  state: 'pending',
  owner: bob.id,
};

function storage(scanner: StorageReport['scanner'], reconciliation: StorageReport['reconciliation'] = null): StorageReport {
  return {
    users: [
      { owner: bob.id, bytes: 5 * 1024 * 1024, files: 3 },
      { owner: ada.id, bytes: 2 * 1024 * 1024 * 1024, files: 120 },
    ],
    totals: { bytes: 2 * 1024 * 1024 * 1024 + 5 * 1024 * 1024, by_state: { pending: 1, clean: 118, infected: 1, unscanned: 3 } },
    scanner,
    reconciliation,
  };
}

function serve(scanner: StorageReport['scanner'], reconciliation: StorageReport['reconciliation'] = null) {
  return fakeServer({
    'GET /api/v1/auth/users': () => jsonResponse(200, { items: [adminUser, ada, bob], next_cursor: null }),
    'GET /api/v1/admin/files/storage': () => jsonResponse(200, storage(scanner, reconciliation)),
    'GET /api/v1/admin/files': (call) =>
      jsonResponse(200, {
        files: call.search.get('state') === 'infected' ? [infected] : call.search.get('state') === 'pending' ? [pending] : [],
        next: null,
      }),
  });
}

function rowOf(text: string): HTMLElement {
  return screen.getByText(text).closest('tr') as HTMLElement;
}

beforeEach(() => desktop());

describe('Files screen', { timeout: 90_000 }, () => {
  it('warns that uploads are not scanned and lists quarantined files with their threat and owner', async () => {
    const server = serve({ configured: false, address: null, reachable: null });
    renderAdmin(server.fetch, '/admin/files');
    expect(await screen.findByRole('heading', { name: 'Files', level: 3 })).toBeInTheDocument();
    expect(await screen.findByText(/Uploads are not virus-scanned: set files\.clamd_address/)).toBeInTheDocument();

    const quarantined = screen.getByRole('region', { name: 'Quarantined' });
    expect(await within(quarantined).findByText('infected: Win.Trojan.Emotet-1234 · quarantined')).toBeInTheDocument();
    expect(within(rowOf('invoice.docm')).getByText('ada@example.com')).toBeInTheDocument();
    const waiting = screen.getByRole('region', { name: 'Pending scan' });
    expect(await within(waiting).findByText('being scanned')).toBeInTheDocument();
    expect(within(rowOf('photos.zip')).getByText('bob@example.com')).toBeInTheDocument();
    expect(server.find('GET', '/api/v1/admin/files').map((c) => c.search.get('state')).sort()).toEqual(['infected', 'pending']);

    // Storage per user, the largest first, with names from the user directory.
    const users = screen.getByRole('region', { name: 'Storage by user' });
    const rows = within(users).getAllByRole('row').slice(1);
    expect(within(rows[0]!).getByText('ada@example.com')).toBeInTheDocument();
    expect(within(rows[0]!).getByText('Ada Lovelace')).toBeInTheDocument();
    expect(within(rows[0]!).getByText('2 GB')).toBeInTheDocument();
    expect(within(rows[1]!).getByText('5 MB')).toBeInTheDocument();
    expect(screen.getByText('Quarantined', { selector: '.ant-statistic-title' })).toBeInTheDocument();
  });

  it('warns when the configured scanner does not answer', async () => {
    renderAdmin(serve({ configured: true, address: 'tcp://clamd:3310', reachable: false }).fetch, '/admin/files');
    expect(await screen.findByText('The virus scanner at tcp://clamd:3310 does not answer.')).toBeInTheDocument();
    expect(screen.queryByText(/Uploads are not virus-scanned/)).toBeNull();
  });

  it('says which scanner checks uploads when it answers', async () => {
    renderAdmin(serve({ configured: true, address: 'tcp://clamd:3310', reachable: true }).fetch, '/admin/files');
    expect(await screen.findByText('Uploads are scanned by clamd at tcp://clamd:3310.')).toBeInTheDocument();
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('says when stored content was last checked and that every file has its content', async () => {
    const scanner = { configured: true, address: 'tcp://clamd:3310', reachable: true };
    const reconciliation = { at: '2026-03-01T12:00:00Z', blobs_checked: 130, orphans_removed: 2, missing: [], missing_count: 0 };
    renderAdmin(serve(scanner, reconciliation).fetch, '/admin/files');
    expect(await screen.findByText(/130 stored objects compared with the files, 2 that belonged to no file removed\. Every file has its content\./)).toBeInTheDocument();
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('says stored content has not been checked yet', async () => {
    renderAdmin(serve({ configured: true, address: null, reachable: true }).fetch, '/admin/files');
    expect(await screen.findByText(/Stored content has not been checked against the files yet/)).toBeInTheDocument();
  });

  it('warns about files whose content is missing, with their count and ids', async () => {
    const ids = Array.from({ length: 25 }, (_, i) => `0190bbbb-0000-7000-8000-${String(i).padStart(12, '0')}`);
    const scanner = { configured: true, address: 'tcp://clamd:3310', reachable: true };
    const reconciliation = { at: '2026-03-01T12:00:00Z', blobs_checked: 100, orphans_removed: 0, missing: ids, missing_count: 140 };
    renderAdmin(serve(scanner, reconciliation).fetch, '/admin/files');
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('The content of 140 files is missing from storage.');
    expect(alert).toHaveTextContent(/restore the content from a backup/);
    const list = within(alert).getByRole('list', { name: 'Files with missing content' });
    expect(within(list).getAllByRole('listitem')).toHaveLength(20);
    expect(within(list).getByText(ids[0]!)).toBeInTheDocument();
    expect(alert).toHaveTextContent('and 120 more');
  });

  it('warns about one file whose content is missing', async () => {
    const scanner = { configured: true, address: 'tcp://clamd:3310', reachable: true };
    const reconciliation = { at: '2026-03-01T12:00:00Z', blobs_checked: 1, orphans_removed: 0, missing: ['f-gone'], missing_count: 1 };
    renderAdmin(serve(scanner, reconciliation).fetch, '/admin/files');
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('The content of 1 file is missing from storage.');
    expect(alert).toHaveTextContent(/This file is still listed but cannot be read/);
    expect(within(alert).queryByText(/more$/)).toBeNull();
  });
});
