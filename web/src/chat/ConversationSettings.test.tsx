import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { App as AntApp } from 'antd';
import { describe, expect, it, vi } from 'vitest';
import type { ChatApi } from '../api/chat';
import type { Conversation } from '../api/types';
import { conversation } from '../test/fixtures';
import { errorResponse, jsonResponse, routes, type Handler } from '../test/helpers';
import { ConversationSettings, type ChatSettings } from './ConversationSettings';
import { openDialog, signedIn } from './testing';
import { usePresets } from './usePresets';

// Whole screens with antd drawers and dialogs in jsdom: slow on a busy machine.
vi.setConfig({ testTimeout: 60_000 });

const preset = {
  id: 'p1',
  name: 'Translator',
  system_prompt: 'Translate into French.',
  params: { temperature: 0.2, max_tokens: 300 },
  created_at: '',
  updated_at: '',
};

/** Types text at once (a paste): antd's auto-sized text areas are slow to type into in jsdom. */
async function fill(user: ReturnType<typeof userEvent.setup>, field: HTMLElement, text: string) {
  await user.click(field);
  await user.paste(text);
}

function Harness(props: {
  api: ChatApi;
  conversation: Conversation | null;
  draft?: ChatSettings;
  onDraft?: (s: ChatSettings) => void;
  onSaved?: (c: Conversation) => void;
  onClose?: () => void;
}) {
  const presets = usePresets(props.api);
  return (
    <AntApp>
      <ConversationSettings
        open
        onClose={props.onClose ?? (() => {})}
        api={props.api}
        conversation={props.conversation}
        draft={props.draft ?? { system_prompt: '', params: {} }}
        onDraft={props.onDraft ?? (() => {})}
        onSaved={props.onSaved ?? (() => {})}
        presets={presets}
      />
    </AntApp>
  );
}

function setup(table: Record<string, Handler>, c: Conversation | null, extra: Partial<Parameters<typeof Harness>[0]> = {}) {
  const server = routes({ 'GET /api/v1/presets': () => jsonResponse(200, { items: [preset] }), ...table });
  const { api } = signedIn(server.fetch);
  render(<Harness api={api} conversation={c} {...extra} />);
  return server;
}

