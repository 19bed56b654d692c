/**
 * The ASCII command language of iiod 0.2x (libiio 0.24's iiod/lexer.l + parser.y),
 * re-implemented: a line is split into the same tokens flex would produce (same start
 * conditions, longest match, earliest rule on ties, keywords in upper or lower case
 * only), then matched against the same grammar. A line that matches nothing is one
 * syntax error, answered with -EINVAL as bison's error rule does.
 */
import { strtol } from '../util/cnumber';
import type { AttrFamily } from './device-ops';

/** How the tokenizer resolves names: devices by id/label/name, channels by id/name. */
export interface Resolver<D, C> {
  findDevice(word: string): D | null;
  findChannel(device: D, word: string, isOutput: boolean): C | null;
}

/** Which attribute family a READ/WRITE names (device-ops.ts). */
export type { AttrFamily };

export type Command<D, C> =
  | { readonly op: 'empty' }
  | { readonly op: 'error' }
  | { readonly op: 'exit' }
  | { readonly op: 'help' }
  | { readonly op: 'version' }
  | { readonly op: 'print' }
  | { readonly op: 'zprint' }
  | { readonly op: 'timeout'; readonly value: string }
  | {
      readonly op: 'open';
      readonly dev: D | null;
      readonly samples: string;
      readonly mask: string;
      readonly cyclic: boolean;
    }
  | { readonly op: 'close'; readonly dev: D | null }
  | {
      readonly op: 'read';
      readonly dev: D | null;
      readonly family: AttrFamily;
      readonly channel: C | null;
      readonly attr: string | null;
    }
  | {
      readonly op: 'write';
      readonly dev: D | null;
      readonly family: AttrFamily;
      readonly channel: C | null;
      readonly attr: string | null;
      readonly length: string;
    }
  | { readonly op: 'readbuf'; readonly dev: D | null; readonly length: string }
  | { readonly op: 'writebuf'; readonly dev: D | null; readonly length: string }
  | { readonly op: 'settrig'; readonly dev: D | null; readonly trigger: string | null }
  | { readonly op: 'gettrig'; readonly dev: D | null }
  | { readonly op: 'buffers_count'; readonly dev: D | null; readonly value: number };

type Kind =
  | 'SPACE'
  | 'END'
  | 'WORD'
  | 'DEVICE'
  | 'CHANNEL'
  | 'VALUE'
  | 'CYCLIC'
  | 'VERSION'
  | 'PRINT'
  | 'ZPRINT'
  | 'EXIT'
  | 'HELP'
  | 'TIMEOUT'
  | 'OPEN'
  | 'CLOSE'
  | 'READ'
  | 'READBUF'
  | 'WRITEBUF'
  | 'WRITE'
  | 'SETTRIG'
  | 'GETTRIG'
  | 'SET'
  | 'BUFFERS_COUNT'
  | 'DEBUG_ATTR'
  | 'BUFFER_ATTR'
  | 'IN_OUT';

interface Token<D, C> {
  readonly kind: Kind;
  readonly text: string;
  readonly dev?: D | null;
  readonly chn?: C | null;
  readonly value?: number;
}

type State =
  'INITIAL' | 'WANT_DEVICE' | 'WANT_CHN_OR_ATTR' | 'WANT_CHN' | 'WANT_ATTR' | 'WANT_VALUE';

/** flex's {WORD}: `(([[:alpha:]]+,)|(iio:))?(-|_|\.|[[:alnum:]])+` in the C locale. */
const WORD = /(?:[A-Za-z]+,|iio:)?[-_.A-Za-z0-9]+/y;
const SPACE = /[ \t]+/y;
const END = /[ \t]*\r?\n/y;

