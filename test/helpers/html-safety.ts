// What a browser would find executable (or able to load, navigate, restyle the host page or
// clobber its DOM) in an HTML fragment put into a ticket page with innerHTML. Parsed with parse5,
// the WHATWG parsing algorithm browsers implement — not with htmlparser2, which the sanitiser
// itself uses, so a parser differential (mutation XSS) shows up here as a finding.
import { parseFragment } from 'parse5';

type Node = { nodeName: string; tagName?: string; namespaceURI?: string; attrs?: Array<{ name: string; value: string }>; childNodes?: Node[]; content?: Node };

const HTML_NS = 'http://www.w3.org/1999/xhtml';

/** Elements that may appear in safeHtml at all (the sanitiser's allowlist). */
export const SAFE_ELEMENTS = new Set([
  'a', 'abbr', 'address', 'b', 'bdi', 'bdo', 'big', 'blockquote', 'br', 'caption', 'center', 'cite', 'code', 'col', 'colgroup',
  'dd', 'del', 'dfn', 'div', 'dl', 'dt', 'em', 'figcaption', 'figure', 'font', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'i', 'img',
  'ins', 'kbd', 'li', 'mark', 'ol', 'p', 'pre', 'q', 's', 'samp', 'small', 'span', 'strike', 'strong', 'sub', 'sup', 'table',
  'tbody', 'td', 'tfoot', 'th', 'thead', 'tr', 'tt', 'u', 'ul', 'var', 'wbr',
]);

/** Attributes that can run script, load something, or take part in DOM clobbering / host-page styling. */
const FORBIDDEN_ATTRIBUTES = /^(on|formaction$|action$|srcset$|srcdoc$|background$|poster$|dynsrc$|lowsrc$|ping$|xlink:|xmlns|id$|name$|class$|form$|autofocus$|tabindex$|http-equiv$|data$|code$|codebase$)/i;

/** A URL as a browser reads it: leading/trailing C0 controls and spaces stripped, tabs/newlines removed. */
function browserUrl(value: string): string {
  // eslint-disable-next-line no-control-regex -- the WHATWG URL parser strips exactly these
  return value.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
}

const LINK_SCHEMES = /^(https?:\/\/|mailto:|tel:)/i;
const IMAGE_SOURCES = /^(https?:\/\/|cid:|data:image\/(png|jpeg|jpg|gif|webp|bmp);base64,)/i;
const UNSAFE_CSS = /url\s*\(|expression\s*\(|image-set\s*\(|image\s*\(|\\|javascript:|vbscript:|behavior\s*:|-moz-binding|@import|position\s*:|z-index/i;

/** Each finding names the construct, e.g. `img[onerror]`, `a[href=javascript:…]`; empty when safe. */
export function unsafeConstructs(html: string): string[] {
  const findings: string[] = [];
  const visit = (node: Node): void => {
    if (node.tagName !== undefined) {
      const tag = node.tagName.toLowerCase();
      if (node.namespaceURI !== HTML_NS) findings.push(`${tag} (foreign namespace ${node.namespaceURI})`);
      if (!SAFE_ELEMENTS.has(tag)) findings.push(`<${tag}>`);
      for (const { name, value } of node.attrs ?? []) {
        const attr = name.toLowerCase();
        if (FORBIDDEN_ATTRIBUTES.test(attr)) findings.push(`${tag}[${attr}]`);
        if (attr === 'href' && !LINK_SCHEMES.test(browserUrl(value))) findings.push(`${tag}[href=${value.slice(0, 40)}]`);
        if (attr === 'src' && !IMAGE_SOURCES.test(browserUrl(value))) findings.push(`${tag}[src=${value.slice(0, 40)}]`);
        if ((attr === 'href' || attr === 'src') && tag !== 'a' && tag !== 'img') findings.push(`${tag}[${attr}]`);
        if (attr === 'style' && UNSAFE_CSS.test(value.replace(/\/\*[\s\S]*?\*\//g, ''))) findings.push(`${tag}[style=${value.slice(0, 60)}]`);
        if (attr === 'target' && value !== '_blank') findings.push(`${tag}[target=${value}]`);
      }
      if (tag === 'a' && node.attrs?.some((a) => a.name === 'target') && !node.attrs.some((a) => a.name === 'rel' && /\bnoopener\b/.test(a.value) && /\bnoreferrer\b/.test(a.value))) {
        findings.push('a[target] without rel="noopener noreferrer"');
      }
    }
    for (const child of node.childNodes ?? []) visit(child);
    if (node.content) visit(node.content);
  };
  visit(parseFragment(html) as unknown as Node);
  return findings;
}
