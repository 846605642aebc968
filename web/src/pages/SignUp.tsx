import { Alert, Button, Form, Input, Typography } from 'antd';
import { useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { ApiError, friendlyMessage } from '../api/errors';
import { useAuth } from '../auth/AuthContext';
import { AuthLayout } from './AuthLayout';

interface Values {
  name: string;
  email: string;
  password: string;
}

export function SignUp() {
  const { signUp } = useAuth();
  const navigate = useNavigate();
  const [error, setError] = useState<{ text: string; details: string[] } | null>(null);
  const [busy, setBusy] = useState(false);

  async function onFinish(values: Values) {
    setBusy(true);
    setError(null);
    try {
      const user = await signUp(values.email, values.password, values.name);
      if (user.status === 'pending') navigate('/pending', { replace: true, state: { email: user.email } });
      else navigate('/', { replace: true });
    } catch (e) {
      if (e instanceof ApiError && e.code === 'weak_password' && e.details.length) {
        setError({ text: 'Choose a stronger password:', details: e.details });
      } else {
        setError({ text: friendlyMessage(e), details: [] });
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <AuthLayout title="Create your account">
      <Form<Values> layout="vertical" onFinish={onFinish} requiredMark={false} aria-label="Sign up">
        {error && (
          <Alert
            role="alert"
            type="error"
            showIcon
            style={{ marginBottom: 16 }}
            title={error.text}
            description={
              error.details.length ? (
                <ul style={{ margin: 0, paddingLeft: 20 }}>
                  {error.details.map((d) => (
                    <li key={d}>{d}</li>
                  ))}
                </ul>
              ) : undefined
            }
          />
        )}
        <Form.Item label="Name" name="name" rules={[{ required: true, message: 'Enter your name.' }]}>
          <Input autoComplete="name" autoFocus />
        </Form.Item>
        <Form.Item
          label="Email"
          name="email"
          rules={[{ required: true, type: 'email', message: 'Enter your email address.' }]}
        >
          <Input autoComplete="email" />
        </Form.Item>
        <Form.Item label="Password" name="password" rules={[{ required: true, message: 'Choose a password.' }]}>
          <Input.Password autoComplete="new-password" />
        </Form.Item>
        <Button type="primary" htmlType="submit" block loading={busy}>
          Sign up
        </Button>
      </Form>
      <Typography.Paragraph style={{ marginTop: 16, marginBottom: 0 }}>
        Already have an account? <Link to="/signin">Sign in</Link>
      </Typography.Paragraph>
    </AuthLayout>
  );
}
