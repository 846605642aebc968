import { CloudDownloadOutlined, StopOutlined } from '@ant-design/icons';
import { Alert, Button, Form, Input, Progress, Space, Table, Tag, Typography } from 'antd';
import { useState } from 'react';
import { friendlyMessage } from '../api/errors';
import { formatBytes, formatRate, formatWhen } from './format';
import { isFinal, type PullState, type PullStatus } from './types';

const STATE_COLORS: Record<PullState, string> = {
  queued: 'default',
  running: 'processing',
  completed: 'success',
  failed: 'error',
  cancelled: 'warning',
};

export function PullStateTag({ state }: { state: PullState }) {
  return <Tag color={STATE_COLORS[state] ?? 'default'}>{state}</Tag>;
}

function percentOf(s: PullStatus): number | null {
  if (s.percent !== null && s.percent !== undefined) return s.percent;
  if (s.total) return (s.bytes * 100) / s.total;
  return s.state === 'completed' ? 100 : null;
}

/** Words for how far a pull has got: `12.3 MB of 98.4 MB · 4.1 MB/s`. */
export function progressWords(s: PullStatus): string {
  if (s.state === 'queued') return 'Waiting to start…';
  const done = s.total ? `${formatBytes(s.bytes)} of ${formatBytes(s.total)}` : `${formatBytes(s.bytes)} downloaded`;
  const rate = s.state === 'running' ? formatRate(s.rate) : '';
  return rate ? `${done} · ${rate}` : done;
}

/** A pull's progress bar with its words; the bar is indeterminate while the size is unknown. */
export function PullProgress({ status, cancelling, onCancel }: { status: PullStatus; cancelling?: boolean; onCancel?: () => void }) {
  const percent = percentOf(status);
  const progressStatus =
    status.state === 'completed'
      ? 'success'
      : status.state === 'failed'
        ? 'exception'
        : status.state === 'cancelled'
          ? 'normal'
          : 'active';
  return (
    <div style={{ minWidth: 180 }}>
      <div style={{ display: 'flex', alignItems: 'center', gap: 8 }}>
        <Progress
          style={{ flex: 1, margin: 0 }}
          percent={percent === null ? 100 : Math.round(percent * 10) / 10}
          status={progressStatus}
          showInfo={percent !== null}
          aria-label={`Pull of ${status.model}`}
          aria-valuetext={percent === null ? progressWords(status) : `${Math.round(percent)}%`}
          // Unknown size: an animated bar without a value.
          aria-valuenow={percent === null ? undefined : Math.round(percent)}
        />
        {onCancel && !isFinal(status.state) && (
          <Button size="small" icon={<StopOutlined />} loading={cancelling} onClick={onCancel} aria-label={`Cancel the pull of ${status.model}`}>
            Cancel
          </Button>
        )}
      </div>
      <Typography.Text type="secondary" style={{ fontSize: 12 }} aria-live="polite">
        {status.state === 'failed' && status.error ? `Failed: ${status.error}` : progressWords(status)}
      </Typography.Text>
    </div>
  );
}

export interface PullsPanelProps {
  pulls: PullStatus[];
  loading: boolean;
  error: string | null;
  cancelling: string | null;
  onStart(source: string, sha256?: string): Promise<void>;
  onCancel(id: string): void;
}

/** Admins: pull any source, and the recent pulls with live progress. */
export function PullsPanel({ pulls, loading, error, cancelling, onStart, onCancel }: PullsPanelProps) {
  const [form] = Form.useForm<{ source: string; sha256?: string }>();
  const [busy, setBusy] = useState(false);
  const [startError, setStartError] = useState<string | null>(null);
  return (
    <Space orientation="vertical" size="middle" style={{ width: '100%' }}>
      <Form
        form={form}
        name="pull"
        layout="inline"
        aria-label="Pull a model by source"
        style={{ rowGap: 8 }}
        onFinish={async ({ source, sha256 }) => {
          setBusy(true);
          setStartError(null);
          try {
            await onStart(source.trim(), sha256?.trim() || undefined);
            form.resetFields();
          } catch (e) {
            setStartError(friendlyMessage(e));
          } finally {
            setBusy(false);
          }
        }}
      >
        <Form.Item
          label="Source"
          name="source"
          style={{ minWidth: 260, flex: 2 }}
          rules={[{ required: true, whitespace: true, message: 'Enter what to pull.' }]}
          tooltip="A catalog name, org/repo/file.gguf on Hugging Face, an https URL to a GGUF file, or ollama:<provider>/<model>"
        >
          <Input placeholder="org/repo/model.Q4_K_M.gguf" autoComplete="off" />
        </Form.Item>
        <Form.Item
          label="SHA-256"
          name="sha256"
          style={{ minWidth: 200, flex: 1 }}
          rules={[{ pattern: /^[0-9a-fA-F]{64}$/, message: 'A SHA-256 checksum is 64 hexadecimal digits.' }]}
        >
          <Input placeholder="optional" autoComplete="off" />
        </Form.Item>
        <Form.Item>
          <Button type="primary" htmlType="submit" icon={<CloudDownloadOutlined />} loading={busy}>
            Pull
          </Button>
        </Form.Item>
      </Form>
      {startError && <Alert type="error" showIcon role="alert" title={`The pull did not start: ${startError}`} />}
      {error && <Alert type="error" showIcon role="alert" title={error} />}
      <Table<PullStatus>
        rowKey="id"
        size="small"
        loading={loading}
        dataSource={pulls}
        aria-label="Recent pulls"
        pagination={pulls.length > 10 ? { pageSize: 10, size: 'small' } : false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No pulls yet.' }}
        columns={[
          {
            title: 'Model',
            dataIndex: 'model',
            render: (model: string, p) => (
              <Space orientation="vertical" size={0}>
                <Typography.Text strong>{model}</Typography.Text>
                <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                  {p.source}
                </Typography.Text>
              </Space>
            ),
          },
          { title: 'State', dataIndex: 'state', render: (s: PullState) => <PullStateTag state={s} /> },
          {
            title: 'Progress',
            key: 'progress',
            width: 280,
            render: (_: unknown, p) => (
              <PullProgress status={p} cancelling={cancelling === p.id} onCancel={() => onCancel(p.id)} />
            ),
          },
          { title: 'Started', dataIndex: 'created_at', render: formatWhen },
        ]}
      />
    </Space>
  );
}
