import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { filesApi } from '../files/api';
import { FakeXHR, fileView, signedIn } from '../files/testing';
import type { FileView } from '../files/types';
import { jsonResponse, routes, type Handler } from '../test/helpers';
import { Composer } from './Composer';

describe('Composer', () => {
  it('sends on Enter and makes a new line on Shift+Enter', async () => {
    const onSend = vi.fn();
    render(<Composer streaming={false} onSend={onSend} onStop={vi.fn()} />);
    const box = screen.getByLabelText('Message');
    const user = userEvent.setup();
    await user.type(box, 'line one{Shift>}{Enter}{/Shift}line two');
    expect(onSend).not.toHaveBeenCalled();
    await user.keyboard('{Enter}');
    expect(onSend).toHaveBeenCalledWith('line one\nline two', []);
    expect(box).toHaveValue('');
  });

  it('does not send blank messages', async () => {
    const onSend = vi.fn();
    render(<Composer streaming={false} onSend={onSend} onStop={vi.fn()} />);
    await userEvent.setup().type(screen.getByLabelText('Message'), '   {Enter}');
    expect(onSend).not.toHaveBeenCalled();
    expect(screen.getByRole('button', { name: 'Send message' })).toBeDisabled();
  });

  it('shows a stop button while streaming, and Esc stops', async () => {
    const onStop = vi.fn();
    const onSend = vi.fn();
    render(<Composer streaming onSend={onSend} onStop={onStop} />);
    const user = userEvent.setup();
    await user.type(screen.getByLabelText('Message'), 'next{Enter}');
    expect(onSend).not.toHaveBeenCalled();
    await user.keyboard('{Escape}');
    expect(onStop).toHaveBeenCalledTimes(1);
    await user.click(screen.getByRole('button', { name: 'Stop generating' }));
    expect(onStop).toHaveBeenCalledTimes(2);
  });

  it('offers no attach button without the files service', () => {
    render(<Composer streaming={false} onSend={vi.fn()} onStop={vi.fn()} />);
    expect(screen.queryByRole('button', { name: 'Attach files' })).toBeNull();
  });
});

