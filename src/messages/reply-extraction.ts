import EmailForwardParser from 'email-forward-parser';
import planer from 'planer';
import './planer-splitters.js';

/**
 * What a helpdesk shows of a message: the new content without the quoted history, the sender's
 * signature, and whether the message forwards another one. Computed once per message at ingest
 * (in the parse worker) and stored with the encrypted content; computed on read for rows stored
 * before (docs/api.md, "Reply text, signature, forwarded").
 */
export interface ReplyParts {
  /**
   * The text without quoted history. Includes the signature (so a consumer can show exactly what
   * the sender wrote); when `signature` is set, `replyText` ends with it. Null only when the
   * message has no text; never empty for a non-empty text (falls back to the whole text).
   */
  replyText: string | null;
  /** The trailing signature block of `replyText` when one is detected, else null. */
  signature: string | null;
  /** Set when the message forwards another one: the forwarded message's sender, date and subject. */
  forwarded: ForwardedMessage | null;
}

export interface ForwardedMessage {
  from: { name: string | null; address: string | null } | null;
  /** As written in the forwarded header (free text, e.g. "25 October 2021 at 11:17:21 EEST"). */
  date: string | null;
  subject: string | null;
}

/**
 * Bounds on what the regular-expression libraries see. Both run JavaScript regexes with
 * backtracking (their ReDoS protection needs the native `re2` module, which we do not ship): a
 * 16,000-character line starting "On " cost planer 0.76 s and a 100,000-character one 36 s. So
 * lines longer than MAX_LINE_CHARS are hidden behind a placeholder (a quote header or signature
 * line is never that long) and only the head of a long text is analysed — the new content and
 * the first quote header are at the top. Measured worst cases are in reply-extraction.test.ts.
 */
const MAX_LINE_CHARS = 400;
const MAX_LINES = 800;
const MAX_HEAD_CHARS = 64 * 1024;
/** A signature is looked for in the last lines of the reply only. */
const SIGNATURE_WINDOW = 12;

/**
 * Quote stripping is planer's (a port of mailgun/talon's `extract_from_plain`, MIT): it marks
 * each line (quoted `>`, splitter — "On … wrote:" over up to three lines, "-----Original
 * Message-----", Outlook "From:/Sent:" blocks, "dd.mm.yyyy … @" headers —, forwarded marker, text)
 * and cuts at the first splitter or quote block, keeping a forwarded message whole. We chose it
 * over email-reply-parser (evaluated, not a dependency): on the talon standard replies it agrees 12/12 where
 * email-reply-parser agreed 9/12, and email-reply-parser runs multi-line regexes over the whole
 * text (a 26 KB body of "abc. skrev x" lines took 44 s without re2).
 */
export function extractReply(text: string | null, subject: string): ReplyParts {
  if (text === null || text.trim() === '') return { replyText: text === null ? null : text, signature: null, forwarded: null };
  const normalized = text.replace(/\r\n?/g, '\n');
  const { head, rest } = splitHead(normalized);
  let replyText = cutAtQuoteHeader(stripQuotes(head));
  // Nothing cut in the head: the rest (if any) is not a quote we recognised either.
  if (replyText === head.trim() || normalizeSpace(replyText) === normalizeSpace(head)) replyText = (head + rest).trim();
  // Never empty: a message that is all quote (or all forward header) is shown whole.
  if (replyText.trim() === '') replyText = normalized.trim();
  return { replyText, signature: findSignature(replyText), forwarded: findForwarded(normalized, subject) };
}

