import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { App as AntApp } from 'antd';
import { MemoryRouter } from 'react-router';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../api/client';
import { AuthProvider } from '../auth/AuthContext';
import { makeUser } from '../test/fixtures';
import { errorResponse, jsonResponse } from '../test/helpers';
import { filenameFrom } from '../api/download';
import { DataTransfer, IMPORT_LIMIT_BYTES, summarize } from './DataTransfer';

const user = makeUser('u1', 'ada@example.com', { name: 'Ada', created_at: '' });

type Handler = (init?: RequestInit) => Response | Promise<Response>;

function renderData(routes: Record<string, Handler>) {
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const key = `${init?.method ?? 'GET'} ${String(input)}`;
    const route = routes[key];
    return route ? route(init) : errorResponse(404, 'not_found', `no route ${key}`);
  });
  const client = new ApiClient({ fetch, cookies: () => '' });
  client.setSession({ access_token: 'tok', expires_in: 900, user });
  render(
    <AuthProvider client={client}>
      <AntApp>
        <MemoryRouter>
          <DataTransfer />
        </MemoryRouter>
      </AntApp>
    </AuthProvider>,
  );
  act(() => client.setSession({ access_token: 'tok', expires_in: 900, user }));
  return fetch;
}

const t = '2025-01-02T03:04:05.000Z';
const message = (id: string, parent: string | null, role: string, content: string, status = 'complete') => ({
  id, parent_id: parent, role, content, status, model: null, error: null, prompt_tokens: null, completion_tokens: null,
  created_at: t, updated_at: t,
});
const CONFAB = {
  format: 'confab.conversations',
  version: 1,
  exported_at: t,
  conversations: [
    {
      id: '00000000-0000-7000-8000-000000000001', title: 'Rust lifetimes', model: null, system_prompt: null, params: {},
      folder: null, tags: [], pinned: false, archived: false, active_leaf_id: '00000000-0000-7000-8000-0000000000a2',
      created_at: t, updated_at: t,
      messages: [
        message('00000000-0000-7000-8000-0000000000a1', null, 'user', 'What is a lifetime?'),
        message('00000000-0000-7000-8000-0000000000a2', '00000000-0000-7000-8000-0000000000a1', 'assistant', 'A scope.', 'streaming'),
      ],
    },
    {
      id: '00000000-0000-7000-8000-000000000002', title: 'Soup', model: null, system_prompt: null, params: {},
      folder: null, tags: [], pinned: false, archived: true, active_leaf_id: null, created_at: t, updated_at: t,
      messages: [message('00000000-0000-7000-8000-0000000000b1', null, 'user', 'Leek soup?')],
    },
  ],
};
const CHATGPT = [
  {
    title: 'Trip to Lisbon',
    create_time: 1700000000.5,
    current_node: 'n3',
    mapping: {
      root: { id: 'root', message: null, parent: null, children: ['n0'] },
      n0: { id: 'n0', parent: 'root', children: ['n1'], message: { author: { role: 'system' }, content: { parts: [''] } } },
      n1: { id: 'n1', parent: 'n0', children: ['n2'], message: { author: { role: 'user' }, content: { parts: ['Where to eat?'] } } },
      n2: { id: 'n2', parent: 'n1', children: ['n3'], message: { author: { role: 'tool' }, content: { parts: ['search results'] } } },
      n3: { id: 'n3', parent: 'n2', children: [], message: { author: { role: 'assistant' }, content: { parts: ['Try Alfama.'] } } },
    },
  },
];

const jsonFile = (body: unknown, name = 'conversations.json') =>
  new File([typeof body === 'string' ? body : JSON.stringify(body)], name, { type: 'application/json' });

const fileInput = () => screen.getByLabelText('File to import') as HTMLInputElement;

let downloads: Array<{ name: string; href: string }>;
let blobs: Blob[];

beforeEach(() => {
  downloads = [];
  blobs = [];
  Object.assign(URL, {
    createObjectURL: vi.fn((b: Blob) => {
      blobs.push(b);
      return `blob:test/${blobs.length}`;
    }),
    revokeObjectURL: vi.fn(),
  });
  vi.spyOn(HTMLAnchorElement.prototype, 'click').mockImplementation(function (this: HTMLAnchorElement) {
    downloads.push({ name: this.download, href: this.href });
  });
});

