import { DeleteOutlined } from '@ant-design/icons';
import { Button, Popconfirm, Space, Table, Tag, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { formatBytes, formatTokens } from './format';
import type { InstalledModel } from './types';

export interface InstalledModelsProps {
  models: InstalledModel[];
  loading: boolean;
  isAdmin: boolean;
  /** The model being deleted, if any. */
  deleting: string | null;
  onDelete(model: InstalledModel): void;
}

function fileDetails(m: InstalledModel) {
  const local = m.local;
  if (!local) return <Typography.Text type="secondary">Not a local file</Typography.Text>;
  const facts = [local.parameters && `${local.parameters} parameters`, local.quantization, local.architecture].filter(
    Boolean,
  ) as string[];
  return (
    <Space orientation="vertical" size={0}>
      <span>
        {formatBytes(local.size_bytes)}
        {facts.length > 0 && ` · ${facts.join(' · ')}`}
      </span>
      {local.display_name && local.display_name !== m.id && (
        <Typography.Text type="secondary">{local.display_name}</Typography.Text>
      )}
      {local.path && (
        <Typography.Text type="secondary" style={{ fontSize: 12 }}>
          <code>{local.path}</code>
        </Typography.Text>
      )}
      {local.sha256 && (
        <Tooltip title={local.sha256}>
          <Typography.Text type="secondary" style={{ fontSize: 12 }} aria-label={`SHA-256 ${local.sha256}`}>
            SHA-256 {local.sha256.slice(0, 12)}…
          </Typography.Text>
        </Tooltip>
      )}
      {!local.has_chat_template && (
        <Typography.Text type="warning" style={{ fontSize: 12 }}>
          No chat template in the file: a generic one is used.
        </Typography.Text>
      )}
    </Space>
  );
}

/** The models this server can answer with (GET /api/v1/models). */
export function InstalledModels({ models, loading, isAdmin, deleting, onDelete }: InstalledModelsProps) {
  const columns: ColumnsType<InstalledModel> = [
    {
      title: 'Name',
      dataIndex: 'id',
      render: (_: unknown, m) => (
        <Space wrap size={4}>
          <Typography.Text strong>{m.id}</Typography.Text>
          {m.default && <Tag color="blue">default</Tag>}
        </Space>
      ),
    },
    { title: 'Provider', dataIndex: 'provider' },
    {
      title: 'Context',
      dataIndex: 'context_tokens',
      render: (t: number | null, m) => {
        const trained = m.local?.context_length;
        return (
          <Space orientation="vertical" size={0}>
            <span>{formatTokens(t)}</span>
            {trained && trained !== t && (
              <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                trained for {formatTokens(trained)}
              </Typography.Text>
            )}
          </Space>
        );
      },
    },
    { title: 'Local file', key: 'local', render: (_: unknown, m) => fileDetails(m) },
  ];
  if (isAdmin) {
    columns.push({
      title: 'Actions',
      key: 'actions',
      render: (_: unknown, m) =>
        m.local ? (
          <Popconfirm
            title={`Delete “${m.id}”?`}
            description="The file is removed from the server. Pull it again to get it back."
            okText="Delete"
            okButtonProps={{ danger: true }}
            cancelText="Keep"
            onConfirm={() => onDelete(m)}
          >
            <Button danger size="small" icon={<DeleteOutlined />} loading={deleting === m.id} aria-label={`Delete ${m.id}`}>
              Delete
            </Button>
          </Popconfirm>
        ) : null,
    });
  }
  return (
    <Table<InstalledModel>
      rowKey="id"
      size="small"
      loading={loading}
      pagination={false}
      dataSource={models}
      aria-label="Installed models"
      scroll={{ x: 'max-content' }}
      locale={{
        emptyText: isAdmin
          ? 'No model is installed yet. Pull one from the catalog below.'
          : 'No model is installed yet; an administrator can add one.',
      }}
      columns={columns}
    />
  );
}
