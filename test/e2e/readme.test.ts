import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * README.md's library tour runs as written (on emu:, so nowhere needs hardware): the
 * package name resolves to this checkout and the server takes a free port.
 */
const ROOT = join(__dirname, '../../..');

function section(md: string, heading: string): string {
  const start = md.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `README has a "## ${heading}" section`);
  const end = md.indexOf('\n## ', start + 4);
  return md.slice(start, end < 0 ? undefined : end);
}

describe('README', function () {
  this.timeout(60000);

  it('the Library section runs as written', () => {
    const lib = section(readFileSync(join(ROOT, 'README.md'), 'utf8'), 'Library');
    const m = /```js\n([\s\S]*?)```/.exec(lib);
    assert.ok(m, 'a js code block');
    const code = m[1]
      .replace("require('@iiokit/node-red-iio')", `require(${JSON.stringify(ROOT)})`)
      .replace('{ port: 30431 }', '{ port: 0 }');
    assert.notEqual(code, m[1], 'the block requires the package');
    const script = `(async () => {\n${code}\nawait server.close();\nawait ctx.close();\nconsole.log('README OK');\n})().catch((e) => { console.error(e); process.exit(1); });`;
    const r = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      timeout: 50000,
      cwd: ROOT,
    });
    assert.equal(r.status, 0, `${r.stderr}\n${r.stdout}`);
    assert.match(r.stdout, /^thresh (rising|falling)$/m, 'an event came and was decoded');
    assert.match(r.stdout, /README OK/);
  });
});
