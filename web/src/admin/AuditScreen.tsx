import { DownloadOutlined, SafetyCertificateOutlined } from '@ant-design/icons';
import { Alert, App, Button, DatePicker, Descriptions, Form, Input, Select, Space, Table, Tag, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import type { Dayjs } from 'dayjs';
import { useCallback, useState } from 'react';
import { download } from '../api/download';
import { friendlyMessage } from '../api/errors';
import { query } from '../api/query';
import type { Page } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { formatTime, type AuditEntry, type VerifyReport } from './api';
import { ErrorAlert, LoadMore } from './common';
import { UserPicker, userLabel, useUserDirectory } from './directory';
import { useCursorPages } from './useCursorPages';

const PAGE = 50;

export interface AuditFilters {
  actor?: string;
  action?: string;
  target?: string;
  outcome?: 'success' | 'failure';
  from?: Dayjs | null;
  to?: Dayjs | null;
}

/** The query parameters of the listing and the export for these filters (times as RFC 3339). */
export function auditParams(filters: AuditFilters): Record<string, string | undefined> {
  return {
    actor: filters.actor || undefined,
    action: filters.action?.trim() || undefined,
    target: filters.target?.trim() || undefined,
    outcome: filters.outcome || undefined,
    from: filters.from ? filters.from.toDate().toISOString() : undefined,
    to: filters.to ? filters.to.toDate().toISOString() : undefined,
  };
}

function VerifyResult({ report }: { report: VerifyReport }) {
  const counts = `${report.entries.toLocaleString()} entries checked in the database, ${report.archived_entries.toLocaleString()} archived, ${report.archive_files_checked.toLocaleString()} archive file${report.archive_files_checked === 1 ? '' : 's'} checked; the chain is ${report.head_seq.toLocaleString()} entries long.`;
  if (!report.first_broken) {
    return <Alert type="success" showIcon role="status" title="The audit chain is intact." description={counts} />;
  }
  const b = report.first_broken;
  const where = b.seq !== null ? `entry ${b.seq}` : 'an entry outside the chain';
  return (
    <Alert
      type="error"
      showIcon
      role="alert"
      title={`The audit chain is broken at ${where}${b.id ? ` (id ${b.id})` : ''}.`}
      description={
        <>
          <div>
            {b.reason} ({b.kind.replace(/_/g, ' ')})
          </div>
          <div>{counts}</div>
        </>
      }
    />
  );
}

export default function AuditScreen() {
  const { client } = useAuth();
  const { message } = App.useApp();
  const { byId } = useUserDirectory();
  const [form] = Form.useForm<AuditFilters>();
  const [filters, setFilters] = useState<AuditFilters>({});
  const [verifying, setVerifying] = useState(false);
  const [verified, setVerified] = useState<VerifyReport | null>(null);
  const [exporting, setExporting] = useState<string | null>(null);

  const fetchPage = useCallback(
    (cursor: string | null) =>
      client.get<Page<AuditEntry>>(`/api/v1/admin/audit${query({ ...auditParams(filters), limit: PAGE, cursor })}`),
    [client, filters],
  );
  const pages = useCursorPages(fetchPage);
  const { setError } = pages;

  const exportAs = async (format: 'csv' | 'jsonl') => {
    setExporting(format);
    try {
      const name = await download(
        client,
        `/api/v1/admin/audit/export${query({ ...auditParams(filters), format })}`,
        `audit.${format}`,
      );
      message.success(`Downloaded ${name}`);
    } catch (e) {
      setError(friendlyMessage(e));
    } finally {
      setExporting(null);
    }
  };

  const verify = async () => {
    setVerifying(true);
    setVerified(null);
    try {
      setVerified(await client.get<VerifyReport>('/api/v1/admin/audit/verify'));
    } catch (e) {
      setError(friendlyMessage(e));
    } finally {
      setVerifying(false);
    }
  };

  const columns: ColumnsType<AuditEntry> = [
    { title: '#', dataIndex: 'seq', key: 'seq', width: 70 },
    { title: 'Time', dataIndex: 'at', key: 'at', render: (t: string) => formatTime(t) },
    {
      title: 'Actor',
      dataIndex: 'actor',
      key: 'actor',
      render: (a: string | null) => (a ? userLabel(byId, a) : <Typography.Text type="secondary">anonymous</Typography.Text>),
    },
    { title: 'Action', dataIndex: 'action', key: 'action', render: (a: string) => <code>{a}</code> },
    {
      title: 'Target',
      dataIndex: 'target',
      key: 'target',
      render: (t: string | null) => (t ? (byId.get(t)?.email ?? t) : '—'),
    },
    {
      title: 'Outcome',
      dataIndex: 'outcome',
      key: 'outcome',
      render: (o: string) => <Tag color={o === 'success' ? 'green' : 'red'}>{o}</Tag>,
    },
    { title: 'IP', dataIndex: 'ip', key: 'ip', render: (ip: string | null) => ip ?? '—' },
  ];

  return (
    <section aria-labelledby="admin-audit-title">
      <Typography.Title level={3} id="admin-audit-title">
        Audit log
      </Typography.Title>
      <Form
        form={form}
        layout="inline"
        name="audit"
        aria-label="Audit filters"
        style={{ rowGap: 8, marginBottom: 12 }}
        onFinish={(v) => {
          if (v.from && v.to && !v.to.isAfter(v.from)) {
            setError('“To” must be later than “From”.');
            return;
          }
          setFilters({ ...v });
        }}
      >
        <Form.Item label="Actor" name="actor">
          <UserPicker aria-label="Actor" placeholder="Anyone" />
        </Form.Item>
        <Form.Item label="Action" name="action" tooltip="An action such as auth.login, or a prefix ending in * such as auth.*">
          <Input placeholder="auth.* or auth.login" style={{ width: 180 }} />
        </Form.Item>
        <Form.Item label="Target" name="target">
          <Input placeholder="user id, key id, email…" style={{ width: 180 }} />
        </Form.Item>
        <Form.Item label="Outcome" name="outcome">
          <Select
            aria-label="Outcome"
            allowClear
            placeholder="Any"
            style={{ width: 120 }}
            options={[
              { value: 'success', label: 'Success' },
              { value: 'failure', label: 'Failure' },
            ]}
          />
        </Form.Item>
        <Form.Item label="From" name="from">
          <DatePicker showTime aria-label="From" />
        </Form.Item>
        <Form.Item label="To" name="to">
          <DatePicker showTime aria-label="To" />
        </Form.Item>
        <Form.Item>
          <Space>
            <Button type="primary" htmlType="submit">
              Apply filters
            </Button>
            <Button
              onClick={() => {
                form.resetFields();
                setFilters({});
              }}
            >
              Clear
            </Button>
          </Space>
        </Form.Item>
      </Form>
      <Space wrap style={{ marginBottom: 12 }}>
        <Button icon={<DownloadOutlined aria-hidden="true" />} loading={exporting === 'csv'} onClick={() => void exportAs('csv')}>
          Export CSV
        </Button>
        <Button icon={<DownloadOutlined aria-hidden="true" />} loading={exporting === 'jsonl'} onClick={() => void exportAs('jsonl')}>
          Export JSONL
        </Button>
        <Button icon={<SafetyCertificateOutlined aria-hidden="true" />} loading={verifying} onClick={() => void verify()}>
          Verify chain
        </Button>
      </Space>
      {verified && (
        <div style={{ marginBottom: 12 }}>
          <VerifyResult report={verified} />
        </div>
      )}
      <ErrorAlert error={pages.error} onClose={() => setError(null)} />
      <Table<AuditEntry>
        rowKey="id"
        size="small"
        columns={columns}
        dataSource={pages.items}
        loading={pages.loading}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: 'No entries match these filters.' }}
        expandable={{
          expandedRowRender: (e) => (
            <Descriptions size="small" column={1} bordered>
              <Descriptions.Item label="Details">
                <pre className="admin-details">{JSON.stringify(e.details, null, 2)}</pre>
              </Descriptions.Item>
              <Descriptions.Item label="Actor id">{e.actor ?? '—'}</Descriptions.Item>
              <Descriptions.Item label="User agent">{e.user_agent ?? '—'}</Descriptions.Item>
              <Descriptions.Item label="Request id">{e.request_id ?? '—'}</Descriptions.Item>
              <Descriptions.Item label="Hash">
                <code style={{ wordBreak: 'break-all' }}>{e.hash}</code>
              </Descriptions.Item>
            </Descriptions>
          ),
        }}
      />
      <LoadMore pages={pages} />
    </section>
  );
}
