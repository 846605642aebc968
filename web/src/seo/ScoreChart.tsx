import { CategoryScale, Chart as ChartJS, Filler, Legend, LinearScale, LineElement, PointElement, Tooltip, type ChartOptions } from 'chart.js';
import { Line } from 'react-chartjs-2';
import { useTheme } from '../theme/ThemeContext';
import type { ScorePoint } from './types';

ChartJS.register(CategoryScale, LinearScale, LineElement, PointElement, Tooltip, Legend, Filler);

export interface ScoreSeries {
  labels: string[];
  scores: number[];
  average: number[];
}

/** Every version saved, oldest first: its score and the average of the scores so far. */
export function scoreSeries(points: ScorePoint[]): ScoreSeries {
  const sorted = [...points].sort((a, b) => a.created_at - b.created_at);
  let sum = 0;
  return {
    labels: sorted.map((p) =>
      new Date(p.created_at).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }),
    ),
    scores: sorted.map((p) => p.score),
    average: sorted.map((p, i) => {
      sum += p.score;
      return Math.round((sum / (i + 1)) * 10) / 10;
    }),
  };
}

export function ScoreChart({ points }: { points: ScorePoint[] }) {
  const { dark } = useTheme();
  const text = dark ? 'rgba(255,255,255,0.75)' : 'rgba(0,0,0,0.65)';
  const grid = dark ? 'rgba(255,255,255,0.12)' : 'rgba(0,0,0,0.08)';
  const series = scoreSeries(points);
  const options: ChartOptions<'line'> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: 'index', intersect: false },
    plugins: { legend: { labels: { color: text } } },
    scales: {
      x: { ticks: { color: text }, grid: { color: grid } },
      y: { min: 0, max: 100, ticks: { color: text }, grid: { color: grid } },
    },
  };
  return (
    <div className="seo-chart">
      <Line
        role="img"
        aria-label={`Scores of the ${series.labels.length} versions saved in this period`}
        options={options}
        data={{
          labels: series.labels,
          datasets: [
            { label: 'Version score', data: series.scores, borderColor: '#1677ff', backgroundColor: '#1677ff', tension: 0.2 },
            {
              label: 'Average so far',
              data: series.average,
              borderColor: '#52c41a',
              backgroundColor: 'rgba(82,196,26,0.12)',
              fill: true,
              borderDash: [6, 4],
              tension: 0.2,
            },
          ],
        }}
      />
    </div>
  );
}
