import express, { type Request, type Response } from 'express';
import { z } from 'zod';
import type { OrganizationInstallService } from '../../organizations/organization-install.service.js';
import { actorOf } from '../auth-context.js';
import { commonErrors, type RouteRegistry } from '../route-registry.js';
import { adminConsentPage, installClosedPage, installResultPage } from '../pages/organization-pages.js';
import { googleFormTooLargePage, googleInstalledPage, googleUploadPage, GOOGLE_UPLOAD_PATH, KEY_FILE_SCRIPT, KEY_FILE_SCRIPT_PATH } from '../pages/google-organization-pages.js';
import { brandingFor, sendHtml, type PageBrandingSource } from './connect.route.js';

const EXAMPLE = {
  id: 'oin_01JDZ8Q6T1N5V8X2K4M7P9R3SA',
  object: 'organization_install',
  provider: 'microsoft',
  status: 'active',
  statusReason: null,
  directoryId: '72f988bf-86f1-41af-91ab-2d7cd011db47',
  grantedPermissions: ['Mail.Read', 'Mail.Send'],
  mailboxCount: 2,
  accessCheck: 'restricted',
  accessCheckedAt: '2026-12-06T08:00:00.000Z',
  warnings: [],
  installedAt: '2026-12-06T07:59:30.000Z',
  uninstalledAt: null,
  createdAt: '2026-12-06T07:58:00.000Z',
} as const;

export const organizationInstallSchema = z
  .object({
    id: z.string(),
    object: z.literal('organization_install'),
    provider: z.enum(['microsoft', 'google']),
    status: z.enum(['pending', 'active', 'failed', 'uninstalled']),
    statusReason: z.string().nullable(),
    directoryId: z.string().nullable(),
    grantedPermissions: z.array(z.string()),
    mailboxCount: z.number().int(),
    accessCheck: z.enum(['unknown', 'restricted', 'unrestricted', 'failed']),
    accessCheckedAt: z.string().nullable(),
    warnings: z.array(z.string()),
    installedAt: z.string().nullable(),
    uninstalledAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .meta({
    id: 'OrganizationInstall',
    description:
      'An organization install: admin consent once for a whole organization (Microsoft: application permissions Mail.Read and Mail.Send; Google: a service account with domain-wide delegation for gmail.readonly and gmail.send, `directoryId` is the Workspace domain), then mailboxes added by address. ' +
      '`accessCheck` is the last restriction probe: `unrestricted` (warning `app_access_unrestricted`) means the app could read a mailbox it was not given.',
    example: EXAMPLE,
  });

const idParams = z.strictObject({ id: z.string().min(1).max(64) });
const mailboxParams = z.strictObject({ id: z.string().min(1).max(64), mailboxId: z.string().min(1).max(64) });
const emailField = z.string().min(3).max(320);
/** The key file as Google gives it: its JSON object, or the file's text. Checked strictly by the service. */
const serviceAccountKeyField = z
  .union([z.record(z.string(), z.unknown()), z.string().max(16_384)])
  .meta({ description: 'The service-account JSON key file (the object, or its text). Stored only encrypted; never returned.' });
const installBody = z.discriminatedUnion('provider', [
  z.strictObject({ provider: z.literal('microsoft'), probeAddress: emailField.optional() }),
  z
    .strictObject({
      provider: z.literal('google'),
      serviceAccountKey: serviceAccountKeyField.optional().meta({
        description: 'Omit it to get `consentUrl`: a hosted page where the Workspace administrator uploads the key themselves (recommended: the key never passes through your systems).',
      }),
      verifyAddress: emailField.optional().meta({ description: 'With serviceAccountKey (required then): a user of the Workspace domain; the delegation is proven with a token for it (e.g. the first mailbox you will add).' }),
      domain: z.string().min(3).max(253).optional().meta({ description: 'The Workspace domain whose mailboxes may be added (default: the domain of verifyAddress).' }),
    })
    .superRefine((b, ctx) => {
      if (b.serviceAccountKey !== undefined && b.verifyAddress === undefined) ctx.addIssue({ code: 'custom', path: ['verifyAddress'], message: 'verifyAddress is required with serviceAccountKey' });
      if (b.serviceAccountKey === undefined && b.verifyAddress !== undefined) ctx.addIssue({ code: 'custom', path: ['serviceAccountKey'], message: 'verifyAddress goes with serviceAccountKey; omit both for the hosted upload page' });
    }),
]);

/** The hosted upload form: a key (~2.3 KB, ~4 KB form-encoded), an address and the state. */
const uploadForm = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 10 });
const uploadFields = z.object({ state: z.string().max(200), serviceAccountKey: z.string().max(16_000), verifyAddress: z.string().max(320) });

