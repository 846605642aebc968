import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { App as AntApp } from 'antd';
import { MemoryRouter, Route, Routes } from 'react-router';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { api } from '../api/client';
import type { ChatAttachment, Conversation, Reaction } from '../api/types';
import { AuthProvider } from '../auth/AuthContext';
import { FakeXHR, fileView } from '../files/testing';
import { conversation, pathMessage, testUser } from '../test/fixtures';
import { desktop, errorResponse, jsonResponse, routes, streamOf, type Handler } from '../test/helpers';
import ChatPage from './ChatPage';
import { openDialog } from './testing';

// Whole screens with antd drawers and dialogs in jsdom: slow on a busy machine.
vi.setConfig({ testTimeout: 60_000 });

const now = new Date().toISOString();
const message = (id: string, role: 'user' | 'assistant', content: string, parent: string | null, reactions: Reaction[] = []) =>
  pathMessage(id, role, content, parent, { model: 'm', created_at: now, updated_at: now, reactions });

const models = () =>
  jsonResponse(200, { items: [{ id: 'm', provider: 'p', default: true, local: null, context_tokens: null }] });

function serve(table: Record<string, Handler>) {
  const server = routes({ 'GET /api/v1/models': models, ...table });
  vi.stubGlobal('fetch', server.fetch);
  vi.stubGlobal('WebSocket', undefined);
  return server;
}

function renderChat(path: string) {
  render(
    <AntApp>
      <AuthProvider client={api}>
        <MemoryRouter initialEntries={[path]}>
          <Routes>
            <Route path="/c/:conversationId" element={<ChatPage />} />
            <Route path="/" element={<ChatPage />} />
          </Routes>
        </MemoryRouter>
      </AuthProvider>
    </AntApp>,
  );
}

beforeEach(() => {
  api.setSession({ access_token: 'token', expires_in: 900, user: testUser });
  desktop();
});

afterEach(() => {
  vi.unstubAllGlobals();
  api.clearSession();
  localStorage.clear();
});

const patchWith = (c: Conversation): Handler => (init) => jsonResponse(200, { ...c, ...JSON.parse(String(init!.body)) });

/** A new chat (new1) that the server creates and whose first answer it refuses. */
const refusedNewChat = (): Record<string, Handler> => ({
  'POST /api/v1/conversations': () => jsonResponse(201, conversation('new1', '')),
  'GET /api/v1/conversations/new1/messages': () => jsonResponse(200, { items: [] }),
  'POST /api/v1/conversations/new1/messages': () => errorResponse(503, 'model_unavailable', 'down'),
});

/** The chat screen for a new chat, with the preset "Translator" chosen to start from. */
async function startFromTranslator() {
  renderChat('/');
  const user = userEvent.setup();
  await user.click(await screen.findByRole('combobox', { name: 'Start from preset' }));
  await user.click(await screen.findByTitle('Translator'));
  return user;
}

