import { ClockCircleOutlined } from '@ant-design/icons';
import { Button, Result } from 'antd';
import { useLocation, useNavigate } from 'react-router';

export function Pending() {
  const navigate = useNavigate();
  const email = (useLocation().state as { email?: string } | null)?.email;
  return (
    <main className="auth-page">
      <Result
        icon={<ClockCircleOutlined />}
        title="Waiting for approval"
        subTitle={
          <>
            Your account{email ? <> ({email})</> : null} has been created, and an administrator needs to approve
            it before you can sign in. Try again once they have.
          </>
        }
        extra={
          <Button type="primary" onClick={() => navigate('/signin')}>
            Back to sign in
          </Button>
        }
      />
    </main>
  );
}
