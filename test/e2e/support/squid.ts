import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { curl } from '../../support/curl.js';
import { ChildProgram, freePort } from './child.js';

export interface Squid {
  /** The proxy's URL, for `curl -x`. */
  url: string;
  /** Squid's access log so far: one line per finished request it carried. */
  accessLog(): Promise<string>;
  stop(): Promise<void>;
}

/**
 * Squid as a forward proxy on a random port: localhost only, no caching, in the foreground (-N)
 * with its pid and logs in a temporary folder. `probeUrl` must answer through it before this resolves.
 */
export async function startSquid(squidPath: string, probeUrl: string): Promise<Squid> {
  const dir = await mkdtemp(path.join(tmpdir(), 'postline-squid-'));
  // Started as root, squid drops to its own user, which must write here.
  await chmod(dir, 0o777);
  const port = await freePort();
  const config = `
http_port 127.0.0.1:${port}
http_access allow localhost
http_access deny all
cache deny all
cache_mem 0 MB
pid_filename ${dir}/squid.pid
access_log stdio:${dir}/access.log
cache_log ${dir}/cache.log
cache_store_log none
netdb_filename none
coredump_dir ${dir}
shutdown_lifetime 0 seconds
visible_hostname postline-test
`;
  await writeFile(path.join(dir, 'squid.conf'), config);
  const squid = new ChildProgram('squid', squidPath, ['-N', '-f', path.join(dir, 'squid.conf')]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await squid.ready(async () => (await curl(['-s', '-o', '/dev/null', '-w', '%{http_code}', '-x', url, probeUrl]).catch(() => '')) === '200');
  } catch (error) {
    await squid.stop();
    throw error;
  }
  return {
    url,
    accessLog: () => readFile(path.join(dir, 'access.log'), 'utf8'),
    async stop() {
      await squid.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
