// Files from the clipboard: what the upload area and the chat composer take from a paste.

/** The name of an image pasted from the clipboard, which browsers call `image.png`. */
export function pastedName(file: File, now = new Date()): string {
  if (file.name && file.name !== 'image.png') return file.name;
  const ext = file.type.startsWith('image/') ? file.type.slice('image/'.length).replace('jpeg', 'jpg').replace(/\+.*$/, '') : 'bin';
  const pad = (n: number) => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())} ${pad(now.getHours())}.${pad(now.getMinutes())}.${pad(now.getSeconds())}`;
  return `Pasted image ${stamp}.${ext}`;
}

/** The files on the clipboard of a paste event (the DOM's or React's), named. */
export function pastedFiles(e: { clipboardData: DataTransfer | null }): File[] {
  const data = e.clipboardData;
  if (!data) return [];
  let files = Array.from(data.files ?? []);
  if (files.length === 0) {
    files = Array.from(data.items ?? [])
      .filter((item) => item.kind === 'file')
      .map((item) => item.getAsFile())
      .filter((f): f is File => f !== null);
  }
  return files.map((f) => {
    const name = pastedName(f);
    return name === f.name ? f : new File([f], name, { type: f.type, lastModified: f.lastModified });
  });
}
