/**
 * Runs inside a test network namespace (ip netns exec ... node netns-child.js MODE):
 * `advertise PORT HOST` announces an iiod until killed; `browse` prints what our
 * discovery finds (JSON on stdout).
 */
import { advertise } from '../../../src/discovery/dnssd';
import { createContext, scanContexts } from '../../../src';
import { main } from '../../../src/cli/main';

async function run(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  if (mode === 'advertise') {
    const ad = await advertise({
      port: Number(args[0]),
      host: args[1],
      name: `iiod on ${args[1]}`,
    });
    process.stdout.write('ready\n');
    process.on('SIGTERM', () => void ad.stop().then(() => process.exit(0)));
    return;
  }
  const result: Record<string, unknown> = {};
  result.scan = await scanContexts('ip');
  const ctx = await createContext('ip:');
  result.discovered = { name: ctx.name, attrs: ctx.attrs, devices: ctx.devices.map((d) => d.id) };
  await ctx.close();
  const host = (result.scan as Array<{ uri: string }>)[0]?.uri;
  if (host) {
    const byName = await createContext(host);
    result.byName = { attrs: byName.attrs, devices: byName.devices.length };
    await byName.close();
  }
  let cli = '';
  const sink = { write: (s: string) => ((cli += s), true) } as unknown as NodeJS.WritableStream;
  await main(['scan', 'ip'], { stdout: sink, stderr: sink });
  result.cli = cli;
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

run().catch((err) => {
  process.stdout.write(`${JSON.stringify({ error: String(err) })}\n`);
  process.exitCode = 1;
});
