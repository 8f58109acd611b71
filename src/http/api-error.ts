/**
 * Errors a route raises on purpose. Named after what they mean to the caller; `expose` is true
 * below 500, so the message is public; for 5xx only a generic message leaves the process and the
 * detail goes to the log (node-oidc-provider's convention).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly expose: boolean;
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.expose = status < 500;
  }
}

export const notFound = (what: string): ApiError => new ApiError(404, 'not_found', `${what} not found`);
export const badRequest = (code: string, message: string, details?: Record<string, unknown>): ApiError =>
  new ApiError(400, code, message, details);
export const conflict = (code: string, message: string, details?: Record<string, unknown>): ApiError =>
  new ApiError(409, code, message, details);

export interface ErrorBody {
  error: { code: string; message: string; requestId?: string; details?: Record<string, unknown> };
}
