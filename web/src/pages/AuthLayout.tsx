import { Card, Typography } from 'antd';
import type { ReactNode } from 'react';

export function AuthLayout({ title, children }: { title: string; children: ReactNode }) {
  return (
    <main className="auth-page">
      <Card className="auth-card">
        <div className="auth-brand" aria-hidden="true">
          <img src="/favicon.svg" alt="" width={32} height={32} />
          <span>Confab</span>
        </div>
        <Typography.Title level={2} style={{ marginTop: 8 }}>
          {title}
        </Typography.Title>
        {children}
      </Card>
    </main>
  );
}
