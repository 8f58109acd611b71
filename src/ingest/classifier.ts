import type { ParsedMessage } from './mime-parser.js';

export type AutoReplyReason =
  | 'auto_submitted'
  | 'x_autoreply'
  | 'x_autorespond'
  | 'precedence'
  | 'x_auto_response_suppress'
  | 'subject_pattern';

export type BounceReason =
  | 'delivery_status_report'
  | 'delivery_status_part'
  | 'x_failed_recipients'
  | 'daemon_sender'
  | 'null_return_path'
  | 'bounce_subject';

export interface Classification {
  /** Machine-sent reply or notification: never auto-acknowledge it (RFC 3834 §2 loop prevention). */
  isAutoReply: boolean;
  /** Delivery status notification (RFC 3464 or a non-standard MTA equivalent). */
  isBounce: boolean;
  /**
   * ARF abuse/complaint report (RFC 5965, report-type=feedback-report). Deliberately neither a
   * bounce nor an auto-reply: the recipient address worked, so treating it as a bounce would
   * wrongly suppress it, and it is a report about mail rather than a reply. The helpdesk routes it.
   */
  isFeedbackReport: boolean;
  autoReplyReason?: AutoReplyReason;
  /** `weak` when the only evidence is a subject pattern. */
  autoReplyConfidence?: 'strong' | 'weak';
  bounceReason?: BounceReason;
}

type Input = Pick<ParsedMessage, 'headers' | 'from' | 'subject' | 'text'>;

// Sender local parts MTAs use for DSNs (RFC 5321 §4.5.5 says a null reverse-path; these are the
// From: names real MTAs put on them).
const DAEMON_LOCAL_PART = /^(mailer[-_.]?daemon|post[-_.]?master|mail[-_.]?delivery[-_.]?(subsystem|system)?|maildelivery|bounces?|mdaemon|mail[-_.]?administrator|microsoftexchange[0-9a-f]+)$/i;

// Subjects of MTA/provider bounce notices. Anchored loosely: providers prefix them with tags.
const BOUNCE_SUBJECT = new RegExp(
  [
    'undeliver(ed|able)',
    'returned mail',
    'delivery status notification',
    'delivery (has )?fail',
    'delivery failure',
    'failure delivery',
    'error sending (your )?(mail|message)',
    'errors from',
    'メールエラー',
    'mail delivery (failed|failure|problem)',
    'failure notice',
    'non[- ]?delivery',
    'message (was )?not delivered',
    'could not be delivered',
    'returned to sender',
    'mail system error',
    'delivery notification',
    'unzustellbar',
    'non remis',
    'no se puede entregar',
    'error sending message',
    'message delivery has failed',
    'warning: could not send message',
    'delayed mail',
    'delivery delayed',
    'rejected',
    'mail failure',
    'unable to deliver',
    'nondeliverable',
    'problem delivering',
    'delivery report',
    'not delivered',
    'bounced? (mail|message)',
    'permanent (delivery )?(error|failure)',
    'dsn',
    '配信不能',
    'エラー',
  ].join('|'),
  'i',
);

// Out-of-office subjects (Outlook localizes its "Automatic reply:" prefix; Gmail vacation
// responders usually keep the user's subject, which is why this is only a weak signal).
const AUTO_REPLY_SUBJECT =
  /^\s*(automatic reply|auto(matic)?[- ]?(reply|response)|autoreply|out of (the )?office|ooo\b|away from (the )?office|abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique|absence|respuesta autom[áa]tica|risposta automatica|resposta autom[áa]tica|automatisch antwoord|自動応答|自動返信|vacation|on vacation)/i;

const PRECEDENCE_AUTO = new Set(['auto_reply', 'bulk', 'junk', 'list']);

/**
 * Pure. Precedence: feedback report > bounce > auto-reply, so each message has one kind (a DSN
 * usually also carries `Auto-Submitted: auto-replied`/`auto-generated`, RFC 3464 §2.1).
 */
