// Admin → Files: whether uploads are virus-scanned, storage in total and per user, what the
// last comparison of stored content with the files found (files whose content is missing), and
// the quarantined (infected) and pending files of every user.
import { ReloadOutlined } from '@ant-design/icons';
import { Alert, Button, Card, Col, Row, Space, Statistic, Table, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { useCallback, useEffect, useMemo, useState } from 'react';
import { friendlyMessage } from '../api/errors';
import type { Page } from '../api/types';
import { filesApi } from '../files/api';
import { formatBytes, formatWhen, KIND_LABELS, StateTag } from '../files/format';
import type { AdminFileView, FileState, Reconciliation, StorageReport } from '../files/types';
import { useAuth } from '../auth/AuthContext';
import { ErrorAlert, LoadMore } from './common';
import { userLabel, useUserDirectory } from './directory';
import { useCursorPages } from './useCursorPages';

const PAGE = 50;

type StorageRow = StorageReport['users'][number];

function ScannerBanner({ scanner }: { scanner: StorageReport['scanner'] }) {
  if (!scanner.configured) {
    return (
      <Alert
        type="warning"
        showIcon
        role="alert"
        title="Uploads are not virus-scanned: set files.clamd_address in the server’s configuration to scan them with ClamAV."
        description="Until then every new file is stored as “unscanned”, and people are told so."
      />
    );
  }
  if (scanner.reachable === false) {
    return (
      <Alert
        type="error"
        showIcon
        role="alert"
        title={`The virus scanner${scanner.address ? ` at ${scanner.address}` : ''} does not answer.`}
        description="New uploads cannot be scanned until it does. Check that clamd is running and reachable from the server."
      />
    );
  }
  return null;
}

/** Missing files listed by id, at most this many (the server lists up to 100). */
const MISSING_SHOWN = 20;

/**
 * The last reconciliation of the blob store with the files' rows: when it ran, and a warning
 * when files have lost their content (their rows remain, their bytes are gone).
 */
function ReconciliationReport({ reconciliation }: { reconciliation: Reconciliation | null | undefined }) {
  if (!reconciliation) {
    return (
      <Typography.Text type="secondary">
        Stored content has not been checked against the files yet in this server process: the check runs periodically.
      </Typography.Text>
    );
  }
  const { at, blobs_checked, orphans_removed, missing, missing_count } = reconciliation;
  const count = (n: number) => n.toLocaleString('en-US');
  const checked =
    `Storage last checked ${formatWhen(at)}: ${count(blobs_checked)} stored ${blobs_checked === 1 ? 'object' : 'objects'} compared with the files` +
    (orphans_removed > 0 ? `, ${count(orphans_removed)} that belonged to no file removed.` : '.');
  if (missing_count <= 0) {
    return (
      <Typography.Text type="secondary">
        {checked} Every file has its content.
      </Typography.Text>
    );
  }
  const one = missing_count === 1;
  const shown = missing.slice(0, MISSING_SHOWN);
  const more = missing_count - shown.length;
  return (
    <Alert
      type="error"
      showIcon
      role="alert"
      title={one ? 'The content of 1 file is missing from storage.' : `The content of ${count(missing_count)} files is missing from storage.`}
      description={
        <Space orientation="vertical" size={4}>
          <Typography.Text>
            {checked} {one ? 'This file is' : 'These files are'} still listed but cannot be read: restore the
            content from a backup, or delete {one ? 'the file' : 'the files'}.
          </Typography.Text>
          <ul aria-label="Files with missing content" style={{ margin: 0, paddingInlineStart: 20 }}>
            {shown.map((id) => (
              <li key={id}>
                <Typography.Text code copyable={{ text: id, tooltips: ['Copy file id', 'Copied'] }}>
                  {id}
                </Typography.Text>
              </li>
            ))}
          </ul>
          {more > 0 && <Typography.Text type="secondary">and {count(more)} more</Typography.Text>}
        </Space>
      }
    />
  );
}

function FileList({ state, title, empty }: { state: FileState; title: string; empty: string }) {
  const { client } = useAuth();
  const { byId } = useUserDirectory();
  const api = useMemo(() => filesApi(client), [client]);
  const fetchPage = useCallback(
    async (cursor: string | null): Promise<Page<AdminFileView>> => {
      const page = await api.adminList(state, cursor, PAGE);
      return { items: page.files, next_cursor: page.next };
    },
    [api, state],
  );
  const pages = useCursorPages(fetchPage, (f) => f.id);
  const titleId = `admin-files-${state}`;

  const columns: ColumnsType<AdminFileView> = [
    {
      title: 'Name',
      key: 'name',
      render: (_, f) => (
        <div>
          <Typography.Text strong>{f.name}</Typography.Text>
          <div>
            <Typography.Text type="secondary" style={{ fontSize: 12 }}>
              {KIND_LABELS[f.kind] ?? f.kind} · <code>{f.content_type}</code>
            </Typography.Text>
          </div>
        </div>
      ),
    },
    { title: 'Owner', dataIndex: 'owner', key: 'owner', render: (id: string) => userLabel(byId, id) },
    { title: 'Size', dataIndex: 'size', key: 'size', render: (n: number) => formatBytes(n) },
    { title: 'State', key: 'state', render: (_, f) => <StateTag file={f} /> },
    { title: 'Uploaded', dataIndex: 'created_at', key: 'created', render: (t: string) => formatWhen(t) },
    ...(state === 'pending'
      ? []
      : [{ title: 'Scanned', dataIndex: 'scanned_at', key: 'scanned', render: (t: string | null) => formatWhen(t) }]),
    {
      title: 'SHA-256',
      dataIndex: 'sha256',
      key: 'sha256',
      render: (h: string) => (
        <Typography.Text code copyable={{ text: h, tooltips: ['Copy SHA-256', 'Copied'] }}>
          {h.slice(0, 12)}…
        </Typography.Text>
      ),
    },
  ];

  return (
    <section aria-labelledby={titleId}>
      <Space align="center" style={{ marginBottom: 8 }}>
        <Typography.Title level={4} id={titleId} style={{ margin: 0 }}>
          {title}
        </Typography.Title>
        <Button size="small" icon={<ReloadOutlined aria-hidden="true" />} onClick={() => void pages.reload()} aria-label={`Refresh ${title.toLowerCase()}`} />
      </Space>
      <ErrorAlert error={pages.error} onClose={() => pages.setError(null)} />
      <Table<AdminFileView>
        rowKey="id"
        size="small"
        columns={columns}
        dataSource={pages.items}
        loading={pages.loading && pages.items.length === 0}
        pagination={false}
        scroll={{ x: 'max-content' }}
        locale={{ emptyText: empty }}
      />
      <LoadMore pages={pages} />
    </section>
  );
}

export default function FilesScreen() {
  const { client } = useAuth();
  const { byId } = useUserDirectory();
  const api = useMemo(() => filesApi(client), [client]);
  const [storage, setStorage] = useState<StorageReport | null>(null);
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string | null>(null);

  const load = useCallback(async () => {
    setLoading(true);
    try {
      setStorage(await api.storage());
      setError(null);
    } catch (e) {
      setError(`The storage report could not be read: ${friendlyMessage(e)}`);
    } finally {
      setLoading(false);
    }
  }, [api]);

  useEffect(() => {
    void load();
  }, [load]);

  const users = useMemo(() => [...(storage?.users ?? [])].sort((a, b) => b.bytes - a.bytes), [storage]);
  const userColumns: ColumnsType<StorageRow> = [
    {
      title: 'User',
      dataIndex: 'owner',
      key: 'owner',
      render: (id: string) => {
        const user = byId.get(id);
        return (
          <div>
            {userLabel(byId, id)}
            {user?.name && (
              <div>
                <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                  {user.name}
                </Typography.Text>
              </div>
            )}
          </div>
        );
      },
    },
    { title: 'Files', dataIndex: 'files', key: 'files', render: (n: number) => n.toLocaleString('en-US') },
    { title: 'Stored', dataIndex: 'bytes', key: 'bytes', render: (n: number) => formatBytes(n) },
  ];

  const byState = storage?.totals.by_state;
  return (
    <section aria-labelledby="admin-files-title">
      <Space align="center" wrap style={{ marginBottom: 12 }}>
        <Typography.Title level={3} id="admin-files-title" style={{ margin: 0 }}>
          Files
        </Typography.Title>
        <Button icon={<ReloadOutlined aria-hidden="true" />} onClick={() => void load()} loading={loading}>
          Refresh
        </Button>
      </Space>
      <Space orientation="vertical" size="large" style={{ width: '100%' }}>
        <ErrorAlert error={error} onClose={() => setError(null)} />
        {storage && <ScannerBanner scanner={storage.scanner} />}
        {storage && storage.scanner.configured && storage.scanner.reachable !== false && (
          <Typography.Text type="secondary">
            Uploads are scanned by clamd{storage.scanner.address ? ` at ${storage.scanner.address}` : ''}.
          </Typography.Text>
        )}
        {storage && <ReconciliationReport reconciliation={storage.reconciliation} />}
        {storage && byState && (
          <Card>
            <Row gutter={[16, 16]}>
              <Col xs={12} md={4}>
                <Statistic title="Stored" value={formatBytes(storage.totals.bytes)} />
              </Col>
              <Col xs={12} md={5}>
                <Statistic title="Clean" value={byState.clean} />
              </Col>
              <Col xs={12} md={5}>
                <Statistic title="Pending scan" value={byState.pending} />
              </Col>
              <Col xs={12} md={5}>
                <Statistic title="Quarantined" value={byState.infected} styles={{ content: byState.infected > 0 ? { color: '#cf1322' } : undefined }} />
              </Col>
              <Col xs={12} md={5}>
                <Statistic title="Unscanned" value={byState.unscanned} />
              </Col>
            </Row>
          </Card>
        )}
        <FileList state="infected" title="Quarantined" empty="No file has been found infected." />
        <FileList state="pending" title="Pending scan" empty="No file is waiting for the scanner." />
        <section aria-labelledby="admin-files-users">
          <Typography.Title level={4} id="admin-files-users">
            Storage by user
          </Typography.Title>
          <Table<StorageRow>
            rowKey="owner"
            size="small"
            columns={userColumns}
            dataSource={users}
            loading={loading && !storage}
            pagination={false}
            locale={{ emptyText: 'No one has stored a file yet.' }}
          />
        </section>
      </Space>
    </section>
  );
}
