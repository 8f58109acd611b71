import { z } from 'zod';
import type { TenantRepository } from '../storage/tenant.repository.js';

/**
 * Per-tenant branding of the hosted connect pages: the name the customer sees ("Connect your
 * mailbox to Acme Support" instead of "your helpdesk"), a logo and a "Contact support" link.
 *
 * These values are written by a tenant (its API key, `PATCH /v1/settings`) and rendered to the
 * tenant's customers, so they are treated as hostile input twice: checked when set (a clear 400
 * naming the field) and checked again when a page is rendered (a value stored under an older,
 * looser rule — or by a development process — is dropped, never shown). The HTML itself escapes
 * every value (src/http/pages/connect-pages.ts).
 *
 * Rules (docs/connect.md "Branding"):
 * - display name: 1–80 characters of printable text after trimming; no control, format (bidi
 *   overrides), line or paragraph separator characters — they can disguise the name.
 * - logo URL: `https://` only, ≤ 2048 characters, no user name or password, a plain host name
 *   or IPv4 address (the host is named in the pages' Content-Security-Policy `img-src`, whose
 *   grammar allows letters, digits, hyphens and dots only — so no IPv6 literal either). Outside
 *   production, `http://localhost` and `http://127.0.0.1` are allowed too, for trying it locally.
 *   The customer's browser fetches it (`referrerpolicy=no-referrer`); this service never does.
 * - support link: the same `https://` rule, or `mailto:` one address (optionally `?subject=`).
 */
export interface TenantBranding {
  displayName: string | null;
  logoUrl: string | null;
  supportUrl: string | null;
}

export const BRANDING_FIELDS = ['displayName', 'logoUrl', 'supportUrl'] as const;
export type BrandingField = (typeof BRANDING_FIELDS)[number];

export const DISPLAY_NAME_MAX = 80;
export const BRANDING_URL_MAX = 2048;

/** Where the rules differ: production allows https only; development also loopback http. */
export interface BrandingPolicy {
  production: boolean;
}

type Checked = { ok: true; value: string } | { ok: false; reason: string };

// Control (Cc), format (Cf: bidi overrides, zero-width spaces), surrogate, private-use and line /
// paragraph separators. ZWNJ/ZWJ (U+200C/U+200D) stay: scripts such as Persian and emoji need them.
const HIDDEN_CHARS = /(?![\u200C\u200D])[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Zl}\p{Zp}]/u;
// In a URL no whitespace at all: the WHATWG parser silently drops tabs/newlines and trims spaces,
// so "java\tscript:" or " https://…" would otherwise be read differently from how it looks.
const URL_FORBIDDEN_CHARS = /[\p{C}\p{Z}\s\\]/u;
// CSP host-source grammar (ALPHA / DIGIT / "-" labels) — also what a normal DNS name looks like
// after the URL parser has lowercased and punycoded it.
const HOST_LABELS = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1']);
const MAILBOX = /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/;

export function checkDisplayName(raw: string): Checked {
  const value = raw.normalize('NFC').trim();
  const length = [...value].length;
  if (length < 1 || length > DISPLAY_NAME_MAX) return { ok: false, reason: `must be 1–${DISPLAY_NAME_MAX} characters (after trimming spaces)` };
  if (HIDDEN_CHARS.test(value)) return { ok: false, reason: 'must be printable text: no control, formatting or line-break characters' };
  return { ok: true, value };
}

function checkWebUrl(raw: string, policy: BrandingPolicy): Checked {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'must be an absolute https:// URL' };
  }
  const loopbackHttp = !policy.production && url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) {
    return { ok: false, reason: `must be an https:// URL (${url.protocol} is not allowed${policy.production ? '' : '; http:// only for localhost or 127.0.0.1 outside production'})` };
  }
  if (url.username || url.password) return { ok: false, reason: 'must not contain a user name or password' };
  if (!HOST_LABELS.test(url.hostname)) return { ok: false, reason: 'must name its host with letters, digits, hyphens and dots (or an IPv4 address)' };
  return { ok: true, value: url.href };
}

function checkMailto(raw: string): Checked {
  const rest = raw.slice('mailto:'.length);
  const q = rest.indexOf('?');
  const address = q < 0 ? rest : rest.slice(0, q);
  if (!MAILBOX.test(address)) return { ok: false, reason: 'mailto: must be followed by one email address (mailto:support@example.com)' };
  if (q >= 0) {
    const params = new URLSearchParams(rest.slice(q + 1));
    if ([...params.keys()].some((k) => k !== 'subject')) return { ok: false, reason: 'mailto: allows only a ?subject= parameter' };
  }
  return { ok: true, value: `mailto:${rest}` };
}

function checkUrlShape(raw: string): Checked | undefined {
  if (raw.length > BRANDING_URL_MAX) return { ok: false, reason: `must be at most ${BRANDING_URL_MAX} characters` };
  if (URL_FORBIDDEN_CHARS.test(raw)) return { ok: false, reason: 'must not contain spaces, control characters or backslashes' };
  return undefined;
}

