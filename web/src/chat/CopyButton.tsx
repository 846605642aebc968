import { CheckOutlined, CopyOutlined } from '@ant-design/icons';
import { Button, Tooltip } from 'antd';
import { useState } from 'react';

/** Writes text to the clipboard, with a fallback for pages where the API is missing. */
export async function copyText(text: string): Promise<void> {
  if (navigator.clipboard?.writeText) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = document.createElement('textarea');
  area.value = text;
  area.style.position = 'fixed';
  area.style.opacity = '0';
  document.body.appendChild(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

export function CopyButton({ text, label }: { text: () => string; label: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <Tooltip title={copied ? 'Copied' : label}>
      <Button
        size="small"
        type="text"
        aria-label={copied ? 'Copied' : label}
        icon={copied ? <CheckOutlined /> : <CopyOutlined />}
        onClick={async () => {
          await copyText(text());
          setCopied(true);
          setTimeout(() => setCopied(false), 1500);
        }}
      />
    </Tooltip>
  );
}

