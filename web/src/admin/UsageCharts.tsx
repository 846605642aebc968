import {
  BarElement,
  CategoryScale,
  Chart as ChartJS,
  Filler,
  Legend,
  LinearScale,
  LineElement,
  PointElement,
  Tooltip,
  type ChartOptions,
} from 'chart.js';
import { Bar, Line } from 'react-chartjs-2';
import { useTheme } from '../theme/ThemeContext';
import type { ChartData } from './usageData';

ChartJS.register(CategoryScale, LinearScale, BarElement, LineElement, PointElement, Tooltip, Legend, Filler);

function colors(dark: boolean) {
  return {
    text: dark ? 'rgba(255,255,255,0.75)' : 'rgba(0,0,0,0.65)',
    grid: dark ? 'rgba(255,255,255,0.12)' : 'rgba(0,0,0,0.08)',
  };
}

function baseOptions(dark: boolean): ChartOptions<'bar' | 'line'> {
  const c = colors(dark);
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: 'index', intersect: false },
    plugins: { legend: { labels: { color: c.text } } },
    scales: {
      x: { ticks: { color: c.text, maxRotation: 60, autoSkip: true }, grid: { color: c.grid } },
      y: { beginAtZero: true, ticks: { color: c.text, precision: 0 }, grid: { color: c.grid } },
    },
  };
}

interface ChartProps {
  data: ChartData;
  /** What the chart shows, in words, for screen readers. */
  label: string;
}

export function RequestsChart({ data, label }: ChartProps) {
  const { dark } = useTheme();
  return (
    <div className="admin-chart">
      <Bar role="img" aria-label={label} data={data} options={baseOptions(dark) as ChartOptions<'bar'>} />
    </div>
  );
}

export function TokensChart({ data, label }: ChartProps) {
  const { dark } = useTheme();
  return (
    <div className="admin-chart">
      <Line role="img" aria-label={label} data={data} options={baseOptions(dark) as ChartOptions<'line'>} />
    </div>
  );
}

export function BreakdownChart({ data, label }: ChartProps) {
  const { dark } = useTheme();
  const c = colors(dark);
  const options = baseOptions(dark) as ChartOptions<'bar'>;
  options.scales = {
    ...options.scales,
    y: { beginAtZero: true, position: 'left', title: { display: true, text: 'Requests', color: c.text }, ticks: { color: c.text, precision: 0 }, grid: { color: c.grid } },
    y1: { beginAtZero: true, position: 'right', title: { display: true, text: 'Tokens', color: c.text }, ticks: { color: c.text, precision: 0 }, grid: { drawOnChartArea: false } },
  };
  return (
    <div className="admin-chart">
      <Bar role="img" aria-label={label} data={data} options={options} />
    </div>
  );
}
