import {
  BarElement,
  CategoryScale,
  Chart as ChartJS,
  Legend,
  LinearScale,
  LogarithmicScale,
  PointElement,
  Tooltip,
  type ChartOptions,
} from 'chart.js';
import { Bar, Scatter } from 'react-chartjs-2';
import { useTheme } from '../theme/ThemeContext';
import type { Competitor, TagCount } from './types';

ChartJS.register(CategoryScale, LinearScale, LogarithmicScale, PointElement, BarElement, Tooltip, Legend);

function colors(dark: boolean) {
  return {
    text: dark ? 'rgba(255,255,255,0.75)' : 'rgba(0,0,0,0.65)',
    grid: dark ? 'rgba(255,255,255,0.12)' : 'rgba(0,0,0,0.08)',
  };
}

/** The competitors with public views, as (title length, views) points. */
export function viewPoints(competitors: Competitor[]) {
  return competitors
    .filter((c) => typeof c.views === 'number' && c.views > 0)
    .map((c) => ({ x: [...c.title].length, y: c.views as number, title: c.title }));
}

export function ViewsByTitleLength({ competitors }: { competitors: Competitor[] }) {
  const { dark } = useTheme();
  const c = colors(dark);
  const points = viewPoints(competitors);
  const options: ChartOptions<'scatter'> = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: {
      legend: { display: false },
      tooltip: {
        callbacks: {
          label: (item) => {
            const p = points[item.dataIndex];
            return p ? `${p.title}: ${p.y.toLocaleString('en-US')} views, ${p.x} characters` : '';
          },
        },
      },
    },
    scales: {
      x: { title: { display: true, text: 'Title length (characters)', color: c.text }, ticks: { color: c.text }, grid: { color: c.grid } },
      y: { type: 'logarithmic', title: { display: true, text: 'Views (log scale)', color: c.text }, ticks: { color: c.text }, grid: { color: c.grid } },
    },
  };
  return (
    <div className="seo-chart">
      <Scatter
        role="img"
        aria-label={`Views against title length of ${points.length} top videos`}
        options={options}
        data={{ datasets: [{ label: 'Videos', data: points, backgroundColor: '#1677ff' }] }}
      />
    </div>
  );
}

export function CommonTagsChart({ tags, shared }: { tags: TagCount[]; shared: Set<string> }) {
  const { dark } = useTheme();
  const c = colors(dark);
  const top = tags.slice(0, 15);
  const options: ChartOptions<'bar'> = {
    indexAxis: 'y',
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    plugins: { legend: { display: false } },
    scales: {
      x: { beginAtZero: true, title: { display: true, text: 'Top videos using the tag', color: c.text }, ticks: { color: c.text, precision: 0 }, grid: { color: c.grid } },
      y: { ticks: { color: c.text }, grid: { color: c.grid } },
    },
  };
  return (
    <div className="seo-chart">
      <Bar
        role="img"
        aria-label={`The ${top.length} tags top videos use most; ${top.filter((t) => shared.has(t.tag)).length} are in your package`}
        options={options}
        data={{
          labels: top.map((t) => t.tag),
          datasets: [
            {
              label: 'Videos',
              data: top.map((t) => t.videos),
              backgroundColor: top.map((t) => (shared.has(t.tag) ? '#52c41a' : 'rgba(128,128,128,0.45)')),
            },
          ],
        }}
      />
    </div>
  );
}