afterEach(() => {
  delete (URL as { createObjectURL?: unknown }).createObjectURL;
  delete (URL as { revokeObjectURL?: unknown }).revokeObjectURL;
});

describe('summarize and filenameFrom', () => {
  it('counts what a file holds and refuses what the server would', () => {
    expect(summarize(JSON.stringify(CONFAB))).toMatchObject({ kind: 'confab', conversations: 2, messages: 3, skipped: 0, unfinished: 1, titles: ['Rust lifetimes', 'Soup'] });
    expect(summarize(JSON.stringify(CHATGPT))).toMatchObject({ kind: 'chatgpt', conversations: 1, messages: 2, skipped: 2, titles: ['Trip to Lisbon'] });
    expect(() => summarize('{"format": "confab.conversations"')).toThrow(/not JSON/);
    expect(() => summarize(JSON.stringify({ ...CONFAB, version: 2 }))).toThrow('format version 2; this server reads version 1');
    expect(() => summarize('[{"title": "x"}]')).toThrow(/Entry 1 of the list is not a ChatGPT conversation/);
    expect(() => summarize('{"hello": 1}')).toThrow(/not a conversations export/);
    expect(() => summarize('   ')).toThrow('The file is empty.');
  });

  it('reads the file name of a Content-Disposition header', () => {
    expect(filenameFrom('attachment; filename="conversations.json"')).toBe('conversations.json');
    expect(filenameFrom("attachment; filename*=UTF-8''caf%C3%A9.md")).toBe('café.md');
    expect(filenameFrom('attachment; filename="../../etc/passwd"')).toBe('passwd');
    expect(filenameFrom(null)).toBeNull();
    expect(filenameFrom('inline')).toBeNull();
  });
});

