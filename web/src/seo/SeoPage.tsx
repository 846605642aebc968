import { ArrowLeftOutlined, DashboardOutlined, SearchOutlined, UnorderedListOutlined } from '@ant-design/icons';
import { Layout, Menu, Spin } from 'antd';
import { lazy, Suspense } from 'react';
import { Link, Navigate, Route, Routes, useLocation } from 'react-router';
import { ChannelNotice } from './ChannelNotice';
import './seo.css';

const ProjectsPage = lazy(() => import('./ProjectsPage'));
const NewProjectPage = lazy(() => import('./NewProjectPage'));
const ProjectEditor = lazy(() => import('./ProjectEditor'));
const Dashboard = lazy(() => import('./Dashboard'));
const ResearchPage = lazy(() => import('./ResearchPage'));

function Loading() {
  return (
    <div style={{ padding: 48, textAlign: 'center' }} role="status" aria-label="Loading">
      <Spin />
    </div>
  );
}

/** The SEO studio: its header with the sections, and its screens. */
export default function SeoPage() {
  const { pathname } = useLocation();
  const current = pathname.startsWith('/seo/dashboard')
    ? 'dashboard'
    : pathname.startsWith('/seo/research')
      ? 'research'
      : 'projects';
  return (
    <Layout className="seo-layout">
      <header className="seo-header">
        <Link to="/" className="seo-back">
          <ArrowLeftOutlined aria-hidden="true" /> Chat
        </Link>
        <h1>SEO studio</h1>
        <nav aria-label="SEO studio sections" style={{ flex: 1, minWidth: 0 }}>
          <Menu
            mode="horizontal"
            selectedKeys={[current]}
            items={[
              { key: 'projects', icon: <UnorderedListOutlined />, label: <Link to="/seo">Projects</Link> },
              { key: 'research', icon: <SearchOutlined />, label: <Link to="/seo/research">Keyword research</Link> },
              { key: 'dashboard', icon: <DashboardOutlined />, label: <Link to="/seo/dashboard">Dashboard</Link> },
            ]}
          />
        </nav>
      </header>
      <Layout.Content className="seo-content">
        <ChannelNotice />
        <Suspense fallback={<Loading />}>
          <Routes>
            <Route index element={<ProjectsPage />} />
            <Route path="new" element={<NewProjectPage />} />
            <Route path="dashboard" element={<Dashboard />} />
            <Route path="research" element={<ResearchPage />} />
            <Route path=":projectId" element={<ProjectEditor />} />
            <Route path="*" element={<Navigate to="/seo" replace />} />
          </Routes>
        </Suspense>
      </Layout.Content>
    </Layout>
  );
}
