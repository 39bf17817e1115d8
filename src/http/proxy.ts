import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import type { Logger } from '../log.js';

/** Express's compiled `trust proxy` (POSTLINE_TRUST_PROXY): whether the hop at `address`, `hop` steps from us, is a proxy we trust. */
export type TrustProxy = (address: string, hop: number) => boolean;

/** The client's address as Express's `req.ip` makes it out, under the same trust (for the lean delivery path). */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string {
  return proxyaddr(req, trust);
}

/**
 * Once per process, a warning when forwarding headers (`X-Forwarded-For`, `-Proto`) come from an
 * address POSTLINE_TRUST_PROXY does not trust. Behind a proxy nobody told postline about, every
 * client has the proxy's address (one per-address budget for all of them), and behind a TLS proxy
 * the session cookie is not marked `Secure` (the scheme comes from `X-Forwarded-Proto`, believed
 * only from a trusted proxy). A client sending such headers itself sets it off too, hence "if".
 */
export function untrustedProxyWarning(logger: Logger, trust: TrustProxy): (req: IncomingMessage) => void {
  let warned = false;
  return (req) => {
    if (warned || (req.headers['x-forwarded-for'] === undefined && req.headers['x-forwarded-proto'] === undefined)) return;
    if (trust(req.socket.remoteAddress ?? '', 0)) return;
    warned = true;
    logger.warn(
      { peer: req.socket.remoteAddress },
      'a request came with X-Forwarded-For/X-Forwarded-Proto from an address POSTLINE_TRUST_PROXY does not trust: if a proxy is in front, ' +
        'set POSTLINE_TRUST_PROXY to its hop count (e.g. 1) or addresses (e.g. loopback), else every client counts as the proxy in the ' +
        'per-address limits and session cookies are not marked Secure behind TLS',
    );
  };
}
