import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const root = fileURLToPath(new URL('..', import.meta.url));

/** Runs `examples/<name>` in a fresh Node process, as the README tells users to. */
function runExample(name: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', `examples/${name}`],
      { cwd: root, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`examples/${name} failed: ${stderr}`, { cause: error }));
        else resolve({ stdout, stderr });
      },
    );
  });
}

describe('examples', () => {
  it('tour.ts prints what the README says it does', async () => {
    const { stdout, stderr } = await runExample('tour.ts');
    expect(stderr).to.equal('');
    expect(stdout.trimEnd().split('\n')).to.deep.equal([
      'channel: a, b, c',
      'select: fast: fast wins; slow still empty: true',
      'scope: sum 10',
      'timeout: undefined',
      'streams: streams too',
    ]);
  });
});
