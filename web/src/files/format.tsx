// How the files screens show sizes, rates, kinds and scan states.
import {
  AudioOutlined,
  FileImageOutlined,
  FileMarkdownOutlined,
  FileOutlined,
  FilePdfOutlined,
  FileTextOutlined,
  FileWordOutlined,
  FileZipOutlined,
  SyncOutlined,
  VideoCameraOutlined,
} from '@ant-design/icons';
import { Tag } from 'antd';
import type { ReactNode } from 'react';
import type { FileKind, FileState, FileView } from './types';

const UNITS = ['KB', 'MB', 'GB', 'TB'];

/** A byte count in binary units, as people read them: `512 bytes`, `1.5 KB`, `16 MB`, `2.34 GB`. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  if (bytes < 1024) return `${bytes} ${bytes === 1 ? 'byte' : 'bytes'}`;
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = value >= 100 || Number.isInteger(value) ? 0 : value >= 10 ? 1 : 2;
  return `${Number(value.toFixed(digits))} ${UNITS[unit]}`;
}

/** An upload's speed: `2.5 MB/s`; empty while not known. */
export function formatRate(bytesPerSecond: number): string {
  return bytesPerSecond > 0 ? `${formatBytes(Math.round(bytesPerSecond))}/s` : '';
}

export function formatWhen(iso: string | null | undefined): string {
  if (!iso) return '—';
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
}

export const KIND_LABELS: Record<FileKind, string> = {
  image: 'Image',
  pdf: 'PDF',
  document: 'Document',
  text: 'Text',
  markdown: 'Markdown',
  audio: 'Audio',
  video: 'Video',
  archive: 'Archive',
};

/** The kinds as a list of what may be uploaded says them. */
export const KIND_PLURALS: Record<FileKind, string> = {
  image: 'images',
  pdf: 'PDFs',
  document: 'documents',
  text: 'text files',
  markdown: 'Markdown',
  audio: 'audio',
  video: 'video',
  archive: 'archives',
};

const KIND_ICONS: Record<FileKind, ReactNode> = {
  image: <FileImageOutlined />,
  pdf: <FilePdfOutlined />,
  document: <FileWordOutlined />,
  text: <FileTextOutlined />,
  markdown: <FileMarkdownOutlined />,
  audio: <AudioOutlined />,
  video: <VideoCameraOutlined />,
  archive: <FileZipOutlined />,
};

export function KindIcon({ kind }: { kind: FileKind }) {
  return (
    <span className="files-kind-icon" role="img" aria-label={KIND_LABELS[kind] ?? 'File'}>
      {KIND_ICONS[kind] ?? <FileOutlined />}
    </span>
  );
}

/** Kinds the preview dialog can show. */
export const PREVIEWABLE: FileKind[] = ['image', 'pdf', 'text', 'markdown', 'audio', 'video'];

/** Files whose bytes can be read: not waiting for the scan, not quarantined. */
export function isReadable(state: FileState): boolean {
  return state === 'clean' || state === 'unscanned';
}

/** The scan state as a tag; an infected file's with the threat found. */
export function StateTag({ file }: { file: Pick<FileView, 'state' | 'threat'> }) {
  switch (file.state) {
    case 'pending':
      return (
        <Tag color="processing" icon={<SyncOutlined spin />} title="The file is being scanned for viruses">
          being scanned
        </Tag>
      );
    case 'clean':
      return <Tag color="success">clean</Tag>;
    case 'unscanned':
      return (
        <Tag color="warning" title="No virus scanner checked this file">
          unscanned
        </Tag>
      );
    case 'infected':
      return (
        <Tag color="error" title="The virus scanner found a threat: the file is quarantined">
          infected{file.threat ? `: ${file.threat}` : ''} · quarantined
        </Tag>
      );
    default:
      return <Tag>{String(file.state)}</Tag>;
  }
}
