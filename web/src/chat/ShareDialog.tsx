// Share links of a conversation: make a read-only link to a snapshot of its current branch,
// see the links that still work, copy them and revoke them.
import { LinkOutlined } from '@ant-design/icons';
import { Alert, App, Button, Flex, Input, Modal, Popconfirm, Spin, Typography } from 'antd';
import { useEffect, useState } from 'react';
import type { ChatApi } from '../api/chat';
import { friendlyMessage } from '../api/errors';
import type { Conversation, ShareLink } from '../api/types';
import { CopyButton } from './CopyButton';

/** The link's address on this site (the server gives `/s/{token}`). */
export function shareUrl(link: ShareLink): string {
  return new URL(link.url, window.location.origin).toString();
}

function formatWhen(iso: string): string {
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
}

export interface ShareDialogProps {
  api: ChatApi;
  /** The conversation to share; `null` closes the dialog. */
  conversation: Conversation | null;
  onClose(): void;
}

function ShareBody({ api, conversation }: { api: ChatApi; conversation: Conversation }) {
  const { message } = App.useApp();
  const [links, setLinks] = useState<ShareLink[] | null>(null);
  const [created, setCreated] = useState<ShareLink | null>(null);
  const [creating, setCreating] = useState(false);
  const [revoking, setRevoking] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    api
      .shares(conversation.id)
      .then((items) => {
        if (live) setLinks(items.filter((l) => !l.revoked));
      })
      .catch((e: unknown) => {
        if (!live) return;
        setLinks([]);
        setError(`The links could not be listed: ${friendlyMessage(e)}`);
      });
    return () => {
      live = false;
    };
  }, [api, conversation.id]);

  const create = async () => {
    setCreating(true);
    setError(null);
    try {
      const link = await api.createShare(conversation.id);
      setCreated(link);
      setLinks((old) => [link, ...(old ?? []).filter((l) => l.token !== link.token)]);
    } catch (e) {
      setError(`No link was made: ${friendlyMessage(e)}`);
    } finally {
      setCreating(false);
    }
  };

  const revoke = async (link: ShareLink) => {
    setRevoking(link.token);
    setError(null);
    try {
      await api.revokeShare(link.token);
      setLinks((old) => (old ?? []).filter((l) => l.token !== link.token));
      setCreated((c) => (c?.token === link.token ? null : c));
      message.success('The link was revoked.');
    } catch (e) {
      setError(`The link was not revoked: ${friendlyMessage(e)}`);
    } finally {
      setRevoking(null);
    }
  };

  return (
    <>
      <Typography.Paragraph type="secondary">
        A link shows a snapshot of this conversation’s current branch — its messages, attached images and file
        names — to anyone who has it, without signing in, until you revoke it. Later messages are not shown.
      </Typography.Paragraph>
      <Button
        type="primary"
        icon={<LinkOutlined aria-hidden />}
        loading={creating}
        onClick={() => void create()}
        style={{ marginBottom: 12 }}
      >
        Create link
      </Button>
      {created && (
        <Flex gap={4} align="center" style={{ marginBottom: 12 }}>
          <Input readOnly value={shareUrl(created)} aria-label="New share link" onFocus={(e) => e.target.select()} />
          <CopyButton label="Copy new link" text={() => shareUrl(created)} />
        </Flex>
      )}
      {error && <Alert type="error" showIcon role="alert" title={error} style={{ marginBottom: 12 }} />}
      <Typography.Title level={5} id="share-links-title">
        Links
      </Typography.Title>
      {links === null ? (
        <Spin size="small" aria-label="Loading share links" />
      ) : links.length === 0 ? (
        <Typography.Paragraph type="secondary">No links yet.</Typography.Paragraph>
      ) : (
        <ul aria-labelledby="share-links-title" style={{ listStyle: 'none', margin: 0, padding: 0 }}>
          {links.map((link) => {
            const url = shareUrl(link);
            const when = formatWhen(link.created_at);
            return (
              <li key={link.token} style={{ padding: '6px 0', borderTop: '1px solid rgba(5, 5, 5, 0.06)' }}>
                <Flex gap={8} align="center">
                  <div style={{ flex: 1, minWidth: 0 }}>
                    <Typography.Text ellipsis={{ tooltip: url }} style={{ display: 'block' }}>
                      <a href={url} target="_blank" rel="noreferrer">
                        {url}
                      </a>
                    </Typography.Text>
                    <Typography.Text type="secondary">Created {when}</Typography.Text>
                  </div>
                  <CopyButton label={`Copy the link created ${when}`} text={() => url} />
                  <Popconfirm
                    title="Revoke this link?"
                    description="Whoever has it can no longer read the conversation."
                    okText="Revoke"
                    okButtonProps={{ danger: true }}
                    onConfirm={() => revoke(link)}
                  >
                    <Button
                      size="small"
                      danger
                      loading={revoking === link.token}
                      aria-label={`Revoke the link created ${when}`}
                    >
                      Revoke
                    </Button>
                  </Popconfirm>
                </Flex>
              </li>
            );
          })}
        </ul>
      )}
    </>
  );
}

export function ShareDialog({ api, conversation, onClose }: ShareDialogProps) {
  const name = conversation ? conversation.title || 'New chat' : '';
  return (
    <Modal
      open={conversation !== null}
      title={conversation ? `Share “${name}”` : 'Share'}
      onCancel={onClose}
      footer={null}
      destroyOnHidden
      width={640}
    >
      {conversation && <ShareBody api={api} conversation={conversation} />}
    </Modal>
  );
}
