import { CloseCircleOutlined, WarningOutlined } from '@ant-design/icons';
import type { Violation } from './types';

/** The broken rules of one field: errors in red, warnings in orange. */
export function Violations({ items, id }: { items: Violation[]; id?: string }) {
  if (!items.length) return null;
  return (
    <ul className="seo-violations" id={id} aria-live="polite">
      {items.map((v) => (
        <li key={`${v.field}-${v.code}-${v.message}`} className={`seo-violation-${v.severity}`} data-severity={v.severity}>
          {v.severity === 'error' ? <CloseCircleOutlined aria-hidden /> : <WarningOutlined aria-hidden />}{' '}
          <span className="sr-only">{v.severity === 'error' ? 'Error: ' : 'Warning: '}</span>
          {v.message.charAt(0).toUpperCase() + v.message.slice(1)}
        </li>
      ))}
    </ul>
  );
}

/** "n / max" that turns red over the limit. */
export function Counter({ label, value, max, unit }: { label: string; value: number; max: number; unit: string }) {
  const over = value > max;
  return (
    <span className={over ? 'seo-counter over' : 'seo-counter'} aria-label={label} role="status">
      {value.toLocaleString('en-US')} / {max.toLocaleString('en-US')} {unit}
    </span>
  );
}
