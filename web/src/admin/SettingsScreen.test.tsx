import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it } from 'vitest';
import { desktop, errorResponse, jsonResponse } from '../test/helpers';
import type { SettingsView } from './api';
import { settingsPatch } from './SettingsScreen';
import { adminUser, fakeServer, renderAdmin } from './testing';

const v3: SettingsView = {
  settings: {
    registration: 'open',
    default_model: 'small',
    user_models: [],
    limits: { user_requests_per_minute: 60, user_tokens_per_day: 0, key_requests_per_minute: 0, key_tokens_per_day: 0 },
  },
  version: 3,
  updated_at: '2026-03-01T12:00:00.000Z',
  updated_by: adminUser.id,
};

const models = {
  items: [
    { id: 'small', provider: 'embedded', default: true, context_tokens: 4096, local: null },
    { id: 'big', provider: 'openai', default: false, context_tokens: null, local: null },
  ],
};

function settingsServer(patch: () => Response, afterConflict?: SettingsView) {
  let reads = 0;
  return fakeServer({
    'GET /api/v1/admin/settings': () => {
      reads += 1;
      return jsonResponse(200, reads > 1 && afterConflict ? afterConflict : v3);
    },
    'GET /api/v1/models': () => jsonResponse(200, models),
    'GET /api/v1/auth/users': () => jsonResponse(200, { items: [adminUser], next_cursor: null }),
    'PATCH /api/v1/admin/settings': patch,
  });
}

/** Chooses "Approval" and sets the per-user requests per minute to 120. */
async function change() {
  const user = userEvent.setup();
  await user.click(await screen.findByLabelText(/^Approval:/));
  const rpm = screen.getByLabelText('Requests per minute per user');
  await user.clear(rpm);
  await user.type(rpm, '120');
  await user.click(screen.getByText('Save settings'));
}

beforeEach(() => desktop());

describe('settingsPatch', () => {
  it('sends only what changed, with the version', () => {
    const values = {
      registration: 'open' as const,
      default_model: '',
      user_models: ['llama-*'],
      limits: { ...v3.settings.limits, key_tokens_per_day: 5000 },
    };
    expect(settingsPatch(v3, values)).toEqual({
      version: 3,
      default_model: '',
      user_models: ['llama-*'],
      limits: { key_tokens_per_day: 5000 },
    });
  });
});

describe('Settings screen', { timeout: 90_000 }, () => {
  it('shows the settings and saves a change with its version', async () => {
    const server = settingsServer(() =>
      jsonResponse(200, {
        ...v3,
        version: 4,
        settings: { ...v3.settings, registration: 'approval', limits: { ...v3.settings.limits, user_requests_per_minute: 120 } },
      }),
    );
    renderAdmin(server.fetch, '/admin/settings');
    expect(await screen.findByText(/Version 3, changed .* by root@example\.com\./)).toBeInTheDocument();
    await waitFor(() => expect(screen.getByLabelText('Requests per minute per user')).toHaveValue('60'));
    expect(screen.getByLabelText(/^Open:/)).toBeChecked();
    await change();
    await waitFor(() => expect(server.find('PATCH', '/api/v1/admin/settings')).toHaveLength(1));
    expect(server.find('PATCH', '/api/v1/admin/settings')[0].body).toEqual({
      version: 3,
      registration: 'approval',
      limits: { user_requests_per_minute: 120 },
    });
    expect(await screen.findByText(/Version 4/)).toBeInTheDocument();
    expect(screen.getByLabelText(/^Approval:/)).toBeChecked();
  });

  it('on 409 settings_changed says someone else changed them and shows the new ones', async () => {
    const theirs: SettingsView = { ...v3, version: 4, settings: { ...v3.settings, registration: 'closed' } };
    const server = settingsServer(
      () => errorResponse(409, 'settings_changed', 'the settings changed meanwhile (now version 4); read them again'),
      theirs,
    );
    renderAdmin(server.fetch, '/admin/settings');
    await screen.findByText(/Version 3/);
    await change();
    expect(await screen.findByText('The settings changed meanwhile')).toBeInTheDocument();
    expect(screen.getByText(/Someone else changed the settings while you were editing\. The current settings \(version 4\)/)).toBeInTheDocument();
    expect(server.find('GET', '/api/v1/admin/settings')).toHaveLength(2);
    await waitFor(() => expect(screen.getByLabelText(/^Closed:/)).toBeChecked());
    expect(screen.getByLabelText('Requests per minute per user')).toHaveValue('60');
  });

  it('on 422 invalid_settings lists every problem', async () => {
    const problems = [
      'limits.user_requests_per_minute: at most 1000000 (0 means unlimited), got 5000000',
      'user_models[0]: `*` may only end a prefix, as in `llama-*`',
    ];
    const server = settingsServer(() =>
      errorResponse(422, 'invalid_settings', `the settings were not changed: ${problems.join('; ')}`, { details: problems }),
    );
    renderAdmin(server.fetch, '/admin/settings');
    await screen.findByText(/Version 3/);
    await change();
    expect(await screen.findByText('The settings were not saved. Fix these problems:')).toBeInTheDocument();
    for (const p of problems) expect(screen.getByText(p)).toBeInTheDocument();
    // what the admin typed stays for them to fix
    expect(screen.getByLabelText('Requests per minute per user')).toHaveValue('120');
  });
});
