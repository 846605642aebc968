// "My files" (/files): storage used against the quota, uploads, and the files with their scan
// state, previews, downloads, share links and deletion.
import { ArrowLeftOutlined, DeleteOutlined, DownloadOutlined, EyeOutlined, ReloadOutlined, ShareAltOutlined } from '@ant-design/icons';
import { Alert, App, Button, Card, Flex, Grid, Popconfirm, Progress, Space, Table, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { lazy, Suspense, useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { Link } from 'react-router';
import { ApiError, friendlyMessage } from '../api/errors';
import type { FilesApi } from './api';
import { formatBytes, formatWhen, isReadable, KIND_LABELS, KindIcon, PREVIEWABLE, StateTag } from './format';
import { ShareDialog } from './ShareDialog';
import type { FilesUsage, FileView } from './types';
import { UploadPanel } from './UploadPanel';
import { useBlobUrl } from './useBlobUrl';
import { useFilesApi } from './useFilesApi';
import './files.css';

const PreviewDialog = lazy(() => import('./PreviewDialog'));

/** Files a page. */
const PAGE = 30;
/** How often files being scanned (or an image's thumbnail being made) are asked for again. */
export const POLL_MS = 3_000;
/** Files asked for in one round, at most. */
const POLL_AT_MOST = 20;
/**
 * How long after its upload (or scan) an image's thumbnail is waited for: the server makes it
 * in a background job once the file is readable, so the upload's answer has none yet.
 */
export const THUMBNAIL_WAIT_MS = 2 * 60_000;

/** Whether a file may still change by itself: being scanned, or an image without its thumbnail yet. */
export function awaited(file: FileView, now: number): boolean {
  if (file.state === 'pending') return true;
  if (file.kind !== 'image' || file.has_thumbnail || !isReadable(file.state)) return false;
  const since = Date.parse(file.scanned_at ?? file.created_at);
  return Number.isFinite(since) && now - since < THUMBNAIL_WAIT_MS;
}

function Thumbnail({ api, file }: { api: FilesApi; file: FileView }) {
  const load = useMemo(
    () =>
      file.has_thumbnail && isReadable(file.state)
        ? (signal: AbortSignal) => api.blob(file.id, 'thumbnail', signal)
        : null,
    [api, file.id, file.has_thumbnail, file.state],
  );
  const state = useBlobUrl(load);
  if (load && state.status === 'ready') {
    return <img src={state.url} alt={`Thumbnail of ${file.name}`} className="files-thumb" />;
  }
  return (
    <span className="files-thumb files-thumb-icon">
      <KindIcon kind={file.kind} />
    </span>
  );
}

function UsageCard({ usage, error }: { usage: FilesUsage | null; error: string | null }) {
  if (error) return <Alert type="error" showIcon role="alert" title={`Your storage could not be read: ${error}`} />;
  if (!usage) return null;
  const { bytes, files } = usage.usage;
  const { max_bytes, max_files } = usage.quota;
  const percent = max_bytes > 0 ? Math.min(100, (bytes / max_bytes) * 100) : 0;
  const full = bytes >= max_bytes || files >= max_files;
  return (
    <section aria-labelledby="files-usage-title">
      <Typography.Title level={5} id="files-usage-title" style={{ marginTop: 0 }}>
        Storage
      </Typography.Title>
      <Progress
        percent={Number(percent.toFixed(1))}
        status={full ? 'exception' : percent >= 90 ? 'active' : 'normal'}
        strokeColor={!full && percent >= 90 ? '#faad14' : undefined}
        aria-label="Storage used"
      />
      <Typography.Text type="secondary">
        {formatBytes(bytes)} of {formatBytes(max_bytes)} used · {files.toLocaleString('en-US')} of{' '}
        {max_files.toLocaleString('en-US')} files
      </Typography.Text>
      {full && (
        <Typography.Paragraph type="danger" style={{ marginBottom: 0 }}>
          Your storage is full: delete files to upload more.
        </Typography.Paragraph>
      )}
    </section>
  );
}

export default function FilesPage({ pollMs = POLL_MS }: { pollMs?: number }) {
  const api = useFilesApi();
  const { message } = App.useApp();
  const screens = Grid.useBreakpoint();

  const [usage, setUsage] = useState<FilesUsage | null>(null);
  const [usageError, setUsageError] = useState<string | null>(null);
  const [files, setFiles] = useState<FileView[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [listError, setListError] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [previewing, setPreviewing] = useState<FileView | null>(null);
  const [sharing, setSharing] = useState<FileView | null>(null);
  const ticket = useRef(0);

  const loadUsage = useCallback(async () => {
    try {
      setUsage(await api.usage());
      setUsageError(null);
    } catch (e) {
      setUsageError(friendlyMessage(e));
    }
  }, [api]);

  const loadPage = useCallback(
    async (before: string | null) => {
      const mine = ++ticket.current;
      setLoading(true);
      try {
        const page = await api.list(before, PAGE);
        if (mine !== ticket.current) return;
        setFiles((old) => (before ? [...old, ...page.files.filter((f) => !old.some((o) => o.id === f.id))] : page.files));
        setNext(page.next ?? null);
        setListError(null);
      } catch (e) {
        if (mine === ticket.current) setListError(`Your files could not be listed: ${friendlyMessage(e)}`);
      } finally {
        if (mine === ticket.current) setLoading(false);
      }
    },
    [api],
  );

  useEffect(() => {
    void loadUsage();
    void loadPage(null);
  }, [loadUsage, loadPage]);

  // Files being scanned are asked for again every few seconds until their state is known, and
  // new images until their thumbnail is made.
  const now = Date.now();
  const pending = files
    .filter((f) => awaited(f, now))
    .slice(0, POLL_AT_MOST)
    .map((f) => f.id)
    .join(',');
  useEffect(() => {
    if (!pending) return;
    const controller = new AbortController();
    const timer = setInterval(() => {
      for (const id of pending.split(',')) {
        api
          .get(id, controller.signal)
          .then((view) => setFiles((old) => old.map((f) => (f.id === id ? view : f))))
          .catch((e: unknown) => {
            if (e instanceof ApiError && e.status === 404) setFiles((old) => old.filter((f) => f.id !== id));
          });
      }
    }, pollMs);
    return () => {
      clearInterval(timer);
      controller.abort();
    };
  }, [api, pending, pollMs]);

  const onUploaded = useCallback(
    (file: FileView) => {
      setFiles((old) => [file, ...old.filter((f) => f.id !== file.id)]);
      message.success(`${file.name} was uploaded.`);
      void loadUsage();
    },
    [message, loadUsage],
  );

  const remove = async (file: FileView) => {
    setDeleting(file.id);
    setActionError(null);
    try {
      await api.remove(file.id);
      setFiles((old) => old.filter((f) => f.id !== file.id));
      message.success(`${file.name} was deleted.`);
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) setFiles((old) => old.filter((f) => f.id !== file.id));
      else setActionError(`${file.name} was not deleted: ${friendlyMessage(e)}`);
    } finally {
      setDeleting(null);
      void loadUsage();
    }
  };

  const save = useCallback(
    async (file: FileView) => {
      try {
        await api.download(file);
      } catch (e) {
        setActionError(`${file.name} could not be downloaded: ${friendlyMessage(e)}`);
      }
    },
    [api],
  );

  const notReadable = (file: FileView) =>
    file.state === 'pending' ? 'The file is still being scanned' : 'The file is quarantined: a virus was found in it';

  const columns: ColumnsType<FileView> = [
    {
      title: 'Name',
      key: 'name',
      render: (_, file) => (
        <Flex gap={12} align="center">
          <Thumbnail api={api} file={file} />
          <div style={{ minWidth: 0 }}>
            <Typography.Text strong ellipsis={{ tooltip: file.name }} style={{ maxWidth: screens.md ? 360 : 180 }}>
              {file.name}
            </Typography.Text>
            <div>
              <Typography.Text type="secondary" style={{ fontSize: 12 }}>
                {KIND_LABELS[file.kind] ?? file.kind}
                {file.width && file.height ? ` · ${file.width}×${file.height}` : ''}
              </Typography.Text>
            </div>
          </div>
        </Flex>
      ),
    },
    { title: 'Size', dataIndex: 'size', key: 'size', render: (n: number) => formatBytes(n) },
    { title: 'State', key: 'state', render: (_, file) => <StateTag file={file} /> },
    {
      title: 'Uploaded',
      dataIndex: 'created_at',
      key: 'created',
      responsive: ['md'],
      render: (t: string) => formatWhen(t),
    },
    {
      title: 'Actions',
      key: 'actions',
      render: (_, file) => {
        const readable = isReadable(file.state);
        const previewable = readable && PREVIEWABLE.includes(file.kind);
        return (
          <Space size={2} wrap>
            <Tooltip title={readable ? (previewable ? 'Preview' : 'This kind of file cannot be shown here') : notReadable(file)}>
              <Button
                type="text"
                icon={<EyeOutlined />}
                aria-label={`Preview ${file.name}`}
                disabled={!previewable}
                onClick={() => setPreviewing(file)}
              />
            </Tooltip>
            <Tooltip title={readable ? 'Download' : notReadable(file)}>
              <Button
                type="text"
                icon={<DownloadOutlined />}
                aria-label={`Download ${file.name}`}
                disabled={!readable}
                onClick={() => void save(file)}
              />
            </Tooltip>
            <Tooltip title={readable ? 'Share' : notReadable(file)}>
              <Button
                type="text"
                icon={<ShareAltOutlined />}
                aria-label={`Share ${file.name}`}
                disabled={!readable}
                onClick={() => setSharing(file)}
              />
            </Tooltip>
            <Popconfirm
              title={`Delete ${file.name}?`}
              description="It is gone for good, and its share links stop working."
              okText="Delete"
              okButtonProps={{ danger: true }}
              onConfirm={() => remove(file)}
            >
              <Button type="text" danger icon={<DeleteOutlined />} aria-label={`Delete ${file.name}`} loading={deleting === file.id} />
            </Popconfirm>
          </Space>
        );
      },
    },
  ];

  return (
    <main className="files-page" style={{ padding: screens.md ? 24 : 12 }}>
      <Flex justify="space-between" align="center" wrap gap={8} style={{ marginBottom: 8 }}>
        <Link to="/">
          <ArrowLeftOutlined /> Back to chat
        </Link>
        <Button
          icon={<ReloadOutlined />}
          onClick={() => {
            void loadUsage();
            void loadPage(null);
          }}
        >
          Refresh
        </Button>
      </Flex>
      <Typography.Title level={2}>My files</Typography.Title>
      <Space orientation="vertical" size="large" style={{ width: '100%' }}>
        {usage && !usage.scanning && (
          <Alert
            type="warning"
            showIcon
            title="Files are not virus-scanned on this server"
            description="No virus scanner is configured, so new files are stored as “unscanned”. Only open files you trust."
          />
        )}
        <Card>
          <UsageCard usage={usage} error={usageError} />
        </Card>
        <UploadPanel api={api} usage={usage} onUploaded={onUploaded} />
        {actionError && (
          <Alert
            type="error"
            showIcon
            role="alert"
            closable={{ onClose: () => setActionError(null), 'aria-label': 'Dismiss' }}
            title={actionError}
          />
        )}
        <section aria-labelledby="files-list-title">
          <Typography.Title level={4} id="files-list-title">
            Files
          </Typography.Title>
          {listError && <Alert type="error" showIcon role="alert" title={listError} style={{ marginBottom: 12 }} />}
          <Table<FileView>
            rowKey="id"
            columns={columns}
            dataSource={files}
            loading={loading && files.length === 0}
            pagination={false}
            scroll={{ x: 'max-content' }}
            locale={{ emptyText: 'No files yet: upload one above.' }}
          />
          {next && (
            <div style={{ textAlign: 'center', marginTop: 12 }}>
              <Button onClick={() => void loadPage(next)} loading={loading}>
                Load more
              </Button>
            </div>
          )}
        </section>
      </Space>
      <ShareDialog api={api} file={sharing} onClose={() => setSharing(null)} />
      {previewing && (
        <Suspense fallback={null}>
          <PreviewDialog api={api} file={previewing} onClose={() => setPreviewing(null)} onDownload={(f) => void save(f)} />
        </Suspense>
      )}
    </main>
  );
}
