import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gmail, type gmail_v1 } from '@googleapis/gmail';
import { startGoogleSandbox, type GoogleSandbox } from '../../src/sandbox/google/google-sandbox.server.js';
import { connectGoogleSandboxUser } from '../../src/sandbox/google/google-sandbox-connect.client.js';
import { corpusMissingReason, missing } from '../helpers/requirements.js';
import { corpusDir } from '../helpers/shared-dir.js';

/**
 * Shape parity with real Gmail: for each recorded users.messages.get (format=full) response in the
 * shared corpus, the message is rebuilt as MIME from the recording, delivered to the stand-in, and
 * the stand-in's answer must carry exactly the same fields at every level.
 * The corpus is used in place (mixed licences: never copied into the repo).
 */
const CORPUS = `${corpusDir()}/gmail-api-recorded/`;
const RECORDED_DIR = `${CORPUS}larsklingsten-gmail-api-parse-message-ts/`;
const corpusMissing = corpusMissingReason('gmail-api-recorded', 'larsklingsten-gmail-api-parse-message-ts');
const haveCorpus = corpusMissing === null;

type Part = gmail_v1.Schema$MessagePart;

function qpEncode(buf: Buffer): string {
  let out = '';
  for (const b of buf) {
    if (b === 0x0d || b === 0x0a || (b >= 0x20 && b <= 0x7e && b !== 0x3d)) out += String.fromCharCode(b);
    else out += '=' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

function encodeBody(bytes: Buffer, cte: string | undefined): Buffer {
  switch ((cte ?? '').toLowerCase()) {
    case 'base64':
      return Buffer.from(bytes.toString('base64').replace(/.{76}/g, '$&\r\n'));
    case 'quoted-printable':
      return Buffer.from(qpEncode(bytes), 'latin1');
    default:
      return bytes;
  }
}

/** Rebuild RFC 5322 bytes from a recorded payload tree (attachment bytes are filler of the recorded size). */
function rebuild(part: Part): Buffer {
  let headers = part.headers ?? [];
  // Some recordings were trimmed of the top-level Content-Type; a multipart needs one to be rebuilt.
  if (part.mimeType!.startsWith('multipart/') && !headers.some((h) => h.name!.toLowerCase() === 'content-type')) {
    headers = [...headers, { name: 'Content-Type', value: `${part.mimeType}; boundary="rebuilt-${part.partId || 'root'}"` }];
  }
  const head = Buffer.from(headers.map((h) => `${h.name}: ${h.value}`).join('\r\n') + '\r\n\r\n', 'utf8');
  const ct = headers.find((h) => h.name!.toLowerCase() === 'content-type')?.value ?? '';
  const cte = headers.find((h) => h.name!.toLowerCase() === 'content-transfer-encoding')?.value ?? undefined;
  if (part.mimeType!.startsWith('multipart/')) {
    const boundary = /boundary="?([^";]+)"?/i.exec(ct)![1]!;
    const chunks: Buffer[] = [head];
    for (const child of part.parts ?? []) chunks.push(Buffer.from(`--${boundary}\r\n`), rebuild(child), Buffer.from('\r\n'));
    chunks.push(Buffer.from(`--${boundary}--\r\n`));
    return Buffer.concat(chunks);
  }
  // Gmail hands text back as UTF-8; put it back into the part's own charset.
  const latin1 = /charset="?(iso-8859-1|latin1|windows-1252)/i.test(ct);
  const data = part.body?.data ? Buffer.from(part.body.data, 'base64url') : undefined;
  const bytes = data ? (latin1 ? Buffer.from(data.toString('utf8'), 'latin1') : data) : Buffer.alloc(part.body?.size ?? 0, 0x41);
  return Buffer.concat([head, encodeBody(bytes, cte)]);
}

/** Differences between the field sets of two JSON values, recursively (arrays element-wise). */
function fieldDiff(recorded: unknown, actual: unknown, path = '$'): string[] {
  if (Array.isArray(recorded)) {
    if (!Array.isArray(actual)) return [`${path}: array expected`];
    if (recorded.length !== actual.length) return [`${path}: length ${recorded.length} vs ${actual.length}`];
    return recorded.flatMap((r, i) => fieldDiff(r, actual[i], `${path}[${i}]`));
  }
  if (recorded !== null && typeof recorded === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return [`${path}: object expected`];
    const rk = Object.keys(recorded).sort();
    const ak = Object.keys(actual).sort();
    const out: string[] = [];
    for (const k of rk) if (!ak.includes(k)) out.push(`${path}.${k}: missing`);
    for (const k of ak) if (!rk.includes(k)) out.push(`${path}.${k}: unexpected`);
    for (const k of rk) {
      if (ak.includes(k)) out.push(...fieldDiff((recorded as Record<string, unknown>)[k], (actual as Record<string, unknown>)[k], `${path}.${k}`));
    }
    return out;
  }
  return typeof recorded === typeof actual ? [] : [`${path}: ${typeof recorded} vs ${typeof actual}`];
}

