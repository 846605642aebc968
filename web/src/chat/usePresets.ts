import { useCallback, useRef, useState } from 'react';
import type { ChatApi, PresetInput } from '../api/chat';
import { friendlyMessage } from '../api/errors';
import type { Preset } from '../api/types';

const byName = (a: Preset, b: Preset) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base' });

/**
 * The user's presets, loaded on first need. Changes go to the server first and then to the
 * list; they throw the server's error for the form to show.
 */
export function usePresets(api: ChatApi) {
  const [items, setItems] = useState<Preset[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const started = useRef(false);

  const load = useCallback(async () => {
    started.current = true;
    setLoading(true);
    try {
      setItems((await api.presets()).sort(byName));
      setError(null);
    } catch (e) {
      setError(friendlyMessage(e));
    } finally {
      setLoading(false);
    }
  }, [api]);

  /** Loads the presets unless that has been done. */
  const ensure = useCallback(() => {
    if (!started.current) void load();
  }, [load]);

  const create = useCallback(
    async (input: PresetInput) => {
      const preset = await api.createPreset(input);
      setItems((ps) => [...(ps ?? []).filter((p) => p.id !== preset.id), preset].sort(byName));
      return preset;
    },
    [api],
  );

  const update = useCallback(
    async (id: string, input: PresetInput) => {
      const preset = await api.updatePreset(id, input);
      setItems((ps) => (ps ?? []).map((p) => (p.id === id ? preset : p)).sort(byName));
      return preset;
    },
    [api],
  );

  const remove = useCallback(
    async (id: string) => {
      await api.removePreset(id);
      setItems((ps) => (ps ?? []).filter((p) => p.id !== id));
    },
    [api],
  );

  return { items, error, loading, load, ensure, create, update, remove };
}

export type PresetsState = ReturnType<typeof usePresets>;
