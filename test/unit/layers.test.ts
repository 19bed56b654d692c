import assert from 'node:assert/strict';
import { join } from 'node:path';

// The layer rule in eslint.config.mjs, applied to imports written as each layer would
// write them: an upward import must fail `npm run lint`, a downward one must not.
const ROOT = join(__dirname, '../../..');

interface LintMessage {
  ruleId: string | null;
  message: string;
}
interface LintEngine {
  lintText(code: string, o: { filePath: string }): Promise<Array<{ messages: LintMessage[] }>>;
}

describe('layers (eslint no-restricted-imports)', function () {
  this.timeout(60000);
  let eslint: LintEngine;

  before(async function () {
    const { ESLint } = require('eslint') as { ESLint: new (o: { cwd: string }) => LintEngine };
    eslint = new ESLint({ cwd: ROOT });
  });

  async function violations(file: string, code: string): Promise<string[]> {
    const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
    return result.messages
      .filter((m) => m.ruleId === 'no-restricted-imports')
      .map((m) => m.message);
  }

  const upward: Array<[string, string]> = [
    ['src/model/probe.ts', "import { openLocalBackend } from '../backends/local';"],
    ['src/model/probe.ts', "import type { Backend } from '../backends/xml';"],
    ['src/model/probe.ts', "import { serveContext } from '../server';"],
    ['src/format/probe.ts', "import type { Context } from '../model/context';"],
    ['src/xml/probe.ts', "import { Device } from '../model/device';"],
    ['src/backends/local/probe.ts', "import { serveContext } from '../../server';"],
    ['src/server/probe.ts', "import { openEmuBackend } from '../backends/emu';"],
    ['src/nodes/probe.ts', "import { infoMain } from '../cli/info';"],
    // iiod's protocols are a format under client and server: they reach neither
    ['src/iiod-protocol/probe.ts', "import { IiodBackend } from '../backends/iiod/client';"],
    ['src/iiod-protocol/probe.ts', "import { serveContext } from '../server';"],
    ['src/iiod-protocol/probe.ts', "import type { Context } from '../model/context';"],
    ['src/model/probe.ts', "import { OP } from '../iiod-protocol/binary';"],
    ['src/xml/probe.ts', "import { OP } from '../iiod-protocol/binary';"],
  ];
  for (const [file, code] of upward) {
    it(`refuses ${code} in ${file}`, async function () {
      const found = await violations(file, code);
      assert.equal(found.length, 1, `expected one layer violation, got ${JSON.stringify(found)}`);
      assert.match(found[0], /down the layers/);
    });
  }

  const downward: Array<[string, string]> = [
    ['src/model/probe.ts', "import type { Backend } from './backend';"],
    ['src/model/probe.ts', "import { contextToXml } from '../xml/writer';"],
    ['src/xml/probe.ts', "import type { ContextInfo } from '../model/info';"],
    ['src/backends/emu/probe.ts', "import type { Backend } from '../../model/backend';"],
    ['src/server/probe.ts', "import type { Context } from '../model/context';"],
    ['src/nodes/probe.ts', "import { serveContext } from '../server';"],
    ['src/server/probe.ts', "import { OP, encodeHeader } from '../iiod-protocol/binary';"],
    ['src/backends/iiod/probe.ts', "import { checkToken } from '../../iiod-protocol/ascii';"],
    ['src/iiod-protocol/probe.ts', "import type { DeviceInfo } from '../model/info';"],
    ['src/iiod-protocol/probe.ts', "import { IioError } from '../errors';"],
    ['src/native/probe.ts', "import { BlockQueue } from '../model/block-queue';"],
  ];
  for (const [file, code] of downward) {
    it(`allows ${code} in ${file}`, async function () {
      assert.deepEqual(await violations(file, code), []);
    });
  }
});
