/**
 * `node dist/test/helpers/iiokit-run.js <command> ...`: the iiokit binary with `local:`
 * made usable for tests (the real backend, or the stand-in until it lands), for tests
 * that must run the CLI as its own process (signals, pipes, namespaces).
 */
import { main } from '../../src/cli/main';
import { useLocalBackend } from './mini-local';

useLocalBackend()
  .then(() => main(process.argv.slice(2)))
  .then(
    (status) => {
      process.exitCode = status;
    },
    (err: unknown) => {
      process.stderr.write(`iiokit: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    },
  );
