// Failures parseMime cannot turn into a flagged partial result. Both mean "this attempt did not
// ingest the message; retry it": neither carries message content in its message text.

/** The raw byte stream from the provider failed (connection reset, provider error mid-body). */
export class MimeSourceError extends Error {
  override readonly name = 'MimeSourceError';
  readonly kind = 'source_failed' as const;
  constructor(options: { cause: unknown }) {
    super('reading the raw message failed', options);
  }
}

/** The AttachmentSink rejected (storage unavailable). The parse was aborted. */
export class AttachmentSinkError extends Error {
  override readonly name = 'AttachmentSinkError';
  readonly kind = 'sink_failed' as const;
  constructor(
    readonly ordinal: number,
    options: { cause: unknown },
  ) {
    super(`attachment sink failed for attachment #${ordinal}`, options);
  }
}
