import sanitizeHtml from 'sanitize-html';

/**
 * `safeHtml`: the sender's HTML reduced to what a ticket view can put into its own page.
 *
 * An allowlist (sanitize-html, which parses with htmlparser2 and re-serialises every kept node
 * itself, so the output is canonical: attribute values double-quoted, `<`, `>`, `&`, `"` escaped):
 * - only formatting, text, list, table, link and image elements; scripts, styles, forms,
 *   frames, object/embed, svg/math, meta/base/link and anything unknown are dropped (the text of
 *   script, style, title, textarea, noscript and the raw-text elements with it);
 * - no event handlers, ids, names or classes (no DOM clobbering, no borrowing the host page's CSS);
 * - links: absolute http(s), mailto and tel only, opened in a new tab with
 *   `rel="noopener noreferrer"`; images: http(s), `cid:` (inline parts) and `data:` raster
 *   images only (no svg). Relative URLs are dropped too: in the ticket service's page they
 *   would point at the ticket service itself (a GET on its own origin with the agent's cookies);
 * - inline `style` keeps a fixed list of layout and typography properties whose values are
 *   plain tokens, colours and lengths: no `url()`, `expression()`, escapes, `position`, or
 *   anything that could load a resource or lay itself over the host page.
 * `<style>` elements are removed: their rules would restyle the whole ticket page.
 */
const TAGS = [
  'a', 'abbr', 'address', 'b', 'bdi', 'bdo', 'big', 'blockquote', 'br', 'caption', 'center', 'cite', 'code', 'col', 'colgroup',
  'dd', 'del', 'dfn', 'div', 'dl', 'dt', 'em', 'figcaption', 'figure', 'font', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img',
  'ins', 'kbd', 'li', 'mark', 'ol', 'p', 'pre', 'q', 's', 'samp', 'small', 'span', 'strike', 'strong', 'sub', 'sup', 'table',
  'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'tt', 'u', 'ul', 'var', 'wbr',
];

const CELL = ['colspan', 'rowspan', 'nowrap', 'scope'];
const ATTRIBUTES: Record<string, string[]> = {
  '*': ['style', 'dir', 'lang', 'title', 'align', 'valign', 'width', 'height', 'bgcolor'],
  a: ['href', 'target', 'rel'],
  img: ['src', 'alt', 'border', 'data-blocked-src'],
  font: ['color', 'face', 'size'],
  table: ['border', 'cellpadding', 'cellspacing'],
  td: CELL,
  th: CELL,
  col: ['span'],
  colgroup: ['span'],
  ol: ['start', 'type', 'reversed'],
  ul: ['type'],
  li: ['value'],
};

/**
 * A CSS value made of words, numbers, units, `#colours`, quotes, commas, `!important` and only
 * the functions rgb/rgba/hsl/hsla/calc — no `url(`, `expression(`, `image-set(`, `var(`, no
 * backslash escapes (`\75 rl(` is `url(`), no colon (no scheme), no `;{}<>`.
 */
