/**
 * Compares our `info` output with libiio's iio_info line by line. Lines naming the
 * library and its version are skipped (and `Backend version` when the context has no
 * version of its own). Everything else must be equal, with one exception that only
 * `attrValues` allows: where libiio 0.24 answers ENOSYS for an attribute of an XML context
 * that carries a value (libiio 0.24 ignores value=), we print that value — possibly over
 * several lines — and it must be the value the XML holds for that attribute (`attrValues`,
 * in print order). Without `attrValues` (a live context, where both tools read the same
 * device) an ENOSYS line of libiio's is a difference like any other.
 */
export interface CompareResult {
  readonly ok: boolean;
  readonly substitutions: number;
  readonly firstDifference?: string;
}

const VERSION_LINES = /^(Library version: |Compiled with backends: )/;

export function compareInfo(
  libiio: string,
  ours: string,
  options: { skipBackendVersion: boolean; attrValues?: ReadonlyArray<string | undefined> },
): CompareResult {
  const drop = (l: string): boolean =>
    VERSION_LINES.test(l) || (options.skipBackendVersion && l.startsWith('Backend version: '));
  const a = libiio.split('\n').filter((l) => !drop(l));
  const b = ours.split('\n').filter((l) => !drop(l));
  let i = 0;
  let j = 0;
  let subs = 0;
  let attrNo = -1;
  const ATTR_LINE = /^\t\t\t\t(debug )?attr +\d+: /;
  const ENOSYS = 'ERROR: Function not implemented (38)';
  while (i < a.length && j < b.length) {
    if (ATTR_LINE.test(a[i])) attrNo++;
    if (a[i] === b[j]) {
      i++;
      j++;
      continue;
    }
    if (options.attrValues && a[i].endsWith(ENOSYS)) {
      const prefix = a[i].slice(0, -ENOSYS.length);
      if (b[j].startsWith(`${prefix}value: `)) {
        // consume our value (may span lines) up to the next line libiio printed
        const first = b[j].slice(prefix.length + 'value: '.length);
        const parts = [first];
        j++;
        const next = a[i + 1];
        const nextPrefix = next?.endsWith(ENOSYS)
          ? `${next.slice(0, -ENOSYS.length)}value: `
          : undefined;
        const isNext = (l: string): boolean =>
          l === next || (nextPrefix !== undefined && l.startsWith(nextPrefix));
        while (j < b.length && !isNext(b[j])) parts.push(b[j++]);
        const got = parts.join('\n');
        const want = options.attrValues[attrNo];
        if (want !== got) {
          return {
            ok: false,
            substitutions: subs,
            firstDifference: `value of "${prefix.trim()}": XML has ${JSON.stringify(want)}, we printed ${JSON.stringify(got.slice(0, 300))}`,
          };
        }
        subs++;
        i++;
        continue;
      }
    }
    return {
      ok: false,
      substitutions: subs,
      firstDifference: `line ${i + 1}: libiio "${a[i]}" vs ours "${b[j]}"`,
    };
  }
  if (i < a.length || j < b.length) {
    return {
      ok: false,
      substitutions: subs,
      firstDifference: `length: libiio has ${a.length - i} more lines, ours ${b.length - j}`,
    };
  }
  return { ok: true, substitutions: subs };
}