/** INITIAL-only keywords, in lexer.l's rule order, with the state they switch to. */
const INITIAL_KEYWORDS: ReadonlyArray<readonly [Kind, readonly string[], State | null]> = [
  ['VERSION', ['VERSION', 'version'], null],
  ['PRINT', ['PRINT', 'print'], null],
  ['ZPRINT', ['ZPRINT', 'zprint'], null],
  ['EXIT', ['EXIT', 'exit', 'QUIT', 'quit'], null],
  ['HELP', ['HELP', 'help'], null],
  ['TIMEOUT', ['TIMEOUT', 'timeout'], null],
  ['OPEN', ['OPEN', 'open'], 'WANT_DEVICE'],
  ['CLOSE', ['CLOSE', 'close'], 'WANT_DEVICE'],
  ['READ', ['READ', 'read'], 'WANT_DEVICE'],
  ['READBUF', ['READBUF', 'readbuf'], 'WANT_DEVICE'],
  ['WRITEBUF', ['WRITEBUF', 'writebuf'], 'WANT_DEVICE'],
  ['WRITE', ['WRITE', 'write'], 'WANT_DEVICE'],
  ['SETTRIG', ['SETTRIG', 'settrig'], 'WANT_DEVICE'],
  ['GETTRIG', ['GETTRIG', 'gettrig'], 'WANT_DEVICE'],
  ['SET', ['SET', 'set'], 'WANT_DEVICE'],
];

const CHN_OR_ATTR_KEYWORDS: ReadonlyArray<readonly [Kind, readonly string[], State]> = [
  ['BUFFERS_COUNT', ['BUFFERS_COUNT', 'buffers_count'], 'WANT_VALUE'],
  ['DEBUG_ATTR', ['DEBUG', 'debug'], 'WANT_ATTR'],
  ['BUFFER_ATTR', ['BUFFER', 'buffer'], 'WANT_ATTR'],
  ['IN_OUT', ['INPUT', 'input', 'OUTPUT', 'output'], 'WANT_CHN'],
];

function matchAt(re: RegExp, s: string, pos: number): number {
  re.lastIndex = pos;
  const m = re.exec(s);
  return m ? m[0].length : 0;
}

function literalAt(words: readonly string[], s: string, pos: number): number {
  for (const w of words) if (s.startsWith(w, pos)) return w.length;
  return 0;
}

/**
 * Splits one line (including its `\n`) into tokens, carrying the lexer's start
 * condition across the line as flex does (it always ends back in INITIAL at END).
 */
export function tokenize<D, C>(line: string, resolver: Resolver<D, C>): Token<D, C>[] {
  const out: Token<D, C>[] = [];
  let state = 'INITIAL' as State;
  let dev: D | null = null;
  let isOutput = false;
  let pos = 0;
  while (pos < line.length) {
    // Candidates: [length, rule order, producer]; the longest wins, then the earliest rule.
    let best = 0;
    let emit: (() => Token<D, C> | null) | null = null;
    const consider = (len: number, make: () => Token<D, C> | null): void => {
      if (len > best) {
        best = len;
        emit = make;
      }
    };
    if (state === 'INITIAL') {
      for (const [kind, words, next] of INITIAL_KEYWORDS) {
        const len = literalAt(words, line, pos);
        consider(len, () => {
          if (next) state = next;
          return { kind, text: line.slice(pos, pos + len) };
        });
      }
    }
    const wordLen = matchAt(WORD, line, pos);
    const word = line.slice(pos, pos + wordLen);
    if (state === 'WANT_DEVICE') {
      consider(wordLen, () => {
        dev = resolver.findDevice(word);
        state = 'WANT_CHN_OR_ATTR';
        return { kind: 'DEVICE', text: word, dev };
      });
    }
    if (state === 'WANT_CHN_OR_ATTR') {
      for (const [kind, words, next] of CHN_OR_ATTR_KEYWORDS) {
        const len = literalAt(words, line, pos);
        consider(len, () => {
          if (kind === 'IN_OUT') isOutput = line[pos] === 'o' || line[pos] === 'O';
          state = next;
          return { kind, text: line.slice(pos, pos + len) };
        });
      }
    }
    if (state === 'WANT_CHN') {
      consider(wordLen, () => {
        const chn = dev !== null ? resolver.findChannel(dev, word, isOutput) : null;
        state = 'WANT_ATTR';
        return { kind: 'CHANNEL', text: word, chn };
      });
    }
    if (state === 'WANT_VALUE') {
      consider(wordLen, () => ({
        kind: 'VALUE',
        text: word,
        value: Number(strtol(word, 10).value),
      }));
    }
    consider(literalAt(['CYCLIC', 'cyclic'], line, pos), () => ({
      kind: 'CYCLIC',
      text: 'CYCLIC',
    }));
    consider(wordLen, () => ({ kind: 'WORD', text: word }));
    consider(matchAt(SPACE, line, pos), () => ({ kind: 'SPACE', text: ' ' }));
    const endLen = matchAt(END, line, pos);
    consider(endLen, () => {
      state = 'INITIAL';
      return { kind: 'END', text: '\n' };
    });
    if (best === 0) {
      // flex's `.` rule: the character is dropped and the lexer falls back to INITIAL.
      state = 'INITIAL';
      pos++;
      continue;
    }
    const tok = (emit as unknown as () => Token<D, C> | null)();
    if (tok) out.push(tok);
    pos += best;
  }
  return out;
}

