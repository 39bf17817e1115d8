import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../support/sse.js';
import { answers, ChildProgram, freePort } from './child.js';

export interface Nginx {
  /** The proxy's base URL. */
  url: string;
  /**
   * Reload the configuration, as `nginx -s reload` does (only with `reloadable`), with these
   * directives in its location block; resolves once the new worker runs. The old worker closes its
   * connections (streams included) within worker_shutdown_timeout (1 s).
   */
  reload(directives?: string[]): Promise<void>;
  stop(): Promise<void>;
}

/** The production config (docs/deploy.md), which these tests run on. */
export const DEPLOY_CONFIG = fileURLToPath(new URL('../../../deploy/nginx.conf', import.meta.url));

/**
 * deploy/nginx.conf made to run here: its "EDIT" lines get this test's upstreams, port and log
 * file, its "TLS" lines go (plain HTTP on loopback), and `directives` open its `location /`.
 * Everything else is the file as shipped.
 */
export function siteConfigForTest(text: string, options: { upstreams: string[]; port: number; dir: string; directives: string[] }): string {
  let upstreamsWritten = false;
  const lines = text.split('\n').flatMap((line) => {
    const indent = /^\s*/.exec(line)![0];
    if (/# TLS\b/.test(line)) return [];
    if (!/# EDIT\s*$/.test(line)) return /^\s*location \/ \{/.test(line) ? [line, ...options.directives.map((directive) => `${indent}    ${directive}`)] : [line];
    const directive = line.trim().split(/\s+/)[0];
    switch (directive) {
      case 'server':
        if (upstreamsWritten) return [];
        upstreamsWritten = true;
        return options.upstreams.map((url) => `${indent}server ${new URL(url).host};`);
      case 'listen':
        return [`${indent}listen 127.0.0.1:${options.port};`];
      case 'access_log':
        return [`${indent}access_log ${options.dir}/access.log postline;`];
      case 'server_name':
        return [line];
      default:
        throw new Error(`deploy/nginx.conf: no rule for the EDIT line "${line.trim()}"`);
    }
  });
  if (!upstreamsWritten) throw new Error('deploy/nginx.conf: no upstream server line marked EDIT');
  return lines.join('\n');
}

/**
 * nginx as a reverse proxy on a random port, round robin over `upstreams` (base URLs), with the
 * site config of deploy/nginx.conf and `directives` added to its location block. It runs in the
 * foreground with everything (config, pid, logs, temp files) in a temporary folder.
 */
export async function startNginx(nginxPath: string, upstreams: string[], directives: string[] = [], options: { reloadable?: boolean } = {}): Promise<Nginx> {
  const dir = await mkdtemp(path.join(tmpdir(), 'postline-nginx-'));
  // Run as root, nginx may still write temp files as another user.
  await chmod(dir, 0o777);
  const port = await freePort();
  const deployed = await readFile(DEPLOY_CONFIG, 'utf8');
  const writeSite = (wanted: string[]) => writeFile(path.join(dir, 'postline.conf'), siteConfigForTest(deployed, { upstreams, port, dir, directives: wanted }));
  await writeSite(directives);
  // Reloading takes a master process; its old worker then waits at most 1 s for open requests
  // (streams never end by themselves), as production configs set it.
  const processes = options.reloadable ? 'master_process on;\nworker_processes 1;\nworker_shutdown_timeout 1s;' : 'master_process off;';
  const config = `
daemon off;
${processes}
pid ${dir}/nginx.pid;
error_log ${dir}/error.log ${options.reloadable ? 'notice' : 'warn'};
events { worker_connections 512; }
http {
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/postline.conf;
}
`;
  await writeFile(path.join(dir, 'nginx.conf'), config);
  const nginx = new ChildProgram('nginx', nginxPath, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await nginx.ready(() => answers(`${url}/healthz`));
  } catch (error) {
    await nginx.stop();
    throw error;
  }
  const workersStarted = async () => ((await readFile(path.join(dir, 'error.log'), 'utf8')).match(/start worker process/g) ?? []).length;
  return {
    url,
    async reload(wanted = directives) {
      if (!options.reloadable) throw new Error('this nginx was not started reloadable');
      const before = await workersStarted();
      await writeSite(wanted);
      nginx.signal('SIGHUP');
      await waitFor(async () => (await workersStarted()) > before, 10_000, 'nginx to start its new worker');
    },
    async stop() {
      await nginx.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
