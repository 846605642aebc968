// The upload area: files dropped, chosen or pasted (images from the clipboard) are sent at once,
// each with its own row: progress, bytes sent, speed and Cancel; a failed one says why, with
// Retry (a large file resumes where it stopped) and Dismiss.
import { CloseOutlined, InboxOutlined, RedoOutlined } from '@ant-design/icons';
import { Alert, Button, Flex, Progress, Space, Typography, Upload } from 'antd';
import { useCallback, useEffect, useRef, useState } from 'react';
import { friendlyMessage } from '../api/errors';
import { isCancelled, type FilesApi, type UploadHandle } from './api';
import { formatBytes, formatRate, KIND_PLURALS } from './format';
import { pastedFiles } from './paste';
import type { FileKind, FilesUsage, FileView } from './types';

interface Row {
  key: string;
  file: File;
  sent: number;
  total: number;
  rate: number;
  status: 'uploading' | 'failed';
  error?: string;
  /** False for a file refused before it was sent (too large): retrying cannot help. */
  canRetry: boolean;
}

export interface UploadPanelProps {
  api: FilesApi;
  usage: FilesUsage | null;
  onUploaded(file: FileView): void;
}

function kindsText(kinds: string[]): string {
  return kinds.map((k) => KIND_PLURALS[k as FileKind] ?? k).join(', ');
}

export function UploadPanel({ api, usage, onUploaded }: UploadPanelProps) {
  const [rows, setRows] = useState<Row[]>([]);
  const handles = useRef(new Map<string, UploadHandle>());
  const counter = useRef(0);
  const maxBytes = usage?.max_file_bytes;

  const update = useCallback(
    (key: string, changes: Partial<Row>) => setRows((old) => old.map((r) => (r.key === key ? { ...r, ...changes } : r))),
    [],
  );
  const drop = useCallback((key: string) => {
    handles.current.delete(key);
    setRows((old) => old.filter((r) => r.key !== key));
  }, []);

  const start = useCallback(
    (key: string, file: File) => {
      // Progress may be reported before upload() returns.
      let handle: UploadHandle | null = null;
      handle = api.upload(file, {
        onProgress: (p) => {
          if (!handle || handles.current.get(key) === handle) update(key, { sent: p.sent, total: p.total, rate: p.rate });
        },
      });
      handles.current.set(key, handle);
      update(key, { status: 'uploading', error: undefined, rate: 0 });
      handle.promise.then(
        (view) => {
          if (handles.current.get(key) !== handle) return;
          drop(key);
          onUploaded(view);
        },
        (e: unknown) => {
          // A cancelled row is gone already.
          if (handles.current.get(key) !== handle) return;
          if (isCancelled(e)) drop(key);
          else update(key, { status: 'failed', error: friendlyMessage(e), rate: 0 });
        },
      );
    },
    [api, update, drop, onUploaded],
  );

  const add = useCallback(
    (files: File[]) => {
      const fresh: Row[] = files.map((file) => {
        const row: Row = {
          key: `upload-${++counter.current}`,
          file,
          sent: 0,
          total: file.size,
          rate: 0,
          status: 'uploading',
          canRetry: true,
        };
        if (maxBytes !== undefined && file.size > maxBytes) {
          row.status = 'failed';
          row.canRetry = false;
          row.error = `${file.name} is ${formatBytes(file.size)}; files can be at most ${formatBytes(maxBytes)}.`;
        }
        return row;
      });
      setRows((old) => [...old, ...fresh]);
      for (const r of fresh) if (r.status === 'uploading') start(r.key, r.file);
    },
    [maxBytes, start],
  );

  // An image pasted anywhere on the page is uploaded too.
  useEffect(() => {
    const onPaste = (e: ClipboardEvent) => {
      const files = pastedFiles(e);
      if (files.length === 0) return;
      e.preventDefault();
      add(files);
    };
    document.addEventListener('paste', onPaste);
    return () => document.removeEventListener('paste', onPaste);
  }, [add]);

  // Uploads still running when the page goes are stopped (a resumable one can resume later).
  useEffect(() => {
    const live = handles.current;
    return () => {
      const running = [...live.values()];
      live.clear();
      for (const h of running) h.stop();
    };
  }, []);

  // Leaving the page while files are being sent asks first.
  const sending = rows.some((r) => r.status === 'uploading');
  useEffect(() => {
    if (!sending) return;
    const onBeforeUnload = (e: BeforeUnloadEvent) => {
      e.preventDefault();
      e.returnValue = '';
    };
    window.addEventListener('beforeunload', onBeforeUnload);
    return () => window.removeEventListener('beforeunload', onBeforeUnload);
  }, [sending]);

  /** Stops a running upload, or forgets a failed one (discarding the server's parts). */
  const cancel = (row: Row) => {
    const handle = handles.current.get(row.key);
    drop(row.key);
    void handle?.cancel();
  };

  return (
    <section aria-label="Upload files">
      <Upload.Dragger
        multiple
        showUploadList={false}
        beforeUpload={(file) => {
          add([file]);
          return Upload.LIST_IGNORE;
        }}
      >
        <p className="ant-upload-drag-icon">
          <InboxOutlined aria-hidden="true" />
        </p>
        <p className="ant-upload-text">Click or drop files here to upload them</p>
        <p className="ant-upload-hint">
          You can also paste an image.
          {maxBytes !== undefined && ` Up to ${formatBytes(maxBytes)} a file.`}
          {usage && usage.allowed_kinds.length > 0 && ` Allowed: ${kindsText(usage.allowed_kinds)}.`}
        </p>
      </Upload.Dragger>
      {rows.length > 0 && (
        <ul className="files-uploads" aria-label="Uploads">
          {rows.map((row) => {
            const percent = row.total > 0 ? Math.floor((row.sent / row.total) * 100) : row.status === 'uploading' ? 0 : 100;
            const rate = formatRate(row.rate);
            return (
              <li key={row.key} aria-label={row.file.name}>
                <Flex justify="space-between" align="center" gap={8} wrap>
                  <Typography.Text strong ellipsis style={{ maxWidth: '60%' }}>
                    {row.file.name}
                  </Typography.Text>
                  <Space size={8}>
                    <Typography.Text type="secondary">
                      {formatBytes(row.sent)} of {formatBytes(row.total)}
                      {row.status === 'uploading' && rate && ` · ${rate}`}
                    </Typography.Text>
                    {row.status === 'uploading' && (
                      <Button size="small" icon={<CloseOutlined />} onClick={() => cancel(row)} aria-label={`Cancel upload of ${row.file.name}`}>
                        Cancel
                      </Button>
                    )}
                  </Space>
                </Flex>
                <Progress
                  percent={percent}
                  size="small"
                  status={row.status === 'failed' ? 'exception' : 'active'}
                  aria-label={`Upload of ${row.file.name}`}
                />
                {row.status === 'failed' && (
                  <Alert
                    type="error"
                    showIcon
                    role="alert"
                    title={row.error}
                    action={
                      <Space size={4}>
                        {row.canRetry && (
                          <Button size="small" icon={<RedoOutlined />} onClick={() => start(row.key, row.file)} aria-label={`Retry upload of ${row.file.name}`}>
                            Retry
                          </Button>
                        )}
                        <Button size="small" onClick={() => cancel(row)} aria-label={`Dismiss upload of ${row.file.name}`}>
                          Dismiss
                        </Button>
                      </Space>
                    }
                  />
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