const SAFE_CSS_VALUE = /^(?:[-\p{L}\p{N}\s#%.,!'"/+*_]|\b(?:rgba?|hsla?|calc)\(|\))*$/u;
const STYLE_PROPERTIES = [
  // `background` for its colour (Outlook highlights): a url() in it fails SAFE_CSS_VALUE.
  'color', 'background', 'background-color', 'font', 'font-family', 'font-size', 'font-style', 'font-weight', 'font-variant', 'line-height',
  'letter-spacing', 'word-spacing', 'word-break', 'word-wrap', 'overflow-wrap', 'white-space', 'text-align', 'text-decoration',
  'text-indent', 'text-transform', 'vertical-align', 'direction', 'unicode-bidi',
  'margin', 'margin-top', 'margin-right', 'margin-bottom', 'margin-left',
  'padding', 'padding-top', 'padding-right', 'padding-bottom', 'padding-left',
  'border', 'border-top', 'border-right', 'border-bottom', 'border-left', 'border-color', 'border-style', 'border-width',
  ...['top', 'right', 'bottom', 'left'].flatMap((side) => ['color', 'style', 'width'].map((what) => `border-${side}-${what}`)),
  'border-radius', 'border-collapse', 'border-spacing',
  'width', 'height', 'min-width', 'max-width', 'min-height', 'max-height',
  'display', 'float', 'clear', 'list-style-type', 'table-layout', 'caption-side', 'empty-cells', 'overflow',
];
const STYLES: sanitizeHtml.IOptions['allowedStyles'] = {
  '*': Object.fromEntries(STYLE_PROPERTIES.map((p) => [p, [SAFE_CSS_VALUE]])),
};

const LINK_URL = /^(?:https?:\/\/|mailto:|tel:)/i;
const IMAGE_URL = /^(?:https?:\/\/|cid:|data:image\/(?:png|jpeg|jpg|gif|webp|bmp);base64,[a-z0-9+/=\s]*$)/i;

const OPTIONS: sanitizeHtml.IOptions = {
  allowedTags: TAGS,
  allowedAttributes: ATTRIBUTES,
  allowedStyles: STYLES,
  allowedSchemes: ['http', 'https', 'mailto', 'tel'],
  allowedSchemesByTag: { img: ['http', 'https', 'cid', 'data'] },
  allowedSchemesAppliedToAttributes: ['href', 'src', 'cite', 'action', 'background', 'poster', 'srcset'],
  allowProtocolRelative: false,
  allowVulnerableTags: false,
  disallowedTagsMode: 'discard',
  // Text of these is not content a reader should see (and in a browser some are raw text).
  nonTextTags: ['script', 'style', 'textarea', 'option', 'noscript', 'title', 'xmp', 'noembed', 'noframes', 'iframe', 'plaintext', 'template', 'object', 'svg', 'math'],
  transformTags: {
    a: (tagName, attribs) => {
      const { href, title, style, dir, lang } = attribs;
      const out: Record<string, string> = { ...pick({ title, style, dir, lang }) };
      if (href !== undefined && LINK_URL.test(href.trim())) {
        out.href = href.trim();
        out.target = '_blank';
        out.rel = 'noopener noreferrer';
      }
      return { tagName, attribs: out };
    },
    img: (tagName, attribs) => {
      const { src, ...rest } = attribs;
      // A sender cannot pre-mark an image as blocked (that marker is ours, see blockRemoteImages).
      delete rest['data-blocked-src'];
      const out: Record<string, string> = { ...rest };
      if (src !== undefined && IMAGE_URL.test(src.trim())) out.src = src.trim();
      return { tagName, attribs: out };
    },
  },
};

function pick(o: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** The sanitised form of a message's HTML (null stays null). Pure and deterministic. */
export function sanitizeEmailHtml(html: string | null): string | null {
  if (html === null) return null;
  return sanitizeHtml(html, OPTIONS);
}

/** `<img …>` tags of sanitizeEmailHtml's canonical output (attribute values never hold a raw `>`). */
const IMG_TAG = /<img\b[^>]*>/g;
const REMOTE_SRC = / src="(https?:\/\/[^"]*)"/i;

/**
 * Remote images (tracking pixels) of a sanitised HTML turned off: `src="https://…"` becomes
 * `data-blocked-src="https://…"` (a viewer can offer "show images"); inline (`cid:`) and `data:`
 * images stay. Works on sanitizeEmailHtml's output only — it relies on its canonical
 * serialisation, and on styles never holding `url()` — which is why it is cheap enough to apply
 * per read: one linear pass, no parse.
 */
export function blockRemoteImages(safeHtml: string): string {
  return safeHtml.replace(IMG_TAG, (tag) => tag.replace(REMOTE_SRC, ' data-blocked-src="$1"'));
}
