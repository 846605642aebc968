import { ArrowUpOutlined, CloseOutlined, PaperClipOutlined, RedoOutlined, StopOutlined } from '@ant-design/icons';
import { Alert, Button, Input, Progress, Tooltip } from 'antd';
import { useCallback, useEffect, useId, useMemo, useRef, useState, type DragEvent, type KeyboardEvent } from 'react';
import { MAX_ATTACHMENTS, type ChatAttachment } from '../api/types';
import type { FilesApi } from '../files/api';
import { formatBytes, KindIcon } from '../files/format';
import { pastedFiles } from '../files/paste';
import { useBlobUrl } from '../files/useBlobUrl';
import { guessKind, useAttachments, type DraftAttachment, type DraftStatus } from './useAttachments';

export interface ComposerProps {
  streaming: boolean;
  disabled?: boolean;
  /**
   * Sends the message with its attached files. When it returns a promise that resolves
   * `false` (the server did not take the message), the text and files come back to the box.
   */
  onSend(text: string, attachments: ChatAttachment[]): void | Promise<boolean>;
  onStop(): void;
  /** The files service, to attach files with; without it nothing can be attached. */
  files?: FilesApi;
  /** Why the server refused the last message (its attachments), shown above the box. */
  error?: string | null;
  /** How often a file being scanned is asked for (tests make it short). */
  attachmentPollMs?: number;
}

const STATUS_WORDS: Record<DraftStatus, string> = {
  uploading: 'uploading',
  checking: 'checking',
  scanning: 'scanning for viruses',
  ready: 'ready',
  error: 'failed',
};

function ChipPreview({ draft }: { draft: DraftAttachment }) {
  const kind = draft.view?.kind ?? guessKind(draft.file.type, draft.file.name);
  // An image shows itself, read from the file chosen here (nothing to fetch).
  const load = useMemo(() => (kind === 'image' ? async () => draft.file as Blob : null), [kind, draft.file]);
  const image = useBlobUrl(load);
  if (load && image.status === 'ready') return <img className="attachment-chip-thumb" src={image.url} alt="" />;
  return (
    <span className="attachment-chip-thumb attachment-chip-icon">
      <KindIcon kind={kind} />
    </span>
  );
}

function AttachmentChip({
  draft,
  onRemove,
  onRetry,
}: {
  draft: DraftAttachment;
  onRemove(key: string): void;
  onRetry(key: string): void;
}) {
  const name = draft.view?.name ?? draft.file.name;
  const size = draft.view?.size ?? draft.file.size;
  const uploading = draft.status === 'uploading';
  const percent = size > 0 ? Math.min(100, Math.floor((draft.sent / size) * 100)) : 0;
  return (
    <li className="attachment-chip" data-status={draft.status} aria-label={`${name}, ${STATUS_WORDS[draft.status]}`}>
      <ChipPreview draft={draft} />
      <div className="attachment-chip-text">
        <span className="attachment-chip-name" title={name}>
          {name}
        </span>
        <span className="attachment-chip-meta">
          {formatBytes(size)} · <span className="attachment-chip-status">{STATUS_WORDS[draft.status]}</span>
          {uploading && <span aria-hidden="true"> {percent}%</span>}
        </span>
        {draft.status === 'error' && draft.error && <span className="attachment-chip-error">{draft.error}</span>}
        {uploading && (
          <Progress
            className="attachment-chip-progress"
            percent={percent}
            size="small"
            showInfo={false}
            aria-label={`Upload of ${name}`}
          />
        )}
      </div>
      {draft.status === 'error' && draft.canRetry && (
        <Tooltip title="Try again">
          <Button size="small" type="text" icon={<RedoOutlined />} aria-label={`Try ${name} again`} onClick={() => onRetry(draft.key)} />
        </Tooltip>
      )}
      <Tooltip title={uploading ? 'Cancel upload' : 'Remove'}>
        <Button
          size="small"
          type="text"
          icon={<CloseOutlined />}
          aria-label={uploading ? `Cancel upload of ${name}` : `Remove ${name}`}
          onClick={() => onRemove(draft.key)}
        />
      </Tooltip>
    </li>
  );
}

/**
 * The message box: Enter sends, Shift+Enter is a new line, Esc stops the answer. Files come
 * with the attach button, dropped on it or pasted into it; each is uploaded at once and the
 * message waits until every one has passed the virus scan.
 */
