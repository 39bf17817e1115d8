import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router } from 'express';

/** The browser files stay in src/client (they are not compiled): the same path from src/ and from dist/. */
const CLIENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/client');
/** Swagger UI's prebuilt files, from its npm package (served by us: users may be on closed networks). */
const SWAGGER_UI_DIR = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

const HTML = 'text/html; charset=utf-8';
const SCRIPT = 'application/javascript; charset=utf-8';
const CSS = 'text/css; charset=utf-8';
const ICON = 'image/x-icon';

/** URL path → file under src/client (or `root`) and its type (`.cjs` has no browser type of its own). */
const FILES: Record<string, { file: string; type: string; root?: string }> = {
  '/': { file: 'demo/index.html', type: HTML },
  '/client.js': { file: 'postline-client.cjs', type: SCRIPT },
  '/demo.js': { file: 'demo/demo.js', type: SCRIPT },
  '/demo.css': { file: 'demo/demo.css', type: CSS },
  '/favicon.ico': { file: 'demo/favicon.ico', type: ICON },
  '/docs': { file: 'docs/index.html', type: HTML },
  '/docs/docs.js': { file: 'docs/docs.js', type: SCRIPT },
  '/docs/swagger-ui-bundle.js': { file: 'swagger-ui-bundle.js', type: SCRIPT, root: SWAGGER_UI_DIR },
  '/docs/swagger-ui.css': { file: 'swagger-ui.css', type: CSS, root: SWAGGER_UI_DIR },
};

/**
 * The browser client (`/client.js`), the demo chat page (`/`, `/demo.js`, `/demo.css`, `/favicon.ico`) and the
 * API viewer (`/docs`: Swagger UI on /v1/openapi.json), as
 * files (the CSP allows no inline script). The names carry no version, so browsers revalidate
 * every time (`no-cache`, answered by 304 while Last-Modified still matches) and never
 * run an old client against a new server.
 */
export function clientFileRoutes(): Router {
  const router = Router();
  for (const [urlPath, { file, type, root = CLIENT_DIR }] of Object.entries(FILES)) {
    router.get(urlPath, (_req, res, next) => {
      res.type(type);
      res.sendFile(file, { root, cacheControl: false, headers: { 'Cache-Control': 'no-cache' } }, (error) => error && next(error));
    });
  }
  return router;
}