export function checkLogoUrl(raw: string, policy: BrandingPolicy): Checked {
  return checkUrlShape(raw) ?? checkWebUrl(raw, policy);
}

export function checkSupportUrl(raw: string, policy: BrandingPolicy): Checked {
  const shape = checkUrlShape(raw);
  if (shape) return shape;
  if (/^mailto:/i.test(raw)) return checkMailto(`mailto:${raw.slice('mailto:'.length)}`);
  return checkWebUrl(raw, policy);
}

const CHECKS: Record<BrandingField, (raw: string, policy: BrandingPolicy) => Checked> = {
  displayName: (raw) => checkDisplayName(raw),
  logoUrl: checkLogoUrl,
  supportUrl: checkSupportUrl,
};

const DESCRIPTIONS: Record<BrandingField, string> = {
  displayName: `Shown to the customer on the hosted connect pages ("Connect your mailbox to …") instead of "your helpdesk". 1–${DISPLAY_NAME_MAX} characters of printable text. null = not set.`,
  logoUrl: `Logo on the hosted connect pages: an https:// URL (≤ ${BRANDING_URL_MAX} characters, no user name or password; outside production also http://localhost or http://127.0.0.1). The customer's browser loads it without a referrer; the pages' CSP img-src allows exactly its origin. null = no logo.`,
  supportUrl: `"Contact support" link on the hosted connect pages: an https:// URL or mailto:<address> (optionally ?subject=). null = no link.`,
};

const EXAMPLES: Record<BrandingField, string> = { displayName: 'Acme Support', logoUrl: 'https://cdn.acme.example/logo.svg', supportUrl: 'mailto:help@acme.example' };

/**
 * The zod schema of one branding field as an API or ops input: a string that passes the rule
 * (the 400's `details.field` is the field's name), or null to clear it. Values are stored
 * normalized (`normalizeBranding`): trimmed name, the URL as the URL parser writes it.
 */
export function brandingFieldSchema(field: BrandingField, policy: BrandingPolicy) {
  const max = field === 'displayName' ? DISPLAY_NAME_MAX * 4 : BRANDING_URL_MAX;
  return z
    .string()
    .max(max)
    .superRefine((value, ctx) => {
      const r = CHECKS[field](value, policy);
      if (!r.ok) ctx.addIssue({ code: 'custom', message: r.reason });
    })
    .nullable()
    .meta({ description: DESCRIPTIONS[field], example: EXAMPLES[field] });
}

/** The three branding fields, each optional (absent = unchanged) and nullable (null = cleared). */
export function brandingPatchShape(policy: BrandingPolicy) {
  return {
    displayName: brandingFieldSchema('displayName', policy).optional(),
    logoUrl: brandingFieldSchema('logoUrl', policy).optional(),
    supportUrl: brandingFieldSchema('supportUrl', policy).optional(),
  };
}

/** Normalizes a patch that already passed `brandingPatchShape`: absent stays absent, null clears. */
export function normalizeBranding(patch: Partial<Record<BrandingField, string | null | undefined>>, policy: BrandingPolicy): Partial<TenantBranding> {
  const out: Partial<TenantBranding> = {};
  for (const field of BRANDING_FIELDS) {
    const raw = patch[field];
    if (raw === undefined) continue;
    if (raw === null) {
      out[field] = null;
      continue;
    }
    const r = CHECKS[field](raw, policy);
    if (!r.ok) throw new Error(`${field} was not validated`);
    out[field] = r.value;
  }
  return out;
}

/** What the hosted pages show: only values that pass today's rules; `logoOrigin` goes into the CSP. */
export interface PageBranding {
  displayName: string | null;
  logo: { url: string; origin: string } | null;
  supportUrl: string | null;
}

export const NO_BRANDING: PageBranding = { displayName: null, logo: null, supportUrl: null };

export function pageBranding(stored: TenantBranding, policy: BrandingPolicy): PageBranding {
  const ok = (field: BrandingField, value: string | null): string | null => {
    if (value === null) return null;
    const r = CHECKS[field](value, policy);
    return r.ok ? r.value : null;
  };
  const logoUrl = ok('logoUrl', stored.logoUrl);
  return {
    displayName: ok('displayName', stored.displayName),
    logo: logoUrl ? { url: logoUrl, origin: new URL(logoUrl).origin } : null,
    supportUrl: ok('supportUrl', stored.supportUrl),
  };
}

/** The branding a hosted page shows for a tenant (NO_BRANDING for an unknown one), read per page. */
export function pageBrandingLoader(tenants: Pick<TenantRepository, 'find'>, policy: BrandingPolicy): (tenantId: string) => Promise<PageBranding> {
  return async (tenantId) => {
    const tenant = await tenants.find(tenantId);
    return tenant ? pageBranding(tenant, policy) : NO_BRANDING;
  };
}
