import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router } from 'express';

/** The browser files stay in src/client (they are not compiled): the same path from src/ and from dist/. */
const CLIENT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/client');

/** URL path → file under src/client and its type (`.cjs` has no browser type of its own). */
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'demo/index.html', type: 'text/html; charset=utf-8' },
  '/client.js': { file: 'postline-client.cjs', type: 'application/javascript; charset=utf-8' },
  '/demo.js': { file: 'demo/demo.js', type: 'application/javascript; charset=utf-8' },
  '/demo.css': { file: 'demo/demo.css', type: 'text/css; charset=utf-8' },
};

/**
 * The browser client (`/client.js`) and the demo chat page (`/`, `/demo.js`, `/demo.css`), as
 * files (the CSP allows no inline script). The names carry no version, so browsers revalidate
 * every time (`no-cache`, answered by 304 while Last-Modified still matches) and never
 * run an old client against a new server.
 */
export function clientFileRoutes(): Router {
  const router = Router();
  for (const [urlPath, { file, type }] of Object.entries(FILES)) {
    router.get(urlPath, (_req, res, next) => {
      res.type(type);
      res.sendFile(file, { root: CLIENT_DIR, cacheControl: false, headers: { 'Cache-Control': 'no-cache' } }, (error) => error && next(error));
    });
  }
  return router;
}