/** The head without its quoted history (trimmed); the head itself when nothing is recognised. */
function stripQuotes(head: string): string {
  // Placeholders for long lines (keeping a leading ">" so quoted lines stay quoted). Private-use
  // characters mark them; a text that already contains one is not analysed (shown whole).
  if (head.includes('\uE000')) return head.trim();
  const long: string[] = [];
  const masked = head
    .split('\n')
    .map((line) => {
      if (line.length <= MAX_LINE_CHARS) return line;
      long.push(line);
      const quote = /^>+ ?/.exec(line)?.[0] ?? '';
      return `${quote}\uE000${long.length - 1}\uE001`;
    })
    .join('\n');
  const stripped = planer.extractFromPlain(masked);
  const restored = long.length === 0 ? stripped : stripped.replace(/\uE000(\d+)\uE001/g, (_m, i: string) => long[Number(i)]!.replace(/^>+ ?/, ''));
  return restored.trim();
}

/** The first MAX_LINES lines / MAX_HEAD_CHARS characters (cut at a line end), and the rest. */
function splitHead(text: string): { head: string; rest: string } {
  let end = Math.min(text.length, MAX_HEAD_CHARS);
  let lines = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < end; i = text.indexOf('\n', i + 1)) {
    if (++lines >= MAX_LINES) {
      end = i;
      break;
    }
  }
  if (end < text.length) {
    const nl = text.lastIndexOf('\n', end);
    if (nl > 0) end = nl;
  }
  return { head: text.slice(0, end), rest: text.slice(end) };
}

/**
 * Our layer after planer, which knows English and a few other quote headers: the first line
 * (of at most three joined, each at most MAX_LINE_CHARS) that starts a quote header in another
 * form or language is where the quoted history begins. Nothing is cut after a forward marker (a
 * forwarded message is content). All patterns are anchored or bounded.
 */
function cutAtQuoteHeader(reply: string): string {
  const lines = reply.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.length > MAX_LINE_CHARS) continue;
    if (FORWARD_MARKER.test(line)) break;
    const header = ORIGINAL_MESSAGE.test(line) || isWroteHeader(lines, i) || isHeaderBlock(lines, i) || isTrailingHeaderLine(lines, i);
    if (header && !answeredBelow(lines, i)) {
      const kept = lines.slice(0, i);
      // Decoration left above the header ("====", a row of underscores) goes with it.
      while (kept.length > 0 && /^\s*(?:[-=_*~]{2,}\s*)?$/.test(kept.at(-1)!)) kept.pop();
      const out = kept.join('\n').trim();
      return out === '' ? reply : out;
    }
  }
  return reply;
}

const FORWARD_MARKER =
  /^(?:-{2,}\s*(?:forwarded message|message transf[ée]r[ée]|weitergeleitete nachricht|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht|videresendt meddelelse|vidarebefordrat meddelande|wiadomość przekazana)|begin forwarded message:|d[ée]but du message r[ée]exp[ée]di[ée]\s?:)/i;
