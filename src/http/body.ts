import express, { type RequestHandler } from 'express';
import { BadRequestProblem, UnsupportedMediaTypeProblem } from '../errors.js';

export const BODY_LIMIT_BYTES = 64 * 1024;

const JSON_TYPES = ['application/json', 'application/*+json'];
const FORM_TYPE = 'application/x-www-form-urlencoded';
/** Old IE's XDomainRequest can only send text/plain, so such a body holding JSON is accepted. */
const TEXT_TYPE = 'text/plain';

const parseJson = express.json({ limit: BODY_LIMIT_BYTES, type: JSON_TYPES });
const parseForm = express.urlencoded({ limit: BODY_LIMIT_BYTES, type: FORM_TYPE, extended: false, parameterLimit: 200 });
const parseText = express.text({ limit: BODY_LIMIT_BYTES, type: TEXT_TYPE });

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
 * Parse POST bodies: JSON, form-encoded, or text/plain holding JSON, at most 64 KiB; anything
 * else is 415. A missing body is an empty object. The body must be an object.
 */
export function parseBodies(): RequestHandler[] {
  const requireKnownType: RequestHandler = (req, _res, next) => {
    // req.is() answers null without a body and false for a body of another type.
    if (req.method === 'POST' && req.is([...JSON_TYPES, FORM_TYPE, TEXT_TYPE]) === false) {
      throw new UnsupportedMediaTypeProblem();
    }
    next();
  };
  const requireObject: RequestHandler = (req, _res, next) => {
    if (req.method !== 'POST') return next();
    req.body ??= {};
    if (!isPlainObject(req.body)) throw new BadRequestProblem('The request body must be a JSON object.');
    next();
  };
  return [requireKnownType, parseJson, parseForm, parseText, textAsJson, requireObject, takeBodyToken];
}