function parseForm(req: Request, res: Response): Promise<unknown> {
  return new Promise((resolve, reject) => uploadForm(req, res, (err?: unknown) => (err ? reject(err as Error) : resolve(req.body))));
}

/**
 * A cross-site POST cannot know the link's state (a 256-bit secret only the page holds), so the
 * state is the form's CSRF token; a browser that says the POST came from another site or origin
 * is refused on top of that.
 */
function crossSite(req: Request): boolean {
  if (req.header('sec-fetch-site') === 'cross-site') return true;
  const origin = req.header('origin');
  return origin !== undefined && origin !== `${req.protocol}://${req.get('host') ?? ''}`;
}

/** Organization installs: the API (tenant key), the hosted consent page and the admin-consent redirect. */
export function registerOrganizationInstallRoutes(routes: RouteRegistry, deps: { installs: OrganizationInstallService; branding?: PageBrandingSource }): void {
  const { installs } = deps;
  routes.add({
    method: 'post',
    path: '/v1/organization-installs',
    operationId: 'createOrganizationInstall',
    summary: 'Start an organization install (admin consent)',
    description:
      'Microsoft: creates a pending install and returns `consentUrl`, a hosted page an administrator of the organization opens: it states what the connector reads, then sends them to Microsoft’s admin consent. ' +
      '`probeAddress` (optional): an address of the organization the app must NOT be able to read, probed after the consent to detect an unrestricted app. ' +
      'Google without a key: a pending install and `consentUrl`, a hosted page where the Workspace administrator follows the steps (service account, domain-wide delegation of exactly gmail.readonly and gmail.send, JSON key) and uploads the key; it runs the checks below and the install becomes active (single-use link, 60 minutes). ' +
      'Google with a key: `serviceAccountKey` (the JSON key of a service account the Workspace administrator delegated exactly gmail.readonly and gmail.send) and `verifyAddress`; the install is `active` at once when a delegated token for verifyAddress is issued, ' +
      'else 400 with details.reason `delegation_not_granted`, `scopes_missing`, `key_invalid`, `user_not_found`, `key_malformed` or `token_uri_not_allowed`. The key is stored encrypted and never returned.',
    tags: ['Connect'],
    auth: 'tenant',
    body: installBody,
    responses: {
      201: {
        description: 'Microsoft, and Google without a key: the pending install and its hosted page (`consentUrl`, `expiresAt`). Google with a key: the active install.',
        schema: z.object({ install: organizationInstallSchema, consentUrl: z.string().optional(), expiresAt: z.string().optional() }),
      },
      ...commonErrors,
    },
    async handler({ body, principal }) {
      if (body.provider === 'google' && body.serviceAccountKey === undefined) {
        const r = await installs.start(principal.tenantId, { provider: 'google', domain: body.domain }, actorOf(principal));
        return { status: 201, body: { install: r.install, consentUrl: r.consentUrl, expiresAt: r.expiresAt.toISOString() } };
      }
      if (body.provider === 'google') {
        const install = await installs.installGoogle(principal.tenantId, { serviceAccountKey: body.serviceAccountKey, verifyAddress: body.verifyAddress!, domain: body.domain }, actorOf(principal));
        return { status: 201, body: { install } };
      }
      const r = await installs.start(principal.tenantId, { provider: body.provider, ...(body.probeAddress ? { probeAddress: body.probeAddress } : {}) }, actorOf(principal));
      return { status: 201, body: { install: r.install, consentUrl: r.consentUrl, expiresAt: r.expiresAt.toISOString() } };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/organization-installs',
    operationId: 'listOrganizationInstalls',
    summary: 'List the tenant’s organization installs',
    description: 'Every organization install of the tenant, newest first (at most 100).',
    tags: ['Connect'],
    auth: 'tenant',
    responses: { 200: { description: 'The installs', schema: z.object({ object: z.literal('list'), data: z.array(organizationInstallSchema) }) }, ...commonErrors },
    async handler({ principal }) {
      return { status: 200, body: { object: 'list', data: await installs.list(principal.tenantId) } };
    },
  });

  routes.add({
    method: 'get',
    path: '/v1/organization-installs/:id',
    operationId: 'getOrganizationInstall',
    summary: 'Get one organization install',
    description: 'The install’s status, the directory and permissions the consent granted, how many mailboxes it has, and the last restriction probe with its warnings.',
    tags: ['Connect'],
    auth: 'tenant',
    params: idParams,
    responses: { 200: { description: 'The install', schema: organizationInstallSchema }, ...commonErrors },
    async handler({ params, principal }) {
      return { status: 200, body: await installs.get(principal.tenantId, params.id) };
    },
  });

  routes.add({
    method: 'delete',
    path: '/v1/organization-installs/:id',
    operationId: 'uninstallOrganization',
    summary: 'Uninstall: remove every mailbox of the install',
    description:
      'The install becomes `uninstalled` and every one of its mailboxes is disconnected and purged as `DELETE /v1/mailboxes/{id}` does (one purge receipt each; subscriptions deleted). ' +
      'The admin consent itself stays in the organization until its administrator removes the app (docs/connect.md).',
    tags: ['Connect'],
    auth: 'tenant',
    params: idParams,
    responses: { 202: { description: 'Purges started', schema: z.object({ purgeIds: z.array(z.string()) }) }, ...commonErrors },
    async handler({ params, principal }) {
      return { status: 202, body: await installs.uninstall(principal.tenantId, params.id, actorOf(principal)) };
    },
  });

  routes.add({
    method: 'post',
    path: '/v1/organization-installs/:id/mailboxes',
    operationId: 'addOrganizationMailbox',
    summary: 'Add a mailbox to the install by address',
    description:
      'Adds a user or shared mailbox of the organization. The connector reads only mailboxes added here. The app must be able to read it now: ' +
      'a mailbox the organization’s application access policy excludes is refused (`bad_request`, details.reason `mailbox_not_accessible`). The mailbox syncs and gets a push subscription like any other.',
    tags: ['Connect'],
    auth: 'tenant',
    params: idParams,
    body: z.strictObject({ address: emailField }),
    responses: { 201: { description: 'The new mailbox', schema: z.object({ mailboxId: z.string() }) }, ...commonErrors },
    async handler({ params, body, principal }) {
      const r = await installs.addMailbox(principal.tenantId, params.id, body.address, actorOf(principal));
      return { status: 201, body: r, headers: { location: `/v1/mailboxes/${r.mailboxId}` } };
    },
  });

  routes.add({
    method: 'delete',
    path: '/v1/organization-installs/:id/mailboxes/:mailboxId',
    operationId: 'removeOrganizationMailbox',
    summary: 'Remove one mailbox from the install',
    description: 'Disconnects and purges the mailbox as `DELETE /v1/mailboxes/{id}` does (its subscription is deleted first). Audited as `organization_install.mailbox_removed`.',
    tags: ['Connect'],
    auth: 'tenant',
    params: mailboxParams,
    responses: { 202: { description: 'Purge started', schema: z.object({ purgeId: z.string() }) }, ...commonErrors },
    async handler({ params, principal }) {
      const r = await installs.removeMailbox(principal.tenantId, params.id, params.mailboxId, actorOf(principal));
      return { status: 202, body: r, headers: { location: `/v1/purges/${r.purgeId}` } };
    },
  });

  routes.add({
    method: 'put',
    path: '/v1/organization-installs/:id/service-account-key',
    operationId: 'rotateOrganizationServiceAccountKey',
    summary: 'Rotate a Google install’s service-account key',
    description:
      'Replaces the stored key with a new key of the same service account once a delegated token for `verifyAddress` (a user of the install’s domain) is issued with it. Delete the old key in Google Cloud afterwards. Audited as `organization_install.key_rotated`.',
    tags: ['Connect'],
    auth: 'tenant',
    params: idParams,
    body: z.strictObject({ serviceAccountKey: serviceAccountKeyField, verifyAddress: emailField }),
    responses: { 200: { description: 'The install', schema: organizationInstallSchema }, ...commonErrors },
    async handler({ params, body, principal }) {
      return { status: 200, body: await installs.rotateGoogleKey(principal.tenantId, params.id, body, actorOf(principal)) };
    },
  });

  routes.add({
    method: 'post',
    path: '/v1/organization-installs/:id/access-check',
    operationId: 'checkOrganizationAccess',
    summary: 'Probe whether the app can read a mailbox it was not given',
    description:
      'Reads the inbox folder’s metadata (never a message) of `probeAddress` — or the stored probe address — with the install’s app-only token. ' +
      'Readable: `accessCheck` `unrestricted` and warning `app_access_unrestricted` (restrict the app with an Exchange application access policy); refused: `restricted`. Audited.',
    tags: ['Connect'],
    auth: 'tenant',
    params: idParams,
    body: z.strictObject({ probeAddress: emailField.optional() }),
    responses: { 200: { description: 'The install with the probe’s verdict', schema: organizationInstallSchema }, ...commonErrors },
    async handler({ params, body, principal }) {
      return { status: 200, body: await installs.checkAccess(principal.tenantId, params.id, body.probeAddress, actorOf(principal)) };
    },
  });

  routes.add({
    method: 'get',
    path: '/organization-install/microsoft',
    operationId: 'organizationInstallPage',
    summary: 'Hosted admin-consent page (HTML, no API key)',
    description: 'The page an organization’s administrator opens from `consentUrl`: what the connector will read (only mailboxes added by address), then a button to Microsoft’s admin consent.',
    tags: ['Connect'],
    auth: 'none',
    query: z.object({ state: z.string().min(10).max(200) }),
    responses: { 200: { description: 'Consent page (HTML)', contentType: 'text/html' }, 404: { description: 'Unknown or expired link (HTML)' } },
    async handler({ query, res }) {
      const page = await installs.consentPage(query.state);
      if (!page) return sendHtml(res, 404, installClosedPage());
      return sendHtml(res, 200, adminConsentPage(page.continueUrl, await brandingFor(res, deps.branding, page.tenantId)));
    },
  });

  routes.add({
    method: 'get',
    path: GOOGLE_UPLOAD_PATH,
    operationId: 'googleOrganizationInstallPage',
    summary: 'Hosted Google Workspace key-upload page (HTML, no API key)',
    description:
      'The page a Workspace administrator opens from `consentUrl`: what the connector reads (only mailboxes added by address), the steps to create a service account, delegate exactly gmail.readonly and gmail.send domain-wide and create a JSON key, and the form that uploads it.',
    tags: ['Connect'],
    auth: 'none',
    query: z.object({ state: z.string().min(10).max(200) }),
    responses: { 200: { description: 'Upload page (HTML)', contentType: 'text/html' }, 404: { description: 'Unknown, used or expired link (HTML)' } },
    async handler({ query, res }) {
      const page = await installs.googleUploadPage(query.state);
      if (!page) return sendHtml(res, 404, installClosedPage());
      // Same-origin: the form's POST carries this origin (under no-referrer Chromium sends `Origin: null`).
      res.setHeader('referrer-policy', 'same-origin');
      return sendHtml(res, 200, googleUploadPage({ state: query.state, domain: page.domain }, await brandingFor(res, deps.branding, page.tenantId)));
    },
  });

  routes.add({
    method: 'get',
    path: KEY_FILE_SCRIPT_PATH,
    operationId: 'googleOrganizationKeyFileScript',
    summary: 'Script of the hosted Google key-upload page (JavaScript, no API key)',
    description: 'Reads the key file the administrator chooses, in the browser, into the page’s key field. Served as a file so the page’s CSP needs no inline script.',
    tags: ['Connect'],
    auth: 'none',
    responses: { 200: { description: 'JavaScript', contentType: 'text/javascript' } },
    async handler({ res }) {
      res.status(200).setHeader('cache-control', 'public, max-age=3600').type('text/javascript').send(KEY_FILE_SCRIPT);
      return { handled: true };
    },
  });

  routes.add({
    method: 'post',
    path: GOOGLE_UPLOAD_PATH,
    operationId: 'googleOrganizationInstallUpload',
    summary: 'Upload form of the hosted Google Workspace page (HTML, no API key)',
    description:
      'Form fields `state`, `serviceAccountKey` (the JSON key file’s text) and `verifyAddress` (at most 16 KB). Runs the same checks as `POST /v1/organization-installs` with a key. ' +
      'Installed: the install is active and the link is spent (200). Refused: the reason in plain words and the form again while the link is valid; the install stays pending (400). The key is stored only encrypted and never shown again.',
    tags: ['Connect'],
    auth: 'none',
    bodyContentType: 'application/x-www-form-urlencoded',
    body: z.custom<Request>(),
    responses: {
      200: { description: 'Installed (HTML)', contentType: 'text/html' },
      400: { description: 'Refused: the reason and the form again (HTML)', contentType: 'text/html' },
      403: { description: 'Posted from another site (HTML)', contentType: 'text/html' },
      404: { description: 'Unknown, used or expired link (HTML)', contentType: 'text/html' },
      413: { description: 'Form larger than 16 KB (HTML)', contentType: 'text/html' },
    },
    async handler({ req, res }) {
      res.setHeader('referrer-policy', 'same-origin');
      if (crossSite(req)) return sendHtml(res, 403, installClosedPage());
      let raw: unknown;
      try {
        raw = await parseForm(req, res);
      } catch (err) {
        const status = (err as { status?: number }).status === 413 ? 413 : 400;
        return sendHtml(res, status, googleFormTooLargePage());
      }
      const form = uploadFields.safeParse(raw);
      if (!form.success) return sendHtml(res, 404, installClosedPage());
      const { state, serviceAccountKey, verifyAddress } = form.data;
      const outcome = await installs.completeGoogleUpload(state, { serviceAccountKey, verifyAddress });
      if (outcome.kind === 'closed') return sendHtml(res, 404, installClosedPage());
      const branding = await brandingFor(res, deps.branding, outcome.tenantId);
      if (outcome.kind === 'installed') return sendHtml(res, 200, googleInstalledPage(outcome.install.directoryId, branding));
      return sendHtml(res, 400, googleUploadPage({ state, domain: outcome.domain, verifyAddress, error: { reason: outcome.reason, message: outcome.message } }, branding));
    },
  });

  routes.add({
    method: 'get',
    path: '/oauth/microsoft/admin-consent',
    operationId: 'microsoftAdminConsentCallback',
    summary: 'Admin-consent redirect URI for Microsoft (HTML, no API key)',
    description:
      'Where Microsoft sends the administrator back, twice: after their sign-in (`code`, `state`: the ID token is verified and they are redirected to the admin consent of their directory) and after the admin consent (`admin_consent`, `tenant`, `state` or `error`; `tenant` must be the signed-in directory). The install becomes active only once an app-only token for that tenant is issued with Mail.Read and Mail.Send. Register this URL on the Entra app.',
    tags: ['Connect'],
    auth: 'none',
    query: z.object({
      state: z.string().max(200).optional(),
      code: z.string().max(4096).optional(),
      client_info: z.string().max(2048).optional(),
      session_state: z.string().max(200).optional(),
      admin_consent: z.string().max(10).optional(),
      tenant: z.string().max(100).optional(),
      scope: z.string().max(2000).optional(),
      error: z.string().max(200).optional(),
      error_description: z.string().max(2000).optional(),
    }),
    responses: { 200: { description: 'Installed (HTML)', contentType: 'text/html' }, 302: { description: 'Signed in: on to Microsoft’s admin consent' }, 400: { description: 'Not installed (HTML)' } },
    async handler({ query, res }) {
      const outcome = await installs.callback(query);
      if (outcome.kind === 'redirect') {
        res.setHeader('cache-control', 'no-store');
        res.redirect(302, outcome.url);
        return { handled: true };
      }
      return sendHtml(res, outcome.kind === 'installed' ? 200 : 400, installResultPage(outcome, await brandingFor(res, deps.branding, outcome.tenantId)));
    },
  });
}
