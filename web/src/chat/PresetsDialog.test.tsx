import { render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { App as AntApp } from 'antd';
import { describe, expect, it, vi } from 'vitest';
import type { ChatApi, PresetInput } from '../api/chat';
import type { Preset } from '../api/types';
import { errorResponse, jsonResponse, routes, type Handler } from '../test/helpers';
import { PresetsDialog } from './PresetsDialog';
import { openDialog, signedIn } from './testing';
import { usePresets } from './usePresets';

// Whole screens with antd drawers and dialogs in jsdom: slow on a busy machine.
vi.setConfig({ testTimeout: 60_000 });

function preset(id: string, name: string, extra: Partial<Preset> = {}): Preset {
  return { id, name, system_prompt: null, params: {}, created_at: '', updated_at: '', ...extra };
}

function Harness({ api, initial }: { api: ChatApi; initial?: PresetInput }) {
  const presets = usePresets(api);
  return (
    <AntApp>
      <PresetsDialog open onClose={() => {}} presets={presets} initial={initial} />
    </AntApp>
  );
}

function setup(table: Record<string, Handler>, initial?: PresetInput) {
  const server = routes(table);
  const { api } = signedIn(server.fetch);
  render(<Harness api={api} initial={initial} />);
  return server;
}

async function fill(user: ReturnType<typeof userEvent.setup>, field: HTMLElement, text: string) {
  await user.click(field);
  await user.paste(text);
}

const concise = preset('p1', 'Concise', { system_prompt: 'Be brief.', params: { temperature: 0.3 } });

describe('PresetsDialog', () => {
  it('lists the presets and creates one with POST', async () => {
    const server = setup({
      'GET /api/v1/presets': () => jsonResponse(200, { items: [concise] }),
      'POST /api/v1/presets': (init) => jsonResponse(201, { ...preset('p2', ''), ...JSON.parse(String(init!.body)) }),
    });
    const dialog = await openDialog('Presets');
    expect(await within(dialog).findByText('Concise')).toBeInTheDocument();
    expect(within(dialog).getByText('Temperature 0.3')).toBeInTheDocument();

    const user = userEvent.setup();
    await user.click(within(dialog).getByRole('button', { name: 'New preset' }));
    const form = await openDialog('New preset');
    await fill(user, within(form).getByLabelText('Name'), 'Translator');
    await fill(user, within(form).getByLabelText('System prompt'), 'Translate into French.');
    await fill(user, within(form).getByLabelText('Max tokens'), '500');
    await user.click(within(form).getByRole('button', { name: 'Save preset' }));

    const list = await openDialog('Presets');
    expect(await within(list).findByText('Translator')).toBeInTheDocument();
    expect(server.calls('POST /api/v1/presets').map((c) => c.body)).toEqual([
      { name: 'Translator', system_prompt: 'Translate into French.', params: { max_tokens: 500 } },
    ]);
  });

  it('edits a preset with PUT and deletes one with DELETE', async () => {
    const server = setup({
      'GET /api/v1/presets': () => jsonResponse(200, { items: [concise, preset('p3', 'Poet')] }),
      'PUT /api/v1/presets/p1': (init) => jsonResponse(200, { ...concise, ...JSON.parse(String(init!.body)) }),
      'DELETE /api/v1/presets/p3': () => new Response(null, { status: 204 }),
    });
    const dialog = await openDialog('Presets');
    const user = userEvent.setup();
    await user.click(await within(dialog).findByRole('button', { name: 'Edit preset Concise' }));
    const form = await openDialog('Edit preset');
    expect(within(form).getByLabelText('Name')).toHaveValue('Concise');
    expect(within(form).getByLabelText('System prompt')).toHaveValue('Be brief.');
    await user.clear(within(form).getByLabelText('Name'));
    await fill(user, within(form).getByLabelText('Name'), 'Very concise');
    await user.clear(within(form).getByLabelText('Temperature'));
    await user.click(within(form).getByRole('button', { name: 'Save preset' }));
    await waitFor(() => expect(server.calls('PUT /api/v1/presets/p1')).toHaveLength(1));
    expect(server.calls('PUT /api/v1/presets/p1')[0].body).toEqual({
      name: 'Very concise',
      system_prompt: 'Be brief.',
      params: {},
    });
    const list = await openDialog('Presets');
    expect(await within(list).findByText('Very concise')).toBeInTheDocument();

    await user.click(within(list).getByRole('button', { name: 'Delete preset Poet' }));
    const confirm = await screen.findAllByText('Delete the preset “Poet”?');
    const box = confirm[0].closest('.ant-modal') as HTMLElement;
    await user.click(within(box).getByRole('button', { name: 'Delete' }));
    await waitFor(() => expect(within(list).queryByText('Poet')).toBeNull());
    expect(server.calls('DELETE /api/v1/presets/p3')).toHaveLength(1);
  });

  it('says why a preset was refused', async () => {
    setup({
      'GET /api/v1/presets': () => jsonResponse(200, { items: [concise] }),
      'POST /api/v1/presets': () => errorResponse(409, 'preset_exists', 'a preset with this name exists'),
    });
    const dialog = await openDialog('Presets');
    const user = userEvent.setup();
    await user.click(within(dialog).getByRole('button', { name: 'New preset' }));
    const form = await openDialog('New preset');
    await user.click(within(form).getByRole('button', { name: 'Save preset' }));
    expect(await within(form).findByRole('alert')).toHaveTextContent('Give the preset a name.');
    await fill(user, within(form).getByLabelText('Name'), 'Concise');
    await user.click(within(form).getByRole('button', { name: 'Save preset' }));
    await waitFor(() =>
      expect(within(form).getByRole('alert')).toHaveTextContent('A preset with this name exists already.'),
    );
  });

  it('opens on a new preset made from a conversation’s settings', async () => {
    const server = setup(
      {
        'GET /api/v1/presets': () => jsonResponse(200, { items: [] }),
        'POST /api/v1/presets': (init) => jsonResponse(201, { ...preset('p9', ''), ...JSON.parse(String(init!.body)) }),
      },
      { name: '', system_prompt: 'Speak like a pirate.', params: { temperature: 1.2 } },
    );
    const form = await openDialog('New preset');
    expect(within(form).getByLabelText('System prompt')).toHaveValue('Speak like a pirate.');
    const user = userEvent.setup();
    await fill(user, within(form).getByLabelText('Name'), 'Pirate');
    await user.click(within(form).getByRole('button', { name: 'Save preset' }));
    await waitFor(() => expect(server.calls('POST /api/v1/presets')).toHaveLength(1));
    expect(server.calls('POST /api/v1/presets')[0].body).toEqual({
      name: 'Pirate',
      system_prompt: 'Speak like a pirate.',
      params: { temperature: 1.2 },
    });
  });
});
