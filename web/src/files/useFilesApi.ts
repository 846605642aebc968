import { useMemo } from 'react';
import { useAuth } from '../auth/AuthContext';
import { filesApi, type FilesApi } from './api';

/** The files API over the signed-in session's client. */
export function useFilesApi(): FilesApi {
  const { client } = useAuth();
  return useMemo(() => filesApi(client), [client]);
}
