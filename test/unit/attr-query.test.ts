/**
 * `iiokit attr`'s command line parsed on its own, without a context: the query or the
 * refusal each line should give. Expectations are written from libiio 0.24's
 * tests/iio_attr.c (which option wins, which message, printed before or after the
 * context is created); test/unit/attr-cli.test.ts runs the same lines end to end
 * against iio_attr itself.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { parseAttrArgs, Verbosity, type AttrCommand } from '../../src/cli/attr-query';
import { Out } from '../../src/cli/io';

function parse(argv: string[]): { cmd: AttrCommand; err: string } {
  const sink = new PassThrough();
  const chunks: Buffer[] = [];
  sink.on('data', (c: Buffer) => chunks.push(c));
  const err = new Out(sink);
  const cmd = parseAttrArgs(argv, err);
  err.flush();
  return { cmd, err: Buffer.concat(chunks).toString() };
}

const NO_FILTERS = { inputOnly: false, outputOnly: false, scanOnly: false, ignoreCase: false };

describe("iiokit attr's command line → query", function () {
  it('a channel write whose value is negative keeps the value out of getopt', function () {
    const { cmd } = parse(['-u', 'emu:', '-c', 'dummy0', 'voltage0', 'raw', '-5']);
    assert.equal(cmd.kind, 'run');
    if (cmd.kind !== 'run') return;
    assert.equal(cmd.common.uri, 'emu:');
    assert.deepEqual(cmd.plan, {
      kind: 'query',
      query: {
        target: 'channel',
        device: 'dummy0',
        channel: 'voltage0',
        attr: 'raw',
        value: '-5',
        ...NO_FILTERS,
        verbosity: Verbosity.Normal,
      },
    });
  });

  it('a wildcard makes a read verbose, and -q -I -i -o -s are carried', function () {
    const { cmd } = parse(['-q', '-I', '-i', '-o', '-s', '-c', 'dummy*', '.']);
    assert.ok(cmd.kind === 'run' && cmd.plan.kind === 'query');
    assert.deepEqual(cmd.plan.query, {
      target: 'channel',
      device: 'dummy*',
      channel: '.',
      attr: undefined,
      value: undefined,
      inputOnly: true,
      outputOnly: true,
      scanOnly: true,
      ignoreCase: true,
      verbosity: Verbosity.Verbose,
    });
  });

  it('-q without wildcards stays quiet; a context query takes one operand', function () {
    const { cmd } = parse(['-q', '-C', 'uri']);
    assert.ok(cmd.kind === 'run' && cmd.plan.kind === 'query');
    assert.equal(cmd.plan.query.target, 'context');
    assert.equal(cmd.plan.query.attr, 'uri');
    assert.equal(cmd.plan.query.verbosity, Verbosity.Quiet);
  });

  const refusals: Array<[string[], boolean, string[], string[]]> = [
    [
      ['-d', '-c'],
      false,
      ['The options -d, -c, -C, -B, and -D are exclusive (can use only one).'],
      [],
    ],
    [['-q'], false, ['must specify one of -d, -c, -C, -B or -D.'], []],
    [['-C', 'a', 'b'], false, ['Too many options for searching for context attributes'], []],
    [
      ['-c', 'a', 'b', 'c', 'd', 'e'],
      false,
      ['Too many options for searching for channel attributes'],
      [],
    ],
    [
      ['-B', 'a', 'b', 'c', 'd'],
      false,
      ['Too many options for searching for buffer attributes'],
      [],
    ],
    [
      ['-D', 'a', 'b', 'c', 'd'],
      false,
      ['Too many options for searching for device attributes'],
      [],
    ],
    [['-d', 'dummy0', '*', '5'], false, [], ["can't write value with wildcard match"]],
    [['-z', '-d'], true, ["iiokit attr: invalid option -- 'z'"], ["Unknown argument '?'"]],
    [
      ['-d', '-g'],
      true,
      ["iiokit attr: option requires an argument -- 'g'"],
      ["Unknown argument '?'"],
    ],
    [['-g', '-d'], true, ['Code generation requires an option'], []],
  ];
  for (const [argv, early, stderr, stdout] of refusals) {
    it(`refuses ${argv.join(' ')}${early ? ' (even without a context)' : ''}`, function () {
      const { cmd } = parse(argv);
      assert.ok(cmd.kind === 'run');
      assert.deepEqual(cmd.plan, { kind: 'refuse', refusal: { early, stdout, stderr } });
    });
  }

  it('no argument at all is the usage text; -h is help; -S is a scan', function () {
    const none = parse([]).cmd;
    assert.ok(none.kind === 'run');
    assert.deepEqual(none.plan, { kind: 'usage' });
    assert.deepEqual(parse(['-h', '-d']).cmd, { kind: 'help' });
    assert.deepEqual(parse(['-S', 'ip']).cmd, { kind: 'scan', arg: 'ip' });
  });

  it('prints common-option diagnostics while parsing, as libiio does', function () {
    const { cmd, err } = parse(['-T', '-1', '-d']);
    assert.equal(err, 'Clamped timeout to max 2147483647\n');
    assert.ok(cmd.kind === 'run');
    assert.equal(cmd.common.timeoutMs, 2147483647);
  });
});
