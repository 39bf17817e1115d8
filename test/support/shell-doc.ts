import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** The ```sh code blocks of a markdown text, in order, exactly as written. */
export function shellBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((match) => match[1]!);
}

/** Run the blocks in one bash, in order (variables carry over), and split the output by block. */
export async function runBlocks(blocks: string[], env: Record<string, string>, cwd: string): Promise<string[]> {
  const marker = (index: number) => `@@ block ${index} @@`;
  const script = blocks.map((block, index) => `echo '${marker(index)}'\n${block}`).join('\n');
  const { stdout } = await promisify(execFile)('bash', ['-c', script], { cwd, env: { ...process.env, ...env }, timeout: 60_000 });
  return blocks.map((_, index) => stdout.split(`${marker(index)}\n`)[1]!.split('@@ block ')[0]!);
}
