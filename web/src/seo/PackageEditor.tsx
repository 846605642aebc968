import { SaveOutlined } from '@ant-design/icons';
import { Alert, Button, Col, Form, Input, Radio, Row, Select, Space, Tag, Typography } from 'antd';
import { useMemo, useState, type ReactNode } from 'react';
import {
  MAX_DESCRIPTION_BYTES,
  MAX_HASHTAGS,
  MAX_TAGS_LENGTH,
  MAX_TITLE_CHARS,
  descriptionBytes,
  hashtagsIn,
  tagsLength,
  titleLength,
} from './counters';
import { seoMessage } from './errors';
import { ScorePanel } from './ScorePanel';
import type { Field, Package, Project, TitleStrategy, Violation } from './types';
import { useLiveScore } from './useLiveScore';
import { Counter, Violations } from './Violations';

const STRATEGY_WORDS: Record<TitleStrategy, string> = {
  keyword_first: 'Keyword first',
  question: 'Question',
  listicle: 'List',
  benefit: 'Benefit',
  curiosity: 'Curiosity',
};

export interface PackageEditorProps {
  /** The package being edited (the newest version's). */
  initial: Package;
  project: Pick<Project, 'primary_keyword' | 'secondary_keywords' | 'duration_secs'>;
  /** Stores the edit as a new version; throws the server's refusal. */
  onSave(pkg: Package): Promise<void>;
}

function FieldHead({ label, htmlFor, children }: { label: string; htmlFor?: string; children?: ReactNode }) {
  return (
    <div className="seo-field-head">
      {htmlFor ? <label htmlFor={htmlFor}>{label}</label> : <span aria-hidden>{label}</span>}
      {children}
    </div>
  );
}

function byField(violations: Violation[], ...fields: Field[]): Violation[] {
  return violations.filter((v) => fields.includes(v.field));
}