describe('ConversationSettings', () => {
  it('saves the system prompt and parameters with PATCH', async () => {
    const c = conversation('c1', 'Trip', { system_prompt: 'Be brief.', params: { temperature: 0.7 } });
    const onSaved = vi.fn();
    const onClose = vi.fn();
    const server = setup(
      {
        'PATCH /api/v1/conversations/c1': (init) =>
          jsonResponse(200, { ...c, ...JSON.parse(String(init!.body)) }),
      },
      c,
      { onSaved, onClose },
    );
    const drawer = await openDialog('Conversation settings');
    const prompt = within(drawer).getByLabelText('System prompt');
    expect(prompt).toHaveValue('Be brief.');
    expect(within(drawer).getByLabelText('Temperature')).toHaveValue('0.7');

    const user = userEvent.setup();
    await user.clear(prompt);
    await fill(user, prompt, 'Answer in one line.');
    await user.clear(within(drawer).getByLabelText('Temperature'));
    await fill(user, within(drawer).getByLabelText('Max tokens'), '256');
    await fill(user, within(drawer).getByLabelText('Top P'), '0.9');
    await user.click(within(drawer).getByRole('button', { name: 'Save' }));

    await waitFor(() => expect(onSaved).toHaveBeenCalled());
    expect(server.calls('PATCH /api/v1/conversations/c1').map((r) => r.body)).toEqual([
      { system_prompt: 'Answer in one line.', params: { top_p: 0.9, max_tokens: 256 } },
    ]);
    expect(onSaved.mock.calls[0][0]).toMatchObject({ id: 'c1', system_prompt: 'Answer in one line.' });
    expect(onClose).toHaveBeenCalled();
  });

  it('clears the system prompt with null', async () => {
    const c = conversation('c1', 'Trip', { system_prompt: 'Be brief.' });
    const server = setup({ 'PATCH /api/v1/conversations/c1': () => jsonResponse(200, c) }, c);
    const drawer = await openDialog('Conversation settings');
    const user = userEvent.setup();
    await user.clear(within(drawer).getByLabelText('System prompt'));
    await user.click(within(drawer).getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(server.calls('PATCH /api/v1/conversations/c1')).toHaveLength(1));
    expect(server.calls('PATCH /api/v1/conversations/c1')[0].body).toEqual({ system_prompt: null, params: {} });
  });

  it('shows what the server refused, in words, and stays open', async () => {
    const c = conversation('c1', 'Trip');
    const onSaved = vi.fn();
    const onClose = vi.fn();
    setup(
      {
        'PATCH /api/v1/conversations/c1': () =>
          errorResponse(
            422,
            'invalid_body',
            'params.temperature must be between 0 and 2, got 3; system_prompt is 20001 characters; at most 20000 are allowed',
            {
              details: [
                'params.temperature must be between 0 and 2, got 3',
                'system_prompt is 20001 characters; at most 20000 are allowed',
              ],
            },
          ),
      },
      c,
      { onSaved, onClose },
    );
    const drawer = await openDialog('Conversation settings');
    const user = userEvent.setup();
    await fill(user, within(drawer).getByLabelText('System prompt'), 'Hello');
    await user.click(within(drawer).getByRole('button', { name: 'Save' }));
    const alert = await within(drawer).findByRole('alert');
    expect(alert).toHaveTextContent('The settings were not saved');
    expect(alert).toHaveTextContent('Temperature must be between 0 and 2, got 3.');
    expect(alert).toHaveTextContent('The system prompt is 20001 characters; at most 20000 are allowed.');
    expect(onSaved).not.toHaveBeenCalled();
    expect(onClose).not.toHaveBeenCalled();
  });

  it('applies a preset to the fields, then saves them', async () => {
    const c = conversation('c1', 'Trip');
    const server = setup({ 'PATCH /api/v1/conversations/c1': () => jsonResponse(200, c) }, c);
    const drawer = await openDialog('Conversation settings');
    const user = userEvent.setup();
    await user.click(within(drawer).getByRole('combobox', { name: 'Apply preset' }));
    await user.click(await screen.findByTitle('Translator'));
    expect(within(drawer).getByLabelText('System prompt')).toHaveValue('Translate into French.');
    expect(within(drawer).getByLabelText('Temperature')).toHaveValue('0.2');
    expect(within(drawer).getByLabelText('Max tokens')).toHaveValue('300');
    await user.click(within(drawer).getByRole('button', { name: 'Save' }));
    await waitFor(() => expect(server.calls('PATCH /api/v1/conversations/c1')).toHaveLength(1));
    expect(server.calls('PATCH /api/v1/conversations/c1')[0].body).toEqual({
      system_prompt: 'Translate into French.',
      params: { temperature: 0.2, max_tokens: 300 },
    });
  });

  it('keeps a new chat’s settings for its creation, without a request', async () => {
    const onDraft = vi.fn();
    const server = setup({}, null, { onDraft });
    const drawer = await openDialog('Conversation settings');
    expect(drawer).toHaveTextContent('These settings apply to the new chat when you send its first message.');
    const user = userEvent.setup();
    await fill(user, within(drawer).getByLabelText('System prompt'), 'Be kind.');
    await fill(user, within(drawer).getByLabelText('Seed'), '42');
    await user.click(within(drawer).getByRole('button', { name: 'Save' }));
    expect(onDraft).toHaveBeenCalledWith({ system_prompt: 'Be kind.', params: { seed: 42 } });
    expect(server.fetch.mock.calls.filter(([, init]) => init?.method && init.method !== 'GET')).toEqual([]);
  });
});
