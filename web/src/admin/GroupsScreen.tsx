import { CloseOutlined, DeleteOutlined, PlusOutlined } from '@ant-design/icons';
import { App, Button, Card, Empty, Form, Input, Popconfirm, Space, Spin, Tag, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { friendlyMessage } from '../api/errors';
import { useAuth } from '../auth/AuthContext';
import { formatTime, type Group } from './api';
import { ErrorAlert } from './common';
import { UserPicker, userLabel, useUserDirectory } from './directory';

function GroupCard({
  group,
  onChanged,
  onError,
}: {
  group: Group;
  onChanged(): Promise<void>;
  onError(e: unknown): void;
}) {
  const { client } = useAuth();
  const { message } = App.useApp();
  const { byId } = useUserDirectory();
  const [adding, setAdding] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    try {
      await work();
      await onChanged();
    } catch (e) {
      onError(e);
    } finally {
      setBusy(false);
    }
  };

  const add = (userId: string) =>
    run(async () => {
      await client.request('PUT', `/api/v1/auth/groups/${group.id}/members/${userId}`);
      message.success(`${userLabel(byId, userId)} added to ${group.name}`);
      setAdding(undefined);
    });

  const removeMember = (userId: string) =>
    run(async () => {
      await client.delete(`/api/v1/auth/groups/${group.id}/members/${userId}`);
      message.success(`${userLabel(byId, userId)} removed from ${group.name}`);
    });

  const titleId = `group-${group.id}`;
  return (
    <Card
      size="small"
      title={<span id={titleId}>{group.name}</span>}
      aria-labelledby={titleId}
      role="region"
      extra={
        <Popconfirm
          title={`Delete the group ${group.name}?`}
          description="Its members stay; only the group goes."
          okText="Delete group"
          okButtonProps={{ danger: true }}
          onConfirm={() =>
            run(async () => {
              await client.delete(`/api/v1/auth/groups/${group.id}`);
              message.success(`Group ${group.name} deleted`);
            })
          }
        >
          <Button size="small" danger icon={<DeleteOutlined aria-hidden="true" />} aria-label={`Delete group ${group.name}`} />
        </Popconfirm>
      }
    >
      <Typography.Paragraph type="secondary" style={{ marginBottom: 8 }}>
        {group.members.length} member{group.members.length === 1 ? '' : 's'} · created {formatTime(group.created_at)}
      </Typography.Paragraph>
      <div aria-label={`Members of ${group.name}`} role="list" style={{ marginBottom: 12 }}>
        {group.members.length === 0 && <Typography.Text type="secondary">No members yet.</Typography.Text>}
        {group.members.map((id) => (
          <span role="listitem" key={id}>
            <Tag style={{ marginBottom: 4, paddingInlineEnd: 0 }}>
              {userLabel(byId, id)}
              <Button
                type="text"
                size="small"
                icon={<CloseOutlined aria-hidden="true" />}
                aria-label={`Remove ${userLabel(byId, id)} from ${group.name}`}
                disabled={busy}
                onClick={() => void removeMember(id)}
                style={{ height: 20, width: 20, minWidth: 20, marginInlineStart: 2 }}
              />
            </Tag>
          </span>
        ))}
      </div>
      <Space wrap>
        <UserPicker
          aria-label={`User to add to ${group.name}`}
          value={adding}
          onChange={setAdding}
          exclude={group.members}
          disabled={busy}
        />
        <Button
          icon={<PlusOutlined aria-hidden="true" />}
          disabled={!adding}
          loading={busy}
          onClick={() => adding && void add(adding)}
          aria-label={`Add member to ${group.name}`}
        >
          Add
        </Button>
      </Space>
    </Card>
  );
}

export default function GroupsScreen() {
  const { client } = useAuth();
  const { message } = App.useApp();
  const [groups, setGroups] = useState<Group[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [creating, setCreating] = useState(false);
  const [form] = Form.useForm<{ name: string }>();

  const load = useCallback(async () => {
    try {
      setGroups((await client.get<{ items: Group[] }>('/api/v1/auth/groups')).items);
    } catch (e) {
      setError(friendlyMessage(e));
    }
  }, [client]);

  useEffect(() => {
    void load();
  }, [load]);

  return (
    <section aria-labelledby="admin-groups-title">
      <Typography.Title level={3} id="admin-groups-title">
        Groups
      </Typography.Title>
      <Form
        form={form}
        layout="inline"
        aria-label="Create group"
        style={{ rowGap: 8, marginBottom: 16 }}
        onFinish={async ({ name }) => {
          setCreating(true);
          try {
            const group = await client.post<Group>('/api/v1/auth/groups', { name: name.trim() });
            form.resetFields();
            setError(null);
            message.success(`Group ${group.name} created`);
            await load();
          } catch (e) {
            setError(friendlyMessage(e));
          } finally {
            setCreating(false);
          }
        }}
      >
        <Form.Item label="Group name" name="name" rules={[{ required: true, whitespace: true, message: 'Name the group.' }]}>
          <Input maxLength={100} />
        </Form.Item>
        <Form.Item>
          <Button type="primary" htmlType="submit" loading={creating} icon={<PlusOutlined aria-hidden="true" />}>
            Create group
          </Button>
        </Form.Item>
      </Form>
      <Typography.Paragraph type="secondary">
        Groups are named sets of users. A group cannot be renamed: create one with the new name, move the members, and
        delete the old one.
      </Typography.Paragraph>
      <ErrorAlert error={error} onClose={() => setError(null)} />
      {groups === null ? (
        !error && <Spin aria-label="Loading groups" />
      ) : groups.length === 0 ? (
        <Empty description="No groups yet." />
      ) : (
        <Space orientation="vertical" style={{ width: '100%' }} size={12}>
          {groups.map((g) => (
            <GroupCard key={g.id} group={g} onChanged={load} onError={(e) => setError(friendlyMessage(e))} />
          ))}
        </Space>
      )}
    </section>
  );
}
