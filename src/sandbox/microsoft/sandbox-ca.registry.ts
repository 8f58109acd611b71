/**
 * Certificates of the stand-ins running in this process, by origin, so helpers that talk to the
 * sandbox over HTTPS verify its certificate instead of switching verification off.
 */
const byOrigin = new Map<string, string>();

export function registerSandboxCa(origin: string, certPem: string): void {
  byOrigin.set(origin, certPem);
}

export function unregisterSandboxCa(origin: string): void {
  byOrigin.delete(origin);
}

export function sandboxCaFor(origin: string): string | undefined {
  return byOrigin.get(origin);
}
