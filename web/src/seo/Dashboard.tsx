import { Alert, Card, Col, Empty, Row, Segmented, Statistic, Typography } from 'antd';
import { useEffect, useState } from 'react';
import { Link } from 'react-router';
import { seoMessage } from './errors';
import { QuotaCard } from './QuotaCard';
import { ScoreChart } from './ScoreChart';
import type { Project, ScorePoint } from './types';
import { useSeoApi } from './useSeoApi';

/** Reads every active project, a page at a time (a few pages at most). */
async function allProjects(list: ReturnType<typeof useSeoApi>['list']): Promise<Project[]> {
  const out: Project[] = [];
  let cursor: string | null | undefined = null;
  for (let i = 0; i < 20; i++) {
    const page = await list({ cursor, limit: 100 });
    out.push(...page.items);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

export default function Dashboard() {
  const seo = useSeoApi();
  const [days, setDays] = useState(30);
  const [points, setPoints] = useState<ScorePoint[] | null>(null);
  const [projects, setProjects] = useState<Project[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let gone = false;
    seo
      .scores(days)
      .then((h) => !gone && setPoints(h.points))
      .catch((e: unknown) => !gone && setError(seoMessage(e)));
    return () => {
      gone = true;
    };
  }, [seo, days]);

  useEffect(() => {
    allProjects(seo.list)
      .then(setProjects)
      .catch((e: unknown) => setError(seoMessage(e)));
  }, [seo]);

  const scored = (projects ?? []).filter((p) => typeof p.latest_score === 'number');
  const average = scored.length ? Math.round(scored.reduce((n, p) => n + (p.latest_score ?? 0), 0) / scored.length) : null;

  return (
    <section aria-labelledby="seo-dashboard-title">
      <div className="seo-toolbar">
        <Typography.Title level={2} id="seo-dashboard-title" style={{ margin: 0, fontSize: 20 }}>
          Dashboard
        </Typography.Title>
        <Segmented
          aria-label="Period"
          value={days}
          options={[
            { value: 7, label: '7 days' },
            { value: 30, label: '30 days' },
            { value: 90, label: '90 days' },
          ]}
          onChange={(v) => setDays(Number(v))}
        />
      </div>
      {error && <Alert type="error" showIcon role="alert" title={error} style={{ marginBottom: 12 }} />}
      <Row gutter={[16, 16]}>
        <Col xs={12} md={6}>
          <Card size="small">
            <Statistic title="Projects" value={projects ? projects.length : '…'} />
          </Card>
        </Col>
        <Col xs={12} md={6}>
          <Card size="small">
            <Statistic title="Average latest score" value={average ?? '—'} suffix={average !== null ? '/ 100' : undefined} />
          </Card>
        </Col>
        <Col xs={12} md={6}>
          <Card size="small">
            <Statistic title={`Versions in ${days} days`} value={points ? points.length : '…'} />
          </Card>
        </Col>
        <Col xs={24}>
          <Card title="Scores over time" size="small">
            {points && points.length === 0 ? (
              <Empty description="No versions saved in this period yet." />
            ) : (
              points && <ScoreChart points={points} />
            )}
          </Card>
        </Col>
      </Row>
      <Typography.Title level={3} style={{ fontSize: 16, marginTop: 24 }}>
        YouTube data
      </Typography.Title>
      <Row gutter={[16, 16]}>
        <Col xs={24}>
          <QuotaCard />
        </Col>
        <Col xs={24} md={12}>
          <Card title="Keyword research" size="small">
            <Typography.Paragraph style={{ margin: 0 }}>
              See who ranks for a keyword, how hard it is, and which tags they use.{' '}
              <Link to="/seo/research">Research a keyword</Link>
            </Typography.Paragraph>
          </Card>
        </Col>
      </Row>
    </section>
  );
}
