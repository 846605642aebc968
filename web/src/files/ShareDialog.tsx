// Share links of a file: make one that lasts an hour, a day or a week (its address is shown
// once, with a copy button), see the others and revoke them.
import { LinkOutlined } from '@ant-design/icons';
import { Alert, App, Button, Flex, Input, Modal, Popconfirm, Select, Space, Table, Tag, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { useEffect, useState } from 'react';
import { CopyButton } from '../chat/CopyButton';
import { friendlyMessage } from '../api/errors';
import { absoluteUrl, type FilesApi } from './api';
import { formatWhen } from './format';
import type { FileView, LinkView } from './types';

export const LINK_HOURS = [
  { value: 1, label: '1 hour' },
  { value: 24, label: '1 day' },
  { value: 168, label: '7 days' },
];

function linkState(link: LinkView, now: number): { text: string; color: string } {
  if (link.revoked) return { text: 'revoked', color: 'default' };
  if (Date.parse(link.expires_at) <= now) return { text: 'expired', color: 'default' };
  return { text: 'active', color: 'green' };
}

export interface ShareDialogProps {
  api: FilesApi;
  file: FileView | null;
  onClose(): void;
}

function ShareBody({ api, file }: { api: FilesApi; file: FileView }) {
  const { message } = App.useApp();
  const [hours, setHours] = useState(24);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<string | null>(null);
  const [links, setLinks] = useState<LinkView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    api
      .links(file.id)
      .then((r) => {
        if (live) setLinks(r.links);
      })
      .catch((e: unknown) => {
        if (!live) return;
        setLinks([]);
        setError(`The links could not be listed: ${friendlyMessage(e)}`);
      });
    return () => {
      live = false;
    };
  }, [api, file.id]);

  const create = async () => {
    setCreating(true);
    setError(null);
    try {
      const link = await api.createLink(file.id, hours);
      setCreated(absoluteUrl(link.url));
      setLinks((old) => [link, ...(old ?? []).filter((l) => l.id !== link.id)]);
    } catch (e) {
      setError(`No link was made: ${friendlyMessage(e)}`);
    } finally {
      setCreating(false);
    }
  };

  const revoke = async (link: LinkView) => {
    setRevoking(link.id);
    setError(null);
    try {
      await api.revokeLink(file.id, link.id);
      setLinks((old) => (old ?? []).map((l) => (l.id === link.id ? { ...l, revoked: true } : l)));
      message.success('The link was revoked.');
    } catch (e) {
      setError(`The link was not revoked: ${friendlyMessage(e)}`);
    } finally {
      setRevoking(null);
    }
  };

  const now = Date.now();
  const columns: ColumnsType<LinkView> = [
    { title: 'Created', dataIndex: 'created_at', key: 'created', render: (t: string) => formatWhen(t) },
    { title: 'Expires', dataIndex: 'expires_at', key: 'expires', render: (t: string) => formatWhen(t) },
    {
      title: 'State',
      key: 'state',
      render: (_, link) => {
        const s = linkState(link, now);
        return <Tag color={s.color}>{s.text}</Tag>;
      },
    },
    {
      title: '',
      key: 'actions',
      render: (_, link) =>
        linkState(link, now).text === 'active' && (
          <Popconfirm
            title="Revoke this link?"
            description="Whoever has it can no longer download the file."
            okText="Revoke"
            okButtonProps={{ danger: true }}
            onConfirm={() => revoke(link)}
          >
            <Button
              size="small"
              danger
              loading={revoking === link.id}
              aria-label={`Revoke the link created ${formatWhen(link.created_at)}`}
            >
              Revoke
            </Button>
          </Popconfirm>
        ),
    },
  ];

  return (
    <>
      <Typography.Paragraph type="secondary">
        Anyone with the link can download {file.name} without signing in, until it expires or you revoke it.
      </Typography.Paragraph>
      <Space wrap style={{ marginBottom: 12 }}>
        <Select
          aria-label="Link lasts"
          value={hours}
          onChange={(v: number) => setHours(v)}
          options={LINK_HOURS}
          style={{ width: 120 }}
        />
        <Button type="primary" icon={<LinkOutlined />} loading={creating} onClick={() => void create()}>
          Create link
        </Button>
      </Space>
      {created && (
        <Flex gap={4} align="center" style={{ marginBottom: 12 }}>
          <Input readOnly value={created} aria-label="Share link" onFocus={(e) => e.target.select()} />
          <CopyButton label="Copy link" text={() => created} />
        </Flex>
      )}
      {error && <Alert type="error" showIcon role="alert" title={error} style={{ marginBottom: 12 }} />}
      <Typography.Title level={5}>Links</Typography.Title>
      <Table<LinkView>
        rowKey="id"
        size="small"
        columns={columns}
        dataSource={links ?? []}
        loading={links === null}
        pagination={false}
        locale={{ emptyText: 'No links yet.' }}
      />
    </>
  );
}

export function ShareDialog({ api, file, onClose }: ShareDialogProps) {
  return (
    <Modal open={file !== null} title={file ? `Share ${file.name}` : 'Share'} onCancel={onClose} footer={null} destroyOnHidden width={640}>
      {file && <ShareBody api={api} file={file} />}
    </Modal>
  );
}
