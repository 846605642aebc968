import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { desktop, errorResponse, jsonResponse, routes, type Handler } from '../test/helpers';
import { FakeXHR, fileView, renderFiles } from './testing';
import type { FilesUsage, FileView, LinkView } from './types';

const MiB = 1024 * 1024;

const usage = (extra: Partial<FilesUsage> = {}): FilesUsage => ({
  usage: { bytes: 512 * MiB, files: 4 },
  quota: { max_bytes: 1024 * MiB, max_files: 1000 },
  max_file_bytes: 100 * MiB,
  scanning: true,
  allowed_kinds: ['image', 'pdf', 'text'],
  ...extra,
});

const report = fileView('f-report', 'report.pdf');
const pending = fileView('f-pending', 'backup.zip', { kind: 'archive', content_type: 'application/zip', state: 'pending', scanned_at: null });
const infected = fileView('f-evil', 'invoice.docm', {
  kind: 'document',
  state: 'infected',
  threat: 'Eicar-Test-Signature',
});
const cat = fileView('f-cat', 'cat.png', {
  kind: 'image',
  content_type: 'image/png',
  state: 'unscanned',
  has_thumbnail: true,
  width: 640,
  height: 480,
  scanned_at: null,
});

function serve(extra: Record<string, Handler> = {}, files: FileView[] = [report, pending, infected, cat], scanning = true) {
  return routes({
    'GET /api/v1/files/usage': () => jsonResponse(200, usage({ scanning })),
    'GET /api/v1/files': () => jsonResponse(200, { files, next: null }),
    'GET /api/v1/files/f-cat/thumbnail': () => new Response(new Blob(['png'], { type: 'image/png' }), { status: 200 }),
    // Asked for again while being scanned (every POLL_MS): still pending. Unanswered (404),
    // the page would drop it as deleted, and a slow test would miss it.
    'GET /api/v1/files/f-pending': () => jsonResponse(200, pending),
    ...extra,
  });
}

/** The table row that shows a file. */
async function row(name: string): Promise<HTMLElement> {
  const cell = await screen.findByText(name, { selector: '.ant-table-row *' });
  return cell.closest('tr') as HTMLElement;
}

function fileInput(): HTMLInputElement {
  return document.querySelector('input[type=file]') as HTMLInputElement;
}

let objectUrls = 0;
beforeEach(() => {
  desktop();
  FakeXHR.reset();
  vi.stubGlobal('XMLHttpRequest', FakeXHR);
  objectUrls = 0;
  Object.defineProperty(URL, 'createObjectURL', { configurable: true, writable: true, value: () => `blob:test/${++objectUrls}` });
  Object.defineProperty(URL, 'revokeObjectURL', { configurable: true, writable: true, value: () => {} });
});
afterEach(() => {
  vi.unstubAllGlobals();
  localStorage.clear();
});

