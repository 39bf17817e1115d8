import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import { parse } from 'acorn';
import request from 'supertest';
import { useInstances } from './support/fixture.js';

const t = useInstances();

/** Parse as ES5 with a real parser: any later syntax (let, arrows, classes, template strings…) throws. */
function assertEs5(source: string, name: string): void {
  assert.doesNotThrow(() => parse(source, { ecmaVersion: 5, sourceType: 'script' }), `${name} is ES5`);
}

describe('the browser files', () => {
  test('GET /client.js and /demo.js serve ES5 scripts', async () => {
    for (const path of ['/client.js', '/demo.js']) {
      const res = await request(t.app.url).get(path).expect(200);
      assert.match(res.headers['content-type'] ?? '', /^application\/javascript; charset=utf-8/, path);
      assertEs5(res.text, path);
    }
  });

  test('the ES5 check catches later syntax', () => {
    assert.throws(() => parse('let x = () => 1;', { ecmaVersion: 5 }));
  });

  test('/ is the demo page: scripts only as files (the CSP forbids inline ones), no-cache, 304 while unchanged', async () => {
    const res = await request(t.app.url).get('/').expect(200);
    assert.match(res.headers['content-type'] ?? '', /^text\/html/);
    assert.match(res.headers['content-security-policy'] ?? '', /script-src 'self'/);
    const scripts = [...res.text.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    assert.deepEqual(scripts.map((match) => match[1]!.trim()), ['src="/client.js"', 'src="/demo.js"']);
    assert.ok(scripts.every((match) => match[2]!.trim() === ''), 'no inline script');
    assert.ok(!/\son[a-z]+=/i.test(res.text), 'no inline event handlers');
    assert.equal(res.headers['cache-control'], 'no-cache');
    const lastModified = res.headers['last-modified'];
    assert.ok(lastModified);
    await request(t.app.url).get('/').set('If-Modified-Since', lastModified).expect(304);
    const css = await request(t.app.url).get('/demo.css').expect(200);
    assert.match(css.headers['content-type'] ?? '', /^text\/css/);
    // Browsers ask for /favicon.ico on every load: it is there, not a 404.
    assert.match(res.text, /<link rel="icon" href="\/favicon\.ico"/);
    const icon = await request(t.app.url).get('/favicon.ico').expect(200);
    assert.equal(icon.headers['content-type'], 'image/x-icon');
    assert.deepEqual([...icon.body.subarray(0, 4)], [0, 0, 1, 0], 'an ICO file');
  });

  test('the API is unchanged: /v1 answers stay no-store problem+json', async () => {
    const res = await request(t.app.url).get('/v1/client.js').expect(401);
    assert.match(res.headers['content-type'] ?? '', /problem\+json/);
    await request(t.app.url).get('/client.js/x').expect(404);
  });
});

describe('the client module', () => {
  test('loads under CommonJS and ESM as the same UMD object', async () => {
    const viaRequire = createRequire(import.meta.url)('../src/client/postline-client.cjs');
    const viaImport = (await import('../src/client/postline-client.cjs')).default;
    assert.equal(viaImport, viaRequire);
    assert.equal(typeof viaRequire.Client, 'function');
    const client = new viaRequire.Client({ baseUrl: 'http://example.test/' });
    assert.equal(client.streamUrl(), 'http://example.test/v1/events');
  });
});
