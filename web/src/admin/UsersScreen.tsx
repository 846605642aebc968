import { CheckOutlined, DeleteOutlined, KeyOutlined, LockOutlined, MoreOutlined, UnlockOutlined } from '@ant-design/icons';
import { Alert, App, Button, Dropdown, Input, Modal, Popconfirm, Select, Space, Table, Tag, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { useCallback, useState } from 'react';
import { Link } from 'react-router';
import { friendlyMessage } from '../api/errors';
import { query } from '../api/query';
import type { Page, User } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { CopyButton } from '../chat/CopyButton';
import { formatTime, type PasswordReset, type UserDeletion, type UserStatusFilter } from './api';
import { ErrorAlert, LoadMore } from './common';
import { useUserDirectory } from './directory';
import { useCursorPages } from './useCursorPages';

const PAGE = 50;

const STATUS_COLORS: Record<string, string> = { active: 'green', pending: 'orange', disabled: 'red' };

interface Filters {
  q: string;
  status?: UserStatusFilter;
}

export default function UsersScreen() {
  const { client, user: me } = useAuth();
  const { message, modal } = App.useApp();
  const directory = useUserDirectory();
  const [filters, setFilters] = useState<Filters>({ q: '' });
  const [search, setSearch] = useState('');
  const [busy, setBusy] = useState<string | null>(null);
  const [reset, setReset] = useState<{ email: string; password: string } | null>(null);
  const [deletion, setDeletion] = useState<{ email: string; jobId: string } | null>(null);

  const fetchPage = useCallback(
    (cursor: string | null) =>
      client.get<Page<User>>(`/api/v1/auth/users${query({ q: filters.q.trim(), status: filters.status, limit: PAGE, cursor })}`),
    [client, filters],
  );
  const pages = useCursorPages(fetchPage);
  const { setItems: setUsers, setError, reload } = pages;

  const replace = (updated: User) => setUsers((old) => old.map((u) => (u.id === updated.id ? updated : u)));

  /** Runs one action on a user, showing its error in words. */
  const act = async (key: string, run: () => Promise<void>) => {
    setBusy(key);
    try {
      await run();
      setError(null);
    } catch (e) {
      setError(friendlyMessage(e));
    } finally {
      setBusy(null);
    }
  };

  const approve = (u: User) =>
    act(`approve:${u.id}`, async () => {
      replace(await client.post<User>(`/api/v1/auth/users/${u.id}/approve`));
      message.success(`${u.email} approved`);
    });

  const changeRole = (u: User, role: string) =>
    act(`role:${u.id}`, async () => {
      replace(await client.patch<User>(`/api/v1/auth/users/${u.id}`, { role }));
      message.success(`${u.email} is now ${role === 'admin' ? 'an admin' : 'a user'}`);
    });

  const setRole = (u: User, role: string) => {
    if (u.id !== me?.id || role === 'admin') return void changeRole(u, role);
    modal.confirm({
      title: 'Remove your own admin role?',
      content: 'You lose access to this console at once; only another admin can give it back.',
      okText: 'Remove my admin role',
      okButtonProps: { danger: true },
      onOk: () => changeRole(u, role),
    });
  };

  const lock = (u: User) =>
    act(`lock:${u.id}`, async () => {
      replace(await client.post<User>(`/api/v1/auth/users/${u.id}/lock`));
      message.success(`${u.email} locked and signed out`);
    });

  const unlock = (u: User) =>
    act(`unlock:${u.id}`, async () => {
      replace(await client.post<User>(`/api/v1/auth/users/${u.id}/unlock`));
      message.success(u.status === 'disabled' ? `${u.email} unlocked` : `Sign-in lockout of ${u.email} ended`);
    });

  const resetPassword = (u: User) =>
    modal.confirm({
      title: `Reset the password of ${u.email}?`,
      content:
        'They are signed out everywhere, their API keys are revoked, and they get a temporary password that only lets them choose a new one.',
      okText: 'Reset password',
      onOk: () =>
        act(`reset:${u.id}`, async () => {
          const r = await client.post<PasswordReset>(`/api/v1/auth/users/${u.id}/password-reset`);
          setReset({ email: u.email, password: r.temporary_password });
          void reload();
        }),
    });

  const remove = (u: User) =>
    modal.confirm({
      title: `Delete ${u.email}?`,
      content:
        'The account is disabled at once; a background task then deletes their conversations, presets, share links and API keys, and the account. This cannot be undone.',
      okText: 'Delete user',
      okButtonProps: { danger: true },
      onOk: () =>
        act(`delete:${u.id}`, async () => {
          const r = await client.delete<UserDeletion>(`/api/v1/auth/users/${u.id}`);
          setDeletion({ email: u.email, jobId: r.job_id });
          void reload();
          void directory.reload();
        }),
    });

  const columns: ColumnsType<User> = [
    {
      title: 'Email',
      dataIndex: 'email',
      key: 'email',
      render: (email: string, u) => (
        <Space size={4} wrap>
          <Typography.Text strong={u.status === 'pending'}>{email}</Typography.Text>
          {u.id === me?.id && <Tag>you</Tag>}
          {u.must_change_password && <Tag color="gold">must change password</Tag>}
        </Space>
      ),
    },
    { title: 'Name', dataIndex: 'name', key: 'name' },
    {
      title: 'Role',
      dataIndex: 'role',
      key: 'role',
      render: (role: string, u) => (
        <Select
          size="small"
          aria-label={`Role of ${u.email}`}
          value={role}
          disabled={busy === `role:${u.id}`}
          onChange={(r: string) => void setRole(u, r)}
          options={[
            { value: 'user', label: 'User' },
            { value: 'admin', label: 'Admin' },
          ]}
          style={{ width: 96 }}
        />
      ),
    },
    {
      title: 'Status',
      dataIndex: 'status',
      key: 'status',
      render: (status: string) => <Tag color={STATUS_COLORS[status]}>{status}</Tag>,
    },
    {
      title: 'Groups',
      dataIndex: 'groups',
      key: 'groups',
      render: (groups: string[]) => (groups.length ? groups.map((g) => <Tag key={g}>{g}</Tag>) : '—'),
    },
    { title: 'Created', dataIndex: 'created_at', key: 'created', render: (t: string) => formatTime(t) },
    {
      title: 'Actions',
      key: 'actions',
      render: (_, u) => {
        const self = u.id === me?.id;
        return (
          <Space size={4} wrap={false}>
            {u.status === 'pending' && (
              <Button
                type="primary"
                size="small"
                icon={<CheckOutlined aria-hidden="true" />}
                aria-label={`Approve ${u.email}`}
                loading={busy === `approve:${u.id}`}
                onClick={() => void approve(u)}
              >
                Approve
              </Button>
            )}
            {u.status === 'disabled' ? (
              <Button
                size="small"
                icon={<UnlockOutlined aria-hidden="true" />}
                aria-label={`Unlock ${u.email}`}
                loading={busy === `unlock:${u.id}`}
                onClick={() => void unlock(u)}
              >
                Unlock
              </Button>
            ) : (
              <Popconfirm
                title={`Lock ${u.email}?`}
                description="They are signed out at once and their API keys stop working until unlocked."
                okText="Lock"
                onConfirm={() => lock(u)}
                disabled={self}
              >
                <Button
                  size="small"
                  icon={<LockOutlined aria-hidden="true" />}
                  aria-label={`Lock ${u.email}`}
                  title={self ? 'You cannot lock your own account' : undefined}
                  disabled={self}
                  loading={busy === `lock:${u.id}`}
                >
                  Lock
                </Button>
              </Popconfirm>
            )}
            <Dropdown
              trigger={['click']}
              menu={{
                items: [
                  { key: 'reset', icon: <KeyOutlined aria-hidden="true" />, label: 'Reset password' },
                  ...(u.status !== 'disabled'
                    ? [{ key: 'unlock', icon: <UnlockOutlined aria-hidden="true" />, label: 'End sign-in lockout' }]
                    : []),
                  { type: 'divider' as const },
                  {
                    key: 'delete',
                    icon: <DeleteOutlined aria-hidden="true" />,
                    label: 'Delete user',
                    danger: true,
                    disabled: self,
                  },
                ],
                onClick: ({ key }) => {
                  if (key === 'reset') resetPassword(u);
                  else if (key === 'unlock') void unlock(u);
                  else if (key === 'delete') remove(u);
                },
              }}
            >
              <Button size="small" icon={<MoreOutlined aria-hidden="true" />} aria-label={`More actions for ${u.email}`} />
            </Dropdown>
          </Space>
        );
      },
    },
  ];

  return (
    <section aria-labelledby="admin-users-title">
      <Typography.Title level={3} id="admin-users-title">
        Users
      </Typography.Title>
      <Space wrap style={{ marginBottom: 12 }}>
        <Input.Search
          aria-label="Search users"
          placeholder="Email or name"
          allowClear
          value={search}
          onChange={(e) => {
            setSearch(e.target.value);
            if (!e.target.value) setFilters((f) => ({ ...f, q: '' }));
          }}
          onSearch={(q) => setFilters((f) => ({ ...f, q }))}
          style={{ width: 260 }}
        />
        <Select
          aria-label="Status"
          value={filters.status ?? ''}
          onChange={(v: string) => setFilters((f) => ({ ...f, status: (v || undefined) as UserStatusFilter | undefined }))}
          options={[
            { value: '', label: 'Any status' },
            { value: 'pending', label: 'Pending approval' },
            { value: 'active', label: 'Active' },
            { value: 'disabled', label: 'Disabled' },
          ]}
          style={{ width: 180 }}
        />
      </Space>
      <ErrorAlert error={pages.error} onClose={() => setError(null)} />
      {deletion && (
        <Alert
          type="info"
          showIcon
          role="status"
          title={`Deleting ${deletion.email}`}
          description={
            <>
              The account is disabled; a background task (job {deletion.jobId}) is deleting their data. Follow it under{' '}
              <Link to="/admin/jobs">Background tasks</Link>.
            </>
          }
          closable={{ onClose: () => setDeletion(null) }}
          style={{ marginBottom: 12 }}
        />
      )}
      <Table<User>
        rowKey="id"
        size="middle"
        columns={columns}
        dataSource={pages.items}
        loading={pages.loading}
        pagination={false}
        scroll={{ x: 'max-content' }}
        rowClassName={(u) => (u.status === 'pending' ? 'admin-row-pending' : '')}
        locale={{ emptyText: filters.q || filters.status ? 'No user matches these filters.' : 'No users yet.' }}
      />
      <LoadMore pages={pages} />
      <Modal
        open={reset !== null}
        title={`Temporary password for ${reset?.email ?? ''}`}
        onCancel={() => setReset(null)}
        footer={
          <Button type="primary" onClick={() => setReset(null)}>
            Done
          </Button>
        }
        destroyOnHidden
      >
        <Typography.Paragraph>
          Hand this password to the user. It is shown only now; it lets them sign in once to choose a new password.
        </Typography.Paragraph>
        <Space style={{ width: '100%' }}>
          <Input readOnly aria-label="Temporary password" value={reset?.password ?? ''} style={{ fontFamily: 'monospace', minWidth: 220 }} />
          <CopyButton text={() => reset?.password ?? ''} label="Copy temporary password" />
        </Space>
      </Modal>
    </section>
  );
}
