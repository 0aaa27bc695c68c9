/**
 * The folders' imports run one way — internal ← core (lib/*.ts, topics) ← websocket ←
 * network ← server, redis on the topics only — and `sluice/websocket` bundles for the
 * browser without a server or network module.
 */
import { expect } from 'chai';
import { build } from 'esbuild';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const lib = join(root, 'lib');

/** Layer of a file under lib/: a higher one may import a lower or equal one only. */
function layerOf(file: string): [name: string, rank: number] {
  const folder = relative(lib, file).split('/')[0] ?? '';
  switch (folder) {
    case 'internal':
      return ['internal', 0];
    case 'topics':
      return ['core', 1];
    case 'websocket':
      return ['websocket', 2];
    case 'network':
      return ['network', 3];
    case 'redis':
      return ['redis', 3];
    case 'server':
      return ['server', 4];
    default:
      return /\.[jt]s$/.test(folder) ? ['core', 1] : [folder, 99];
  }
}

function sources(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/**
 * The relative module specifiers a file imports or re-exports (type-only ones too, unless
 * `values` is set: then only those that exist at run time).
 */
function importsOf(file: string, values = false): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const match of text.matchAll(
    /(?:^|\n)\s*(?:import|export)\b(\s+type\b)?[^'"]*?from\s*'(\.[^']+)'/g,
  )) {
    if (!values || match[1] === undefined) found.push(match[2] as string);
  }
  for (const match of text.matchAll(/import\(\s*'(\.[^']+)'\s*\)/g)) found.push(match[1] as string);
  return found;
}

/** Every upward import under lib/, as `file -> target`. */
export function upwardImports(): string[] {
  const wrong: string[] = [];
  for (const file of sources(lib)) {
    const [name, rank] = layerOf(file);
    // internal/ may name core types (a Deferred, a Channel) without importing core code.
    for (const specifier of importsOf(file, name === 'internal')) {
      const target = resolve(dirname(file), specifier);
      const [targetName, targetRank] = layerOf(target);
      const redisOk = name === 'redis' && targetName !== 'websocket' && targetName !== 'network';
      if (targetRank > rank || (name === 'redis' && !redisOk)) {
        wrong.push(
          `${relative(root, file)} (${name}) -> ${relative(root, target)} (${targetName})`,
        );
      }
    }
  }
  return wrong;
}

describe('layering', () => {
  it('has no upward import between the folders of lib/', () => {
    expect(upwardImports()).to.deep.equal([]);
  });

  it('finds an upward import when there is one (the check itself works)', () => {
    expect(importsOf(join(lib, 'server', 'serve.ts'))).to.include('../websocket/route.js');
    expect(layerOf(join(lib, 'websocket', 'endpoint.ts'))[1]).to.be.below(
      layerOf(join(lib, 'server', 'route.ts'))[1],
    );
  });

  it('lib/redis imports only core, topics, internal and itself, and never the redis package', () => {
    const redis = join(lib, 'redis');
    const wrong: string[] = [];
    for (const file of sources(redis)) {
      for (const specifier of importsOf(file)) {
        const [name] = layerOf(resolve(dirname(file), specifier));
        if (!['core', 'internal', 'redis'].includes(name))
          wrong.push(`${relative(root, file)} -> ${specifier}`);
      }
      if (
        /^\s*(?:import|export)\b[^\n]*from\s*'redis'|\bimport\(\s*'redis'/m.test(
          readFileSync(file, 'utf8'),
        )
      ) {
        wrong.push(`${relative(root, file)} -> redis`);
      }
    }
    expect(sources(redis).length).to.be.above(0);
    expect(wrong).to.deep.equal([]);
  });

  it('bundles sluice/websocket for the browser without any module of lib/server or lib/network', async () => {
    const result = await build({
      entryPoints: [join(lib, 'websocket', 'index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.some((input) => input.startsWith('lib/websocket/'))).to.equal(true);
    expect(inputs.filter((input) => /^lib\/(server|network)\//.test(input))).to.deep.equal([]);
    expect(inputs.filter((input) => /node_modules\/ws\//.test(input))).to.deep.equal([]);
  });
});
