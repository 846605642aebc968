import { Alert, App, Button, Card, Col, Form, InputNumber, Radio, Row, Select, Space, Spin, Typography } from 'antd';
import { useCallback, useEffect, useState } from 'react';
import { ApiError, friendlyMessage } from '../api/errors';
import type { Model } from '../api/types';
import { useAuth } from '../auth/AuthContext';
import { formatTime, type LimitLevels, type RuntimeSettings, type SettingsPatch, type SettingsView } from './api';
import { userLabel, useUserDirectory } from './directory';

interface FormValues {
  registration: RuntimeSettings['registration'];
  /** '' for none (the first local model). */
  default_model: string;
  user_models: string[];
  limits: LimitLevels;
}

const LIMIT_FIELDS: { key: keyof LimitLevels; label: string; unit: string }[] = [
  { key: 'user_requests_per_minute', label: 'Requests per minute per user', unit: 'requests' },
  { key: 'user_tokens_per_day', label: 'Tokens per day per user', unit: 'tokens' },
  { key: 'key_requests_per_minute', label: 'Requests per minute per API key', unit: 'requests' },
  { key: 'key_tokens_per_day', label: 'Tokens per day per API key', unit: 'tokens' },
];

function toForm(view: SettingsView): FormValues {
  const s = view.settings;
  return {
    registration: s.registration,
    default_model: s.default_model ?? '',
    user_models: s.user_models,
    limits: { ...s.limits },
  };
}

/** Only what changed, and the version it is based on. */
export function settingsPatch(view: SettingsView, values: FormValues): SettingsPatch {
  const s = view.settings;
  const patch: SettingsPatch = { version: view.version };
  if (values.registration !== s.registration) patch.registration = values.registration;
  const model = (values.default_model ?? '').trim();
  if (model !== (s.default_model ?? '')) patch.default_model = model;
  const patterns = (values.user_models ?? []).map((p) => p.trim());
  if (JSON.stringify(patterns) !== JSON.stringify(s.user_models)) patch.user_models = patterns;
  const limits: Partial<LimitLevels> = {};
  for (const { key } of LIMIT_FIELDS) {
    const v = values.limits?.[key];
    if (v !== undefined && v !== null && v !== s.limits[key]) limits[key] = v;
  }
  if (Object.keys(limits).length) patch.limits = limits;
  return patch;
}

type Problem = { kind: 'conflict'; text: string } | { kind: 'invalid'; items: string[] } | { kind: 'error'; text: string };

