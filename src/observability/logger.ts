import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

/**
 * Paths pino censors wherever they appear in a log object. Mail content, tokens and secrets must
 * never reach a log line (ARCHITECTURE invariant); code should not log them in the first place,
 * and this list is the net under that rule.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'authorization',
  ...[
    'token',
    'accessToken',
    'access_token',
    'refreshToken',
    'refresh_token',
    'idToken',
    'id_token',
    'code',
    'codeVerifier',
    'code_verifier',
    'state',
    'secret',
    'clientSecret',
    'client_secret',
    'password',
    'apiKey',
    'adminToken',
    'clientState',
    'subject',
    'text',
    'html',
    'body',
    'raw',
    'content',
    'from',
    'to',
    'cc',
    'bcc',
    'replyTo',
    'address',
    'emailAddress',
    'email',
    'filename',
  ].flatMap((k) => [k, `*.${k}`, `*.*.${k}`]),
];

export function createLogger(opts: { level: string; destination?: DestinationStream; name?: string }): Logger {
  return pino(
    {
      name: opts.name ?? 'mailbox-connector',
      level: opts.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { err: pino.stdSerializers.err },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination,
  );
}
