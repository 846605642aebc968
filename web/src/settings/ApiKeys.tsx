import { Alert, App, Button, Checkbox, DatePicker, Form, Input, Modal, Popconfirm, Table, Tag, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import type { Dayjs } from 'dayjs';
import { api } from '../api/client';
import { friendlyMessage } from '../api/errors';
import type { ApiKey, CreatedApiKey } from '../api/types';
import { CopyButton } from '../chat/CopyButton';

const SCOPES = [
  { value: 'inference', label: 'inference (OpenAI-compatible /v1)' },
  { value: 'chat', label: 'chat (conversations)' },
  { value: 'seo', label: 'seo (SEO studio)' },
];

function when(t: string | null): string {
  return t ? new Date(t).toLocaleString() : '—';
}

export function ApiKeys() {
  const { message } = App.useApp();
  const [keys, setKeys] = useState<ApiKey[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [busy, setBusy] = useState(false);
  const [form] = Form.useForm<{ name: string; scopes: string[]; expires_at?: Dayjs }>();

  const load = useCallback(async () => {
    try {
      setKeys((await api.get<{ items: ApiKey[] }>('/api/v1/auth/api-keys')).items);
    } catch (e) {
      setError(friendlyMessage(e));
    }
  }, []);
  useEffect(() => {
    void load();
  }, [load]);

  return (
    <section aria-labelledby="api-keys-title">
      <Typography.Title level={4} id="api-keys-title">
        API keys
      </Typography.Title>
      <Typography.Paragraph type="secondary">
        Keys let programs use this server as you, for example an OpenAI SDK pointed at <code>/v1</code>.
      </Typography.Paragraph>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 12 }} />}
      <Form
        name="api-key"
        form={form}
        layout="inline"
        aria-label="Create API key"
        initialValues={{ scopes: ['inference'] }}
        onFinish={async (v) => {
          setBusy(true);
          try {
            const body: { name: string; scopes: string[]; expires_at?: string } = { name: v.name, scopes: v.scopes };
            if (v.expires_at) body.expires_at = v.expires_at.toDate().toISOString();
            const r = await api.post<CreatedApiKey>('/api/v1/auth/api-keys', body);
            setCreated(r);
            form.resetFields();
            setError(null);
            await load();
          } catch (e) {
            setError(friendlyMessage(e));
          } finally {
            setBusy(false);
          }
        }}
        style={{ rowGap: 8, marginBottom: 16 }}
      >
        <Form.Item label="Key name" name="name" rules={[{ required: true, message: 'Name the key.' }]}>
          <Input placeholder="e.g. laptop script" />
        </Form.Item>
        <Form.Item label="Scopes" name="scopes" rules={[{ required: true, message: 'Choose at least one scope.' }]}>
          <Checkbox.Group options={SCOPES} />
        </Form.Item>
        <Form.Item label="Expires" name="expires_at">
          <DatePicker aria-label="Expires" placeholder="Never" />
        </Form.Item>
        <Form.Item>
          <Button type="primary" htmlType="submit" loading={busy}>
            Create key
          </Button>
        </Form.Item>
      </Form>
      <Table<ApiKey>
        rowKey="id"
        size="small"
        pagination={false}
        dataSource={keys}
        aria-label="API keys"
        locale={{ emptyText: 'No API keys yet.' }}
        scroll={{ x: true }}
        columns={[
          { title: 'Name', dataIndex: 'name' },
          { title: 'Key', dataIndex: 'prefix', render: (p: string) => <code>{p}…</code> },
          { title: 'Scopes', dataIndex: 'scopes', render: (s: string[]) => s.map((x) => <Tag key={x}>{x}</Tag>) },
          { title: 'Created', dataIndex: 'created_at', render: when },
          { title: 'Last used', dataIndex: 'last_used_at', render: when },
          { title: 'Expires', dataIndex: 'expires_at', render: (t: string | null) => (t ? when(t) : 'never') },
          {
            title: '',
            key: 'revoke',
            render: (_: unknown, k) => (
              <Popconfirm
                title={`Revoke “${k.name}”?`}
                description="Programs using it stop working."
                okText="Revoke"
                okButtonProps={{ danger: true }}
                onConfirm={async () => {
                  try {
                    await api.delete(`/api/v1/auth/api-keys/${k.id}`);
                    message.success('Key revoked');
                    await load();
                  } catch (e) {
                    setError(friendlyMessage(e));
                  }
                }}
              >
                <Button danger size="small" aria-label={`Revoke ${k.name}`}>
                  Revoke
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      <Modal
        title="Your new API key"
        open={created !== null}
        onCancel={() => setCreated(null)}
        footer={
          <Button type="primary" onClick={() => setCreated(null)}>
            Done
          </Button>
        }
      >
        <Typography.Paragraph>
          Copy it now: it is shown only once.
        </Typography.Paragraph>
        <div style={{ display: 'flex', gap: 8, alignItems: 'center' }}>
          <Input readOnly value={created?.key} aria-label="New API key" style={{ fontFamily: 'monospace' }} />
          <CopyButton label="Copy key" text={() => created?.key ?? ''} />
        </div>
      </Modal>
    </section>
  );
}