export function Composer({ streaming, disabled, onSend, onStop, files, error, attachmentPollMs }: ComposerProps) {
  const [text, setText] = useState('');
  const textRef = useRef(text);
  textRef.current = text;
  const attachments = useAttachments(files, { pollMs: attachmentPollMs });
  const { drafts, ready, full } = attachments;
  const [notice, setNotice] = useState<string | null>(null);
  const [dragging, setDragging] = useState(false);
  const dragDepth = useRef(0);
  const picker = useRef<HTMLInputElement>(null);
  const hintId = useId();
  const mounted = useRef(true);
  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
    };
  }, []);

  const canAttach = !!files && !disabled;
  const empty = !text.trim() && drafts.length === 0;
  const waitingFor = drafts.filter((d) => d.status !== 'ready' && d.status !== 'error').length;
  const failed = drafts.some((d) => d.status === 'error');
  const hint = failed
    ? 'Remove the files that failed to send the message.'
    : waitingFor > 0
      ? `Waiting for ${waitingFor === 1 ? 'a file' : `${waitingFor} files`} to be ready…`
      : null;

  const attach = useCallback(
    (list: File[]) => {
      if (!canAttach || list.length === 0) return;
      const left = attachments.add(list);
      setNotice(
        left > 0
          ? `A message can carry at most ${MAX_ATTACHMENTS} files: ${left === 1 ? 'one was' : `${left} were`} not attached.`
          : null,
      );
    },
    [attachments, canAttach],
  );

  function submit() {
    if (streaming || disabled || !ready || empty) return;
    const { attachments: sent, drafts: sentDrafts } = attachments.take();
    const said = text;
    setText('');
    setNotice(null);
    const outcome = onSend(said, sent);
    if (!outcome) return;
    void outcome.then((accepted) => {
      if (accepted !== false || !mounted.current) return;
      // Not taken: the draft comes back (the text unless a new one was started meanwhile).
      if (!textRef.current.trim()) setText(said);
      if (sentDrafts.length > 0) attachments.restore(sentDrafts);
    });
  }

  function onKeyDown(e: KeyboardEvent<HTMLTextAreaElement>) {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape' && streaming) {
      e.preventDefault();
      onStop();
    }
  }

  const carriesFiles = (e: DragEvent) => Array.from(e.dataTransfer?.types ?? []).includes('Files');
  const dropHandlers = canAttach
    ? {
        onDragEnter(e: DragEvent<HTMLDivElement>) {
          if (!carriesFiles(e)) return;
          e.preventDefault();
          dragDepth.current += 1;
          setDragging(true);
        },
        onDragOver(e: DragEvent<HTMLDivElement>) {
          if (!carriesFiles(e)) return;
          e.preventDefault();
          e.dataTransfer.dropEffect = full ? 'none' : 'copy';
        },
        onDragLeave(e: DragEvent<HTMLDivElement>) {
          if (!carriesFiles(e)) return;
          dragDepth.current = Math.max(0, dragDepth.current - 1);
          if (dragDepth.current === 0) setDragging(false);
        },
        onDrop(e: DragEvent<HTMLDivElement>) {
          if (!carriesFiles(e)) return;
          e.preventDefault();
          dragDepth.current = 0;
          setDragging(false);
          attach(Array.from(e.dataTransfer.files));
        },
      }
    : {};

  return (
    <div
      className={`composer${dragging ? ' composer-dragging' : ''}`}
      {...dropHandlers}
      onPaste={(e) => {
        if (!canAttach) return;
        const pasted = pastedFiles(e);
        if (pasted.length === 0) return;
        e.preventDefault();
        attach(pasted);
      }}
    >
      <div className="composer-box">
        {error && <Alert className="composer-alert" type="error" showIcon role="alert" title={error} />}
        {notice && (
          <Alert
            className="composer-alert"
            type="warning"
            showIcon
            role="alert"
            title={notice}
            closable={{ 'aria-label': 'Dismiss' }}
            onClose={() => setNotice(null)}
          />
        )}
        {drafts.length > 0 && (
          <ul className="composer-attachments" aria-label="Attachments">
            {drafts.map((d) => (
              <AttachmentChip key={d.key} draft={d} onRemove={attachments.remove} onRetry={attachments.retry} />
            ))}
          </ul>
        )}
        <div className="composer-inner">
          {files && (
            <>
              <input
                ref={picker}
                type="file"
                multiple
                tabIndex={-1}
                aria-label="Choose files to attach"
                style={{ display: 'none' }}
                onChange={(e) => {
                  attach(Array.from(e.target.files ?? []));
                  // The same file can be chosen again after it was removed.
                  e.target.value = '';
                }}
              />
              <Tooltip title={full ? `At most ${MAX_ATTACHMENTS} files` : 'Attach files'}>
                <Button
                  type="text"
                  icon={<PaperClipOutlined />}
                  aria-label="Attach files"
                  disabled={!canAttach || full}
                  onClick={() => picker.current?.click()}
                />
              </Tooltip>
            </>
          )}
          <Input.TextArea
            aria-label="Message"
            placeholder={
              files
                ? 'Send a message (Enter to send, Shift+Enter for a new line); drop or paste files to attach them'
                : 'Send a message (Enter to send, Shift+Enter for a new line)'
            }
            autoSize={{ minRows: 1, maxRows: 10 }}
            value={text}
            disabled={disabled}
            autoFocus
            onChange={(e) => setText(e.target.value)}
            onKeyDown={onKeyDown}
          />
          {streaming ? (
            <Button danger icon={<StopOutlined />} aria-label="Stop generating" onClick={onStop} />
          ) : (
            <Button
              type="primary"
              icon={<ArrowUpOutlined />}
              aria-label="Send message"
              aria-describedby={hint ? hintId : undefined}
              disabled={disabled || !ready || empty}
              onClick={submit}
            />
          )}
        </div>
        <div id={hintId} className="composer-hint" aria-live="polite">
          {hint}
        </div>
      </div>
      {dragging && (
        <div className="composer-drop" aria-hidden="true">
          {full ? `At most ${MAX_ATTACHMENTS} files` : 'Drop files to attach them'}
        </div>
      )}
    </div>
  );
}
