import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { App as AntApp } from 'antd';
import { MemoryRouter } from 'react-router';
import { describe, expect, it, vi } from 'vitest';
import { ApiClient } from '../api/client';
import type { User } from '../api/types';
import { AuthProvider } from '../auth/AuthContext';
import { makeUser } from '../test/fixtures';
import { errorResponse, jsonResponse, sseStream } from '../test/helpers';
import ModelsPage from './ModelsPage';
import type { CatalogEntry, InstalledModel, PullStatus } from './types';

const person = (role: User['role']): User => makeUser('u1', 'ada@example.com', { name: 'Ada', role, created_at: '' });

const entry = (name: string, extra: Partial<CatalogEntry>): CatalogEntry => ({
  name,
  family: 'smollm2',
  parameters: '135M',
  quantization: 'Q4_1',
  size_bytes: 98_362_432,
  context_length: 8192,
  license: 'Apache-2.0',
  capabilities: ['chat'],
  source: `org/repo/${name}.gguf`,
  sha256: null,
  description: `The ${name} model.`,
  ...extra,
});

const SMOL = entry('SmolLM2-135M-Instruct.Q4_1', { description: 'Tiny instruct model.' });
const QWEN = entry('Qwen2.5-0.5B-Instruct-Q4_K_M', {
  family: 'qwen2.5',
  parameters: '0.5B',
  quantization: 'Q4_K_M',
  size_bytes: 491_400_032,
  capabilities: ['chat', 'tools'],
  source: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf',
  description: 'Multilingual with tool calling.',
});
const LLAMA = entry('Llama-3.2-1B-Instruct-Q4_K_M', {
  family: 'llama3.2',
  parameters: '1B',
  quantization: 'Q4_K_M',
  size_bytes: 807_690_656,
  capabilities: ['chat', 'tools'],
});
const CATALOG = [SMOL, QWEN, LLAMA];

const INSTALLED: InstalledModel[] = [
  {
    id: 'SmolLM2-135M-Instruct.Q4_1',
    provider: 'embedded',
    default: true,
    context_tokens: 4096,
    local: {
      name: 'SmolLM2-135M-Instruct.Q4_1',
      path: '/data/models/SmolLM2-135M-Instruct.Q4_1.gguf',
      size_bytes: 98_362_432,
      sha256: 'b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53',
      architecture: 'llama',
      display_name: 'SmolLM2 135M Instruct',
      parameters: '135M',
      quantization: 'Q4_1',
      context_length: 8192,
      has_chat_template: true,
    },
  },
  { id: 'gpt-4o-mini', provider: 'openai', default: false, context_tokens: 128000, local: null },
];

const pullStatus = (extra: Partial<PullStatus>): PullStatus => ({
  id: '0190-pull',
  source: QWEN.source,
  model: 'qwen2.5-0.5b-instruct-q4_k_m',
  state: 'queued',
  bytes: 0,
  total: null,
  percent: null,
  rate: 0,
  error: null,
  created_at: '2025-01-01T00:00:00.000Z',
  ...extra,
});

type Handler = (url: URL, init?: RequestInit) => Response | Promise<Response>;

function serve(routes: Record<string, Handler>) {
  return vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), 'http://localhost');
    const key = `${init?.method ?? 'GET'} ${url.pathname}`;
    const route = routes[key];
    return route ? route(url, init) : errorResponse(404, 'not_found', `no route ${key}`);
  });
}

function catalogRoute(url: URL) {
  const q = url.searchParams.get('q')?.toLowerCase();
  const capability = url.searchParams.get('capability');
  const items = CATALOG.filter(
    (e) =>
      (!q || e.name.toLowerCase().includes(q) || e.family.includes(q) || e.description.toLowerCase().includes(q)) &&
      (!capability || e.capabilities.includes(capability)),
  );
  return jsonResponse(200, { version: 1, items });
}

