import { DownloadOutlined } from '@ant-design/icons';
import { Alert, Button, Progress, Radio, Space, Spin, Typography } from 'antd';
import { useId, useState } from 'react';
import { Link } from 'react-router';
import { ApiError, friendlyMessage } from '../api/errors';
import { useAuth } from '../auth/AuthContext';
import { download } from '../api/download';

/** The server's default limit on an import (`chat.import_limit_bytes`); a server configured lower answers 413, which is shown too. */
export const IMPORT_LIMIT_BYTES = 32 * 1024 * 1024;
/** The `format` field of a Confab export, and the version this server reads. */
const CONFAB_FORMAT = 'confab.conversations';
const CONFAB_VERSION = 1;
/** Imported conversations listed by name after an import, at most. */
const LISTED = 10;

type ExportFormat = 'json' | 'markdown';
/** Mebibytes, as people say megabytes: `64 MB`, `64.3 MB`. */
function mib(bytes: number): string {
  const value = bytes / (1024 * 1024);
  return `${Number.isInteger(value) ? value : value.toFixed(1)} MB`;
}

/** What a file holds, found before it is sent. */
export interface FileSummary {
  kind: 'confab' | 'chatgpt';
  conversations: number;
  /** Messages that will be imported. */
  messages: number;
  /** Entries the import leaves out (ChatGPT's system, tool and empty messages). */
  skipped: number;
  /** Answers still being written when exported: imported as interrupted. */
  unfinished: number;
  titles: string[];
}

/** A file refused before it was sent. */
export class FileProblem extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FileProblem';
  }
}

type Json = unknown;

function isObject(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads a file as the server will (crates/chat/src/transfer.rs `read_import`): a Confab export
 * or ChatGPT's conversations.json. Counts what it holds; throws a FileProblem for what the
 * server would refuse outright (not JSON, another format, another version). The server checks
 * the rest.
 */
export function summarize(text: string): FileSummary {
  if (!text.trim()) throw new FileProblem('The file is empty.');
  let value: Json;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new FileProblem(
      `This file is not JSON, so it cannot be a conversations export${e instanceof Error ? ` (${e.message})` : ''}.`,
    );
  }
  if (isObject(value) && value.format === CONFAB_FORMAT) {
    if (value.version !== CONFAB_VERSION) {
      throw new FileProblem(
        `This Confab export has format version ${String(value.version)}; this server reads version ${CONFAB_VERSION}.`,
      );
    }
    if (!Array.isArray(value.conversations)) {
      throw new FileProblem('This Confab export has no list of conversations.');
    }
    const summary: FileSummary = { kind: 'confab', conversations: 0, messages: 0, skipped: 0, unfinished: 0, titles: [] };
    for (const c of value.conversations) {
      summary.conversations++;
      summary.titles.push(isObject(c) && typeof c.title === 'string' ? c.title : '');
      const messages = isObject(c) && Array.isArray(c.messages) ? c.messages : [];
      summary.messages += messages.length;
      summary.unfinished += messages.filter((m) => isObject(m) && m.status === 'streaming').length;
    }
    return summary;
  }
  if (Array.isArray(value)) {
    const summary: FileSummary = { kind: 'chatgpt', conversations: 0, messages: 0, skipped: 0, unfinished: 0, titles: [] };
    value.forEach((c, i) => {
      if (!isObject(c) || !isObject(c.mapping)) {
        throw new FileProblem(
          `Entry ${i + 1} of the list is not a ChatGPT conversation (it has no “mapping”). Choose the conversations.json of a ChatGPT export, or a Confab export.`,
        );
      }
      summary.conversations++;
      summary.titles.push(typeof c.title === 'string' ? c.title : '');
      for (const node of Object.values(c.mapping)) {
        if (!isObject(node) || !isObject(node.message)) continue;
        const message = node.message;
        const role = isObject(message.author) ? message.author.role : undefined;
        const parts = isObject(message.content) && Array.isArray(message.content.parts) ? message.content.parts : [];
        const text = parts.filter((p): p is string => typeof p === 'string').join('\n');
        if ((role === 'user' || role === 'assistant') && text.trim()) summary.messages++;
        else summary.skipped++;
      }
    });
    return summary;
  }
  if (isObject(value) && typeof value.format === 'string') {
    throw new FileProblem(`This file is in the format “${value.format}”, which Confab does not import.`);
  }
  throw new FileProblem(
    'This JSON file is not a conversations export. Choose a Confab export (conversations.json from “Export”) or ChatGPT’s conversations.json.',
  );
}

