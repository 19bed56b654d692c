// One config for the whole repository: typescript-eslint's recommended rules with
// type information off (fast), Prettier owns formatting.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

/**
 * One `no-restricted-imports` entry per layer: `deny` names folders (or top-level files) of
 * src/ that the layer must not import; `extra` adds raw gitignore-style patterns.
 */
function layerRules(layers) {
  return layers.map(({ files, deny, extra = [] }) => ({
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: deny.flatMap((d) => [`**/${d}`, `**/${d}/**`]).concat(extra),
              message: 'imports go down the layers only (docs/architecture.md)',
            },
          ],
        },
      ],
    },
  }));
}

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'prebuilds/', 'node_modules/', 'test/fixtures/', '.node-red/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    languageOptions: {
      globals: {
        require: 'readonly',
        module: 'writable',
        __dirname: 'readonly',
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  // Layers, one way (docs/architecture.md): an import that points up the stack fails lint.
  ...layerRules([
    {
      files: [
        'src/util/**',
        'src/format/**',
        'src/names/**',
        'src/errors.ts',
        'src/errno-table.ts',
      ],
      deny: [
        'model',
        'xml',
        'iiod-protocol',
        'native',
        'backends',
        'discovery',
        'server',
        'nodes',
        'cli',
      ],
    },
    {
      files: ['src/model/**'],
      deny: [
        'backends',
        'native',
        'discovery',
        'server',
        'nodes',
        'cli',
        'create-context',
        'scan',
        'iiod-protocol',
      ],
    },
    {
      // The XML format reads and writes the model's plain description, nothing else of it.
      files: ['src/xml/**'],
      deny: [
        'backends',
        'native',
        'discovery',
        'server',
        'nodes',
        'cli',
        'create-context',
        'iiod-protocol',
      ],
      extra: ['**/model/*', '!**/model/info', '!**/model/reorder'],
    },
    {
      // iiod's protocols (ASCII, binary frames), shared by our client (backends/iiod) and
      // our server: a format like xml/, so it sees the plain description only.
      files: ['src/iiod-protocol/**'],
      deny: ['backends', 'native', 'discovery', 'server', 'nodes', 'cli', 'create-context', 'scan'],
      extra: ['**/model/*', '!**/model/info'],
    },
    {
      files: ['src/native/**'],
      deny: ['backends', 'server', 'nodes', 'cli', 'create-context', 'iiod-protocol'],
    },
    {
      files: ['src/backends/**', 'src/discovery/**'],
      deny: ['server', 'nodes', 'cli', 'create-context'],
    },
    // The server serves any Context through the model's public API.
    { files: ['src/server/**'], deny: ['backends', 'native', 'nodes', 'cli', 'create-context'] },
    { files: ['src/cli/**'], deny: ['nodes'] },
    { files: ['src/nodes/**'], deny: ['cli'] },
  ]),
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
);