function renderPage(role: User['role'], routes: Record<string, Handler>) {
  const fetch = serve({
    'GET /api/v1/models': () => jsonResponse(200, { items: INSTALLED }),
    'GET /api/v1/models/catalog': catalogRoute,
    'GET /api/v1/models/pulls': () => jsonResponse(200, { items: [] }),
    ...routes,
  });
  const client = new ApiClient({ fetch, cookies: () => '' });
  // A token already, so the provider does not try the refresh cookie; signed in once it listens.
  client.setSession({ access_token: 'tok', expires_in: 900, user: person(role) });
  render(
    <AuthProvider client={client}>
      <AntApp>
        <MemoryRouter initialEntries={['/models']}>
          <ModelsPage />
        </MemoryRouter>
      </AntApp>
    </AuthProvider>,
  );
  act(() => client.setSession({ access_token: 'tok', expires_in: 900, user: person(role) }));
  return fetch;
}

function cardOf(name: string): HTMLElement {
  return screen.getByText(name, { selector: 'span[id^="catalog-"]' }).closest('[role="listitem"]') as HTMLElement;
}
const shownCards = () =>
  within(screen.getByRole('list', { name: 'Catalog models' }))
    .getAllByRole('listitem')
    .map((li) => li.querySelector('span[id^="catalog-"]')!.textContent);

