import { CategoryScale, Chart as ChartJS, Filler, Legend, LinearScale, LineElement, PointElement, Tooltip, type ChartOptions } from 'chart.js';
import { Line } from 'react-chartjs-2';
import { useTheme } from '../theme/ThemeContext';
import type { ScorePoint } from './types';

ChartJS.register(CategoryScale, LinearScale, LineElement, PointElement, Tooltip, Legend, Filler);

export interface DayScores {
  labels: string[];
  average: number[];
  best: number[];
  versions: number[];
}

/** The day (local, YYYY-MM-DD) of a Unix-ms time. */
function dayOf(ms: number): string {
  const d = new Date(ms);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** The scores saved each day: their average, the best, and how many versions. */
export function scoresPerDay(points: ScorePoint[]): DayScores {
  const days = new Map<string, number[]>();
  for (const p of [...points].sort((a, b) => a.created_at - b.created_at)) {
    const day = dayOf(p.created_at);
    days.set(day, [...(days.get(day) ?? []), p.score]);
  }
  const labels = [...days.keys()];
  const lists = labels.map((l) => days.get(l)!);
  return {
    labels,
    average: lists.map((s) => Math.round((s.reduce((a, b) => a + b, 0) / s.length) * 10) / 10),
    best: lists.map((s) => Math.max(...s)),
    versions: lists.map((s) => s.length),
  };
}

export function ScoreChart({ points }: { points: ScorePoint[] }) {
  const { dark } = useTheme();
  const text = dark ? 'rgba(255,255,255,0.75)' : 'rgba(0,0,0,0.65)';
  const grid = dark ? 'rgba(255,255,255,0.12)' : 'rgba(0,0,0,0.08)';
  const days = scoresPerDay(points);
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
        aria-label={`Scores per day over ${days.labels.length} days`}
        options={options}
        data={{
          labels: days.labels,
          datasets: [
            { label: 'Average score', data: days.average, borderColor: '#1677ff', backgroundColor: 'rgba(22,119,255,0.15)', fill: true, tension: 0.2 },
            { label: 'Best score', data: days.best, borderColor: '#52c41a', backgroundColor: '#52c41a', tension: 0.2 },
          ],
        }}
      />
    </div>
  );
}
