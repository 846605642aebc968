import { EditOutlined, LeftOutlined, RedoOutlined, RightOutlined, RiseOutlined } from '@ant-design/icons';
import { Alert, Button, Input, Space, Tag, Tooltip } from 'antd';
import { useState } from 'react';
import { useNavigate } from 'react-router';
import type { FilesApi } from '../files/api';
import { prefillFrom } from '../seo/prefill';
import { CopyButton } from './CopyButton';
import { Markdown } from './Markdown';
import { MessageAttachments } from './MessageAttachments';
import { Reactions } from './Reactions';
import type { ChatMessage } from './useConversation';

export interface MessageViewProps {
  message: ChatMessage;
  streaming: boolean;
  busy: boolean;
  onRegenerate(m: ChatMessage): void;
  onEdit(m: ChatMessage, content: string): void;
  onSwitch(m: ChatMessage, direction: -1 | 1): void;
  /** Toggles the reader's reaction; without it no reactions are offered. */
  onReact?(m: ChatMessage, emoji: string): void;
  /** The files service, to show and download the message's attachments. */
  files?: FilesApi;
}

function BranchNav({ message, busy, onSwitch }: Pick<MessageViewProps, 'message' | 'busy' | 'onSwitch'>) {
  const b = message.branches;
  if (!b || b.sibling_ids.length < 2) return null;
  return (
    <Space.Compact size="small" aria-label="Branches">
      <Button
        size="small"
        type="text"
        icon={<LeftOutlined />}
        aria-label="Previous branch"
        disabled={busy || b.index === 0}
        onClick={() => onSwitch(message, -1)}
      />
      <span className="branch-count" aria-live="polite" style={{ padding: '0 4px', lineHeight: '24px' }}>
        {b.index + 1}/{b.sibling_ids.length}
      </span>
      <Button
        size="small"
        type="text"
        icon={<RightOutlined />}
        aria-label="Next branch"
        disabled={busy || b.index >= b.sibling_ids.length - 1}
        onClick={() => onSwitch(message, 1)}
      />
    </Space.Compact>
  );
}

export function MessageView({ message, streaming, busy, onRegenerate, onEdit, onSwitch, onReact, files }: MessageViewProps) {
  const navigate = useNavigate();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState(message.content);
  const isUser = message.role === 'user';
  const label = isUser ? 'Your message' : 'Assistant message';
  const attachments = message.attachments ?? [];
  // A question may be files alone; an edit keeps them.
  const sendable = (text: string) => !!text.trim() || attachments.length > 0;

  return (
    <article className={`message ${message.role}`} aria-label={label} data-status={message.status}>
      {isUser && editing ? (
        <div style={{ width: '100%' }}>
          <Input.TextArea
            aria-label="Edit message"
            value={draft}
            autoSize={{ minRows: 2, maxRows: 12 }}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Escape') setEditing(false);
              if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
                e.preventDefault();
                if (sendable(draft)) {
                  setEditing(false);
                  onEdit(message, draft);
                }
              }
            }}
          />
          <Space style={{ marginTop: 8 }}>
            <Button onClick={() => setEditing(false)}>Cancel</Button>
            <Button
              type="primary"
              disabled={!sendable(draft)}
              onClick={() => {
                setEditing(false);
                onEdit(message, draft);
              }}
            >
              Save and send
            </Button>
          </Space>
        </div>
      ) : (
        (!isUser || message.content || attachments.length === 0) && (
          <div className="message-body">
            {isUser ? message.content : <Markdown text={message.content} />}
            {!isUser && streaming && message.content === '' && (
              <div className="typing" role="status" aria-label="Assistant is typing">
                <span className="typing-dots">
                  <span>●</span>
                  <span>●</span>
                  <span>●</span>
                </span>
              </div>
            )}
          </div>
        )
      )}
      {attachments.length > 0 && <MessageAttachments attachments={attachments} api={files} />}
      {message.status === 'error' && message.role === 'assistant' && (
        <Alert type="error" showIcon title={message.error || 'The model failed to answer.'} style={{ marginTop: 8 }} />
      )}
      {!editing && (
        <div className="message-actions">
          <BranchNav message={message} busy={busy} onSwitch={onSwitch} />
          {!streaming && <CopyButton label="Copy message" text={() => message.content} />}
          {!streaming && message.content.trim() && (
            <Tooltip title="Send to SEO studio">
              <Button
                size="small"
                type="text"
                icon={<RiseOutlined />}
                aria-label="Send to SEO studio"
                onClick={() => navigate('/seo/new', { state: prefillFrom(message.content) })}
              />
            </Tooltip>
          )}
          {onReact && !streaming && !message.id.startsWith('temp-') && message.status !== 'streaming' && (
            <Reactions reactions={message.reactions} onToggle={(emoji) => onReact(message, emoji)} />
          )}
          {isUser && !busy && (
            <Tooltip title="Edit">
              <Button
                size="small"
                type="text"
                icon={<EditOutlined />}
                aria-label="Edit message"
                onClick={() => {
                  setDraft(message.content);
                  setEditing(true);
                }}
              />
            </Tooltip>
          )}
          {!isUser && !busy && !message.id.startsWith('temp-') && (
            <Tooltip title="Regenerate">
              <Button
                size="small"
                type="text"
                icon={<RedoOutlined />}
                aria-label="Regenerate answer"
                onClick={() => onRegenerate(message)}
              />
            </Tooltip>
          )}
          {!isUser && message.status === 'stopped' && <Tag>stopped</Tag>}
          {!isUser && message.status === 'interrupted' && <Tag color="warning">interrupted</Tag>}
          {!isUser && message.model && !streaming && (
            <span style={{ opacity: 0.6, marginLeft: 4 }}>{message.model}</span>
          )}
        </div>
      )}
    </article>
  );
}