describe('FilesPage', { timeout: 60_000 }, () => {
  it('shows the storage used, the notice that nothing is scanned, and each file’s state', async () => {
    renderFiles(serve({}, [report, pending, infected, cat], false).fetch);
    expect(await screen.findByText('512 MB of 1 GB used · 4 of 1,000 files')).toBeInTheDocument();
    expect(screen.getByRole('progressbar', { name: 'Storage used' })).toHaveAttribute('aria-valuenow', '50');
    expect(screen.getByText('Files are not virus-scanned on this server')).toBeInTheDocument();
    expect(screen.getByText(/Up to 100 MB a file\. Allowed: images, PDFs, text files\./)).toBeInTheDocument();

    expect(within(await row('report.pdf')).getByText('clean')).toBeInTheDocument();
    expect(within(await row('backup.zip')).getByText('being scanned')).toBeInTheDocument();
    const evil = await row('invoice.docm');
    expect(within(evil).getByText('infected: Eicar-Test-Signature · quarantined')).toBeInTheDocument();
    expect(within(evil).getByRole('button', { name: 'Download invoice.docm' })).toBeDisabled();
    expect(within(evil).getByRole('button', { name: 'Share invoice.docm' })).toBeDisabled();
    expect(within(evil).getByRole('button', { name: 'Preview invoice.docm' })).toBeDisabled();
    const image = await row('cat.png');
    expect(within(image).getByText('unscanned')).toBeInTheDocument();
    expect(within(image).getByText('Image · 640×480')).toBeInTheDocument();
    // The thumbnail is read with the token, as a blob.
    expect(await within(image).findByRole('img', { name: 'Thumbnail of cat.png' })).toHaveAttribute('src', expect.stringMatching(/^blob:/));
    expect(within(await row('report.pdf')).getByRole('button', { name: 'Download report.pdf' })).toBeEnabled();
  });

  it('previews an image from its preview variant, read with the token', async () => {
    const server = serve({
      'GET /api/v1/files/f-cat/preview': () => new Response(new Blob(['jpeg'], { type: 'image/jpeg' }), { status: 200 }),
    });
    // The dialog is a lazy chunk with the Markdown renderer: loaded first, it is not timed.
    await import('./PreviewDialog');
    renderFiles(server.fetch);
    const user = userEvent.setup();
    await user.click(within(await row('cat.png')).getByRole('button', { name: 'Preview cat.png' }));
    // (antd names every element "test-id" in tests, so the dialog's label may point elsewhere.)
    const dialog = await screen.findByRole('dialog');
    expect(within(dialog).getByText('cat.png', { selector: '.ant-modal-title' })).toBeInTheDocument();
    expect(await within(dialog).findByRole('img', { name: 'cat.png' })).toHaveAttribute('src', expect.stringMatching(/^blob:/));
    expect(server.calls('GET /api/v1/files/f-cat/preview')).toHaveLength(1);
    expect(within(await row('backup.zip')).getByRole('button', { name: 'Preview backup.zip' })).toBeDisabled();
  });

  it('says nothing about scanning when a scanner is configured', async () => {
    renderFiles(serve().fetch);
    expect(await screen.findByText('512 MB of 1 GB used · 4 of 1,000 files')).toBeInTheDocument();
    expect(screen.queryByText('Files are not virus-scanned on this server')).toBeNull();
  });

  it('uploads a chosen file with XHR and FormData, showing its progress and speed, then lists it', async () => {
    const server = serve({}, [report]);
    renderFiles(server.fetch);
    await row('report.pdf');
    let now = 1_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => now);
    const user = userEvent.setup();
    const photo = new File([new Uint8Array(2 * MiB)], 'photo.jpg', { type: 'image/jpeg' });
    await user.upload(fileInput(), photo);

    await waitFor(() => expect(FakeXHR.sent).toHaveLength(1));
    const xhr = FakeXHR.sent[0]!;
    expect(`${xhr.method} ${xhr.url}`).toBe('POST /api/v1/files');
    expect(xhr.headers.authorization).toBe('Bearer tok');
    expect(xhr.body).toBeInstanceOf(FormData);
    expect(((xhr.body as FormData).get('file') as File).name).toBe('photo.jpg');

    const uploads = screen.getByRole('list', { name: 'Uploads' });
    expect(within(uploads).getByText('photo.jpg')).toBeInTheDocument();
    now += 1_000;
    act(() => xhr.progress(MiB + 100, 2 * MiB + 200));
    expect(await within(uploads).findByText('1 MB of 2 MB · 1 MB/s')).toBeInTheDocument();
    expect(within(uploads).getByRole('progressbar', { name: 'Upload of photo.jpg' })).toHaveAttribute('aria-valuenow', '50');

    act(() => xhr.respond(201, fileView('f-photo', 'photo.jpg', { kind: 'image', content_type: 'image/jpeg', size: 2 * MiB })));
    expect(await screen.findByText('photo.jpg was uploaded.')).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByRole('list', { name: 'Uploads' })).toBeNull());
    const rows = screen.getAllByRole('row').slice(1);
    expect(within(rows[0]!).getByText('photo.jpg')).toBeInTheDocument();
    // The storage used is read again.
    expect(server.calls('GET /api/v1/files/usage').length).toBeGreaterThanOrEqual(2);
  });

  it('shows the server’s reason when an upload is refused, and retries', async () => {
    renderFiles(serve({}, []).fetch);
    expect(await screen.findByText('No files yet: upload one above.')).toBeInTheDocument();
    const user = userEvent.setup();
    await user.upload(fileInput(), new File(['MZ…'], 'setup.exe', { type: 'application/x-msdownload' }));
    await waitFor(() => expect(FakeXHR.sent).toHaveLength(1));
    act(() =>
      FakeXHR.sent[0]!.respond(422, {
        error: { code: 'file_type_not_allowed', message: 'Programs (application/x-msdownload) cannot be stored here.', request_id: 'r1' },
      }),
    );
    expect(await screen.findByRole('alert')).toHaveTextContent('Programs (application/x-msdownload) cannot be stored here.');

    await user.click(screen.getByRole('button', { name: 'Retry upload of setup.exe' }));
    await waitFor(() => expect(FakeXHR.sent).toHaveLength(2));
    act(() =>
      FakeXHR.sent[1]!.respond(429, { error: { code: 'too_many_uploads', message: 'Wait a minute before uploading more.' } }),
    );
    expect(await screen.findByRole('alert')).toHaveTextContent('Wait a minute before uploading more.');
    await user.click(screen.getByRole('button', { name: 'Dismiss upload of setup.exe' }));
    await waitFor(() => expect(screen.queryByRole('list', { name: 'Uploads' })).toBeNull());
  });

  it('refuses a file over the size limit without sending it', async () => {
    renderFiles(serve({}, []).fetch);
    expect(await screen.findByText(/Up to 100 MB a file/)).toBeInTheDocument();
    const huge = new File(['x'], 'huge.iso');
    Object.defineProperty(huge, 'size', { value: 200 * MiB });
    await userEvent.setup().upload(fileInput(), huge);
    expect(await screen.findByRole('alert')).toHaveTextContent('huge.iso is 200 MB; files can be at most 100 MB.');
    expect(FakeXHR.sent).toHaveLength(0);
    expect(screen.queryByRole('button', { name: 'Retry upload of huge.iso' })).toBeNull();
  });

  it('cancels an upload', async () => {
    renderFiles(serve({}, []).fetch);
    expect(await screen.findByText('No files yet: upload one above.')).toBeInTheDocument();
    const user = userEvent.setup();
    await user.upload(fileInput(), new File(['hello'], 'hello.txt', { type: 'text/plain' }));
    await waitFor(() => expect(FakeXHR.sent).toHaveLength(1));
    await user.click(screen.getByRole('button', { name: 'Cancel upload of hello.txt' }));
    expect(FakeXHR.sent[0]!.aborted).toBe(true);
    await waitFor(() => expect(screen.queryByRole('list', { name: 'Uploads' })).toBeNull());
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('uploads an image pasted from the clipboard', async () => {
    renderFiles(serve({}, []).fetch);
    expect(await screen.findByText('No files yet: upload one above.')).toBeInTheDocument();
    const image = new File(['png'], 'image.png', { type: 'image/png' });
    const paste = new Event('paste', { bubbles: true, cancelable: true });
    Object.defineProperty(paste, 'clipboardData', { value: { files: [image], items: [] } });
    act(() => {
      document.body.dispatchEvent(paste);
    });
    await waitFor(() => expect(FakeXHR.sent).toHaveLength(1));
    const sent = (FakeXHR.sent[0]!.body as FormData).get('file') as File;
    expect(sent.name).toMatch(/^Pasted image \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d\.png$/);
    expect(sent.type).toBe('image/png');
    expect(paste.defaultPrevented).toBe(true);
  });

  it('creates a share link and shows it as an absolute address, and revokes links', async () => {
    const old: LinkView = {
      id: 'l-old',
      url: null,
      expires_at: '2099-01-01T00:00:00.000Z',
      revoked: false,
      created_at: '2026-03-01T12:00:00.000Z',
    };
    const server = serve({
      'GET /api/v1/files/f-report/links': () => jsonResponse(200, { links: [old] }),
      'POST /api/v1/files/f-report/links': () =>
        jsonResponse(201, { id: 'l-new', url: '/f/Zm9vYmFy', expires_at: '2099-01-08T00:00:00.000Z', revoked: false, created_at: '2026-03-02T12:00:00.000Z' }),
      'DELETE /api/v1/files/f-report/links/l-old': () => new Response(null, { status: 204 }),
    });
    renderFiles(server.fetch);
    const user = userEvent.setup();
    await user.click(within(await row('report.pdf')).getByRole('button', { name: 'Share report.pdf' }));
    const dialog = await screen.findByRole('dialog', { name: 'Share report.pdf' });
    expect(await within(dialog).findByText('active')).toBeInTheDocument();

    await user.click(within(dialog).getByRole('combobox', { name: 'Link lasts' }));
    await user.click(await screen.findByTitle('7 days'));
    await user.click(within(dialog).getByRole('button', { name: /Create link/ }));
    expect(await within(dialog).findByRole('textbox', { name: 'Share link' })).toHaveValue(`${window.location.origin}/f/Zm9vYmFy`);
    expect(server.calls('POST /api/v1/files/f-report/links')[0]!.body).toEqual({ hours: 168 });
    expect(within(dialog).getByRole('button', { name: 'Copy link' })).toBeInTheDocument();

    await user.click(within(dialog).getByRole('button', { name: `Revoke the link created ${new Date(old.created_at).toLocaleString()}` }));
    const confirm = await waitFor(() => {
      const pop = document.querySelector('.ant-popconfirm');
      expect(pop).not.toBeNull();
      return pop as HTMLElement;
    });
    await user.click(within(confirm).getByRole('button', { name: 'Revoke' }));
    expect(await within(dialog).findByText('revoked')).toBeInTheDocument();
    expect(server.calls('DELETE /api/v1/files/f-report/links/l-old')).toHaveLength(1);
  });

  it('says why a file cannot be shared', async () => {
    const server = serve({
      'GET /api/v1/files/f-report/links': () => jsonResponse(200, { links: [] }),
      'POST /api/v1/files/f-report/links': () => errorResponse(409, 'file_not_ready', 'The file is still being scanned.'),
    });
    renderFiles(server.fetch);
    const user = userEvent.setup();
    await user.click(within(await row('report.pdf')).getByRole('button', { name: 'Share report.pdf' }));
    const dialog = await screen.findByRole('dialog', { name: 'Share report.pdf' });
    await user.click(within(dialog).getByRole('button', { name: /Create link/ }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('No link was made: The file is still being scanned.');
  });

  it('asks again for files being scanned until their state is known', async () => {
    let state: FileView['state'] = 'pending';
    const server = serve({ 'GET /api/v1/files/f-pending': () => jsonResponse(200, { ...pending, state }) }, [pending]);
    renderFiles(server.fetch, 50);
    expect(within(await row('backup.zip')).getByText('being scanned')).toBeInTheDocument();
    await waitFor(() => expect(server.calls('GET /api/v1/files/f-pending').length).toBeGreaterThanOrEqual(1));
    state = 'clean';
    expect(await within(await row('backup.zip')).findByText('clean')).toBeInTheDocument();
    const asked = server.calls('GET /api/v1/files/f-pending').length;
    await new Promise((r) => setTimeout(r, 200));
    expect(server.calls('GET /api/v1/files/f-pending')).toHaveLength(asked);
  });

  it('asks again for a new image until its thumbnail is made, then shows it', async () => {
    let made = false;
    const fresh = fileView('f-new', 'new.png', {
      kind: 'image',
      content_type: 'image/png',
      state: 'unscanned',
      scanned_at: null,
      created_at: new Date().toISOString(),
    });
    const server = serve(
      {
        'GET /api/v1/files/f-new': () => jsonResponse(200, { ...fresh, has_thumbnail: made, width: made ? 2 : null, height: made ? 2 : null }),
        'GET /api/v1/files/f-new/thumbnail': () => new Response(new Blob(['png'], { type: 'image/png' }), { status: 200 }),
      },
      // An old image without a thumbnail (its variants failed) is not asked for.
      [fresh, fileView('f-old', 'old.png', { kind: 'image', content_type: 'image/png', state: 'clean' })],
    );
    renderFiles(server.fetch, 50);
    const image = await row('new.png');
    await waitFor(() => expect(server.calls('GET /api/v1/files/f-new').length).toBeGreaterThanOrEqual(1));
    expect(within(image).queryByRole('img', { name: 'Thumbnail of new.png' })).toBeNull();
    made = true;
    expect(await within(await row('new.png')).findByRole('img', { name: 'Thumbnail of new.png' })).toHaveAttribute('src', expect.stringMatching(/^blob:/));
    const asked = server.calls('GET /api/v1/files/f-new').length;
    await new Promise((r) => setTimeout(r, 200));
    expect(server.calls('GET /api/v1/files/f-new')).toHaveLength(asked);
    expect(server.calls('GET /api/v1/files/f-old')).toHaveLength(0);
  });

  it('deletes a file after confirmation, and loads more with the cursor', async () => {
    const more = fileView('f-old', 'old.txt', { kind: 'text' });
    const server = routes({
      'GET /api/v1/files/usage': () => jsonResponse(200, usage()),
      'GET /api/v1/files': (_, url) =>
        url.includes('before=')
          ? jsonResponse(200, { files: [more], next: null })
          : jsonResponse(200, { files: [report], next: 'f-report' }),
      'DELETE /api/v1/files/f-report': () => new Response(null, { status: 204 }),
    });
    renderFiles(server.fetch);
    const user = userEvent.setup();
    await user.click(await screen.findByRole('button', { name: 'Load more' }));
    expect(await row('old.txt')).toBeInTheDocument();
    expect(server.calls('GET /api/v1/files')[1]!.url).toBe('/api/v1/files?before=f-report&limit=30');
    expect(screen.queryByRole('button', { name: 'Load more' })).toBeNull();

    await user.click(within(await row('report.pdf')).getByRole('button', { name: 'Delete report.pdf' }));
    expect(await screen.findByText('Delete report.pdf?')).toBeInTheDocument();
    expect(server.calls('DELETE /api/v1/files/f-report')).toHaveLength(0);
    await user.click(screen.getByRole('button', { name: 'Delete' }));
    expect(await screen.findByText('report.pdf was deleted.')).toBeInTheDocument();
    await waitFor(() => expect(screen.queryByText('report.pdf', { selector: '.ant-table-row *' })).toBeNull());
    expect(server.calls('DELETE /api/v1/files/f-report')).toHaveLength(1);
  });
});
