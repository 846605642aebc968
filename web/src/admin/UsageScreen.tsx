import { DownloadOutlined, ReloadOutlined } from '@ant-design/icons';
import { Alert, App, Button, Card, Col, DatePicker, Empty, Row, Segmented, Space, Spin, Statistic, Table, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import dayjs, { type Dayjs } from 'dayjs';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { download } from '../api/download';
import { friendlyMessage } from '../api/errors';
import { query } from '../api/query';
import { useAuth } from '../auth/AuthContext';
import { formatNumber, type GroupBy, type UsageReport, type UsageRow } from './api';
import { UserPicker, userLabel, useUserDirectory } from './directory';
import { BreakdownChart, RequestsChart, TokensChart } from './UsageCharts';
import { breakdown, describeSeries, requestsPerDay, tokensPerDay } from './usageData';

const DAY = 'YYYY-MM-DD';

/** Today as the server counts days (UTC). */
function utcToday(): Dayjs {
  return dayjs(new Date().toISOString().slice(0, 10));
}

const GROUPS: { value: GroupBy; label: string }[] = [
  { value: 'user', label: 'By user' },
  { value: 'model', label: 'By model' },
  { value: 'day', label: 'By day' },
];

function ms(v: number | null | undefined): string {
  return typeof v === 'number' ? `${v.toLocaleString()} ms` : '—';
}

export default function UsageScreen() {
  const { client } = useAuth();
  const { message } = App.useApp();
  const { byId } = useUserDirectory();
  const [to, setTo] = useState<Dayjs>(utcToday);
  const [from, setFrom] = useState<Dayjs>(() => utcToday().subtract(29, 'day'));
  const [groupBy, setGroupBy] = useState<GroupBy>('user');
  const [userId, setUserId] = useState<string | undefined>();
  const [report, setReport] = useState<UsageReport | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [exporting, setExporting] = useState(false);
  const ticket = useRef(0);

  const params = useMemo(
    () => ({ from: from.format(DAY), to: to.format(DAY), user: userId }),
    [from, to, userId],
  );

  const load = useCallback(async () => {
    const mine = ++ticket.current;
    if (from.isAfter(to)) {
      setError('The first day is after the last day.');
      return;
    }
    setLoading(true);
    try {
      const r = await client.get<UsageReport>(`/api/v1/admin/usage${query({ group_by: groupBy, ...params })}`);
      if (mine !== ticket.current) return;
      setReport(r);
      setError(null);
    } catch (e) {
      if (mine === ticket.current) setError(friendlyMessage(e));
    } finally {
      if (mine === ticket.current) setLoading(false);
    }
  }, [client, groupBy, params, from, to]);

  useEffect(() => {
    void load();
  }, [load]);

  const labelOf = useCallback(
    (key: string) => {
      if (report?.group_by !== 'user') return key;
      return key ? userLabel(byId, key) : '(no user)';
    },
    [report, byId],
  );

  const exportCsv = async () => {
    setExporting(true);
    try {
      const name = await download(
        client,
        `/api/v1/admin/usage/export${query({ format: 'csv', ...params })}`,
        `usage-${params.from}-${params.to}.csv`,
      );
      message.success(`Downloaded ${name}`);
    } catch (e) {
      setError(friendlyMessage(e));
    } finally {
      setExporting(false);
    }
  };

  const keyTitle = report?.group_by === 'model' ? 'Model' : report?.group_by === 'day' ? 'Day' : 'User';
  const columns: ColumnsType<UsageRow> = [
    { title: keyTitle, dataIndex: 'key', key: 'key', render: (k: string) => labelOf(k) },
    { title: 'Requests', dataIndex: 'requests', key: 'requests', align: 'right', sorter: (a, b) => a.requests - b.requests, render: formatNumber },
    { title: 'Errors', dataIndex: 'errors', key: 'errors', align: 'right', sorter: (a, b) => a.errors - b.errors, render: formatNumber },
    { title: 'Prompt tokens', dataIndex: 'prompt_tokens', key: 'prompt', align: 'right', render: formatNumber },
    { title: 'Completion tokens', dataIndex: 'completion_tokens', key: 'completion', align: 'right', render: formatNumber },
    { title: 'Tokens', dataIndex: 'tokens', key: 'tokens', align: 'right', sorter: (a, b) => a.tokens - b.tokens, render: formatNumber },
    { title: 'Average latency', dataIndex: 'latency_avg_ms', key: 'avg', align: 'right', render: ms },
    { title: 'p50', dataIndex: 'latency_p50_ms', key: 'p50', align: 'right', render: ms },
    { title: 'p95', dataIndex: 'latency_p95_ms', key: 'p95', align: 'right', render: ms },
  ];

  const charts = useMemo(() => {
    if (!report) return null;
    return {
      requests: requestsPerDay(report.series),
      tokens: tokensPerDay(report.series),
      breakdown: report.group_by === 'day' ? null : breakdown(report.rows, labelOf),
      description: describeSeries(report.series),
    };
  }, [report, labelOf]);

  return (
    <section aria-labelledby="admin-usage-title">
      <Typography.Title level={3} id="admin-usage-title">
        Usage
      </Typography.Title>
      <Space wrap align="end" style={{ marginBottom: 16 }}>
        <label>
          <span style={{ display: 'block' }}>From</span>
          <DatePicker
            aria-label="From day"
            value={from}
            allowClear={false}
            onChange={(d) => d && setFrom(d)}
            disabledDate={(d) => d.isAfter(to, 'day')}
          />
        </label>
        <label>
          <span style={{ display: 'block' }}>To</span>
          <DatePicker
            aria-label="To day"
            value={to}
            allowClear={false}
            onChange={(d) => d && setTo(d)}
            disabledDate={(d) => d.isBefore(from, 'day')}
          />
        </label>
        <label>
          <span style={{ display: 'block' }}>User</span>
          <UserPicker aria-label="Only this user" placeholder="Every user" value={userId} onChange={setUserId} />
        </label>
        <div>
          <div id="usage-group-label">Group by</div>
          <Segmented
            aria-labelledby="usage-group-label"
            value={groupBy}
            onChange={(v) => setGroupBy(v as GroupBy)}
            options={GROUPS}
          />
        </div>
        <Button icon={<ReloadOutlined aria-hidden="true" />} onClick={() => void load()} loading={loading}>
          Refresh
        </Button>
        <Button icon={<DownloadOutlined aria-hidden="true" />} onClick={() => void exportCsv()} loading={exporting}>
          Export CSV
        </Button>
      </Space>
      {error && <Alert type="error" showIcon role="alert" title={error} style={{ marginBottom: 12 }} />}
      {!report && loading && <Spin aria-label="Loading usage" />}
      {report && charts && (
        <Spin spinning={loading}>
          <Row gutter={[16, 16]} style={{ marginBottom: 16 }}>
            {[
              ['Requests', report.totals.requests],
              ['Errors', report.totals.errors],
              ['Prompt tokens', report.totals.prompt_tokens],
              ['Completion tokens', report.totals.completion_tokens],
            ].map(([title, value]) => (
              <Col xs={12} md={6} key={title}>
                <Card size="small">
                  <Statistic title={title} value={value as number} />
                </Card>
              </Col>
            ))}
            <Col xs={12} md={6}>
              <Card size="small">
                <Statistic title="Median latency" value={ms(report.totals.latency_p50_ms)} />
              </Card>
            </Col>
            <Col xs={12} md={6}>
              <Card size="small">
                <Statistic title="95th percentile latency" value={ms(report.totals.latency_p95_ms)} />
              </Card>
            </Col>
          </Row>
          {report.totals.requests === 0 ? (
            <Empty description={`No requests from ${report.from} to ${report.to}.`} style={{ margin: '24px 0' }} />
          ) : (
            <Row gutter={[16, 16]} style={{ marginBottom: 16 }}>
              <Col xs={24} xl={12}>
                <Card size="small" title="Requests per day">
                  <RequestsChart data={charts.requests} label={`Requests per day: ${charts.description}`} />
                </Card>
              </Col>
              <Col xs={24} xl={12}>
                <Card size="small" title="Tokens per day">
                  <TokensChart data={charts.tokens} label={`Tokens per day: ${charts.description}`} />
                </Card>
              </Col>
              {charts.breakdown && (
                <Col xs={24}>
                  <Card size="small" title={report.group_by === 'model' ? 'Per model' : 'Per user'}>
                    <BreakdownChart
                      data={charts.breakdown}
                      label={`Requests and tokens ${report.group_by === 'model' ? 'per model' : 'per user'}; the table below lists every row.`}
                    />
                  </Card>
                </Col>
              )}
            </Row>
          )}
          <Table<UsageRow>
            rowKey="key"
            size="small"
            columns={columns}
            dataSource={report.rows}
            pagination={report.rows.length > 50 ? { pageSize: 50, showSizeChanger: false } : false}
            scroll={{ x: 'max-content' }}
            locale={{ emptyText: 'No usage in this range.' }}
          />
        </Spin>
      )}
    </section>
  );
}
