/**
 * A small GNU getopt_long, so our tools accept exactly what libiio's do: clustered short
 * options (`-ab`), attached arguments (`-T500`, `--timeout=500`), optional arguments
 * (`-S`, `-Sip`), long-option prefixes, and operands anywhere unless the option string
 * starts with `+` (then the first operand ends option parsing).
 */

export type ArgKind = 'none' | 'required' | 'optional';

export interface LongOption {
  readonly name: string;
  readonly arg: ArgKind;
  /** The short option it stands for. */
  readonly val: string;
}

export interface ParsedOption {
  readonly opt: string;
  readonly arg?: string;
}

export interface GetoptResult {
  readonly options: ParsedOption[];
  readonly operands: string[];
  /** Unknown options or missing arguments, as `?` entries in `options` too. */
  readonly errors: string[];
}

function shortSpec(optstring: string): Map<string, ArgKind> {
  const spec = new Map<string, ArgKind>();
  const s = optstring.replace(/^[+-]/, '');
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (s[i + 1] === ':' && s[i + 2] === ':') {
      spec.set(c, 'optional');
      i += 2;
    } else if (s[i + 1] === ':') {
      spec.set(c, 'required');
      i += 1;
    } else spec.set(c, 'none');
  }
  return spec;
}

export function getopt(
  argv: readonly string[],
  optstring: string,
  longs: readonly LongOption[] = [],
): GetoptResult {
  const spec = shortSpec(optstring);
  const inOrder = optstring.startsWith('+');
  const options: ParsedOption[] = [];
  const operands: string[] = [];
  const errors: string[] = [];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i];
    if (a === '--') {
      operands.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--') && a.length > 2) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      const exact = longs.find((l) => l.name === name);
      const prefixed = longs.filter((l) => l.name.startsWith(name));
      const lo = exact ?? (prefixed.length === 1 ? prefixed[0] : undefined);
      i++;
      if (!lo) {
        errors.push(
          prefixed.length > 1
            ? `option '--${name}' is ambiguous`
            : `unrecognized option '--${name}'`,
        );
        options.push({ opt: '?' });
        continue;
      }
      if (lo.arg === 'none') {
        if (eq >= 0) {
          errors.push(`option '--${lo.name}' doesn't allow an argument`);
          options.push({ opt: '?' });
        } else options.push({ opt: lo.val });
      } else if (eq >= 0) options.push({ opt: lo.val, arg: a.slice(eq + 1) });
      else if (lo.arg === 'required') {
        if (i < argv.length) options.push({ opt: lo.val, arg: argv[i++] });
        else {
          errors.push(`option '--${lo.name}' requires an argument`);
          options.push({ opt: '?' });
        }
      } else options.push({ opt: lo.val });
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      i++;
      for (let j = 1; j < a.length; j++) {
        const c = a[j];
        const kind = spec.get(c);
        if (kind === undefined) {
          errors.push(`invalid option -- '${c}'`);
          options.push({ opt: '?', arg: c });
          continue;
        }
        if (kind === 'none') {
          options.push({ opt: c });
          continue;
        }
        const rest = a.slice(j + 1);
        if (rest) options.push({ opt: c, arg: rest });
        else if (kind === 'required') {
          if (i < argv.length) options.push({ opt: c, arg: argv[i++] });
          else {
            errors.push(`option requires an argument -- '${c}'`);
            options.push({ opt: '?', arg: c });
          }
        } else options.push({ opt: c });
        break;
      }
      continue;
    }
    if (inOrder) {
      operands.push(...argv.slice(i));
      break;
    }
    operands.push(a);
    i++;
  }
  return { options, operands, errors };
}
