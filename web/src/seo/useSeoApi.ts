import { useMemo } from 'react';
import { useAuth } from '../auth/AuthContext';
import { seoApi, type SeoApi } from './api';

/** The SEO API over the signed-in session's client. */
export function useSeoApi(): SeoApi {
  const { client } = useAuth();
  return useMemo(() => seoApi(client), [client]);
}
