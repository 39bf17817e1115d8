import { isUtf8 } from 'node:buffer';
import express, { type Request, type RequestHandler } from 'express';
import { BadRequestProblem, UnsupportedMediaTypeProblem } from '../errors.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

const JSON_TYPES = ['application/json', 'application/*+json'];
const FORM_TYPE = 'application/x-www-form-urlencoded';
/** Old IE's XDomainRequest can only send text/plain, so such a body holding JSON is accepted. */
const TEXT_TYPE = 'text/plain';
/** The methods whose bodies are held to these rules (a reaction's PUT has none, which is fine). */
const WITH_BODY = new Set(['POST', 'PATCH', 'PUT']);

/**
 * A body of the wrong type: POST as ever, unless it says it is empty (`Content-Length: 0`, as
 * clients send for POSTs without a body: accept, block); PATCH and PUT only when they carry
 * content at all.
 */
function hasUnknownType(req: Request): boolean {
  if (!WITH_BODY.has(req.method)) return false;
  const length = req.get('Content-Length');
  const content = (req.method === 'POST' && length !== '0') || Number(length) > 0 || req.get('Transfer-Encoding') !== undefined;
  return content && req.is([...JSON_TYPES, FORM_TYPE, TEXT_TYPE]) === false;
}

/**
 * Decoding would silently turn invalid UTF-8 into U+FFFD and store the damage; refuse it instead
 * (body-parser reports the throw as 'entity.verify.failed', answered 400 by http/problem.ts).
 */
function requireUtf8(_req: unknown, _res: unknown, body: Buffer): void {
  if (!isUtf8(body)) throw new Error('The body is not valid UTF-8.');
}

const parseJson = express.json({ limit: BODY_LIMIT_BYTES, type: JSON_TYPES, verify: requireUtf8 });
const parseForm = express.urlencoded({ limit: BODY_LIMIT_BYTES, type: FORM_TYPE, extended: false, parameterLimit: 200, verify: requireUtf8 });
const parseText = express.text({ limit: BODY_LIMIT_BYTES, type: TEXT_TYPE, verify: requireUtf8 });

/** A charset declared in the Content-Type, lowercased, if any. */
function declaredCharset(contentType: string | undefined): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(contentType ?? '')?.[1]?.toLowerCase();
}

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Turn a text/plain body into the JSON object it must hold. */
const textAsJson: RequestHandler = (req, _res, next) => {
  if (typeof req.body !== 'string') return next();
  try {
    req.body = JSON.parse(req.body);
  } catch {
    throw new BadRequestProblem('The text/plain body must hold a JSON object.');
  }
  next();
};

/**
 * `curl -d '{"body":"hi"}'` sends JSON typed as a form, which parses as one odd field name: say
 * which header to set rather than that every field is missing.
 */
const refuseJsonAsForm: RequestHandler = (req, _res, next) => {
  const firstField = isPlainObject(req.body) ? Object.keys(req.body)[0] : undefined;
  if (firstField !== undefined && /^\s*[[{]/.test(firstField) && req.is(FORM_TYPE)) {
    throw new UnsupportedMediaTypeProblem(
      'The body looks like JSON but is sent as application/x-www-form-urlencoded (what curl -d sends): add -H "Content-Type: application/json".',
    );
  }
  next();
};

/**
 * Move an `access_token` field out of the body (XDomainRequest cannot send headers), so that it
 * is never validated, stored or logged as data.
 */
const takeBodyToken: RequestHandler = (req, _res, next) => {
  if (req.method !== 'POST') return next();
  const body = req.body as Record<string, unknown>;
  if (typeof body.access_token === 'string') req.bodyAccessToken = body.access_token;
  delete body.access_token;
  next();
};

/**
 * Parse POST, PATCH and PUT bodies: JSON, form-encoded, or text/plain holding JSON, in UTF-8, at
 * most 64 KiB; another type or charset is 415 (so is JSON sent as a form). A missing body is an empty object. The body must
 * be an object.
 */
export function parseBodies(): RequestHandler[] {
  const requireKnownType: RequestHandler = (req, _res, next) => {
    // req.is() answers null without a body and false for a body of another type.
    if (hasUnknownType(req)) {
      throw new UnsupportedMediaTypeProblem();
    }
    const charset = declaredCharset(req.get('Content-Type'));
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') throw new UnsupportedMediaTypeProblem('Send the body in UTF-8.');
    next();
  };
  const requireObject: RequestHandler = (req, _res, next) => {
    if (!WITH_BODY.has(req.method)) return next();
    req.body ??= {};
    if (!isPlainObject(req.body)) throw new BadRequestProblem('The request body must be a JSON object.');
    next();
  };
  return [requireKnownType, parseJson, parseForm, refuseJsonAsForm, parseText, textAsJson, requireObject, takeBodyToken];
}
