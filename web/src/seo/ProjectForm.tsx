import { MinusCircleOutlined, PlusOutlined, UploadOutlined } from '@ant-design/icons';
import { Alert, Button, Col, Form, Input, Row, Select, Space } from 'antd';
import { useRef, useState } from 'react';
import { fieldProblems, seoMessage } from './errors';
import { formatDuration, parseDuration } from './duration';
import { TONES, type Link, type Project, type ProjectChanges, type ProjectInput, type Tone } from './types';

export interface ProjectFormValues {
  topic: string;
  primary_keyword: string;
  secondary_keywords: string[];
  language: string;
  tone: Tone;
  audience: string;
  channel_name: string;
  links: Link[];
  call_to_action: string;
  duration: string;
  category_id: string;
  transcript: string;
}

export const EMPTY_PROJECT: ProjectFormValues = {
  topic: '',
  primary_keyword: '',
  secondary_keywords: [],
  language: 'en',
  tone: 'neutral',
  audience: '',
  channel_name: '',
  links: [],
  call_to_action: '',
  duration: '',
  category_id: '',
  transcript: '',
};

export function valuesOf(project: Project, transcript = ''): ProjectFormValues {
  return {
    topic: project.topic,
    primary_keyword: project.primary_keyword,
    secondary_keywords: project.secondary_keywords,
    language: project.language,
    tone: project.tone,
    audience: project.audience ?? '',
    channel_name: project.channel_name ?? '',
    links: project.links,
    call_to_action: project.call_to_action ?? '',
    duration: formatDuration(project.duration_secs),
    category_id: project.category_id ?? '',
    transcript,
  };
}

const optional = (s: string) => (s.trim() ? s.trim() : null);

export function toInput(v: ProjectFormValues): ProjectInput {
  return {
    topic: v.topic.trim(),
    primary_keyword: v.primary_keyword.trim(),
    secondary_keywords: v.secondary_keywords,
    language: v.language.trim() || 'en',
    tone: v.tone,
    audience: optional(v.audience),
    channel_name: optional(v.channel_name),
    links: (v.links ?? []).filter((l) => l && (l.label || l.url)),
    call_to_action: optional(v.call_to_action),
    duration_secs: parseDuration(v.duration),
    category_id: optional(v.category_id),
    transcript: optional(v.transcript),
  };
}

/** Every field as a change (empty text and 0 clear); the transcript only when `transcriptChanged`. */
export function toChanges(v: ProjectFormValues, transcriptChanged: boolean): ProjectChanges {
  const input = toInput(v);
  const changes: ProjectChanges = {
    ...input,
    audience: input.audience ?? '',
    channel_name: input.channel_name ?? '',
    call_to_action: input.call_to_action ?? '',
    category_id: input.category_id ?? '',
    duration_secs: input.duration_secs ?? 0,
    transcript: transcriptChanged ? v.transcript : undefined,
  };
  if (!transcriptChanged) delete changes.transcript;
  return changes;
}

/** A file's text, read in the browser (nothing is uploaded). */
function readText(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result ?? ''));
    reader.onerror = () => reject(reader.error ?? new Error('The file could not be read.'));
    reader.readAsText(file);
  });
}

/** The server's field names as the form's. */
const FORM_FIELD: Record<string, keyof ProjectFormValues> = { duration_secs: 'duration' };

const toneLabel = (t: string) => t.charAt(0).toUpperCase() + t.slice(1);

export interface ProjectFormProps {
  initial: ProjectFormValues;
  submitLabel: string;
  onSubmit(values: ProjectFormValues): Promise<void>;
  /** The hint under the transcript box. */
  transcriptHelp?: string;
}

