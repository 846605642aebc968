import { DiffOutlined, EyeOutlined, RollbackOutlined } from '@ant-design/icons';
import { Alert, Button, Descriptions, Modal, Popconfirm, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { DiffView } from './DiffView';
import { seoMessage } from './errors';
import { ScoreTag, when } from './ScoreTag';
import type { PackageDiff, Version, VersionSource } from './types';
import { useSeoApi } from './useSeoApi';

const SOURCE_WORDS: Record<VersionSource, string> = {
  generated: 'Generated',
  edited: 'Edited',
  restored: 'Restored',
  imported: 'Imported',
};

export interface VersionsPanelProps {
  projectId: string;
  versions: Version[];
  /** A restore stored a new version. */
  onRestored(v: Version): void;
}

/** The project's versions: view one, restore one, compare two. */
export function VersionsPanel({ projectId, versions, onRestored }: VersionsPanelProps) {
  const seo = useSeoApi();
  const [selected, setSelected] = useState<number[]>([]);
  const [viewing, setViewing] = useState<Version | null>(null);
  const [diff, setDiff] = useState<{ diff: PackageDiff; from: number; to: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function compare() {
    const [a, b] = [...selected].sort((x, y) => x - y);
    if (a === undefined || b === undefined) return;
    setBusy(true);
    setError(null);
    try {
      setDiff({ diff: await seo.diff(projectId, a, b), from: a, to: b });
    } catch (e) {
      setError(seoMessage(e));
    } finally {
      setBusy(false);
    }
  }

  async function restore(v: Version) {
    setError(null);
    try {
      onRestored(await seo.restore(projectId, v.number));
    } catch (e) {
      setError(seoMessage(e));
    }
  }

  return (
    <section aria-label="Versions">
      {error && <Alert type="error" showIcon role="alert" title={error} style={{ marginBottom: 12 }} />}
      <Space style={{ marginBottom: 8 }}>
        <Button icon={<DiffOutlined />} disabled={selected.length !== 2} loading={busy} onClick={() => void compare()}>
          Compare selected
        </Button>
        <Typography.Text type="secondary">Tick two versions to compare them.</Typography.Text>
      </Space>
      <Table<Version>
        rowKey="number"
        size="small"
        pagination={false}
        dataSource={versions}
        locale={{ emptyText: 'No versions yet. Generate a package first.' }}
        rowSelection={{
          selectedRowKeys: selected,
          onChange: (keys) => setSelected(keys.map(Number).slice(-2)),
          getCheckboxProps: (v) => ({ 'aria-label': `Select version ${v.number}` }),
        }}
        columns={[
          { title: 'Version', dataIndex: 'number', width: 80, render: (n: number) => `#${n}` },
          { title: 'Source', dataIndex: 'source', render: (s: VersionSource) => <Tag>{SOURCE_WORDS[s] ?? s}</Tag> },
          { title: 'Score', dataIndex: 'score', width: 80, render: (s: number) => <ScoreTag score={s} /> },
          { title: 'When', dataIndex: 'created_at', render: (t: number) => when(t) },
          {
            title: 'Actions',
            key: 'actions',
            render: (_, v) => (
              <Space size="small">
                <Button size="small" icon={<EyeOutlined />} aria-label={`View version ${v.number}`} onClick={() => setViewing(v)}>
                  View
                </Button>
                {v.number !== versions[0]?.number && (
                  <Popconfirm
                    title={`Restore version ${v.number}?`}
                    description="It is stored again as the newest version; nothing is lost."
                    okText="Restore"
                    onConfirm={() => restore(v)}
                  >
                    <Button size="small" icon={<RollbackOutlined />} aria-label={`Restore version ${v.number}`}>
                      Restore
                    </Button>
                  </Popconfirm>
                )}
              </Space>
            ),
          },
        ]}
      />
      <Modal open={!!viewing} title={viewing ? `Version ${viewing.number}` : ''} footer={null} onCancel={() => setViewing(null)} width={760}>
        {viewing && (
          <Descriptions column={1} size="small" bordered>
            <Descriptions.Item label="Title">{viewing.package.title}</Descriptions.Item>
            <Descriptions.Item label="Description">
              <pre style={{ whiteSpace: 'pre-wrap', margin: 0, fontFamily: 'inherit' }}>{viewing.package.description}</pre>
            </Descriptions.Item>
            <Descriptions.Item label="Tags">{viewing.package.tags.join(', ')}</Descriptions.Item>
            <Descriptions.Item label="Thumbnail texts">{viewing.package.thumbnail_texts.join(' · ')}</Descriptions.Item>
            <Descriptions.Item label="Score">{viewing.score}</Descriptions.Item>
            {viewing.model && <Descriptions.Item label="Model">{viewing.model}</Descriptions.Item>}
          </Descriptions>
        )}
      </Modal>
      <Modal
        open={!!diff}
        title={diff ? `Version ${diff.from} → version ${diff.to}` : ''}
        footer={null}
        onCancel={() => setDiff(null)}
        width={820}
      >
        {diff && <DiffView {...diff} />}
      </Modal>
    </section>
  );
}
