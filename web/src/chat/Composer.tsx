import { ArrowUpOutlined, StopOutlined } from '@ant-design/icons';
import { Button, Input } from 'antd';
import { useState, type KeyboardEvent } from 'react';

export interface ComposerProps {
  streaming: boolean;
  disabled?: boolean;
  onSend(text: string): void;
  onStop(): void;
}

/** The message box: Enter sends, Shift+Enter is a new line, Esc stops the answer. */
export function Composer({ streaming, disabled, onSend, onStop }: ComposerProps) {
  const [text, setText] = useState('');

  function submit() {
    if (streaming || disabled || !text.trim()) return;
    onSend(text);
    setText('');
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

  return (
    <div className="composer">
      <div className="composer-inner">
        <Input.TextArea
          aria-label="Message"
          placeholder="Send a message (Enter to send, Shift+Enter for a new line)"
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
            disabled={disabled || !text.trim()}
            onClick={submit}
          />
        )}
      </div>
    </div>
  );
}
