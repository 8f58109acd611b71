/**
 * What was thrown, as one line for an error message: an Error's message, a string, or for any
 * other object its `message`, else its name (and `errno`) — never "[object Object]" and never the
 * object's other fields. Emscripten's ErrnoError (PGlite's file system) has no message, only a
 * name and an errno.
 */
export function describeThrown(err: unknown): string {
  if (err instanceof Error && err.message) return err.message.split('\n')[0]!;
  if (typeof err === 'string') return err.split('\n')[0]!;
  if (err && typeof err === 'object') {
    const o = err as { name?: unknown; errno?: unknown; message?: unknown; constructor?: { name?: unknown } };
    if (typeof o.message === 'string' && o.message) return o.message.split('\n')[0]!;
    const name = typeof o.name === 'string' ? o.name : typeof o.constructor?.name === 'string' ? o.constructor.name : 'object';
    return typeof o.errno === 'number' ? `${name} ${o.errno}` : name;
  }
  return String(err);
}