export function classify(message: Input): Classification {
  const h = message.headers;
  const contentType = h.contentType ?? '';
  const reportType = h.reportType ?? '';

  if (
    (contentType === 'multipart/report' && reportType === 'feedback-report') ||
    h.partTypes.includes('message/feedback-report')
  ) {
    return { isAutoReply: false, isBounce: false, isFeedbackReport: true };
  }

  // Amazon SES forwards bounces/complaints as SNS JSON e-mails (no MIME report structure):
  // https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html
  const sesType = sesNotificationType(message);
  if (sesType === 'Complaint') return { isAutoReply: false, isBounce: false, isFeedbackReport: true };
  if (sesType === 'Bounce') {
    return { isAutoReply: false, isBounce: true, isFeedbackReport: false, bounceReason: 'delivery_status_report' };
  }

  const bounceReason = detectBounce(message);
  if (bounceReason) return { isAutoReply: false, isBounce: true, isFeedbackReport: false, bounceReason };

  const autoReply = detectAutoReply(message);
  if (autoReply) {
    return {
      isAutoReply: true,
      isBounce: false,
      isFeedbackReport: false,
      autoReplyReason: autoReply,
      autoReplyConfidence: autoReply === 'subject_pattern' ? 'weak' : 'strong',
    };
  }
  return { isAutoReply: false, isBounce: false, isFeedbackReport: false };
}

function detectBounce(message: Input): BounceReason | null {
  const h = message.headers;
  const contentType = h.contentType ?? '';
  const reportType = h.reportType ?? '';
  // RFC 6522 multipart/report with RFC 3464 delivery-status (or RFC 6533 global-delivery-status).
  if (contentType === 'multipart/report' && /delivery-status/.test(reportType)) return 'delivery_status_report';
  if (h.partTypes.some((t) => t === 'message/delivery-status' || t === 'message/global-delivery-status')) {
    return 'delivery_status_part';
  }
  // Exim adds X-Failed-Recipients to its non-RFC 3464 bounces.
  if (h.xFailedRecipients) return 'x_failed_recipients';

  const subjectLooksLikeBounce = BOUNCE_SUBJECT.test(message.subject);
  const returnsOriginal = h.partTypes.includes('message/rfc822') || h.partTypes.includes('text/rfc822-headers');
  const localPart = (message.from?.address ?? '').split('@')[0] ?? '';
  const fromDaemon = DAEMON_LOCAL_PART.test(localPart) || /mail delivery (subsystem|system)/i.test(message.from?.name ?? '');
  const nullReturnPath = h.returnPath !== null && /^<?\s*>?$/.test(h.returnPath.replace(/\s+/g, '')) ;

  if (fromDaemon && (subjectLooksLikeBounce || returnsOriginal || nullReturnPath)) return 'daemon_sender';
  if (nullReturnPath && (subjectLooksLikeBounce || returnsOriginal)) return 'null_return_path';
  // qmail/legacy MTAs send plain-text bounces with only the subject to go on; require that no
  // human-conversation signal contradicts it (a list reply would carry List-Id).
  if (subjectLooksLikeBounce && fromDaemon) return 'bounce_subject';
  // An auto-submitted message (RFC 3834) whose subject says delivery failed is an MTA notice.
  const autoSubmitted = h.autoSubmitted?.trim().toLowerCase();
  if (subjectLooksLikeBounce && autoSubmitted && autoSubmitted !== 'no') return 'bounce_subject';
  if (subjectLooksLikeBounce && !h.listId && /^(undeliver|returned mail|delivery status notification|mail delivery failed|failure notice|non[- ]?delivery)/i.test(message.subject.trim())) {
    return 'bounce_subject';
  }
  return null;
}

function detectAutoReply(message: Input): AutoReplyReason | null {
  const h = message.headers;
  // RFC 3834 §5.1: any value other than "no" marks the message as automatic.
  const autoSubmitted = h.autoSubmitted?.split(';')[0]?.trim().toLowerCase();
  if (autoSubmitted && autoSubmitted !== 'no') return 'auto_submitted';
  if (isSet(h.xAutoreply)) return 'x_autoreply';
  if (isSet(h.xAutorespond)) return 'x_autorespond';
  const precedence = h.precedence?.trim().toLowerCase();
  if (precedence && PRECEDENCE_AUTO.has(precedence)) return 'precedence';
  // Exchange sets X-Auto-Response-Suppress on its own OOF replies and automated mail
  // (https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxcmail, section 2.2.3.2.14).
  const suppress = h.xAutoResponseSuppress?.toLowerCase() ?? '';
  if (/\b(oof|all)\b/.test(suppress)) return 'x_auto_response_suppress';
  if (AUTO_REPLY_SUBJECT.test(message.subject)) return 'subject_pattern';
  return null;
}

function sesNotificationType(message: Input): string | null {
  if (!(message.from?.address ?? '').toLowerCase().endsWith('@sns.amazonaws.com') || !message.text) return null;
  return /"notificationType"\s*:\s*"(Bounce|Complaint)"/.exec(message.text.slice(0, 64 * 1024))?.[1] ?? null;
}

function isSet(value: string | null): boolean {
  if (value === null) return false;
  const v = value.trim().toLowerCase();
  return v !== '' && v !== 'no' && v !== 'false' && v !== '0';
}
