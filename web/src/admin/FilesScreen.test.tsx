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

function storage(scanner: StorageReport['scanner']): StorageReport {
  return {
    users: [
      { owner: bob.id, bytes: 5 * 1024 * 1024, files: 3 },
      { owner: ada.id, bytes: 2 * 1024 * 1024 * 1024, files: 120 },
    ],
    totals: { bytes: 2 * 1024 * 1024 * 1024 + 5 * 1024 * 1024, by_state: { pending: 1, clean: 118, infected: 1, unscanned: 3 } },
    scanner,
  };
}

function serve(scanner: StorageReport['scanner']) {
  return fakeServer({
    'GET /api/v1/auth/users': () => jsonResponse(200, { items: [adminUser, ada, bob], next_cursor: null }),
    'GET /api/v1/admin/files/storage': () => jsonResponse(200, storage(scanner)),
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
});
