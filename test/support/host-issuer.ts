import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export const ISSUER = 'https://host.example';
export const AUDIENCE = 'postline';

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  publicPem: string;
}

export async function newSigningKey(kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }, publicPem: await exportSPKI(publicKey) };
}

/** Seconds since the epoch, as JWT claims count time. */
export const nowSeconds = () => Math.floor(Date.now() / 1000);

/** A JWT as the host application would issue it: RS256, its issuer, our audience, 10 minutes. */
export async function hostToken(key: SigningKey, claims: JWTPayload & { sub: string }, header: { kid?: string } = {}): Promise<string> {
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, exp: nowSeconds() + 600, iat: nowSeconds(), ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: key.kid, ...header })
    .sign(key.privateKey);
}

/**
 * The host's JWKS endpoint on loopback. `keys` is what it publishes; `mode` makes it answer
 * normally, fail (500), or hang (never answer).
 */
export class JwksServer {
  keys: SigningKey[] = [];
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  fetches = 0;
  private readonly server = http.createServer((_req, res) => {
    this.fetches++;
    if (this.mode === 'hang') return; // closed with the server
    if (this.mode === 'fail') {
      res.writeHead(500).end('down');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ keys: this.keys.map((key) => key.publicJwk) }));
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/.well-known/jwks.json`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