const SYNTAX_ERROR = { op: 'error' } as const;

/**
 * Parses the tokens of one line against parser.y's `Line` rule. Anything else is a
 * syntax error; tokens after a complete command (before END) are one too.
 */
export function parseTokens<D, C>(tokens: readonly Token<D, C>[]): Command<D, C> {
  const k = tokens.map((t) => t.kind).join(' ');
  const t = (i: number): Token<D, C> => tokens[i];
  switch (k) {
    case 'END':
      return { op: 'empty' };
    case 'EXIT END':
      return { op: 'exit' };
    case 'HELP END':
      return { op: 'help' };
    case 'VERSION END':
      return { op: 'version' };
    case 'PRINT END':
      return { op: 'print' };
    case 'ZPRINT END':
      return { op: 'zprint' };
    case 'TIMEOUT SPACE WORD END':
      return { op: 'timeout', value: t(2).text };
    case 'OPEN SPACE DEVICE SPACE WORD SPACE WORD SPACE CYCLIC END':
    case 'OPEN SPACE DEVICE SPACE WORD SPACE WORD END':
      return {
        op: 'open',
        dev: t(2).dev ?? null,
        samples: t(4).text,
        mask: t(6).text,
        cyclic: tokens.length === 10,
      };
    case 'CLOSE SPACE DEVICE END':
      return { op: 'close', dev: t(2).dev ?? null };
    case 'READ SPACE DEVICE END':
      return { op: 'read', dev: t(2).dev ?? null, family: 'device', channel: null, attr: null };
    case 'READ SPACE DEVICE SPACE WORD END':
      return {
        op: 'read',
        dev: t(2).dev ?? null,
        family: 'device',
        channel: null,
        attr: t(4).text,
      };
    case 'READ SPACE DEVICE SPACE DEBUG_ATTR END':
    case 'READ SPACE DEVICE SPACE BUFFER_ATTR END':
    case 'READ SPACE DEVICE SPACE DEBUG_ATTR SPACE WORD END':
    case 'READ SPACE DEVICE SPACE BUFFER_ATTR SPACE WORD END':
      return {
        op: 'read',
        dev: t(2).dev ?? null,
        family: t(4).kind === 'DEBUG_ATTR' ? 'debug' : 'buffer',
        channel: null,
        attr: tokens.length === 8 ? t(6).text : null,
      };
    case 'READ SPACE DEVICE SPACE IN_OUT SPACE CHANNEL END':
    case 'READ SPACE DEVICE SPACE IN_OUT SPACE CHANNEL SPACE WORD END':
      return {
        op: 'read',
        dev: t(2).dev ?? null,
        family: 'channel',
        channel: t(6).chn ?? null,
        attr: tokens.length === 10 ? t(8).text : null,
      };
    case 'READBUF SPACE DEVICE SPACE WORD END':
      return { op: 'readbuf', dev: t(2).dev ?? null, length: t(4).text };
    case 'WRITEBUF SPACE DEVICE SPACE WORD END':
      return { op: 'writebuf', dev: t(2).dev ?? null, length: t(4).text };
    case 'WRITE SPACE DEVICE SPACE WORD END':
      return {
        op: 'write',
        dev: t(2).dev ?? null,
        family: 'device',
        channel: null,
        attr: null,
        length: t(4).text,
      };
    case 'WRITE SPACE DEVICE SPACE WORD SPACE WORD END':
      return {
        op: 'write',
        dev: t(2).dev ?? null,
        family: 'device',
        channel: null,
        attr: t(4).text,
        length: t(6).text,
      };
    case 'WRITE SPACE DEVICE SPACE DEBUG_ATTR SPACE WORD END':
    case 'WRITE SPACE DEVICE SPACE BUFFER_ATTR SPACE WORD END':
    case 'WRITE SPACE DEVICE SPACE DEBUG_ATTR SPACE WORD SPACE WORD END':
    case 'WRITE SPACE DEVICE SPACE BUFFER_ATTR SPACE WORD SPACE WORD END': {
      const withAttr = tokens.length === 10;
      return {
        op: 'write',
        dev: t(2).dev ?? null,
        family: t(4).kind === 'DEBUG_ATTR' ? 'debug' : 'buffer',
        channel: null,
        attr: withAttr ? t(6).text : null,
        length: t(withAttr ? 8 : 6).text,
      };
    }
    case 'WRITE SPACE DEVICE SPACE IN_OUT SPACE CHANNEL SPACE WORD END':
    case 'WRITE SPACE DEVICE SPACE IN_OUT SPACE CHANNEL SPACE WORD SPACE WORD END': {
      const withAttr = tokens.length === 12;
      return {
        op: 'write',
        dev: t(2).dev ?? null,
        family: 'channel',
        channel: t(6).chn ?? null,
        attr: withAttr ? t(8).text : null,
        length: t(withAttr ? 10 : 8).text,
      };
    }
    case 'SETTRIG SPACE DEVICE SPACE WORD END':
      return { op: 'settrig', dev: t(2).dev ?? null, trigger: t(4).text };
    case 'SETTRIG SPACE DEVICE END':
      return { op: 'settrig', dev: t(2).dev ?? null, trigger: null };
    case 'GETTRIG SPACE DEVICE END':
      return { op: 'gettrig', dev: t(2).dev ?? null };
    case 'SET SPACE DEVICE SPACE BUFFERS_COUNT SPACE VALUE END':
      return { op: 'buffers_count', dev: t(2).dev ?? null, value: t(6).value ?? 0 };
    default:
      return SYNTAX_ERROR;
  }
}

