// The files a message carries: images as thumbnails that open a preview, other files as chips
// that download them. Bytes are read with the session's token (an <img> cannot send it).
import { Alert } from 'antd';
import { lazy, Suspense, useCallback, useMemo, useState } from 'react';
import { ApiError, friendlyMessage } from '../api/errors';
import type { ChatAttachment } from '../api/types';
import type { FilesApi } from '../files/api';
import { formatBytes, KindIcon } from '../files/format';
import type { FileView } from '../files/types';
import { useBlobUrl } from '../files/useBlobUrl';

const PreviewDialog = lazy(() => import('../files/PreviewDialog'));

/** An image this small is shown whole while its thumbnail is not made yet. */
const WHOLE_IMAGE_AT_MOST = 4 * 1024 * 1024;

function ImageThumb({ api, attachment, onOpen }: { api: FilesApi; attachment: ChatAttachment; onOpen(): void }) {
  const { file_id: id, size } = attachment;
  const load = useCallback(
    async (signal: AbortSignal) => {
      try {
        return await api.blob(id, 'thumbnail', signal);
      } catch (e) {
        // The server makes thumbnails in the background: a new upload may have none yet.
        if (e instanceof ApiError && e.status === 404 && size <= WHOLE_IMAGE_AT_MOST) return api.blob(id, 'content', signal);
        throw e;
      }
    },
    [api, id, size],
  );
  const image = useBlobUrl(load);
  return (
    <button type="button" className="message-attachment-image" aria-label={`Open ${attachment.name}`} title={attachment.name} onClick={onOpen}>
      {image.status === 'ready' ? (
        <img src={image.url} alt={attachment.name} />
      ) : (
        <span className="message-attachment-placeholder" role={image.status === 'failed' ? 'img' : undefined} aria-label={image.status === 'failed' ? `${attachment.name} cannot be shown` : undefined}>
          <KindIcon kind="image" />
        </span>
      )}
    </button>
  );
}

export interface MessageAttachmentsProps {
  attachments: ChatAttachment[];
  /** The files service; without it the files are listed but cannot be opened. */
  api?: FilesApi;
}

export function MessageAttachments({ attachments, api }: MessageAttachmentsProps) {
  // `undefined` until a file is first opened: the dialog (a chunk of its own) is loaded then.
  const [previewing, setPreviewing] = useState<FileView | null | undefined>(undefined);
  const [problem, setProblem] = useState<string | null>(null);
  const images = useMemo(() => attachments.filter((a) => a.kind === 'image'), [attachments]);
  const others = useMemo(() => attachments.filter((a) => a.kind !== 'image'), [attachments]);
  if (attachments.length === 0) return null;

  const open = async (a: ChatAttachment) => {
    if (!api) return;
    setProblem(null);
    try {
      // The file as it is now (its scan state, whether a preview was made).
      setPreviewing(await api.get(a.file_id));
    } catch (e) {
      setProblem(`${a.name} cannot be opened: ${e instanceof ApiError && e.status === 404 ? 'it was deleted.' : friendlyMessage(e)}`);
    }
  };
  const save = async (f: Pick<FileView, 'id' | 'name'>) => {
    if (!api) return;
    setProblem(null);
    try {
      await api.download(f);
    } catch (e) {
      setProblem(`${f.name} could not be downloaded: ${e instanceof ApiError && e.status === 404 ? 'it was deleted.' : friendlyMessage(e)}`);
    }
  };

  return (
    <div className="message-attachments">
      {images.length > 0 && (
        <ul className="message-attachment-images" aria-label="Attached images">
          {images.map((a) => (
            <li key={a.file_id}>
              {api ? (
                <ImageThumb api={api} attachment={a} onOpen={() => void open(a)} />
              ) : (
                <span className="message-attachment-placeholder">
                  <KindIcon kind="image" />
                </span>
              )}
            </li>
          ))}
        </ul>
      )}
      {others.length > 0 && (
        <ul className="message-attachment-files" aria-label="Attached files">
          {others.map((a) => (
            <li key={a.file_id}>
              <button
                type="button"
                className="message-attachment-chip"
                aria-label={`Download ${a.name}`}
                title={`Download ${a.name}`}
                disabled={!api}
                onClick={() => void save({ id: a.file_id, name: a.name })}
              >
                <KindIcon kind={a.kind} />
                <span className="message-attachment-name">{a.name}</span>
                <span className="message-attachment-size">{formatBytes(a.size)}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      {problem && <Alert type="error" showIcon role="alert" title={problem} closable onClose={() => setProblem(null)} />}
      {api && previewing !== undefined && (
        <Suspense fallback={null}>
          <PreviewDialog api={api} file={previewing} onClose={() => setPreviewing(null)} onDownload={(f) => void save(f)} />
        </Suspense>
      )}
    </div>
  );
}
