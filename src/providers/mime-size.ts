/** MIME base64 of `bytes` with 76-character lines (what MailComposer writes). */
export function mimeBase64Bytes(bytes: number): number {
  const chars = Math.ceil(bytes / 3) * 4;
  return chars + Math.ceil(chars / 76) * 2;
}

/** Bytes as MB with one decimal, for limit messages. */
export function mb(bytes: number): string {
  return (bytes / (1024 * 1024)).toFixed(1);
}
