import { CheckCircleOutlined, CloseCircleOutlined } from '@ant-design/icons';
import { Card, Collapse, Progress, Typography } from 'antd';
import { scoreColor } from './ScoreTag';
import type { Score } from './types';

/** `keyword_alignment` → "Keyword alignment". */
export function words(name: string): string {
  const s = name.replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

const STROKE: Record<string, string> = { green: '#52c41a', gold: '#faad14', red: '#ff4d4f' };

/** The score as a gauge, and what it is made of: points per component, checks, what to do. */
export function ScorePanel({ score, pending }: { score: Score | null; pending: boolean }) {
  return (
    <Card title="Score" size="small" aria-busy={pending}>
      <div style={{ textAlign: 'center' }}>
        <Progress
          type="dashboard"
          percent={score?.total ?? 0}
          strokeColor={score ? STROKE[scoreColor(score.total)] : undefined}
          format={() => (score ? String(score.total) : '…')}
          aria-label={score ? `Score ${score.total} of 100` : 'Score not checked yet'}
        />
      </div>
      {score && (
        <Collapse
          size="small"
          ghost
          items={score.components.map((c) => {
            const passed = c.checks.filter((k) => k.passed).length;
            return {
              key: c.name,
              label: (
                <span>
                  {words(c.name)}: {c.points} / {c.max_points}{' '}
                  <Typography.Text type="secondary">
                    ({passed} passed, {c.checks.length - passed} failed)
                  </Typography.Text>
                </span>
              ),
              children: (
                <div>
                  <ul className="seo-violations">
                    {c.checks.map((k) => (
                      <li key={k.name}>
                        {k.passed ? (
                          <CheckCircleOutlined style={{ color: '#52c41a' }} aria-label="Passed" />
                        ) : (
                          <CloseCircleOutlined style={{ color: '#ff4d4f' }} aria-label="Failed" />
                        )}{' '}
                        {words(k.name)}
                        {k.detail ? <Typography.Text type="secondary"> — {k.detail}</Typography.Text> : null}
                      </li>
                    ))}
                  </ul>
                  {c.recommendations.length > 0 && (
                    <>
                      <Typography.Text strong>What to do</Typography.Text>
                      <ul style={{ paddingLeft: 18, margin: 0 }}>
                        {c.recommendations.map((r) => (
                          <li key={r}>{r}</li>
                        ))}
                      </ul>
                    </>
                  )}
                </div>
              ),
            };
          })}
        />
      )}
    </Card>
  );
}
