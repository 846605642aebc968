import { ArrowLeftOutlined, LogoutOutlined } from '@ant-design/icons';
import { Alert, App, Button, Card, Divider, Form, Input, Radio, Space, Typography } from 'antd';
import { useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { ApiError, friendlyMessage } from '../api/errors';
import type { User } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { useTheme, type ThemeMode } from '../theme/ThemeContext';
import { ApiKeys } from './ApiKeys';
import { DataTransfer } from './DataTransfer';

function Profile() {
  const { user, setUser, client } = useAuth();
  const { message } = App.useApp();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <section aria-labelledby="profile-title">
      <Typography.Title level={4} id="profile-title">
        Profile
      </Typography.Title>
      <Typography.Paragraph type="secondary">
        {user?.email} · {user?.role}
      </Typography.Paragraph>
      {error && <Alert type="error" showIcon title={error} style={{ marginBottom: 12 }} />}
      <Form
        name="profile"
        layout="inline"
        aria-label="Profile"
        initialValues={{ name: user?.name }}
        onFinish={async ({ name }: { name: string }) => {
          setBusy(true);
          try {
            setUser(await client.patch<User>('/api/v1/auth/me', { name }));
            setError(null);
            message.success('Name saved');
          } catch (e) {
            setError(friendlyMessage(e));
          } finally {
            setBusy(false);
          }
        }}
      >
        <Form.Item label="Name" name="name" rules={[{ required: true, message: 'Enter your name.' }]}>
          <Input autoComplete="name" />
        </Form.Item>
        <Form.Item>
          <Button htmlType="submit" loading={busy}>
            Save name
          </Button>
        </Form.Item>
      </Form>
    </section>
  );
}

function Password() {
  const { client } = useAuth();
  const { message } = App.useApp();
  const [form] = Form.useForm();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ text: string; details: string[] } | null>(null);
  return (
    <section aria-labelledby="password-title">
      <Typography.Title level={4} id="password-title">
        Password
      </Typography.Title>
      <Typography.Paragraph type="secondary">
        Changing your password signs out your other sessions and revokes all your API keys.
      </Typography.Paragraph>
      {error && (
        <Alert
          type="error"
          showIcon
          role="alert"
          title={error.text}
          description={error.details.length ? error.details.join('; ') : undefined}
          style={{ marginBottom: 12 }}
        />
      )}
      <Form
        form={form}
        layout="vertical"
        style={{ maxWidth: 360 }}
        aria-label="Change password"
        onFinish={async (v: { current_password: string; new_password: string }) => {
          setBusy(true);
          try {
            await client.post('/api/v1/auth/password', v);
            form.resetFields();
            setError(null);
            message.success('Password changed; other sessions signed out and API keys revoked');
          } catch (e) {
            setError(
              e instanceof ApiError && e.code === 'weak_password'
                ? { text: 'Choose a stronger password:', details: e.details.length ? e.details : [e.message] }
                : { text: friendlyMessage(e), details: [] },
            );
          } finally {
            setBusy(false);
          }
        }}
      >
        <Form.Item label="Current password" name="current_password" rules={[{ required: true, message: 'Enter your current password.' }]}>
          <Input.Password autoComplete="current-password" />
        </Form.Item>
        <Form.Item label="New password" name="new_password" rules={[{ required: true, message: 'Choose a new password.' }]}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Form.Item
          label="Repeat new password"
          name="repeat"
          dependencies={['new_password']}
          rules={[
            { required: true, message: 'Repeat the new password.' },
            ({ getFieldValue }) => ({
              validator: (_, value) =>
                !value || getFieldValue('new_password') === value
                  ? Promise.resolve()
                  : Promise.reject(new Error('The passwords differ.')),
            }),
          ]}
        >
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Button htmlType="submit" loading={busy}>
          Change password
        </Button>
      </Form>
    </section>
  );
}

function Appearance() {
  const { mode, setMode } = useTheme();
  return (
    <section aria-labelledby="theme-title">
      <Typography.Title level={4} id="theme-title">
        Theme
      </Typography.Title>
      <Radio.Group
        aria-label="Theme"
        value={mode}
        onChange={(e) => setMode(e.target.value as ThemeMode)}
        optionType="button"
        options={[
          { value: 'light', label: 'Light' },
          { value: 'dark', label: 'Dark' },
          { value: 'system', label: 'System' },
        ]}
      />
    </section>
  );
}

export default function SettingsPage() {
  const { signOut, user } = useAuth();
  const navigate = useNavigate();
  return (
    <main className="settings-page">
      <Space style={{ width: '100%', justifyContent: 'space-between', marginBottom: 8 }}>
        <Link to="/">
          <ArrowLeftOutlined /> Back to chat
        </Link>
        <Button
          icon={<LogoutOutlined />}
          onClick={async () => {
            await signOut();
            navigate('/signin', { replace: true });
          }}
        >
          Sign out
        </Button>
      </Space>
      <Typography.Title level={2}>Settings</Typography.Title>
      {user?.must_change_password && (
        <Alert type="warning" showIcon title="Choose a new password before continuing." style={{ marginBottom: 16 }} />
      )}
      <Card>
        <Profile />
        <Divider />
        <Password />
        <Divider />
        <Appearance />
        <Divider />
        <ApiKeys />
        <Divider />
        <DataTransfer />
      </Card>
    </main>
  );
}