let sandbox: GoogleSandbox;
let api: gmail_v1.Gmail;
let token: string;
const EMAIL = 'shapes@acme.test';

describe.skipIf(missing('the recorded Gmail responses (shared corpus)', corpusMissing))('stand-in responses have the fields of recorded Gmail responses', () => {
  beforeAll(async () => {
    sandbox = await startGoogleSandbox();
    token = (await connectGoogleSandboxUser(sandbox.endpoints, { email: EMAIL, scopes: ['https://www.googleapis.com/auth/gmail.readonly'] })).accessToken;
    api = gmail({ version: 'v1', rootUrl: sandbox.endpoints.gmailRootUrl, retry: false });
  });
  afterAll(async () => {
    await sandbox?.close();
  });

  const files = haveCorpus ? readdirSync(RECORDED_DIR).filter((f) => f.endsWith('.json')) : [];
  it.each(files)('messages.get format=full like %s', async (file) => {
    const recorded = JSON.parse(readFileSync(RECORDED_DIR + file, 'utf8')).result as gmail_v1.Schema$Message;
    const raw = rebuild(recorded.payload!);
    const stored = sandbox.deliver(EMAIL, raw, { labelIds: recorded.labelIds!, internalDate: Number(recorded.internalDate) });
    const { data } = await api.users.messages.get({ userId: 'me', id: stored.id }, { headers: { Authorization: `Bearer ${token}` } });
    const rebuiltHeader = (h: gmail_v1.Schema$MessagePartHeader) => h.value!.includes('boundary="rebuilt-');
    const comparable = { ...data, payload: { ...data.payload, headers: data.payload!.headers!.filter((h) => !rebuiltHeader(h)) } };
    expect(fieldDiff(recorded, comparable)).toEqual([]);
    // Same decoded body sizes and part ids as Gmail computed.
    const sizes = (p: Part): Array<[string, number]> => [[p.partId!, p.body!.size!], ...(p.parts ?? []).flatMap(sizes)];
    expect(sizes(data.payload!)).toEqual(sizes(recorded.payload!));
    expect(comparable.payload.headers).toEqual(recorded.payload!.headers);
  });

  it('uses error reasons Gmail uses', async () => {
    const known = JSON.parse(readFileSync(`${CORPUS}twentyhq-twenty/gmail-error-reasons.json`, 'utf8')) as Record<string, { code?: string; message?: string }>;
    const pairs = new Set(Object.values(known).filter((v) => v.code).map((v) => `${v.code}:${v.message}`));
    const reasonOf = async (p: Promise<unknown>) =>
      p.then(
        () => 'ok',
        (e: { response: { status: number; data: { error: { errors: Array<{ reason: string }> } } } }) =>
          `${e.response.status}:${e.response.data.error.errors[0]!.reason}`,
      );
    const o = { headers: { Authorization: `Bearer ${token}` } };
    const observed = [
      await reasonOf(api.users.getProfile({ userId: 'me' }, { headers: { Authorization: 'Bearer bad' } })),
      await reasonOf(api.users.messages.get({ userId: 'me', id: 'ffffffffffffffff' }, o)),
      await (async () => {
        sandbox.serverErrorNext(1, 500);
        return reasonOf(api.users.getProfile({ userId: 'me' }, o));
      })(),
      await (async () => {
        sandbox.setQuota({ overLimitResponse: '403', unitsPerWindow: 1 });
        const r = await reasonOf(api.users.messages.list({ userId: 'me' }, o));
        sandbox.setQuota({ overLimitResponse: '429', unitsPerWindow: 6000 });
        return r;
      })(),
    ];
    expect(observed).toEqual(['401:authError', '404:notFound', '500:backendError', '403:userRateLimitExceeded']);
    for (const o of observed) expect(pairs.has(o)).toBe(true);
  });
});
