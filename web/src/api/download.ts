import type { ApiClient } from './client';

/** The file name in a Content-Disposition header, if any. */
export function filenameFrom(header: string | null): string | null {
  if (!header) return null;
  const extended = /filename\*\s*=\s*(?:UTF-8|utf-8)''([^;]+)/.exec(header);
  let name: string | null = null;
  if (extended) {
    try {
      name = decodeURIComponent(extended[1]!.trim());
    } catch {
      name = null;
    }
  }
  if (!name) {
    const plain = /filename\s*=\s*(?:"([^"]*)"|([^;]+))/.exec(header);
    name = plain ? (plain[1] ?? plain[2] ?? '').trim() : null;
  }
  // A name, never a path.
  const base = name?.split(/[\\/]/).pop()?.trim();
  return base ? base : null;
}

/** Hands a blob to the browser as a download named `name`. */
export function saveBlob(blob: Blob, name: string) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.rel = 'noopener';
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  // After the click has handed the file to the browser.
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * Downloads `path` through the client (with the session's token) as a file: the name from
 * the answer's Content-Disposition, else `fallback`. Returns the name used.
 */
export async function download(client: ApiClient, path: string, fallback: string): Promise<string> {
  const response = await client.fetch(path, { method: 'GET' });
  const blob = await response.blob();
  const name = filenameFrom(response.headers.get('content-disposition')) ?? fallback;
  saveBlob(blob, name);
  return name;
}