describe('DataTransfer', () => {
  it('downloads every conversation as JSON under the server’s file name', async () => {
    const body = JSON.stringify(CONFAB);
    const fetch = renderData({
      'GET /api/v1/conversations/export?format=json': () =>
        new Response(body, {
          status: 200,
          headers: { 'content-type': 'application/json', 'content-disposition': 'attachment; filename="conversations.json"' },
        }),
    });
    await userEvent.setup().click(screen.getByRole('button', { name: /Export all conversations/ }));
    expect(await screen.findByText('Downloaded conversations.json.')).toBeInTheDocument();
    expect(downloads).toEqual([{ name: 'conversations.json', href: 'blob:test/1' }]);
    expect(await blobs[0]!.text()).toBe(body);
    const call = fetch.mock.calls[0]!;
    expect(new Headers(call[1]!.headers).get('authorization')).toBe('Bearer tok');
  });

  it('downloads Markdown with a default name when the server gives none, and shows a failed export', async () => {
    let fail = false;
    renderData({
      'GET /api/v1/conversations/export?format=markdown': () =>
        fail ? errorResponse(503, 'unavailable', 'the database is unavailable') : new Response('# Soup\n', { status: 200 }),
    });
    const u = userEvent.setup();
    await u.click(screen.getByText('Markdown'));
    expect(screen.getByRole('radio', { name: 'Markdown' })).toBeChecked();
    await u.click(screen.getByRole('button', { name: /Export all conversations/ }));
    await waitFor(() => expect(downloads.map((d) => d.name)).toEqual(['conversations.md']));
    fail = true;
    await u.click(screen.getByRole('button', { name: /Export all conversations/ }));
    expect(await screen.findByRole('alert')).toHaveTextContent('The export failed: the database is unavailable');
    expect(downloads).toHaveLength(1);
  });

  it('imports a Confab export: sends the file, shows progress while the server works, then what was imported', async () => {
    let answer!: (r: Response) => void;
    const fetch = renderData({
      'POST /api/v1/conversations/import': () => new Promise<Response>((resolve) => (answer = resolve)),
    });
    await userEvent.setup().upload(fileInput(), jsonFile(CONFAB, 'my-export.json'));

    const working = await screen.findByText('Importing 2 conversations on the server…');
    expect(within(working.closest('[role="status"]') as HTMLElement).getByRole('progressbar')).toBeInTheDocument();
    expect(fileInput()).toBeDisabled();
    const call = fetch.mock.calls.find(([u]) => u === '/api/v1/conversations/import')!;
    expect(call[1]!.method).toBe('POST');
    expect(new Headers(call[1]!.headers).get('content-type')).toBe('application/json');
    expect(JSON.parse(String(call[1]!.body))).toEqual(CONFAB);

    act(() => answer(jsonResponse(201, { imported: 2, conversation_ids: ['c-new-1', 'c-new-2'] })));
    expect(
      await screen.findByText('Imported 2 conversations with 3 messages from my-export.json (Confab export).'),
    ).toBeInTheDocument();
    expect(screen.getByText('1 answer still being written when exported is marked interrupted.')).toBeInTheDocument();
    const list = screen.getByRole('list', { name: 'Imported conversations' });
    expect(within(list).getByRole('link', { name: 'Rust lifetimes' })).toHaveAttribute('href', '/c/c-new-1');
    expect(within(list).getByRole('link', { name: 'Soup' })).toHaveAttribute('href', '/c/c-new-2');
    expect(fileInput()).toBeEnabled();
  });

  it('imports ChatGPT’s conversations.json and says what was left out', async () => {
    renderData({
      'POST /api/v1/conversations/import': () => jsonResponse(201, { imported: 1, conversation_ids: ['c9'] }),
    });
    await userEvent.setup().upload(fileInput(), jsonFile(CHATGPT));
    expect(
      await screen.findByText('Imported 1 conversation with 2 messages from conversations.json (ChatGPT export).'),
    ).toBeInTheDocument();
    expect(screen.getByText(/Left out 2 entries that are not a user’s or assistant’s text/)).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Trip to Lisbon' })).toHaveAttribute('href', '/c/c9');
  });

  it('refuses a file that is not JSON, or not an export, without sending it', async () => {
    const fetch = renderData({});
    const u = userEvent.setup();
    await u.upload(fileInput(), jsonFile('this is { not json', 'notes.json'));
    expect(await screen.findByRole('alert')).toHaveTextContent(/This file is not JSON, so it cannot be a conversations export/);
    await u.upload(fileInput(), jsonFile({ name: 'settings', theme: 'dark' }, 'settings.json'));
    expect(await screen.findByRole('alert')).toHaveTextContent(/This JSON file is not a conversations export/);
    expect(fetch).not.toHaveBeenCalled();
  });

  it('refuses a file over the server’s limit before reading it', async () => {
    const fetch = renderData({});
    const big = jsonFile(CONFAB, 'huge.json');
    Object.defineProperty(big, 'size', { value: IMPORT_LIMIT_BYTES + 1 });
    await userEvent.setup().upload(fileInput(), big);
    expect(await screen.findByRole('alert')).toHaveTextContent('huge.json is 32.0 MB; the server accepts files up to 32 MB.');
    expect(fetch).not.toHaveBeenCalled();
  });

  it('shows the server’s refusal with each problem it lists', async () => {
    renderData({
      'POST /api/v1/conversations/import': () =>
        errorResponse(422, 'invalid_import', 'the file was not imported; nothing changed. First problem: conversations[0].title: too long', {
          details: ['conversations[0].title: too long', 'conversations[1].messages[0].parent_id: no message x in this conversation'],
        }),
    });
    await userEvent.setup().upload(fileInput(), jsonFile(CONFAB));
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('The server refused the file; nothing was imported.');
    expect(within(alert).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      'conversations[0].title: too long',
      'conversations[1].messages[0].parent_id: no message x in this conversation',
    ]);
  });

  it('explains a file too large for the server and a refused API key', async () => {
    let response = () => errorResponse(413, 'payload_too_large', 'request body is larger than the server accepts');
    renderData({ 'POST /api/v1/conversations/import': () => response() });
    const u = userEvent.setup();
    await u.upload(fileInput(), jsonFile(CONFAB));
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'The file is larger than the server accepts (32 MB at most); nothing was imported.',
    );
    response = () => errorResponse(403, 'insufficient_scope', 'this API key lacks the `chat` scope');
    await u.upload(fileInput(), jsonFile(CONFAB));
    await waitFor(() =>
      expect(screen.getByRole('alert')).toHaveTextContent(
        'The import failed: This API key is not allowed to do this: this API key lacks the `chat` scope.',
      ),
    );
  });
});