describe('ModelsPage', () => {
  it('lists installed models with their details and the catalog, and links back to chat', async () => {
    renderPage('user', {});
    const table = await screen.findByRole('table', { name: 'Installed models' });
    const smol = await within(table).findByText('SmolLM2-135M-Instruct.Q4_1');
    const row = smol.closest('tr')!;
    expect(within(row).getByText('default')).toBeInTheDocument();
    expect(within(row).getByText('embedded')).toBeInTheDocument();
    expect(within(row).getByText('4,096 tokens')).toBeInTheDocument();
    expect(within(row).getByText('trained for 8,192 tokens')).toBeInTheDocument();
    expect(within(row).getByText(/98\.4 MB · 135M parameters · Q4_1 · llama/)).toBeInTheDocument();
    expect(within(row).getByText('/data/models/SmolLM2-135M-Instruct.Q4_1.gguf')).toBeInTheDocument();
    const remote = within(table).getByText('gpt-4o-mini').closest('tr')!;
    expect(within(remote).getByText('openai')).toBeInTheDocument();
    expect(within(remote).getByText('Not a local file')).toBeInTheDocument();

    await waitFor(() => expect(shownCards()).toEqual([SMOL.name, QWEN.name, LLAMA.name]));
    expect(within(cardOf(SMOL.name)).getByText('Installed')).toBeInTheDocument();
    expect(within(cardOf(QWEN.name)).getByText('491 MB · context 8,192 tokens · Apache-2.0')).toBeInTheDocument();
    expect(screen.getByText('3 of 3 models')).toBeInTheDocument();
    expect(screen.getByRole('link', { name: /Back to chat/ })).toHaveAttribute('href', '/');
  });

  it('searches the catalog on the server and filters by family and installed state', async () => {
    const fetch = renderPage('user', {});
    await waitFor(() => expect(shownCards()).toHaveLength(3));
    const user = userEvent.setup();

    await user.type(screen.getByRole('textbox', { name: 'Search the catalog' }), 'tool');
    await waitFor(() => expect(shownCards()).toEqual([QWEN.name]));
    const searched = fetch.mock.calls.map(([u]) => String(u)).filter((u) => u.includes('/catalog?'));
    expect(searched.at(-1)).toBe('/api/v1/models/catalog?q=tool');
    expect(screen.getByText('1 of 3 models')).toBeInTheDocument();

    await user.clear(screen.getByRole('textbox', { name: 'Search the catalog' }));
    await waitFor(() => expect(shownCards()).toHaveLength(3));

    await user.click(screen.getByRole('combobox', { name: 'Family' }));
    await user.click(await screen.findByTitle('llama3.2'));
    await waitFor(() => expect(shownCards()).toEqual([LLAMA.name]));

    await user.click(screen.getByRole('button', { name: 'Clear filters' }));
    await waitFor(() => expect(shownCards()).toHaveLength(3));

    await user.click(screen.getByRole('combobox', { name: 'Installed' }));
    await user.click(await screen.findByTitle('Not installed'));
    await waitFor(() => expect(shownCards()).toEqual([QWEN.name, LLAMA.name]));

    await user.click(screen.getByRole('combobox', { name: 'Capability' }));
    await user.click(await screen.findByTitle('tools'));
    await waitFor(() =>
      expect(fetch.mock.calls.map(([u]) => String(u))).toContain('/api/v1/models/catalog?capability=tools'),
    );
  });

  it('gives non-admins no pull, cancel or delete buttons and does not ask for pulls', async () => {
    const fetch = renderPage('user', {});
    await waitFor(() => expect(shownCards()).toHaveLength(3));
    expect(screen.queryByRole('button', { name: /^Pull/ })).toBeNull();
    expect(screen.queryByRole('button', { name: /^Delete/ })).toBeNull();
    expect(screen.queryByRole('heading', { name: 'Pulls' })).toBeNull();
    expect(fetch.mock.calls.some(([u]) => String(u).startsWith('/api/v1/models/pulls'))).toBe(false);
    expect(screen.getByText(/An administrator can install them/)).toBeInTheDocument();
  });

  it('lets an admin pull a catalog model, shows its progress from the event stream and the new model when done', async () => {
    const events = sseStream();
    let installed = INSTALLED;
    const fetch = renderPage('admin', {
      'GET /api/v1/models': () => jsonResponse(200, { items: installed }),
      'POST /api/v1/models/pulls': () => jsonResponse(202, pullStatus({})),
      'GET /api/v1/models/pulls/0190-pull/events': () =>
        events.response(),
    });
    await waitFor(() => expect(shownCards()).toHaveLength(3));
    const user = userEvent.setup();
    expect(within(cardOf(SMOL.name)).queryByRole('button', { name: /Pull/ })).toBeNull();
    await user.click(within(cardOf(QWEN.name)).getByRole('button', { name: `Pull ${QWEN.name}` }));

    const post = fetch.mock.calls.find(([u, init]) => u === '/api/v1/models/pulls' && init?.method === 'POST')!;
    expect(JSON.parse(String(post[1]!.body))).toEqual({ source: QWEN.name });
    expect(await within(cardOf(QWEN.name)).findByText('Waiting to start…')).toBeInTheDocument();

    act(() =>
      events.send('message', pullStatus({ state: 'running', bytes: 245_700_016, total: 491_400_032, percent: 50, rate: 2_000_000 })),
    );
    const bar = await within(cardOf(QWEN.name)).findByRole('progressbar', { name: /Pull of qwen2.5/ });
    await waitFor(() => expect(bar).toHaveAttribute('aria-valuenow', '50'));
    expect(within(cardOf(QWEN.name)).getByText('246 MB of 491 MB · 2.00 MB/s')).toBeInTheDocument();
    const table = screen.getByRole('table', { name: 'Recent pulls' });
    expect(within(table).getByText('running')).toBeInTheDocument();

    installed = [
      ...INSTALLED,
      { id: 'qwen2.5-0.5b-instruct-q4_k_m', provider: 'embedded', default: false, context_tokens: 4096, local: null },
    ];
    act(() => {
      events.send('message', pullStatus({ state: 'completed', bytes: 491_400_032, total: 491_400_032, percent: 100 }));
      events.close();
    });
    expect(await screen.findByText('qwen2.5-0.5b-instruct-q4_k_m is installed.')).toBeInTheDocument();
    expect(await within(cardOf(QWEN.name)).findByText('Installed')).toBeInTheDocument();
    expect(within(screen.getByRole('table', { name: 'Installed models' })).getByText('qwen2.5-0.5b-instruct-q4_k_m')).toBeInTheDocument();
    expect(within(table).getByText('completed')).toBeInTheDocument();
  });

  it('lets an admin cancel a running pull', async () => {
    const events = sseStream();
    const running = pullStatus({ state: 'running', bytes: 900, total: null, percent: null });
    const fetch = renderPage('admin', {
      'GET /api/v1/models/pulls': () => jsonResponse(200, { items: [running] }),
      'GET /api/v1/models/pulls/0190-pull/events': () => events.response(),
      'DELETE /api/v1/models/pulls/0190-pull': () => {
        events.send('message', { ...running, state: 'cancelled' });
        events.close();
        return new Response(null, { status: 204 });
      },
      'GET /api/v1/models/pulls/0190-pull': () => jsonResponse(200, { ...running, state: 'cancelled' }),
    });
    const table = await screen.findByRole('table', { name: 'Recent pulls' });
    expect(await within(table).findByText('900 bytes downloaded')).toBeInTheDocument();
    await userEvent.setup().click(within(table).getByRole('button', { name: 'Cancel the pull of qwen2.5-0.5b-instruct-q4_k_m' }));
    expect(await within(table).findByText('cancelled')).toBeInTheDocument();
    expect(fetch).toHaveBeenCalledWith('/api/v1/models/pulls/0190-pull', expect.objectContaining({ method: 'DELETE' }));
    expect(within(table).queryByRole('button', { name: /Cancel the pull/ })).toBeNull();
  });

  it('deletes an installed model only after confirmation', async () => {
    let installed = INSTALLED;
    const fetch = renderPage('admin', {
      'GET /api/v1/models': () => jsonResponse(200, { items: installed }),
      'DELETE /api/v1/models/SmolLM2-135M-Instruct.Q4_1': () => {
        installed = INSTALLED.slice(1);
        return new Response(null, { status: 204 });
      },
    });
    const table = await screen.findByRole('table', { name: 'Installed models' });
    const user = userEvent.setup();
    expect(within(table).queryByRole('button', { name: 'Delete gpt-4o-mini' })).toBeNull();
    await user.click(await within(table).findByRole('button', { name: 'Delete SmolLM2-135M-Instruct.Q4_1' }));
    expect(await screen.findByText('Delete “SmolLM2-135M-Instruct.Q4_1”?')).toBeInTheDocument();
    expect(fetch.mock.calls.some(([, init]) => init?.method === 'DELETE')).toBe(false);
    await user.click(screen.getByRole('button', { name: 'Delete' }));
    await waitFor(() =>
      expect(fetch).toHaveBeenCalledWith('/api/v1/models/SmolLM2-135M-Instruct.Q4_1', expect.objectContaining({ method: 'DELETE' })),
    );
    expect(await screen.findByText('SmolLM2-135M-Instruct.Q4_1 was deleted.')).toBeInTheDocument();
    await waitFor(() => expect(within(table).queryByText('SmolLM2-135M-Instruct.Q4_1')).toBeNull());
  });

  it('shows the server’s refusal of a pull in words', async () => {
    renderPage('admin', {
      'POST /api/v1/models/pulls': () =>
        errorResponse(422, 'invalid_source', 'not a Hugging Face path or https URL: nope'),
    });
    await screen.findByRole('heading', { name: 'Pulls' });
    const user = userEvent.setup();
    const form = screen.getByRole('form', { name: 'Pull a model by source' });
    await user.type(within(form).getByRole('textbox', { name: /^Source/ }), 'nope');
    await user.click(within(form).getByRole('button', { name: /Pull/ }));
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'The pull did not start: The server cannot pull that source: not a Hugging Face path or https URL: nope',
    );
  });

  it('says so when the installed models cannot be listed', async () => {
    renderPage('admin', {
      'GET /api/v1/models': () => errorResponse(500, 'internal', 'internal error'),
      'GET /api/v1/models/pulls': () => errorResponse(403, 'forbidden', 'this operation needs the admin role'),
    });
    const alerts = await screen.findAllByRole('alert');
    await waitFor(() => expect(screen.getAllByRole('alert')).toHaveLength(2));
    const texts = screen.getAllByRole('alert').map((a) => a.textContent);
    expect(texts).toContain('Cannot list the installed models: Something went wrong on the server (request req-1).');
    expect(texts).toContain('Cannot list the recent pulls: Only an administrator can do this.');
    expect(alerts.length).toBeGreaterThan(0);
  });
});
