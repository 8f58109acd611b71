// Types for scripts/import-rules.mjs (kept as plain JS so CI runs it with node, no build step).

export interface Violation {
  /** Path relative to the base directory (default: the parent of the checked src folder), `/`-separated. */
  file: string;
  /** 1-based line of the specifier. */
  line: number;
  specifier: string;
  /** Top-level folder of the importing file (`(root)` for files directly in src/). */
  fromRoom: string;
  /** Room the relative import lands in, or the bare package name. */
  toRoom: string | undefined;
  /** Human-readable name of the broken rule. */
  rule: string;
}

export declare const BASE_ROOMS: readonly string[];
export declare const UPPER_ROOMS: readonly string[];
export declare const SANDBOX_ALLOWED: readonly string[];
export declare const HTTP_IMPORTERS: readonly string[];
export declare const COMPOSITION_ROOTS: readonly string[];
export declare const DB_PACKAGES: readonly string[];
export declare const ROOT_ROOM: string;

export declare function roomOf(srcDir: string, absPath: string): string | undefined;
export declare function brokenRules(input: {
  fromRoom: string;
  toRoom: string | undefined;
  pkg: string | undefined;
  isTest: boolean;
}): string[];
export declare function importsOf(sourceText: string): { specifier: string; line: number }[];
export declare function checkImports(srcDir: string, options?: { baseDir?: string }): Promise<Violation[]>;
export declare function formatViolation(v: Violation): string;