describe('ChatPage', () => {
  it('toggles reactions with POST and DELETE and shows the counts', async () => {
    const c1 = conversation('c1', 'Rust questions');
    const server = serve({
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [c1], next_cursor: null }),
      'GET /api/v1/conversations/c1/messages': () =>
        jsonResponse(200, {
          items: [message('q', 'user', 'How?', null), message('r', 'assistant', 'Like this.', 'q', [{ emoji: '🎉', count: 1, mine: true }])],
        }),
      'POST /api/v1/conversations/c1/messages/r/reactions': () =>
        jsonResponse(200, {
          items: [
            { emoji: '🎉', count: 1, mine: true },
            { emoji: '👍', count: 1, mine: true },
          ],
        }),
      'DELETE /api/v1/conversations/c1/messages/r/reactions/%F0%9F%91%8D': () =>
        jsonResponse(200, { items: [{ emoji: '🎉', count: 1, mine: true }] }),
    });
    renderChat('/c/c1');
    const answer = await screen.findByRole('article', { name: 'Assistant message' });
    const user = userEvent.setup();
    expect(within(answer).getByRole('button', { name: 'React 🎉' })).toHaveAttribute('aria-pressed', 'true');
    const thumbs = within(answer).getByRole('button', { name: 'React 👍' });
    expect(thumbs).toHaveAttribute('aria-pressed', 'false');

    await user.click(thumbs);
    await waitFor(() => expect(thumbs).toHaveAttribute('aria-pressed', 'true'));
    expect(thumbs).toHaveTextContent('👍1');
    expect(server.calls('POST /api/v1/conversations/c1/messages/r/reactions').map((r) => r.body)).toEqual([{ emoji: '👍' }]);

    await user.click(thumbs);
    await waitFor(() => expect(server.calls('DELETE /api/v1/conversations/c1/messages/r/reactions/%F0%9F%91%8D')).toHaveLength(1));
    await waitFor(() => expect(thumbs).toHaveAttribute('aria-pressed', 'false'));
    expect(thumbs).toHaveTextContent(/^👍$/);
    // Your own messages take reactions too.
    const question = screen.getByRole('article', { name: 'Your message' });
    expect(within(question).getByRole('button', { name: 'React ❤️' })).toBeInTheDocument();
  });

  it('takes back a reaction the server refused, and says why', async () => {
    const c1 = conversation('c1', 'Rust questions');
    serve({
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [c1], next_cursor: null }),
      'GET /api/v1/conversations/c1/messages': () =>
        jsonResponse(200, { items: [message('q', 'user', 'How?', null), message('r', 'assistant', 'Like this.', 'q')] }),
      'POST /api/v1/conversations/c1/messages/r/reactions': () =>
        errorResponse(404, 'not_found', 'no such message in this conversation'),
    });
    renderChat('/c/c1');
    const answer = await screen.findByRole('article', { name: 'Assistant message' });
    const heart = within(answer).getByRole('button', { name: 'React ❤️' });
    await userEvent.setup().click(heart);
    expect(await screen.findByRole('alert')).toHaveTextContent('no such message in this conversation');
    expect(heart).toHaveAttribute('aria-pressed', 'false');
  });

  it('moves a conversation to a folder and tags it, with PATCH', async () => {
    const c1 = conversation('c1', 'Rust questions');
    const c2 = conversation('c2', 'Bread', { folder: 'Kitchen' });
    const server = serve({
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [c1, c2], next_cursor: null }),
      'GET /api/v1/conversations/c1/messages': () => jsonResponse(200, { items: [] }),
      'PATCH /api/v1/conversations/c1': patchWith(c1),
    });
    renderChat('/c/c1');
    const nav = await screen.findByRole('navigation', { name: 'Conversations' });
    await within(nav).findByRole('link', { name: /Rust questions/ });
    const user = userEvent.setup();

    await user.click(within(nav).getByRole('button', { name: 'Actions for Rust questions' }));
    await user.click(await screen.findByText('Move to folder…'));
    const move = await openDialog('Move to folder');
    await user.type(within(move).getByRole('combobox', { name: 'Folder' }), 'Work');
    await user.click(within(move).getByRole('button', { name: 'Move' }));
    await waitFor(() => expect(within(nav).getByRole('heading', { name: 'Work' })).toBeInTheDocument());
    expect(server.calls('PATCH /api/v1/conversations/c1').map((r) => r.body)).toEqual([{ folder: 'Work' }]);
    const work = within(nav).getByRole('heading', { name: 'Work' }).closest('section')!;
    expect(within(work).getByRole('link', { name: /Rust questions/ })).toBeInTheDocument();
    expect(within(nav).getByRole('heading', { name: 'Kitchen' })).toBeInTheDocument();

    await user.click(within(nav).getByRole('button', { name: 'Actions for Rust questions' }));
    await user.click((await screen.findAllByText('Edit tags…')).at(-1)!);
    const tags = await openDialog('Edit tags');
    await user.type(within(tags).getByRole('combobox', { name: 'Tags' }), 'Borrowing{Enter}');
    await user.click(within(tags).getByRole('button', { name: 'Save' }));
    expect(await within(nav).findByRole('button', { name: 'Filter by tag borrowing' })).toBeInTheDocument();
    expect(server.calls('PATCH /api/v1/conversations/c1').map((r) => r.body)).toEqual([
      { folder: 'Work' },
      { tags: ['borrowing'] },
    ]);
  });

  it('exports one conversation as Markdown or JSON, with the name the server gives', async () => {
    const c1 = conversation('c1', 'Rust questions');
    const saved: string[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      saved.push(this.download);
    });
    URL.createObjectURL = vi.fn(() => 'blob:export');
    URL.revokeObjectURL = vi.fn();
    const server = serve({
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [c1], next_cursor: null }),
      'GET /api/v1/conversations/c1/messages': () => jsonResponse(200, { items: [] }),
      'GET /api/v1/conversations/c1/export': (_init, url) =>
        new URL(String(url), 'http://x').searchParams.get('format') === 'markdown'
          ? new Response('# Rust questions', {
              status: 200,
              headers: { 'content-type': 'text/markdown', 'content-disposition': 'attachment; filename="conversation-c1.md"' },
            })
          : errorResponse(404, 'not_found', 'conversation not found'),
    });
    renderChat('/c/c1');
    const nav = await screen.findByRole('navigation', { name: 'Conversations' });
    await within(nav).findByRole('link', { name: /Rust questions/ });
    const user = userEvent.setup();

    await user.click(within(nav).getByRole('button', { name: 'Actions for Rust questions' }));
    await user.click(await screen.findByText('Export as Markdown'));
    await waitFor(() => expect(saved).toEqual(['conversation-c1.md']));

    await user.click(within(nav).getByRole('button', { name: 'Actions for Rust questions' }));
    await user.click((await screen.findAllByText('Export as JSON')).at(-1)!);
    expect(await screen.findByText(/The export failed/)).toBeInTheDocument();
    expect(saved).toEqual(['conversation-c1.md']);
    expect(server.calls('GET /api/v1/conversations/c1/export')).toHaveLength(2);
  });

  it('creates a share link from the actions menu, shows its address and revokes it', async () => {
    const c1 = conversation('c1', 'Rust questions');
    const link = (token: string, revoked = false) => ({
      token,
      conversation_id: 'c1',
      url: `/s/${token}`,
      created_at: now,
      revoked,
    });
    let posts = 0;
    const server = serve({
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [c1], next_cursor: null }),
      'GET /api/v1/conversations/c1/messages': () => jsonResponse(200, { items: [] }),
      'GET /api/v1/conversations/c1/shares': () => jsonResponse(200, { items: [link('gone', true)] }),
      'POST /api/v1/conversations/c1/shares': () =>
        ++posts === 1
          ? errorResponse(422, 'nothing_to_share', 'The conversation has no finished messages.')
          : jsonResponse(201, link('tok1')),
      'DELETE /api/v1/shares/tok1': () => new Response(null, { status: 204 }),
    });
    renderChat('/c/c1');
    const nav = await screen.findByRole('navigation', { name: 'Conversations' });
    await within(nav).findByRole('link', { name: /Rust questions/ });
    const user = userEvent.setup();

    await user.click(within(nav).getByRole('button', { name: 'Actions for Rust questions' }));
    await user.click(await screen.findByText('Share link…'));
    const dialog = await openDialog('Share “Rust questions”');
    // Revoked links are not listed.
    expect(await within(dialog).findByText('No links yet.')).toBeInTheDocument();

    // The server's reason when there is nothing to share.
    await user.click(within(dialog).getByRole('button', { name: 'Create link' }));
    expect(await within(dialog).findByRole('alert')).toHaveTextContent('The conversation has no finished messages.');

    await user.click(within(dialog).getByRole('button', { name: 'Create link' }));
    const url = new URL('/s/tok1', window.location.origin).toString();
    expect(await within(dialog).findByRole('textbox', { name: 'New share link' })).toHaveValue(url);
    expect(within(dialog).getByRole('link', { name: url })).toHaveAttribute('href', url);
    expect(within(dialog).queryByRole('alert')).not.toBeInTheDocument();

    await user.click(within(dialog).getByRole('button', { name: /^Revoke the link created/ }));
    await user.click(await screen.findByRole('button', { name: 'Revoke' }));
    await waitFor(() => expect(within(dialog).queryByRole('link', { name: url })).not.toBeInTheDocument());
    expect(within(dialog).queryByRole('textbox', { name: 'New share link' })).not.toBeInTheDocument();
    expect(within(dialog).getByText('No links yet.')).toBeInTheDocument();
    expect(server.calls('DELETE /api/v1/shares/tok1')).toHaveLength(1);
  });

  it('shows the archived conversations and unarchives one', async () => {
    const c1 = conversation('c1', 'Rust questions');
    const old = conversation('a1', 'Old trip plans', { archived: true });
    const server = serve({
      'GET /api/v1/conversations': (_init, url) =>
        jsonResponse(200, { items: url.includes('archived=true') ? [old] : [c1], next_cursor: null }),
      'GET /api/v1/conversations/c1/messages': () => jsonResponse(200, { items: [] }),
      'PATCH /api/v1/conversations/a1': patchWith(old),
    });
    renderChat('/c/c1');
    const nav = await screen.findByRole('navigation', { name: 'Conversations' });
    await within(nav).findByRole('link', { name: /Rust questions/ });
    const user = userEvent.setup();
    await user.click(within(nav).getByRole('button', { name: 'Archived conversations' }));
    expect(await within(nav).findByRole('link', { name: /Old trip plans/ })).toBeInTheDocument();
    expect(within(nav).queryByRole('link', { name: /Rust questions/ })).toBeNull();
    expect(server.calls('GET /api/v1/conversations').some((r) => r.url.includes('archived=true'))).toBe(true);

    await user.click(within(nav).getByRole('button', { name: 'Actions for Old trip plans' }));
    await user.click(await screen.findByText('Unarchive'));
    await waitFor(() => expect(within(nav).getByText('No archived conversations.')).toBeInTheDocument());
    expect(server.calls('PATCH /api/v1/conversations/a1').map((r) => r.body)).toEqual([{ archived: false }]);
    await user.click(within(nav).getByRole('button', { name: 'Back to conversations' }));
    expect(await within(nav).findByRole('link', { name: /Old trip plans/ })).toBeInTheDocument();
    expect(within(nav).getByRole('link', { name: /Rust questions/ })).toBeInTheDocument();
  });

  it('starts a new chat from a preset, with settings given for it', async () => {
    const server = serve({
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [], next_cursor: null }),
      'GET /api/v1/presets': () =>
        jsonResponse(200, {
          items: [
            {
              id: 'p1',
              name: 'Translator',
              system_prompt: 'Translate into French.',
              params: { temperature: 0.2 },
              created_at: '',
              updated_at: '',
            },
          ],
        }),
      ...refusedNewChat(),
    });
    const user = await startFromTranslator();

    // The settings show the preset's; what is saved there goes with the creation.
    await user.click(screen.getByRole('button', { name: 'Conversation settings' }));
    const drawer = await openDialog('Conversation settings');
    expect(within(drawer).getByLabelText('System prompt')).toHaveValue('Translate into French.');
    await user.click(within(drawer).getByLabelText('Seed'));
    await user.paste('7');
    await user.click(within(drawer).getByRole('button', { name: 'Save' }));

    const box = screen.getByRole('textbox', { name: 'Message' });
    await user.click(box);
    await user.paste('Good morning');
    await user.keyboard('{Enter}');
    await waitFor(() => expect(server.calls('POST /api/v1/conversations')).toHaveLength(1));
    expect(server.calls('POST /api/v1/conversations')[0].body).toEqual({
      preset_id: 'p1',
      system_prompt: 'Translate into French.',
      params: { temperature: 0.2, seed: 7 },
    });
    expect(await screen.findByText('The model is not available right now. Try again or pick another model.')).toBeInTheDocument();
  });

  it('starts a new chat from a preset alone with preset_id', async () => {
    const server = serve({
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [], next_cursor: null }),
      'GET /api/v1/presets': () =>
        jsonResponse(200, {
          items: [{ id: 'p1', name: 'Translator', system_prompt: 'x', params: {}, created_at: '', updated_at: '' }],
        }),
      ...refusedNewChat(),
    });
    const user = await startFromTranslator();
    await user.click(screen.getByRole('textbox', { name: 'Message' }));
    await user.paste('Hello');
    await user.keyboard('{Enter}');
    await waitFor(() => expect(server.calls('POST /api/v1/conversations')).toHaveLength(1));
    expect(server.calls('POST /api/v1/conversations')[0].body).toEqual({ preset_id: 'p1' });
  });
});