const ORIGINAL_MESSAGE =
  /^[-=_* ]{0,20}-{2,}\s*(?:original message|reply message|oprindelig (?:besked|meddelelse)|message d'origine|ursprüngliche nachricht|mensaje original|messaggio originale|oorspronkelijk bericht|ursprungligt meddelande|opprinnelig melding|alkuperäinen viesti|wiadomość oryginalna|původní zpráva|исходное сообщение|mensagem original)\s*-{2,}\s*$/i;
/** A verb that closes an attribution line ("… wrote:", "… a écrit :", "… schrieb NAME <x@y>:"). */
const WROTE_VERB =
  /(?:^|[\s,])(?:wrote|a [ée]crit|escribi[óo]|ha scritto|scritto|escreveu|schrieb|schreef|geschreven|napisa[łl](?:\(a\))?|pisze|skrev|kirjoitti|написал[аи]?|írta|kirjutas|yazdı|napsal[a]?|写道|のメッセージ|작성)(?=[\s:]|$)/giu;
/** The verb ends the line ("wrote:"), or only the author's name and address follow it ("skrev NAME <x@y>:"). */
function closesWithVerb(joined: string): boolean {
  for (const m of joined.matchAll(WROTE_VERB)) {
    const after = joined.slice(m.index + m[0].length).trim();
    if (after === '' || after === ':' || (after.length <= 200 && after.includes('@'))) return true;
  }
  return false;
}

const TIME = /\d{1,2}[:.]\d{2}/;
const HAS_ADDRESS = /[^\s<>()[\]@]{1,64}@[^\s<>()[\]]{1,255}/;

/**
 * An attribution over one to three lines (mail clients wrap it): contains a date or time, and
 * either a "wrote" verb, or an address and a closing colon ("2017-11-24 16:32 GMT+01:00 NAME
 * <x@y>:", "ср, 30 апр. 2025 г. в 15:19, NAME <x@y>:").
 */
function isWroteHeader(lines: readonly string[], i: number): boolean {
  let joined = '';
  for (let j = i; j < Math.min(lines.length, i + 3); j++) {
    const part = lines[j]!.trim();
    if (part === '' || part.length > MAX_LINE_CHARS || part.startsWith('>')) return false;
    joined = joined === '' ? part : `${joined} ${part}`;
    if (!/\d/.test(joined)) continue;
    if (closesWithVerb(joined)) return true;
    if (joined.endsWith(':') && TIME.test(joined) && HAS_ADDRESS.test(joined)) return true;
  }
  return false;
}

const HEADER_FIRST =
  /^\*?(?:from|de|von|van|da|fra|från|od|от|lähettäjä|feladó|message du|sent|date|envoy[ée]|gesendet|verzonden|inviato|enviado|sendt|skickat)\*?\s?:\*?(?:\s|$)/i;
const HEADER_NEXT =
  /^\*?(?:from|de|von|van|da|fra|från|od|от|sent|date|datum|data|fecha|envoy[ée]|gesendet|verzonden|inviato|enviado|sendt|skickat|wysłano|отправлено|to|à|a|an|aan|para|til|till|do|кому|cc|copie à|subject|objet|sujet|betreff|onderwerp|oggetto|asunto|assunto|emne|ämne|temat|тема)\*?\s?:\*?(?:\s|$)/i;

/** A lone "Date:"/"Message du :"-like line with a date, last in the text (the rest was cut). */
function isTrailingHeaderLine(lines: readonly string[], i: number): boolean {
  const line = lines[i]!.trim();
  return HEADER_FIRST.test(line) && /\d/.test(line) && lines.slice(i + 1).every((l) => l.trim() === '');
}

/**
 * A bottom-posted or inline answer: below the header, after the quoted block, the sender wrote
 * two or more lines of their own. planer leaves such a message whole and so do we.
 */
function answeredBelow(lines: readonly string[], i: number): boolean {
  let quoted = false;
  let run = 0;
  for (let j = i + 1; j < lines.length; j++) {
    const line = lines[j]!.trim();
    // Below a signature delimiter come footers and disclaimers, not an answer.
    if (/^(?:--|[-_=—]{2,})$/.test(line)) return false;
    if (line.startsWith('>')) {
      quoted = true;
      run = 0;
    } else if (line === '') {
      run = 0;
    } else if (quoted && ++run >= 2) {
      return true;
    }
  }
  return false;
}

/** An Outlook-style header block: a From/Date-like line and at least two more header lines below. */
function isHeaderBlock(lines: readonly string[], i: number): boolean {
  if (!HEADER_FIRST.test(lines[i]!.trim())) return false;
  let headers = 0;
  for (let j = i + 1, seen = 0; j < lines.length && seen < 4; j++) {
    const part = lines[j]!.trim();
    if (part === '') continue;
    seen++;
    if (part.length <= MAX_LINE_CHARS && HEADER_NEXT.test(part)) headers++;
  }
  return headers >= 2;
}

function normalizeSpace(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/**
 * Signature delimiters and sign-offs, tested against one trimmed line at a time (every pattern
 * is anchored and linear). Drawn from RFC 3676 §4.3 ("-- "), talon's and email-reply-parser's
 * lists of mobile-client footers and valedictions.
 */
const SIGNATURE_DELIMITER = /^(?:--|__)$/;
const SIGNATURE_FOOTER =
  /^(?:sent (?:from|with|via) .{1,80}|get outlook for .{1,40}|envoy[ée] (?:de|depuis|à partir de) (?:mon )?.{1,60}|t[ée]l[ée]charger outlook pour .{1,40}|von meinem .{1,60} gesendet|gesendet von .{1,60}|enviado (?:desde|de) .{1,60}|inviato da .{1,60}|verzonden (?:vanaf|met) .{1,60}|verstuurd vanaf .{1,60}|sendt fra .{1,60}|skickat från .{1,60}|wysłane z .{1,60})$/i;
const VALEDICTION =
  /^(?:(?:best|kind|warm|warmest|many|with)?\s?(?:regards|wishes)|cheers|best|cordialement|bien (?:à|a) vous|bonne (?:journ[ée]e|soir[ée]e)|mit freundlichen gr(?:ü|ue)(?:ß|ss)en|viele gr(?:ü|ue)(?:ß|ss)e|liebe gr(?:ü|ue)(?:ß|ss)e|saludos|un saludo|atentamente|cordiali saluti|distinti saluti|met vriendelijke groet(?:en)?|groeten|med vänlig hälsning|hälsningar|med venlig hilsen|venlig hilsen|pozdrawiam|с уважением)[,.!]?$/i;

/**
 * The trailing signature of the reply, or null. From the bottom, within the last
 * SIGNATURE_WINDOW non-empty lines, the topmost line that starts a signature: an RFC 3676 "-- "
 * delimiter, a client footer ("Sent from my iPhone"), or a valediction ("Best regards,") followed
 * by at most 6 short lines. Never the whole reply: some content must come before it.
 */
export function findSignature(reply: string): string | null {
  const lines = reply.split('\n');
  let start = -1;
  let seen = 0;
  for (let i = lines.length - 1; i > 0 && seen < SIGNATURE_WINDOW; i--) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    seen++;
    if (line.length > 120) break;
    const after = lines.slice(i + 1).filter((l) => l.trim() !== '');
    if (SIGNATURE_DELIMITER.test(line) || SIGNATURE_FOOTER.test(line)) start = i;
    else if (VALEDICTION.test(line) && after.length <= 6 && after.every((l) => l.trim().length <= 80)) start = i;
  }
  if (start <= 0) return null;
  const before = lines.slice(0, start).join('\n').trim();
  if (before === '') return null;
  const signature = lines.slice(start).join('\n').trim();
  return signature === '' ? null : signature;
}

const forwardParser = new EmailForwardParser();

/**
 * email-forward-parser (crisp-oss, MIT) recognises the forward separators and original-header
 * blocks of the common clients and locales. Given the subject, it parses the body only when the
 * subject is a forward ("Fwd:", "TR:", "WG:", …), which keeps its regexes off ordinary mail.
 */
function findForwarded(text: string, subject: string): ForwardedMessage | null {
  // A subject that is not a forward: the library does not read the body (it does for an empty
  // subject), so the body need not be prepared — asked with an empty body, it answers the same.
  if (subject !== '' && !forwardParser.read('', subject).forwarded) return null;
  const { head } = splitHead(text);
  if (head.includes('\uE000')) return null;
  const masked = head
    .split('\n')
    .map((line) => (line.length <= MAX_LINE_CHARS ? line : ''))
    .join('\n');
  const result = forwardParser.read(masked, subject);
  if (!result.forwarded) return null;
  const from = result.email.from;
  const name = clean(from?.name);
  const address = clean(from?.address);
  return {
    from: name === null && address === null ? null : { name, address },
    date: clean(result.email.date),
    subject: clean(result.email.subject),
  };
}

function clean(v: string | null | undefined): string | null {
  if (typeof v !== 'string') return null;
  const t = v.trim();
  return t === '' ? null : t.slice(0, 998);
}
