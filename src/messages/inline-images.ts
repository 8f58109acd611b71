/**
 * `cid:` references (RFC 2392) in a message's HTML rewritten to URLs of the message's own
 * attachments. Only a reference whose Content-ID is one of `byContentId`'s keys is rewritten; any
 * other `cid:` (a part that was not kept, another message's) is left as it is.
 *
 * Works on the raw `html` (attribute values quoted or not) and on `safeHtml` (canonical, `&`
 * escaped as `&amp;`): a reference ends at whitespace, a quote, `<`, `>`, `(` or `)`.
 */
const CID_REF = /\bcid:([^\s"'<>()]+)/gi;

export function rewriteCidUrls(html: string, byContentId: ReadonlyMap<string, string>): string {
  if (byContentId.size === 0) return html;
  const lower = new Map<string, string>();
  for (const [cid, url] of byContentId) lower.set(cid.toLowerCase(), url);
  return html.replace(CID_REF, (whole, ref: string) => {
    const id = decodeRef(ref);
    const url = byContentId.get(id) ?? lower.get(id.toLowerCase());
    return url ?? whole;
  });
}

/** The Content-ID a `cid:` URL names: percent-decoded (RFC 2392), `&amp;` unescaped, no angle brackets. */
function decodeRef(ref: string): string {
  let id = ref.replace(/&amp;/g, '&');
  try {
    id = decodeURIComponent(id);
  } catch {
    // Not valid percent-encoding: compare it as written.
  }
  return id.replace(/^<|>$/g, '');
}

/** The key Content-IDs are compared by: without angle brackets (the parser already strips them). */
export function contentIdKey(contentId: string): string {
  return contentId.trim().replace(/^<|>$/g, '');
}