/** The package's fields, checked live against YouTube's rules while they are edited. */
export function PackageEditor({ initial, project, onSave }: PackageEditorProps) {
  const [title, setTitle] = useState(initial.title);
  const [description, setDescription] = useState(initial.description);
  const [tags, setTags] = useState<string[]>(initial.tags);
  const [thumbs, setThumbs] = useState<string[]>(initial.thumbnail_texts);
  const [saving, setSaving] = useState(false);
  const [saveError, setSaveError] = useState<string | null>(null);

  const request = useMemo(
    () => ({
      title,
      description,
      tags,
      thumbnail_texts: thumbs,
      primary_keyword: project.primary_keyword,
      secondary_keywords: project.secondary_keywords,
      duration_secs: project.duration_secs ?? null,
    }),
    [title, description, tags, thumbs, project.primary_keyword, project.secondary_keywords, project.duration_secs],
  );
  const live = useLiveScore(request);
  const violations = live.report?.violations ?? [];
  const hashtags = useMemo(() => hashtagsIn(description), [description]);

  const counts = {
    title: titleLength(title),
    description: descriptionBytes(description),
    tags: tagsLength(tags),
  };
  const overLimit =
    counts.title > MAX_TITLE_CHARS || counts.description > MAX_DESCRIPTION_BYTES || counts.tags > MAX_TAGS_LENGTH || !title.trim();
  const errors = violations.filter((v) => v.severity === 'error');
  const changed =
    title !== initial.title ||
    description !== initial.description ||
    JSON.stringify(tags) !== JSON.stringify(initial.tags) ||
    JSON.stringify(thumbs) !== JSON.stringify(initial.thumbnail_texts);
  const blocked = overLimit || errors.length > 0;

  async function save() {
    setSaving(true);
    setSaveError(null);
    try {
      await onSave({ titles: initial.titles, title, description, tags, thumbnail_texts: thumbs });
    } catch (e) {
      setSaveError(seoMessage(e));
    } finally {
      setSaving(false);
    }
  }

  const titleViolations = byField(violations, 'title');
  const descriptionViolations = byField(violations, 'description', 'hashtags', 'chapters');

  return (
    <Row gutter={24}>
      <Col xs={24} lg={16}>
        <Form layout="vertical" aria-label="Package" onSubmitCapture={(e) => e.preventDefault()}>
          {initial.titles.length > 0 && (
            <Form.Item label="Title ideas">
              <Radio.Group
                className="seo-titles"
                aria-label="Title ideas"
                value={initial.titles.some((t) => t.text === title) ? title : undefined}
                onChange={(e) => setTitle(e.target.value as string)}
              >
                {initial.titles.map((t) => (
                  <Radio key={t.text} value={t.text}>
                    <span>{t.text}</span>{' '}
                    <Tag>{STRATEGY_WORDS[t.strategy] ?? t.strategy}</Tag>
                    <Tag color="blue" aria-label={`Score ${t.score}`}>
                      {t.score}
                    </Tag>
                  </Radio>
                ))}
              </Radio.Group>
              <Violations items={byField(violations, 'titles')} />
            </Form.Item>
          )}
          <FieldHead htmlFor="seo-title" label="Title">
            <Counter label="Title length" value={counts.title} max={MAX_TITLE_CHARS} unit="characters" />
          </FieldHead>
          <Form.Item
            validateStatus={titleViolations.some((v) => v.severity === 'error') || counts.title > MAX_TITLE_CHARS ? 'error' : undefined}
            help={<Violations items={titleViolations} id="seo-title-problems" />}
          >
            <Input id="seo-title" value={title} onChange={(e) => setTitle(e.target.value)} aria-describedby="seo-title-problems" />
          </Form.Item>
          <FieldHead htmlFor="seo-description" label="Description">
            <Counter label="Description size" value={counts.description} max={MAX_DESCRIPTION_BYTES} unit="bytes" />
          </FieldHead>
          <Form.Item
            validateStatus={
              descriptionViolations.some((v) => v.severity === 'error') || counts.description > MAX_DESCRIPTION_BYTES ? 'error' : undefined
            }
            help={<Violations items={descriptionViolations} id="seo-description-problems" />}
          >
            <Input.TextArea
              id="seo-description"
              value={description}
              autoSize={{ minRows: 8, maxRows: 24 }}
              onChange={(e) => setDescription(e.target.value)}
              aria-describedby="seo-description-problems"
            />
          </Form.Item>
          <div aria-label="Hashtags found" role="group" style={{ marginTop: -8, marginBottom: 16 }}>
            <Typography.Text type="secondary">
              Hashtags found ({hashtags.length}
              {hashtags.length > MAX_HASHTAGS ? `, over ${MAX_HASHTAGS}: YouTube ignores them all` : ''}):{' '}
            </Typography.Text>
            {hashtags.length ? hashtags.map((h) => <Tag key={h}>{h}</Tag>) : <Typography.Text type="secondary">none</Typography.Text>}
          </div>
          <FieldHead label="Tags">
            <Counter label="Tag budget" value={counts.tags} max={MAX_TAGS_LENGTH} unit="characters" />
          </FieldHead>
          <Form.Item
            validateStatus={byField(violations, 'tags').some((v) => v.severity === 'error') || counts.tags > MAX_TAGS_LENGTH ? 'error' : undefined}
            help={<Violations items={byField(violations, 'tags')} />}
          >
            <Select mode="tags" aria-label="Tags" value={tags} onChange={setTags} open={false} tokenSeparators={[',']} />
          </Form.Item>
          <FieldHead label="Thumbnail texts" />
          <Form.Item help={<Violations items={byField(violations, 'thumbnail_texts')} />}>
            <Select mode="tags" aria-label="Thumbnail texts" value={thumbs} onChange={setThumbs} open={false} />
          </Form.Item>
          {live.error && <Alert type="warning" showIcon title={`The live check failed: ${live.error}`} style={{ marginBottom: 12 }} />}
          {saveError && <Alert type="error" showIcon role="alert" title={saveError} style={{ marginBottom: 12 }} />}
          <Space>
            <Button type="primary" icon={<SaveOutlined />} disabled={blocked || !changed} loading={saving} onClick={() => void save()}>
              Save as new version
            </Button>
            <Typography.Text type="secondary" aria-live="polite">
              {blocked
                ? 'Fix the errors in red before saving.'
                : !changed
                  ? 'No changes yet.'
                  : live.pending
                    ? 'Checking…'
                    : 'Ready to save.'}
            </Typography.Text>
          </Space>
        </Form>
      </Col>
      <Col xs={24} lg={8}>
        <ScorePanel score={live.report?.score ?? null} pending={live.pending} />
      </Col>
    </Row>
  );
}
