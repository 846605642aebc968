import { Alert, Button, Card, Form, Input, Select, Space, Spin, Typography } from 'antd';
import { useEffect, useRef, useState } from 'react';
import { ApiError } from '../api/errors';
import { AuditCard } from './AuditCard';
import { seoMessage } from './errors';
import { ResearchResults } from './ResearchResults';
import type { Project, Research } from './types';
import { useSeoApi } from './useSeoApi';

export const NO_KEY = 'Keyword research needs a YouTube API key (YOUTUBE_API_KEY).';

interface Query {
  keyword: string;
  region: string;
  language: string;
  projectId?: string;
}

export default function ResearchPage() {
  const seo = useSeoApi();
  const [query, setQuery] = useState<Query>({ keyword: '', region: '', language: '' });
  const [projects, setProjects] = useState<Project[]>([]);
  const [research, setResearch] = useState<Research | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const pending = useRef<AbortController | null>(null);

  useEffect(() => {
    seo
      .list({ limit: 100 })
      .then((page) => setProjects(page.items))
      .catch(() => setProjects([]));
  }, [seo]);

  useEffect(() => () => pending.current?.abort(), []);

  const run = async () => {
    pending.current?.abort();
    const controller = new AbortController();
    pending.current = controller;
    setBusy(true);
    setError(null);
    try {
      const r = await seo.research(
        {
          keyword: query.keyword.trim(),
          region: query.region.trim().toUpperCase(),
          language: query.language.trim(),
          projectId: query.projectId,
        },
        controller.signal,
      );
      if (!controller.signal.aborted) setResearch(r);
    } catch (e) {
      if (controller.signal.aborted) return;
      setResearch(null);
      setError(e);
    } finally {
      if (!controller.signal.aborted) setBusy(false);
    }
  };

  const noKey = error instanceof ApiError && error.code === 'youtube_not_configured';
  return (
    <section aria-labelledby="seo-research-title">
      <Space direction="vertical" size={16} style={{ width: '100%' }}>
        <Typography.Title level={2} id="seo-research-title" style={{ margin: 0, fontSize: 20 }}>
          Keyword research
        </Typography.Title>
        <Card size="small">
          <Form layout="inline" onFinish={() => void run()} style={{ rowGap: 8 }} aria-label="Keyword research">
            <Form.Item label="Keyword" required style={{ minWidth: 280 }}>
              <Input aria-label="Keyword" value={query.keyword} onChange={(e) => setQuery({ ...query, keyword: e.target.value })} placeholder="sourdough bread" />
            </Form.Item>
            <Form.Item label="Region" tooltip="Two letters, e.g. US or GB">
              <Input aria-label="Region" value={query.region} maxLength={2} style={{ width: 64 }} onChange={(e) => setQuery({ ...query, region: e.target.value })} />
            </Form.Item>
            <Form.Item label="Language" tooltip="e.g. en, fr, de">
              <Input aria-label="Language" value={query.language} maxLength={8} style={{ width: 80 }} onChange={(e) => setQuery({ ...query, language: e.target.value })} />
            </Form.Item>
            <Form.Item label="Compare with project" tooltip="Its newest package’s tags against the top videos’ tags">
              <Select
                aria-label="Compare with project"
                allowClear
                showSearch
                optionFilterProp="label"
                style={{ width: 240 }}
                placeholder="None"
                value={query.projectId}
                onChange={(v?: string) => setQuery({ ...query, projectId: v })}
                options={projects.map((p) => ({ value: p.id, label: p.topic, disabled: p.latest_version == null }))}
              />
            </Form.Item>
            <Button type="primary" htmlType="submit" loading={busy} disabled={!query.keyword.trim()}>
              Research
            </Button>
          </Form>
        </Card>
        {noKey && <Alert type="warning" showIcon role="alert" title={NO_KEY} />}
        {!!error && !noKey && <Alert type="error" showIcon role="alert" title={seoMessage(error)} />}
        {busy && !research && (
          <div style={{ textAlign: 'center', padding: 24 }} role="status" aria-label="Researching">
            <Spin />
          </div>
        )}
        {research && !error && <ResearchResults research={research} />}
        <AuditCard />
      </Space>
    </section>
  );
}