/** Tokenizes and parses one line (which must end with `\n`). */
export function parseLine<D, C>(line: string, resolver: Resolver<D, C>): Command<D, C> {
  return parseTokens(tokenize(line, resolver));
}

/** The text iiod's HELP prints (verbatim from libiio 0.24). */
export const HELP_TEXT =
  'Available commands:\n\n' +
  '\tHELP\n\t\tPrint this help message\n' +
  '\tEXIT\n\t\tClose the current session\n' +
  '\tPRINT\n\t\tDisplays a XML string corresponding to the current IIO context\n' +
  '\tZPRINT\n\t\tGet a compressed XML string corresponding to the current IIO context\n' +
  '\tVERSION\n\t\tGet the version of libiio in use\n' +
  '\tTIMEOUT <timeout_ms>\n\t\tSet the timeout (in ms) for I/O operations\n' +
  '\tOPEN <device> <samples_count> <mask> [CYCLIC]\n' +
  '\t\tOpen the specified device with the given mask of channels\n' +
  '\tCLOSE <device>\n\t\tClose the specified device\n' +
  '\tREAD <device> DEBUG|BUFFER|[INPUT|OUTPUT <channel>] [<attribute>]\n' +
  '\t\tRead the value of an attribute\n' +
  '\tWRITE <device> DEBUG|BUFFER|[INPUT|OUTPUT <channel>] [<attribute>] <bytes_count>\n' +
  '\t\tSet the value of an attribute\n' +
  '\tREADBUF <device> <bytes_count>\n\t\tRead raw data from the specified device\n' +
  '\tWRITEBUF <device> <bytes_count>\n\t\tWrite raw data to the specified device\n' +
  '\tGETTRIG <device>\n\t\tGet the name of the trigger used by the specified device\n' +
  '\tSETTRIG <device> [<trigger>]\n\t\tSet the trigger to use for the specified device\n' +
  '\tSET <device> BUFFERS_COUNT <count>\n' +
  '\t\tSet the number of kernel buffers for the specified device\n';
