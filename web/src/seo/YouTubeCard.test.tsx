import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { desktop, errorResponse, jsonResponse } from '../test/helpers';
import { browser } from './ChannelCard';
import { ChannelNotice } from './ChannelNotice';
import { fakeServer, renderSeo, version } from './testing';
import type { ChannelView } from './types';
import { YouTubeCard } from './YouTubeCard';

beforeEach(() => desktop());

const view = (extra: Partial<ChannelView>): ChannelView => ({
  status: 'none',
  connected_at: null,
  can_connect: true,
  operator_channel: false,
  ...extra,
});

function renderCard(channel: ChannelView, routes = {}, onImported = vi.fn()) {
  const s = fakeServer({ 'GET /api/v1/seo/channel': () => jsonResponse(200, channel), ...routes });
  renderSeo(s.fetch, <YouTubeCard projectId="p1" newest={version(3)} onImported={onImported} />, '/seo/p1', '/seo/:projectId');
  return s;
}

describe('the On YouTube card', () => {
  it('offers to connect a channel, and goes to Google', async () => {
    const go = vi.spyOn(browser, 'go').mockImplementation(() => {});
    const s = renderCard(view({}), {
      'POST /api/v1/seo/channel/connect': () => jsonResponse(200, { authorization_url: 'https://accounts.google.com/o/oauth2?x=1' }),
    });
    expect(await screen.findByText('Not connected')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Disconnect' })).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole('button', { name: 'Connect' }));
    await waitFor(() => expect(go).toHaveBeenCalledWith('https://accounts.google.com/o/oauth2?x=1'));
    expect(s.find('POST', '/api/v1/seo/channel/connect')[0]!.body).toEqual({
      redirect_uri: `${window.location.origin}/api/v1/seo/channel/callback`,
    });
  });

  it('shows a connected channel with Disconnect only', async () => {
    renderCard(view({ status: 'connected', connected_at: 1_760_000_000_000 }));
    expect(await screen.findByText('Connected')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Disconnect' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Connect' })).not.toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Reconnect' })).not.toBeInTheDocument();
  });

  it('asks to reconnect when Google refused the stored grant', async () => {
    renderCard(view({ status: 'reconnect' }));
    expect(await screen.findByRole('button', { name: 'Reconnect' })).toBeInTheDocument();
    expect(screen.getByText('Needs reconnecting')).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Disconnect' })).toBeInTheDocument();
  });

  it('explains why connecting is not possible here', async () => {
    renderCard(view({ can_connect: false }));
    expect(await screen.findByText(/Connecting a channel is not set up on this server/)).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Connect' })).not.toBeInTheDocument();
  });

  it('tells in words that applying needs a channel', async () => {
    renderCard(view({}), {
      'POST /api/v1/seo/projects/p1/apply': () => errorResponse(409, 'no_channel', 'no channel connected'),
    });
    await userEvent.type(await screen.findByLabelText('Video to apply to'), 'abc123');
    await userEvent.click(screen.getByRole('button', { name: 'Apply' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Connect your YouTube channel first.');
  });

  it('applies the newest version and shows what YouTube stored', async () => {
    const s = renderCard(view({ status: 'connected' }), {
      'POST /api/v1/seo/projects/p1/apply': () =>
        jsonResponse(200, { video_id: 'abc123', version: 3, title: 'Stored title', description: 'Stored text', tags: ['bread'] }),
    });
    await userEvent.type(await screen.findByLabelText('Video to apply to'), 'https://youtu.be/abc123');
    await userEvent.click(screen.getByRole('button', { name: 'Apply' }));
    expect(await screen.findByText('Stored title')).toBeInTheDocument();
    expect(s.find('POST', '/api/v1/seo/projects/p1/apply')[0]!.body).toEqual({ video: 'https://youtu.be/abc123', version: 3 });
  });

  it('imports a video as a new version', async () => {
    const onImported = vi.fn();
    renderCard(view({}), { 'POST /api/v1/seo/projects/p1/versions/import': () => jsonResponse(201, version(4, { source: 'imported' })) }, onImported);
    await userEvent.type(await screen.findByLabelText('Video to import'), 'abc123');
    await userEvent.click(screen.getByRole('button', { name: 'Import' }));
    await waitFor(() => expect(onImported).toHaveBeenCalledWith(expect.objectContaining({ number: 4 })));
  });
});

describe('the channel notice', () => {
  it('says why connecting failed', async () => {
    const s = fakeServer({});
    renderSeo(s.fetch, <ChannelNotice />, '/seo?channel=failed&reason=denied');
    expect(await screen.findByRole('alert')).toHaveTextContent('Your YouTube channel was not connected. Access was declined');
  });
});
