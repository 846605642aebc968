import { Tag } from 'antd';

export function scoreColor(score: number): string {
  if (score >= 80) return 'green';
  if (score >= 50) return 'gold';
  return 'red';
}

/** A score out of 100 as a coloured tag; a dash when there is none. */
export function ScoreTag({ score }: { score: number | null | undefined }) {
  if (score === null || score === undefined) return <span aria-label="No score yet">—</span>;
  return (
    <Tag color={scoreColor(score)} aria-label={`Score ${score} of 100`}>
      {score}
    </Tag>
  );
}

export function when(ms: number): string {
  return new Date(ms).toLocaleString();
}