describe('ChatPage attachments', () => {
  const shotView = fileView('f-shot', 'shot.png', { kind: 'image', content_type: 'image/png', size: 93, state: 'unscanned', scanned_at: null });
  const notesView = fileView('f-notes', 'notes.pdf', { size: 2048, state: 'unscanned', scanned_at: null });
  const shot: ChatAttachment = { file_id: 'f-shot', name: 'shot.png', content_type: 'image/png', kind: 'image', size: 93 };
  const notes: ChatAttachment = { file_id: 'f-notes', name: 'notes.pdf', content_type: 'application/pdf', kind: 'pdf', size: 2048 };

  beforeEach(() => {
    FakeXHR.reset();
    vi.stubGlobal('XMLHttpRequest', FakeXHR);
    // Each upload is stored as the file of the same name.
    FakeXHR.onSend = (xhr) => {
      const name = ((xhr.body as FormData).get('file') as File).name;
      queueMicrotask(() => xhr.respond(201, name === 'shot.png' ? shotView : notesView));
    };
    let urls = 0;
    Object.defineProperty(URL, 'createObjectURL', { configurable: true, writable: true, value: () => `blob:test/${++urls}` });
    Object.defineProperty(URL, 'revokeObjectURL', { configurable: true, writable: true, value: () => {} });
  });

  /** Attaches shot.png and notes.pdf with the attach button's file chooser, and waits for both. */
  async function attachBoth(user: ReturnType<typeof userEvent.setup>) {
    await user.upload(await screen.findByLabelText('Choose files to attach'), [
      new File(['png'], 'shot.png', { type: 'image/png' }),
      new File(['%PDF-1.4'], 'notes.pdf', { type: 'application/pdf' }),
    ]);
    const chips = await screen.findByRole('list', { name: 'Attachments' });
    await within(chips).findByRole('listitem', { name: 'shot.png, ready' });
    await within(chips).findByRole('listitem', { name: 'notes.pdf, ready' });
  }

  it('sends the attached files’ ids, and shows an image thumbnail and a file chip in the message', async () => {
    const c1 = conversation('c1', 'Files');
    const question = message('q', 'user', 'Both files', null);
    const answer = message('r', 'assistant', 'Got them.', 'q');
    let sent = false;
    const saved: string[] = [];
    vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
      saved.push(this.download);
    });
    const server = serve({
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [c1], next_cursor: null }),
      'GET /api/v1/conversations/c1/messages': () =>
        jsonResponse(200, { items: sent ? [{ ...question, attachments: [shot, notes] }, answer] : [] }),
      'POST /api/v1/conversations/c1/messages': () => {
        sent = true;
        const { branches: _b, reactions: _r, ...stored } = { ...question, attachments: [shot, notes] };
        const start = { user_message: stored, assistant_message: { ...answer, content: '', status: 'streaming' } };
        return new Response(
          streamOf([`event: message\ndata: ${JSON.stringify(start)}\n\n`, `event: done\ndata: ${JSON.stringify(answer)}\n\n`]),
          { status: 200, headers: { 'content-type': 'text/event-stream' } },
        );
      },
      'GET /api/v1/files/f-shot/thumbnail': () => new Response(new Blob(['png'], { type: 'image/png' }), { status: 200 }),
      'GET /api/v1/files/f-shot': () => jsonResponse(200, shotView),
      'GET /api/v1/files/f-shot/content': () => new Response(new Blob(['png'], { type: 'image/png' }), { status: 200 }),
      'GET /api/v1/files/f-notes/content': () =>
        new Response(new Blob(['%PDF-1.4'], { type: 'application/pdf' }), {
          status: 200,
          headers: { 'content-disposition': 'attachment; filename="notes.pdf"' },
        }),
    });
    renderChat('/c/c1');
    const user = userEvent.setup();
    await attachBoth(user);
    await user.type(screen.getByRole('textbox', { name: 'Message' }), 'Both files{Enter}');

    await waitFor(() => expect(server.calls('POST /api/v1/conversations/c1/messages')).toHaveLength(1));
    expect(server.calls('POST /api/v1/conversations/c1/messages')[0].body).toEqual({
      content: 'Both files',
      attachments: ['f-shot', 'f-notes'],
    });
    expect(screen.queryByRole('list', { name: 'Attachments' })).toBeNull();
    expect(await screen.findByText('Got them.')).toBeInTheDocument();

    const mine = screen.getByRole('article', { name: 'Your message' });
    const thumbnail = await within(mine).findByRole('img', { name: 'shot.png' });
    expect(thumbnail).toHaveAttribute('src', expect.stringMatching(/^blob:/));
    expect(server.calls('GET /api/v1/files/f-shot/thumbnail').length).toBeGreaterThan(0);
    const chip = within(mine).getByRole('button', { name: 'Download notes.pdf' });
    expect(chip).toHaveTextContent('notes.pdf');
    expect(chip).toHaveTextContent('2 KB');

    await user.click(chip);
    await waitFor(() => expect(saved).toEqual(['notes.pdf']));
    // The image opens in the preview dialog.
    await user.click(within(mine).getByRole('button', { name: 'Open shot.png' }));
    const preview = await openDialog('shot.png');
    expect(await within(preview).findByRole('img', { name: 'shot.png' })).toBeInTheDocument();
  });

  it('shows a refusal for the files next to the composer, with the message given back', async () => {
    const c1 = conversation('c1', 'Files');
    serve({
      'GET /api/v1/conversations': () => jsonResponse(200, { items: [c1], next_cursor: null }),
      'GET /api/v1/conversations/c1/messages': () => jsonResponse(200, { items: [] }),
      'POST /api/v1/conversations/c1/messages': () => errorResponse(409, 'attachment_not_ready', 'file f-notes is being scanned'),
      'GET /api/v1/files/f-shot': () => jsonResponse(200, shotView),
      'GET /api/v1/files/f-notes': () => jsonResponse(200, { ...notesView, state: 'pending' }),
    });
    renderChat('/c/c1');
    const user = userEvent.setup();
    await attachBoth(user);
    await user.type(screen.getByRole('textbox', { name: 'Message' }), 'Both files{Enter}');

    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('An attached file is still being scanned for viruses. Send again once it is ready.');
    expect(alert.closest('.composer')).not.toBeNull();
    expect(screen.getByRole('textbox', { name: 'Message' })).toHaveValue('Both files');
    // Asked about again: the one still being scanned holds the message.
    const chips = screen.getByRole('list', { name: 'Attachments' });
    expect(await within(chips).findByRole('listitem', { name: 'notes.pdf, scanning for viruses' })).toBeInTheDocument();
    expect(await within(chips).findByRole('listitem', { name: 'shot.png, ready' })).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Send message' })).toBeDisabled();
  });
});
