import { DeleteOutlined, DownloadOutlined, InboxOutlined, PlusOutlined, UndoOutlined } from '@ant-design/icons';
import { App, Button, Input, Popconfirm, Segmented, Space, Table, Typography } from 'antd';
import { useCallback, useState } from 'react';
import { Link, useNavigate } from 'react-router';
import { ErrorAlert, LoadMore } from '../admin/common';
import { useCursorPages } from '../admin/useCursorPages';
import { seoMessage } from './errors';
import { ScoreTag, when } from './ScoreTag';
import type { Project } from './types';
import { useSeoApi } from './useSeoApi';

const PAGE = 25;

export default function ProjectsPage() {
  const seo = useSeoApi();
  const navigate = useNavigate();
  const { message } = App.useApp();
  const [q, setQ] = useState('');
  const [archived, setArchived] = useState(false);
  const [selected, setSelected] = useState<string[]>([]);
  const [exporting, setExporting] = useState(false);

  const fetchPage = useCallback(
    (cursor: string | null) => seo.list({ q: q || undefined, archived, cursor, limit: PAGE }),
    [seo, q, archived],
  );
  const pages = useCursorPages<Project>(fetchPage, (p) => p.id);

  async function setArchivedFlag(p: Project, value: boolean) {
    try {
      await seo.update(p.id, { archived: value });
      pages.setItems((items) => items.filter((i) => i.id !== p.id));
      message.success(value ? 'Project archived.' : 'Project restored from the archive.');
    } catch (e) {
      pages.setError(seoMessage(e));
    }
  }

  async function remove(p: Project) {
    try {
      await seo.remove(p.id);
      pages.setItems((items) => items.filter((i) => i.id !== p.id));
      setSelected((s) => s.filter((id) => id !== p.id));
      message.success('Project deleted.');
    } catch (e) {
      pages.setError(seoMessage(e));
    }
  }

  async function exportCsv() {
    setExporting(true);
    try {
      await seo.downloadCsv(selected);
    } catch (e) {
      pages.setError(seoMessage(e));
    } finally {
      setExporting(false);
    }
  }

  return (
    <section aria-labelledby="seo-projects-title">
      <div className="seo-toolbar">
        <Typography.Title level={2} id="seo-projects-title" style={{ margin: 0, fontSize: 20 }}>
          Projects
        </Typography.Title>
        <Space wrap>
          <Input.Search
            aria-label="Search projects"
            placeholder="Search by topic or keyword"
            allowClear
            onSearch={(value) => setQ(value.trim())}
            style={{ width: 260 }}
          />
          <Segmented
            aria-label="Which projects"
            value={archived ? 'archived' : 'active'}
            options={[
              { value: 'active', label: 'Active' },
              { value: 'archived', label: 'Archived' },
            ]}
            onChange={(v) => {
              setArchived(v === 'archived');
              setSelected([]);
            }}
          />
          <Button icon={<DownloadOutlined />} disabled={!selected.length} loading={exporting} onClick={() => void exportCsv()}>
            Export CSV{selected.length ? ` (${selected.length})` : ''}
          </Button>
          <Button type="primary" icon={<PlusOutlined />} onClick={() => navigate('/seo/new')}>
            New project
          </Button>
        </Space>
      </div>
      <ErrorAlert error={pages.error} onClose={() => pages.setError(null)} />
      <Table<Project>
        rowKey="id"
        size="middle"
        loading={pages.loading && !pages.items.length}
        dataSource={pages.items}
        pagination={false}
        scroll={{ x: 720 }}
        rowSelection={{ selectedRowKeys: selected, onChange: (keys) => setSelected(keys.map(String)) }}
        locale={{
          emptyText: q
            ? 'No project matches your search.'
            : archived
              ? 'No archived projects.'
              : 'No projects yet. Start one with “New project”.',
        }}
        columns={[
          {
            title: 'Topic',
            dataIndex: 'topic',
            render: (topic: string, p) => <Link to={`/seo/${p.id}`}>{topic}</Link>,
          },
          { title: 'Primary keyword', dataIndex: 'primary_keyword' },
          {
            title: 'Score',
            dataIndex: 'latest_score',
            width: 90,
            render: (s: number | null | undefined) => <ScoreTag score={s} />,
          },
          { title: 'Last change', dataIndex: 'updated_at', width: 190, render: (t: number) => when(t) },
          {
            title: 'Actions',
            key: 'actions',
            width: 260,
            render: (_, p) => (
              <Space size="small">
                <Button size="small" onClick={() => navigate(`/seo/${p.id}`)} aria-label={`Open ${p.topic}`}>
                  Open
                </Button>
                <Button
                  size="small"
                  icon={p.archived ? <UndoOutlined /> : <InboxOutlined />}
                  aria-label={`${p.archived ? 'Unarchive' : 'Archive'} ${p.topic}`}
                  onClick={() => void setArchivedFlag(p, !p.archived)}
                >
                  {p.archived ? 'Unarchive' : 'Archive'}
                </Button>
                <Popconfirm
                  title="Delete this project?"
                  description="Its versions and transcript are deleted too."
                  okText="Delete"
                  okButtonProps={{ danger: true }}
                  onConfirm={() => remove(p)}
                >
                  <Button size="small" danger icon={<DeleteOutlined />} aria-label={`Delete ${p.topic}`} />
                </Popconfirm>
              </Space>
            ),
          },
        ]}
      />
      <LoadMore pages={pages} />
    </section>
  );
}