/** The text of a file, reporting how much has been read (0–100). */
function readText(file: File, onProgress: (percent: number) => void): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onprogress = (e) => {
      if (e.lengthComputable && e.total > 0) onProgress(Math.round((e.loaded * 100) / e.total));
    };
    reader.onload = () => {
      onProgress(100);
      resolve(typeof reader.result === 'string' ? reader.result : '');
    };
    reader.onerror = () => reject(new FileProblem('The file could not be read. Choose it again.'));
    reader.readAsText(file);
  });
}

interface ImportResponse {
  imported: number;
  conversation_ids: string[];
}

type ImportState =
  | { phase: 'idle' }
  | { phase: 'reading'; name: string; percent: number }
  | { phase: 'sending'; name: string; summary: FileSummary }
  | { phase: 'done'; name: string; summary: FileSummary; result: ImportResponse }
  | { phase: 'failed'; name: string; title: string; details: string[] };

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
}

function serverRefusal(e: unknown): { title: string; details: string[] } {
  if (e instanceof ApiError) {
    switch (e.code) {
      case 'invalid_import': {
        // The message names the first problem; details list up to 20 when there are more.
        const first = /First problem: (.*)$/s.exec(e.message)?.[1];
        return {
          title: 'The server refused the file; nothing was imported.',
          details: e.details.length ? e.details : first ? [first] : [e.message],
        };
      }
      case 'payload_too_large':
        return {
          title: `The file is larger than the server accepts (${mib(IMPORT_LIMIT_BYTES)} at most); nothing was imported.`,
          details: [],
        };
      default:
        return { title: `The import failed: ${friendlyMessage(e)}`, details: e.details };
    }
  }
  return { title: `The import failed: ${friendlyMessage(e)}`, details: [] };
}

function ExportAll() {
  const { client } = useAuth();
  const [format, setFormat] = useState<ExportFormat>('json');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  return (
    <div>
      <Typography.Title level={5} id="export-title">
        Export
      </Typography.Title>
      <Typography.Paragraph type="secondary">
        Every conversation, archived ones too. JSON keeps every branch and imports back; Markdown is for reading.
      </Typography.Paragraph>
      <Space wrap>
        <Radio.Group
          aria-label="Export format"
          value={format}
          onChange={(e) => setFormat(e.target.value as ExportFormat)}
          optionType="button"
          options={[
            { value: 'json', label: 'JSON' },
            { value: 'markdown', label: 'Markdown' },
          ]}
        />
        <Button
          icon={<DownloadOutlined />}
          loading={busy}
          onClick={async () => {
            setBusy(true);
            setError(null);
            setSaved(null);
            try {
              const name = await download(
                client,
                `/api/v1/conversations/export?format=${format}`,
                format === 'json' ? 'conversations.json' : 'conversations.md',
              );
              setSaved(name);
            } catch (e) {
              setError(`The export failed: ${friendlyMessage(e)}`);
            } finally {
              setBusy(false);
            }
          }}
        >
          Export all conversations
        </Button>
      </Space>
      {saved && (
        <Typography.Paragraph type="success" role="status" style={{ marginTop: 8, marginBottom: 0 }}>
          Downloaded {saved}.
        </Typography.Paragraph>
      )}
      {error && <Alert type="error" showIcon role="alert" title={error} style={{ marginTop: 12 }} />}
    </div>
  );
}

