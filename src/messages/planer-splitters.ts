import { createRequire } from 'node:module';

/**
 * planer's `isSplitter` (lib/planer.js) tries each of its SPLITTER_PATTERNS ("-----Original
 * Message-----", "On … wrote:", "From:/Date:" headers, "dd.mm.yyyy … @" …) against up to four
 * joined lines with an UNANCHORED `exec` and keeps the match only when it starts at index 0. For a
 * line that is not a splitter — nearly every line of every message — each pattern is therefore
 * tried at every position of those four lines, and patterns such as
 * `(On|Le|…)[ ].*(,|…)(.*\n){0,2}.*(wrote|…)` backtrack at each: 60 % of reply extraction's CPU
 * on the corpus.
 *
 * The same patterns anchored at the input's start (`^(?:…)`, no `m` flag) give the same answers:
 * a backtracking engine's leftmost match starts at 0 exactly when some match starts at 0, and the
 * match it finds from position 0 is the same whichever way the search got there (same
 * alternatives in the same order, same groups). reply-extraction.test.ts checks planer's output
 * with both sets on every text of the shared corpus. Measured on the corpus (1,685 messages):
 * extractReply 0.327 → 0.137 ms per message (docs/benchmarks.md, Ingest).
 *
 * planer is pinned (package.json); if a release changes that table's shape this leaves it alone
 * (slower, never different).
 */
interface PlanerRegexes {
  SPLITTER_PATTERNS: RegExp[];
}

const require = createRequire(import.meta.url);

function planerRegexes(): PlanerRegexes | null {
  try {
    const mod = require('planer/lib/regexes.js') as Partial<PlanerRegexes>;
    const patterns = mod.SPLITTER_PATTERNS;
    if (!Array.isArray(patterns) || patterns.length === 0 || !patterns.every((p) => p instanceof RegExp && !p.multiline && !p.global && !p.sticky)) return null;
    return mod as PlanerRegexes;
  } catch {
    return null;
  }
}

const regexes = planerRegexes();

/** planer's own patterns, as it ships them (for the equivalence test). */
export const originalSplitters: readonly RegExp[] = regexes ? [...regexes.SPLITTER_PATTERNS] : [];

/** The same patterns anchored at the start of the input. */
export const anchoredSplitters: readonly RegExp[] = originalSplitters.map((p) => (p.source.startsWith('^') ? p : new RegExp(`^(?:${p.source})`, p.flags)));

/** Puts `patterns` in planer's table (in place: planer reads the array on every call). */
export function useSplitters(patterns: readonly RegExp[]): void {
  if (regexes) regexes.SPLITTER_PATTERNS.splice(0, regexes.SPLITTER_PATTERNS.length, ...patterns);
}

useSplitters(anchoredSplitters);
