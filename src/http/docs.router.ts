import { createRequire } from 'node:module';
import path from 'node:path';
import express, { type Router } from 'express';

/**
 * The API reference at /docs: Swagger UI (npm `swagger-ui-dist`, served from node_modules — no
 * CDN) rendering /openapi.json. The page carries no inline script: Swagger UI's initializer is a
 * served file, so the CSP allows scripts from this origin only.
 */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** The only files of the package that are served. */
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css',
  'swagger-ui-bundle.js': 'text/javascript',
  'favicon-32x32.png': 'image/png',
};

const INDEX = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Mailbox connector API reference</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"><link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head><body><main id="swagger-ui"></main>
<script src="/docs/assets/swagger-ui-bundle.js"></script><script src="/docs/swagger-initializer.js"></script>
</body></html>`;

// BaseLayout: no top bar with a URL box (the page renders this service's document only);
// validatorUrl null: no request to an online validator.
const INITIALIZER = `window.addEventListener('load', function () {
  window.ui = SwaggerUIBundle({
    url: '/openapi.json',
    dom_id: '#swagger-ui',
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: 'BaseLayout'
  });
});
`;

export function swaggerUiDir(): string {
  return path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
}

export function createDocsRouter(): Router {
  const dir = swaggerUiDir();
  const router = express.Router();
  router.use('/docs', (_req, res, next) => {
    res.setHeader('content-security-policy', DOCS_CSP);
    res.locals.route = '/docs';
    next();
  });
  router.get('/docs', (_req, res) => {
    res.type('html').send(INDEX);
  });
  router.get('/docs/swagger-initializer.js', (_req, res) => {
    res.locals.route = '/docs/swagger-initializer.js';
    res.type('text/javascript').send(INITIALIZER);
  });
  router.get('/docs/assets/:file', (req, res, next) => {
    const file = req.params.file;
    const type = ASSETS[file];
    if (!type) {
      next();
      return;
    }
    res.locals.route = '/docs/assets/:file';
    res.type(type);
    res.sendFile(path.join(dir, file), { maxAge: '1d', dotfiles: 'deny' }, (err) => {
      if (err) next(err);
    });
  });
  return router;
}
