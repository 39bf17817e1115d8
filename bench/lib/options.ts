/** `--name=value` arguments over `defaults` (numbers stay numbers); an unknown name throws, listing the known ones. */
export function parseOptions<Options extends Record<string, string | number>>(argv: string[], defaults: Options): Options {
  const options: Record<string, string | number> = { ...defaults };
  for (const arg of argv) {
    const match = /^--(\w+)=(.*)$/.exec(arg);
    if (!match || !(match[1]! in defaults)) throw new Error(`unknown option ${arg}; options: ${Object.keys(defaults).join(', ')}`);
    options[match[1]!] = typeof defaults[match[1]!] === 'number' ? Number(match[2]) : match[2]!;
  }
  return options as Options;
}

/** `--config=NAME=VALUE,…`: settings for the instances (POSTLINE_*, PORT, HOST only). */
export function parseConfig(config: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of config.split(',').filter(Boolean)) {
    const [name, ...value] = pair.split('=');
    if (!/^(PORT|HOST|POSTLINE_\w+)$/.test(name ?? '')) throw new Error(`--config takes POSTLINE_* settings, not ${name}`);
    env[name!] = value.join('=');
  }
  return env;
}
