// A file shown in a dialog: images, PDFs, text, Markdown, audio and video, read with the
// session's token into an object URL. Loaded on demand (it brings the Markdown renderer).
import { DownloadOutlined } from '@ant-design/icons';
import { Alert, Button, Modal, Spin, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { Markdown } from '../chat/Markdown';
import type { FilesApi } from './api';
import { formatBytes } from './format';
import type { FileView } from './types';
import { useBlobUrl } from './useBlobUrl';
import './files.css';

/** Text shown at most; the rest is in the download. */
const TEXT_LIMIT = 1024 * 1024;

export interface PreviewDialogProps {
  api: FilesApi;
  file: FileView | null;
  onClose(): void;
  onDownload(file: FileView): void;
}

function TextPreview({ blob, markdown }: { blob: Blob; markdown: boolean }) {
  const [text, setText] = useState<string | null>(null);
  const cut = blob.size > TEXT_LIMIT;
  useEffect(() => {
    let live = true;
    void (cut ? blob.slice(0, TEXT_LIMIT) : blob).text().then((t) => {
      if (live) setText(t);
    });
    return () => {
      live = false;
    };
  }, [blob, cut]);
  if (text === null) return <Spin />;
  return (
    <>
      {cut && (
        <Typography.Paragraph type="secondary">
          The first {formatBytes(TEXT_LIMIT)} of {formatBytes(blob.size)}; download the file for the rest.
        </Typography.Paragraph>
      )}
      {markdown ? <Markdown text={text} /> : <pre className="files-text-preview">{text}</pre>}
    </>
  );
}

function Body({ api, file }: { api: FilesApi; file: FileView }) {
  // Images show their smaller preview variant when the server made one.
  const variant = file.kind === 'image' && file.has_thumbnail ? 'preview' : 'content';
  const load = useCallback(
    async (signal: AbortSignal) => {
      const blob = await api.blob(file.id, variant, signal);
      // A PDF is shown as a PDF whatever type the answer had.
      return file.kind === 'pdf' ? new Blob([blob], { type: 'application/pdf' }) : blob;
    },
    [api, file.id, file.kind, variant],
  );
  const state = useBlobUrl(load);
  if (state.status === 'loading') {
    return (
      <div style={{ textAlign: 'center', padding: 32 }} role="status" aria-label={`Loading ${file.name}`}>
        <Spin />
      </div>
    );
  }
  if (state.status === 'failed') {
    return <Alert type="error" showIcon role="alert" title={`${file.name} could not be opened: ${state.error}`} />;
  }
  switch (file.kind) {
    case 'image':
      return <img src={state.url} alt={file.name} className="files-image-preview" />;
    case 'pdf':
      return <iframe src={state.url} title={file.name} className="files-pdf-preview" />;
    case 'audio':
      return <audio src={state.url} controls aria-label={file.name} style={{ width: '100%' }} />;
    case 'video':
      return <video src={state.url} controls aria-label={file.name} className="files-image-preview" />;
    case 'text':
    case 'markdown':
      return <TextPreview blob={state.blob} markdown={file.kind === 'markdown'} />;
    default:
      return <Typography.Paragraph>This kind of file cannot be shown here; download it to open it.</Typography.Paragraph>;
  }
}

export default function PreviewDialog({ api, file, onClose, onDownload }: PreviewDialogProps) {
  return (
    <Modal
      open={file !== null}
      title={file?.name}
      onCancel={onClose}
      width={file?.kind === 'pdf' ? 1000 : 800}
      destroyOnHidden
      footer={
        file && [
          <Button key="download" icon={<DownloadOutlined />} onClick={() => onDownload(file)}>
            Download
          </Button>,
          <Button key="close" type="primary" onClick={onClose}>
            Close
          </Button>,
        ]
      }
    >
      {file && <Body api={api} file={file} />}
    </Modal>
  );
}
