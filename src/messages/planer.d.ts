/** planer (MIT, a JavaScript port of mailgun/talon's quotation stripping) ships no types. */
declare module 'planer' {
  const planer: {
    /** The message without its quoted history (talon's `extract_from_plain`), trimmed. */
    extractFromPlain(body: string): string;
  };
  export default planer;
}