function ImportFile() {
  const { client } = useAuth();
  const inputId = useId();
  const [state, setState] = useState<ImportState>({ phase: 'idle' });
  const busy = state.phase === 'reading' || state.phase === 'sending';

  const run = async (file: File) => {
    const name = file.name;
    if (file.size > IMPORT_LIMIT_BYTES) {
      setState({
        phase: 'failed',
        name,
        title: `${name} is ${mib(file.size)}; the server accepts files up to ${mib(IMPORT_LIMIT_BYTES)}.`,
        details: [],
      });
      return;
    }
    setState({ phase: 'reading', name, percent: 0 });
    let text: string;
    let summary: FileSummary;
    try {
      text = await readText(file, (percent) =>
        setState((s) => (s.phase === 'reading' && s.name === name ? { ...s, percent } : s)),
      );
      summary = summarize(text);
    } catch (e) {
      setState({ phase: 'failed', name, title: e instanceof Error ? e.message : String(e), details: [] });
      return;
    }
    setState({ phase: 'sending', name, summary });
    try {
      const response = await client.fetch('/api/v1/conversations/import', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: text,
      });
      const result = (await response.json()) as ImportResponse;
      setState({ phase: 'done', name, summary, result });
    } catch (e) {
      setState({ phase: 'failed', name, ...serverRefusal(e) });
    }
  };

  return (
    <div>
      <Typography.Title level={5} id="import-title">
        Import
      </Typography.Title>
      <Typography.Paragraph type="secondary">
        A Confab JSON export or ChatGPT’s <code>conversations.json</code> (from its data export), up to{' '}
        {mib(IMPORT_LIMIT_BYTES)}. Imported conversations are added next to yours; a file with a problem changes
        nothing.
      </Typography.Paragraph>
      <Space wrap align="center">
        <label htmlFor={inputId}>File to import</label>
        <input
          id={inputId}
          type="file"
          accept=".json,application/json"
          disabled={busy}
          onChange={(e) => {
            const file = e.target.files?.[0];
            // Choosing the same file again starts again.
            e.target.value = '';
            if (file) void run(file);
          }}
        />
      </Space>
      {state.phase === 'reading' && (
        <div style={{ marginTop: 12 }}>
          <Typography.Text>Reading {state.name}…</Typography.Text>
          <Progress percent={state.percent} status="active" aria-label={`Reading ${state.name}`} />
        </div>
      )}
      {state.phase === 'sending' && (
        <div style={{ marginTop: 12 }} role="status">
          <Progress percent={100} showInfo={false} status="active" aria-label={`Read ${state.name}`} />
          <Space>
            <Spin size="small" />
            <Typography.Text>
              Importing {plural(state.summary.conversations, 'conversation')} on the server…
            </Typography.Text>
          </Space>
        </div>
      )}
      {state.phase === 'done' && <ImportDone name={state.name} summary={state.summary} result={state.result} />}
      {state.phase === 'failed' && (
        <Alert
          type="error"
          showIcon
          role="alert"
          style={{ marginTop: 12 }}
          title={state.title}
          description={
            state.details.length ? (
              <ul style={{ margin: 0, paddingLeft: 20 }}>
                {state.details.map((d, i) => (
                  <li key={i}>{d}</li>
                ))}
              </ul>
            ) : undefined
          }
        />
      )}
    </div>
  );
}

function ImportDone({ name, summary, result }: { name: string; summary: FileSummary; result: ImportResponse }) {
  const source = summary.kind === 'chatgpt' ? 'ChatGPT export' : 'Confab export';
  // The server keeps the file's order, so names pair with ids when the counts agree.
  const named = summary.titles.length === result.conversation_ids.length;
  const notes: string[] = [];
  if (summary.skipped > 0) {
    notes.push(
      `Left out ${plural(summary.skipped, 'entry', 'entries')} that are not a user’s or assistant’s text (system prompts, tool calls, empty messages).`,
    );
  }
  if (summary.unfinished > 0) {
    notes.push(`${plural(summary.unfinished, 'answer')} still being written when exported ${summary.unfinished === 1 ? 'is' : 'are'} marked interrupted.`);
  }
  return (
    <Alert
      type="success"
      showIcon
      role="status"
      style={{ marginTop: 12 }}
      title={
        result.imported === 0
          ? `${name} holds no conversations; nothing was imported.`
          : `Imported ${plural(result.imported, 'conversation')} with ${plural(summary.messages, 'message')} from ${name} (${source}).`
      }
      description={
        (notes.length > 0 || result.imported > 0) && (
          <>
            {notes.map((n) => (
              <Typography.Paragraph key={n} style={{ marginBottom: 4 }}>
                {n}
              </Typography.Paragraph>
            ))}
            {result.imported > 0 && (
              <ul aria-label="Imported conversations" style={{ margin: 0, paddingLeft: 20 }}>
                {result.conversation_ids.slice(0, LISTED).map((id, i) => (
                  <li key={id}>
                    <Link to={`/c/${id}`}>{(named && summary.titles[i]) || 'Untitled conversation'}</Link>
                  </li>
                ))}
                {result.conversation_ids.length > LISTED && (
                  <li>and {(result.conversation_ids.length - LISTED).toLocaleString('en-US')} more in your conversation list</li>
                )}
              </ul>
            )}
          </>
        )
      }
    />
  );
}

/** Settings → Data: export every conversation, import an export (Confab's or ChatGPT's). */
export function DataTransfer() {
  return (
    <section aria-labelledby="data-title">
      <Typography.Title level={4} id="data-title">
        Data
      </Typography.Title>
      <Space orientation="vertical" size="large" style={{ width: '100%' }}>
        <ExportAll />
        <ImportFile />
      </Space>
    </section>
  );
}