export default function SettingsScreen() {
  const { client } = useAuth();
  const { message } = App.useApp();
  const { byId } = useUserDirectory();
  const [form] = Form.useForm<FormValues>();
  const [view, setView] = useState<SettingsView | null>(null);
  const [models, setModels] = useState<Model[]>([]);
  const [modelsError, setModelsError] = useState<string | null>(null);
  const [problem, setProblem] = useState<Problem | null>(null);
  const [saving, setSaving] = useState(false);

  const load = useCallback(async () => {
    const v = await client.get<SettingsView>('/api/v1/admin/settings');
    setView(v);
    form.setFieldsValue(toForm(v));
    return v;
  }, [client, form]);

  useEffect(() => {
    load().catch((e) => setProblem({ kind: 'error', text: friendlyMessage(e) }));
    client
      .get<{ items: Model[] }>('/api/v1/models')
      .then((r) => setModels(r.items))
      .catch((e) => setModelsError(friendlyMessage(e)));
  }, [client, load]);

  const save = async (values: FormValues) => {
    if (!view) return;
    const patch = settingsPatch(view, values);
    if (Object.keys(patch).length === 1) {
      message.info('Nothing changed.');
      return;
    }
    setSaving(true);
    try {
      const next = await client.patch<SettingsView>('/api/v1/admin/settings', patch);
      setView(next);
      form.setFieldsValue(toForm(next));
      setProblem(null);
      message.success(`Settings saved (version ${next.version}); they apply at once.`);
    } catch (e) {
      if (e instanceof ApiError && e.code === 'settings_changed') {
        try {
          const fresh = await load();
          setProblem({
            kind: 'conflict',
            text: `Someone else changed the settings while you were editing. The current settings (version ${fresh.version}) are shown now; make your change again.`,
          });
        } catch (again) {
          setProblem({ kind: 'error', text: friendlyMessage(again) });
        }
      } else if (e instanceof ApiError && e.code === 'invalid_settings') {
        setProblem({ kind: 'invalid', items: e.details.length ? e.details : [e.message] });
      } else {
        setProblem({ kind: 'error', text: friendlyMessage(e) });
      }
    } finally {
      setSaving(false);
    }
  };

  const modelOptions = models.map((m) => ({ value: m.id, label: `${m.id} (${m.provider})` }));
  const current = view?.settings.default_model;
  if (current && !models.some((m) => m.id === current)) {
    modelOptions.push({ value: current, label: `${current} (not installed now)` });
  }

  return (
    <section aria-labelledby="admin-settings-title">
      <Typography.Title level={3} id="admin-settings-title">
        Runtime settings
      </Typography.Title>
      <Typography.Paragraph type="secondary">
        These settings apply to every server process at once, without a restart, and override the configuration
        file.
      </Typography.Paragraph>
      {view && (
        <Typography.Paragraph>
          {view.version === 0
            ? 'Version 0: the values from the configuration file; nobody changed them here yet.'
            : `Version ${view.version}, changed ${formatTime(view.updated_at)}${
                view.updated_by ? ` by ${userLabel(byId, view.updated_by)}` : ''
              }.`}
        </Typography.Paragraph>
      )}
      {problem?.kind === 'conflict' && (
        <Alert type="warning" showIcon role="alert" title="The settings changed meanwhile" description={problem.text} style={{ marginBottom: 12 }} />
      )}
      {problem?.kind === 'invalid' && (
        <Alert
          type="error"
          showIcon
          role="alert"
          title="The settings were not saved. Fix these problems:"
          description={
            <ul className="admin-problems">
              {problem.items.map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          }
          style={{ marginBottom: 12 }}
        />
      )}
      {problem?.kind === 'error' && <Alert type="error" showIcon role="alert" title={problem.text} style={{ marginBottom: 12 }} />}
      {!view && !problem && <Spin aria-label="Loading settings" />}
      <Form<FormValues>
        form={form}
        name="runtime-settings"
        layout="vertical"
        aria-label="Runtime settings"
        onFinish={(v) => void save(v)}
        style={{ display: view ? undefined : 'none', maxWidth: 760 }}
      >
        <Card size="small" title="Sign-ups" style={{ marginBottom: 16 }}>
          <Form.Item name="registration" label="Who may create an account" style={{ marginBottom: 0 }}>
            <Radio.Group aria-label="Who may create an account">
              <Space orientation="vertical">
                <Radio value="open">Open: anyone may sign up and use the account at once</Radio>
                <Radio value="approval">Approval: anyone may sign up; an admin approves each account</Radio>
                <Radio value="closed">Closed: only admins create accounts</Radio>
              </Space>
            </Radio.Group>
          </Form.Item>
        </Card>
        <Card size="small" title="Models" style={{ marginBottom: 16 }}>
          {modelsError && (
            <Alert type="warning" showIcon title={`The installed models could not be listed: ${modelsError}`} style={{ marginBottom: 12 }} />
          )}
          <Form.Item name="default_model" label="Default model" extra="Used when a request names no model.">
            <Select
              aria-label="Default model"
              options={[{ value: '', label: 'None: the first local model' }, ...modelOptions]}
              showSearch={{ optionFilterProp: 'label' }}
            />
          </Form.Item>
          <Form.Item
            name="user_models"
            label="Models users may call"
            extra="Model names, or prefixes ending in * (such as llama-*). Leave empty to allow every model. Admins may call every model."
            style={{ marginBottom: 0 }}
          >
            <Select
              mode="tags"
              aria-label="Models users may call"
              placeholder="Every model"
              options={models.map((m) => ({ value: m.id, label: m.id }))}
              tokenSeparators={[',', ' ']}
            />
          </Form.Item>
        </Card>
        <Card size="small" title="Limits" style={{ marginBottom: 16 }}>
          <Typography.Paragraph type="secondary">0 means unlimited.</Typography.Paragraph>
          <Row gutter={16}>
            {LIMIT_FIELDS.map((f) => (
              <Col xs={24} sm={12} key={f.key}>
                <Form.Item
                  name={['limits', f.key]}
                  label={f.label}
                  rules={[{ required: true, message: `Enter a number (0 for unlimited).` }]}
                >
                  <InputNumber min={0} precision={0} style={{ width: '100%' }} suffix={f.unit} />
                </Form.Item>
              </Col>
            ))}
          </Row>
        </Card>
        <Space>
          <Button type="primary" htmlType="submit" loading={saving}>
            Save settings
          </Button>
          <Button
            onClick={() => {
              if (view) form.setFieldsValue(toForm(view));
              setProblem(null);
            }}
          >
            Undo changes
          </Button>
        </Space>
      </Form>
    </section>
  );
}
