import { Alert, Button, Form, Input, Typography } from 'antd';
import { useState } from 'react';
import { Link, useLocation, useNavigate } from 'react-router';
import { ApiError, friendlyMessage } from '../api/errors';
import { useAuth } from '../auth/AuthContext';
import { AuthLayout } from './AuthLayout';

interface Values {
  email: string;
  password: string;
  new_password?: string;
}

export function SignIn() {
  const { signIn, completeReset } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [mustChange, setMustChange] = useState(false);
  const from = (location.state as { from?: string } | null)?.from ?? '/';

  async function onFinish(values: Values) {
    setBusy(true);
    setError(null);
    try {
      if (mustChange && values.new_password) {
        await completeReset(values.email, values.password, values.new_password);
      } else {
        await signIn(values.email, values.password);
      }
      navigate(from, { replace: true });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'account_pending') {
        navigate('/pending', { state: { email: values.email } });
        return;
      }
      if (e instanceof ApiError && e.code === 'password_change_required') setMustChange(true);
      setError(friendlyMessage(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <AuthLayout title="Sign in">
      <Form<Values> layout="vertical" onFinish={onFinish} requiredMark={false} aria-label="Sign in">
        {error && <Alert role="alert" type="error" showIcon title={error} style={{ marginBottom: 16 }} />}
        <Form.Item
          label="Email"
          name="email"
          rules={[{ required: true, type: 'email', message: 'Enter your email address.' }]}
        >
          <Input autoComplete="username" autoFocus />
        </Form.Item>
        <Form.Item label="Password" name="password" rules={[{ required: true, message: 'Enter your password.' }]}>
          <Input.Password autoComplete="current-password" />
        </Form.Item>
        {mustChange && (
          <Form.Item
            label="New password"
            name="new_password"
            rules={[{ required: true, message: 'Choose a new password.' }]}
          >
            <Input.Password autoComplete="new-password" />
          </Form.Item>
        )}
        <Button type="primary" htmlType="submit" block loading={busy}>
          {mustChange ? 'Set password and sign in' : 'Sign in'}
        </Button>
      </Form>
      <Typography.Paragraph style={{ marginTop: 16, marginBottom: 0 }}>
        No account? <Link to="/signup">Create one</Link>
      </Typography.Paragraph>
    </AuthLayout>
  );
}
