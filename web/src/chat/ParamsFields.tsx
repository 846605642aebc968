import { Col, Form, Input, InputNumber, Row } from 'antd';
import { LIMITS, type Params } from '../api/types';

type Key = keyof Params;

interface FieldSpec {
  key: Key;
  label: string;
  help: string;
  min: number;
  max?: number;
  step: number;
  precision?: number;
}

/** The parameters the server takes, with its ranges (crates/chat/src/domain.rs, `Params`). */
const FIELDS: FieldSpec[] = [
  { key: 'temperature', label: 'Temperature', help: '0 to 2; higher is more varied.', min: 0, max: 2, step: 0.1 },
  { key: 'top_p', label: 'Top P', help: 'Above 0, at most 1.', min: 0.01, max: 1, step: 0.05 },
  { key: 'max_tokens', label: 'Max tokens', help: 'Longest answer, in tokens.', min: 1, step: 1, precision: 0 },
  { key: 'seed', label: 'Seed', help: 'The same seed repeats answers, where the model can.', min: 0, step: 1, precision: 0 },
];

/** Only the parameters that are set. */
export function cleanParams(params: Params): Params {
  const out: Params = {};
  for (const { key } of FIELDS) {
    const v = params[key];
    if (typeof v === 'number' && Number.isFinite(v)) out[key] = v;
  }
  return out;
}

/** The parameters set, in words: "Temperature 0.7 · Max tokens 512". */
export function describeParams(params: Params): string {
  return FIELDS.filter((f) => typeof params[f.key] === 'number')
    .map((f) => `${f.label} ${params[f.key]}`)
    .join(' · ');
}

export interface ParamsFieldsProps {
  /** Prefix of the inputs' ids, unique on the page. */
  idPrefix: string;
  value: Params;
  onChange(value: Params): void;
  disabled?: boolean;
}

/** Number inputs for the sampling parameters; an empty one leaves the model's default. */
export function ParamsFields({ idPrefix, value, onChange, disabled }: ParamsFieldsProps) {
  return (
    <Row gutter={12}>
      {FIELDS.map((f) => {
        const id = `${idPrefix}-${f.key}`;
        return (
          <Col xs={24} sm={12} key={f.key}>
            <Form.Item label={f.label} htmlFor={id} extra={f.help}>
              <InputNumber
                id={id}
                style={{ width: '100%' }}
                placeholder="Model default"
                min={f.min}
                max={f.max}
                step={f.step}
                precision={f.precision}
                disabled={disabled}
                value={value[f.key] ?? null}
                onChange={(v) => {
                  const next = { ...value };
                  if (typeof v === 'number') next[f.key] = v;
                  else delete next[f.key];
                  onChange(next);
                }}
              />
            </Form.Item>
          </Col>
        );
      })}
    </Row>
  );
}

/** A system prompt as the server stores it: null when there is none (only white space). */
export function systemPromptOrNull(text: string): string | null {
  return text.trim() ? text : null;
}

export interface SystemPromptFieldProps {
  id: string;
  value: string;
  onChange(value: string): void;
  disabled?: boolean;
}

export function SystemPromptField({ id, value, onChange, disabled }: SystemPromptFieldProps) {
  return (
    <Form.Item label="System prompt" htmlFor={id} extra="Instructions the model follows for the whole conversation.">
      <Input.TextArea
        id={id}
        value={value}
        disabled={disabled}
        maxLength={LIMITS.systemPrompt}
        showCount
        autoSize={{ minRows: 4, maxRows: 14 }}
        placeholder="None"
        onChange={(e) => onChange(e.target.value)}
      />
    </Form.Item>
  );
}
