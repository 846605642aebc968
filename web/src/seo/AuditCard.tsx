import { Alert, Button, Card, Col, Descriptions, Form, Input, Row, Space, Typography } from 'antd';
import { useState } from 'react';
import { formatDuration } from './duration';
import { videoMessage } from './errors';
import { count } from './ResearchResults';
import { ScorePanel } from './ScorePanel';
import type { VideoAudit } from './types';
import { useSeoApi } from './useSeoApi';
import { Violations } from './Violations';

/** Any video's title, description and tags judged by the studio's rules. */
export function AuditCard() {
  const seo = useSeoApi();
  const [video, setVideo] = useState('');
  const [keyword, setKeyword] = useState('');
  const [audit, setAudit] = useState<VideoAudit | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      setAudit(await seo.audit({ video: video.trim(), primary_keyword: keyword.trim() || null }));
    } catch (e) {
      setAudit(null);
      setError(videoMessage(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card size="small" title="Audit a video">
      <Form layout="inline" onFinish={() => void run()} style={{ rowGap: 8 }}>
        <Form.Item label="Video URL or id" style={{ minWidth: 320 }}>
          <Input aria-label="Video to audit" value={video} onChange={(e) => setVideo(e.target.value)} placeholder="https://www.youtube.com/watch?v=…" />
        </Form.Item>
        <Form.Item label="Keyword (optional)">
          <Input aria-label="Keyword to audit against" value={keyword} onChange={(e) => setKeyword(e.target.value)} />
        </Form.Item>
        <Button type="primary" htmlType="submit" loading={busy} disabled={!video.trim()}>
          Audit
        </Button>
      </Form>
      {error && <Alert type="error" showIcon role="alert" title={error} style={{ marginTop: 12 }} />}
      {audit && (
        <Row gutter={[16, 16]} style={{ marginTop: 12 }}>
          <Col xs={24} md={10}>
            <ScorePanel score={audit.report.score} pending={false} />
          </Col>
          <Col xs={24} md={14}>
            <Space direction="vertical" style={{ width: '100%' }}>
              <Typography.Title level={4} style={{ margin: 0, fontSize: 16 }}>
                <a href={`https://www.youtube.com/watch?v=${encodeURIComponent(audit.video.id)}`} target="_blank" rel="noreferrer noopener">
                  {audit.video.title}
                </a>
              </Typography.Title>
              <Descriptions size="small" column={2}>
                <Descriptions.Item label="Channel">{audit.video.channel_title}</Descriptions.Item>
                <Descriptions.Item label="Views">{count(audit.video.views)}</Descriptions.Item>
                <Descriptions.Item label="Likes">{count(audit.video.likes)}</Descriptions.Item>
                <Descriptions.Item label="Duration">{formatDuration(audit.video.duration_secs) || '—'}</Descriptions.Item>
                <Descriptions.Item label="Tags" span={2}>
                  {audit.metadata.tags.length ? audit.metadata.tags.join(', ') : 'none'}
                </Descriptions.Item>
              </Descriptions>
              {audit.report.violations.length ? (
                <>
                  <Typography.Text strong>Broken rules</Typography.Text>
                  <Violations items={audit.report.violations} />
                </>
              ) : (
                <Typography.Text type="success">No rule is broken.</Typography.Text>
              )}
            </Space>
          </Col>
        </Row>
      )}
    </Card>
  );
}