describe('Composer attachments', { timeout: 60_000 }, () => {
  const notes = fileView('f-notes', 'notes.pdf', { size: 2048, state: 'pending', scanned_at: null });
  const shot = fileView('f-shot', 'shot.png', { kind: 'image', content_type: 'image/png', size: 3, state: 'unscanned', scanned_at: null });

  beforeEach(() => {
    FakeXHR.reset();
    vi.stubGlobal('XMLHttpRequest', FakeXHR);
  });
  afterEach(() => {
    vi.unstubAllGlobals();
    localStorage.clear();
  });

  /** The composer with the files service over `table`; uploads answer with `uploaded` in turn. */
  function renderComposer(table: Record<string, Handler>, uploaded: FileView[], onSend = vi.fn()) {
    const server = routes(table);
    const answers = [...uploaded];
    FakeXHR.onSend = (xhr) => {
      const view = answers.shift();
      queueMicrotask(() => (view ? xhr.respond(201, view) : xhr.respond(500, { error: { code: 'internal', message: 'no' } })));
    };
    const files = filesApi(signedIn(server.fetch));
    render(<Composer streaming={false} onSend={onSend} onStop={vi.fn()} files={files} attachmentPollMs={20} />);
    return { server, onSend };
  }

  const chip = (name: string) => within(screen.getByRole('list', { name: 'Attachments' })).getByRole('listitem', { name: new RegExp(`^${name.replace('.', '\\.')},`) });

  it('attaches a chosen file, waits for its scan, then sends its id and clears the chips', async () => {
    // Being scanned until the test says it is clean.
    let state: FileView['state'] = 'pending';
    const { server, onSend } = renderComposer(
      { 'GET /api/v1/files/f-notes': () => jsonResponse(200, { ...notes, state }) },
      [notes],
    );
    const user = userEvent.setup();
    const picker = screen.getByLabelText('Choose files to attach');
    await user.upload(picker, new File(['%PDF-1.4'], 'notes.pdf', { type: 'application/pdf' }));

    expect(await screen.findByRole('listitem', { name: 'notes.pdf, scanning for viruses' })).toBeInTheDocument();
    expect(FakeXHR.sent).toHaveLength(1);
    expect(((FakeXHR.sent[0]!.body as FormData).get('file') as File).name).toBe('notes.pdf');
    // A file being scanned cannot go yet, with or without text.
    await user.type(screen.getByLabelText('Message'), 'Read this');
    const send = screen.getByRole('button', { name: 'Send message' });
    expect(send).toBeDisabled();
    expect(screen.getByText('Waiting for a file to be ready…')).toBeInTheDocument();
    await user.keyboard('{Enter}');
    expect(onSend).not.toHaveBeenCalled();
    // Asked for again and again while it is scanned.
    await waitFor(() => expect(server.calls('GET /api/v1/files/f-notes').length).toBeGreaterThanOrEqual(2));
    expect(chip('notes.pdf')).toHaveAccessibleName('notes.pdf, scanning for viruses');

    state = 'clean';
    expect(await screen.findByRole('listitem', { name: 'notes.pdf, ready' })).toBeInTheDocument();
    expect(chip('notes.pdf')).toHaveTextContent('2 KB');
    expect(send).toBeEnabled();
    await user.click(send);
    expect(onSend).toHaveBeenCalledWith('Read this', [
      { file_id: 'f-notes', name: 'notes.pdf', content_type: 'application/pdf', kind: 'pdf', size: 2048 },
    ]);
    expect(screen.queryByRole('list', { name: 'Attachments' })).toBeNull();
    expect(screen.getByLabelText('Message')).toHaveValue('');
  });

  it('attaches an image pasted into the box, and sends it without text', async () => {
    const { onSend } = renderComposer({}, [shot]);
    const image = new File(['png'], 'image.png', { type: 'image/png' });
    const paste = new Event('paste', { bubbles: true, cancelable: true });
    Object.defineProperty(paste, 'clipboardData', { value: { files: [image], items: [] } });
    act(() => {
      screen.getByLabelText('Message').dispatchEvent(paste);
    });
    expect(paste.defaultPrevented).toBe(true);
    await waitFor(() => expect(FakeXHR.sent).toHaveLength(1));
    const sent = (FakeXHR.sent[0]!.body as FormData).get('file') as File;
    expect(sent.name).toMatch(/^Pasted image \d{4}-\d\d-\d\d \d\d\.\d\d\.\d\d\.png$/);
    // Unscanned (no scanner on this server): ready at once.
    expect(await screen.findByRole('listitem', { name: 'shot.png, ready' })).toBeInTheDocument();
    await userEvent.setup().click(screen.getByRole('button', { name: 'Send message' }));
    expect(onSend).toHaveBeenCalledWith('', [{ file_id: 'f-shot', name: 'shot.png', content_type: 'image/png', kind: 'image', size: 3 }]);
  });

  it('shows an infected file as failed and holds the message until it is removed', async () => {
    const { onSend } = renderComposer(
      { 'GET /api/v1/files/f-notes': () => jsonResponse(200, { ...notes, state: 'infected', threat: 'Eicar-Test-Signature' }) },
      [notes],
    );
    const user = userEvent.setup();
    await user.upload(screen.getByLabelText('Choose files to attach'), new File(['x'], 'notes.pdf', { type: 'application/pdf' }));
    const failed = await screen.findByRole('listitem', { name: 'notes.pdf, failed' });
    expect(failed).toHaveTextContent('The virus scanner found a threat (Eicar-Test-Signature): the file is quarantined.');
    await user.type(screen.getByLabelText('Message'), 'hi');
    expect(screen.getByRole('button', { name: 'Send message' })).toBeDisabled();
    expect(screen.getByText('Remove the files that failed to send the message.')).toBeInTheDocument();

    await user.click(within(failed).getByRole('button', { name: 'Remove notes.pdf' }));
    expect(screen.queryByRole('list', { name: 'Attachments' })).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Send message' }));
    expect(onSend).toHaveBeenCalledWith('hi', []);
  });

  it('cancels an upload under way, and takes at most 8 files', async () => {
    renderComposer({}, []);
    // Uploads that never finish.
    FakeXHR.onSend = null;
    const user = userEvent.setup();
    const many = Array.from({ length: 9 }, (_, i) => new File(['x'], `f${i}.txt`, { type: 'text/plain' }));
    await user.upload(screen.getByLabelText('Choose files to attach'), many);
    expect(await screen.findByText('A message can carry at most 8 files: one was not attached.')).toBeInTheDocument();
    expect(within(screen.getByRole('list', { name: 'Attachments' })).getAllByRole('listitem')).toHaveLength(8);
    expect(FakeXHR.sent).toHaveLength(8);
    expect(screen.getByRole('button', { name: 'Attach files' })).toBeDisabled();

    await user.click(within(chip('f0.txt')).getByRole('button', { name: 'Cancel upload of f0.txt' }));
    expect(FakeXHR.sent[0]!.aborted).toBe(true);
    await waitFor(() => expect(within(screen.getByRole('list', { name: 'Attachments' })).getAllByRole('listitem')).toHaveLength(7));
    expect(screen.getByRole('button', { name: 'Attach files' })).toBeEnabled();
  });

  it('gives the text and files back when the message was not taken', async () => {
    const onSend = vi.fn(async () => false);
    const { server } = renderComposer({ 'GET /api/v1/files/f-shot': () => jsonResponse(200, shot) }, [shot], onSend);
    const user = userEvent.setup();
    await user.upload(screen.getByLabelText('Choose files to attach'), new File(['png'], 'shot.png', { type: 'image/png' }));
    await screen.findByRole('listitem', { name: 'shot.png, ready' });
    await user.type(screen.getByLabelText('Message'), 'Look{Enter}');
    expect(onSend).toHaveBeenCalledTimes(1);
    // Asked about again, then ready to be sent once more.
    await waitFor(() => expect(server.calls('GET /api/v1/files/f-shot')).toHaveLength(1));
    expect(await screen.findByRole('listitem', { name: 'shot.png, ready' })).toBeInTheDocument();
    expect(screen.getByLabelText('Message')).toHaveValue('Look');
  });
});
