import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { answers, ChildProgram, freePort } from './child.js';

export interface Nginx {
  /** The proxy's base URL. */
  url: string;
  stop(): Promise<void>;
}

/**
 * nginx as a reverse proxy on a random port, round robin over `upstreams` (base URLs), with
 * `directives` added to its location block. It runs in the foreground with everything (config,
 * pid, logs, temp files) in a temporary folder. Upstream requests are HTTP/1.0, nginx's default.
 */
export async function startNginx(nginxPath: string, upstreams: string[], directives: string[] = []): Promise<Nginx> {
  const dir = await mkdtemp(path.join(tmpdir(), 'postline-nginx-'));
  // Run as root, nginx may still write temp files as another user.
  await chmod(dir, 0o777);
  const port = await freePort();
  const servers = upstreams.map((url) => `server ${new URL(url).host};`).join(' ');
  const config = `
daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 512; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream postline { ${servers} }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://postline;
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      ${directives.join('\n      ')}
    }
  }
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
  return {
    url,
    async stop() {
      await nginx.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
