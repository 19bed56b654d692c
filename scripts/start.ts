/**
 * `npm start`: runs Node-RED 4 (the project's own devDependency, not a global install)
 * with a user directory inside the project (`.node-red/`, git-ignored), this package
 * installed into it (a link, as `npm install <folder>` makes), Dashboard 2 found next to
 * Node-RED, and every example flow deployed on `emu:` the first time.
 *
 *   npm start                       editor http://localhost:1880, dashboard /dashboard
 *   npm start -- --reset            deploy the example flows again (overwrites flows.json)
 *   PORT=1881 npm start             another port
 *   IIOKIT_USER_DIR=/tmp/x npm start   another user directory
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

/** The repository root (this file runs from dist/scripts). */
export const ROOT = resolve(__dirname, '..', '..');

export interface FlowNode {
  readonly id: string;
  readonly type: string;
  readonly [key: string]: unknown;
}

const FIRST_EXAMPLE = 'capture-dashboard.json';

/**
 * Every example flow (the dashboard one first), merged into one flows file. Ids are unique
 * across them, except the config nodes they share (one iio-context for all examples, as
 * the editor's import reuses it): those must be identical and are kept once.
 */
export function exampleFlows(dir = join(ROOT, 'examples')): FlowNode[] {
  const all: FlowNode[] = [];
  const seen = new Map<string, string>();
  // The dashboard example first: its tab is the one the editor opens on.
  const files = readdirSync(dir)
    .filter((x) => x.endsWith('.json'))
    .sort(
      (a, b) => Number(b === FIRST_EXAMPLE) - Number(a === FIRST_EXAMPLE) || a.localeCompare(b),
    );
  for (const f of files) {
    const nodes = JSON.parse(readFileSync(join(dir, f), 'utf8')) as FlowNode[];
    for (const n of nodes) {
      const text = JSON.stringify(n);
      const before = seen.get(n.id);
      if (before === text && !('z' in n)) continue;
      if (before !== undefined)
        throw new Error(`examples/${f}: node id ${n.id} is used by another example`);
      seen.set(n.id, text);
      all.push(n);
    }
  }
  return all;
}

/** Points `link` at `target` (a relative symlink), replacing whatever was there. */
function link(target: string, linkPath: string): void {
  mkdirSync(dirname(linkPath), { recursive: true });
  const wanted = relative(dirname(linkPath), target);
  try {
    const st = lstatSync(linkPath);
    if (st.isSymbolicLink() && readlinkSync(linkPath) === wanted) return;
    rmSync(linkPath, { recursive: true, force: true });
  } catch {
    // nothing there yet
  }
  symlinkSync(wanted, linkPath, 'dir');
}

export interface UserDirOptions {
  /** Port of the editor (default 1880). */
  readonly port?: number;
  /** Write the example flows even if a flows file exists. */
  readonly resetFlows?: boolean;
  /** Flows to deploy instead of the examples (tests). */
  readonly flows?: FlowNode[];
  /** Bind address (default: all interfaces, as Node-RED does). */
  readonly host?: string;
}

/**
 * Prepares a Node-RED user directory: package.json naming this package, the package
 * linked into node_modules, a settings file, and the flows. Returns the settings path.
 */
export function prepareUserDir(userDir: string, options: UserDirOptions = {}): string {
  mkdirSync(userDir, { recursive: true });
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
  };
  // What `npm install <repo>` would leave: a dependency on the folder and a link to it.
  writeFileSync(
    join(userDir, 'package.json'),
    `${JSON.stringify(
      {
        name: 'iiokit-node-red-userdir',
        description: 'Node-RED user directory made by npm start (safe to delete)',
        version: '0.0.0',
        private: true,
        dependencies: { [pkg.name]: `file:${relative(userDir, ROOT) || '.'}` },
      },
      null,
      2,
    )}\n`,
  );
  link(ROOT, join(userDir, 'node_modules', ...pkg.name.split('/')));
  const settingsPath = join(userDir, 'settings.js');
  const settings = {
    uiPort: options.port ?? 1880,
    ...(options.host ? { uiHost: options.host } : {}),
    flowFile: 'flows.json',
    flowFilePretty: true,
    credentialSecret: false,
    // No network but the registries here: nothing may phone home or offer installs.
    telemetry: { enabled: false, updateNotification: false },
    diagnostics: { enabled: false, ui: false },
    externalModules: { palette: { allowInstall: false }, modules: { allowInstall: false } },
    editorTheme: {
      tours: false,
      projects: { enabled: false },
      palette: { catalogues: [] },
    },
    logging: { console: { level: 'info', metrics: false, audit: false } },
  };
  writeFileSync(
    settingsPath,
    `// Written by npm start (scripts/start.ts) at every start: edit that file, not this one.\nmodule.exports = ${JSON.stringify(settings, null, 2)};\n`,
  );
  const flowsPath = join(userDir, 'flows.json');
  if (options.flows || options.resetFlows || !existsSync(flowsPath)) {
    writeFileSync(flowsPath, `${JSON.stringify(options.flows ?? exampleFlows(), null, 2)}\n`);
  }
  return settingsPath;
}

/** Starts Node-RED on a prepared user directory; the child's output goes to ours. */
export function runNodeRed(
  userDir: string,
  settingsPath: string,
  stdio: 'inherit' | 'pipe' = 'inherit',
): ChildProcess {
  const red = require.resolve('node-red/red.js', { paths: [ROOT] });
  return spawn(process.execPath, [red, '--userDir', userDir, '--settings', settingsPath], {
    cwd: ROOT,
    stdio: stdio === 'inherit' ? 'inherit' : ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
}

function main(): void {
  const args = process.argv.slice(2);
  const port = Number(process.env.PORT ?? 1880);
  const userDir = resolve(process.env.IIOKIT_USER_DIR ?? join(ROOT, '.node-red'));
  const settings = prepareUserDir(userDir, { port, resetFlows: args.includes('--reset') });
  console.log(`iiokit: Node-RED user directory ${userDir}`);
  console.log(`iiokit: editor    http://localhost:${port}/`);
  console.log(`iiokit: dashboard http://localhost:${port}/dashboard`);
  const child = runNodeRed(userDir, settings);
  const forward = (sig: NodeJS.Signals): void => {
    child.kill(sig);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (code, signal) => {
    process.exitCode = code ?? (signal ? 1 : 0);
  });
}

if (require.main === module) main();
