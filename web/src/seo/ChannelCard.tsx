import { Alert, Button, Popconfirm, Space, Tag, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { seoMessage } from './errors';
import type { ChannelView } from './types';
import { useSeoApi } from './useSeoApi';

export const CALLBACK_PATH = '/api/v1/seo/channel/callback';

/** Sends the browser to Google's consent page (a seam for tests). */
export const browser = { go: (url: string) => window.location.assign(url) };

/** The user's YouTube channel: its status, and connecting, reconnecting or disconnecting it. */
export function ChannelStatus() {
  const seo = useSeoApi();
  const [channel, setChannel] = useState<ChannelView | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    try {
      setChannel(await seo.channel());
    } catch (e) {
      setError(seoMessage(e));
    }
  }, [seo]);

  useEffect(() => {
    void load();
  }, [load]);

  const connect = async () => {
    setBusy(true);
    setError(null);
    try {
      const { authorization_url } = await seo.connect(`${window.location.origin}${CALLBACK_PATH}`);
      browser.go(authorization_url);
    } catch (e) {
      setError(seoMessage(e));
      setBusy(false);
    }
  };

  const disconnect = async () => {
    setBusy(true);
    setError(null);
    try {
      await seo.disconnect();
      await load();
    } catch (e) {
      setError(seoMessage(e));
    } finally {
      setBusy(false);
    }
  };

  if (!channel) {
    return error ? <Alert type="error" showIcon role="alert" title={error} /> : <Typography.Text type="secondary">Checking your channel…</Typography.Text>;
  }
  const status = channel.status;
  return (
    <Space direction="vertical" size={8} style={{ width: '100%' }}>
      <div>
        <Typography.Text>Channel: </Typography.Text>
        {status === 'connected' && <Tag color="green">Connected</Tag>}
        {status === 'reconnect' && <Tag color="orange">Needs reconnecting</Tag>}
        {status === 'none' && <Tag>Not connected</Tag>}
        {status === 'connected' && channel.connected_at ? (
          <Typography.Text type="secondary">since {new Date(channel.connected_at).toLocaleDateString()}</Typography.Text>
        ) : null}
      </div>
      {status === 'reconnect' && (
        <Typography.Text type="warning">Google no longer accepts the stored connection. Reconnect to apply packages again.</Typography.Text>
      )}
      <Space wrap>
        {channel.can_connect && status === 'none' && (
          <Button type="primary" loading={busy} onClick={() => void connect()}>
            Connect
          </Button>
        )}
        {channel.can_connect && status === 'reconnect' && (
          <Button type="primary" loading={busy} onClick={() => void connect()}>
            Reconnect
          </Button>
        )}
        {status !== 'none' && (
          <Popconfirm title="Disconnect your YouTube channel?" okText="Disconnect" onConfirm={() => void disconnect()}>
            <Button danger loading={busy}>
              Disconnect
            </Button>
          </Popconfirm>
        )}
      </Space>
      {!channel.can_connect && (
        <Typography.Text type="secondary">
          Connecting a channel is not set up on this server: an administrator needs to give it an OAuth client
          (YOUTUBE_CREDENTIALS).
          {channel.operator_channel ? ' Administrators can apply packages to the server’s own channel.' : ''}
        </Typography.Text>
      )}
      {error && <Alert type="error" showIcon role="alert" title={error} />}
    </Space>
  );
}
