// chart.js needs a canvas, which jsdom lacks: in tests the charts render their data as text.
// Use: vi.mock('react-chartjs-2', () => import('./chartMock'));
interface Props {
  data: { labels?: string[]; datasets: { label: string; data: unknown[] }[] };
  'aria-label'?: string;
}

function point(v: unknown): string {
  return typeof v === 'object' && v !== null ? `(${(v as { x: number }).x},${(v as { y: number }).y})` : String(v);
}

const fake = (kind: string) =>
  function FakeChart(props: Props) {
    return (
      <figure data-chart={kind} aria-label={props['aria-label']}>
        {props.data.datasets.map((d) => (
          <p key={d.label}>
            {kind} {d.label}: {d.data.map((v, i) => (props.data.labels ? `${props.data.labels[i]}=${point(v)}` : point(v))).join(', ')}
          </p>
        ))}
      </figure>
    );
  };

export const Bar = fake('bar');
export const Line = fake('line');
export const Scatter = fake('scatter');
