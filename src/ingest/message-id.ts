// Message-ID handling shared by the parser and the threader.
// RFC 5322 §3.6.4: msg-id = "<" id-left "@" id-right ">". Real mail bends this constantly:
// missing brackets, comments ("<a@b> (added by list)"), ids glued together without whitespace,
// and In-Reply-To values like `Message from Bob of "Mon, 1 Jan" <a@b>`. We extract bracketed
// tokens first and only fall back to whitespace splitting when there are none.

const BRACKETED = /<([^<>]*)>/g;
/** A single id is capped so a hostile header cannot make index keys unbounded. */
const MAX_ID_LENGTH = 998;
/** References beyond this are dropped from the front (oldest): the nearest ancestors matter most. */
export const MAX_REFERENCES = 200;

/** Strips brackets and all whitespace (folding can split an id). Returns null for empty/oversized. */
export function normalizeMessageId(value: string | null | undefined): string | null {
  if (!value) return null;
  const id = value.trim().replace(/^<+/, '').replace(/>+$/, '').replace(/\s+/g, '');
  if (id.length === 0 || id.length > MAX_ID_LENGTH) return null;
  return id;
}

/** Every msg-id in a header value, normalized, deduplicated, in original order. */
export function parseMessageIdList(value: string | null | undefined): string[] {
  if (!value) return [];
  const found: string[] = [];
  for (const match of value.matchAll(BRACKETED)) {
    const id = normalizeMessageId(match[1]);
    if (id) found.push(id);
  }
  if (found.length === 0) {
    // No brackets at all: some old clients write bare ids separated by whitespace or commas.
    for (const token of value.split(/[\s,]+/)) {
      const id = token.includes('@') ? normalizeMessageId(token) : null;
      if (id) found.push(id);
    }
  }
  return dedupe(found);
}

/**
 * In-Reply-To: RFC 5322 allows several ids but clients use the first for the parent. Prefer an id
 * that looks like a msg-id (contains "@"), since free text in the header can hold bracketed junk.
 */
export function parseInReplyTo(value: string | null | undefined): string | null {
  const ids = parseMessageIdList(value);
  return ids.find((id) => id.includes('@')) ?? ids[0] ?? null;
}

export function dedupe(ids: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const id of ids) {
    if (!seen.has(id)) {
      seen.add(id);
      out.push(id);
    }
  }
  return out;
}
