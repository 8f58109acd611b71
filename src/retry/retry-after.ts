/**
 * The one `Retry-After` parser (RFC 9110 §10.2.3): `Retry-After = HTTP-date / delay-seconds`,
 * where delay-seconds is `1*DIGIT` — an integer; "1.5" is not a valid value and is ignored
 * rather than guessed at. An HTTP-date is always UTC (§5.6.7): the preferred IMF-fixdate
 * (`Sun, 06 Nov 1994 08:49:37 GMT`) and the two obsolete forms a recipient must accept,
 * rfc850-date (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime-date (`Sun Nov  6 08:49:37 1994`,
 * which carries no zone and is still UTC — `Date.parse` would read it in local time).
 *
 * Returns milliseconds from `nowMs` (0 for a date in the past), or undefined when the header is
 * absent or malformed (callers then fall back to their own backoff).
 */
export function parseRetryAfter(value: string | readonly string[] | null | undefined, nowMs: number): number | undefined {
  const raw = typeof value === 'string' ? value : value?.[0];
  if (raw === undefined || raw === null) return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) {
    const seconds = Number(text);
    return Number.isSafeInteger(seconds * 1000) ? seconds * 1000 : undefined;
  }
  const at = parseHttpDate(text, nowMs);
  return at === undefined ? undefined : Math.max(0, at - nowMs);
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAY = '(?:mon|tue|wed|thu|fri|sat|sun)';
const LONG_DAY = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)';
const TIME = '(\\d{2}):(\\d{2}):(\\d{2})';
const IMF_FIXDATE = new RegExp(`^${DAY}, (\\d{2}) ([a-z]{3}) (\\d{4}) ${TIME} GMT$`, 'i');
const RFC850_DATE = new RegExp(`^${LONG_DAY}, (\\d{2})-([a-z]{3})-(\\d{2}) ${TIME} GMT$`, 'i');
const ASCTIME_DATE = new RegExp(`^${DAY} ([a-z]{3}) ( \\d|\\d{2}) ${TIME} (\\d{4})$`, 'i');

/**
 * An HTTP-date (RFC 9110 §5.6.7) as epoch ms, read as UTC; undefined when it is not one.
 * `nowMs` places an rfc850-date's two-digit year.
 */
export function parseHttpDate(text: string, nowMs: number): number | undefined {
  let parts: { day: string; month: string; year: number; time: [string, string, string] };
  let m: RegExpExecArray | null;
  if ((m = IMF_FIXDATE.exec(text))) {
    parts = { day: m[1] ?? '', month: m[2] ?? '', year: Number(m[3]), time: [m[4] ?? '', m[5] ?? '', m[6] ?? ''] };
  } else if ((m = RFC850_DATE.exec(text))) {
    // "Recipients of a timestamp value in rfc850-date format, which uses a two-digit year, MUST
    // interpret a timestamp that appears to be more than 50 years in the future as representing
    // the most recent year in the past that had the same last two digits."
    const thisYear = new Date(nowMs).getUTCFullYear();
    let year = Math.floor(thisYear / 100) * 100 + Number(m[3]);
    if (year > thisYear + 50) year -= 100;
    parts = { day: m[1] ?? '', month: m[2] ?? '', year, time: [m[4] ?? '', m[5] ?? '', m[6] ?? ''] };
  } else if ((m = ASCTIME_DATE.exec(text))) {
    parts = { month: m[1] ?? '', day: m[2] ?? '', year: Number(m[6]), time: [m[3] ?? '', m[4] ?? '', m[5] ?? ''] };
  } else {
    return undefined;
  }
  const mon = MONTHS.indexOf(parts.month.toLowerCase());
  const d = Number(parts.day.trim());
  const [hh, mm, ss] = parts.time.map(Number) as [number, number, number];
  if (mon < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return undefined;
  // A leap second (:60) is read as :59.
  const at = Date.UTC(parts.year, mon, d, hh, mm, Math.min(ss, 59));
  // Date.UTC rolls 31 Feb over into March: such a date is malformed.
  return new Date(at).getUTCDate() === d ? at : undefined;
}
