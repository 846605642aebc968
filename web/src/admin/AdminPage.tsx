import {
  ArrowLeftOutlined,
  AuditOutlined,
  BarChartOutlined,
  FileProtectOutlined,
  MenuOutlined,
  ScheduleOutlined,
  SettingOutlined,
  TeamOutlined,
  UserOutlined,
} from '@ant-design/icons';
import { Button, Drawer, Grid, Layout, Menu, Result, Spin } from 'antd';
import { lazy, Suspense, useState, type ReactNode } from 'react';
import { Link, Navigate, Route, Routes, useLocation } from 'react-router';
import { useAuth } from '../auth/AuthContext';
import './admin.css';
import { UserDirectoryProvider } from './directory';

const UsersScreen = lazy(() => import('./UsersScreen'));
const GroupsScreen = lazy(() => import('./GroupsScreen'));
const UsageScreen = lazy(() => import('./UsageScreen'));
const AuditScreen = lazy(() => import('./AuditScreen'));
const JobsScreen = lazy(() => import('./JobsScreen'));
const SettingsScreen = lazy(() => import('./SettingsScreen'));
const FilesScreen = lazy(() => import('./FilesScreen'));

interface Section {
  path: string;
  label: string;
  icon: ReactNode;
}

const SECTIONS: Section[] = [
  { path: 'users', label: 'Users', icon: <UserOutlined aria-hidden="true" /> },
  { path: 'groups', label: 'Groups', icon: <TeamOutlined aria-hidden="true" /> },
  { path: 'usage', label: 'Usage', icon: <BarChartOutlined aria-hidden="true" /> },
  { path: 'audit', label: 'Audit log', icon: <AuditOutlined aria-hidden="true" /> },
  { path: 'jobs', label: 'Background tasks', icon: <ScheduleOutlined aria-hidden="true" /> },
  { path: 'files', label: 'Files', icon: <FileProtectOutlined aria-hidden="true" /> },
  { path: 'settings', label: 'Settings', icon: <SettingOutlined aria-hidden="true" /> },
];

function AdminNav({ current, onNavigate }: { current: string | undefined; onNavigate?: () => void }) {
  return (
    <nav aria-label="Admin sections">
      <Menu
        mode="inline"
        selectedKeys={current ? [current] : []}
        items={SECTIONS.map((s) => ({
          key: s.path,
          icon: s.icon,
          label: (
            <Link to={`/admin/${s.path}`} onClick={onNavigate} aria-current={current === s.path ? 'page' : undefined}>
              {s.label}
            </Link>
          ),
        }))}
      />
    </nav>
  );
}

function Loading() {
  return (
    <div style={{ padding: 48, textAlign: 'center' }} role="status" aria-label="Loading">
      <Spin />
    </div>
  );
}

function AdminsOnly() {
  return (
    <main className="center-fill">
      <Result
        status="403"
        title="Admins only"
        subTitle="The admin console is for administrators of this server. Ask an administrator if you need something changed."
        extra={
          <Link to="/">
            <ArrowLeftOutlined aria-hidden="true" /> Back to chat
          </Link>
        }
      />
    </main>
  );
}

export default function AdminPage() {
  const { user } = useAuth();
  const location = useLocation();
  const screens = Grid.useBreakpoint();
  const phone = screens.md === false;
  const [menuOpen, setMenuOpen] = useState(false);

  if (!user || user.role !== 'admin') return <AdminsOnly />;

  const current = SECTIONS.find((s) => location.pathname.startsWith(`/admin/${s.path}`))?.path;
  const title = SECTIONS.find((s) => s.path === current)?.label ?? 'Admin';

  const back = (
    <Link to="/" className="admin-back">
      <ArrowLeftOutlined aria-hidden="true" /> Back to chat
    </Link>
  );

  return (
    <UserDirectoryProvider>
      <Layout className="admin-layout">
        {!phone && (
          <Layout.Sider width={220} theme="light" className="admin-sider">
            <div className="admin-brand">Admin console</div>
            {back}
            <AdminNav current={current} />
          </Layout.Sider>
        )}
        <Layout>
          {phone && (
            <header className="admin-header">
              <Button
                icon={<MenuOutlined aria-hidden="true" />}
                aria-label="Open admin menu"
                aria-expanded={menuOpen}
                onClick={() => setMenuOpen(true)}
              />
              <h1>Admin · {title}</h1>
            </header>
          )}
          {phone && (
            <Drawer
              open={menuOpen}
              onClose={() => setMenuOpen(false)}
              placement="left"
              size={260}
              title="Admin console"
              styles={{ body: { padding: 0 } }}
            >
              {back}
              <AdminNav current={current} onNavigate={() => setMenuOpen(false)} />
            </Drawer>
          )}
          <Layout.Content className={phone ? 'admin-content phone' : 'admin-content'}>
            <Suspense fallback={<Loading />}>
              <Routes>
                <Route index element={<Navigate to="users" replace />} />
                <Route path="users" element={<UsersScreen />} />
                <Route path="groups" element={<GroupsScreen />} />
                <Route path="usage" element={<UsageScreen />} />
                <Route path="audit" element={<AuditScreen />} />
                <Route path="jobs" element={<JobsScreen />} />
                <Route path="files" element={<FilesScreen />} />
                <Route path="settings" element={<SettingsScreen />} />
                <Route path="*" element={<Navigate to="/admin/users" replace />} />
              </Routes>
            </Suspense>
          </Layout.Content>
        </Layout>
      </Layout>
    </UserDirectoryProvider>
  );
}
