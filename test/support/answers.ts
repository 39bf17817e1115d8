import { writeFileSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';

/** One answer a test instance gave: what the OpenAPI conformance check (support/conformance.ts) looks at. */
export interface RecordedAnswer {
  method: string;
  url: string;
  status: number;
  contentType: string | undefined;
  /** The body of a JSON answer (problem+json included), when it was not too large to keep. */
  body?: string;
}

const MAX_BODY = 256 * 1024;
const JSON_TYPE = /^application\/(problem\+)?json/;
const recorded: RecordedAnswer[] = [];
let flushAtExit = false;

/**
 * Record every answer `server` gives, for the check that runs after the suite (test/run.ts sets
 * POSTLINE_TEST_ANSWERS_DIR; without it, nothing is recorded). The answers are written once, when
 * the test file's process exits. Only the test instances do this: product code has no hook for it.
 */
export function recordAnswers(server: http.Server): void {
  const folder = process.env.POSTLINE_TEST_ANSWERS_DIR;
  if (!folder) return;
  if (!flushAtExit) process.once('exit', flush);
  flushAtExit = true;
  // First in line, so a handler that answers synchronously is seen too; req.url is still the original.
  server.prependListener('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? '';
    const chunks: Buffer[] = [];
    let size = 0;
    // Headers handed to writeHead whole (the lean delivery path does) are not kept by the response.
    let headContentType: string | undefined;
    const contentType = () => headContentType ?? res.getHeader('content-type')?.toString();
    const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => http.ServerResponse;
    res.writeHead = ((...args: unknown[]) => {
      const headers = args.find((arg) => typeof arg === 'object' && arg !== null && !Array.isArray(arg)) as http.OutgoingHttpHeaders | undefined;
      const given = Object.entries(headers ?? {}).find(([name]) => name.toLowerCase() === 'content-type')?.[1];
      if (given !== undefined) headContentType = String(given);
      return writeHead(...args);
    }) as typeof res.writeHead;
    const keep = (chunk: unknown) => {
      if (chunk === undefined || chunk === null || typeof chunk === 'function') return;
      if (!JSON_TYPE.test(contentType() ?? '')) return;
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += buffer.length;
      if (size <= MAX_BODY) chunks.push(buffer);
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse;
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      keep(chunk);
      return write(chunk, ...rest);
    }) as typeof res.write;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      keep(chunk);
      return end(chunk, ...rest);
    }) as typeof res.end;
    res.once('close', () => {
      if (!res.headersSent) return; // the client left before any answer
      recorded.push({
        method: req.method ?? '',
        url,
        status: res.statusCode,
        contentType: contentType(),
        ...(chunks.length > 0 && size <= MAX_BODY && { body: Buffer.concat(chunks).toString('utf8') }),
      });
    });
  });
}

/** The answers this process recorded so far (for the test that the recording sees every path). */
export const recordedAnswers = (): readonly RecordedAnswer[] => recorded;

function flush(): void {
  const folder = process.env.POSTLINE_TEST_ANSWERS_DIR;
  if (!folder || recorded.length === 0) return;
  writeFileSync(path.join(folder, `answers-${process.pid}.ndjson`), recorded.map((answer) => JSON.stringify(answer)).join('\n') + '\n');
}