/** A project's details: the form behind "New project" and the editor's "Video details". */
export function ProjectForm({ initial, submitLabel, onSubmit, transcriptHelp }: ProjectFormProps) {
  const [form] = Form.useForm<ProjectFormValues>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const fileInput = useRef<HTMLInputElement>(null);

  async function submit(values: ProjectFormValues) {
    setBusy(true);
    setError(null);
    try {
      await onSubmit({ ...initial, ...values });
    } catch (e) {
      const problems = fieldProblems(e);
      const known = Object.keys(form.getFieldsValue(true));
      const placed: string[] = [];
      form.setFields(
        Object.entries(problems)
          .map(([field, errors]) => ({ name: FORM_FIELD[field] ?? field, errors }))
          .filter((f) => known.includes(f.name) && placed.push(f.name)),
      );
      const unplaced = Object.keys(problems).filter((f) => !placed.includes(FORM_FIELD[f] ?? f));
      if (!Object.keys(problems).length || unplaced.length) setError(seoMessage(e));
      else setError('Some fields need fixing: see the messages under them.');
    } finally {
      setBusy(false);
    }
  }

  async function loadFile(file: File) {
    const text = await readText(file);
    form.setFieldValue('transcript', text);
    form.setFields([{ name: 'transcript', errors: [] }]);
  }

  return (
    <Form<ProjectFormValues>
      form={form}
      layout="vertical"
      initialValues={initial}
      onFinish={(v) => void submit(v)}
      aria-label={submitLabel}
    >
      <Row gutter={16}>
        <Col xs={24} md={12}>
          <Form.Item label="Topic" name="topic" rules={[{ required: true, whitespace: true, message: 'Say what the video is about.' }]}>
            <Input placeholder="What the video is about" />
          </Form.Item>
        </Col>
        <Col xs={24} md={12}>
          <Form.Item
            label="Primary keyword"
            name="primary_keyword"
            rules={[{ required: true, whitespace: true, message: 'Give the search phrase the video should rank for.' }]}
          >
            <Input placeholder="e.g. sourdough bread" />
          </Form.Item>
        </Col>
        <Col xs={24} md={12}>
          <Form.Item label="Secondary keywords" name="secondary_keywords" extra="Press Enter after each keyword.">
            <Select mode="tags" aria-label="Secondary keywords" open={false} tokenSeparators={[',']} placeholder="More keywords" />
          </Form.Item>
        </Col>
        <Col xs={12} md={6}>
          <Form.Item label="Language" name="language">
            <Input placeholder="en" />
          </Form.Item>
        </Col>
        <Col xs={12} md={6}>
          <Form.Item label="Tone" name="tone">
            <Select aria-label="Tone" options={TONES.map((t) => ({ value: t, label: toneLabel(t) }))} />
          </Form.Item>
        </Col>
        <Col xs={24} md={12}>
          <Form.Item label="Audience" name="audience">
            <Input placeholder="Who watches, e.g. home bakers" />
          </Form.Item>
        </Col>
        <Col xs={24} md={12}>
          <Form.Item label="Channel name" name="channel_name">
            <Input />
          </Form.Item>
        </Col>
        <Col xs={24} md={12}>
          <Form.Item label="Call to action" name="call_to_action">
            <Input placeholder="e.g. Subscribe for more baking." />
          </Form.Item>
        </Col>
        <Col xs={12} md={6}>
          <Form.Item
            label="Duration"
            name="duration"
            extra="m:ss or h:mm:ss"
            rules={[
              {
                validator: async (_, value: string) => {
                  const s = parseDuration(value ?? '');
                  if (s !== null && Number.isNaN(s)) throw new Error('Write the length as m:ss or h:mm:ss.');
                },
              },
            ]}
          >
            <Input placeholder="12:34" />
          </Form.Item>
        </Col>
        <Col xs={12} md={6}>
          <Form.Item label="Category id" name="category_id">
            <Input placeholder="e.g. 27" />
          </Form.Item>
        </Col>
      </Row>
      <Form.List name="links">
          {(fields, { add, remove }, { errors }) => (
            <fieldset className="seo-links">
              <legend>Links</legend>
              {fields.map((field, i) => (
                <Space key={field.key} align="baseline" wrap>
                  <Form.Item name={[field.name, 'label']} rules={[{ required: true, message: 'A label, please.' }]}>
                    <Input aria-label={`Link ${i + 1} label`} placeholder="Label" />
                  </Form.Item>
                  <Form.Item
                    name={[field.name, 'url']}
                    rules={[{ required: true, type: 'url', message: 'An http or https address, please.' }]}
                  >
                    <Input aria-label={`Link ${i + 1} URL`} placeholder="https://…" style={{ minWidth: 280 }} />
                  </Form.Item>
                  <Button type="text" icon={<MinusCircleOutlined />} aria-label={`Remove link ${i + 1}`} onClick={() => remove(field.name)} />
                </Space>
              ))}
              <Button icon={<PlusOutlined />} onClick={() => add({ label: '', url: '' })}>
                Add link
              </Button>
              <Form.ErrorList errors={errors} />
            </fieldset>
          )}
      </Form.List>
      <Form.Item label="Transcript" name="transcript" extra={transcriptHelp ?? 'Plain text, SRT or WebVTT.'}>
        <Input.TextArea autoSize={{ minRows: 4, maxRows: 14 }} placeholder="Paste the transcript, or load a file" />
      </Form.Item>
      <div style={{ marginTop: -8, marginBottom: 16 }}>
        <input
          ref={fileInput}
          type="file"
          accept=".srt,.vtt,.txt,text/plain,text/vtt"
          aria-label="Transcript file"
          style={{ display: 'none' }}
          onChange={(e) => {
            const file = e.target.files?.[0];
            if (file) loadFile(file).catch((err: unknown) => setError(seoMessage(err)));
            e.target.value = '';
          }}
        />
        <Button icon={<UploadOutlined />} onClick={() => fileInput.current?.click()}>
          Load file
        </Button>
      </div>
      {error && <Alert type="error" showIcon role="alert" title={error} style={{ marginBottom: 12 }} />}
      <div>
        <Button type="primary" htmlType="submit" loading={busy}>
          {submitLabel}
        </Button>
      </div>
    </Form>
  );
}
