import { Router } from 'express';
import { openApiDocument } from '../http/openapi.js';
import { operations, route } from '../http/operations.js';

/** `GET /v1/openapi.json`: public, built once on first request (browsable at /docs). */
export function openApiRoutes(): Router {
  const router = Router();
  let text: string | undefined;
  route(router, operations.openApiDocument, (_req, res) => {
    text ??= JSON.stringify(openApiDocument());
    res.type('application/json').send(text);
  });
  return router;
}
